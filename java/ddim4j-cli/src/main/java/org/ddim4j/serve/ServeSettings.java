package org.ddim4j.serve;

import java.time.Duration;

import org.ddim4j.Network;
import org.ddim4j.Precision;
import org.ddim4j.SampleOptions;

/**
 * What a server allows and how it batches. Every bound a client could push on is here: images and
 * steps per request, queued requests, request body size, and how long a request may wait and run.
 *
 * @param maxCount images one request may ask for
 * @param maxSteps steps one request may ask for
 * @param queueCapacity requests that may wait; more are refused with 429
 * @param maxBatchImages images merged into one sampling call (1: no dynamic batching)
 * @param batchWindow how long the first request of an idle server waits for others to merge with
 * @param requestTimeout how long a request may wait and run before it is cancelled (503)
 * @param maxBodyBytes the largest request body (413 beyond)
 * @param previewEvery steps between the predicted images a stream sends
 * @param microBatch images per network evaluation, as {@link SampleOptions#microBatch()}: the pixels depend on it
 * @param precision the network's arithmetic
 * @param network which implementation of the network runs
 * @param shutdownGrace how long a stopping server lets running work finish before it cancels it
 */
public record ServeSettings(int maxCount, int maxSteps, int queueCapacity, int maxBatchImages, Duration batchWindow,
        Duration requestTimeout, int maxBodyBytes, int previewEvery, int microBatch, Precision precision, Network network,
        Duration shutdownGrace) {
    // The defaults, also those of `ddim serve`'s options.
    public static final int DEFAULT_MAX_COUNT = 64;
    public static final int DEFAULT_MAX_STEPS = 200;
    public static final int DEFAULT_QUEUE_CAPACITY = 64;
    public static final int DEFAULT_MAX_BATCH_IMAGES = 64;
    public static final int DEFAULT_BATCH_WINDOW_MILLIS = 20;
    public static final int DEFAULT_REQUEST_TIMEOUT_SECONDS = 120;
    public static final int DEFAULT_MAX_BODY_BYTES = 16 * 1024;
    public static final int DEFAULT_PREVIEW_EVERY = 2;
    public static final int DEFAULT_SHUTDOWN_GRACE_SECONDS = 30;

    public ServeSettings {
        requireAtLeast("maxCount", maxCount, 1);
        requireAtLeast("maxSteps", maxSteps, 1);
        if (maxSteps > SampleOptions.MAX_STEPS) {
            throw new IllegalArgumentException("maxSteps must be at most " + SampleOptions.MAX_STEPS + ", got " + maxSteps);
        }
        requireAtLeast("queueCapacity", queueCapacity, 1);
        requireAtLeast("maxBatchImages", maxBatchImages, 1);
        requireAtLeast("maxBodyBytes", maxBodyBytes, 64);
        requireAtLeast("previewEvery", previewEvery, 1);
        if (batchWindow.isNegative() || requestTimeout.isNegative() || requestTimeout.isZero() || shutdownGrace.isNegative()) {
            throw new IllegalArgumentException("batchWindow and shutdownGrace must be >= 0 and requestTimeout > 0");
        }
        SampleOptions.builder().microBatch(microBatch).precision(precision).network(network).build(); // checks them
    }

    /** 64 images and 200 steps per request, 64 queued requests, batches of up to 64 images within 20 ms, 120 s per request. */
    public static ServeSettings defaults() {
        return new ServeSettings(DEFAULT_MAX_COUNT, DEFAULT_MAX_STEPS, DEFAULT_QUEUE_CAPACITY, DEFAULT_MAX_BATCH_IMAGES,
                Duration.ofMillis(DEFAULT_BATCH_WINDOW_MILLIS), Duration.ofSeconds(DEFAULT_REQUEST_TIMEOUT_SECONDS),
                DEFAULT_MAX_BODY_BYTES, DEFAULT_PREVIEW_EVERY, SampleOptions.DEFAULT_MICRO_BATCH, Precision.FLOAT32, Network.AUTO,
                Duration.ofSeconds(DEFAULT_SHUTDOWN_GRACE_SECONDS));
    }

    public ServeSettings withQueueCapacity(int requests) {
        return new ServeSettings(maxCount, maxSteps, requests, maxBatchImages, batchWindow, requestTimeout, maxBodyBytes,
                previewEvery, microBatch, precision, network, shutdownGrace);
    }

    public ServeSettings withRequestTimeout(Duration timeout) {
        return new ServeSettings(maxCount, maxSteps, queueCapacity, maxBatchImages, batchWindow, timeout, maxBodyBytes,
                previewEvery, microBatch, precision, network, shutdownGrace);
    }

    public ServeSettings withLimits(int count, int steps) {
        return new ServeSettings(count, steps, queueCapacity, maxBatchImages, batchWindow, requestTimeout, maxBodyBytes,
                previewEvery, microBatch, precision, network, shutdownGrace);
    }

    public ServeSettings withBatching(int maxImages, Duration window) {
        return new ServeSettings(maxCount, maxSteps, queueCapacity, maxImages, window, requestTimeout, maxBodyBytes,
                previewEvery, microBatch, precision, network, shutdownGrace);
    }

    public ServeSettings withShutdownGrace(Duration grace) {
        return new ServeSettings(maxCount, maxSteps, queueCapacity, maxBatchImages, batchWindow, requestTimeout, maxBodyBytes,
                previewEvery, microBatch, precision, network, grace);
    }

    private static void requireAtLeast(String name, int value, int least) {
        if (value < least) {
            throw new IllegalArgumentException(name + " must be >= " + least + ", got " + value);
        }
    }
}
