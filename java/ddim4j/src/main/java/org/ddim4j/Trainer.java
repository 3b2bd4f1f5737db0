package org.ddim4j;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import org.ddim4j.data.Dataset;

import com.fasterxml.jackson.jr.ob.JSON;

/**
 * Trains a {@link Ddim} model: {@link #fit} for whole runs, {@link #step} for custom loops. Each
 * step is one native call: forward, loss, backward, AdamW and the EMA update.
 *
 * <pre>{@code
 * try (Ddim ddim = Ddim.create(ModelConfig.builder().channels(1).imageSize(32).build(), Device.auto())) {
 *     Dataset data = Datasets.fashionMnist(1, 32);
 *     ddim.trainer(TrainOptions.builder().epochs(5).checkpointDir(Path.of("run")).build())
 *         .fit(data, new TrainListener() {});
 *     ddim.save(Path.of("run/model.safetensors"));
 * }
 * }</pre>
 *
 * <p>{@link #fit}: splits the data (validation fraction from the options, split by the seed), sets
 * the model's normaliser to the training split's exact per-channel mean and std before the first
 * step, shuffles every epoch from (seed, epoch), validates after every epoch with the EMA weights
 * (the reference's noise_loss and image_loss), and checkpoints every {@code checkpointEvery} steps,
 * at the end, and when cancelled (a thread interrupt, or the listener asking to stop), always after
 * a whole step. Resuming from a checkpoint (open it with {@link Ddim#open}, then
 * {@code trainer(sameOptions).fit(sameData, ...)}) continues bit-exactly on the CPU.
 *
 * <p><b>Across processes</b> ({@link TrainOptions#distributed}): the trainer joins the group when it is made
 * (every rank gets rank 0's weights, EMA and optimizer state). {@code batchSize} is the global batch B; with N
 * ranks and {@code accumulate} K it is split into J = N x K micro-batches of B / J images (B is rounded down to a
 * multiple of J, and an epoch's last images that don't fill a batch are left out, as before, from a new shuffle
 * every epoch). A class-conditional model trains on labelled data ({@link Dataset#hasLabels()}), each image with its class.
 * Each epoch has one permutation from (seed, epoch), as PyTorch's DistributedSampler; a step takes
 * the next B images of it, and micro-batch j takes every J-th of those from the j-th, rank r doing j = rK .. rK + K - 1.
 * So N ranks and one process with K = N train the same model, to float rounding. Every rank validates (the same
 * numbers); only rank 0 writes checkpoints, which record the world size: a run resumes with the same one.
 */
public final class Trainer {

    private final Ddim ddim;
    private final TrainOptions options;

    Trainer(Ddim ddim, TrainOptions options) {
        this.ddim = ddim;
        this.options = options;
        ddim.withModel(model -> {
            TrainingCalls.begin(model, options);
            if (options.distributed() != null) {
                TrainingCalls.join(model, options.distributed());
            }
            return null;
        });
    }

    public TrainOptions options() {
        return options;
    }

    /** One optimisation step on NCHW pixels in [0, 1] (a whole number of images); returns the batch loss. */
    public float step(float[] pixels) {
        return step(pixels, null);
    }

    /**
     * One optimisation step of a class-conditional model: NCHW pixels in [0, 1] and each image's class (0 .. classes - 1,
     * or classes for an unlabelled image); each label becomes "no class" with probability {@link TrainOptions#labelDropout()}.
     * Unconditional models take null labels. Returns the batch loss.
     */
    public float step(float[] pixels, int[] labels) {
        return ddim.withModel(model -> TrainingCalls.step(model, ddim.config(), pixels, labels));
    }

    /** One optimisation step on a batch; returns the batch loss. */
    public float step(ImageBatch batch) {
        Objects.requireNonNull(batch, "batch");
        return step(batch.pixels());
    }

    /** Steps taken so far (including those of the checkpoint this model was opened from). */
    public long steps() {
        return ddim.trainingSteps();
    }

    /** Writes a checkpoint (weights, EMA, optimizer state, step, normaliser) atomically. */
    public void checkpoint(Path path) {
        saveCheckpoint(path, "");
    }

    /** Mean validation losses over {@code data} (EMA weights when present): {@code [0]} noise_loss, {@code [1]} image_loss. */
    public double[] validate(Dataset data) {
        double noise = 0;
        double image = 0;
        int chunks = 0;
        for (int from = 0; from < data.size(); from += options.batchSize(), chunks++) {
            int to = Math.min(data.size(), from + options.batchSize());
            int[] labels = ddim.config().isClassConditional() ? data.labels(from, to) : null;
            float[] losses = ddim.evaluate(data.range(from, to), labels, options.seed() + chunks, true);
            noise += (double) losses[0] * (to - from);
            image += (double) losses[1] * (to - from);
        }
        return new double[] {noise / data.size(), image / data.size()};
    }

    /** What a {@link #fit} run did. */
    public record Result(long steps, int epochsCompleted, boolean cancelled, Path checkpoint) {}

    /** Trains on {@code data} until the options' steps or epochs are reached, or the run is cancelled. */
    public Result fit(Dataset data, TrainListener listener) {
        Objects.requireNonNull(data, "data");
        Objects.requireNonNull(listener, "listener");
        ModelConfig config = ddim.config();
        if (data.channels() != config.channels() || data.imageSize() != config.imageSize()) {
            throw new IllegalArgumentException("the data is " + data.channels() + "x" + data.imageSize() + "x" + data.imageSize()
                    + ", the model needs " + config.channels() + "x" + config.imageSize() + "x" + config.imageSize());
        }
        if (config.isClassConditional() && !data.hasLabels()) {
            throw new IllegalArgumentException("a class-conditional model trains on labelled data, and " + data.description()
                    + " has no labels (an IDX label file beside IDX images, or a folder with one subfolder per class)");
        }
        if (config.isClassConditional() && data.classNames().size() > config.classes()) {
            throw new IllegalArgumentException("the data has " + data.classNames().size() + " classes, the model only " + config.classes());
        }
        if (options.checkpointDir() != null && options.rank() == 0) {
            // Only this checkpoint's own leftovers: a user's checkpoint folder may hold other files.
            List<Path> removed = AtomicFiles.removeStaleTemporaries(options.checkpointDir(),
                    options.checkpointPath().getFileName().toString());
            if (!removed.isEmpty()) {
                System.getLogger(Trainer.class.getName()).log(System.Logger.Level.INFO,
                        "removed the temporary files of an interrupted checkpoint: " + removed);
            }
        }
        Dataset.Split split = data.split(options.validationSplit(), options.seed());
        Dataset train = split.train();
        Batching batching = Batching.of(options, train.size());
        int batchSize = batching.globalBatch();
        int batchesPerEpoch = train.size() / batchSize;
        long totalSteps = options.steps() > 0 ? options.steps() : (long) options.epochs() * batchesPerEpoch;

        long step = ddim.trainingSteps();
        boolean writer = options.rank() == 0;
        Position start = Position.parse(ddim.withModel(TrainingCalls::checkpointUserState), train.size(), batchSize,
                options.worldSize());
        if (step == 0) {
            float[][] statistics = train.channelStatistics();
            ddim.setNormalizer(statistics[0], statistics[1]);
        }
        int epoch = start != null ? start.epoch() : (int) (step / batchesPerEpoch);
        int batch = start != null ? start.batch() : (int) (step % batchesPerEpoch);
        int epochsCompleted = 0;
        boolean cancelled = false;

        while (step < totalSteps && !cancelled) {
            int[] order = Dataset.shuffled(train.size(), options.seed() * 1_000_003L + epoch);
            long epochStart = System.nanoTime();
            double lossSum = 0;
            int stepsThisEpoch = 0;
            for (; batch < batchesPerEpoch && step < totalSteps; batch++) {
                int[] positions = batching.positions(order, batch, options.rank());
                float loss = step(train.batch(positions), config.isClassConditional() ? train.labels(positions) : null);
                step++;
                lossSum += loss;
                stepsThisEpoch++;
                listener.onStep(new TrainListener.StepEvent(step, epoch, batch, batchesPerEpoch, totalSteps, loss));
                cancelled = Thread.currentThread().isInterrupted() || listener.stopRequested() || ProcessExit.exiting();
                if (options.distributed() != null) {
                    boolean stop = cancelled;
                    // One rank asked to stop (Ctrl-C reaches them at different steps): all stop after this step.
                    cancelled = ddim.withModel(model -> TrainingCalls.anyRank(model, stop));
                }
                boolean due = options.checkpointEvery() > 0 && step % options.checkpointEvery() == 0;
                if ((due || cancelled) && options.checkpointDir() != null && writer) {
                    saveCheckpoint(new Position(epoch, batch + 1, train.size(), batchSize, options.worldSize()));
                }
                if (cancelled) {
                    batch++; // this batch is done: an epoch it completes still ends (validation, onEpoch) before the stop
                    break;
                }
            }
            if (batch >= batchesPerEpoch) {
                double seconds = (System.nanoTime() - epochStart) / 1e9;
                double[] validation = split.validation().size() > 0 ? validate(split.validation()) : new double[] {Double.NaN, Double.NaN};
                listener.onEpoch(new TrainListener.EpochSummary(epoch, step, stepsThisEpoch > 0 ? lossSum / stepsThisEpoch : Double.NaN,
                        validation[0], validation[1], stepsThisEpoch * (double) batchSize / Math.max(seconds, 1e-9), seconds));
                epochsCompleted++;
                epoch++;
                batch = 0;
            }
        }
        Path checkpoint = writer ? options.checkpointPath() : null;
        if (checkpoint != null && !cancelled) {
            saveCheckpoint(new Position(epoch, batch, train.size(), batchSize, options.worldSize()));
        }
        return new Result(step, epochsCompleted, cancelled, checkpoint);
    }

    /** The process group's collectives since joining (all zeros when training alone). */
    public CollectiveStats collectiveStats() {
        long[] stats = ddim.withModel(TrainingCalls::collectiveStats);
        return new CollectiveStats(stats[0], stats[1], java.time.Duration.ofNanos(stats[2]));
    }

    /** Collectives run (broadcasts at the start, gradient averages at every step), the bytes they moved per rank, and their time. */
    public record CollectiveStats(long calls, long bytes, java.time.Duration time) {}

    /**
     * How a step's global batch is shared: J = worldSize x accumulate micro-batches of {@code microBatch}
     * images; micro-batch j takes every J-th image of the step's slice of the epoch's permutation, from the j-th.
     */
    record Batching(int globalBatch, int microBatches, int accumulate) {
        static Batching of(TrainOptions options, int trainSize) {
            int microBatches = options.worldSize() * options.accumulate();
            int requested = Math.min(options.batchSize(), trainSize);
            int global = requested / microBatches * microBatches;
            if (global < microBatches) {
                throw new IllegalArgumentException("a batch of " + requested + " image(s) can't be shared by " + options.worldSize()
                        + " rank(s) x " + options.accumulate() + " micro-batch(es): use a batch of at least " + microBatches);
            }
            if (global != options.batchSize() && options.batchSize() <= trainSize) {
                System.getLogger(Trainer.class.getName()).log(System.Logger.Level.WARNING, "batch " + options.batchSize()
                        + " is not a multiple of " + microBatches + " micro-batches: training with a global batch of " + global);
            }
            return new Batching(global, microBatches, options.accumulate());
        }

        int microBatch() {
            return globalBatch / microBatches;
        }

        /** The positions in the permutation {@code order} that rank {@code rank} trains on in batch {@code batch}, its micro-batches in turn. */
        int[] positions(int[] order, int batch, int rank) {
            int micro = microBatch();
            int[] positions = new int[accumulate * micro];
            for (int k = 0; k < accumulate; k++) {
                int j = rank * accumulate + k;
                for (int i = 0; i < micro; i++) {
                    positions[k * micro + i] = order[batch * globalBatch + i * microBatches + j];
                }
            }
            return positions;
        }
    }

    private void saveCheckpoint(Position position) {
        saveCheckpoint(options.checkpointPath(), position.toJson());
    }

    private void saveCheckpoint(Path path, String userState) {
        ddim.withModel(model -> {
            TrainingCalls.saveCheckpoint(model, path, userState);
            return null;
        });
    }

    /** Where in the data a run stands: the next batch to train on, and how many ranks trained. Stored as JSON in checkpoints. */
    record Position(int epoch, int batch, int trainSize, int batchSize, int worldSize) {
        String toJson() {
            Map<String, Object> fields = new LinkedHashMap<>();
            fields.put("epoch", epoch);
            fields.put("batch", batch);
            fields.put("train_size", trainSize);
            fields.put("batch_size", batchSize);
            fields.put("world_size", worldSize);
            try {
                return JSON.std.asString(fields);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        /** The stored position, or null when there is none; a position from other data, batch size or world size is an error. */
        static Position parse(String json, int trainSize, int batchSize, int worldSize) {
            if (json == null || json.isBlank()) {
                return null;
            }
            Map<String, Object> fields;
            try {
                fields = JSON.std.mapFrom(json);
            } catch (IOException e) {
                throw new IllegalArgumentException("the checkpoint's data position is unreadable: " + e.getMessage());
            }
            Object ranks = fields.get("world_size"); // absent in checkpoints from before distributed training: one process
            Position position = new Position(((Number) fields.get("epoch")).intValue(), ((Number) fields.get("batch")).intValue(),
                    ((Number) fields.get("train_size")).intValue(), ((Number) fields.get("batch_size")).intValue(),
                    ranks == null ? 1 : ((Number) ranks).intValue());
            if (position.trainSize() != trainSize || position.batchSize() != batchSize) {
                throw new IllegalArgumentException("the checkpoint was trained on " + position.trainSize() + " images in batches of "
                        + position.batchSize() + "; resuming needs the same data and batch size (got " + trainSize + " and "
                        + batchSize + ")");
            }
            if (position.worldSize() != worldSize) {
                throw new IllegalArgumentException("the checkpoint was written by a run of " + position.worldSize()
                        + " process(es); resume it with the same number (got " + worldSize + ")");
            }
            return position;
        }
    }
}
