package org.ddim4j.serve;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.ddim4j.ImageBatch;
import org.ddim4j.SampleOptions;

/**
 * A job whose first progress callback blocks the sampling thread until {@link #open()}: tests use it
 * to make the server busy for exactly as long as they need, with no timing guesses.
 */
final class Gate implements SampleJob.Listener {
    private final CountDownLatch entered = new CountDownLatch(1);
    private final CountDownLatch released = new CountDownLatch(1);
    final SampleJob job = new SampleJob(SampleOptions.builder().count(1).steps(2).seed(-1).build(), this);

    /** Queues the gate's job on {@code batcher} and waits until it holds the sampling thread. */
    static Gate hold(Batcher batcher) throws InterruptedException {
        Gate gate = new Gate();
        if (!batcher.submit(gate.job) || !gate.entered.await(60, TimeUnit.SECONDS)) {
            throw new AssertionError("the gate job never started");
        }
        return gate;
    }

    @Override
    public void onProgress(long stepsDone, long totalSteps, ImageBatch preview, int firstPreviewImage) {
        entered.countDown();
        try {
            released.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    void open() {
        released.countDown();
    }
}
