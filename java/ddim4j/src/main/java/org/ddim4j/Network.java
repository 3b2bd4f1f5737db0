package org.ddim4j;

/** Which implementation of the network sampling runs ({@link SampleOptions.Builder#network}). */
public enum Network {
    /**
     * The default: libtorch's modules, as training runs them. PyTorch computes the same bits from
     * the same weights ({@code scripts/python/ddim4j_torch.py}).
     */
    EAGER,
    /**
     * CPU, float32: the U-Net as one oneDNN inference plan (activations kept in oneDNN's blocked
     * layout, SiLU and the residual add fused into the convolutions, buffers reused across steps).
     * Faster than {@link #EAGER} (benchmarks/RESULTS.md gives both and the difference in pixels,
     * float32 rounding); deterministic and batch invariant like it. Not with {@link Precision#BFLOAT16}
     * or a CUDA model, and only where {@link Ddim#hasFusedNetwork()}. The plan, built on the first
     * call, stays with the model for later calls.
     */
    FUSED
}
