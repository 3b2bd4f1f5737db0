package org.ddim4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

import org.ddim4j.Ddim;
import org.ddim4j.DdimException;
import org.ddim4j.Device;
import org.ddim4j.FeatureExtractor;
import org.ddim4j.Features;
import org.ddim4j.Kid;
import org.ddim4j.ModelConfig;
import org.ddim4j.SampleOptions;
import org.ddim4j.Status;
import org.ddim4j.data.Dataset;
import org.ddim4j.data.Datasets;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** KID, the shipped feature extractor and Evaluation, on real Fashion-MNIST test images. */
class EvaluationTest {
    private static final Path REPO = Path.of(System.getProperty("ddim4j.repo", ".."));
    private static final Path EXTRACTOR = REPO.resolve("models").resolve(FeatureExtractor.DEFAULT_FILE);
    private static final Path MODEL = REPO.resolve("models").resolve("fashion-mnist-32.safetensors");
    private static final Path TEST_IMAGES = Path.of("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");

    private static FeatureExtractor extractor;
    private static Dataset testImages;

    @TempDir
    Path dir;

    @BeforeAll
    static void open() {
        extractor = FeatureExtractor.open(EXTRACTOR);
        testImages = Datasets.open(TEST_IMAGES.toString(), 1, 32, 1000);
    }

    @AfterAll
    static void close() {
        extractor.close();
    }

    @Test
    void shippedExtractorDescribesItself() {
        assertEquals(128, extractor.dimension());
        assertEquals(32, extractor.inputSize());
        assertEquals(1, extractor.inputChannels());
        assertTrue(extractor.standardised());
        assertEquals(FeatureExtractor.DEFAULT_FILE, FeatureExtractor.defaultPath().getFileName().toString());
    }

    @Test
    void kidOfDisjointHalvesOfOneSetIsNearZeroAndOfNoiseIsLarge() {
        Features first = extractor.features(testImages.range(0, 500), 1, 32);
        Features second = extractor.features(testImages.range(500, 1000), 1, 32);
        SplittableRandom random = new SplittableRandom(1);
        float[] uniform = new float[500 * 32 * 32];
        for (int i = 0; i < uniform.length; i++) {
            uniform[i] = (float) random.nextDouble();
        }
        Features noise = extractor.features(uniform, 1, 32);

        Kid.Result same = Kid.compute(first, second);
        Kid.Result different = Kid.compute(first, noise);
        assertTrue(Math.abs(same.kid()) < 0.05, "halves of the test split: " + same);
        assertTrue(different.kid() > 50 * Math.max(Math.abs(same.kid()), 0.01), "test images vs uniform noise: " + different);
        assertEquals(100, same.subsets());
        assertEquals(250, same.subsetSize()); // half the smaller set by default
        assertTrue(same.std() >= 0 && Double.isFinite(same.std()));
        // Same seed, same subsets: the same figure.
        assertEquals(same, Kid.compute(first, second));
    }

    @Test
    void oneWholeSubsetIsTheDirectFloat64Estimate() {
        // Features near 10 make the three kernel means ~1e6 while their difference is a few units: a
        // float32 computation would lose most of it; the native float64 one matches this direct sum.
        SplittableRandom random = new SplittableRandom(7);
        int n = 5;
        int d = 4;
        float[] real = new float[n * d];
        float[] generated = new float[n * d];
        for (int i = 0; i < real.length; i++) {
            real[i] = 10 + (float) random.nextDouble();
            generated[i] = 10.2f + (float) random.nextDouble();
        }
        double expected = mean(real, n, real, n, d, true) + mean(generated, n, generated, n, d, true)
                - 2 * mean(real, n, generated, n, d, false);
        // One subset of all 5 images from each side: the subset is the whole set, in some order.
        Kid.Result kid = Kid.compute(new Features(n, d, real), new Features(n, d, generated), new Kid.Options(1, n, 0));
        assertEquals(expected, kid.kid(), 1e-9 * Math.abs(expected) + 1e-9);
        assertEquals(0.0, kid.std());
        assertTrue(Math.abs(expected) > 1e-3, "the case must not be trivially 0: " + expected);
    }

    private static double mean(float[] a, int m, float[] b, int n, int d, boolean same) {
        double sum = 0;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                if (same && i == j) {
                    continue;
                }
                double dot = 0;
                for (int k = 0; k < d; k++) {
                    dot += (double) a[i * d + k] * b[j * d + k];
                }
                sum += Math.pow(dot / d + 1, 3);
            }
        }
        return sum / (same ? (double) m * (m - 1) : (double) m * n);
    }

    @Test
    void badInputsAreClearErrors() throws Exception {
        Features four = new Features(3, 4, new float[12]);
        Features five = new Features(3, 5, new float[15]);
        assertThrows(IllegalArgumentException.class, () -> Kid.compute(four, five));
        assertThrows(IllegalArgumentException.class, () -> new Features(3, 4, new float[11]));
        assertThrows(IllegalArgumentException.class, () -> new Kid.Options(0, 0, 0));
        float[] nan = new float[12];
        nan[5] = Float.NaN;
        assertThrows(IllegalArgumentException.class, () -> Kid.compute(four, new Features(3, 4, nan)));
        IllegalArgumentException tooLarge = assertThrows(IllegalArgumentException.class, () -> Kid.compute(four, four, new Kid.Options(1, 4, 0)));
        assertTrue(tooLarge.getMessage().contains("subset_size"), tooLarge.getMessage());

        assertEquals(Status.IO, assertThrows(DdimException.class, () -> FeatureExtractor.open(dir.resolve("absent.pt"))).status());
        Path junk = dir.resolve("junk.pt");
        Files.write(junk, new byte[] {1, 2, 3});
        assertEquals(Status.FORMAT, assertThrows(DdimException.class, () -> FeatureExtractor.open(junk)).status());
        assertThrows(IllegalArgumentException.class, () -> extractor.features(new float[7], 1, 2));
        float[] outOfRange = new float[32 * 32];
        outOfRange[3] = 1.5f;
        assertThrows(IllegalArgumentException.class, () -> extractor.features(outOfRange, 1, 32));

        FeatureExtractor closed = FeatureExtractor.open(EXTRACTOR);
        closed.close();
        closed.close();
        assertThrows(IllegalStateException.class, () -> closed.features(new float[32 * 32], 1, 32));
    }

    @Test
    void theTrainedModelScoresFarBetterThanAnUntrainedOne() {
        SampleOptions sampling = SampleOptions.builder().steps(10).seed(3).build();
        Evaluation trained;
        try (Ddim ddim = Ddim.open(MODEL, Device.cpu())) {
            trained = Evaluation.run(ddim, testImages, extractor, 96, sampling, new Kid.Options(20, 0, 0));
        }
        Evaluation untrained;
        try (Ddim ddim = Ddim.create(ModelConfig.builder().channels(1).imageSize(32).build(), Device.cpu(), 0)) {
            float[][] statistics = testImages.channelStatistics();
            ddim.setNormalizer(statistics[0], statistics[1]);
            untrained = Evaluation.run(ddim, testImages, extractor, 96, sampling, new Kid.Options(20, 0, 0));
        }
        assertEquals(96, trained.realCount());
        assertEquals(96, trained.generatedCount());
        assertEquals(48, trained.kid().subsetSize());
        assertTrue(trained.kid().kid() * 5 < untrained.kid().kid(), "trained " + trained + " vs untrained " + untrained);
        assertTrue(trained.noiseLoss() < untrained.noiseLoss(), "trained " + trained + " vs untrained " + untrained);
        assertTrue(trained.noiseLoss() > 0 && trained.imageLoss() > 0);
    }
}
