package org.ddim4j.data;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * Images decoded and resized once, as NCHW floats in [0, 1], held in memory (or in a memory-mapped
 * cache file for large sets, see {@link ImageCache}). A dataset may be a view of some of the images
 * of another ({@link #split}); views share the decoded pixels.
 */
public final class Dataset {
    private final ImageCache.Store store;
    private final int[] indices;
    private final List<SkippedFile> skippedFiles;
    private final String description;

    /** A file left out of an image folder, and why (e.g. truncated, or over {@link ImageFolder#MAX_PIXELS}). */
    public record SkippedFile(Path file, String reason) {}

    Dataset(ImageCache.Store store, List<SkippedFile> skippedFiles, String description) {
        this(store, identity(store.count()), skippedFiles, description);
    }

    private Dataset(ImageCache.Store store, int[] indices, List<SkippedFile> skippedFiles, String description) {
        this.store = store;
        this.indices = indices;
        this.skippedFiles = List.copyOf(skippedFiles);
        this.description = description;
    }

    /** Wraps images already in memory: {@code pixels} holds count x channels x size x size floats in [0, 1]. */
    public static Dataset of(float[] pixels, int channels, int imageSize) {
        Objects.requireNonNull(pixels, "pixels");
        int perImage = channels * imageSize * imageSize;
        if (channels < 1 || channels > 4 || imageSize < 1 || pixels.length % perImage != 0 || pixels.length == 0) {
            throw new IllegalArgumentException("pixels must hold a whole, non-zero number of " + channels + "x" + imageSize + "x"
                    + imageSize + " images, got " + pixels.length + " floats");
        }
        ImageCache.Store store = ImageCache.inMemory(pixels.length / perImage, channels, imageSize);
        MemorySegment.copy(pixels, 0, store.segment(), ValueLayout.JAVA_FLOAT, 0, pixels.length);
        return new Dataset(store, List.of(), "in-memory images");
    }

    /** Images in this dataset. */
    public int size() {
        return indices.length;
    }

    public int channels() {
        return store.channels();
    }

    public int imageSize() {
        return store.imageSize();
    }

    /** Floats per image. */
    public int pixelsPerImage() {
        return store.channels() * store.imageSize() * store.imageSize();
    }

    /** Files that could not be decoded and were left out. */
    public int skipped() {
        return skippedFiles.size();
    }

    /** The files that were left out, each with the reason. */
    public List<SkippedFile> skippedFiles() {
        return skippedFiles;
    }

    /** Where the images came from, for reports. */
    public String description() {
        return description;
    }

    /** Copies image {@code i} into {@code destination} at {@code offset}. */
    public void copyImage(int i, float[] destination, int offset) {
        int perImage = pixelsPerImage();
        MemorySegment.copy(store.segment(), ValueLayout.JAVA_FLOAT, (long) indices[i] * perImage * Float.BYTES, destination,
                offset, perImage);
    }

    /** The images at {@code positions} (positions in this dataset), NCHW; at most one Java array's worth. */
    public float[] batch(int[] positions) {
        int perImage = pixelsPerImage();
        if ((long) positions.length * perImage > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(positions.length + " images of " + perImage
                    + " floats do not fit one Java array: use a smaller batch");
        }
        float[] pixels = new float[positions.length * perImage];
        for (int k = 0; k < positions.length; k++) {
            copyImage(positions[k], pixels, k * perImage);
        }
        return pixels;
    }

    /** The images from position {@code from} (inclusive) to {@code to} (exclusive), NCHW. */
    public float[] range(int from, int to) {
        Objects.checkFromToIndex(from, to, size());
        int[] positions = new int[to - from];
        for (int k = 0; k < positions.length; k++) {
            positions[k] = from + k;
        }
        return batch(positions);
    }

    /** Per-channel mean and standard deviation over all pixels: {@code [0]} means, {@code [1]} stds (exact, in double). */
    public float[][] channelStatistics() {
        int channels = channels();
        int plane = imageSize() * imageSize();
        double[] sum = new double[channels];
        double[] squares = new double[channels];
        float[] image = new float[pixelsPerImage()];
        for (int i = 0; i < size(); i++) {
            copyImage(i, image, 0);
            for (int c = 0; c < channels; c++) {
                for (int p = c * plane; p < (c + 1) * plane; p++) {
                    sum[c] += image[p];
                    squares[c] += (double) image[p] * image[p];
                }
            }
        }
        float[][] statistics = new float[2][channels];
        double n = (double) size() * plane;
        for (int c = 0; c < channels; c++) {
            double mean = sum[c] / n;
            statistics[0][c] = (float) mean;
            // A constant channel would give std 0; keep the normaliser invertible.
            statistics[1][c] = (float) Math.max(Math.sqrt(Math.max(squares[c] / n - mean * mean, 0)), 1e-3);
        }
        return statistics;
    }

    /** The first {@code n} images (all of them when there are fewer), e.g. for a quick run. */
    public Dataset head(int n) {
        if (n < 1) {
            throw new IllegalArgumentException("n must be >= 1, got " + n);
        }
        return n >= size() ? this : new Dataset(store, java.util.Arrays.copyOf(indices, n), skippedFiles, description + " (first " + n + ")");
    }

    /** A train/validation split: a seeded shuffle, then the last {@code validationFraction} of it validates. */
    public Split split(double validationFraction, long seed) {
        if (!(validationFraction >= 0 && validationFraction < 1)) {
            throw new IllegalArgumentException("validation fraction must lie in [0, 1), got " + validationFraction);
        }
        int[] order = shuffled(size(), seed);
        int validation = (int) Math.round(size() * validationFraction);
        if (validationFraction > 0 && size() >= 2) {
            validation = Math.clamp(validation, 1, size() - 1);
        }
        int training = size() - validation;
        int[] trainIndices = new int[training];
        int[] validationIndices = new int[validation];
        for (int k = 0; k < size(); k++) {
            if (k < training) {
                trainIndices[k] = indices[order[k]];
            } else {
                validationIndices[k - training] = indices[order[k]];
            }
        }
        return new Split(new Dataset(store, trainIndices, skippedFiles, description + " (train)"),
                new Dataset(store, validationIndices, List.of(), description + " (validation)"));
    }

    /** A training and a validation dataset. */
    public record Split(Dataset train, Dataset validation) {}

    /** A permutation of 0..n-1 determined by {@code seed} (Fisher-Yates with SplittableRandom). */
    public static int[] shuffled(int n, long seed) {
        int[] order = identity(n);
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int swap = order[i];
            order[i] = order[j];
            order[j] = swap;
        }
        return order;
    }

    private static int[] identity(int n) {
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        return order;
    }

    @Override
    public String toString() {
        return description + ": " + size() + " images of " + channels() + "x" + imageSize() + "x" + imageSize()
                + (skipped() > 0 ? ", " + skipped() + " unreadable file(s) skipped" : "");
    }
}
