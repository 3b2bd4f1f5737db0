package org.ddim4j;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.ref.Cleaner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.function.BooleanSupplier;

import org.ddim4j.ffi.ddim_config;
import org.ddim4j.ffi.ddim_h;
import org.ddim4j.ffi.ddim_progress_callback;
import org.ddim4j.ffi.ddim_sample_params;
import org.ddim4j.ffi.ddim_train_params;

/**
 * A DDIM model in the native core: open one from a file or create one from a config, then sample.
 *
 * <pre>{@code
 * try (Ddim ddim = Ddim.open(Path.of("model.safetensors"))) {
 *     ImageBatch images = ddim.sample(SampleOptions.builder().count(16).steps(20).seed(42).build());
 *     images.writeGrid(Path.of("grid.png"), 4);
 * }
 * }</pre>
 *
 * <p>Each {@code Ddim} owns one native model handle and frees it on {@link #close()} (or, as a last
 * resort, when it becomes unreachable). Methods are thread-safe: calls on one instance take turns.
 * {@code close()} from another thread cancels a running sampling call at its next step and waits
 * for it (the call throws {@link CancellationException}), so memory is never freed under a running
 * call. After {@code close()}, every method but {@code close()} throws {@link IllegalStateException},
 * and so does a {@link SampleListener} that calls back into the {@code Ddim} whose call is running
 * it. Native failures throw {@link DdimException}.
 */
public final class Ddim implements AutoCloseable {
    private static final Cleaner CLEANER = Cleaner.create();

    /** Owns the native handle; runs at most once, from close() or from the cleaner. */
    private static final class Handle implements Runnable {
        private final MemorySegment model;

        Handle(MemorySegment model) {
            this.model = model;
        }

        @Override
        public void run() {
            ddim_h.ddim_model_free(model);
        }
    }

    private final MemorySegment model;
    private final Cleaner.Cleanable cleanable;
    private final ModelConfig config;
    private final Device device;
    private volatile boolean closed;
    /** Set by close() before it waits for the lock: a running sampling call cancels at its next step. */
    private volatile boolean closing;
    /** The thread inside a native call that runs listener callbacks, so a listener calling back in is refused. */
    private volatile Thread callbackThread;

    private Ddim(MemorySegment model) {
        this.model = model;
        this.cleanable = CLEANER.register(this, new Handle(model));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment nativeConfig = ddim_config.allocate(arena);
            Native.check(ddim_h.ddim_model_config(model, nativeConfig));
            this.config = ModelConfig.fromNative(nativeConfig);
            MemorySegment deviceCode = arena.allocate(ValueLayout.JAVA_INT);
            Native.check(ddim_h.ddim_model_device(model, deviceCode));
            this.device = Device.fromCode(deviceCode.get(ValueLayout.JAVA_INT, 0));
        } catch (RuntimeException e) {
            cleanable.clean();
            throw e;
        }
    }

    /** Opens a model file on {@link Device#auto()}. */
    public static Ddim open(Path model) {
        return open(model, Device.auto());
    }

    /** Opens a model file (safetensors) on {@code device}. Bad files throw {@link DdimException} with {@link Status#FORMAT} or {@link Status#IO}. */
    public static Ddim open(Path model, Device device) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(device, "device");
        NativeLibrary.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            Native.check(ddim_h.ddim_model_load(arena.allocateFrom(model.toAbsolutePath().toString()), device.code(), out));
            return new Ddim(out.get(ValueLayout.ADDRESS, 0));
        }
    }

    /** Creates an untrained model with weights drawn from seed 0. */
    public static Ddim create(ModelConfig config, Device device) {
        return create(config, device, 0);
    }

    /** Creates an untrained model; the same seed gives the same weights on every device. */
    public static Ddim create(ModelConfig config, Device device, long seed) {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(device, "device");
        NativeLibrary.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            Native.check(ddim_h.ddim_model_create(config.toNative(arena), device.code(), seed, out));
            return new Ddim(out.get(ValueLayout.ADDRESS, 0));
        }
    }

    /**
     * Generates {@code options.count()} images with the options' sampler (deterministic DDIM by
     * default); the same options on the same device give bit-identical pixels, and image i is the
     * same whatever the count or batch size. The batch carries the noise each image started from.
     * A listener may cancel: then {@link CancellationException} is thrown.
     */
    public synchronized ImageBatch sample(SampleOptions options) {
        Objects.requireNonNull(options, "options");
        ensureOpen();
        requireNoiseShape(options.noise());
        float[] pixels = runSampling(options, options.count(), (arena, params, out, floats) ->
                ddim_h.ddim_sample(model, params, noiseArgument(arena, options), noiseFloats(options), out, floats));
        Noise start = options.noise() != null ? options.noise() : noise(options.seed(), options.firstIndex(), options.count());
        return imagesFrom(pixels, options.count()).withStartingNoise(start);
    }

    /**
     * Generates {@code options.count()} images in chunks of {@code options.batchSize()} and hands each
     * chunk to {@code sink} as soon as it is done, so memory stays bounded by one chunk (e.g.
     * {@link ImageSink#pngFiles} for thousands of images). The images are the ones
     * {@link #sample(SampleOptions)} would return. A failing sink stops the run with an
     * {@link UncheckedIOException}; chunks already delivered stay delivered.
     */
    public synchronized void sample(SampleOptions options, ImageSink sink) {
        Objects.requireNonNull(options, "options");
        Objects.requireNonNull(sink, "sink");
        ensureOpen();
        for (int first = 0; first < options.count(); first += options.batchSize()) {
            int n = Math.min(options.batchSize(), options.count() - first);
            SampleOptions chunk = options.toBuilder()
                    .noise(options.noise() == null ? null : options.noise().slice(first, first + n))
                    .count(n)
                    .firstIndex(options.firstIndex() + first)
                    .listener(options.listener() == null ? null : offsetListener(options, first))
                    .build();
            ImageBatch images = sample(chunk);
            try {
                sink.accept(options.firstIndex() + first, images);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot store images " + (options.firstIndex() + first) + " to "
                        + (options.firstIndex() + first + n - 1) + ": " + e.getMessage(), e);
            }
        }
    }

    /** The starting noise of images firstIndex .. firstIndex + count - 1 of {@code seed}, the same on every device. */
    public synchronized Noise noise(long seed, long firstIndex, int count) {
        ensureOpen();
        if (count < 1 || firstIndex < 0 || firstIndex > SampleOptions.MAX_FIRST_INDEX) {
            throw new IllegalArgumentException("count must be >= 1 and firstIndex in [0, 2^62], got " + count + " and " + firstIndex);
        }
        long floats = floatsFor(count);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, floats);
            Native.check(ddim_h.ddim_initial_noise(model, seed, firstIndex, count, out, floats));
            return new Noise(count, config.channels(), config.imageSize(), config.imageSize(), out.toArray(ValueLayout.JAVA_FLOAT));
        }
    }

    /**
     * DDIM inversion with {@code steps} network evaluations: the noise from which deterministic DDIM
     * with the same steps regenerates {@code images}. The reconstruction error shrinks as steps grow.
     */
    public Noise invert(ImageBatch images, int steps) {
        return invert(images, SampleOptions.builder().steps(steps).build());
    }

    /**
     * DDIM inversion using the options' steps, EMA choice, batch and micro-batch sizes and listener;
     * inversion is always deterministic DDIM, so the sampler must be DDIM with eta 0.
     */
    public synchronized Noise invert(ImageBatch images, SampleOptions options) {
        Objects.requireNonNull(options, "options");
        ensureOpen();
        float[] pixels = requireImages(images, "images");
        if (options.sampler() != Sampler.DDIM || options.eta() != 0) {
            throw new IllegalArgumentException("inversion runs deterministic DDIM; got sampler " + options.sampler() + " with eta " + options.eta());
        }
        float[] noise = runSampling(options, images.count(), (arena, params, out, floats) ->
                ddim_h.ddim_invert(model, params, arena.allocateFrom(ValueLayout.JAVA_FLOAT, pixels), floats, out, floats));
        return new Noise(images.count(), config.channels(), config.imageSize(), config.imageSize(), noise);
    }

    /**
     * Variations (SDEdit): noises each image to t = {@code strength} (0 < strength <= 1) with its
     * seed's noise (image i: (seed, firstIndex + i)), then denoises with the options' sampler in
     * {@code steps} evaluations. Small strengths stay close to the input. To vary one image several
     * ways, pass {@code image.repeat(n)}.
     */
    public synchronized ImageBatch vary(ImageBatch images, double strength, SampleOptions options) {
        Objects.requireNonNull(options, "options");
        ensureOpen();
        float[] pixels = requireImages(images, "images");
        if (!(strength > 0 && strength <= 1)) {
            throw new IllegalArgumentException("strength must lie in (0, 1], got " + strength);
        }
        return imagesFrom(runSampling(options, images.count(), (arena, params, out, floats) ->
                ddim_h.ddim_vary(model, params, strength, arena.allocateFrom(ValueLayout.JAVA_FLOAT, pixels), floats, out, floats)),
                images.count());
    }

    /**
     * Inpainting: generates where {@code mask} is 1 and keeps {@code images} where it is 0. The mask
     * is a one-channel batch of the model's size holding one mask for all images or one per image,
     * values in [0, 1]. The kept region matches the input to within the model's denoising error;
     * image i's generated content follows (seed, firstIndex + i).
     */
    public synchronized ImageBatch inpaint(ImageBatch images, ImageBatch mask, SampleOptions options) {
        Objects.requireNonNull(options, "options");
        Objects.requireNonNull(mask, "mask");
        ensureOpen();
        float[] pixels = requireImages(images, "images");
        if (mask.channels() != 1 || mask.height() != config.imageSize() || mask.width() != config.imageSize()
                || (mask.count() != 1 && mask.count() != images.count())) {
            throw new IllegalArgumentException("the mask must be 1 or " + images.count() + " one-channel " + config.imageSize() + "x"
                    + config.imageSize() + " image(s), got " + mask.count() + "x" + mask.channels() + "x" + mask.height() + "x"
                    + mask.width());
        }
        float[] maskValues = mask.pixels();
        requireUnitRange(maskValues, "mask");
        return imagesFrom(runSampling(options, images.count(), (arena, params, out, floats) ->
                ddim_h.ddim_inpaint(model, params, arena.allocateFrom(ValueLayout.JAVA_FLOAT, pixels), floats,
                        arena.allocateFrom(ValueLayout.JAVA_FLOAT, maskValues), maskValues.length, out, floats)),
                images.count());
    }

    /**
     * A strip of {@code frames} images between two single-image noises, by spherical interpolation
     * of the noise ({@link Noise#slerp}); the ends are the images the two noises generate. Uses the
     * options' steps, sampler and sizes; count and noise are taken from the strip.
     */
    public ImageBatch interpolate(Noise from, Noise to, int frames, SampleOptions options) {
        Objects.requireNonNull(options, "options");
        Noise strip = Noise.slerpStrip(from, to, frames);
        return sample(options.toBuilder().noise(strip).build());
    }

    /**
     * Samples as {@link #sample(SampleOptions)} does and also returns the states the sampler passes
     * through, as images: element i holds image i's {@code steps + 1} frames, frame k < steps the
     * state at t = 1 - k/steps before network evaluation k (frame 0: the starting noise), the last
     * frame the sampled image. States are shown as pixels: denormalised and clipped to [0, 1].
     */
    public synchronized List<ImageBatch> trajectories(SampleOptions options) {
        Objects.requireNonNull(options, "options");
        ensureOpen();
        requireNoiseShape(options.noise());
        int frames = options.steps() + 1;
        int images = Math.multiplyExact(options.count(), frames);
        float[] pixels = runSampling(options, options.count(), images, (arena, params, out, floats) ->
                ddim_h.ddim_sample_trajectory(model, params, noiseArgument(arena, options), noiseFloats(options), out, floats));
        ImageBatch all = imagesFrom(pixels, images);
        List<ImageBatch> result = new ArrayList<>(options.count());
        for (int i = 0; i < options.count(); i++) {
            result.add(all.slice(i * frames, (i + 1) * frames));
        }
        return result;
    }

    // ---- sampling plumbing ----

    /** One call of the sampling family, given its arena, filled-in parameters and an output buffer of {@code floats} floats. */
    @FunctionalInterface
    private interface SamplingCall {
        int run(Arena arena, MemorySegment params, MemorySegment out, long floats);
    }

    /** Runs {@code call} over {@code count} images with the options' parameters and listener; returns the output floats. */
    private float[] runSampling(SampleOptions options, int count, SamplingCall call) {
        return runSampling(options, count, count, call);
    }

    /** As above, for a call that writes {@code outputImages} images (e.g. a trajectory's frames). */
    private float[] runSampling(SampleOptions options, int count, int outputImages, SamplingCall call) {
        long floats = floatsFor(outputImages);
        ProgressBridge progress = new ProgressBridge(options, count, () -> closing);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = sampleParams(arena, options, count, progress);
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, floats);
            int status;
            callbackThread = Thread.currentThread();
            try {
                status = call.run(arena, params, out, floats);
            } finally {
                callbackThread = null;
            }
            progress.check(status);
            return out.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    /** The options' starting noise for a native call: NULL when the seed's noise is to be used. */
    private static MemorySegment noiseArgument(Arena arena, SampleOptions options) {
        return options.noise() == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_FLOAT, options.noise().values());
    }

    private static long noiseFloats(SampleOptions options) {
        return options.noise() == null ? 0 : options.noise().values().length;
    }

    /** Turns native progress callbacks into listener calls, and a listener's stop, an interrupt or its exception into a cancel. */
    private static final class ProgressBridge {
        private final SampleListener listener;
        private final int steps;
        private final int batchSize;
        private final long totalSteps;
        private final BooleanSupplier closing;
        private Throwable failure;

        /** For one native call over {@code images} images; {@code closing} says the Ddim is being closed. */
        ProgressBridge(SampleOptions options, int images, BooleanSupplier closing) {
            this.closing = closing;
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
            if (closing.getAsBoolean()) {
                return 1;
            }
            if (listener == null) {
                return 0;
            }
            try {
                long done = firstImage / batchSize * steps + step;
                listener.onStep(new SampleListener.SampleProgress(step, stepsPerChunk, firstImage, images, done, totalSteps));
                return listener.stopRequested() || Thread.currentThread().isInterrupted() ? 1 : 0;
            } catch (Throwable t) { // an exception must not unwind into native code: cancel and rethrow it later
                failure = t;
                return 1;
            }
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
                throw new CancellationException(ddim_h.ddim_last_error().getString(0));
            }
            Native.check(status);
        }
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
                        before + p.stepsDone(), total));
            }

            @Override
            public boolean stopRequested() {
                return listener.stopRequested();
            }
        };
    }

    private MemorySegment sampleParams(Arena arena, SampleOptions options, int count, ProgressBridge progress) {
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
        ddim_sample_params.progress(params, progress.callback(arena));
        return params;
    }

    private long floatsFor(int count) {
        long floats = (long) count * config.pixelsPerImage();
        if (floats > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(count + " images of " + config.pixelsPerImage()
                    + " floats do not fit one Java array; use sample(options, sink) or fewer images at a time");
        }
        return floats;
    }

    private ImageBatch imagesFrom(float[] pixels, int count) {
        return new ImageBatch(count, config.channels(), config.imageSize(), config.imageSize(), pixels);
    }

    private void requireNoiseShape(Noise noise) {
        if (noise != null && (noise.channels() != config.channels() || noise.height() != config.imageSize()
                || noise.width() != config.imageSize())) {
            throw new IllegalArgumentException("this model samples " + config.channels() + "x" + config.imageSize() + "x"
                    + config.imageSize() + " images, but the noise is " + noise);
        }
    }

    /** Checks {@code images} against the model and returns a copy of their pixels (one copy, reused for the call). */
    private float[] requireImages(ImageBatch images, String name) {
        Objects.requireNonNull(images, name);
        if (images.count() < 1 || images.channels() != config.channels() || images.height() != config.imageSize()
                || images.width() != config.imageSize()) {
            throw new IllegalArgumentException(name + " must be " + config.channels() + "x" + config.imageSize() + "x"
                    + config.imageSize() + " images for this model, got " + images.count() + "x" + images.channels() + "x"
                    + images.height() + "x" + images.width());
        }
        float[] pixels = images.pixels();
        requireUnitRange(pixels, name);
        return pixels;
    }

    private static void requireUnitRange(float[] values, String name) {
        for (int i = 0; i < values.length; i++) {
            if (!(values[i] >= 0 && values[i] <= 1)) {
                throw new IllegalArgumentException(name + " value " + i + " is " + values[i] + "; values must lie in [0, 1]");
            }
        }
    }

    /**
     * Writes the model to {@code path} (safetensors), creating missing parent directories. Atomic: a
     * failed save never replaces a good file.
     */
    public synchronized void save(Path path) {
        Objects.requireNonNull(path, "path");
        ensureOpen();
        Path target = createParent(path);
        try (Arena arena = Arena.ofConfined()) {
            Native.check(ddim_h.ddim_model_save(model, arena.allocateFrom(target.toString())));
        }
    }

    public synchronized ModelConfig config() {
        ensureOpen();
        return config;
    }

    /** Trainable parameters (3,562,211 for the reference configuration). */
    public synchronized long parameterCount() {
        ensureOpen();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(ValueLayout.JAVA_LONG);
            Native.check(ddim_h.ddim_model_parameter_count(model, count));
            return count.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    /** The device the model lives on ({@link Device#auto()} resolved). */
    public synchronized Device device() {
        ensureOpen();
        return device;
    }

    /** Whether the model holds EMA weights (written by training). */
    public synchronized boolean hasEma() {
        ensureOpen();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment flag = arena.allocate(ValueLayout.JAVA_INT);
            Native.check(ddim_h.ddim_model_has_ema(model, flag));
            return flag.get(ValueLayout.JAVA_INT, 0) != 0;
        }
    }

    /** The per-channel normaliser: {@code [0]} the means, {@code [1]} the standard deviations. */
    public synchronized float[][] normalizer() {
        ensureOpen();
        int channels = config.channels();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment mean = arena.allocate(ValueLayout.JAVA_FLOAT, channels);
            MemorySegment std = arena.allocate(ValueLayout.JAVA_FLOAT, channels);
            Native.check(ddim_h.ddim_model_normalizer(model, mean, std, channels));
            return new float[][] {mean.toArray(ValueLayout.JAVA_FLOAT), std.toArray(ValueLayout.JAVA_FLOAT)};
        }
    }

    /** Sets the per-channel normaliser (the network sees (pixel - mean) / std); one finite value per channel, std > 0. */
    public synchronized void setNormalizer(float[] mean, float[] std) {
        Objects.requireNonNull(mean, "mean");
        Objects.requireNonNull(std, "std");
        ensureOpen();
        if (mean.length != config.channels() || std.length != config.channels()) {
            throw new IllegalArgumentException("the normaliser needs " + config.channels() + " values per array, got "
                    + mean.length + " and " + std.length);
        }
        for (int c = 0; c < std.length; c++) {
            if (!Float.isFinite(mean[c]) || !Float.isFinite(std[c]) || !(std[c] > 0)) {
                throw new IllegalArgumentException("normaliser channel " + c + " must have a finite mean and a finite std > 0, got "
                        + mean[c] + " and " + std[c]);
            }
        }
        try (Arena arena = Arena.ofConfined()) {
            Native.check(ddim_h.ddim_model_set_normalizer(model, arena.allocateFrom(ValueLayout.JAVA_FLOAT, mean),
                    arena.allocateFrom(ValueLayout.JAVA_FLOAT, std), config.channels()));
        }
    }

    /**
     * A trainer for this model. When the model was opened from a checkpoint, training continues from
     * it (optimizer state, step count, position in the data); with the checkpoint's own options the
     * continuation is bit-exact on the CPU.
     */
    public synchronized Trainer trainer(TrainOptions options) {
        Objects.requireNonNull(options, "options");
        ensureOpen();
        return new Trainer(this, options);
    }

    /**
     * Writes a model file for sampling: with {@code emaWeights} the EMA weights (when present) become
     * the only weights; with {@code halfPrecision} they are stored as float16 (half the size). Atomic.
     */
    public synchronized void export(Path path, boolean emaWeights, boolean halfPrecision) {
        Objects.requireNonNull(path, "path");
        ensureOpen();
        Path target = createParent(path);
        int flags = (emaWeights ? ddim_h.DDIM_EXPORT_EMA_WEIGHTS() : 0) | (halfPrecision ? ddim_h.DDIM_EXPORT_HALF() : 0);
        try (Arena arena = Arena.ofConfined()) {
            Native.check(ddim_h.ddim_model_export(model, arena.allocateFrom(target.toString()), flags));
        }
    }

    /**
     * Validation losses: {@code [0]} MAE of the predicted noise, {@code [1]} of the predicted image, at t and noise drawn
     * from {@code seed}. Pixels must lie in [0, 1].
     */
    public synchronized float[] evaluate(float[] pixels, long seed, boolean useEma) {
        ensureOpen();
        int count = imageCount(pixels);
        requireUnitRange(pixels, "pixels");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment noiseLoss = arena.allocate(ValueLayout.JAVA_FLOAT);
            MemorySegment imageLoss = arena.allocate(ValueLayout.JAVA_FLOAT);
            Native.check(ddim_h.ddim_evaluate(model, arena.allocateFrom(ValueLayout.JAVA_FLOAT, pixels), count, pixels.length,
                    seed, useEma ? 1 : 0, noiseLoss, imageLoss));
            return new float[] {noiseLoss.get(ValueLayout.JAVA_FLOAT, 0), imageLoss.get(ValueLayout.JAVA_FLOAT, 0)};
        }
    }

    // ---- training plumbing, used by Trainer ----

    synchronized void beginTraining(TrainOptions options) {
        ensureOpen();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = ddim_train_params.allocate(arena);
            ddim_h.ddim_train_params_init(params);
            ddim_train_params.learning_rate(params, options.learningRate());
            ddim_train_params.weight_decay(params, options.weightDecay());
            ddim_train_params.ema_decay(params, options.emaDecay());
            ddim_train_params.loss(params, options.loss() == Loss.MAE ? ddim_h.DDIM_LOSS_MAE() : ddim_h.DDIM_LOSS_MSE());
            ddim_train_params.seed(params, options.seed());
            Native.check(ddim_h.ddim_train_begin(model, params));
        }
    }

    synchronized float trainStep(float[] pixels) {
        ensureOpen();
        int count = imageCount(pixels);
        requireUnitRange(pixels, "pixels");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment loss = arena.allocate(ValueLayout.JAVA_FLOAT);
            Native.check(ddim_h.ddim_train_step(model, arena.allocateFrom(ValueLayout.JAVA_FLOAT, pixels), count, pixels.length, loss));
            return loss.get(ValueLayout.JAVA_FLOAT, 0);
        }
    }

    /** Optimisation steps this model has taken (0 when it never trained). */
    public synchronized long trainingSteps() {
        ensureOpen();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment steps = arena.allocate(ValueLayout.JAVA_LONG);
            Native.check(ddim_h.ddim_train_state(model, MemorySegment.NULL, MemorySegment.NULL, steps));
            return steps.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    synchronized void saveCheckpoint(Path path, String userState) {
        ensureOpen();
        Path target = createParent(path);
        try (Arena arena = Arena.ofConfined()) {
            Native.check(ddim_h.ddim_checkpoint_save(model, arena.allocateFrom(target.toString()), arena.allocateFrom(userState)));
        }
    }

    /** The opaque state stored with the checkpoint this model was opened from ("" otherwise). */
    synchronized String checkpointUserState() {
        ensureOpen();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment length = arena.allocate(ValueLayout.JAVA_LONG);
            Native.check(ddim_h.ddim_checkpoint_user_state(model, MemorySegment.NULL, 0, length));
            long size = length.get(ValueLayout.JAVA_LONG, 0);
            MemorySegment buffer = arena.allocate(size + 1);
            Native.check(ddim_h.ddim_checkpoint_user_state(model, buffer, size + 1, length));
            return buffer.getString(0);
        }
    }

    private int imageCount(float[] pixels) {
        Objects.requireNonNull(pixels, "pixels");
        int perImage = config.pixelsPerImage();
        if (pixels.length == 0 || pixels.length % perImage != 0) {
            throw new IllegalArgumentException("pixels must hold a whole, non-zero number of " + config.channels() + "x"
                    + config.imageSize() + "x" + config.imageSize() + " images (" + perImage + " floats each), got "
                    + pixels.length + " floats");
        }
        return pixels.length / perImage;
    }

    private static Path createParent(Path path) {
        Path target = path.toAbsolutePath();
        try {
            Files.createDirectories(target.getParent());
        } catch (IOException e) {
            throw new DdimException(Status.IO, "cannot create the directory of " + target + ": " + e.getMessage(), e);
        }
        return target;
    }

    /**
     * Frees the native model. Idempotent. From another thread during a sampling call, cancels the call
     * at its next step and waits for it; during a training step, waits for the step. A listener must
     * not close the {@code Ddim} whose call is running it: that throws {@link IllegalStateException}.
     */
    @Override
    public void close() {
        if (callbackThread == Thread.currentThread()) {
            throw new IllegalStateException("a SampleListener cannot close the Ddim whose sampling call is running it");
        }
        closing = true;
        synchronized (this) {
            if (!closed) {
                closed = true;
                cleanable.clean();
            }
        }
    }

    /** Whether {@link #close()} has been called (answers at once, even during a running call). */
    public boolean isClosed() {
        return closed || closing;
    }

    /** The most threads {@link #setThreads} accepts: 4x the available processors (include/ddim.h's DDIM_MAX_THREADS_PER_CORE). */
    public static int maxThreads() {
        return ddim_h.DDIM_MAX_THREADS_PER_CORE() * Runtime.getRuntime().availableProcessors();
    }

    /** Sets libtorch's CPU threads per operation; {@code threads <= 0} means all available processors, at most {@link #maxThreads()}. */
    public static void setThreads(int threads) {
        if (threads > maxThreads()) {
            throw new IllegalArgumentException("threads must be at most " + maxThreads() + " (4x the "
                    + Runtime.getRuntime().availableProcessors() + " available processors), got " + threads);
        }
        NativeLibrary.load();
        Native.check(ddim_h.ddim_set_num_threads(threads > 0 ? threads : Runtime.getRuntime().availableProcessors()));
    }

    /** libtorch's current CPU threads per operation (all available processors unless changed). */
    public static int threads() {
        NativeLibrary.load();
        return ddim_h.ddim_get_num_threads();
    }

    /** The native library's version. */
    public static String version() {
        NativeLibrary.load();
        return ddim_h.ddim_version().getString(0);
    }

    /** The libtorch version the native library was built against. */
    public static String torchVersion() {
        NativeLibrary.load();
        return ddim_h.ddim_torch_version().getString(0);
    }

    private void ensureOpen() {
        if (closed || closing) {
            throw new IllegalStateException("this Ddim is closed");
        }
        if (callbackThread == Thread.currentThread()) {
            throw new IllegalStateException("a SampleListener called back into the Ddim whose sampling call is running it;"
                    + " collect what you need and call it after the call returns");
        }
    }
}
