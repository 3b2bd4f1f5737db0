package org.ddim4j;

/** Which implementation of the network sampling runs ({@link SampleOptions.Builder#network}). */
public enum Network {
    /**
     * libtorch's modules, as training runs them. PyTorch computes the same bits from the same
     * weights ({@code scripts/python/ddim4j_torch.py}); the parity tests use it.
     */
    EAGER,
    /**
     * CPU: the U-Net as one oneDNN inference plan (activations kept in oneDNN's blocked layout, SiLU
     * and the residual add fused into the convolutions, Winograd 3x3 convolutions: oneDNN's on
     * AVX-512, ddim4j's own F(2x2, 3x3) on AVX2; buffers reused across steps). About 2x as fast as
     * {@link #EAGER} on AVX-512 (benchmarks/RESULTS.md); pixels differ from it by float32 rounding:
     * over 64 images x 20 DDIM steps of the shipped models at most 5.6e-6 (unconditional) and 6.6e-5
     * (class model, guidance 3) in a pixel of [0, 1] on AVX-512, 4.1e-5 and 6.8e-5 on AVX2.
     * Deterministic and batch invariant like it.
     * With {@link Precision#BFLOAT16}: bfloat16 convolutions accumulating in float32, on CPUs with
     * AVX512-BF16 or AMX only ({@link Ddim#hasFusedBfloat16()}). Not for a CUDA model, and only where
     * {@link Ddim#hasFusedNetwork()}. The plans, built on the first call, stay with the model.
     */
    FUSED,
    /**
     * The default: {@link #FUSED} for a CPU model wherever {@link Ddim#hasFusedNetwork()}, else
     * {@link #EAGER} (CUDA, builds without oneDNN). With {@link Precision#BFLOAT16} on a CPU without
     * AVX512-BF16 or AMX it computes in float32 (emulated bfloat16 is ~10x slower) and logs why once;
     * choose {@link #EAGER} to force bfloat16 there.
     */
    AUTO
}
