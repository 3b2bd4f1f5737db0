package org.ddim4j.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

import org.ddim4j.AtomicFiles;
import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.Distributed;
import org.ddim4j.Loss;
import org.ddim4j.ModelConfig;
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
    enum LossName { mae, mse }

    static final class Length {
        @Option(names = "--epochs", description = "epochs over the training split (default: 1)")
        Integer epochs;

        @Option(names = "--steps", description = "optimisation steps in total")
        Long steps;
    }

    /** What run.json stores, so that --resume needs nothing but --out. */
    record RunSpec(String data, ModelOptions.ModelSpec model, int batchSize, int epochs, long steps, double learningRate,
            double weightDecay, double emaDecay, LossName loss, long seed, long checkpointEvery, double validationSplit, Integer limit,
            Integer accumulate, Boolean classConditional, Double labelDropout) {
        RunSpec withLength(int newEpochs, long newSteps) {
            return new RunSpec(data, model, batchSize, newEpochs, newSteps, learningRate, weightDecay, emaDecay, loss, seed,
                    checkpointEvery, validationSplit, limit, accumulate, classConditional, labelDropout);
        }

        /** Whether the run trains a class-conditional model (absent from runs before --class-conditional: no). */
        boolean conditional() {
            return classConditional != null && classConditional;
        }

        TrainOptions trainOptions(Path runDir, Distributed distributed) {
            return TrainOptions.builder().batchSize(batchSize).epochs(epochs).steps(steps).learningRate(learningRate)
                    .weightDecay(weightDecay).emaDecay(emaDecay).loss(loss == LossName.mae ? Loss.MAE : Loss.MSE).seed(seed)
                    .checkpointDir(runDir).checkpointEvery(checkpointEvery).validationSplit(validationSplit)
                    .accumulate(accumulate == null ? 1 : accumulate) // absent from runs before --accumulate
                    .labelDropout(labelDropout == null ? DEFAULT_LABEL_DROPOUT : labelDropout)
                    .distributed(distributed).build();
        }
    }

    static final double DEFAULT_LABEL_DROPOUT = 0.1;

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    @Spec
    CommandSpec spec;

    @Option(names = "--data", paramLabel = "DIR|FILE|fashion-mnist", description = "images to train on (required unless --resume)")
    String data;

    @Mixin
    ModelOptions model = new ModelOptions();

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

    @Option(names = "--seed", defaultValue = "0", description = "(default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--checkpoint-every", defaultValue = "500", description = "steps between checkpoints (default: ${DEFAULT-VALUE})")
    long checkpointEvery;

    @Option(names = "--validation-split", defaultValue = "0.2", description = "(default: ${DEFAULT-VALUE})")
    double validationSplit;

    @Option(names = "--limit", description = "use only the first N images of the data")
    Integer limit;

    @Option(names = "--accumulate", defaultValue = "1", paramLabel = "K",
            description = "split each batch into K micro-batches whose gradients add up before one optimizer step (less memory;"
                    + " the same step as K ranks would take) (default: ${DEFAULT-VALUE})")
    int accumulate;

    @Option(names = "--class-conditional",
            description = "train a class-conditional model (classifier-free guidance) on labelled data: Fashion-MNIST's or an IDX "
                    + "file's labels, or a folder's first-level subfolders; the class names go into the model file")
    boolean classConditional;

    @Option(names = "--label-dropout", defaultValue = "" + DEFAULT_LABEL_DROPOUT, paramLabel = "P",
            description = "with --class-conditional: the probability that an image trains without its class, so that one "
                    + "network also learns the unconditional prediction guidance needs (default: ${DEFAULT-VALUE})")
    double labelDropout;

    @Option(names = "--nproc", paramLabel = "N",
            description = "train with N processes on this machine (data parallel, as torchrun --nproc-per-node N); across"
                    + " machines, run this command on each with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set instead")
    Integer nproc;

    @Option(names = "--timeout", defaultValue = "300", paramLabel = "SECONDS",
            description = "distributed: how long a rank waits for the others before it reports the one that hangs (default: ${DEFAULT-VALUE})")
    int timeoutSeconds;

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "RUN_DIR", description = "run directory")
    Path out;

    @Option(names = "--resume", description = "continue the run in RUN_DIR (its run.json gives the settings; --epochs/--steps may extend it)")
    boolean resume;

    @Option(names = "--sample-every", defaultValue = "" + TrainingRun.DEFAULT_SAMPLE_EVERY, paramLabel = "STEPS",
            description = "write a preview grid (samples/epoch-NNN.png) at the end of an epoch once STEPS steps have passed since"
                    + " the last one, and after the last epoch; 1 = every epoch (default: ${DEFAULT-VALUE})")
    int sampleEvery;

    @Option(names = "--no-progress", description = "no progress output (on a terminal a bar, in a log a line every 5%%)")
    boolean noProgress;

    @Mixin
    RuntimeOptions runtime = new RuntimeOptions();

    @Override
    public Integer call() throws Exception {
        if (timeoutSeconds < 1) {
            throw new IllegalArgumentException("--timeout must be >= 1 second, got " + timeoutSeconds);
        }
        Duration timeout = Duration.ofSeconds(timeoutSeconds);
        if (nproc != null) {
            if (nproc < 1 || nproc > 256) {
                throw new IllegalArgumentException("--nproc must lie in [1, 256], got " + nproc);
            }
            if (Distributed.inEnvironment()) {
                throw new IllegalArgumentException("--nproc starts its own ranks: don't combine it with WORLD_SIZE in the environment");
            }
            if (nproc > 1) {
                int threads = runtime.threads > 0 ? runtime.threads : Math.max(1, Ddim.availableThreads() / nproc);
                return new LocalLauncher(spec.commandLine().getOut(), spec.commandLine().getErr())
                        .run(nproc, argumentsForRanks(), threads, timeout);
            }
        }
        Distributed distributed = Distributed.inEnvironment() ? Distributed.fromEnvironment().withTimeout(timeout) : null;
        boolean writer = distributed == null || distributed.rank() == 0;
        Path runFile = out.resolve("run.json");
        RunSpec run;
        if (resume) {
            if (!Files.exists(runFile)) {
                throw new IllegalArgumentException("nothing to resume: " + runFile + " does not exist"
                        + (writer ? "" : " (every rank reads the run's settings from RUN_DIR: share it, or copy run.json)"));
            }
            run = JSON.readValue(runFile.toFile(), RunSpec.class);
            if (length.epochs != null || length.steps != null) {
                run = run.withLength(length.epochs != null ? length.epochs : run.epochs(), length.steps != null ? length.steps : 0);
            }
        } else {
            if (writer && Files.exists(out.resolve("checkpoint.safetensors"))) {
                throw new IllegalArgumentException(out + " already holds a run: pass --resume to continue it, or choose another --out");
            }
            if (data == null) {
                throw new IllegalArgumentException("--data is required (a folder of images, an IDX file, or fashion-mnist)");
            }
            ModelOptions.ModelSpec architecture = model.spec(Datasets.shape(data));
            if (!model.shapeGiven() && writer) {
                spec.commandLine().getOut().printf("model shape from the data: %d channel(s), %dx%d (--channels and --image-size"
                        + " choose another)%n", architecture.channels(), architecture.imageSize(), architecture.imageSize());
            }
            run = new RunSpec(data, architecture, batchSize, length.epochs != null ? length.epochs : 1,
                    length.steps != null ? length.steps : 0, learningRate, weightDecay, ema, loss, seed, checkpointEvery,
                    validationSplit, limit, accumulate, classConditional ? Boolean.TRUE : null, classConditional ? labelDropout : null);
        }
        ModelConfig config = run.model().toConfig();
        TrainOptions options = run.trainOptions(out, distributed);
        Dataset dataset = Datasets.open(run.data(), config.channels(), config.imageSize(),
                run.limit() != null ? run.limit() : Integer.MAX_VALUE);
        if (run.conditional()) {
            if (!dataset.hasLabels()) {
                throw new IllegalArgumentException("--class-conditional needs labelled data, and " + run.data() + " has no labels: use "
                        + "fashion-mnist, IDX images with a *-labels-idx1-ubyte file beside them, or a folder with one subfolder per class");
            }
            config = config.toBuilder().classNames(dataset.classNames()).build();
            if (writer && !resume) {
                spec.commandLine().getOut().printf("classes from the data: %d (%s)%n", config.classes(), String.join(", ", config.classNames()));
            }
        }
        if (writer) {
            Files.createDirectories(out);
            AtomicFiles.writeString(runFile, JSON.writeValueAsString(run));
        }
        Device device = runtime.device();
        if (distributed != null && device.isCuda() && Device.cudaDeviceCount() > distributed.localRank()) {
            device = Device.cuda(distributed.localRank()); // one GPU per rank on a machine, as torchrun's LOCAL_RANK
        }
        new TrainingRun(out, spec.commandLine().getOut(), spec.commandLine().getErr(), !noProgress, sampleEvery).run(config, device, dataset, options, resume);
        return 0;
    }

    /** This command's arguments without --nproc, for the ranks the launcher starts. */
    private List<String> argumentsForRanks() {
        List<String> original = spec.commandLine().getParseResult().originalArgs();
        List<String> arguments = new ArrayList<>();
        for (int i = original.indexOf("train") + 1; i < original.size(); i++) {
            String argument = original.get(i);
            // --threads too: the launcher gives each rank its share.
            if (argument.equals("--nproc") || argument.equals("--threads")) {
                i++; // and its value
            } else if (!argument.startsWith("--nproc=") && !argument.startsWith("--threads=")) {
                arguments.add(argument);
            }
        }
        return arguments;
    }
}
