package org.ddim4j.cli;

import org.ddim4j.ModelConfig;
import org.ddim4j.Schedule;
import org.ddim4j.Target;
import org.ddim4j.data.Datasets;

import picocli.CommandLine.Option;

/** The model configuration options of `ddim init` and `ddim train`; defaults are the reference's. */
final class ModelOptions {
    enum ScheduleName { cosine, linear }

    enum TargetName { noise, image }

    /** A model configuration as plain values (stored in a run's run.json). */
    record ModelSpec(int channels, int imageSize, int[] widths, int blockDepth, int embeddingDim, ScheduleName schedule,
            double minSignal, double maxSignal, TargetName target) {
        ModelConfig toConfig() {
            return ModelConfig.builder()
                    .channels(channels)
                    .imageSize(imageSize)
                    .widths(widths)
                    .blockDepth(blockDepth)
                    .embeddingDim(embeddingDim)
                    .schedule(schedule == ScheduleName.cosine ? Schedule.cosine(minSignal, maxSignal) : Schedule.linear(minSignal, maxSignal))
                    .target(target == TargetName.noise ? Target.NOISE : Target.IMAGE)
                    .build();
        }
    }

    static final int DEFAULT_CHANNELS = 3;
    static final int DEFAULT_IMAGE_SIZE = 64;

    @Option(names = "--channels", description = "1 grey, 2 grey+alpha, 3 RGB, 4 RGBA (default: train takes the data's, 1 for IDX"
            + " files and fashion-mnist; otherwise " + DEFAULT_CHANNELS + ")")
    Integer channels;

    @Option(names = "--image-size", description = "square image side (default: train takes the data's, rounded up to a multiple of"
            + " 2^(number of widths), e.g. 32 for fashion-mnist's 28; otherwise " + DEFAULT_IMAGE_SIZE + ")")
    Integer imageSize;

    @Option(names = "--widths", split = ",", defaultValue = "32,64,96,128", description = "U-Net widths (default: ${DEFAULT-VALUE})")
    int[] widths;

    @Option(names = "--block-depth", defaultValue = "2", description = "residual blocks per resolution (default: ${DEFAULT-VALUE})")
    int blockDepth;

    @Option(names = "--embedding-dim", defaultValue = "32", description = "noise embedding size (default: ${DEFAULT-VALUE})")
    int embeddingDim;

    @Option(names = "--schedule", defaultValue = "cosine", description = "cosine or linear (default: ${DEFAULT-VALUE})")
    ScheduleName schedule;

    @Option(names = "--min-signal", defaultValue = "0.02", description = "signal rate at t = 1 (default: ${DEFAULT-VALUE})")
    double minSignal;

    @Option(names = "--max-signal", defaultValue = "0.95", description = "signal rate at t = 0 (default: ${DEFAULT-VALUE})")
    double maxSignal;

    @Option(names = "--target", defaultValue = "noise", description = "noise or image (default: ${DEFAULT-VALUE})")
    TargetName target;

    /** The model with the reference's defaults for what the options leave out. */
    ModelSpec spec() {
        return spec(new Datasets.Shape(DEFAULT_CHANNELS, DEFAULT_IMAGE_SIZE));
    }

    /**
     * The model for data of {@code shape}: channels and size the options leave out come from the data, the size
     * rounded up to a multiple of 2^(number of widths), which the U-Net's down-sampling needs.
     */
    ModelSpec spec(Datasets.Shape shape) {
        int divisor = 1 << Math.min(widths.length, 16);
        int dataSize = shape.size() > 0 ? shape.size() : DEFAULT_IMAGE_SIZE;
        int size = imageSize != null ? imageSize : (dataSize + divisor - 1) / divisor * divisor;
        return new ModelSpec(channels != null ? channels : shape.channels(), size, widths, blockDepth, embeddingDim, schedule,
                minSignal, maxSignal, target);
    }

    /** Whether the options name the channels and the size themselves. */
    boolean shapeGiven() {
        return channels != null && imageSize != null;
    }
}
