package org.ddim4j;

/**
 * Watches sampling, inversion, variations and inpainting step by step. Called on the sampling
 * thread after every network evaluation; keep it quick. Interrupting the sampling thread cancels
 * too. A cancelled call throws {@link java.util.concurrent.CancellationException}; an exception
 * thrown here cancels the call and is rethrown from it.
 */
@FunctionalInterface
public interface SampleListener {
    void onStep(SampleProgress progress);

    /** Asked after every step: return true to cancel. */
    default boolean stopRequested() {
        return false;
    }

    /**
     * @param step steps done in the current chunk (1 .. steps)
     * @param steps network evaluations per chunk
     * @param firstImage index, within the call, of the current chunk's first image
     * @param images images in the current chunk
     * @param stepsDone chunk-steps done in the whole call, for progress bars
     * @param totalSteps chunk-steps the whole call takes
     * @param preview the chunk's predicted clean images after this step (its {@code images} images, pixels in [0, 1]),
     *        on the steps {@link SampleOptions#previewEvery()} asks for; null on the others
     */
    record SampleProgress(int step, int steps, long firstImage, int images, long stepsDone, long totalSteps, ImageBatch preview) {
        /** Progress without a preview. */
        public SampleProgress(int step, int steps, long firstImage, int images, long stepsDone, long totalSteps) {
            this(step, steps, firstImage, images, stepsDone, totalSteps, null);
        }

        /** Progress of the whole call in [0, 1]. */
        public double fraction() {
            return (double) stepsDone / totalSteps;
        }
    }
}
