package org.ddim4j;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;

import org.ddim4j.ffi.ddim_h;
import org.ddim4j.ffi.ddim_kid_params;
import org.ddim4j.ffi.ddim_kid_result;

/**
 * Kernel Inception Distance between real and generated images, as the reference computes it: the
 * unbiased MMD^2 estimate under the cubic kernel {@code (x.y/d + 1)^3} between their features,
 * computed in float64 by the native core and averaged over random subsets. Lower is better; about 0
 * means the two sets look alike to the feature extractor.
 *
 * <pre>{@code
 * Kid.Result kid = Kid.compute(extractor.features(real), extractor.features(generated));
 * System.out.printf("KID %.4f ± %.4f%n", kid.kid(), kid.std());
 * }</pre>
 */
public final class Kid {
    private Kid() {}

    /**
     * @param subsets    random subsets averaged over, >= 1 (default 100)
     * @param subsetSize images per subset from each side, >= 2; 0 = half the smaller set, at most 1000 (default)
     * @param seed       which subsets (default 0)
     */
    public record Options(int subsets, int subsetSize, long seed) {
        public Options {
            if (subsets < 1) {
                throw new IllegalArgumentException("subsets must be >= 1, got " + subsets);
            }
            if (subsetSize != 0 && subsetSize < 2) {
                throw new IllegalArgumentException("subsetSize must be 0 (automatic) or >= 2, got " + subsetSize);
            }
        }

        public static Options defaults() {
            return new Options(100, 0, 0);
        }
    }

    /** KID (the mean over subsets), its standard deviation over subsets, and the subsets used. */
    public record Result(double kid, double std, int subsets, int subsetSize) {}

    /** KID with {@link Options#defaults()}. */
    public static Result compute(Features real, Features generated) {
        return compute(real, generated, Options.defaults());
    }

    public static Result compute(Features real, Features generated, Options options) {
        Objects.requireNonNull(real, "real");
        Objects.requireNonNull(generated, "generated");
        Objects.requireNonNull(options, "options");
        if (real.dimension() != generated.dimension()) {
            throw new IllegalArgumentException("real and generated features differ in dimension: " + real.dimension() + " and "
                    + generated.dimension());
        }
        NativeLibrary.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = ddim_kid_params.allocate(arena);
            ddim_h.ddim_kid_params_init(params);
            ddim_kid_params.subsets(params, options.subsets());
            ddim_kid_params.subset_size(params, options.subsetSize());
            ddim_kid_params.seed(params, options.seed());
            MemorySegment result = ddim_kid_result.allocate(arena);
            Native.check(ddim_h.ddim_kid(arena.allocateFrom(ValueLayout.JAVA_FLOAT, real.values()), real.count(),
                    arena.allocateFrom(ValueLayout.JAVA_FLOAT, generated.values()), generated.count(),
                    real.dimension(), params, result));
            return new Result(ddim_kid_result.kid(result), ddim_kid_result.std(result), ddim_kid_result.subsets(result),
                    ddim_kid_result.subset_size(result));
        }
    }
}
