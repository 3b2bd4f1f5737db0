package org.ddim4j.cli;

import org.ddim4j.ModelConfig;
import org.ddim4j.Schedule;
import org.ddim4j.Target;

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

    @Option(names = "--channels", defaultValue = "3", description = "1 grey, 2 grey+alpha, 3 RGB, 4 RGBA (default: ${DEFAULT-VALUE})")
    int channels;

    @Option(names = "--image-size", defaultValue = "64", description = "square image side (default: ${DEFAULT-VALUE})")
    int imageSize;

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

    ModelSpec spec() {
        return new ModelSpec(channels, imageSize, widths, blockDepth, embeddingDim, schedule, minSignal, maxSignal, target);
    }
}
