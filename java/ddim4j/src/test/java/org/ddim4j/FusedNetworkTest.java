package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** {@link Network#FUSED} from Java on the shipped model, and the CPU memory cache's settings. */
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
    void fusedSamplesMatchEagerOnesToFloatRoundingAndKeepTheirGuarantees() {
        SampleOptions.Builder options = SampleOptions.builder().count(8).steps(10).seed(5);
        ImageBatch eager = ddim.sample(options.build());
        ImageBatch fused = ddim.sample(options.network(Network.FUSED).build());
        double difference = fused.meanAbsoluteDifference(eager);
        assertTrue(difference < 1e-4, "mean absolute pixel difference fused vs eager: " + difference);
        // Same seed, same pixels; image i depends only on the seed and i.
        assertArrayEquals(fused.pixels(), ddim.sample(options.build()).pixels());
        ImageBatch lastThree = ddim.sample(options.count(3).firstIndex(5).build());
        assertArrayEquals(fused.slice(5, 8).pixels(), lastThree.pixels());
    }

    @Test
    void fusedRejectsBfloat16BeforeAnythingRuns() {
        SampleOptions.Builder options = SampleOptions.builder().network(Network.FUSED).precision(Precision.BFLOAT16);
        assertThrows(IllegalArgumentException.class, options::build);
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
