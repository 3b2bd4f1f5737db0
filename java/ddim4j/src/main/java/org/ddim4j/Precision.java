package org.ddim4j;

/** The network's arithmetic during sampling; the sampler's own math stays float32. */
public enum Precision {
    /** The default. */
    FLOAT32,
    /**
     * A bfloat16 copy of the network: about twice as fast on CPUs with AVX512-BF16 for 64x64 images,
     * at a small cost in accuracy (benchmarks/RESULTS.md gives both).
     */
    BFLOAT16
}
