package org.ddim4j.serve;

import java.io.IOException;
import java.io.OutputStream;
import java.util.function.IntSupplier;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.ExpositionFormatWriter;
import io.prometheus.metrics.expositionformats.ExpositionFormats;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.Unit;

/**
 * What {@code GET /metrics} reports, through the Prometheus Java client, in a registry of the server's
 * own (two servers in one JVM count apart). Every label takes few values: routes are the API's
 * (anything else is "other"), statuses are HTTP's, reasons are {@link HttpError#reason()}'s.
 */
final class ServeMetrics {
    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final ExpositionFormats formats = ExpositionFormats.init();
    private final Counter requests = Counter.builder().name("ddim_serve_requests")
            .help("HTTP requests answered, by route and status").labelNames("route", "status").register(registry);
    private final Histogram requestSeconds = Histogram.builder().name("ddim_serve_request_duration").unit(Unit.SECONDS)
            .help("time from a request's arrival to its answer, queueing included (streams: to their last event)")
            .labelNames("route").classicOnly().classicExponentialUpperBounds(0.005, 2, 16).register(registry);
    private final Counter rejected = Counter.builder().name("ddim_serve_rejected_requests")
            .help("requests refused, by reason (bad_request, unauthorized, queue_full, timeout, shutting_down, ...)")
            .labelNames("reason").register(registry);
    private final Histogram batchImages = Histogram.builder().name("ddim_serve_batch_images")
            .help("images per sampling call (dynamic batching merges requests)")
            .classicOnly().classicUpperBounds(1, 2, 4, 8, 16, 32, 64, 128, 256).register(registry);
    private final Histogram batchRequests = Histogram.builder().name("ddim_serve_batch_requests")
            .help("requests per sampling call").classicOnly().classicUpperBounds(1, 2, 4, 8, 16, 32, 64).register(registry);
    private final Histogram callSeconds = Histogram.builder().name("ddim_serve_sampling_call_duration").unit(Unit.SECONDS)
            .help("time of one sampling call (all its requests' images)")
            .classicOnly().classicExponentialUpperBounds(0.01, 2, 14).register(registry);
    private final Counter images = Counter.builder().name("ddim_serve_images_generated")
            .help("images sampled and handed to their requests").register(registry);
    private final Counter calls = Counter.builder().name("ddim_serve_sampling_calls")
            .help("sampling calls, by outcome (completed, cancelled, failed)").labelNames("outcome").register(registry);

    /** @param queued requests waiting now; @param running requests in the running sampling call now */
    ServeMetrics(IntSupplier queued, IntSupplier running) {
        GaugeWithCallback.builder().name("ddim_serve_queue_depth").help("requests waiting for a sampling call")
                .callback(callback -> callback.call(queued.getAsInt())).register(registry);
        GaugeWithCallback.builder().name("ddim_serve_running_requests").help("requests in the running sampling call")
                .callback(callback -> callback.call(running.getAsInt())).register(registry);
    }

    void requestAnswered(String route, int status, long startNanos) {
        requests.labelValues(route, Integer.toString(status)).inc();
        requestSeconds.labelValues(route).observe((System.nanoTime() - startNanos) / 1e9);
    }

    void rejected(String reason) {
        rejected.labelValues(reason).inc();
    }

    void callCompleted(int requestCount, int imageCount, double seconds) {
        calls.labelValues("completed").inc();
        batchRequests.observe(requestCount);
        batchImages.observe(imageCount);
        callSeconds.observe(seconds);
        images.inc(imageCount);
    }

    void callEnded(String outcome) {
        calls.labelValues(outcome).inc();
    }

    /** The writer for a request's Accept header (Prometheus text, or OpenMetrics when asked for). */
    ExpositionFormatWriter writerFor(String accept) {
        ExpositionFormatWriter writer = formats.findWriter(accept);
        return writer.isAvailable() ? writer : formats.getPrometheusTextFormatWriter(); // protobuf is not bundled
    }

    void write(ExpositionFormatWriter writer, OutputStream out) throws IOException {
        writer.write(out, registry.scrape());
    }
}
