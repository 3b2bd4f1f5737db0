package org.ddim4j;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;

import org.ddim4j.ffi.ddim_config;
import org.ddim4j.ffi.ddim_h;

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
 * it. A caller's mistake throws {@link IllegalArgumentException}, whether Java or the native side finds it; other
 * native failures throw {@link DdimException}. When the JVM exits during a call, see {@link #setCancelOnExit}.
 */
public final class Ddim implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(Ddim.class.getName());
    private static final AtomicBoolean FALLBACK_LOGGED = new AtomicBoolean();

    private final NativeHandle handle;
    /** The native model; valid until close(). */
    private final MemorySegment model;
    private final ModelConfig config;
    private final Device device;
    private volatile boolean closed;
    /** Set by close() before it waits for the lock: a running sampling call cancels at its next step. */
    private volatile boolean closing;
    private final SamplingCalls sampling;

    private Ddim(MemorySegment model) {
        this.handle = new NativeHandle(this, model, ddim_h::ddim_model_free);
        this.model = model;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment nativeConfig = ddim_config.allocate(arena);
            Native.check(ddim_h.ddim_model_config(model, nativeConfig));
            this.config = ModelConfig.fromNative(nativeConfig, TrainingCalls.classNames(model));
            MemorySegment deviceCode = arena.allocate(ValueLayout.JAVA_INT);
            Native.check(ddim_h.ddim_model_device(model, deviceCode));
            this.device = Device.fromCode(deviceCode.get(ValueLayout.JAVA_INT, 0));
            this.sampling = new SamplingCalls(config, () -> closing);
        } catch (RuntimeException e) {
            handle.free();
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
        return opened(device, NativeHandle.create((arena, out) ->
                ddim_h.ddim_model_load(arena.allocateFrom(model.toAbsolutePath().toString()), device.code(), out)));
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
        MemorySegment model = NativeHandle.create((arena, out) -> ddim_h.ddim_model_create(config.toNative(arena), device.code(), seed, out));
        if (!config.classNames().isEmpty()) {
            try (Arena arena = Arena.ofConfined()) {
                Native.check(ddim_h.ddim_model_set_class_names(model, arena.allocateFrom(config.joinedClassNames())));
            } catch (RuntimeException e) {
                ddim_h.ddim_model_free(model);
                throw e;
            }
        }
        return opened(device, model);
    }

    /** Wraps a new native model; logs (once per JVM) when {@link Device#auto()} fell back to the CPU. */
    private static Ddim opened(Device requested, MemorySegment model) {
        Ddim ddim = new Ddim(model);
        if (requested.equals(Device.auto()) && ddim.device.isCpu() && !FALLBACK_LOGGED.getAndSet(true)) {
            LOG.log(System.Logger.Level.INFO, "Device.auto(): libddim (libtorch " + torchVersion()
                    + ") sees no CUDA device; models run on the CPU");
        }
        return ddim;
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
        float[] pixels = runSampling(options, options.count(), (arena, params, out, floats) -> ddim_h.ddim_sample(model, params,
                SamplingCalls.noiseArgument(arena, options), SamplingCalls.noiseFloats(options), out, floats));
        ImageBatch images = imagesFrom(pixels, options.count());
        if (options.noise() != null) {
            return images.withStartingNoise(options.noise());
        }
        if (options.images() != null) {
            return images.withStartingNoise(() -> Noise.concat(options.images().stream()
                    .map(id -> Noise.ofSeed(config, id.seed(), id.index(), 1)).toList()));
        }
        return images.withStartingNoise(() -> Noise.ofSeed(config, options.seed(), options.firstIndex(), options.count()));
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
            ImageBatch images = sample(SamplingCalls.chunk(options, first, n));
            try {
                sink.accept(options.firstIndex() + first, images);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot store images " + (options.firstIndex() + first) + " to "
                        + (options.firstIndex() + first + n - 1) + ": " + e.getMessage(), e);
            }
        }
    }

    /** The starting noise of images firstIndex .. firstIndex + count - 1 of {@code seed}, the same on every device. */
    public Noise noise(long seed, long firstIndex, int count) {
        ensureOpen();
        return Noise.ofSeed(config, seed, firstIndex, count);
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
     * Variations (SDEdit): noises each image to t = {@code strength} ({@code 0 < strength <= 1}) with its
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
     * through, as images: element i holds image i's {@code steps + 1} frames, frame {@code k < steps} the
     * state at t = 1 - k/steps before network evaluation k (frame 0: the starting noise), the last
     * frame the sampled image. States are shown as pixels: denormalised and clipped to [0, 1].
     */
    public synchronized List<ImageBatch> trajectories(SampleOptions options) {
        Objects.requireNonNull(options, "options");
        ensureOpen();
        requireNoiseShape(options.noise());
        int frames = options.steps() + 1;
        int images = Math.multiplyExact(options.count(), frames);
        float[] pixels = runSampling(options, options.count(), images, (arena, params, out, floats) -> ddim_h.ddim_sample_trajectory(
                model, params, SamplingCalls.noiseArgument(arena, options), SamplingCalls.noiseFloats(options), out, floats));
        ImageBatch all = imagesFrom(pixels, images);
        List<ImageBatch> result = new ArrayList<>(options.count());
        for (int i = 0; i < options.count(); i++) {
            result.add(all.slice(i * frames, (i + 1) * frames));
        }
        return result;
    }

    /**
     * What the network predicts for noisy images at their times ({@link #predict}): the noise and the
     * clean image, each {@code count x channels x size x size} floats (NCHW) in the network's normalised
     * space, whichever of the two the model's target is. The arrays are the record's own, not copies.
     *
     * @param noise the predicted noise, eps
     * @param image the predicted clean image, x_0; {@code x_0 * std + mean} per channel ({@link #normalizer()}) are its pixels
     */
    public record Prediction(float[] noise, float[] image) {
        public Prediction {
            Objects.requireNonNull(noise, "noise");
            Objects.requireNonNull(image, "image");
            if (noise.length != image.length) {
                throw new IllegalArgumentException("noise and image must be the same size, got " + noise.length + " and " + image.length);
            }
        }
    }

    /**
     * One network evaluation as the samplers make it, with the default micro-batch and float32:
     * {@link #predict(float[], float[], SampleOptions)} with {@code useEma} and otherwise default options.
     */
    public Prediction predict(float[] noisy, float[] t, boolean useEma) {
        return predict(noisy, t, SampleOptions.builder().useEma(useEma).build());
    }

    /**
     * One network evaluation, the building block of every sampler: for writing your own sampler or
     * comparing with another implementation (diffusers' UNet call takes the same t). Given noisy
     * images x_t in the network's space ({@code x_t = signal(t) x_0 + noise(t) eps}, where x_0 are
     * pixels normalised with {@link #normalizer()}: {@code (pixel - mean) / std}) and their times
     * t, it returns the predicted noise eps and clean image x_0 in that same space. The rates are
     * the model's schedule at t, computed as the samplers compute them, and the network sees the
     * options' micro-batch, so this is the samplers' evaluation bit for bit: with one step,
     * {@link #sample} returns x_0 at t = 1 from the seed's noise ({@link #noise}), de-normalised
     * and clamped to [0, 1]. For the rates at other times (a step's next t), use
     * {@code config().schedule().rates(t)} (computed in double precision, so they may differ from
     * the samplers' float32 ones in the last bit).
     *
     * <pre>{@code
     * // one deterministic DDIM step from t to next, every image at the same times
     * Ddim.Prediction p = ddim.predict(x, times, true);
     * Schedule.Rates r = ddim.config().schedule().rates(next);
     * for (int i = 0; i < x.length; i++) x[i] = r.signal()[0] * p.image()[i] + r.noise()[0] * p.noise()[i];
     * }</pre>
     *
     * @param noisy {@code t.length} images, NCHW floats of the model's shape, finite, in the network's space
     * @param t one time per image, each in [0, 1] (1: pure noise; 0: the clean image)
     * @param options the EMA choice, micro-batch, precision, network, and for class models the classes and guidance to
     *        evaluate with (the rest is not used)
     * @throws IllegalArgumentException for a wrong size, a non-finite value or a t outside [0, 1], before any native call
     * @throws DdimException with {@link Status#NON_FINITE} when the network's output is not finite
     */
    public synchronized Prediction predict(float[] noisy, float[] t, SampleOptions options) {
        Objects.requireNonNull(noisy, "noisy");
        Objects.requireNonNull(t, "t");
        Objects.requireNonNull(options, "options");
        ensureOpen();
        if (t.length < 1) {
            throw new IllegalArgumentException("t must hold one time per image, for at least one image");
        }
        long floats = config.floatsFor(t.length);
        if (2 * floats > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(t.length + " images' noise and image predictions do not fit one Java array;"
                    + " predict fewer images at a time");
        }
        if (noisy.length != floats) {
            throw new IllegalArgumentException(t.length + " noisy " + config.channels() + "x" + config.imageSize() + "x"
                    + config.imageSize() + " image(s) need " + floats + " floats, got " + noisy.length);
        }
        Schedule.requireTimes(t);
        for (int i = 0; i < noisy.length; i++) {
            if (!Float.isFinite(noisy[i])) {
                throw new IllegalArgumentException("noisy value " + i + " is " + noisy[i] + "; noisy images must be finite");
            }
        }
        float[] both = sampling.run(options, t.length, 2 * floats, (arena, params, out, total) -> ddim_h.ddim_predict(model, params,
                arena.allocateFrom(ValueLayout.JAVA_FLOAT, noisy), floats, arena.allocateFrom(ValueLayout.JAVA_FLOAT, t), t.length,
                out, out.asSlice(floats * Float.BYTES), floats));
        return new Prediction(java.util.Arrays.copyOfRange(both, 0, (int) floats),
                java.util.Arrays.copyOfRange(both, (int) floats, (int) (2 * floats)));
    }

    // ---- sampling plumbing (SamplingCalls) ----

    /** Runs a sampling-family call over {@code count} images that writes {@code count} images. */
    private float[] runSampling(SampleOptions options, int count, SamplingCalls.Call call) {
        return runSampling(options, count, count, call);
    }

    /** As above, for a call that writes {@code outputImages} images (e.g. a trajectory's frames). */
    private float[] runSampling(SampleOptions options, int count, int outputImages, SamplingCalls.Call call) {
        return sampling.run(options, count, config.floatsFor(outputImages), call);
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

    static void requireUnitRange(float[] values, String name) {
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
        try (Arena arena = Arena.ofConfined(); ProcessExit.Call tracked = ProcessExit.begin()) {
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
        try (Arena arena = Arena.ofConfined(); ProcessExit.Call tracked = ProcessExit.begin()) {
            Native.check(ddim_h.ddim_model_export(model, arena.allocateFrom(target.toString()), flags));
        }
    }

    /**
     * Validation losses: {@code [0]} MAE of the predicted noise, {@code [1]} of the predicted image, at t and noise drawn
     * from {@code seed}. Pixels must lie in [0, 1].
     */
    public float[] evaluate(float[] pixels, long seed, boolean useEma) {
        return evaluate(pixels, null, seed, useEma);
    }

    /**
     * {@link #evaluate(float[], long, boolean)} with each image's class, for class-conditional models (their conditional
     * prediction is evaluated; null labels evaluate them with "no class"). Unconditional models take null.
     */
    public synchronized float[] evaluate(float[] pixels, int[] labels, long seed, boolean useEma) {
        ensureOpen();
        int count = config.imageCount(pixels);
        requireUnitRange(pixels, "pixels");
        if (labels != null) {
            TrainingCalls.requireLabels(config, labels, count);
        }
        try (Arena arena = Arena.ofConfined(); ProcessExit.Call tracked = ProcessExit.begin()) {
            MemorySegment noiseLoss = arena.allocate(ValueLayout.JAVA_FLOAT);
            MemorySegment imageLoss = arena.allocate(ValueLayout.JAVA_FLOAT);
            MemorySegment images = arena.allocateFrom(ValueLayout.JAVA_FLOAT, pixels);
            Native.check(labels == null
                    ? ddim_h.ddim_evaluate(model, images, count, pixels.length, seed, useEma ? 1 : 0, noiseLoss, imageLoss)
                    : ddim_h.ddim_evaluate_labeled(model, images, count, pixels.length, arena.allocateFrom(ValueLayout.JAVA_INT, labels),
                            labels.length, seed, useEma ? 1 : 0, noiseLoss, imageLoss));
            return new float[] {noiseLoss.get(ValueLayout.JAVA_FLOAT, 0), imageLoss.get(ValueLayout.JAVA_FLOAT, 0)};
        }
    }

    /**
     * Runs {@code body} on the native model under this model's lock, once it is checked to be open
     * and not called from one of its own listeners: the way package classes (Trainer) reach the handle.
     */
    synchronized <T> T withModel(Function<MemorySegment, T> body) {
        ensureOpen();
        try (ProcessExit.Call tracked = ProcessExit.begin()) {
            return body.apply(model);
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

    /** {@code path} made absolute, its parent directories created. */
    static Path createParent(Path path) {
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
        if (sampling.onCallbackThread()) {
            throw new IllegalStateException("a SampleListener cannot close the Ddim whose sampling call is running it");
        }
        closing = true;
        synchronized (this) {
            if (!closed) {
                closed = true;
                handle.free();
            }
        }
    }

    /** Whether {@link #close()} has been called (answers at once, even during a running call). */
    public boolean isClosed() {
        return closed || closing;
    }

    /**
     * The CPU threads this process may use, the one count behind the default thread count and {@link #maxThreads()}
     * (the C ABI's {@code ddim_available_threads}): the CPUs in the process's affinity mask, capped by its cgroup's
     * CPU quota, as {@link Runtime#availableProcessors()} counts them.
     */
    public static int availableThreads() {
        NativeLibrary.load();
        return ddim_h.ddim_available_threads();
    }

    /** The most threads {@link #setThreads} accepts: 4x {@link #availableThreads()} (include/ddim.h's DDIM_MAX_THREADS_PER_CORE). */
    public static int maxThreads() {
        return ddim_h.DDIM_MAX_THREADS_PER_CORE() * availableThreads();
    }

    /**
     * Sets libtorch's CPU threads per operation; {@code threads <= 0} means {@link #availableThreads()}. More than
     * {@link #maxThreads()} is an {@link IllegalArgumentException}.
     */
    public static void setThreads(int threads) {
        NativeLibrary.load();
        Native.check(ddim_h.ddim_set_num_threads(threads));
    }

    /** libtorch's current CPU threads per operation (all available processors unless changed). */
    public static int threads() {
        NativeLibrary.load();
        return ddim_h.ddim_get_num_threads();
    }

    /**
     * Whether the JVM's exit (System.exit, SIGTERM) cancels running ddim4j calls; default true. When it does,
     * sampling ends at its next step with a {@link CancellationException} and {@link Trainer#fit} stops after the
     * current step (writing its checkpoint when configured). Either way the exit waits for running calls, at most
     * 10 s, so that no native call computes while the process's static destructors run. An application that ends
     * its calls from a shutdown hook of its own (a server finishing its running batch) turns this off; the JVM
     * then waits for that hook as for every hook.
     */
    public static void setCancelOnExit(boolean cancel) {
        ProcessExit.setCancelOnExit(cancel);
    }

    /** Whether this build of the native library has the {@link Network#FUSED} network (it needs oneDNN's headers at build time). */
    public static boolean hasFusedNetwork() {
        NativeLibrary.load();
        return ddim_h.ddim_has_fused_network() != 0;
    }

    /**
     * Whether the {@link Network#FUSED} network computes {@link Precision#BFLOAT16} on this CPU: it
     * needs AVX512-BF16 or AMX (elsewhere {@link Network#AUTO} computes such requests in float32).
     */
    public static boolean hasFusedBfloat16() {
        NativeLibrary.load();
        return ddim_h.ddim_has_fused_bfloat16() != 0;
    }

    private static final java.util.concurrent.atomic.AtomicBoolean BFLOAT16_FALLBACK_LOGGED =
            new java.util.concurrent.atomic.AtomicBoolean();

    /** Says once per process why a BFLOAT16 request on {@link Network#AUTO} computes in float32 here. */
    static void noteBfloat16Fallback() {
        if (hasFusedNetwork() && !hasFusedBfloat16() && BFLOAT16_FALLBACK_LOGGED.compareAndSet(false, true)) {
            LOG.log(System.Logger.Level.INFO, "BFLOAT16 with Network.AUTO: this CPU has no AVX512-BF16 or AMX, so the "
                    + "fused network computes in FLOAT32 on CPU models (emulated bfloat16 is ~10x slower); "
                    + "Network.EAGER forces bfloat16");
        }
    }

    /** Whether this build of the native library can train across processes on the CPU ({@link Distributed}: c10d with Gloo). */
    public static boolean hasDistributed() {
        NativeLibrary.load();
        return ddim_h.ddim_has_distributed() != 0;
    }

    /**
     * Keeps at most {@code bytes} of freed CPU tensor memory for reuse (0 turns the cache off). The
     * library caches the large blocks libtorch frees, so that each sampling or training step reuses
     * the last one's instead of mapping and faulting in fresh pages; it never changes results. The
     * default is 1 GiB, or {@code -Dddim4j.cpuCache=<bytes>}.
     */
    public static void setCpuCacheLimit(long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("the CPU cache limit must be >= 0 bytes, got " + bytes);
        }
        NativeLibrary.load();
        Native.check(ddim_h.ddim_set_cpu_cache_limit(bytes));
    }

    /** Returns the CPU memory cache to the operating system now (it refills as tensors are freed; it also empties when the last model closes). */
    public static void releaseCpuCache() {
        NativeLibrary.load();
        Native.check(ddim_h.ddim_release_cpu_cache());
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
        if (sampling.onCallbackThread()) {
            throw new IllegalStateException("a SampleListener called back into the Ddim whose sampling call is running it;"
                    + " collect what you need and call it after the call returns");
        }
    }
}
