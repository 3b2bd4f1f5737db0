package org.ddim4j;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

import org.ddim4j.ffi.ddim_distributed_params;
import org.ddim4j.ffi.ddim_distributed_stats;
import org.ddim4j.ffi.ddim_h;
import org.ddim4j.ffi.ddim_train_params;

/**
 * The native calls behind {@link Trainer}, on a model handle the caller holds through
 * {@link Ddim#withModel} (open, locked).
 */
final class TrainingCalls {
    private TrainingCalls() {}

    /** Starts (or, on a checkpoint, continues) training with the options' optimiser, loss and seed. */
    static void begin(MemorySegment model, TrainOptions options) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = ddim_train_params.allocate(arena);
            ddim_h.ddim_train_params_init(params);
            ddim_train_params.learning_rate(params, options.learningRate());
            ddim_train_params.weight_decay(params, options.weightDecay());
            ddim_train_params.ema_decay(params, options.emaDecay());
            ddim_train_params.loss(params, options.loss() == Loss.MAE ? ddim_h.DDIM_LOSS_MAE() : ddim_h.DDIM_LOSS_MSE());
            ddim_train_params.seed(params, options.seed());
            ddim_train_params.accumulate(params, options.accumulate());
            ddim_train_params.label_dropout(params, options.labelDropout());
            Native.check(ddim_h.ddim_train_begin(model, params));
        }
    }

    /** Joins the options' process group (blocking until every rank has joined) and takes rank 0's state. */
    static void join(MemorySegment model, Distributed distributed) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = ddim_distributed_params.allocate(arena);
            ddim_h.ddim_distributed_params_init(params);
            ddim_distributed_params.rank(params, distributed.rank());
            ddim_distributed_params.world_size(params, distributed.worldSize());
            ddim_distributed_params.master_addr(params, arena.allocateFrom(distributed.masterAddr()));
            ddim_distributed_params.master_port(params, distributed.masterPort());
            ddim_distributed_params.timeout_ms(params, (int) Math.min(Integer.MAX_VALUE, distributed.timeout().toMillis()));
            Native.check(ddim_h.ddim_train_join(model, params));
        }
    }

    /** True on every rank when {@code flag} is true on any (training alone: {@code flag}). */
    static boolean anyRank(MemorySegment model, boolean flag) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment any = arena.allocate(ValueLayout.JAVA_INT);
            Native.check(ddim_h.ddim_train_any_rank(model, flag ? 1 : 0, any));
            return any.get(ValueLayout.JAVA_INT, 0) != 0;
        }
    }

    /** The process group's collectives so far: {@code [0]} calls, {@code [1]} bytes, {@code [2]} nanoseconds. */
    static long[] collectiveStats(MemorySegment model) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment stats = ddim_distributed_stats.allocate(arena);
            Native.check(ddim_h.ddim_distributed_stats_get(model, stats));
            return new long[] {ddim_distributed_stats.calls(stats), ddim_distributed_stats.bytes(stats),
                    (long) (ddim_distributed_stats.seconds(stats) * 1e9)};
        }
    }

    /**
     * One optimisation step on NCHW pixels in [0, 1] of models shaped by {@code config}, with one class per image for
     * class-conditional models ({@code labels}; null for unconditional ones); returns the batch loss.
     */
    static float step(MemorySegment model, ModelConfig config, float[] pixels, int[] labels) {
        int count = config.imageCount(pixels);
        Ddim.requireUnitRange(pixels, "pixels");
        requireLabels(config, labels, count);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment loss = arena.allocate(ValueLayout.JAVA_FLOAT);
            MemorySegment images = arena.allocateFrom(ValueLayout.JAVA_FLOAT, pixels);
            Native.check(labels == null
                    ? ddim_h.ddim_train_step(model, images, count, pixels.length, loss)
                    : ddim_h.ddim_train_step_labeled(model, images, count, pixels.length, arena.allocateFrom(ValueLayout.JAVA_INT, labels),
                            labels.length, loss));
            return loss.get(ValueLayout.JAVA_FLOAT, 0);
        }
    }

    /** Class models need a class per image (0 .. classes, classes meaning "no class"); unconditional ones take none. */
    static void requireLabels(ModelConfig config, int[] labels, int count) {
        if (!config.isClassConditional()) {
            if (labels != null) {
                throw new IllegalArgumentException("this model is unconditional: it takes no labels");
            }
            return;
        }
        if (labels == null) {
            throw new IllegalArgumentException("this class-conditional model (" + config.classes() + " classes) needs a label per image");
        }
        if (labels.length != count) {
            throw new IllegalArgumentException(labels.length + " labels for " + count + " images");
        }
    }

    /** Writes a checkpoint atomically, with {@code userState} (the data position) in its metadata. */
    static void saveCheckpoint(MemorySegment model, Path path, String userState) {
        Path target = Ddim.createParent(path);
        try (Arena arena = Arena.ofConfined()) {
            Native.check(ddim_h.ddim_checkpoint_save(model, arena.allocateFrom(target.toString()), arena.allocateFrom(userState)));
        }
    }

    /** The user state stored with the checkpoint the model was opened from ("" otherwise). */
    static String checkpointUserState(MemorySegment model) {
        return nativeString((buffer, capacity, length) -> ddim_h.ddim_checkpoint_user_state(model, buffer, capacity, length));
    }

    /** The model's class names, '\n'-separated ("" when it has none). */
    static String classNames(MemorySegment model) {
        return nativeString((buffer, capacity, length) -> ddim_h.ddim_model_class_names(model, buffer, capacity, length));
    }

    /** A native call that copies a string: asked first for its length (capacity 0), then for the string. */
    private interface StringCall {
        int call(MemorySegment buffer, long capacity, MemorySegment length);
    }

    private static String nativeString(StringCall call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment length = arena.allocate(ValueLayout.JAVA_LONG);
            Native.check(call.call(MemorySegment.NULL, 0, length));
            long size = length.get(ValueLayout.JAVA_LONG, 0);
            MemorySegment buffer = arena.allocate(size + 1);
            Native.check(call.call(buffer, size + 1, length));
            return buffer.getString(0);
        }
    }
}
