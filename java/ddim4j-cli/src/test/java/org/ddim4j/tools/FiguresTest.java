package org.ddim4j.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;

import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.ImageBatch;
import org.ddim4j.Loss;
import org.ddim4j.ModelConfig;
import org.ddim4j.SampleOptions;
import org.ddim4j.TestModels;
import org.ddim4j.data.Dataset;
import org.ddim4j.data.Datasets;
import org.junit.jupiter.api.Test;

/** The reference's figures, sampling trajectories, the noise embedding and the LR range test. */
class FiguresTest {
    private static final Path MODEL = Path.of(System.getProperty("ddim4j.repo", ".."), "models", "fashion-mnist-32.safetensors");

    private static ImageBatch firstImage() {
        Dataset data = Datasets.fashionMnist(1, 32, 1);
        return new ImageBatch(1, 1, 32, 32, data.range(0, 1));
    }

    @Test
    void embeddingRowsAreSinesThenCosines() {
        float[][] rows = ModelConfig.defaults().noiseEmbedding(0f, 0.5f);
        assertEquals(32, rows[0].length);
        for (int j = 0; j < 16; j++) {
            assertEquals(0f, rows[0][j], 1e-6f);
            assertEquals(1f, rows[0][16 + j], 1e-6f);
            // The formula itself: frequencies log-spaced from 1 to 1000, angle 2 pi f v, at v = 0.5.
            double frequency = Math.exp(Math.log(1000) * j / 15);
            assertEquals(Math.sin(2 * Math.PI * frequency * 0.5), rows[1][j], 2e-3);
            assertEquals(Math.cos(2 * Math.PI * frequency * 0.5), rows[1][16 + j], 2e-3);
        }
        assertTrue(Figures.embedding(ModelConfig.defaults(), 50).getWidth() > 0);
    }

    @Test
    void schedulesFigureHasOneRowPerScheduleAndTenColumns() {
        BufferedImage figure = Figures.schedules(firstImage(), 10, 0);
        BufferedImage five = Figures.schedules(firstImage(), 5, 0);
        // 64-pixel cells (32-pixel images scaled 2x) plus gaps and labels: more columns, wider figure, same height.
        assertEquals(5 * (64 + 4), figure.getWidth() - five.getWidth());
        assertEquals(figure.getHeight(), five.getHeight());
        assertThrows(IllegalArgumentException.class, () -> Figures.schedules(firstImage(), 1, 0));
    }

    @Test
    void trajectoriesStartAtTheNoiseAndEndAtTheSamples() {
        try (Ddim ddim = Ddim.open(MODEL, Device.cpu())) {
            SampleOptions options = SampleOptions.builder().count(3).steps(6).seed(5).build();
            List<ImageBatch> trajectories = ddim.trajectories(options);
            ImageBatch samples = ddim.sample(options);
            assertEquals(3, trajectories.size());
            for (int i = 0; i < 3; i++) {
                ImageBatch frames = trajectories.get(i);
                assertEquals(7, frames.count());
                assertArrayEquals(samples.slice(i, i + 1).pixels(), frames.slice(6, 7).pixels());
            }
            // The states get steadily closer to the final image as t falls.
            ImageBatch frames = trajectories.get(0);
            ImageBatch last = frames.slice(6, 7);
            assertTrue(frames.slice(0, 1).meanAbsoluteDifference(last) > frames.slice(3, 4).meanAbsoluteDifference(last));
            assertTrue(frames.slice(3, 4).meanAbsoluteDifference(last) > frames.slice(5, 6).meanAbsoluteDifference(last));

            BufferedImage figure = Figures.process(ddim, firstImage(), 10, 18, 0);
            assertTrue(figure.getWidth() > 10 * 64 && figure.getHeight() > 2 * 64);
            assertThrows(IllegalArgumentException.class, () -> Figures.process(ddim, firstImage(), 10, 5, 0));
        }
    }

    @Test
    void lrFinderGrowsTheRateExponentiallyAndSuggestsOneInRange() {
        ModelConfig tiny = TestModels.tiny();
        Dataset data = Datasets.fashionMnist(1, 16, 512);
        LrFinder.Options options = new LrFinder.Options(1e-5, 10, 40, 16, 0.9, 4, Loss.MAE, 0);
        LrFinder.Result result = LrFinder.run(tiny, Device.cpu(), data, options);
        double[] rates = result.learningRates();
        assertEquals(1e-5, rates[0], 1e-12);
        for (int i = 1; i < rates.length; i++) {
            assertEquals(Math.pow(1e6, 1.0 / 39), rates[i] / rates[i - 1], 1e-9);
        }
        assertTrue(result.suggested() >= 1e-5 && result.suggested() <= result.minimumLossLr(), result.toString());
        // The loss falls at first: by the minimum it is below where it started.
        double[] smoothed = result.smoothedLosses();
        assertTrue(java.util.Arrays.stream(smoothed).min().orElseThrow() < smoothed[0]);
        // Same seed, same curve.
        assertArrayEquals(result.losses(), LrFinder.run(tiny, Device.cpu(), data, options).losses());
        assertTrue(result.plot().getWidth() > 0);
    }
}
