package org.ddim4j;

import java.util.List;

import org.ddim4j.ffi.ddim_h;

/**
 * What to sample: how many images, with how many network evaluations, from which seed or noise.
 *
 * <pre>{@code
 * SampleOptions options = SampleOptions.builder().count(16).steps(20).seed(42).build();
 * }</pre>
 *
 * Image i starts from noise that depends only on (seed, firstIndex + i), and its pixels depend only
 * on that noise, the sampler settings and {@code microBatch}: never on {@code count},
 * {@code batchSize} or the other images. {@link Builder#build()} rejects invalid values with
 * {@link IllegalArgumentException}, before anything reaches native code.
 *
 * <p>For {@link Ddim#invert}, {@link Ddim#vary} and {@link Ddim#inpaint}, the number of images comes
 * from the input batch, and {@code count} and {@code noise} are not used.
 *
 * @param count images to generate, >= 1
 * @param steps network evaluations, 1 .. {@link #MAX_STEPS}
 * @param seed the noise seed
 * @param useEma use the EMA weights when the model has them
 * @param sampler the sampler
 * @param eta DDIM's eta, 0 .. {@link #MAX_ETA} (0: deterministic; 1: DDPM-like variance)
 * @param firstIndex image i of this request is image firstIndex + i of the seed's sequence, 0 .. {@link #MAX_FIRST_INDEX}
 * @param batchSize images per pass through the sampling loop, a memory bound that never changes results, >= 1
 * @param microBatch images per network evaluation (short ones padded); results depend on it, 1 .. {@link #MAX_MICRO_BATCH}
 * @param precision the network's arithmetic (FLOAT32, or BFLOAT16 for speed)
 * @param network which implementation of the network runs (AUTO: FUSED on the CPU, EAGER elsewhere)
 * @param noise starting noise (count images), or null to draw it from the seed
 * @param images each image's own (seed, index) instead of (seed, firstIndex + i), to sample several requests in one
 *        call with the pixels each gets alone (count ids), or null
 * @param listener per-step progress and cancellation, or null
 * @param previewEvery give the listener the predicted clean images every this many steps and at the last
 *        ({@link SampleListener.SampleProgress#preview()}), or 0 for none
 * @param classes class-conditional models: empty (no class: the unconditional prediction), one class for every
 *        image, or one per image (count classes), each 0 .. classes - 1 ({@link ModelConfig#classIndex(String)} finds
 *        one by name)
 * @param guidance classifier-free guidance weight w, 0 .. {@link #MAX_GUIDANCE}: the prediction is
 *        uncond + w * (cond - uncond); 1 (the default) the plain conditional one, 0 the unconditional one, larger
 *        values follow the class more closely. Both halves run in one network batch.
 */
public record SampleOptions(int count, int steps, long seed, boolean useEma, Sampler sampler, double eta, long firstIndex,
        int batchSize, int microBatch, Precision precision, Network network, Noise noise, List<ImageId> images,
        SampleListener listener, int previewEvery, List<Integer> classes, double guidance) {
    public static final int DEFAULT_COUNT = 16;
    public static final int DEFAULT_STEPS = 20;
    public static final long DEFAULT_SEED = 42;
    public static final int DEFAULT_BATCH_SIZE = 64;
    public static final int DEFAULT_MICRO_BATCH = 16;
    /** The most network evaluations one call may take (include/ddim.h's DDIM_MAX_STEPS). */
    public static final int MAX_STEPS = ddim_h.DDIM_MAX_STEPS();
    /** The largest micro-batch (DDIM_MAX_MICRO_BATCH): the network's batch is padded to it. */
    public static final int MAX_MICRO_BATCH = ddim_h.DDIM_MAX_MICRO_BATCH();
    /** The largest eta (DDIM_MAX_ETA). */
    public static final double MAX_ETA = ddim_h.DDIM_MAX_ETA();
    /** The largest firstIndex, 2^62 (DDIM_MAX_FIRST_INDEX), so that image indices never overflow. */
    public static final long MAX_FIRST_INDEX = ddim_h.DDIM_MAX_FIRST_INDEX();
    /** The largest guidance weight. */
    public static final double MAX_GUIDANCE = ddim_h.DDIM_MAX_GUIDANCE();

    public SampleOptions {
        if (count < 1) {
            throw new IllegalArgumentException("count must be >= 1, got " + count);
        }
        if (steps < 1 || steps > MAX_STEPS) {
            throw new IllegalArgumentException("steps must lie in [1, " + MAX_STEPS + "], got " + steps);
        }
        if (sampler == null) {
            throw new IllegalArgumentException("sampler must not be null");
        }
        if (!(eta >= 0 && eta <= MAX_ETA)) {
            throw new IllegalArgumentException("eta must lie in [0, " + MAX_ETA + "], got " + eta);
        }
        if (firstIndex < 0 || firstIndex > MAX_FIRST_INDEX) {
            throw new IllegalArgumentException("firstIndex must lie in [0, 2^62], got " + firstIndex);
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize must be >= 1, got " + batchSize);
        }
        if (microBatch < 1 || microBatch > MAX_MICRO_BATCH) {
            throw new IllegalArgumentException("microBatch must lie in [1, " + MAX_MICRO_BATCH + "], got " + microBatch);
        }
        if (precision == null) {
            throw new IllegalArgumentException("precision must not be null");
        }
        if (network == null) {
            throw new IllegalArgumentException("network must not be null");
        }
        if (noise != null && noise.count() != count) {
            throw new IllegalArgumentException("the noise holds " + noise.count() + " image(s) but count is " + count);
        }
        if (images != null) {
            images = List.copyOf(images);
            if (images.size() != count) {
                throw new IllegalArgumentException("images holds " + images.size() + " id(s) but count is " + count);
            }
        }
        if (previewEvery < 0) {
            throw new IllegalArgumentException("previewEvery must be >= 0 (0: no previews), got " + previewEvery);
        }
        classes = classes == null ? List.of() : List.copyOf(classes);
        if (classes.size() > 1 && classes.size() != count) {
            throw new IllegalArgumentException("classes holds " + classes.size() + " classes but count is " + count
                    + ": give one class for all images or one per image");
        }
        for (int label : classes) {
            if (label < 0) {
                throw new IllegalArgumentException("a class must be >= 0, got " + label);
            }
        }
        if (!(guidance >= 0 && guidance <= MAX_GUIDANCE)) {
            throw new IllegalArgumentException("guidance must lie in [0, " + MAX_GUIDANCE + "], got " + guidance);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    /** 16 images, 20 steps, seed 42, EMA weights when the model has them, deterministic DDIM. */
    public static SampleOptions defaults() {
        return builder().build();
    }

    /** A builder starting from these options. */
    public Builder toBuilder() {
        Builder builder = new Builder();
        builder.count = count;
        builder.steps = steps;
        builder.seed = seed;
        builder.useEma = useEma;
        builder.sampler = sampler;
        builder.eta = eta;
        builder.firstIndex = firstIndex;
        builder.batchSize = batchSize;
        builder.microBatch = microBatch;
        builder.precision = precision;
        builder.network = network;
        builder.noise = noise;
        builder.images = images;
        builder.listener = listener;
        builder.previewEvery = previewEvery;
        builder.classes = classes;
        builder.guidance = guidance;
        return builder;
    }

    /** Builds {@link SampleOptions}; every setter is optional and checks its value. */
    public static final class Builder {
        private int count = DEFAULT_COUNT;
        private int steps = DEFAULT_STEPS;
        private long seed = DEFAULT_SEED;
        private boolean useEma = true;
        private Sampler sampler = Sampler.DDIM;
        private double eta;
        private long firstIndex;
        private int batchSize = DEFAULT_BATCH_SIZE;
        private int microBatch = DEFAULT_MICRO_BATCH;
        private Precision precision = Precision.FLOAT32;
        private Network network = Network.AUTO;
        private Noise noise;
        private List<ImageId> images;
        private SampleListener listener;
        private int previewEvery;
        private List<Integer> classes = List.of();
        private double guidance = 1;

        private Builder() {}

        /** Images to generate, >= 1. */
        public Builder count(int count) {
            this.count = count;
            return this;
        }

        /** Network evaluations, 1 .. {@link SampleOptions#MAX_STEPS}. More steps: better images, proportionally slower. */
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

        /** DDIM's eta, 0 .. 1 (default 0: deterministic; 1: DDPM-like variance). */
        public Builder eta(double eta) {
            this.eta = eta;
            return this;
        }

        /** Start at image {@code firstIndex} of the seed's sequence (default 0), e.g. to continue a large request. */
        public Builder firstIndex(long firstIndex) {
            this.firstIndex = firstIndex;
            return this;
        }

        /** Images per pass through the sampling loop (default 64): bounds memory, never changes results. */
        public Builder batchSize(int batchSize) {
            this.batchSize = batchSize;
            return this;
        }

        /**
         * Images per network evaluation (default 16). libtorch picks its kernels, and so its
         * rounding, by batch shape; one fixed shape makes every image independent of the request.
         * Results depend on it: keep it fixed to reproduce them. A smaller value is faster for a
         * handful of images.
         */
        public Builder microBatch(int microBatch) {
            this.microBatch = microBatch;
            return this;
        }

        /** The network's arithmetic (default FLOAT32; BFLOAT16 is faster on CPUs with AVX512-BF16). */
        public Builder precision(Precision precision) {
            this.precision = precision;
            return this;
        }

        /** Which implementation of the network runs (default AUTO: the fused network on the CPU, see {@link Network}). */
        public Builder network(Network network) {
            this.network = network;
            return this;
        }

        /** Start from this noise instead of the seed's (sets count to its image count); null for the seed's. */
        public Builder noise(Noise noise) {
            this.noise = noise;
            if (noise != null) {
                this.count = noise.count();
            }
            return this;
        }

        /**
         * Sample these images (sets count to their number; null: images firstIndex .. of the seed):
         * image i is drawn as image {@code images.get(i).index()} of {@code images.get(i).seed()}, so
         * requests of different seeds and indices can share one call, each image bit-identical to its
         * own request's (with the same steps, sampler, eta and microBatch). A server batches this way.
         */
        public Builder images(List<ImageId> images) {
            this.images = images;
            if (images != null) {
                this.count = images.size();
            }
            return this;
        }

        /** Per-step progress and cancellation (default none). */
        public Builder listener(SampleListener listener) {
            this.listener = listener;
            return this;
        }

        /**
         * Hand the listener the predicted clean images after every {@code steps}-th step and the last
         * one of each chunk, to show the denoising as it happens (default 0: none; each preview costs
         * a copy of the chunk's images).
         */
        public Builder previewEvery(int steps) {
            this.previewEvery = steps;
            return this;
        }

        /**
         * The class of every image ({@code classes(7)}), or of each image ({@code classes(0, 7, 9)}, which sets count
         * to their number), for class-conditional models; none (the default) samples without a class.
         */
        public Builder classes(int... classes) {
            java.util.Objects.requireNonNull(classes, "classes");
            return classes(java.util.Arrays.stream(classes).boxed().toList());
        }

        /**
         * {@code perClass} images of each of the classes 0 .. classes - 1, class by class (sets count to their
         * product): a grid of {@code perClass} columns then shows one class per row.
         */
        public Builder classRows(int classes, int perClass) {
            if (classes < 1 || perClass < 1) {
                throw new IllegalArgumentException("classRows needs classes >= 1 and perClass >= 1, got " + classes + " and " + perClass);
            }
            int[] rows = new int[Math.multiplyExact(classes, perClass)];
            for (int i = 0; i < rows.length; i++) {
                rows[i] = i / perClass;
            }
            this.count = rows.length;
            return classes(rows);
        }

        /** As {@link #classes(int...)}; an empty list means no class. */
        public Builder classes(List<Integer> classes) {
            java.util.Objects.requireNonNull(classes, "classes");
            this.classes = List.copyOf(classes);
            if (classes.size() > 1) {
                this.count = classes.size();
            }
            return this;
        }

        /**
         * Classifier-free guidance weight (default 1: the plain conditional prediction; 0 ignores the class; 2..5
         * follow it more closely at some cost in variety). Each step then evaluates the network twice per image.
         */
        public Builder guidance(double guidance) {
            this.guidance = guidance;
            return this;
        }

        public SampleOptions build() {
            return new SampleOptions(count, steps, seed, useEma, sampler, eta, firstIndex, batchSize, microBatch, precision, network, noise,
                    images, listener, previewEvery, classes, guidance);
        }
    }
}
