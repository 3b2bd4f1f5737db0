package org.ddim4j.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;

import org.ddim4j.Ddim;
import org.ddim4j.tools.Figures;
import org.ddim4j.ImageBatch;
import org.ddim4j.ModelConfig;
import org.ddim4j.data.Dataset;
import org.ddim4j.data.Datasets;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "plot", mixinStandardHelpOptions = true,
        description = "The reference's figures (PNG or JPEG): the forward process by schedule, the noise embedding, forward against reverse diffusion.",
        subcommands = {PlotCommand.Schedules.class, PlotCommand.Embedding.class, PlotCommand.Process.class})
final class PlotCommand implements Runnable {
    @Spec
    CommandSpec spec;

    /** `ddim plot` alone: say which figures there are. */
    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** The image a figure is drawn on: image --index of --data. */
    static final class ImageChoice {
        @Option(names = "--data", defaultValue = "fashion-mnist", paramLabel = "DIR|FILE|fashion-mnist",
                description = "where the image comes from (default: ${DEFAULT-VALUE})")
        String data;

        @Option(names = "--index", defaultValue = "0", description = "which image of --data (default: ${DEFAULT-VALUE})")
        int index;

        ImageBatch image(int channels, int size) {
            Dataset dataset = Datasets.open(data, channels, size, index + 1);
            if (index < 0 || index >= dataset.size()) {
                throw new IllegalArgumentException("--index " + index + " is outside the " + dataset.size() + " image(s) of " + data);
            }
            return new ImageBatch(1, channels, size, size, dataset.range(index, index + 1));
        }
    }

    static void wrote(CommandSpec spec, Path out) {
        spec.commandLine().getOut().println("wrote " + out.toAbsolutePath());
    }

    @Command(name = "schedules", mixinStandardHelpOptions = true,
            description = "q(x_t | x_0) for evenly spaced t on one image, one row per schedule (cosine, linear).")
    static final class Schedules implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Mixin
        ImageChoice choice = new ImageChoice();

        @Option(names = "--channels", defaultValue = "1", description = "(default: ${DEFAULT-VALUE})")
        int channels;

        @Option(names = "--image-size", defaultValue = "32", description = "(default: ${DEFAULT-VALUE})")
        int imageSize;

        @Option(names = "--columns", defaultValue = "10", description = "values of t (default: ${DEFAULT-VALUE})")
        int columns;

        @Option(names = "--seed", defaultValue = "0", description = "noise seed (default: ${DEFAULT-VALUE})")
        long seed;

        @Option(names = {"-o", "--out"}, defaultValue = "schedules.png", description = "(default: ${DEFAULT-VALUE})")
        Path out;

        @Override
        public Integer call() {
            ImageBatch.imageFormat(out);
            ImageBatch.write(Figures.schedules(choice.image(channels, imageSize), columns, seed), out);
            wrote(spec, out);
            return 0;
        }
    }

    @Command(name = "embedding", mixinStandardHelpOptions = true,
            description = "The sinusoidal embedding as a heatmap: rows noise variances in [0, 1], columns dimensions.")
    static final class Embedding implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--embedding-dim", defaultValue = "32", description = "(default: ${DEFAULT-VALUE})")
        int embeddingDim;

        @Option(names = "--rows", defaultValue = "100", description = "noise variances (default: ${DEFAULT-VALUE})")
        int rows;

        @Option(names = {"-o", "--out"}, defaultValue = "embedding.png", description = "(default: ${DEFAULT-VALUE})")
        Path out;

        @Override
        public Integer call() {
            ImageBatch.imageFormat(out);
            ImageBatch.write(Figures.embedding(ModelConfig.builder().embeddingDim(embeddingDim).build(), rows), out);
            wrote(spec, out);
            return 0;
        }
    }

    @Command(name = "process", mixinStandardHelpOptions = true,
            description = "Forward diffusion of an image (top row) and the model's reverse process from that final noise (bottom row).")
    static final class Process implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = {"-m", "--model"}, required = true, paramLabel = "FILE", description = "a model file (.safetensors)")
        Path model;

        @Mixin
        ImageChoice choice = new ImageChoice();

        @Option(names = "--columns", defaultValue = "10", description = "images per row (default: ${DEFAULT-VALUE})")
        int columns;

        @Option(names = {"-s", "--steps"}, defaultValue = "18", description = "reverse DDIM steps, >= columns - 1 (default: ${DEFAULT-VALUE})")
        int steps;

        @Option(names = "--seed", defaultValue = "0", description = "noise seed (default: ${DEFAULT-VALUE})")
        long seed;

        @Option(names = {"-o", "--out"}, defaultValue = "process.png", description = "(default: ${DEFAULT-VALUE})")
        Path out;

        @Mixin
        RuntimeOptions runtime = new RuntimeOptions();

        @Override
        public Integer call() {
            ImageBatch.imageFormat(out);
            try (Ddim ddim = Ddim.open(model, runtime.device())) {
                ModelConfig config = ddim.config();
                ImageBatch.write(Figures.process(ddim, choice.image(config.channels(), config.imageSize()), columns, steps, seed), out);
            }
            wrote(spec, out);
            return 0;
        }
    }
}
