package org.ddim4j.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import org.ddim4j.Ddim;
import org.ddim4j.SampleOptions;
import org.ddim4j.data.Dataset;
import org.ddim4j.data.Datasets;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"The main job: train on Fashion-MNIST, then draw clothing.",
                "Trains a DDIM model at 32x32 for a few minutes on the CPU, then writes a grid of generated clothing.",
                "Refuses an --out that already holds a run unless --force is given."})
final class DemoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-o", "--out"}, defaultValue = "runs/demo", paramLabel = "RUN_DIR", description = "(default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--images", defaultValue = "16000", description = "Fashion-MNIST images to use, 80%% to train (default: ${DEFAULT-VALUE})")
    int images;

    @Option(names = "--epochs", defaultValue = "3", description = "(default: ${DEFAULT-VALUE})")
    int epochs;

    @Option(names = "--force", description = "replace the run in --out if there is one")
    boolean force;

    @Option(names = "--no-progress", description = "no progress output (on a terminal a bar, in a log a line every 5%%)")
    boolean noProgress;

    @Mixin
    RuntimeOptions runtime = new RuntimeOptions();

    @Override
    public Integer call() throws Exception {
        PrintWriter stdout = spec.commandLine().getOut();
        if (!force && Files.exists(out.resolve("checkpoint.safetensors"))) {
            throw new IllegalArgumentException(out + " already holds a run: pass --force to replace it, or choose another --out");
        }
        // Sized for 2 CPU cores: a 3-level U-Net (1.7 M parameters) at 32x32, batch 64.
        ModelOptions.ModelSpec architecture = new ModelOptions.ModelSpec(1, 32, new int[] {32, 64, 96}, 2, 32, ModelOptions.ScheduleName.cosine,
                0.02, 0.95, ModelOptions.TargetName.noise);
        TrainCommand.RunSpec run = new TrainCommand.RunSpec("fashion-mnist", architecture, 64, epochs, 0, 1e-3, 1e-4, 0.999,
                TrainCommand.LossName.mae, 0, 0, 0.2, images, 1, null, null);
        Dataset data = Datasets.fashionMnist(1, 32, images);
        Path model = new TrainingRun(out, stdout, spec.commandLine().getErr(), !noProgress, TrainingRun.DEFAULT_SAMPLE_EVERY)
                .runFresh(architecture.toConfig(), runtime.device(), data, run.trainOptions(out, null));
        Path grid = out.resolve("demo-samples.png");
        try (Ddim ddim = Ddim.open(model, runtime.device())) {
            ddim.sample(SampleOptions.builder().count(64).steps(20).seed(7).build()).writeGrid(grid, 8);
        }
        stdout.println("demo samples: " + grid.toAbsolutePath());
        return 0;
    }
}
