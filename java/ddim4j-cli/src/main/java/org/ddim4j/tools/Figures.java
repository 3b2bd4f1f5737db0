package org.ddim4j.tools;

import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;

import org.ddim4j.Ddim;
import org.ddim4j.ImageBatch;
import org.ddim4j.ModelConfig;
import org.ddim4j.Noise;
import org.ddim4j.SampleOptions;
import org.ddim4j.Schedule;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;

/**
 * The reference's explanatory figures, as images (write them with {@link ImageBatch#writePng}):
 * the forward process under both schedules, the sinusoidal noise embedding, and forward against
 * reverse diffusion for a model.
 */
public final class Figures {
    /** Side of one image cell: small images are scaled up (nearest neighbour) to stay visible. */
    private static final int MIN_CELL = 64;
    private static final int LABEL_WIDTH = 110;
    private static final int HEADER_HEIGHT = 48;

    private Figures() {}

    /**
     * q(x_t | x_0) = N(signal(t) x_0, noise(t)^2 I) for {@code columns} evenly spaced t in [0, 1] on
     * the first image of {@code image}, one row per schedule (cosine, linear; the default signal
     * bounds). Pixels are mapped to [-1, 1] before noising and back for display; the noise is drawn
     * from {@code seed}, the same for both rows.
     */
    public static BufferedImage schedules(ImageBatch image, int columns, long seed) {
        Objects.requireNonNull(image, "image");
        requireColumns(columns);
        float[] x0 = image.slice(0, 1).pixels();
        float[] noise = gaussian(x0.length, seed);
        float[] times = evenly(columns, 0, 1);
        List<List<BufferedImage>> rows = new ArrayList<>();
        for (Schedule schedule : List.of(Schedule.cosine(), Schedule.linear())) {
            Schedule.Rates rates = schedule.rates(times);
            List<BufferedImage> row = new ArrayList<>();
            for (int j = 0; j < columns; j++) {
                float[] xt = new float[x0.length];
                for (int p = 0; p < xt.length; p++) {
                    float mixed = rates.signal()[j] * (2 * x0[p] - 1) + rates.noise()[j] * noise[p];
                    xt[p] = (mixed + 1) / 2;
                }
                row.add(single(image, xt).image(0));
            }
            rows.add(row);
        }
        return labelledGrid("Forward process q(x_t | x_0) by schedule", rows, List.of("cosine", "linear"), timeLabels(times));
    }

    /**
     * The sinusoidal embedding of {@code rows} noise variances evenly spaced in [0, 1] (rows) over
     * the embedding's dimensions (columns, sines then cosines), as a heatmap.
     */
    public static BufferedImage embedding(ModelConfig config, int rows) {
        Objects.requireNonNull(config, "config");
        if (rows < 2) {
            throw new IllegalArgumentException("rows must be >= 2, got " + rows);
        }
        float[] variances = evenly(rows, 0, 1);
        float[][] values = config.noiseEmbedding(variances);
        int dims = config.embeddingDim();
        List<Number> dimensions = new ArrayList<>();
        for (int j = 0; j < dims; j++) {
            dimensions.add(j);
        }
        List<Number> rowValues = new ArrayList<>();
        List<Number[]> cells = new ArrayList<>(rows * dims);
        for (int i = 0; i < rows; i++) {
            rowValues.add(Math.round(variances[i] * 1000) / 1000.0);
            for (int j = 0; j < dims; j++) {
                cells.add(new Number[] {j, i, values[i][j]});
            }
        }
        HeatMapChart chart = new HeatMapChartBuilder().width(900).height(700)
                .title("Sinusoidal embedding of the noise variance (" + dims + " dims: sines, then cosines)")
                .xAxisTitle("dimension").yAxisTitle("noise variance: 0 (bottom) to 1 (top)").build();
        chart.getStyler().setShowValue(false);
        chart.getStyler().setYAxisTicksVisible(false); // one label per row would be illegible
        chart.getStyler().setPlotContentSize(1);
        chart.getStyler().setRangeColors(new Color[] {new Color(0x3B4CC0), Color.WHITE, new Color(0xB40426)});
        chart.getStyler().setMin(-1);
        chart.getStyler().setMax(1);
        chart.addSeries("embedding", dimensions, rowValues, cells);
        return BitmapEncoder.getBufferedImage(chart);
    }

    /**
     * Forward diffusion of the first image of {@code image} at {@code columns} evenly spaced t from 0
     * to 1 under the model's schedule (top row), and the reverse process the model runs from that
     * final noisy image with {@code steps} deterministic DDIM steps, at {@code columns} evenly spaced
     * points from t = 1 to the generated image (bottom row). The noise is the model's starting noise
     * of image 0 of {@code seed}.
     */
    public static BufferedImage process(Ddim ddim, ImageBatch image, int columns, int steps, long seed) {
        Objects.requireNonNull(ddim, "ddim");
        Objects.requireNonNull(image, "image");
        requireColumns(columns);
        if (steps < columns - 1) {
            throw new IllegalArgumentException("steps must be >= columns - 1 = " + (columns - 1) + ", got " + steps);
        }
        ModelConfig config = ddim.config();
        if (image.channels() != config.channels() || image.height() != config.imageSize() || image.width() != config.imageSize()) {
            throw new IllegalArgumentException("the image must be " + config.channels() + "x" + config.imageSize() + "x"
                    + config.imageSize() + " for this model");
        }
        float[] x0 = image.slice(0, 1).pixels();
        float[][] normalizer = ddim.normalizer();
        float[] noise = ddim.noise(seed, 0, 1).values();
        int plane = config.imageSize() * config.imageSize();
        float[] times = evenly(columns, 0, 1);
        Schedule.Rates rates = config.schedule().rates(times);
        List<BufferedImage> forward = new ArrayList<>();
        float[] last = null;
        for (int j = 0; j < columns; j++) {
            float[] state = new float[x0.length];
            float[] shown = new float[x0.length];
            for (int p = 0; p < x0.length; p++) {
                int c = p / plane;
                float z = (x0[p] - normalizer[0][c]) / normalizer[1][c];
                state[p] = rates.signal()[j] * z + rates.noise()[j] * noise[p];
                shown[p] = state[p] * normalizer[1][c] + normalizer[0][c];
            }
            forward.add(single(image, shown).image(0));
            last = state;
        }
        Noise start = new Noise(1, config.channels(), config.imageSize(), config.imageSize(), last);
        ImageBatch frames = ddim.trajectories(SampleOptions.builder().count(1).steps(steps).seed(seed).noise(start).build()).get(0);
        List<BufferedImage> reverse = new ArrayList<>();
        List<String> reverseLabels = new ArrayList<>();
        for (int j = 0; j < columns; j++) {
            int k = (int) Math.round((double) j * steps / (columns - 1));
            reverse.add(frames.image(k));
            reverseLabels.add(k == steps ? "output" : String.format("t=%.2f", 1 - (double) k / steps));
        }
        List<String> labels = timeLabels(times);
        BufferedImage grid = labelledGrid("Forward diffusion (top) and the model's reverse process from its end (bottom)",
                List.of(forward, reverse), List.of("forward", "reverse"), labels);
        // The reverse row runs the other way in time: label its cells under the images.
        return withFooter(grid, reverseLabels, cellSize(forward.get(0)));
    }

    // ---- drawing ----

    private static BufferedImage labelledGrid(String title, List<List<BufferedImage>> rows, List<String> rowLabels,
            List<String> columnLabels) {
        int cell = cellSize(rows.get(0).get(0));
        int columns = rows.get(0).size();
        int gap = 4;
        BufferedImage grid = new BufferedImage(LABEL_WIDTH + columns * (cell + gap), HEADER_HEIGHT + rows.size() * (cell + gap),
                BufferedImage.TYPE_INT_RGB);
        Graphics2D g = graphics(grid);
        try {
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
            g.drawString(title, 8, 18);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            for (int j = 0; j < columns; j++) {
                g.drawString(columnLabels.get(j), LABEL_WIDTH + j * (cell + gap) + 4, HEADER_HEIGHT - 8);
            }
            for (int i = 0; i < rows.size(); i++) {
                int y = HEADER_HEIGHT + i * (cell + gap);
                g.drawString(rowLabels.get(i), 8, y + cell / 2 + 5);
                for (int j = 0; j < columns; j++) {
                    g.drawImage(rows.get(i).get(j), LABEL_WIDTH + j * (cell + gap), y, cell, cell, null);
                }
            }
        } finally {
            g.dispose();
        }
        return grid;
    }

    private static BufferedImage withFooter(BufferedImage grid, List<String> labels, int cell) {
        int footer = 24;
        BufferedImage out = new BufferedImage(grid.getWidth(), grid.getHeight() + footer, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = graphics(out);
        try {
            g.drawImage(grid, 0, 0, null);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            for (int j = 0; j < labels.size(); j++) {
                g.drawString(labels.get(j), LABEL_WIDTH + j * (cell + 4) + 4, grid.getHeight() + 14);
            }
        } finally {
            g.dispose();
        }
        return out;
    }

    private static Graphics2D graphics(BufferedImage image) {
        Graphics2D g = image.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, image.getWidth(), image.getHeight());
        g.setColor(Color.BLACK);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_NEAREST_NEIGHBOR);
        return g;
    }

    private static int cellSize(BufferedImage image) {
        int side = image.getWidth();
        return side >= MIN_CELL ? side : side * ((MIN_CELL + side - 1) / side);
    }

    // ---- numbers ----

    /** One image of {@code like}'s shape, for drawing: {@link ImageBatch#image} clips values to [0, 1] itself. */
    private static ImageBatch single(ImageBatch like, float[] pixels) {
        return new ImageBatch(1, like.channels(), like.height(), like.width(), pixels);
    }

    private static float[] gaussian(int n, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = (float) random.nextGaussian();
        }
        return values;
    }

    private static float[] evenly(int n, float from, float to) {
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = from + (to - from) * i / (n - 1);
        }
        return values;
    }

    private static List<String> timeLabels(float[] times) {
        List<String> labels = new ArrayList<>();
        for (float t : times) {
            labels.add(String.format("t=%.2f", t));
        }
        return labels;
    }

    private static void requireColumns(int columns) {
        if (columns < 2 || columns > 32) {
            throw new IllegalArgumentException("columns must lie in [2, 32], got " + columns);
        }
    }
}
