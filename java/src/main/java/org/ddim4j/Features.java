package org.ddim4j;

import java.util.Objects;

/**
 * Feature vectors of a set of images, one row of {@code dimension} floats per image, as a
 * {@link FeatureExtractor} computes them; the input of {@link Kid}.
 */
public record Features(int count, int dimension, float[] values) {
    public Features {
        Objects.requireNonNull(values, "values");
        if (count < 1 || dimension < 1 || (long) count * dimension != values.length) {
            throw new IllegalArgumentException("features must hold count x dimension = " + count + " x " + dimension
                    + " floats, got " + values.length);
        }
    }

    /** Image {@code i}'s feature vector (a copy). */
    public float[] row(int i) {
        Objects.checkIndex(i, count);
        float[] row = new float[dimension];
        System.arraycopy(values, i * dimension, row, 0, dimension);
        return row;
    }

    /** The rows {@code from} (inclusive) to {@code to} (exclusive). */
    public Features slice(int from, int to) {
        Objects.checkFromToIndex(from, to, count);
        float[] part = new float[(to - from) * dimension];
        System.arraycopy(values, from * dimension, part, 0, part.length);
        return new Features(to - from, dimension, part);
    }
}
