package org.ddim4j.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import org.ddim4j.AtomicFiles;
import org.ddim4j.ImageBatch;
import org.ddim4j.Loss;
import org.ddim4j.tools.LrFinder;
import org.ddim4j.ModelConfig;
import org.ddim4j.data.Datasets;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "lr-find", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"The learning-rate range test: find a learning rate for training.",
                "Trains a fresh model while the learning rate grows exponentially, plots loss against learning rate (--out)",
                "with the values in a CSV beside it, and prints the suggested rate."})
final class LrFindCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--data", required = true, paramLabel = "DIR|FILE|fashion-mnist", description = "images to train on")
    String data;

    @Mixin
    ModelOptions model = new ModelOptions();

    @Option(names = "--min-lr", defaultValue = "1e-6", description = "(default: ${DEFAULT-VALUE})")
    double minLr;

    @Option(names = "--max-lr", defaultValue = "1", description = "(default: ${DEFAULT-VALUE})")
    double maxLr;

    @Option(names = "--steps", defaultValue = "200", description = "training steps from --min-lr to --max-lr (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--batch-size", defaultValue = "64", description = "(default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = "--loss", defaultValue = "mae", description = "mae or mse (default: ${DEFAULT-VALUE})")
    TrainCommand.LossName loss;

    @Option(names = "--seed", defaultValue = "0", description = "(default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--limit", description = "use only the first N images of the data")
    Integer limit;

    @Option(names = {"-o", "--out"}, defaultValue = "lr-find.png", description = "plot to write (default: ${DEFAULT-VALUE})")
    Path out;

    @Mixin
    RuntimeOptions runtime = new RuntimeOptions();

    @Override
    public Integer call() {
        ImageBatch.imageFormat(out);
        LrFinder.Options options = new LrFinder.Options(minLr, maxLr, steps, batchSize, 0.95, 4,
                loss == TrainCommand.LossName.mae ? Loss.MAE : Loss.MSE, seed);
        ModelConfig config = model.spec(Datasets.shape(data)).toConfig();
        LrFinder.Result result = LrFinder.run(config, runtime.device(),
                Datasets.open(data, config.channels(), config.imageSize(), limit != null ? limit : Integer.MAX_VALUE), options);
        ImageBatch.write(result.plot(), out);
        Path csv = out.resolveSibling(out.getFileName().toString().replaceFirst("\\.png$", "") + ".csv");
        writeCsv(result, csv);
        PrintWriter stdout = spec.commandLine().getOut();
        stdout.printf("suggested learning rate %.3g (steepest fall of the smoothed loss); lowest loss at %.3g%s%n", result.suggested(),
                result.minimumLossLr(), result.diverged() ? "; diverged after " + result.learningRates().length + " steps" : "");
        stdout.println("wrote " + out.toAbsolutePath() + " and " + csv.toAbsolutePath());
        return 0;
    }

    private static void writeCsv(LrFinder.Result result, Path csv) {
        StringBuilder text = new StringBuilder("step,learning_rate,loss,smoothed_loss\n");
        for (int i = 0; i < result.learningRates().length; i++) {
            text.append(i).append(',').append(result.learningRates()[i]).append(',').append(result.losses()[i]).append(',')
                    .append(result.smoothedLosses()[i]).append('\n');
        }
        AtomicFiles.writeString(csv, text.toString());
    }
}
