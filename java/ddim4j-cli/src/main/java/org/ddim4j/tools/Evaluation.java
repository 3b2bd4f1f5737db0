package org.ddim4j.tools;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

import org.ddim4j.Ddim;
import org.ddim4j.FeatureExtractor;
import org.ddim4j.Features;
import org.ddim4j.Kid;
import org.ddim4j.ModelConfig;
import org.ddim4j.SampleOptions;
import org.ddim4j.data.Dataset;

/**
 * How good a model is, as the reference judges it: KID between real images and images the model
 * generates, and the validation losses (MAE of the predicted noise and of the predicted image) on
 * the real images.
 *
 * <pre>{@code
 * try (Ddim ddim = Ddim.open(model); FeatureExtractor extractor = FeatureExtractor.open(FeatureExtractor.defaultPath())) {
 *     Evaluation e = Evaluation.run(ddim, Datasets.open(testImages, 1, 32), extractor, 1000,
 *             SampleOptions.builder().steps(20).build(), Kid.Options.defaults());
 * }
 * }</pre>
 *
 * @param kid            KID between the real and the generated images
 * @param noiseLoss      MAE of the predicted noise on the real images (the reference's noise_loss)
 * @param imageLoss      MAE of the predicted image on the real images (image_loss)
 * @param realCount      real images used
 * @param generatedCount images generated
 */
public record Evaluation(Kid.Result kid, double noiseLoss, double imageLoss, int realCount, int generatedCount) {
    /** Images per native call when extracting features and computing losses. */
    private static final int CHUNK = 256;

    /**
     * Generates {@code count} images with {@code sampling} (its count is replaced), takes {@code count}
     * real images from {@code data} (a seeded random choice, all of them when there are fewer), and
     * compares them. The losses use the sampling seed and the EMA weights when the options say so.
     */
    public static Evaluation run(Ddim ddim, Dataset data, FeatureExtractor extractor, int count, SampleOptions sampling,
            Kid.Options kidOptions) {
        Objects.requireNonNull(ddim, "ddim");
        Objects.requireNonNull(data, "data");
        Objects.requireNonNull(extractor, "extractor");
        Objects.requireNonNull(sampling, "sampling");
        Objects.requireNonNull(kidOptions, "kidOptions");
        if (count < 2) {
            throw new IllegalArgumentException("count must be >= 2 (KID compares sets), got " + count);
        }
        ModelConfig config = ddim.config();
        if (data.channels() != config.channels() || data.imageSize() != config.imageSize()) {
            throw new IllegalArgumentException("the data holds " + data.channels() + "x" + data.imageSize() + "x" + data.imageSize()
                    + " images, the model " + config.channels() + "x" + config.imageSize() + "x" + config.imageSize());
        }
        int realCount = Math.min(count, data.size());
        if (realCount < 2) {
            throw new IllegalArgumentException("KID needs at least 2 real images, the data has " + data.size());
        }
        int[] order = Dataset.shuffled(data.size(), sampling.seed());
        List<Features> real = new ArrayList<>();
        double noiseLoss = 0;
        double imageLoss = 0;
        for (int first = 0; first < realCount; first += CHUNK) {
            int n = Math.min(CHUNK, realCount - first);
            int[] positions = new int[n];
            System.arraycopy(order, first, positions, 0, n);
            float[] pixels = data.batch(positions);
            real.add(extractor.features(pixels, config.channels(), config.imageSize()));
            float[] losses = ddim.evaluate(pixels, sampling.seed(), sampling.useEma());
            noiseLoss += (double) losses[0] * n;
            imageLoss += (double) losses[1] * n;
        }
        List<Features> generated = new ArrayList<>();
        ddim.sample(sampling.toBuilder().count(count).batchSize(Math.min(CHUNK, sampling.batchSize())).build(),
                (firstIndex, images) -> generated.add(extractor.features(images)));
        Kid.Result kid = Kid.compute(Features.concat(real), Features.concat(generated), kidOptions);
        return new Evaluation(kid, noiseLoss / realCount, imageLoss / realCount, realCount, count);
    }
}
