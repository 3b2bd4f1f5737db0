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
 *
 * <p>A labelled dataset also holds a class per image ({@link #labels(int[])}) and the classes' names
 * ({@link #classNames()}): IDX images with their IDX label file (Fashion-MNIST's included), or a folder whose
 * first-level subfolders name the classes. Class-conditional models train on them.
 */
public final class Dataset {
    private final ImageCache.Store store;
    private final int[] indices;
    private final List<SkippedFile> skippedFiles;
    private final String description;
    /** The class of each stored image (indexed like the store, not like this view), or null when unlabelled. */
    private final int[] storeLabels;
    private final List<String> classNames;

    /** A file left out of an image folder, and why (e.g. truncated, or over {@link ImageFolder#MAX_PIXELS}). */
    public record SkippedFile(Path file, String reason) {}

    Dataset(ImageCache.Store store, List<SkippedFile> skippedFiles, String description) {
        this(store, identity(store.count()), skippedFiles, description, null, List.of());
    }

    private Dataset(ImageCache.Store store, int[] indices, List<SkippedFile> skippedFiles, String description, int[] storeLabels,
            List<String> classNames) {
        this.store = store;
        this.indices = indices;
        this.skippedFiles = List.copyOf(skippedFiles);
        this.description = description;
        this.storeLabels = storeLabels;
        this.classNames = List.copyOf(classNames);
    }

    /**
     * This dataset with a class per image: {@code labels[i]} is the class of image i (0 .. classNames.size() - 1).
     * Only whole datasets (not views made by {@link #split} or {@link #head}) take labels.
     */
    public Dataset withLabels(int[] labels, List<String> classNames) {
        Objects.requireNonNull(labels, "labels");
        Objects.requireNonNull(classNames, "classNames");
        if (indices.length != store.count()) {
            throw new IllegalStateException("label the whole dataset, not a view of it");
        }
        if (labels.length != size()) {
            throw new IllegalArgumentException(labels.length + " labels for " + size() + " images");
        }
        if (classNames.isEmpty()) {
            throw new IllegalArgumentException("a labelled dataset needs at least one class");
        }
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] >= classNames.size()) {
                throw new IllegalArgumentException("label " + labels[i] + " of image " + i + " is not a class 0.." + (classNames.size() - 1));
            }
        }
        return new Dataset(store, indices, skippedFiles, description, labels.clone(), classNames);
    }

    /** Whether every image has a class. */
    public boolean hasLabels() {
        return storeLabels != null;
    }

    /** The classes' names, in class order; empty when the dataset is unlabelled. */
    public List<String> classNames() {
        return classNames;
    }

    /** The classes of the images at {@code positions} (positions in this dataset). */
    public int[] labels(int[] positions) {
        if (storeLabels == null) {
            throw new IllegalStateException(description + " has no labels");
        }
        int[] labels = new int[positions.length];
        for (int k = 0; k < positions.length; k++) {
            labels[k] = storeLabels[indices[positions[k]]];
        }
        return labels;
    }

    /** The classes of the images from position {@code from} (inclusive) to {@code to} (exclusive). */
    public int[] labels(int from, int to) {
        return labels(positions(from, to));
    }

    /** The images of class {@code label} only (a view; an unlabelled dataset is an error). */
    public Dataset ofClass(int label) {
        int[] all = labels(positions(0, size()));
        int[] kept = java.util.stream.IntStream.range(0, all.length).filter(k -> all[k] == label).map(k -> indices[k]).toArray();
        if (kept.length == 0) {
            throw new IllegalArgumentException(description + " has no images of class " + label);
        }
        String name = label < classNames.size() ? classNames.get(label) : Integer.toString(label);
        return new Dataset(store, kept, List.of(), description + " (class " + name + ")", storeLabels, classNames);
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
        return batch(positions(from, to));
    }

    private int[] positions(int from, int to) {
        Objects.checkFromToIndex(from, to, size());
        int[] positions = new int[to - from];
        for (int k = 0; k < positions.length; k++) {
            positions[k] = from + k;
        }
        return positions;
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
        return n >= size() ? this : new Dataset(store, java.util.Arrays.copyOf(indices, n), skippedFiles, description + " (first " + n + ")",
                storeLabels, classNames);
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
        return new Split(new Dataset(store, trainIndices, skippedFiles, description + " (train)", storeLabels, classNames),
                new Dataset(store, validationIndices, List.of(), description + " (validation)", storeLabels, classNames));
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
                + (hasLabels() ? " in " + classNames.size() + " classes" : "")
                + (skipped() > 0 ? ", " + skipped() + " unreadable file(s) skipped" : "");
    }
}
