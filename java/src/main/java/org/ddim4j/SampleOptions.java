package org.ddim4j;

/**
 * What to sample: how many images, with how many network evaluations, from which seed.
 *
 * <pre>{@code
 * SampleOptions options = SampleOptions.builder().count(16).steps(20).seed(42).build();
 * }</pre>
 *
 * Image i starts from noise that depends only on (seed, i). {@link Builder#build()} rejects invalid
 * values with {@link IllegalArgumentException}, before anything reaches native code.
 */
public record SampleOptions(int count, int steps, long seed, boolean useEma, Sampler sampler, double eta) {
    public static final int DEFAULT_COUNT = 16;
    public static final int DEFAULT_STEPS = 20;
    public static final long DEFAULT_SEED = 42;

    public SampleOptions {
        if (count < 1) {
            throw new IllegalArgumentException("count must be >= 1, got " + count);
        }
        if (steps < 1) {
            throw new IllegalArgumentException("steps must be >= 1, got " + steps);
        }
        if (sampler == null) {
            throw new IllegalArgumentException("sampler must not be null");
        }
        if (!(eta >= 0 && Double.isFinite(eta))) {
            throw new IllegalArgumentException("eta must be finite and >= 0, got " + eta);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    /** 16 images, 20 steps, seed 42, EMA weights when the model has them, deterministic DDIM. */
    public static SampleOptions defaults() {
        return builder().build();
    }

    public static final class Builder {
        private int count = DEFAULT_COUNT;
        private int steps = DEFAULT_STEPS;
        private long seed = DEFAULT_SEED;
        private boolean useEma = true;
        private Sampler sampler = Sampler.DDIM;
        private double eta;

        private Builder() {}

        /** Images to generate, >= 1. */
        public Builder count(int count) {
            this.count = count;
            return this;
        }

        /** Network evaluations, >= 1. More steps: better images, proportionally slower. */
        public Builder steps(int steps) {
            this.steps = steps;
            return this;
        }

        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** Sample with the EMA weights when the model has them (default true). */
        public Builder useEma(boolean useEma) {
            this.useEma = useEma;
            return this;
        }

        /** The sampler (default DDIM). */
        public Builder sampler(Sampler sampler) {
            this.sampler = sampler;
            return this;
        }

        /** DDIM's eta, >= 0 (default 0: deterministic). */
        public Builder eta(double eta) {
            this.eta = eta;
            return this;
        }

        public SampleOptions build() {
            return new SampleOptions(count, steps, seed, useEma, sampler, eta);
        }
    }
}
