package org.ddim4j;

/**
 * Watches a {@link Trainer#fit} run. Called on the training thread; keep it quick. Every method is optional.
 */
public interface TrainListener {
    /** After every optimisation step. */
    default void onStep(StepEvent step) {}

    /** After every epoch, with the validation losses. */
    default void onEpoch(EpochSummary epoch) {}

    /** Asked after every step: return true to end the run cleanly (a checkpoint is written when configured). */
    default boolean stopRequested() {
        return false;
    }

    /**
     * @param step steps taken so far (1 after the first)
     * @param epoch the epoch this step belongs to (0-based)
     * @param batch the batch within the epoch (0-based)
     * @param batchesPerEpoch batches in one epoch
     * @param totalSteps steps the run aims for
     * @param loss this batch's training loss
     */
    record StepEvent(long step, int epoch, int batch, int batchesPerEpoch, long totalSteps, float loss) {}

    /**
     * @param epoch 0-based
     * @param trainLoss mean training loss over the epoch's steps in this run
     * @param noiseLoss validation MAE of the predicted noise (EMA weights when present); NaN without a validation split
     * @param imageLoss validation MAE of the predicted image; NaN without a validation split
     * @param imagesPerSecond training throughput over the epoch
     */
    record EpochSummary(int epoch, long step, double trainLoss, double noiseLoss, double imageLoss, double imagesPerSecond,
            double seconds) {}
}
