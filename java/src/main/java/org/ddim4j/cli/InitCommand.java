package org.ddim4j.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;

import org.ddim4j.Ddim;
import org.ddim4j.ModelConfig;
import org.ddim4j.Schedule;
import org.ddim4j.Target;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "init", mixinStandardHelpOptions = true,
        description = "Create an untrained model file from a configuration (the reference's by default).")
final class InitCommand implements Callable<Integer> {
    enum ScheduleName { cosine, linear }

    enum TargetName { noise, image }

    @Spec
    CommandSpec spec;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "model file to write (.safetensors)")
    Path out;

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

    @Option(names = "--seed", defaultValue = "0", description = "weight initialisation seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Mixin
    RuntimeOptions runtime = new RuntimeOptions();

    @Override
    public Integer call() {
        ModelConfig config = ModelConfig.builder()
                .channels(channels)
                .imageSize(imageSize)
                .widths(widths)
                .blockDepth(blockDepth)
                .embeddingDim(embeddingDim)
                .schedule(schedule == ScheduleName.cosine ? Schedule.cosine(minSignal, maxSignal) : Schedule.linear(minSignal, maxSignal))
                .target(target == TargetName.noise ? Target.NOISE : Target.IMAGE)
                .build();
        try (Ddim ddim = Ddim.create(config, runtime.device(), seed)) {
            ddim.save(out);
            spec.commandLine().getOut().printf("wrote an untrained model (%,d parameters) to %s%n", ddim.parameterCount(),
                    out.toAbsolutePath());
        }
        return 0;
    }
}
