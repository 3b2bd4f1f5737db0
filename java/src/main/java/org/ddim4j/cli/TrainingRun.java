package org.ddim4j.cli;

import java.awt.image.BufferedImage;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.ImageBatch;
import org.ddim4j.ModelConfig;
import org.ddim4j.SampleOptions;
import org.ddim4j.TrainListener;
import org.ddim4j.TrainOptions;
import org.ddim4j.Trainer;
import org.ddim4j.data.Dataset;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;

import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * One training run of the CLI in a run directory: a live progress bar, a sample grid from fixed
 * noise after each epoch (samples/epoch-NNN.png), metrics.csv (per epoch), losses.csv (per step),
 * loss.png, checkpoint.safetensors, and at the end model.safetensors.
 */
final class TrainingRun {
    static final String MODEL_FILE = "model.safetensors";
    private static final SampleOptions PREVIEW = SampleOptions.builder().count(16).steps(20).seed(1234).build();

    private final Path runDir;
    private final PrintWriter out;
    private final boolean progressBar;
    private final AtomicBoolean stopRequested = new AtomicBoolean();

    TrainingRun(Path runDir, PrintWriter out, boolean progressBar) {
        this.runDir = runDir;
        this.out = out;
        this.progressBar = progressBar;
    }

    /** Trains from scratch, replacing a previous run in the directory. */
    Path runFresh(ModelConfig config, Device device, Dataset data, TrainOptions options) throws IOException {
        Files.deleteIfExists(options.checkpointPath());
        return run(config, device, data, options, false);
    }

    /** Trains (or, when the run directory has a checkpoint and {@code resume}, continues) and writes everything; returns the model file. */
    Path run(ModelConfig config, Device device, Dataset data, TrainOptions options, boolean resume) throws IOException {
        Files.createDirectories(runDir.resolve("samples"));
        Path checkpoint = options.checkpointPath();
        out.println("data: " + data);
        try (Ddim ddim = resume ? Ddim.open(checkpoint, device) : Ddim.create(config, device, options.seed())) {
            if (resume) {
                out.printf("resuming %s at step %d%n", checkpoint, ddim.trainingSteps());
            } else {
                resetLogs();
            }
            out.printf("model: %s, %,d parameters, on %s with %d thread(s)%n", ddim.config(), ddim.parameterCount(),
                    ddim.device(), Ddim.threads());
            Trainer trainer = ddim.trainer(options);
            // Ctrl-C asks the run to stop after the current step and waits for its checkpoint and model file.
            CountDownLatch finished = new CountDownLatch(1);
            Thread interruptHandler = new Thread(() -> {
                stopRequested.set(true);
                try {
                    finished.await(5, TimeUnit.MINUTES);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, "ddim-train-shutdown");
            Runtime.getRuntime().addShutdownHook(interruptHandler);
            try {
                Trainer.Result result;
                try (Listener listener = new Listener(ddim)) {
                    result = trainer.fit(data, listener);
                }
                Path model = runDir.resolve(MODEL_FILE);
                ddim.save(model);
                out.printf("%s after %d steps; model: %s%n", result.cancelled() ? "stopped" : "finished", result.steps(),
                        model.toAbsolutePath());
                return model;
            } finally {
                finished.countDown();
                try {
                    Runtime.getRuntime().removeShutdownHook(interruptHandler);
                } catch (IllegalStateException e) {
                    // the JVM is already shutting down: the hook is running and now returns
                }
            }
        }
    }

    private void resetLogs() throws IOException {
        Files.writeString(runDir.resolve("metrics.csv"), "epoch,step,train_loss,noise_loss,image_loss,images_per_second,seconds\n");
        Files.writeString(runDir.resolve("losses.csv"), "step,loss\n");
    }

    /** Progress bar, logs and per-epoch previews. */
    private final class Listener implements TrainListener, AutoCloseable {
        private final Ddim ddim;
        private final BufferedWriter losses;
        private ProgressBar bar;

        Listener(Ddim ddim) throws IOException {
            this.ddim = ddim;
            this.losses = Files.newBufferedWriter(runDir.resolve("losses.csv"), StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        }

        @Override
        public void onStep(StepEvent step) {
            try {
                losses.write(step.step() + "," + step.loss() + "\n");
                if (step.step() % 100 == 0) {
                    losses.flush(); // lets `tail -f losses.csv` follow a long run
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            if (!progressBar) {
                return;
            }
            if (bar == null) {
                bar = new ProgressBarBuilder().setTaskName("train").setInitialMax(step.totalSteps()).setUnit(" steps", 1)
                        .setStyle(ProgressBarStyle.ASCII).showSpeed().setUpdateIntervalMillis(500)
                        .startsFrom(step.step() - 1, Duration.ZERO).continuousUpdate().build();
            }
            bar.stepTo(step.step());
            bar.setExtraMessage(String.format(Locale.ROOT, " epoch %d, loss %.4f", step.epoch() + 1, step.loss()));
        }

        @Override
        public boolean stopRequested() {
            return stopRequested.get();
        }

        @Override
        public void onEpoch(EpochSummary epoch) {
            try {
                losses.flush();
                Files.writeString(runDir.resolve("metrics.csv"), String.format(Locale.ROOT, "%d,%d,%.6f,%.6f,%.6f,%.1f,%.1f%n",
                        epoch.epoch() + 1, epoch.step(), epoch.trainLoss(), epoch.noiseLoss(), epoch.imageLoss(),
                        epoch.imagesPerSecond(), epoch.seconds()), StandardOpenOption.APPEND);
                Path grid = runDir.resolve(String.format(Locale.ROOT, "samples/epoch-%03d.png", epoch.epoch() + 1));
                ddim.sample(PREVIEW).writeGrid(grid, 4);
                writeLossPlot();
                String line = String.format(Locale.ROOT,
                        "epoch %d: train loss %.4f, val noise_loss %.4f, image_loss %.4f, %.0f images/s, %.0f s; samples: %s",
                        epoch.epoch() + 1, epoch.trainLoss(), epoch.noiseLoss(), epoch.imageLoss(), epoch.imagesPerSecond(),
                        epoch.seconds(), grid);
                if (bar != null) {
                    bar.pause();
                }
                out.println(line);
                if (bar != null) {
                    bar.resume();
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        @Override
        public void close() throws IOException {
            if (bar != null) {
                bar.close();
            }
            losses.close();
            writeLossPlot();
        }
    }

    /** loss.png: the per-step training loss (and a 50-step moving average) and the per-epoch validation noise_loss. */
    private void writeLossPlot() throws IOException {
        List<Double> steps = new ArrayList<>();
        List<Double> values = new ArrayList<>();
        for (String[] fields : csvRows(runDir.resolve("losses.csv"))) {
            steps.add(Double.parseDouble(fields[0]));
            values.add(Double.parseDouble(fields[1]));
        }
        if (steps.isEmpty()) {
            return;
        }
        XYChart chart = new XYChartBuilder().width(900).height(500).title("Training loss").xAxisTitle("step").yAxisTitle("loss").build();
        chart.getStyler().setMarkerSize(0);
        chart.addSeries("train loss", steps, values).setMarker(SeriesMarkers.NONE);
        chart.addSeries("train loss (50-step mean)", steps, movingAverage(values, 50)).setMarker(SeriesMarkers.NONE);
        List<Double> epochSteps = new ArrayList<>();
        List<Double> noiseLosses = new ArrayList<>();
        for (String[] fields : csvRows(runDir.resolve("metrics.csv"))) {
            double noiseLoss = Double.parseDouble(fields[3]);
            if (Double.isFinite(noiseLoss)) {
                epochSteps.add(Double.parseDouble(fields[1]));
                noiseLosses.add(noiseLoss);
            }
        }
        if (!epochSteps.isEmpty()) {
            chart.addSeries("validation noise_loss (EMA)", epochSteps, noiseLosses).setMarker(SeriesMarkers.CIRCLE);
        }
        BufferedImage image = BitmapEncoder.getBufferedImage(chart);
        ImageBatch.writePng(image, runDir.resolve("loss.png"));
    }

    /** The rows of a CSV file without its header line. */
    private static List<String[]> csvRows(Path file) throws IOException {
        List<String> lines = Files.readAllLines(file);
        return lines.subList(Math.min(1, lines.size()), lines.size()).stream().map(line -> line.split(",")).toList();
    }

    private static List<Double> movingAverage(List<Double> values, int window) {
        List<Double> averages = new ArrayList<>(values.size());
        double sum = 0;
        for (int i = 0; i < values.size(); i++) {
            sum += values.get(i);
            if (i >= window) {
                sum -= values.get(i - window);
            }
            averages.add(sum / Math.min(i + 1, window));
        }
        return averages;
    }
}
