package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Ddim.predict is the samplers' network evaluation: a sampler written with it in Java gives the library's images. */
class PredictTest {
    private static final long SEED = 31;
    private static Ddim ddim;

    @BeforeAll
    static void trainTinyModel() {
        ddim = TestModels.trainedTiny(4);  // a network whose output counts (a fresh one predicts zero noise)
        ddim.setNormalizer(new float[] {0.4f}, new float[] {0.3f});
    }

    @AfterAll
    static void close() {
        ddim.close();
    }

    private static float[] filled(int n, float value) {
        float[] values = new float[n];
        Arrays.fill(values, value);
        return values;
    }

    /** The predicted images as the samplers return them: de-normalised and clamped to [0, 1], in float32 like the core. */
    private static float[] pixels(Ddim model, float[] image) {
        float[][] normalizer = model.normalizer();
        int plane = model.config().imageSize() * model.config().imageSize();
        float[] pixels = new float[image.length];
        for (int i = 0; i < image.length; i++) {
            int channel = i / plane % model.config().channels();
            pixels[i] = Math.clamp(image[i] * normalizer[1][channel] + normalizer[0][channel], 0f, 1f);
        }
        return pixels;
    }

    @Test
    void predictionAtTOneFromTheSeedsNoiseIsOneStepOfSampling() {
        SampleOptions options = SampleOptions.builder().count(5).steps(1).seed(SEED).build();
        float[] sampled = ddim.sample(options).pixels();
        Ddim.Prediction p = ddim.predict(ddim.noise(SEED, 0, 5).values(), filled(5, 1f), true);
        assertArrayEquals(sampled, pixels(ddim, p.image()), "bit for bit");
        // x_t = signal x_0 + noise eps holds for the two predictions (float32 rounding aside).
        Schedule.Rates r = ddim.config().schedule().rates(1f);
        float[] noisy = ddim.noise(SEED, 0, 5).values();
        for (int i = 0; i < noisy.length; i++) {
            assertEquals(noisy[i], r.signal()[0] * p.image()[i] + r.noise()[0] * p.noise()[i], 1e-4, "x_t at " + i);
        }
    }

    @Test
    void aDdimLoopWrittenWithPredictGivesTheLibrarysImages() {
        int steps = 4;
        int count = 3;
        SampleOptions options = SampleOptions.builder().count(count).steps(steps).seed(SEED).build();
        float[] sampled = ddim.sample(options).pixels();
        float[] x = ddim.noise(SEED, 0, count).values();
        Ddim.Prediction p = null;
        for (int k = 0; k < steps; k++) {
            float t = (float) (1.0 - (double) k / steps);
            float next = (float) (1.0 - (double) (k + 1) / steps);
            p = ddim.predict(x, filled(count, t), options);
            Schedule.Rates r = ddim.config().schedule().rates(next);
            for (int i = 0; i < x.length; i++) {
                x[i] = r.signal()[0] * p.image()[i] + r.noise()[0] * p.noise()[i];
            }
        }
        float[] mine = pixels(ddim, p.image());
        double maxDifference = 0;
        for (int i = 0; i < mine.length; i++) {
            maxDifference = Math.max(maxDifference, Math.abs(mine[i] - sampled[i]));
        }
        // Schedule.rates computes in double precision, the samplers in float32: the next step's rates may
        // differ in the last bit, and nothing more. A wrong prediction moves pixels by tenths.
        assertTrue(maxDifference < 1e-5, "max |Java DDIM - sample()| = " + maxDifference);
    }

    @Test
    void theEmaChoiceAndTheMicroBatchAreTheSamplers() {
        try (Ddim withEma = Ddim.create(TestModels.tiny(), Device.cpu(), 8)) {
            Trainer trainer = withEma.trainer(TrainOptions.builder().learningRate(1e-2).emaDecay(0.5).seed(8).build());
            float[] batch = new float[4 * 16 * 16];
            for (int i = 0; i < batch.length; i++) {
                batch[i] = ((i * 31) % 97) / 96f;
            }
            for (int step = 0; step < 3; step++) {
                trainer.step(batch);
            }
            assertTrue(withEma.hasEma());
            float[] noise = withEma.noise(SEED, 0, 3).values();
            for (boolean useEma : new boolean[] {true, false}) {
                for (int microBatch : new int[] {16, 2}) {
                    SampleOptions options = SampleOptions.builder().count(3).steps(1).seed(SEED).useEma(useEma).microBatch(microBatch).build();
                    Ddim.Prediction p = withEma.predict(noise, filled(3, 1f), options);
                    assertArrayEquals(withEma.sample(options).pixels(), pixels(withEma, p.image()),
                            "useEma " + useEma + ", micro-batch " + microBatch);
                }
            }
            assertFalse(Arrays.equals(withEma.predict(noise, filled(3, 0.5f), true).noise(),
                    withEma.predict(noise, filled(3, 0.5f), false).noise()), "the EMA weights are not the raw ones");
        }
    }

    @Test
    void eachImageHasItsOwnTime() {
        float[] noise = ddim.noise(SEED, 0, 3).values();
        float[] times = {1f, 0.4f, 0.05f};
        Ddim.Prediction together = ddim.predict(noise, times, true);
        int perImage = ddim.config().pixelsPerImage();
        for (int i = 0; i < 3; i++) {
            float[] one = Arrays.copyOfRange(noise, i * perImage, (i + 1) * perImage);
            Ddim.Prediction alone = ddim.predict(one, new float[] {times[i]}, true);
            assertArrayEquals(alone.noise(), Arrays.copyOfRange(together.noise(), i * perImage, (i + 1) * perImage), "image " + i);
            assertArrayEquals(alone.image(), Arrays.copyOfRange(together.image(), i * perImage, (i + 1) * perImage), "image " + i);
        }
    }

    @Test
    void badArgumentsAreRefusedBeforeTheNativeCall() {
        int perImage = ddim.config().pixelsPerImage();
        float[] two = new float[2 * perImage];
        float[] times = {0.5f, 0.5f};
        assertThrows(NullPointerException.class, () -> ddim.predict(null, times, true));
        assertThrows(NullPointerException.class, () -> ddim.predict(two, null, true));
        assertThrows(NullPointerException.class, () -> ddim.predict(two, times, (SampleOptions) null));
        assertThrows(IllegalArgumentException.class, () -> ddim.predict(new float[0], new float[0], true));
        IllegalArgumentException size = assertThrows(IllegalArgumentException.class,
                () -> ddim.predict(new float[2 * perImage - 1], times, true));
        assertTrue(size.getMessage().contains(String.valueOf(2 * perImage)), size.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ddim.predict(two, new float[] {0.5f}, true));
        IllegalArgumentException late = assertThrows(IllegalArgumentException.class, () -> ddim.predict(two, new float[] {0.5f, 1.5f}, true));
        assertTrue(late.getMessage().contains("t must lie in [0, 1]"), late.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ddim.predict(two, new float[] {-0.1f, 0.5f}, true));
        assertThrows(IllegalArgumentException.class, () -> ddim.predict(two, new float[] {Float.NaN, 0.5f}, true));
        float[] infinite = two.clone();
        infinite[7] = Float.POSITIVE_INFINITY;
        IllegalArgumentException finite = assertThrows(IllegalArgumentException.class, () -> ddim.predict(infinite, times, true));
        assertTrue(finite.getMessage().contains("finite"), finite.getMessage());
        float[] large = filled(2 * perImage, 1e3f);  // any finite values are fine
        assertEquals(2 * perImage, ddim.predict(large, times, true).image().length);
        Ddim closed = Ddim.create(TestModels.tiny(), Device.cpu());
        closed.close();
        assertThrows(IllegalStateException.class, () -> closed.predict(new float[perImage], new float[] {1f}, true));
    }
}
