package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;

/** models/fashion-mnist-32.safetensors: small, loads, and draws images with Fashion-MNIST's statistics. */
class ShippedModelTest {
    private static final Path MODEL = Path.of(System.getProperty("ddim4j.repo", ".."), "models", "fashion-mnist-32.safetensors");

    @Test
    void shippedModelIsSmallAndSamplesClothingLikeImages() throws Exception {
        assertTrue(Files.size(MODEL) <= 6_000_000, "at most 6 MB");
        try (Ddim ddim = Ddim.open(MODEL, Device.cpu())) {
            assertEquals(1, ddim.config().channels());
            assertEquals(32, ddim.config().imageSize());
            assertArrayEquals(new int[] {32, 64, 96}, ddim.config().widths());
            assertFalse(ddim.hasEma(), "exported with the EMA weights as the only weights");
            float[] pixels = ddim.sample(SampleOptions.builder().count(16).steps(10).seed(42).build()).pixels();
            double mean = 0;
            int dark = 0;
            for (float p : pixels) {
                mean += p;
                dark += p < 0.05f ? 1 : 0;
            }
            mean /= pixels.length;
            // Fashion-MNIST: mean pixel ~0.29, about half the pixels are background (black).
            assertEquals(0.29, mean, 0.1, "mean pixel");
            assertTrue(dark > pixels.length / 4 && dark < pixels.length * 3 / 4, "background fraction " + dark / (double) pixels.length);
        }
    }
}
