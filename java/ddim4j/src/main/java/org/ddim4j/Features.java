package org.ddim4j;

import java.util.List;
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

    /** The rows of all parts, in order; they must share one dimension. */
    public static Features concat(List<Features> parts) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("nothing to concatenate");
        }
        int dimension = parts.get(0).dimension();
        int count = 0;
        for (Features part : parts) {
            if (part.dimension() != dimension) {
                throw new IllegalArgumentException("features of dimensions " + dimension + " and " + part.dimension()
                        + " cannot be concatenated");
            }
            count += part.count();
        }
        float[] values = new float[Math.multiplyExact(count, dimension)];
        int offset = 0;
        for (Features part : parts) {
            System.arraycopy(part.values(), 0, values, offset, part.values().length);
            offset += part.values().length;
        }
        return new Features(count, dimension, values);
    }

    /** The rows {@code from} (inclusive) to {@code to} (exclusive). */
    public Features slice(int from, int to) {
        Objects.checkFromToIndex(from, to, count);
        float[] part = new float[(to - from) * dimension];
        System.arraycopy(values, from * dimension, part, 0, part.length);
        return new Features(to - from, dimension, part);
    }
}
