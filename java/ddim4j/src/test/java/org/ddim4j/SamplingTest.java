package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Arrays;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SamplingTest {
    @TempDir
    Path dir;

    @Test
    void samplesHaveTheRightShapeRangeAndAreFinite() {
        try (Ddim ddim = Ddim.create(ModelConfig.defaults(), Device.cpu(), 1)) {
            ImageBatch images = ddim.sample(SampleOptions.builder().count(2).steps(2).seed(3).build());
            assertEquals(2, images.count());
            assertEquals(3, images.channels());
            assertEquals(64, images.height());
            assertEquals(64, images.width());
            float[] pixels = images.pixels();
            assertEquals(2 * 3 * 64 * 64, pixels.length);
            for (float p : pixels) {
                assertTrue(Float.isFinite(p) && p >= 0 && p <= 1, "pixel " + p);
            }
        }
    }

    @Test
    void sameSeedIsBitIdenticalAndDifferentSeedDiffers() {
        // Trained a few steps: the network's output, not only the noise, is in every image.
        try (Ddim ddim = TestModels.trainedTiny(5)) {
            SampleOptions options = SampleOptions.builder().count(3).steps(4).seed(11).build();
            float[] first = ddim.sample(options).pixels();
            float[] second = ddim.sample(options).pixels();
            float[] other = ddim.sample(SampleOptions.builder().count(3).steps(4).seed(12).build()).pixels();
            assertArrayEquals(first, second);
            assertFalse(Arrays.equals(first, other));
        }
    }

    @Test
    void saveThenOpenGivesTheSameSamples() {
        Path file = dir.resolve("new/directory/model.safetensors");
        SampleOptions options = SampleOptions.builder().count(2).steps(3).seed(9).build();
        float[] before;
        try (Ddim ddim = TestModels.trained(TestModels.tinyRgb(), 8)) { // trained: a fresh network's output is zero
            ddim.setNormalizer(new float[] {0.2f, 0.4f, 0.6f}, new float[] {0.3f, 0.2f, 0.1f});
            before = ddim.sample(options).pixels();
            ddim.save(file);
            try (Ddim fresh = Ddim.create(TestModels.tinyRgb(), Device.cpu(), 8)) { // so the weights show in the pixels
                fresh.setNormalizer(new float[] {0.2f, 0.4f, 0.6f}, new float[] {0.3f, 0.2f, 0.1f});
                assertFalse(Arrays.equals(before, fresh.sample(options).pixels()));
            }
        }
        try (Ddim reopened = Ddim.open(file, Device.cpu())) {
            assertEquals(TestModels.tinyRgb(), reopened.config());
            assertArrayEquals(new float[] {0.2f, 0.4f, 0.6f}, reopened.normalizer()[0]);
            assertArrayEquals(before, reopened.sample(options).pixels());
        }
    }

    @Test
    void invalidOptionsAreRejectedBeforeNativeCode() {
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().count(0).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().steps(0).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().steps(-3).build());
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu())) {
            assertThrows(IllegalArgumentException.class, () -> ddim.setNormalizer(new float[] {0f}, new float[] {Float.NaN}));
            assertThrows(IllegalArgumentException.class, () -> ddim.setNormalizer(new float[] {0f, 0f}, new float[] {1f, 1f}));
            assertThrows(NullPointerException.class, () -> ddim.sample(null));
        }
    }

    @Test
    void everySamplerRunsAndDeterministicDdimIsTheDefault() {
        try (Ddim ddim = TestModels.trainedTiny(5)) {
            SampleOptions.Builder options = SampleOptions.builder().count(2).steps(4).seed(3);
            float[] reference = ddim.sample(options.build()).pixels();
            assertArrayEquals(reference, ddim.sample(options.sampler(Sampler.DDIM).eta(0).build()).pixels());
            for (Sampler sampler : Sampler.values()) {
                float[] pixels = ddim.sample(options.sampler(sampler).eta(1).build()).pixels();
                assertArrayEquals(pixels, ddim.sample(options.sampler(sampler).eta(1).build()).pixels(), sampler.name());
                for (float p : pixels) {
                    assertTrue(p >= 0 && p <= 1);
                }
            }
            assertFalse(Arrays.equals(reference, ddim.sample(options.sampler(Sampler.DDIM).eta(1).build()).pixels()));
        }
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().eta(-0.1).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().eta(Double.NaN).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().sampler(null).build());
    }

    @Test
    void defaultsAreSixteenImagesTwentyStepsSeedFortyTwo() {
        SampleOptions options = SampleOptions.defaults();
        assertEquals(16, options.count());
        assertEquals(20, options.steps());
        assertEquals(42, options.seed());
        assertTrue(options.useEma());
        assertEquals(Sampler.DDIM, options.sampler());
        assertEquals(0.0, options.eta());
    }
}
