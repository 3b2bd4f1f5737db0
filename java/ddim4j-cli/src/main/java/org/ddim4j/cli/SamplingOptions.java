package org.ddim4j.cli;

import java.nio.file.Path;

import org.ddim4j.Network;
import org.ddim4j.Precision;
import org.ddim4j.ModelConfig;
import org.ddim4j.SampleOptions;
import org.ddim4j.Sampler;

import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Options every command that runs the reverse process shares (sample, invert, interpolate, inpaint, vary). */
final class SamplingOptions {
    /** The command these options belong to (for its error stream). */
    @Spec(Spec.Target.MIXEE)
    CommandSpec command;

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "FILE", description = "a model file (.safetensors)")
    Path model;

    @Option(names = {"-s", "--steps"}, defaultValue = "20", description = "network evaluations (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--seed", defaultValue = "42", description = "noise seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--sampler", defaultValue = "DDIM",
            description = "DDIM, DDPM or DPM_SOLVER_PP_2M (default: ${DEFAULT-VALUE})")
    Sampler sampler;

    @Option(names = "--eta", defaultValue = "0", description = "DDIM's eta: 0 deterministic, 1 DDPM-like (default: ${DEFAULT-VALUE})")
    double eta;

    @Option(names = "--no-ema", description = "use the raw weights even when the model has EMA weights")
    boolean noEma;

    @Option(names = "--batch-size", defaultValue = "" + SampleOptions.DEFAULT_BATCH_SIZE, paramLabel = "N",
            description = "images per pass through the sampling loop: bounds memory, never changes the images (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = "--micro-batch", defaultValue = "" + SampleOptions.DEFAULT_MICRO_BATCH, paramLabel = "N",
            description = "images per network evaluation; the images depend on it, so keep it to reproduce them (default: ${DEFAULT-VALUE})")
    int microBatch;

    @Option(names = "--precision", defaultValue = "FLOAT32",
            description = "the network's arithmetic: FLOAT32, or BFLOAT16 (faster on CPUs with AVX512-BF16) (default: ${DEFAULT-VALUE})")
    Precision precision;

    @Option(names = "--network", defaultValue = "AUTO",
            description = "AUTO (FUSED on the CPU, EAGER elsewhere), FUSED (CPU: one oneDNN inference plan, 2-3x faster; "
                    + "pixels differ in float32 rounding) or EAGER (libtorch's modules; PyTorch computes the same bits) "
                    + "(default: ${DEFAULT-VALUE})")
    Network network;

    @Option(names = "--no-progress", description = "no progress output (on a terminal a bar, in a log a line every 5%%)")
    boolean noProgress;

    @Option(names = "--class", paramLabel = "NAME",
            description = "class-conditional models: draw this class, by name (sneaker, ankle-boot, or a unique beginning) or number; "
                    + "`ddim info` lists them (default: no class)")
    String className;

    @Option(names = "--guidance", defaultValue = "1", paramLabel = "W",
            description = "classifier-free guidance with --class: uncond + W x (cond - uncond); 1 plain conditional, 0 ignores "
                    + "the class, 2..5 follow it more closely (default: ${DEFAULT-VALUE})")
    double guidance;

    /** The options with the given image count; the listener draws the progress bar. */
    SampleOptions.Builder builder(int count) {
        return SampleOptions.builder().count(count).steps(steps).seed(seed).sampler(sampler).eta(eta).useEma(!noEma)
                .batchSize(batchSize).microBatch(microBatch).precision(precision).network(network);
    }

    /** The options with the given image count for a model of {@code config}: also its --class and --guidance. */
    SampleOptions.Builder builder(int count, ModelConfig config) {
        SampleOptions.Builder builder = builder(count).guidance(guidance);
        if (className != null) {
            if (className.equalsIgnoreCase(ALL_CLASSES)) {
                throw new IllegalArgumentException("--class all draws one row per class with `ddim sample`; name one class here");
            }
            builder.classes(config.classIndex(className));
        }
        return builder;
    }

    /** --class all: one grid row per class. */
    static final String ALL_CLASSES = "all";

    boolean allClasses() {
        return className != null && className.equalsIgnoreCase(ALL_CLASSES);
    }

    /** Rejects bad values (steps < 1, eta < 0, ...) before any model is opened. */
    void validate() {
        builder(1).guidance(guidance).build();
        if (guidance != 1 && className == null) {
            throw new IllegalArgumentException("--guidance needs --class: it weighs the class against no class");
        }
    }

    /** Progress of `task` on the command's stderr (a bar, plain lines in a log, nothing with --no-progress); close it when done. */
    SamplingProgress progress(String task) {
        return new SamplingProgress(task, !noProgress, command.commandLine().getErr());
    }
}
