package org.ddim4j.tools;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

import org.ddim4j.Ddim;
import org.ddim4j.DdimException;
import org.ddim4j.Device;
import org.ddim4j.ImageBatch;
import org.ddim4j.Loss;
import org.ddim4j.ModelConfig;
import org.ddim4j.TrainOptions;
import org.ddim4j.Trainer;
import org.ddim4j.data.Dataset;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The learning-rate range test of the reference's training script: train a fresh model for a few
 * hundred steps while the learning rate grows exponentially from {@code minLr} to {@code maxLr},
 * record the loss, and stop once it diverges. The suggested learning rate is where the smoothed
 * loss falls fastest (per decade of learning rate), before its minimum.
 *
 * <pre>{@code
 * LrFinder.Result result = LrFinder.run(config, Device.cpu(), Datasets.fashionMnist(1, 32), LrFinder.Options.defaults());
 * System.out.println(result.suggested());
 * ImageBatch.writePng(result.plot(), Path.of("lr-find.png"));
 * }</pre>
 */
public final class LrFinder {
    private LrFinder() {}

    /**
     * @param minLr      the first learning rate, > 0 (default 1e-6)
     * @param maxLr      the last, > minLr (default 1)
     * @param steps      training steps from minLr to maxLr, >= 10 (default 200)
     * @param batchSize  images per step (default 64)
     * @param smoothing  exponential smoothing of the loss, in [0, 1) (default 0.95)
     * @param stopFactor stop once the smoothed loss exceeds this multiple of its minimum (default 4)
     * @param loss       the training loss (default MAE)
     * @param seed       the model's weights, the batches and the training noise (default 0)
     */
    public record Options(double minLr, double maxLr, int steps, int batchSize, double smoothing, double stopFactor, Loss loss,
            long seed) {
        public Options {
            if (!(minLr > 0 && maxLr > minLr && Double.isFinite(maxLr))) {
                throw new IllegalArgumentException("need 0 < minLr < maxLr, got " + minLr + " and " + maxLr);
            }
            if (steps < 10 || batchSize < 1) {
                throw new IllegalArgumentException("need steps >= 10 and batchSize >= 1, got " + steps + " and " + batchSize);
            }
            if (!(smoothing >= 0 && smoothing < 1) || !(stopFactor > 1)) {
                throw new IllegalArgumentException("need smoothing in [0, 1) and stopFactor > 1");
            }
            Objects.requireNonNull(loss, "loss");
        }

        public static Options defaults() {
            return new Options(1e-6, 1, 200, 64, 0.95, 4, Loss.MAE, 0);
        }
    }

    /** Per step: the learning rate, the batch loss and the smoothed loss; the suggestion and the rate at the minimum. */
    public record Result(double[] learningRates, double[] losses, double[] smoothedLosses, double suggested, double minimumLossLr,
            boolean diverged) {
        /** Loss against learning rate (log scale), with the suggestion marked. */
        public BufferedImage plot() {
            XYChart chart = new XYChartBuilder().width(900).height(500).title("Learning-rate range test")
                    .xAxisTitle("learning rate").yAxisTitle("loss").build();
            chart.getStyler().setXAxisLogarithmic(true);
            chart.getStyler().setMarkerSize(0);
            chart.getStyler().setXAxisDecimalPattern("0.0E0");
            chart.addSeries("batch loss", learningRates, losses).setMarker(SeriesMarkers.NONE);
            chart.addSeries("smoothed loss", learningRates, smoothedLosses).setMarker(SeriesMarkers.NONE);
            // Divergence spikes would flatten the curve that matters: show up to 1.5x the starting loss.
            double low = Arrays.stream(smoothedLosses).min().orElse(0);
            double high = 1.5 * Math.max(smoothedLosses[0], losses[0]);
            chart.getStyler().setYAxisMin(0.9 * Math.min(low, Arrays.stream(losses).min().orElse(low)));
            chart.getStyler().setYAxisMax(high);
            chart.addSeries(String.format("suggested %.2g", suggested), new double[] {suggested, suggested}, new double[] {low, high})
                    .setMarker(SeriesMarkers.NONE);
            return BitmapEncoder.getBufferedImage(chart);
        }
    }

    /** Runs the test on a fresh model of {@code config}, normalised with the data's statistics as training does. */
    public static Result run(ModelConfig config, Device device, Dataset data, Options options) {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(data, "data");
        Objects.requireNonNull(options, "options");
        if (data.channels() != config.channels() || data.imageSize() != config.imageSize()) {
            throw new IllegalArgumentException("the data holds " + data.channels() + "x" + data.imageSize() + " images, the model "
                    + config.channels() + "x" + config.imageSize());
        }
        List<Double> rates = new ArrayList<>();
        List<Double> losses = new ArrayList<>();
        List<Double> smoothed = new ArrayList<>();
        boolean diverged = false;
        try (Ddim ddim = Ddim.create(config, device, options.seed())) {
            float[][] statistics = data.channelStatistics();
            ddim.setNormalizer(statistics[0], statistics[1]);
            TrainOptions.Builder training = TrainOptions.builder().batchSize(options.batchSize()).emaDecay(0).loss(options.loss())
                    .seed(options.seed()).validationSplit(0);
            int[] order = Dataset.shuffled(data.size(), options.seed());
            double average = 0;
            double best = Double.POSITIVE_INFINITY;
            for (int step = 0; step < options.steps(); step++) {
                double lr = options.minLr() * Math.pow(options.maxLr() / options.minLr(), step / (options.steps() - 1.0));
                Trainer trainer = ddim.trainer(training.learningRate(lr).build()); // keeps AdamW's state, changes its rate
                float loss;
                try {
                    loss = trainer.step(data.batch(batchPositions(order, step, options.batchSize())));
                } catch (DdimException e) { // a non-finite loss: the rate is far too high
                    diverged = true;
                    break;
                }
                average = options.smoothing() * average + (1 - options.smoothing()) * loss;
                double debiased = average / (1 - Math.pow(options.smoothing(), step + 1));
                rates.add(lr);
                losses.add((double) loss);
                smoothed.add(debiased);
                best = Math.min(best, debiased);
                if (step > 10 && debiased > options.stopFactor() * best) {
                    diverged = true;
                    break;
                }
            }
        }
        if (rates.size() < 3) {
            throw new IllegalStateException("the loss diverged within " + rates.size() + " steps: lower minLr");
        }
        double[] r = toArray(rates);
        double[] s = toArray(smoothed);
        return new Result(r, toArray(losses), s, steepest(r, s), r[argMin(s)], diverged);
    }

    /** The rate where the smoothed loss falls fastest per decade, searched up to its minimum, past the first 5% of steps (smoothing warm-up). */
    static double steepest(double[] rates, double[] smoothed) {
        int end = argMin(smoothed);
        int start = Math.min(Math.max(1, rates.length / 20), Math.max(1, end - 1));
        int best = start;
        double bestSlope = Double.POSITIVE_INFINITY;
        for (int i = start; i <= end && i < rates.length - 1; i++) {
            // A central difference over log10(rate): the loss change per decade.
            double slope = (smoothed[i + 1] - smoothed[i - 1]) / (Math.log10(rates[i + 1]) - Math.log10(rates[i - 1]));
            if (slope < bestSlope) {
                bestSlope = slope;
                best = i;
            }
        }
        return rates[best];
    }

    private static int[] batchPositions(int[] order, int step, int batchSize) {
        int[] positions = new int[batchSize];
        for (int k = 0; k < batchSize; k++) {
            positions[k] = order[(int) (((long) step * batchSize + k) % order.length)];
        }
        return positions;
    }

    private static int argMin(double[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] < values[best]) {
                best = i;
            }
        }
        return best;
    }

    private static double[] toArray(List<Double> values) {
        return values.stream().mapToDouble(Double::doubleValue).toArray();
    }
}
