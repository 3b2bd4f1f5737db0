package org.ddim4j;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CancellationException;
import java.util.function.BooleanSupplier;

import org.ddim4j.ffi.ddim_h;
import org.ddim4j.ffi.ddim_image_id;
import org.ddim4j.ffi.ddim_progress_callback;
import org.ddim4j.ffi.ddim_sample_params;

/**
 * The plumbing of {@link Ddim}'s sampling family: the native parameters, the bridge from native
 * progress callbacks to a {@link SampleListener}, and the output buffer. One per {@code Ddim}; it
 * records which thread is running callbacks, so a listener that calls back in can be refused.
 */
final class SamplingCalls {
    /** One native call of the sampling family, given its arena, filled-in parameters and an output buffer of {@code floats} floats. */
    @FunctionalInterface
    interface Call {
        int run(Arena arena, MemorySegment params, MemorySegment out, long floats);
    }

    private final ModelConfig config;
    private final BooleanSupplier closing;
    private volatile Thread callbackThread;

    /** For a model of {@code config}; {@code closing} says the owning {@code Ddim} is being closed: a running call then cancels at its next step. */
    SamplingCalls(ModelConfig config, BooleanSupplier closing) {
        this.config = config;
        this.closing = closing;
    }

    /** Whether the current thread is inside a native call, running listener callbacks. */
    boolean onCallbackThread() {
        return callbackThread == Thread.currentThread();
    }

    /**
     * Runs {@code call} for {@code count} images with the options' parameters and listener, into a
     * buffer of {@code outputFloats} floats, and returns them. Cancellation (the listener, an
     * interrupt, close()) becomes {@link CancellationException}; a listener's exception is rethrown.
     */
    float[] run(SampleOptions options, int count, long outputFloats, Call call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment preview = options.previewEvery() == 0 ? MemorySegment.NULL
                    : arena.allocate(ValueLayout.JAVA_FLOAT, config.floatsFor(count));
            ProgressBridge progress = new ProgressBridge(options, count, closing, config, preview);
            MemorySegment params = params(arena, options, count, progress);
            if (options.previewEvery() > 0) {
                ddim_sample_params.preview(params, preview);
                ddim_sample_params.preview_count(params, preview.byteSize() / Float.BYTES);
                ddim_sample_params.preview_every(params, options.previewEvery());
            }
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, outputFloats);
            int status;
            callbackThread = Thread.currentThread();
            try (ProcessExit.Call tracked = ProcessExit.begin()) {
                status = call.run(arena, params, out, outputFloats);
            } finally {
                callbackThread = null;
            }
            progress.check(status);
            return out.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    /** The options' starting noise for a native call: NULL when the seed's noise is to be used. */
    static MemorySegment noiseArgument(Arena arena, SampleOptions options) {
        return options.noise() == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_FLOAT, options.noise().values());
    }

    static long noiseFloats(SampleOptions options) {
        return options.noise() == null ? 0 : options.noise().values().length;
    }

    /** The options for images {@code first} .. {@code first + count - 1} of a chunked run, progress counted over the whole run. */
    static SampleOptions chunk(SampleOptions options, int first, int count) {
        return options.toBuilder()
                .noise(options.noise() == null ? null : options.noise().slice(first, first + count))
                .count(count)
                .firstIndex(options.firstIndex() + first)
                .images(options.images() == null ? null : options.images().subList(first, first + count))
                .classes(options.classes().size() > 1 ? options.classes().subList(first, first + count) : options.classes())
                .listener(options.listener() == null ? null : offsetListener(options, first))
                .build();
    }

    private static SampleListener offsetListener(SampleOptions options, int first) {
        SampleListener listener = options.listener();
        int batchSize = options.batchSize();
        long before = (long) (first / batchSize) * options.steps();
        long total = (long) ((options.count() + batchSize - 1) / batchSize) * options.steps();
        return new SampleListener() {
            @Override
            public void onStep(SampleListener.SampleProgress p) {
                listener.onStep(new SampleListener.SampleProgress(p.step(), p.steps(), first + p.firstImage(), p.images(),
                        before + p.stepsDone(), total, p.preview()));
            }

            @Override
            public boolean stopRequested() {
                return listener.stopRequested();
            }
        };
    }

    private static MemorySegment params(Arena arena, SampleOptions options, int count, ProgressBridge progress) {
        MemorySegment params = ddim_sample_params.allocate(arena);
        ddim_h.ddim_sample_params_init(params);
        ddim_sample_params.count(params, count);
        ddim_sample_params.steps(params, options.steps());
        ddim_sample_params.seed(params, options.seed());
        ddim_sample_params.use_ema(params, options.useEma() ? 1 : 0);
        ddim_sample_params.sampler(params, switch (options.sampler()) {
            case DDIM -> ddim_h.DDIM_SAMPLER_DDIM();
            case DDPM -> ddim_h.DDIM_SAMPLER_DDPM();
            case DPM_SOLVER_PP_2M -> ddim_h.DDIM_SAMPLER_DPM_SOLVER_PP_2M();
        });
        ddim_sample_params.eta(params, options.eta());
        ddim_sample_params.first_index(params, options.firstIndex());
        ddim_sample_params.batch_size(params, options.batchSize());
        ddim_sample_params.micro_batch(params, options.microBatch());
        ddim_sample_params.precision(params, options.precision() == Precision.BFLOAT16
                ? ddim_h.DDIM_PRECISION_BFLOAT16() : ddim_h.DDIM_PRECISION_FLOAT32());
        ddim_sample_params.network(params, switch (options.network()) {
            case EAGER -> ddim_h.DDIM_NETWORK_EAGER();
            case FUSED -> ddim_h.DDIM_NETWORK_FUSED();
            case AUTO -> ddim_h.DDIM_NETWORK_AUTO();
        });
        if (options.network() == Network.AUTO && options.precision() == Precision.BFLOAT16) {
            Ddim.noteBfloat16Fallback();
        }
        ddim_sample_params.progress(params, progress.callback(arena));
        ddim_sample_params.guidance(params, options.guidance());
        if (options.images() != null) {
            MemorySegment ids = ddim_image_id.allocateArray(count, arena);
            for (int i = 0; i < count; i++) {
                MemorySegment id = ddim_image_id.asSlice(ids, i);
                ddim_image_id.seed(id, options.images().get(i).seed());
                ddim_image_id.index(id, options.images().get(i).index());
            }
            ddim_sample_params.images(params, ids);
            ddim_sample_params.image_count(params, count);
        }
        if (!options.classes().isEmpty()) {
            int[] classes = options.classes().stream().mapToInt(Integer::intValue).toArray();
            ddim_sample_params.classes(params, arena.allocateFrom(ValueLayout.JAVA_INT, classes));
            ddim_sample_params.class_count(params, classes.length);
        }
        return params;
    }

    /** Turns native progress callbacks into listener calls, and a listener's stop, an interrupt or its exception into a cancel. */
    private static final class ProgressBridge {
        private final SampleListener listener;
        private final int steps;
        private final int batchSize;
        private final long totalSteps;
        private final BooleanSupplier closing;
        private final int previewEvery;
        private final ModelConfig config;
        private final MemorySegment preview;
        private Throwable failure;

        /**
         * For one native call over {@code images} images of {@code config}; {@code closing} says the Ddim is being
         * closed; {@code preview} is the call's preview buffer (NULL without previews).
         */
        ProgressBridge(SampleOptions options, int images, BooleanSupplier closing, ModelConfig config, MemorySegment preview) {
            this.closing = closing;
            this.previewEvery = options.previewEvery();
            this.config = config;
            this.preview = preview;
            this.listener = options.listener();
            this.steps = options.steps();
            this.batchSize = options.batchSize();
            this.totalSteps = (long) ((images + batchSize - 1) / batchSize) * steps;
        }

        /** Always a callback, even without a listener: close() from another thread cancels through it. */
        MemorySegment callback(Arena arena) {
            return ddim_progress_callback.allocate(this::onStep, arena);
        }

        private int onStep(MemorySegment userData, int step, int stepsPerChunk, long firstImage, int images) {
            if (closing.getAsBoolean() || ProcessExit.exiting()) {
                return 1;
            }
            if (listener == null) {
                return 0;
            }
            try {
                long done = firstImage / batchSize * steps + step;
                listener.onStep(new SampleListener.SampleProgress(step, stepsPerChunk, firstImage, images, done, totalSteps,
                        preview(step, stepsPerChunk, firstImage, images)));
                return listener.stopRequested() || Thread.currentThread().isInterrupted() ? 1 : 0;
            } catch (Throwable t) { // an exception must not unwind into native code: cancel and rethrow it later
                failure = t;
                return 1;
            }
        }

        /** The chunk's images from the preview buffer when the native side wrote them after this step, else null. */
        private ImageBatch preview(int step, int stepsPerChunk, long firstImage, int images) {
            if (previewEvery == 0 || (step % previewEvery != 0 && step != stepsPerChunk)) {
                return null;
            }
            long perImage = config.floatsFor(1);
            float[] pixels = preview.asSlice(firstImage * perImage * Float.BYTES, images * perImage * Float.BYTES)
                    .toArray(ValueLayout.JAVA_FLOAT);
            return new ImageBatch(images, config.channels(), config.imageSize(), config.imageSize(), pixels);
        }

        void check(int status) {
            if (status == ddim_h.DDIM_ERR_CANCELLED()) {
                if (failure instanceof RuntimeException e) {
                    throw e;
                }
                if (failure instanceof Error e) {
                    throw e;
                }
                if (failure != null) {
                    throw new IllegalStateException("the sample listener failed: " + failure, failure);
                }
                if (closing.getAsBoolean()) {
                    throw new CancellationException("cancelled: the Ddim was closed while sampling ("
                            + ddim_h.ddim_last_error().getString(0) + ")");
                }
                if (ProcessExit.exiting()) {
                    throw new CancellationException("cancelled: the JVM is exiting (" + ddim_h.ddim_last_error().getString(0) + ")");
                }
                throw new CancellationException(ddim_h.ddim_last_error().getString(0));
            }
            Native.check(status);
        }
    }
}
