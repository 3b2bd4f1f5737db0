package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

import org.ddim4j.data.Datasets;
import org.junit.jupiter.api.Test;

/** models/fashion-mnist-32.safetensors: small, loads, and draws images that look like Fashion-MNIST to its extractor. */
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

    @Test
    void shippedModelIsCloserToFashionMnistThanAnUntrainedOneWithItsStatistics() {
        // Brightness alone can't tell: an untrained model with the shipped normaliser draws its (rescaled)
        // noise at the right mean. The shipped feature extractor can.
        SampleOptions options = SampleOptions.builder().count(64).steps(10).seed(7).build();
        try (FeatureExtractor extractor = FeatureExtractor.open(FeatureExtractor.defaultPath(), Device.cpu());
                Ddim shipped = Ddim.open(MODEL, Device.cpu());
                Ddim untrained = Ddim.create(shipped.config(), Device.cpu(), 1)) {
            float[][] normalizer = shipped.normalizer();
            untrained.setNormalizer(normalizer[0], normalizer[1]);
            Features real = extractor.features(new ImageBatch(64, 1, 32, 32, Datasets.fashionMnist(1, 32, 64).range(0, 64)));
            double trainedKid = Kid.compute(real, extractor.features(shipped.sample(options))).kid();
            double untrainedKid = Kid.compute(real, extractor.features(untrained.sample(options))).kid();
            assertTrue(trainedKid < untrainedKid / 3, "KID shipped " + trainedKid + " vs untrained " + untrainedKid);
        }
    }

    /**
     * The class model draws the class asked for, as the project's extractor sees it: each sample goes to the nearest
     * class centroid of 1,000 real Fashion-MNIST test images' features, with guidance 3. An untrained model would
     * score ~1 in 10.
     */
    @Test
    void theClassModelDrawsTheClassAskedFor() {
        Path classModel = MODEL.resolveSibling("fashion-mnist-32-classes.safetensors");
        try (FashionClassifier classifier = new FashionClassifier(); Ddim ddim = Ddim.open(classModel, Device.cpu())) {
            int perClass = 8;
            int[] seen = classifier.classify(ddim.sample(SampleOptions.builder().classRows(10, perClass).steps(20).guidance(3).seed(5).build()));
            int recognised = 0;
            for (int i = 0; i < seen.length; i++) {
                recognised += seen[i] == i / perClass ? 1 : 0;
            }
            System.out.printf("class model: %d of %d samples nearest to the real centroid of the class asked for%n", recognised, seen.length);
            // Measured: 69 of 80 at guidance 3 (53 of 80 without guidance); chance is 8.
            assertTrue(recognised >= seen.length * 7 / 10, recognised + " of " + seen.length + " recognised");
        }
    }
}
