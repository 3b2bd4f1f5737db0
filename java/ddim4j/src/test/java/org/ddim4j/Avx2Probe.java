package org.ddim4j;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * Run in a child JVM whose oneDNN is capped at AVX2 ({@code DNNL_MAX_CPU_ISA=AVX2}), as on a CPU without AVX-512:
 * prints what the fused network does there with bfloat16 requests (see FusedNetworkTest).
 */
final class Avx2Probe {
    private Avx2Probe() {}

    public static void main(String[] args) {
        try (Ddim ddim = Ddim.open(Path.of(args[0]), Device.cpu())) {
            SampleOptions.Builder options = SampleOptions.builder().count(2).steps(3).seed(4);
            float[] float32 = ddim.sample(options.network(Network.FUSED).build()).pixels();
            float[] automatic = ddim.sample(options.network(Network.AUTO).precision(Precision.BFLOAT16).build()).pixels();
            System.out.println("hasFusedBfloat16=" + Ddim.hasFusedBfloat16());
            System.out.println("autoBfloat16IsFusedFloat32=" + Arrays.equals(float32, automatic));
            try {
                ddim.sample(options.network(Network.FUSED).build());
                System.out.println("fusedBfloat16=ran");
            } catch (IllegalArgumentException e) {
                System.out.println("fusedBfloat16=refused: IllegalArgumentException " + e.getMessage());
            }
        }
    }
}
