package org.ddim4j;

/** Small configurations that sample in milliseconds. */
public final class TestModels {
    private TestModels() {}

    public static ModelConfig tiny() {
        return ModelConfig.builder().channels(1).imageSize(16).widths(8, 16).blockDepth(1).embeddingDim(8).build();
    }

    /**
     * The tiny model after a few training steps (no EMA, so sampling uses the trained weights). A fresh
     * model's output convolution starts at zero, so its predicted noise is exactly 0 and its images
     * depend on the noise alone: determinism tests need a network whose output counts.
     */
    public static Ddim trainedTiny(long seed) {
        return trained(tiny(), seed);
    }

    /** A model of {@code config} after a few training steps, as {@link #trainedTiny}. */
    public static Ddim trained(ModelConfig config, long seed) {
        Ddim ddim = Ddim.create(config, Device.cpu(), seed);
        Trainer trainer = ddim.trainer(TrainOptions.builder().learningRate(1e-2).emaDecay(0).seed(seed).build());
        float[] pixels = new float[8 * config.channels() * config.imageSize() * config.imageSize()];
        for (int i = 0; i < pixels.length; i++) {
            pixels[i] = ((i * 7919) % 256) / 255f;  // a fixed, varied pattern in [0, 1]
        }
        for (int step = 0; step < 3; step++) {
            trainer.step(pixels);
        }
        return ddim;
    }

    public static ModelConfig tinyRgb() {
        return ModelConfig.builder().channels(3).imageSize(16).widths(8, 16).blockDepth(1).embeddingDim(8).build();
    }
}
