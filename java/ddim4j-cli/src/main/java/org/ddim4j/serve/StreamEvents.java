package org.ddim4j.serve;

import org.ddim4j.ImageBatch;

/**
 * Hands a stream's progress from the sampling thread to the thread writing the stream. It keeps only
 * the latest step and the latest preview, so a slow client skips frames instead of holding up the
 * sampler or piling up memory.
 */
final class StreamEvents implements SampleJob.Listener {
    /** The latest progress; {@code preview} (the job's images from {@code firstImage}) is null when no new one came. */
    record Update(long stepsDone, long totalSteps, ImageBatch preview, int firstImage) {}

    private Update latest;
    private ImageBatch latestPreview;
    private int latestPreviewFirst;

    @Override
    public synchronized void onProgress(long stepsDone, long totalSteps, ImageBatch preview, int firstPreviewImage) {
        if (preview != null) {
            latestPreview = preview;
            latestPreviewFirst = firstPreviewImage;
        }
        latest = new Update(stepsDone, totalSteps, null, 0);
        notifyAll();
    }

    /** The next update, waiting at most {@code millis}; null when none came. */
    synchronized Update next(long millis) {
        long end = System.currentTimeMillis() + millis;
        try {
            for (long left = millis; latest == null && left > 0; left = end - System.currentTimeMillis()) {
                wait(left);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (latest == null) {
            return null;
        }
        Update update = new Update(latest.stepsDone(), latest.totalSteps(), latestPreview, latestPreviewFirst);
        latest = null;
        latestPreview = null;
        return update;
    }
}
