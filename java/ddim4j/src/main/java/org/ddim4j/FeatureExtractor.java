package org.ddim4j;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Objects;

import org.ddim4j.ffi.ddim_h;

/**
 * A TorchScript network that turns images into feature vectors for {@link Kid}, loaded by the
 * native core. Its preprocessing (input size and channels, pixel mean and std, and the statistics
 * that standardise its features) comes from {@code <file>.json} beside it; without that file the
 * network is taken for torchvision's InceptionV3 (3x299x299, ImageNet mean and std).
 *
 * <pre>{@code
 * try (FeatureExtractor extractor = FeatureExtractor.open(FeatureExtractor.defaultPath())) {
 *     Kid.Result kid = Kid.compute(extractor.features(realImages), extractor.features(generatedImages));
 * }
 * }</pre>
 *
 * <p>ddim4j ships {@code models/fashion-mnist-features.pt}, a small CNN trained on Fashion-MNIST
 * ({@code scripts/train-feature-extractor.py}). Like {@link Ddim}, an extractor owns its native
 * handle, is thread-safe, and frees the handle on {@link #close()}.
 *
 * <p><b>Load trusted files only.</b> A TorchScript file is a program: opening it and computing
 * features runs whatever code it holds, with this process's rights, so treat it like a jar or a
 * shared library and never open one from an untrusted source.
 */
public final class FeatureExtractor implements AutoCloseable {
    /** The shipped extractor's file name under models/. */
    public static final String DEFAULT_FILE = "fashion-mnist-features.pt";

    private final NativeHandle handle;
    private final int dimension;
    private final int inputSize;
    private final int inputChannels;
    private final boolean standardised;
    private boolean closed;

    private FeatureExtractor(MemorySegment extractor) {
        this.handle = new NativeHandle(this, extractor, ddim_h::ddim_extractor_free);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment dimensionOut = arena.allocate(ValueLayout.JAVA_LONG);
            MemorySegment sizeOut = arena.allocate(ValueLayout.JAVA_INT);
            MemorySegment channelsOut = arena.allocate(ValueLayout.JAVA_INT);
            MemorySegment standardisedOut = arena.allocate(ValueLayout.JAVA_INT);
            Native.check(ddim_h.ddim_extractor_info(extractor, dimensionOut, sizeOut, channelsOut, standardisedOut));
            this.dimension = Math.toIntExact(dimensionOut.get(ValueLayout.JAVA_LONG, 0));
            this.inputSize = sizeOut.get(ValueLayout.JAVA_INT, 0);
            this.inputChannels = channelsOut.get(ValueLayout.JAVA_INT, 0);
            this.standardised = standardisedOut.get(ValueLayout.JAVA_INT, 0) != 0;
        } catch (RuntimeException e) {
            handle.free();
            throw e;
        }
    }

    /** Opens an extractor on the CPU. */
    public static FeatureExtractor open(Path path) {
        return open(path, Device.cpu());
    }

    /** Opens a TorchScript extractor; a missing file is {@link Status#IO}, a bad one {@link Status#FORMAT}. */
    public static FeatureExtractor open(Path path, Device device) {
        Objects.requireNonNull(path, "path");
        Objects.requireNonNull(device, "device");
        NativeLibrary.load();
        return new FeatureExtractor(NativeHandle.create((arena, out) ->
                ddim_h.ddim_extractor_load(arena.allocateFrom(path.toAbsolutePath().toString()), device.code(), out)));
    }

    /**
     * The shipped extractor: {@code models/fashion-mnist-features.pt} under the directory named by
     * the {@code ddim4j.home} system property (scripts/ddim sets it), else under the working directory.
     */
    public static Path defaultPath() {
        return Path.of(System.getProperty("ddim4j.home", ".")).resolve("models").resolve(DEFAULT_FILE);
    }

    /** Features of the images (any channels and size: the extractor resizes and converts them). */
    public Features features(ImageBatch images) {
        Objects.requireNonNull(images, "images");
        if (images.height() != images.width()) {
            throw new IllegalArgumentException("images must be square, got " + images.height() + "x" + images.width());
        }
        return features(images.pixels(), images.channels(), images.height());
    }

    /** Features of NCHW pixels in [0, 1]: a whole number of channels x size x size images. */
    public synchronized Features features(float[] pixels, int channels, int size) {
        ensureOpen();
        Objects.requireNonNull(pixels, "pixels");
        int perImage = channels * size * size;
        if (channels < 1 || channels > 4 || size < 1 || pixels.length == 0 || pixels.length % perImage != 0) {
            throw new IllegalArgumentException("pixels must hold a whole, non-zero number of " + channels + "x" + size + "x" + size
                    + " images, got " + pixels.length + " floats");
        }
        int count = pixels.length / perImage;
        try (Arena arena = Arena.ofConfined(); ProcessExit.Call tracked = ProcessExit.begin()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, (long) count * dimension);
            Native.check(ddim_h.ddim_extractor_features(handle.pointer(), arena.allocateFrom(ValueLayout.JAVA_FLOAT, pixels), count, channels,
                    size, size, pixels.length, out, (long) count * dimension));
            return new Features(count, dimension, out.toArray(ValueLayout.JAVA_FLOAT));
        }
    }

    /** Floats per feature vector. */
    public int dimension() {
        return dimension;
    }

    /** The side images are resized to. */
    public int inputSize() {
        return inputSize;
    }

    /** 1 or 3: images are converted to this many channels. */
    public int inputChannels() {
        return inputChannels;
    }

    /** Whether features are standardised per dimension with statistics stored beside the network. */
    public boolean standardised() {
        return standardised;
    }

    /** Frees the native extractor. Idempotent. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            handle.free();
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("this FeatureExtractor is closed");
        }
    }
}
