package org.ddim4j.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import org.ddim4j.Loss;
import org.ddim4j.ModelConfig;
import org.ddim4j.Schedule;
import org.ddim4j.Target;
import org.ddim4j.TrainOptions;
import org.ddim4j.data.Dataset;
import org.ddim4j.data.Datasets;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train a DDIM model on a folder of images, an IDX file or fashion-mnist.",
                "Writes into RUN_DIR: checkpoint.safetensors, model.safetensors, metrics.csv, losses.csv, loss.png,",
                "samples/epoch-NNN.png and run.json. --resume continues the run in RUN_DIR bit-exactly."})
final class TrainCommand implements Callable<Integer> {
    enum ScheduleName { cosine, linear }

    enum TargetName { noise, image }

    enum LossName { mae, mse }

    static final class Length {
        @Option(names = "--epochs", description = "epochs over the training split (default: 1)")
        Integer epochs;

        @Option(names = "--steps", description = "optimisation steps in total")
        Long steps;
    }

    /** What run.json stores, so that --resume needs nothing but --out. */
    record RunSpec(String data, int channels, int imageSize, int[] widths, int blockDepth, String schedule, double minSignal,
            double maxSignal, String target, int batchSize, int epochs, long steps, double learningRate, double weightDecay,
            double emaDecay, String loss, long seed, long checkpointEvery, double validationSplit, Integer limit) {}

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    @Spec
    CommandSpec spec;

    @Option(names = "--data", paramLabel = "DIR|FILE|fashion-mnist", description = "images to train on (required unless --resume)")
    String data;

    @Option(names = "--image-size", defaultValue = "32", description = "(default: ${DEFAULT-VALUE})")
    int imageSize;

    @Option(names = "--channels", defaultValue = "1", description = "1 grey, 3 RGB, ... (default: ${DEFAULT-VALUE})")
    int channels;

    @ArgGroup(exclusive = true)
    Length length = new Length();

    @Option(names = "--batch-size", defaultValue = "64", description = "(default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = "--lr", defaultValue = "1e-3", description = "AdamW learning rate (default: ${DEFAULT-VALUE})")
    double learningRate;

    @Option(names = "--weight-decay", defaultValue = "1e-4", description = "AdamW weight decay (default: ${DEFAULT-VALUE})")
    double weightDecay;

    @Option(names = "--ema", defaultValue = "0.999", description = "EMA decay, 0 = none (default: ${DEFAULT-VALUE})")
    double ema;

    @Option(names = "--loss", defaultValue = "mae", description = "mae or mse (default: ${DEFAULT-VALUE})")
    LossName loss;

    @Option(names = "--target", defaultValue = "noise", description = "noise or image (default: ${DEFAULT-VALUE})")
    TargetName target;

    @Option(names = "--schedule", defaultValue = "cosine", description = "cosine or linear (default: ${DEFAULT-VALUE})")
    ScheduleName schedule;

    @Option(names = "--min-signal", defaultValue = "0.02", description = "(default: ${DEFAULT-VALUE})")
    double minSignal;

    @Option(names = "--max-signal", defaultValue = "0.95", description = "(default: ${DEFAULT-VALUE})")
    double maxSignal;

    @Option(names = "--widths", split = ",", defaultValue = "32,64,96,128", description = "U-Net widths (default: ${DEFAULT-VALUE})")
    int[] widths;

    @Option(names = "--block-depth", defaultValue = "2", description = "(default: ${DEFAULT-VALUE})")
    int blockDepth;

    @Option(names = "--seed", defaultValue = "0", description = "(default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--checkpoint-every", defaultValue = "500", description = "steps between checkpoints (default: ${DEFAULT-VALUE})")
    long checkpointEvery;

    @Option(names = "--validation-split", defaultValue = "0.2", description = "(default: ${DEFAULT-VALUE})")
    double validationSplit;

    @Option(names = "--limit", description = "use only the first N images of the data")
    Integer limit;

    @Option(names = "--out", required = true, paramLabel = "RUN_DIR", description = "run directory")
    Path out;

    @Option(names = "--resume", description = "continue the run in RUN_DIR (its run.json gives the settings; --epochs/--steps may extend it)")
    boolean resume;

    @Option(names = "--no-progress", description = "no progress bar (for logs)")
    boolean noProgress;

    @Mixin
    RuntimeOptions runtime = new RuntimeOptions();

    @Override
    public Integer call() throws Exception {
        Path runFile = out.resolve("run.json");
        RunSpec run;
        if (resume) {
            if (!Files.exists(runFile)) {
                throw new IllegalArgumentException("nothing to resume: " + runFile + " does not exist");
            }
            run = JSON.readValue(runFile.toFile(), RunSpec.class);
            if (length.epochs != null || length.steps != null) {
                run = withLength(run, length.epochs != null ? length.epochs : run.epochs(), length.steps != null ? length.steps : 0);
            }
        } else {
            if (Files.exists(out.resolve("checkpoint.safetensors"))) {
                throw new IllegalArgumentException(out + " already holds a run: pass --resume to continue it, or choose another --out");
            }
            if (data == null) {
                throw new IllegalArgumentException("--data is required (a folder of images, an IDX file, or fashion-mnist)");
            }
            run = new RunSpec(data, channels, imageSize, widths, blockDepth, schedule.name(), minSignal, maxSignal, target.name(),
                    batchSize, length.epochs != null ? length.epochs : 1, length.steps != null ? length.steps : 0, learningRate,
                    weightDecay, ema, loss.name(), seed, checkpointEvery, validationSplit, limit);
        }
        ModelConfig config = modelConfig(run);
        TrainOptions options = trainOptions(run, out);
        Files.createDirectories(out);
        JSON.writeValue(runFile.toFile(), run);
        Dataset dataset = Datasets.open(run.data(), run.channels(), run.imageSize());
        if (run.limit() != null) {
            dataset = dataset.head(run.limit());
        }
        new TrainingRun(out, spec.commandLine().getOut(), !noProgress).run(config, runtime.device(), dataset, options, resume);
        return 0;
    }

    static ModelConfig modelConfig(RunSpec run) {
        return ModelConfig.builder().channels(run.channels()).imageSize(run.imageSize()).widths(run.widths())
                .blockDepth(run.blockDepth())
                .schedule(run.schedule().equals("cosine") ? Schedule.cosine(run.minSignal(), run.maxSignal())
                        : Schedule.linear(run.minSignal(), run.maxSignal()))
                .target(run.target().equals("noise") ? Target.NOISE : Target.IMAGE)
                .build();
    }

    static TrainOptions trainOptions(RunSpec run, Path runDir) {
        return TrainOptions.builder().batchSize(run.batchSize()).epochs(run.epochs()).steps(run.steps())
                .learningRate(run.learningRate()).weightDecay(run.weightDecay()).emaDecay(run.emaDecay())
                .loss(run.loss().equals("mae") ? Loss.MAE : Loss.MSE).seed(run.seed()).checkpointDir(runDir)
                .checkpointEvery(run.checkpointEvery()).validationSplit(run.validationSplit()).build();
    }

    private static RunSpec withLength(RunSpec run, int epochs, long steps) {
        return new RunSpec(run.data(), run.channels(), run.imageSize(), run.widths(), run.blockDepth(), run.schedule(),
                run.minSignal(), run.maxSignal(), run.target(), run.batchSize(), epochs, steps, run.learningRate(),
                run.weightDecay(), run.emaDecay(), run.loss(), run.seed(), run.checkpointEvery(), run.validationSplit(), run.limit());
    }
}
