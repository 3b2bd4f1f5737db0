package org.ddim4j.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;

import javax.imageio.ImageIO;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.ddim4j.Ddim;
import org.ddim4j.ImageBatch;
import org.ddim4j.SampleOptions;
import org.ddim4j.Sampler;
import org.ddim4j.TestModels;
import org.junit.jupiter.api.Test;

/** `ddim serve`'s HTTP API on a random localhost port: endpoints, errors, limits, cancellation, shutdown and exact batching. */
class SampleServerTest extends ServerTestBase {
    private ServeClient client;

    private void start(ServeSettings settings) throws IOException {
        client = start(settings, ServeAccess.open());
    }

    private HttpResponse<String> get(String path) throws IOException, InterruptedException {
        return client.get(path);
    }

    private HttpResponse<String> post(String path, String body) throws IOException, InterruptedException {
        return client.post(path, body);
    }

    private CompletableFuture<HttpResponse<String>> postAsync(String body) {
        return client.postAsync("/v1/samples", body);
    }

    private List<CompletableFuture<HttpResponse<String>>> queueTogether(List<String> requests) throws InterruptedException {
        return queueTogether(client, requests);
    }

    private static JsonNode json(HttpResponse<String> response) throws IOException {
        return ServeClient.json(response);
    }

    private static List<String> pngs(JsonNode body) {
        return ServeClient.pngs(body);
    }

    @Test
    void healthAndModelDescribeTheServer() throws Exception {
        start(ServeSettings.defaults());
        HttpResponse<String> health = get("/health");
        assertEquals(200, health.statusCode());
        assertEquals("ok", json(health).get("status").asText());
        JsonNode model = json(get("/v1/model"));
        assertEquals(16, model.get("config").get("imageSize").asInt());
        assertEquals("[8,16]", model.get("config").get("widths").toString());
        assertEquals(ddim.parameterCount(), model.get("parameters").asLong());
        assertEquals("cpu", model.get("device").asText());
        assertEquals(64, model.get("limits").get("maxCount").asInt());
    }

    @Test
    void samplesAreTheImagesTheLibraryDrawsAsPngsOrOneGrid() throws Exception {
        start(ServeSettings.defaults());
        HttpResponse<String> response = post("/v1/samples", "{\"count\": 3, \"steps\": 4, \"seed\": 9, \"firstIndex\": 2}");
        assertEquals(200, response.statusCode(), response.body());
        assertEquals("application/json", response.headers().firstValue("Content-Type").orElseThrow());
        JsonNode body = json(response);
        ImageBatch expected = ddim.sample(SampleOptions.builder().count(3).steps(4).seed(9).firstIndex(2).build());
        for (int i = 0; i < 3; i++) {
            JsonNode image = body.get("images").get(i);
            assertEquals(2 + i, image.get("index").asLong());
            assertEquals(9, image.get("seed").asLong());
            BufferedImage png = ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode(image.get("png").asText())));
            assertEquals(16, png.getWidth());
            assertArrayEquals(ServeClient.pixels(expected.image(i)), ServeClient.pixels(png), "image " + i);
        }
        assertTrue(body.get("seconds").asDouble() > 0);

        HttpResponse<byte[]> grid = client.sendForBytes(client.postRequest("/v1/samples", "{\"count\": 4, \"steps\": 2}").header("Accept", "image/png"));
        assertEquals(200, grid.statusCode());
        assertEquals("image/png", grid.headers().firstValue("Content-Type").orElseThrow());
        BufferedImage gridImage = ImageIO.read(new ByteArrayInputStream(grid.body()));
        assertTrue(gridImage.getWidth() >= 32 && gridImage.getWidth() < 40, "2 columns of 16 pixels: " + gridImage.getWidth());
    }

    @Test
    void concurrentRequestsAreBatchedAndEachGetsItsPixelsAlone() throws Exception {
        start(ServeSettings.defaults());
        List<String> requests = List.of(
                "{\"count\": 3, \"steps\": 3, \"seed\": 1}",
                "{\"count\": 1, \"steps\": 3, \"seed\": 2, \"firstIndex\": 40}",
                "{\"count\": 5, \"steps\": 3, \"seed\": 1, \"firstIndex\": 3}",
                "{\"count\": 2, \"steps\": 3, \"seed\": 77, \"sampler\": \"DDPM\"}",
                "{\"count\": 2, \"steps\": 3, \"seed\": 78, \"sampler\": \"DDPM\", \"firstIndex\": 9}",
                "{\"count\": 2, \"steps\": 3, \"seed\": 5, \"sampler\": \"DDIM\", \"eta\": 0.5}");
        List<CompletableFuture<HttpResponse<String>>> together = queueTogether(requests);
        List<JsonNode> batched = new ArrayList<>();
        for (CompletableFuture<HttpResponse<String>> response : together) {
            assertEquals(200, response.get().statusCode(), response.get().body());
            batched.add(json(response.get()));
        }
        // Same steps, sampler and eta merge (the DDIM ones and the DDPM ones); eta 0.5 runs alone.
        assertEquals(3, batched.get(0).get("batch").get("requests").asInt());
        assertEquals(9, batched.get(0).get("batch").get("images").asInt());
        assertEquals(2, batched.get(3).get("batch").get("requests").asInt());
        assertEquals(1, batched.get(5).get("batch").get("requests").asInt());
        for (int i = 0; i < requests.size(); i++) {
            JsonNode alone = json(post("/v1/samples", requests.get(i)));
            assertEquals(1, alone.get("batch").get("requests").asInt());
            assertEquals(pngs(alone), pngs(batched.get(i)), "request " + i + " batched vs alone: " + requests.get(i));
        }
    }

    /** `--max-batch 1`: queued requests that would merge each run alone, with the same pixels. */
    @Test
    void maxBatchOneRunsEveryRequestAlone() throws Exception {
        start(ServeSettings.defaults().withBatching(1, ServeSettings.defaults().batchWindow()));
        List<String> requests = List.of("{\"count\": 1, \"steps\": 3, \"seed\": 1}", "{\"count\": 1, \"steps\": 3, \"seed\": 2}",
                "{\"count\": 1, \"steps\": 3, \"seed\": 3}");
        List<CompletableFuture<HttpResponse<String>>> queued = queueTogether(requests);
        for (int i = 0; i < requests.size(); i++) {
            JsonNode answer = json(queued.get(i).get());
            assertEquals(1, answer.get("batch").get("requests").asInt(), answer.toString());
            assertEquals(pngs(json(post("/v1/samples", requests.get(i)))), pngs(answer));
        }
    }

    /** `--batch-window`: on an idle server the first request waits that long for company, and one sent meanwhile joins it. */
    @Test
    void theBatchWindowLetsALaterRequestJoinTheFirst() throws Exception {
        start(ServeSettings.defaults().withBatching(ServeSettings.DEFAULT_MAX_BATCH_IMAGES, Duration.ofSeconds(2)));
        CompletableFuture<HttpResponse<String>> first = postAsync("{\"count\": 1, \"steps\": 3, \"seed\": 1}");
        Thread.sleep(200); // well inside the window: the first request waits for company, out of the queue
        CompletableFuture<HttpResponse<String>> second = postAsync("{\"count\": 1, \"steps\": 3, \"seed\": 2}");
        assertEquals(2, json(first.get()).get("batch").get("requests").asInt());
        assertEquals(2, json(second.get()).get("batch").get("requests").asInt());
    }

    @Test
    void badRequestsGetA4xxWithAMessageAndNoStackTrace() throws Exception {
        start(ServeSettings.defaults().withLimits(8, 50));
        String[][] cases = {
                {"{\"count\": 9}", "'count' must lie in [1, 8]"},
                {"{\"steps\": 51}", "'steps' must lie in [1, 50]"},
                {"{\"count\": \"many\"}", "'count' must be a number"},
                {"{\"eta\": 2}", "'eta' must lie in [0, 1"},
                {"{\"sampler\": \"EULER\"}", "'sampler' must be one of"},
                {"{\"size\": 64}", "unknown field 'size'"},
                {"{\"count\": [1, 2]}", "'count' must be a number or a string"},
                {"[1, 2]", "must be a JSON object"},
                {"{\"count\": ", "not valid JSON"},
        };
        for (String[] c : cases) {
            HttpResponse<String> response = post("/v1/samples", c[0]);
            assertEquals(400, response.statusCode(), c[0]);
            String error = json(response).get("error").asText();
            assertTrue(error.contains(c[1]), c[0] + " -> " + error);
            assertFalse(response.body().contains("Exception") || response.body().contains("\tat "), response.body());
        }
        HttpResponse<String> huge = post("/v1/samples", "{\"seed\": 1" + " ".repeat(20_000) + "}");
        assertEquals(413, huge.statusCode());
        assertTrue(json(huge).get("error").asText().contains("larger than 16384 bytes"));
        assertEquals(404, get("/v1/nothing").statusCode());
        HttpResponse<String> wrongMethod = get("/v1/samples");
        assertEquals(405, wrongMethod.statusCode());
        assertEquals("POST", wrongMethod.headers().firstValue("Allow").orElseThrow());
        assertEquals(400, get("/v1/samples/stream?count=0").statusCode());
        assertEquals(200, post("/v1/samples", "").statusCode(), "an empty body takes every default");
    }

    @Test
    void aFullQueueAnswers429WithRetryAfterAndATimeoutCancels() throws Exception {
        start(ServeSettings.defaults().withQueueCapacity(2).withRequestTimeout(Duration.ofSeconds(2)));
        Gate gate = hold();
        CompletableFuture<HttpResponse<String>> first = postAsync("{\"count\": 1, \"steps\": 2}");
        CompletableFuture<HttpResponse<String>> second = postAsync("{\"count\": 1, \"steps\": 2, \"seed\": 3}");
        await(() -> server.batcher().stats().queued() == 2, "two requests are queued");
        HttpResponse<String> refused = post("/v1/samples", "{\"count\": 1}");
        assertEquals(429, refused.statusCode());
        assertTrue(Long.parseLong(refused.headers().firstValue("Retry-After").orElseThrow()) >= 1);
        assertTrue(json(refused).get("error").asText().contains("queue is full"));
        // The gate holds the sampler past the 2 s timeout: the waiting requests are cancelled with 503.
        assertEquals(503, first.get().statusCode());
        assertTrue(json(first.get()).get("error").asText().contains("timed out after 2 s"), first.get().body());
        assertEquals(503, second.get().statusCode());
        gate.open();
        await(() -> server.batcher().stats().queued() == 0, "the cancelled requests leave the queue");
        assertEquals(200, post("/v1/samples", "{\"count\": 1, \"steps\": 2}").statusCode());
    }

    @Test
    void aStreamSendsProgressPreviewsAndTheResult() throws Exception {
        start(ServeSettings.defaults());
        HttpResponse<String> response = get("/v1/samples/stream?count=2&steps=4&seed=5");
        assertEquals(200, response.statusCode());
        assertTrue(response.headers().firstValue("Content-Type").orElseThrow().startsWith("text/event-stream"));
        List<String> events = response.body().lines().filter(line -> line.startsWith("event: ")).map(line -> line.substring(7)).toList();
        assertEquals("queued", events.getFirst());
        assertEquals("result", events.getLast());
        assertTrue(events.contains("preview"), events.toString());
        assertTrue(events.stream().filter("progress"::equals).count() >= 1, events.toString());
        String result = response.body().lines().dropWhile(line -> !line.equals("event: result")).skip(1).findFirst().orElseThrow();
        JsonNode streamed = new ObjectMapper().readTree(result.substring("data: ".length()));
        JsonNode posted = json(post("/v1/samples", "{\"count\": 2, \"steps\": 4, \"seed\": 5}"));
        assertEquals(pngs(posted), pngs(streamed));
    }

    @Test
    void closingAStreamCancelsItsWork() throws Exception {
        start(ServeSettings.defaults().withLimits(64, 10_000));
        try (Socket socket = new Socket("127.0.0.1", server.port())) {
            OutputStream out = socket.getOutputStream();
            out.write(("GET /v1/samples/stream?count=64&steps=10000 HTTP/1.1\r\nHost: localhost\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            for (String line; (line = in.readLine()) != null && !line.equals("event: progress"); ) {
                // until the work is running
            }
        }
        // 10,000 steps of 64 images take minutes; the closed stream cancels them within a few steps.
        await(() -> server.batcher().stats().cancelledCalls() == 1, "the call is cancelled");
        assertEquals(0, server.batcher().stats().calls());
        assertEquals(200, post("/v1/samples", "{\"count\": 1, \"steps\": 2}").statusCode());
    }

    /**
     * Closes {@code server} on a thread of its own. Not CompletableFuture.runAsync: on 2 cores the common pool
     * has one thread, which HttpClient also needs to hand over responses, so a blocked close() would hold them back.
     */
    private static CompletableFuture<Void> closeInBackground(SampleServer server) {
        CompletableFuture<Void> closed = new CompletableFuture<>();
        Thread.ofPlatform().name("close").start(() -> {
            server.close();
            closed.complete(null);
        });
        return closed;
    }

    @Test
    void shutdownFinishesTheRunningCallAndRefusesTheQueuedOnes() throws Exception {
        start(ServeSettings.defaults());
        Gate gate = hold();
        CompletableFuture<HttpResponse<String>> queued = postAsync("{\"count\": 1, \"steps\": 2}");
        await(() -> server.batcher().stats().queued() == 1, "a request is queued");
        CompletableFuture<Void> closing = closeInBackground(server);
        HttpResponse<String> refused = queued.get();
        assertEquals(503, refused.statusCode());
        assertTrue(json(refused).get("error").asText().contains("shutting down"));
        assertFalse(closing.isDone(), "close waits for the running call");
        gate.open();
        closing.get();
        assertEquals(1, gate.job.result().get().images().count(), "the running call finished");
        assertThrows(ConnectException.class, () -> get("/health"));
        server = null;
    }

    @Test
    void shutdownCancelsARunningCallThatOutlastsTheGracePeriod() throws Exception {
        start(ServeSettings.defaults().withShutdownGrace(Duration.ofMillis(200)));
        Gate gate = hold();
        CompletableFuture<Void> closing = closeInBackground(server);
        await(() -> server.batcher().isAbandoningRunningCall(), "the grace period ends");
        gate.open(); // the gate's step returns, and the call sees it must stop
        closing.get();
        // A call cancelled by the shutdown completes its jobs with CancellationException.
        assertThrows(CancellationException.class, () -> gate.job.result().get());
        server = null;
    }

    @Test
    void theInterpolationStripRunsFromOneSeedToTheOther() throws Exception {
        start(ServeSettings.defaults());
        JsonNode strip = json(post("/v1/interpolations", "{\"from\": 3, \"to\": 4, \"frames\": 5, \"steps\": 3}"));
        assertEquals(5, strip.get("images").size());
        JsonNode ends = json(post("/v1/samples", "{\"count\": 1, \"steps\": 3, \"seed\": 3}"));
        assertEquals(pngs(ends).getFirst(), strip.get("images").get(0).get("png").asText(), "frame 0 is seed 3's image 0");
        assertEquals(400, post("/v1/interpolations", "{\"frames\": 1}").statusCode());
    }

    @Test
    void thePageAndItsFilesAreServedFromTheJar() throws Exception {
        start(ServeSettings.defaults());
        HttpResponse<String> page = get("/");
        assertEquals(200, page.statusCode());
        assertTrue(page.headers().firstValue("Content-Type").orElseThrow().startsWith("text/html"));
        assertTrue(page.body().contains("<script src=\"app.js\">"));
        assertFalse(page.body().contains("http://") || page.body().contains("https://"), "no CDN");
        assertEquals(200, get("/app.js").statusCode());
        assertEquals(200, get("/style.css").statusCode());
        assertEquals(404, get("/../pom.xml").statusCode());
    }

    /** A server that cannot start (port taken, closed model) leaves no thread behind, and a later one starts. */
    @Test
    void aServerThatCannotStartLeavesNoThread() throws Exception {
        long before = samplingThreads();
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            assertThrows(java.net.BindException.class,
                    () -> SampleServer.start(ddim, ServeSettings.defaults(), "127.0.0.1", taken.getLocalPort()));
        }
        Ddim closed = TestModels.trainedTiny(7);
        closed.close();
        assertThrows(IllegalStateException.class, () -> SampleServer.start(closed, ServeSettings.defaults(), "127.0.0.1", 0));
        assertEquals(before, samplingThreads());
        start(ServeSettings.defaults());
        assertEquals(before + 1, samplingThreads());
    }

    private static long samplingThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(thread -> thread.getName().equals("ddim-sampler")).count();
    }

    @Test
    void settingsRefuseNonsense() {
        assertThrows(IllegalArgumentException.class, () -> ServeSettings.defaults().withLimits(0, 10));
        assertThrows(IllegalArgumentException.class, () -> ServeSettings.defaults().withLimits(1, SampleOptions.MAX_STEPS + 1));
        assertThrows(IllegalArgumentException.class, () -> ServeSettings.defaults().withQueueCapacity(0));
        assertThrows(IllegalArgumentException.class, () -> ServeSettings.defaults().withRequestTimeout(Duration.ZERO));
        assertEquals(Sampler.DDIM, SampleRequests.sampleOptions(SampleRequests.fromQuery("count=2&sampler=ddim"),
                ServeSettings.defaults(), ddim.config()).sampler());
    }
}
