package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ModelConfigTest {
    @Test
    void defaultsAreTheReference() {
        ModelConfig config = ModelConfig.defaults();
        assertEquals(3, config.channels());
        assertEquals(64, config.imageSize());
        assertArrayEquals(new int[] {32, 64, 96, 128}, config.widths());
        assertEquals(2, config.blockDepth());
        assertEquals(32, config.embeddingDim());
        assertEquals(Schedule.cosine(0.02, 0.95), config.schedule());
        assertEquals(Target.NOISE, config.target());
        assertEquals(config, ModelConfig.builder().channels(3).imageSize(64).widths(32, 64, 96, 128).blockDepth(2)
                .embeddingDim(32).schedule(Schedule.cosine(0.02, 0.95)).target(Target.NOISE).build());
    }

    @Test
    void referenceModelHasExactlyTheReferenceParameterCount() {
        try (Ddim ddim = Ddim.create(ModelConfig.defaults(), Device.cpu())) {
            assertEquals(3_562_211L, ddim.parameterCount());
            assertEquals(ModelConfig.defaults(), ddim.config());
            assertEquals(Device.cpu(), ddim.device());
        }
    }

    @Test
    void badConfigsAreRejectedNamingTheField() {
        assertMessage("channels", () -> ModelConfig.builder().channels(5).build());
        assertMessage("image_size", () -> ModelConfig.builder().imageSize(50).build());
        assertMessage("widths", () -> ModelConfig.builder().widths().build());
        assertMessage("widths", () -> ModelConfig.builder().widths(1, 2, 3, 4, 5, 6, 7, 8, 9).imageSize(512).build());
        assertMessage("width", () -> ModelConfig.builder().widths(32, -1, 96, 128).build());
        assertMessage("block_depth", () -> ModelConfig.builder().blockDepth(0).build());
        assertMessage("embedding_dim", () -> ModelConfig.builder().embeddingDim(33).build());
        assertMessage("minSignal", () -> Schedule.cosine(0.5, 0.4));
        assertMessage("minSignal", () -> Schedule.linear(Double.NaN, 0.9));
    }

    @Test
    void builderCopiesAndRoundTripsThroughNative() {
        int[] widths = {16, 32};
        ModelConfig.Builder builder = ModelConfig.builder().channels(1).imageSize(32).widths(widths)
                .schedule(Schedule.linear(0.05, 0.9)).target(Target.IMAGE);
        widths[0] = 999;
        ModelConfig config = builder.build();
        assertArrayEquals(new int[] {16, 32}, config.widths());
        try (Ddim ddim = Ddim.create(config, Device.cpu())) {
            assertEquals(config.toBuilder().build(), ddim.config());
            assertEquals(Schedule.Kind.LINEAR, ddim.config().schedule().kind());
            assertEquals(0.05, ddim.config().schedule().minSignal(), 1e-7);
        }
    }

    private static void assertMessage(String fragment, Runnable action) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, action::run);
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' should name " + fragment);
    }
}
