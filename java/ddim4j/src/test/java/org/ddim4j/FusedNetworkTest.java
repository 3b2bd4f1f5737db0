package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** {@link Network#FUSED}, the default through {@link Network#AUTO}, from Java on the shipped model; the CPU memory cache's settings. */
class FusedNetworkTest {
    private static final Path MODEL = Path.of(System.getProperty("ddim4j.repo", ".."), "models", "fashion-mnist-32.safetensors");

    private static Ddim ddim;

    @BeforeAll
    static void open() {
        ddim = Ddim.open(MODEL, Device.cpu());
    }

    @AfterAll
    static void close() {
        ddim.close();
    }

    @Test
    void thisBuildHasTheFusedNetwork() {
        // scripts/setup.sh installs libdnnl-dev, so the library built here must have it.
        assertTrue(Ddim.hasFusedNetwork());
    }

    @Test
    void theDefaultIsTheFusedNetworkCloseToEagerDeterministicAndBatchInvariant() {
        SampleOptions.Builder options = SampleOptions.builder().count(8).steps(20).seed(5);
        ImageBatch byDefault = ddim.sample(options.build());
        assertArrayEquals(ddim.sample(options.network(Network.FUSED).build()).pixels(), byDefault.pixels(),
                "AUTO is FUSED for a CPU model");
        ImageBatch eager = ddim.sample(options.network(Network.EAGER).build());
        double largest = byDefault.maxAbsoluteDifference(eager);
        // The README's figure for the shipped models (20 steps): float32 rounding, Winograd's included.
        assertTrue(largest > 0 && largest < 2e-3, "max absolute pixel difference fused vs eager: " + largest);
        // Same seed, same pixels; image i depends only on the seed and i.
        options.network(Network.AUTO);
        assertArrayEquals(byDefault.pixels(), ddim.sample(options.build()).pixels());
        ImageBatch lastThree = ddim.sample(options.count(3).firstIndex(5).build());
        assertArrayEquals(byDefault.slice(5, 8).pixels(), lastThree.pixels());
    }

    @Test
    void theShippedClassModelSamplesWithGuidanceOnTheFusedNetworkAsOnTheEagerOne() {
        Path classModel = MODEL.resolveSibling("fashion-mnist-32-classes.safetensors");
        try (Ddim classes = Ddim.open(classModel, Device.cpu())) {
            SampleOptions.Builder options = SampleOptions.builder().count(6).steps(20).seed(9)
                    .classes(0, 1, 5, 7, 9, 3).guidance(3);
            ImageBatch byDefault = classes.sample(options.build());
            ImageBatch eager = classes.sample(options.network(Network.EAGER).build());
            double largest = byDefault.maxAbsoluteDifference(eager);
            assertTrue(largest > 0 && largest < 2e-3, "max absolute pixel difference fused vs eager: " + largest);
            options.network(Network.AUTO);
            assertArrayEquals(byDefault.pixels(), classes.sample(options.build()).pixels());
            // Images 4 and 5 alone, with their classes: the same bits as in the batch of six.
            ImageBatch lastTwo = classes.sample(options.count(2).firstIndex(4).classes(9, 3).build());
            assertArrayEquals(byDefault.slice(4, 6).pixels(), lastTwo.pixels());
        }
    }

    @Test
    void fusedBfloat16RunsWhereTheCpuHasItAndIsRefusedClearlyElsewhere() {
        SampleOptions.Builder options = SampleOptions.builder().count(4).steps(10).seed(2).network(Network.FUSED);
        ImageBatch float32 = ddim.sample(options.build());
        options.precision(Precision.BFLOAT16);
        if (!Ddim.hasFusedBfloat16()) {
            IllegalArgumentException error = assertThrows(IllegalArgumentException.class, () -> ddim.sample(options.build()));
            assertTrue(error.getMessage().contains("AVX512-BF16"), error.getMessage());
            // AUTO computes such a request in float32 here: the fused float32 pixels.
            assertArrayEquals(float32.pixels(), ddim.sample(options.network(Network.AUTO).build()).pixels());
            return;
        }
        ImageBatch bfloat16 = ddim.sample(options.build());
        double mean = bfloat16.meanAbsoluteDifference(float32);
        assertTrue(mean > 0 && mean < 2e-2, "mean absolute pixel difference bfloat16 vs float32: " + mean);
        assertArrayEquals(bfloat16.pixels(), ddim.sample(options.network(Network.AUTO).build()).pixels(),
                "AUTO is the fused bfloat16 network where the CPU has it");
    }

    @Test
    void onACpuWithoutAvx512AutoComputesBfloat16RequestsInFloat32AndSaysWhy() throws Exception {
        // oneDNN capped at AVX2 in a child JVM: what a Zen 3 or any AVX2-only CPU runs.
        ChildJvm.Result result = ChildJvm.withoutNatives().environment("DNNL_MAX_CPU_ISA", "AVX2")
                .run(Avx2Probe.class.getName(), MODEL.toString());
        assertEquals(0, result.exitCode(), result.output());
        assertTrue(result.output().contains("hasFusedBfloat16=false"), result.output());
        assertTrue(result.output().contains("autoBfloat16IsFusedFloat32=true"), result.output());
        String refusal = result.output().lines().filter(line -> line.startsWith("fusedBfloat16=")).findFirst().orElse("");
        assertTrue(refusal.startsWith("fusedBfloat16=refused: IllegalArgumentException") && refusal.contains("no AVX512-BF16 or AMX"),
                result.output());
        // Logged once, with the way out.
        assertEquals(1, result.output().split("Network.EAGER forces bfloat16", -1).length - 1, result.output());
    }

    @Test
    void cpuCacheCanBeLimitedReleasedAndNeverChangesPixels() {
        SampleOptions options = SampleOptions.builder().count(4).steps(3).build();
        ImageBatch cached = ddim.sample(options);
        try {
            Ddim.setCpuCacheLimit(0);
            assertArrayEquals(cached.pixels(), ddim.sample(options).pixels());
        } finally {
            Ddim.setCpuCacheLimit(1L << 30);
        }
        Ddim.releaseCpuCache();
        assertArrayEquals(cached.pixels(), ddim.sample(options).pixels());
        assertThrows(IllegalArgumentException.class, () -> Ddim.setCpuCacheLimit(-1));
    }
}
