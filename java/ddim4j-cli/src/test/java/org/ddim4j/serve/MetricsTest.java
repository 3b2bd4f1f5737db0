package org.ddim4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;

/** GET /metrics: the Prometheus text format, and counters that move as requests arrive. */
class MetricsTest extends ServerTestBase {
    private ServeClient client;

    /** The value of one sample line (name with its labels, exactly as exposed), or 0 when absent. */
    private double value(String sample) throws Exception {
        String text = client.get("/metrics").body();
        Matcher matcher = Pattern.compile("(?m)^" + Pattern.quote(sample) + " (\\S+)$").matcher(text);
        return matcher.find() ? Double.parseDouble(matcher.group(1)) : 0;
    }

    @Test
    void countersMoveAsRequestsArrive() throws Exception {
        client = start(ServeSettings.defaults(), ServeAccess.open());
        HttpResponse<String> first = client.get("/metrics");
        assertEquals(200, first.statusCode());
        assertTrue(first.headers().firstValue("Content-Type").orElseThrow().startsWith("text/plain; version=0.0.4"), first.headers().toString());
        assertTrue(first.body().contains("# TYPE ddim_serve_images_generated_total counter"), first.body());
        assertTrue(first.body().contains("# TYPE ddim_serve_sampling_call_duration_seconds histogram"), first.body());
        assertTrue(first.body().contains("# TYPE ddim_serve_queue_depth gauge"), first.body());

        String ok = "ddim_serve_requests_total{route=\"/v1/samples\",status=\"200\"}";
        String bad = "ddim_serve_requests_total{route=\"/v1/samples\",status=\"400\"}";
        double okBefore = value(ok), badBefore = value(bad), images = value("ddim_serve_images_generated_total");
        double calls = value("ddim_serve_batch_images_count"), badRequests = value("ddim_serve_rejected_requests_total{reason=\"bad_request\"}");
        assertEquals(200, client.post("/v1/samples", "{\"count\": 3, \"steps\": 2}").statusCode());
        assertEquals(200, client.post("/v1/samples", "{\"count\": 2, \"steps\": 2}").statusCode());
        assertEquals(400, client.post("/v1/samples", "{\"count\": 0}").statusCode());
        assertEquals(404, client.get("/v1/nothing").statusCode());
        assertEquals(okBefore + 2, value(ok));
        assertEquals(badBefore + 1, value(bad));
        assertEquals(images + 5, value("ddim_serve_images_generated_total"));
        assertEquals(calls + 2, value("ddim_serve_batch_images_count"));
        assertEquals(badRequests + 1, value("ddim_serve_rejected_requests_total{reason=\"bad_request\"}"));
        assertEquals(1, value("ddim_serve_requests_total{route=\"other\",status=\"404\"}"), "unknown paths share one label");
        assertEquals(1, value("ddim_serve_rejected_requests_total{reason=\"not_found\"}"));
        assertTrue(value("ddim_serve_request_duration_seconds_count{route=\"/v1/samples\"}") >= 3);
        assertTrue(client.get("/metrics").body().contains("# TYPE ddim_serve_requests_total counter"));
        assertTrue(value("ddim_serve_sampling_call_duration_seconds_sum") > 0);
    }

    @Test
    void queueDepthAndQueueFullRejectionsAreSeen() throws Exception {
        client = start(ServeSettings.defaults().withQueueCapacity(2).withBatching(1, java.time.Duration.ZERO), ServeAccess.open());
        Gate gate = hold();
        List<CompletableFuture<HttpResponse<String>>> queued = new ArrayList<>();
        queued.add(client.postAsync("/v1/samples", "{\"count\": 1, \"steps\": 1}"));
        queued.add(client.postAsync("/v1/samples", "{\"count\": 1, \"steps\": 1}"));
        awaitQueued(2);
        assertEquals(2, value("ddim_serve_queue_depth"));
        assertEquals(1, value("ddim_serve_running_requests"), "the gate's job runs");
        assertEquals(429, client.post("/v1/samples", "{\"count\": 1, \"steps\": 1}").statusCode());
        assertEquals(1, value("ddim_serve_rejected_requests_total{reason=\"queue_full\"}"));
        gate.open();
        for (CompletableFuture<HttpResponse<String>> response : queued) {
            assertEquals(200, response.get().statusCode());
        }
        assertEquals(0, value("ddim_serve_queue_depth"));
        assertEquals(3, value("ddim_serve_batch_requests_bucket{le=\"1.0\"}"), "three calls of one request each: the gate's and two");
    }
}
