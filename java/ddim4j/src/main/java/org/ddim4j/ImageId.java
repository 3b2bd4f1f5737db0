package org.ddim4j;

import java.util.ArrayList;
import java.util.List;

/**
 * One image of a seed's sequence: the image a request with this seed draws at position
 * {@code index} ({@code firstIndex + i}). A list of ids lets one call sample images of several
 * requests ({@link SampleOptions.Builder#images}); each gets the pixels its own request gets.
 *
 * @param seed the request's seed
 * @param index the image's index in the seed's sequence, 0 .. {@link #MAX_INDEX}
 */
public record ImageId(long seed, long index) {
    /** The largest index: {@link SampleOptions#MAX_FIRST_INDEX} plus the largest count less one. */
    public static final long MAX_INDEX = SampleOptions.MAX_FIRST_INDEX + Integer.MAX_VALUE;

    public ImageId {
        if (index < 0 || index > MAX_INDEX) {
            throw new IllegalArgumentException("an image index must lie in [0, 2^62 + 2^31 - 1], got " + index);
        }
    }

    /** The ids of images firstIndex .. firstIndex + count - 1 of {@code seed}: what a request of (seed, firstIndex, count) draws. */
    public static List<ImageId> range(long seed, long firstIndex, int count) {
        if (count < 0) {
            throw new IllegalArgumentException("count must be >= 0, got " + count);
        }
        List<ImageId> ids = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            ids.add(new ImageId(seed, firstIndex + i));
        }
        return List.copyOf(ids);
    }
}
