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
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;

import org.ddim4j.AtomicFiles;
import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.Distributed;
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


/**
 * One training run of the CLI in a run directory: a live progress bar, a sample grid from fixed
 * noise after each epoch (samples/epoch-NNN.png), metrics.csv (per epoch), losses.csv (per step),
 * loss.png, checkpoint.safetensors, and at the end model.safetensors.
 */
final class TrainingRun {
    static final String MODEL_FILE = "model.safetensors";

    /** A CSV log of the run: its file in the run directory, header line, and the column that holds each row's step. */
    private record Log(String file, String header, int stepColumn) {}

    private static final Log METRICS = new Log("metrics.csv", "epoch,step,train_loss,noise_loss,image_loss,images_per_second,seconds", 1);
    private static final Log LOSSES = new Log("losses.csv", "step,loss", 0);
    private static final int METRICS_EPOCH_COLUMN = 0;
    private static final int LOSSES_LOSS_COLUMN = 1;
    private static final SampleOptions PREVIEW = SampleOptions.builder().count(16).steps(20).seed(1234).build();

    /** The epoch grid: 16 samples, or for a class-conditional model a row of 4 per class (the first 16 classes). */
    private static SampleOptions preview(ModelConfig config) {
        if (!config.isClassConditional()) {
            return PREVIEW;
        }
        return PREVIEW.toBuilder().classRows(Math.min(config.classes(), 16), 4).build();
    }

    /** The default of --sample-every: small data has epochs of a step or two, and a grid costs 20 network passes. */
    static final int DEFAULT_SAMPLE_EVERY = 100;

    private final Path runDir;
    private final PrintWriter out;
    private final PrintWriter err;
    private final boolean progressBar;
    private final int sampleEvery;
    private final AtomicBoolean stopRequested = new AtomicBoolean();


    /**
     * {@code sampleEvery}: an epoch's end writes a preview grid once at least that many steps have passed since
     * the last one (the last epoch always does); 1 writes one every epoch.
     */
    TrainingRun(Path runDir, PrintWriter out, PrintWriter err, boolean progressBar, int sampleEvery) {
        if (sampleEvery < 1) {
            throw new IllegalArgumentException("--sample-every must be >= 1, got " + sampleEvery);
        }
        this.runDir = runDir;
        this.out = out;
        this.err = err;
        this.progressBar = progressBar;
        this.sampleEvery = sampleEvery;
    }

    /** Trains from scratch, replacing a previous run in the directory. */
    Path runFresh(ModelConfig config, Device device, Dataset data, TrainOptions options) throws IOException {
        Files.deleteIfExists(options.checkpointPath());
        return run(config, device, data, options, false);
    }

    /**
     * Trains (or, when the run directory has a checkpoint and {@code resume}, continues) and writes everything; returns the
     * model file. As a rank other than 0 of a distributed run it writes nothing and returns null: rank 0 has the files.
     */
    Path run(ModelConfig config, Device device, Dataset data, TrainOptions options, boolean resume) throws IOException {
        Distributed distributed = options.distributed();
        boolean writer = options.rank() == 0;
        if (writer) {
            Files.createDirectories(runDir.resolve("samples"));
            removeStaleTemporaries();
        }
        Path checkpoint = options.checkpointPath();
        out.println("data: " + data);
        // Ranks other than 0 start from scratch: joining the group gives them rank 0's weights and step.
        try (Ddim ddim = resume && writer ? Ddim.open(checkpoint, device) : Ddim.create(config, device, options.seed())) {
            if (resume && writer) {
                out.printf("resuming %s at step %d%n", checkpoint, ddim.trainingSteps());
                // A killed run logged steps past its last checkpoint; the resumed run trains them again.
                keepRowsUpTo(METRICS, ddim.trainingSteps());
                keepRowsUpTo(LOSSES, ddim.trainingSteps());
            } else if (writer) {
                resetLogs();
            }
            out.printf("model: %s, %,d parameters, on %s with %d thread(s)%n", ddim.config(), ddim.parameterCount(),
                    ddim.device(), Ddim.threads());
            if (distributed != null) {
                out.printf("rank %d of %d: joining the group at %s:%d%n", distributed.rank(), distributed.worldSize(),
                        distributed.masterAddr(), distributed.masterPort());
            }
            Trainer trainer = ddim.trainer(options);
            if (distributed != null) {
                int microBatches = distributed.worldSize() * options.accumulate();
                int perRank = options.batchSize() / microBatches * options.accumulate();
                out.printf("rank %d of %d: joined at step %d; %d image(s) per rank and step (global batch %d)%n", distributed.rank(),
                        distributed.worldSize(), ddim.trainingSteps(), perRank, perRank * distributed.worldSize());
            }
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
                try (ConsoleListener listener = writer ? new Listener(ddim) : new ConsoleListener()) {
                    result = trainer.fit(data, listener);
                }
                String collectives = "";
                if (distributed != null) {
                    Trainer.CollectiveStats stats = trainer.collectiveStats();
                    collectives = String.format(Locale.ROOT, "; %d collectives moved %.1f MB in %.1f s", stats.calls(),
                            stats.bytes() / 1e6, stats.time().toNanos() / 1e9);
                }
                if (!writer) {
                    out.printf("%s after %d steps%s%n", result.cancelled() ? "stopped" : "finished", result.steps(), collectives);
                    return null;
                }
                Path model = runDir.resolve(MODEL_FILE);
                ddim.save(model);
                out.printf("%s after %d steps%s; model: %s%n", result.cancelled() ? "stopped" : "finished", result.steps(),
                        collectives, model.toAbsolutePath());
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

    /** Deletes what a killed run's atomic writes left behind (a checkpoint's is as large as the model) and says so. */
    private void removeStaleTemporaries() {
        List<Path> removed = new ArrayList<>(AtomicFiles.removeStaleTemporaries(runDir));
        removed.addAll(AtomicFiles.removeStaleTemporaries(runDir.resolve("samples")));
        if (!removed.isEmpty()) {
            out.println("removed temporary files of an interrupted run: "
                    + removed.stream().map(file -> runDir.relativize(file).toString()).collect(Collectors.joining(", ")));
        }
    }

    private void resetLogs() {
        AtomicFiles.writeString(runDir.resolve(METRICS.file()), METRICS.header() + "\n");
        AtomicFiles.writeString(runDir.resolve(LOSSES.file()), LOSSES.header() + "\n");
    }

    /** Rewrites a log without its rows past {@code step} (and any torn row), so that a resumed run neither repeats nor skips a step. */
    private void keepRowsUpTo(Log log, long step) throws IOException {
        Path file = runDir.resolve(log.file());
        int columns = log.header().split(",").length;
        List<String> kept = new ArrayList<>();
        kept.add(log.header());
        for (String[] fields : Files.exists(file) ? csvRows(file) : List.<String[]>of()) {
            Long rowStep = fields.length == columns ? parseStep(fields[log.stepColumn()]) : null;
            if (rowStep != null && rowStep <= step) {
                kept.add(String.join(",", fields));
            }
        }
        AtomicFiles.writeString(file, String.join("\n", kept) + "\n");
    }

    private static Long parseStep(String field) {
        try {
            return Long.parseLong(field);
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /** What every rank shows: progress and epoch summaries on the console, and the stop request. Rank 0's {@link Listener} adds the files. */
    private class ConsoleListener implements TrainListener, java.io.Closeable {
        private Progress progress;

        @Override
        public void onStep(StepEvent step) {
            if (progress == null) {
                progress = Progress.of("train", progressBar, step.step() - 1, err);
            }
            progress.stepTo(step.step(), step.totalSteps(), String.format(Locale.ROOT, " epoch %d, loss %.4f", step.epoch() + 1, step.loss()));
        }

        @Override
        public boolean stopRequested() {
            return stopRequested.get();
        }

        @Override
        public void onEpoch(EpochSummary epoch) {
            printEpoch(epoch, epoch.trainLoss(), "");
        }

        /** The epoch's summary line, beside the progress bar; {@code suffix} follows it (e.g. where its samples are). */
        void printEpoch(EpochSummary epoch, double trainLoss, String suffix) {
            String line = String.format(Locale.ROOT, "epoch %d: train loss %.4f, val noise_loss %.4f, image_loss %.4f, %.0f images/s, %.0f s%s",
                    epoch.epoch() + 1, trainLoss, epoch.noiseLoss(), epoch.imageLoss(), epoch.imagesPerSecond(), epoch.seconds(), suffix);
            if (progress != null) {
                progress.printAside(() -> out.println(line));
            } else {
                out.println(line);
            }
        }

        @Override
        public void close() throws IOException {
            if (progress != null) {
                progress.close();
            }
        }
    }

    /** Rank 0 (or the only process): the console, plus the logs, per-epoch previews and loss plot in the run directory. */
    private final class Listener extends ConsoleListener {
        private final Ddim ddim;
        private final BufferedWriter losses;
        /** The epochs (1-based) metrics.csv holds: a run resumed from a checkpoint at an epoch's end ends that epoch again. */
        private final Set<Integer> loggedEpochs = new HashSet<>();
        /** This epoch's losses so far, with those a resumed run logged before its checkpoint. */
        private double epochLossSum;
        private int epochSteps;
        private long totalSteps;
        private long lastGridStep;

        Listener(Ddim ddim) throws IOException {
            this.ddim = ddim;
            long lastEpochEnd = 0;
            for (String[] row : csvRows(runDir.resolve(METRICS.file()))) {
                loggedEpochs.add(Integer.parseInt(row[METRICS_EPOCH_COLUMN]));
                lastEpochEnd = Math.max(lastEpochEnd, Long.parseLong(row[METRICS.stepColumn()]));
            }
            for (String[] row : csvRows(runDir.resolve(LOSSES.file()))) {
                if (Long.parseLong(row[LOSSES.stepColumn()]) > lastEpochEnd) {
                    addToEpoch(Float.parseFloat(row[LOSSES_LOSS_COLUMN]));
                }
            }
            this.losses = Files.newBufferedWriter(runDir.resolve(LOSSES.file()), StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        }

        private void addToEpoch(float loss) {
            epochLossSum += loss;
            epochSteps++;
        }

        @Override
        public void onStep(StepEvent step) {
            addToEpoch(step.loss());
            try {
                losses.write(step.step() + "," + step.loss() + "\n");
                // Every row reaches the file before the checkpoint that may follow this step, so a killed run loses
                // no step it checkpointed (a write per step costs microseconds; a step, milliseconds at least).
                losses.flush();
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + runDir.resolve(LOSSES.file()) + ": " + e.getMessage(), e);
            }
            totalSteps = step.totalSteps();
            super.onStep(step);
        }

        @Override
        public void onEpoch(EpochSummary epoch) {
            // The Trainer's mean covers this run's steps only; after a resume mid-epoch the log has them all.
            double trainLoss = epochSteps > 0 ? epochLossSum / epochSteps : Double.NaN;
            epochLossSum = 0;
            epochSteps = 0;
            if (!loggedEpochs.add(epoch.epoch() + 1)) {
                return;
            }
            try {
                Files.writeString(runDir.resolve(METRICS.file()), String.format(Locale.ROOT, "%d,%d,%.6f,%.6f,%.6f,%.1f,%.1f%n",
                        epoch.epoch() + 1, epoch.step(), trainLoss, epoch.noiseLoss(), epoch.imageLoss(),
                        epoch.imagesPerSecond(), epoch.seconds()), StandardOpenOption.APPEND);
                String samples = "";
                if (epoch.step() - lastGridStep >= sampleEvery || epoch.step() >= totalSteps) {
                    Path grid = runDir.resolve(String.format(Locale.ROOT, "samples/epoch-%03d.png", epoch.epoch() + 1));
                    ddim.sample(preview(ddim.config())).writeGrid(grid, 4);
                    lastGridStep = epoch.step();
                    samples = "; samples: " + grid;
                    writeLossPlot(); // with the grid, so small data does not redraw it every step or two
                }
                printEpoch(epoch, trainLoss, samples);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + runDir.resolve(METRICS.file()) + ": " + e.getMessage(), e);
            }
        }

        @Override
        public void close() throws IOException {
            super.close();
            losses.close();
            writeLossPlot();
        }
    }

    /** loss.png: the per-step training loss (and a 50-step moving average) and the per-epoch validation noise_loss. */
    private void writeLossPlot() throws IOException {
        List<Double> steps = new ArrayList<>();
        List<Double> values = new ArrayList<>();
        for (String[] fields : csvRows(runDir.resolve(LOSSES.file()))) {
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
        for (String[] fields : csvRows(runDir.resolve(METRICS.file()))) {
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
