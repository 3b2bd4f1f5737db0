package org.ddim4j;

import java.nio.file.Path;

/**
 * How to train: batch size, length (epochs, or steps when set), AdamW's learning rate and weight
 * decay, the EMA decay, the loss, the seed, checkpoints and the validation split. Defaults follow the
 * reference: batch 64, lr 1e-3, weight decay 1e-4, EMA 0.999, MAE, an 80/20 split.
 *
 * <pre>{@code
 * TrainOptions options = TrainOptions.builder().epochs(5).batchSize(64).checkpointDir(Path.of("run")).build();
 * }</pre>
 *
 * @param steps optimisation steps to reach in total; 0 means "train for {@code epochs} epochs"
 * @param checkpointDir where {@code checkpoint.safetensors} is written (null: no checkpoints)
 * @param checkpointEvery write a checkpoint every this many steps (0: only at the end and on cancellation)
 * @param accumulate micro-batches per step: each step's batch is split into this many equal parts whose
 *     gradients add up before one optimizer step (the same step as that many ranks would take, to float rounding)
 * @param distributed the training group this process is a rank of, or null to train alone. {@code batchSize}
 *     stays the global batch: each rank takes batchSize / worldSize images per step (see {@link Trainer#fit})
 * @param labelDropout class-conditional models: the probability, 0..1, that an image's class is replaced by "no class"
 *     at a step (default 0.1), so that the model also learns the unconditional prediction that guidance needs
 */
public record TrainOptions(
        int batchSize,
        int epochs,
        long steps,
        double learningRate,
        double weightDecay,
        double emaDecay,
        Loss loss,
        long seed,
        Path checkpointDir,
        long checkpointEvery,
        double validationSplit,
        int accumulate,
        Distributed distributed,
        double labelDropout) {

    public TrainOptions {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize must be >= 1, got " + batchSize);
        }
        if (epochs < 1) {
            throw new IllegalArgumentException("epochs must be >= 1, got " + epochs);
        }
        if (steps < 0) {
            throw new IllegalArgumentException("steps must be >= 0 (0: train by epochs), got " + steps);
        }
        if (!(learningRate > 0 && Double.isFinite(learningRate))) {
            throw new IllegalArgumentException("learningRate must be finite and > 0, got " + learningRate);
        }
        if (!(weightDecay >= 0 && Double.isFinite(weightDecay))) {
            throw new IllegalArgumentException("weightDecay must be finite and >= 0, got " + weightDecay);
        }
        if (!(emaDecay >= 0 && emaDecay < 1)) {
            throw new IllegalArgumentException("emaDecay must lie in [0, 1), got " + emaDecay);
        }
        if (loss == null) {
            throw new IllegalArgumentException("loss must not be null");
        }
        if (checkpointEvery < 0) {
            throw new IllegalArgumentException("checkpointEvery must be >= 0, got " + checkpointEvery);
        }
        if (!(validationSplit >= 0 && validationSplit < 1)) {
            throw new IllegalArgumentException("validationSplit must lie in [0, 1), got " + validationSplit);
        }
        if (accumulate < 1 || accumulate > 4096) {
            throw new IllegalArgumentException("accumulate must lie in [1, 4096], got " + accumulate);
        }
        if (!(labelDropout >= 0 && labelDropout <= 1)) {
            throw new IllegalArgumentException("labelDropout must lie in [0, 1], got " + labelDropout);
        }
    }

    /** Processes training together: 1 unless {@link #distributed} says otherwise. */
    public int worldSize() {
        return distributed == null ? 1 : distributed.worldSize();
    }

    /** This process's rank: 0 unless {@link #distributed} says otherwise. */
    public int rank() {
        return distributed == null ? 0 : distributed.rank();
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        return new Builder().batchSize(batchSize).epochs(epochs).steps(steps).learningRate(learningRate)
                .weightDecay(weightDecay).emaDecay(emaDecay).loss(loss).seed(seed).checkpointDir(checkpointDir)
                .checkpointEvery(checkpointEvery).validationSplit(validationSplit).accumulate(accumulate).distributed(distributed)
                .labelDropout(labelDropout);
    }

    /** The checkpoint file, or null. */
    public Path checkpointPath() {
        return checkpointDir == null ? null : checkpointDir.resolve("checkpoint.safetensors");
    }

    /** Builds {@link TrainOptions}; every setter is optional and checks its value. */
    public static final class Builder {
        private int batchSize = 64;
        private int epochs = 1;
        private long steps;
        private double learningRate = 1e-3;
        private double weightDecay = 1e-4;
        private double emaDecay = 0.999;
        private Loss loss = Loss.MAE;
        private long seed;
        private Path checkpointDir;
        private long checkpointEvery;
        private double validationSplit = 0.2;
        private int accumulate = 1;
        private Distributed distributed;
        private double labelDropout = 0.1;

        private Builder() {}

        public Builder batchSize(int batchSize) {
            this.batchSize = batchSize;
            return this;
        }

        public Builder epochs(int epochs) {
            this.epochs = epochs;
            return this;
        }

        /** Total optimisation steps; overrides epochs when > 0. */
        public Builder steps(long steps) {
            this.steps = steps;
            return this;
        }

        public Builder learningRate(double learningRate) {
            this.learningRate = learningRate;
            return this;
        }

        public Builder weightDecay(double weightDecay) {
            this.weightDecay = weightDecay;
            return this;
        }

        /** 0 disables the EMA. */
        public Builder emaDecay(double emaDecay) {
            this.emaDecay = emaDecay;
            return this;
        }

        public Builder loss(Loss loss) {
            this.loss = loss;
            return this;
        }

        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        public Builder checkpointDir(Path checkpointDir) {
            this.checkpointDir = checkpointDir;
            return this;
        }

        public Builder checkpointEvery(long checkpointEvery) {
            this.checkpointEvery = checkpointEvery;
            return this;
        }

        public Builder validationSplit(double validationSplit) {
            this.validationSplit = validationSplit;
            return this;
        }

        /** Micro-batches per step (gradient accumulation); 1 by default. */
        public Builder accumulate(int accumulate) {
            this.accumulate = accumulate;
            return this;
        }

        /** Trains as one rank of a group (e.g. {@link Distributed#fromEnvironment()}); null (the default) trains alone. */
        public Builder distributed(Distributed distributed) {
            this.distributed = distributed;
            return this;
        }

        /** Class-conditional models: how often a label becomes "no class" (default 0.1; ignored by unconditional models). */
        public Builder labelDropout(double labelDropout) {
            this.labelDropout = labelDropout;
            return this;
        }

        public TrainOptions build() {
            return new TrainOptions(batchSize, epochs, steps, learningRate, weightDecay, emaDecay, loss, seed, checkpointDir,
                    checkpointEvery, validationSplit, accumulate, distributed, labelDropout);
        }
    }
}
