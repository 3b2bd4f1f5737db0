package org.ddim4j.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;


import com.fasterxml.jackson.databind.JsonNode;

import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.ImageBatch;
import org.ddim4j.SampleOptions;
import org.junit.jupiter.api.Test;

/** The shipped class-conditional model served: classes by index or name, guidance, and exact batching of mixed classes. */
class ClassServingTest extends ServerTestBase {
    private static final Path CLASS_MODEL = Path.of(System.getProperty("ddim4j.repo"), "models", "fashion-mnist-32-classes.safetensors");
    private ServeClient client;

    @Override
    protected Ddim openModel() {
        return Ddim.open(CLASS_MODEL, Device.cpu());
    }

    private void start() throws Exception {
        client = start(ServeSettings.defaults(), ServeAccess.open());
    }

    @Test
    void theModelListsItsClasses() throws Exception {
        start();
        JsonNode model = ServeClient.json(client.get("/v1/model"));
        assertEquals(10, model.get("config").get("classes").asInt());
        assertEquals(10, model.get("classNames").size());
        assertEquals("Sneaker", model.get("classNames").get(7).asText());
    }

    /**
     * Requests of different classes (by index and by name, one for all images or one per image) with the same guidance
     * share one sampling call; other guidance, and no class, run apart. Each gets exactly the pixels it gets alone,
     * which are the library's for the same options.
     */
    @Test
    void aMergedBatchOfMixedClassesGivesEachRequestItsOwnPixels() throws Exception {
        start();
        List<String> requests = List.of(
                "{\"count\": 2, \"steps\": 4, \"seed\": 1, \"class\": \"sneaker\", \"guidance\": 3}",
                "{\"count\": 3, \"steps\": 4, \"seed\": 2, \"classes\": [0, \"Trouser\", 9], \"guidance\": 3}",
                "{\"count\": 1, \"steps\": 4, \"seed\": 3, \"class\": 5, \"guidance\": 3, \"firstIndex\": 7}",
                "{\"count\": 2, \"steps\": 4, \"seed\": 1, \"class\": \"sneaker\", \"guidance\": 1}",
                "{\"count\": 2, \"steps\": 4, \"seed\": 1}",
                "{\"count\": 1, \"steps\": 4, \"seed\": 6}");
        List<JsonNode> together = new ArrayList<>();
        for (CompletableFuture<HttpResponse<String>> response : queueTogether(client, requests)) {
            assertEquals(200, response.get().statusCode(), response.get().body());
            together.add(ServeClient.json(response.get()));
        }
        assertEquals(3, together.get(0).get("batch").get("requests").asInt(), "the three guidance-3 requests merge");
        assertEquals(6, together.get(0).get("batch").get("images").asInt());
        assertEquals(1, together.get(3).get("batch").get("requests").asInt(), "guidance 1 runs apart");
        assertEquals(2, together.get(4).get("batch").get("requests").asInt(), "the two requests without a class merge");
        assertEquals(List.of("T-shirt/top", "Trouser", "Ankle boot"), classNamesOf(together.get(1)));
        for (int i = 0; i < requests.size(); i++) {
            JsonNode alone = ServeClient.json(client.post("/v1/samples", requests.get(i)));
            assertEquals(1, alone.get("batch").get("requests").asInt());
            assertEquals(ServeClient.pngs(alone), ServeClient.pngs(together.get(i)), "request " + i + " merged vs alone");
        }
        // The pixels are the library's, and guidance changes them.
        ImageBatch library = ddim.sample(SampleOptions.builder().classes(0, 1, 9).steps(4).seed(2).guidance(3).build());
        List<String> served = ServeClient.pngs(together.get(1));
        for (int i = 0; i < library.count(); i++) {
            assertArrayEquals(ServeClient.pixels(library.image(i)), ServeClient.pixels(served.get(i)), "image " + i + " of request 1 vs the library");
        }
        assertNotEquals(ServeClient.pngs(together.get(0)), ServeClient.pngs(together.get(3)), "guidance 3 and guidance 1 draw different images");
    }

    private static List<String> classNamesOf(JsonNode body) {
        List<String> names = new ArrayList<>();
        body.get("images").forEach(image -> names.add(image.get("className").asText()));
        return names;
    }

    @Test
    void theStreamAndInterpolationsTakeClassesToo() throws Exception {
        start();
        HttpResponse<String> stream = client.get("/v1/samples/stream?count=2&steps=3&classes=7&classes=bag&guidance=2");
        assertEquals(200, stream.statusCode(), stream.body());
        String result = stream.body().substring(stream.body().indexOf("event: result"));
        assertTrue(result.contains("\"className\":\"Sneaker\"") && result.contains("\"className\":\"Bag\""), result);
        HttpResponse<String> strip = client.post("/v1/interpolations", "{\"frames\": 3, \"steps\": 3, \"class\": \"dress\", \"guidance\": 3}");
        assertEquals(200, strip.statusCode(), strip.body());
        assertEquals(3, ServeClient.json(strip).get("images").size());
    }

    @Test
    void badClassFieldsAreRefusedNamingTheField() throws Exception {
        start();
        record Case(String body, String message) {}
        for (Case c : List.of(
                new Case("{\"class\": \"spaceship\"}", "no class 'spaceship'"),
                new Case("{\"class\": 10}", "no class '10'"),
                new Case("{\"class\": 1, \"classes\": [1, 2]}", "not both"),
                new Case("{\"count\": 3, \"classes\": [1, 2]}", "'classes' holds 2 classes but 'count' is 3"),
                new Case("{\"classes\": 4}", "'classes' must be a list"),
                new Case("{\"classes\": []}", "'classes' must hold 1 to 64"),
                new Case("{\"guidance\": 3}", "'guidance' needs 'class' or 'classes'"),
                new Case("{\"class\": 1, \"guidance\": 101}", "'guidance' must lie in [0, 100"),
                new Case("{\"class\": 1, \"guidance\": \"NaN\"}", "'guidance' must lie in"))) {
            HttpResponse<String> response = client.post("/v1/samples", c.body);
            assertEquals(400, response.statusCode(), c.body + " -> " + response.body());
            assertTrue(ServeClient.json(response).get("error").asText().contains(c.message), c.body + " -> " + response.body());
        }
    }
}
