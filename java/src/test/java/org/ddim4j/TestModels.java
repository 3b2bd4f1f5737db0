package org.ddim4j;

/** Small configurations that sample in milliseconds. */
final class TestModels {
    private TestModels() {}

    static ModelConfig tiny() {
        return ModelConfig.builder().channels(1).imageSize(16).widths(8, 16).blockDepth(1).embeddingDim(8).build();
    }

    static ModelConfig tinyRgb() {
        return ModelConfig.builder().channels(3).imageSize(16).widths(8, 16).blockDepth(1).embeddingDim(8).build();
    }
}
