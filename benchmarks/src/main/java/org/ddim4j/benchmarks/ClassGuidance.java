package org.ddim4j.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.FeatureExtractor;
import org.ddim4j.Features;
import org.ddim4j.ImageBatch;
import org.ddim4j.Kid;
import org.ddim4j.SampleOptions;
import org.ddim4j.data.Dataset;
import org.ddim4j.data.Datasets;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

/**
 * How well a class-conditional model draws the class it is asked for, at several guidance weights.
 *
 * <ol>
 * <li>A classifier head (softmax regression) on the shipped KID feature extractor's features, trained on the first
 * 20,000 of Fashion-MNIST's training images and scored on its 10,000 test images.</li>
 * <li>For each guidance weight: {@code perClass} samples of every class (deterministic DDIM, EMA weights), classified by
 * the head: the share that lands in the requested class; and KID per class against that class's test images, and over
 * all classes against as many test images.</li>
 * <li>The unconditional model, for comparison: its samples' KID against the same test images, and per class with its
 * samples grouped by the head's prediction.</li>
 * </ol>
 *
 * Writes a JSON file of every figure. Usage: {@code ClassGuidance CLASS_MODEL UNCONDITIONAL_MODEL OUT.json [perClass]
 * [steps] [weights...]}.
 */
public final class ClassGuidance {
    private static final int CLASSES = 10;
    private static final long SEED = 2026;
    private static final int HEAD_TRAINING_IMAGES = 20_000;

    private ClassGuidance() {}

    public static void main(String[] args) throws IOException {
        Path classModel = Path.of(args[0]);
        Path unconditionalModel = Path.of(args[1]);
        Path out = Path.of(args[2]);
        int perClass = args.length > 3 ? Integer.parseInt(args[3]) : 50;
        int steps = args.length > 4 ? Integer.parseInt(args[4]) : 20;
        double[] weights = args.length > 5 ? Arrays.stream(args, 5, args.length).mapToDouble(Double::parseDouble).toArray()
                : new double[] {0, 1, 2, 3, 5};
        Ddim.setThreads(0);
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("class_model", classModel.toString());
        report.put("unconditional_model", unconditionalModel.toString());
        report.put("samples_per_class", perClass);
        report.put("steps", steps);
        report.put("sampler", "DDIM (eta 0), EMA weights, micro-batch 16");
        try (FeatureExtractor extractor = FeatureExtractor.open(FeatureExtractor.defaultPath(), Device.cpu())) {
            long start = System.nanoTime();
            // A linear head needs far fewer images than the network did: the first 20,000 of the training split.
            Dataset train = Datasets.fashionMnist(1, 32, HEAD_TRAINING_IMAGES);
            Dataset test = Datasets.fashionMnistTest(1, 32, Integer.MAX_VALUE);
            Features trainFeatures = features(extractor, train);
            Features testFeatures = features(extractor, test);
            Head head = Head.train(trainFeatures, train.labels(0, train.size()), SEED);
            int[] testLabels = test.labels(0, test.size());
            double testAccuracy = head.accuracy(testFeatures, testLabels);
            // The same measure on real images: the most a sampler can expect of this head, class by class.
            int[] testPredicted = head.predict(testFeatures);
            List<Double> testPerClass = new ArrayList<>();
            for (int c = 0; c < CLASSES; c++) {
                int label = c;
                int[] members = java.util.stream.IntStream.range(0, testLabels.length).filter(i -> testLabels[i] == label).toArray();
                testPerClass.add((double) Arrays.stream(members).filter(i -> testPredicted[i] == label).count() / members.length);
            }
            report.put("classifier", Map.of("train_images", train.size(), "test_images", test.size(), "test_accuracy", testAccuracy,
                    "test_accuracy_per_class", testPerClass, "train_accuracy", head.accuracy(trainFeatures, train.labels(0, train.size())),
                    "seconds", seconds(start)));
            System.out.printf(Locale.ROOT, "classifier head: test accuracy %.4f%n", testAccuracy);

            Features[] testByClass = new Features[CLASSES];
            for (int c = 0; c < CLASSES; c++) {
                testByClass[c] = features(extractor, test.ofClass(c));
            }
            // As many test images as samples, the same for every model: every k-th image of the test split.
            Features testAll = subset(testFeatures, perClass * CLASSES);
            Kid.Options perClassKid = new Kid.Options(100, Math.min(perClass, 50), 0);
            Kid.Options allKid = new Kid.Options(100, Math.min(perClass * CLASSES, 100), 0);

            List<Map<String, Object>> rows = new ArrayList<>();
            try (Ddim ddim = Ddim.open(classModel, Device.cpu())) {
                report.put("class_names", ddim.config().classNames());
                for (double w : weights) {
                    start = System.nanoTime();
                    SampleOptions options = SampleOptions.builder().steps(steps).seed(SEED).classRows(CLASSES, perClass).guidance(w).build();
                    int[] requested = options.classes().stream().mapToInt(Integer::intValue).toArray();
                    ImageBatch images = ddim.sample(options);
                    Features generated = extractor.features(images);
                    int[] predicted = head.predict(generated);
                    Map<String, Object> row = new LinkedHashMap<>();
                    row.put("guidance", w);
                    row.put("in_requested_class", share(predicted, requested));
                    List<Double> shares = new ArrayList<>();
                    List<Double> kids = new ArrayList<>();
                    for (int c = 0; c < CLASSES; c++) {
                        Features own = rows(generated, c * perClass, (c + 1) * perClass);
                        shares.add(share(Arrays.copyOfRange(predicted, c * perClass, (c + 1) * perClass), c));
                        kids.add(Kid.compute(testByClass[c], own, perClassKid).kid());
                    }
                    row.put("in_requested_class_per_class", shares);
                    row.put("kid_per_class", kids);
                    row.put("kid_per_class_mean", kids.stream().mapToDouble(Double::doubleValue).average().orElseThrow());
                    row.put("kid_all", Kid.compute(testAll, generated, allKid).kid());
                    row.put("seconds", seconds(start));
                    rows.add(row);
                    System.out.printf(Locale.ROOT, "guidance %.1f: %.1f%% in the requested class, mean per-class KID %.4f, KID %.4f (%.0f s)%n",
                            w, 100 * (double) row.get("in_requested_class"), (double) row.get("kid_per_class_mean"),
                            (double) row.get("kid_all"), (double) row.get("seconds"));
                }
            }
            report.put("guidance", rows);

            try (Ddim ddim = Ddim.open(unconditionalModel, Device.cpu())) {
                start = System.nanoTime();
                ImageBatch images = ddim.sample(SampleOptions.builder().count(perClass * CLASSES).steps(steps).seed(SEED).build());
                Features generated = extractor.features(images);
                int[] predicted = head.predict(generated);
                List<Double> kids = new ArrayList<>();
                List<Integer> counts = new ArrayList<>();
                for (int c = 0; c < CLASSES; c++) {
                    int label = c;
                    int[] members = java.util.stream.IntStream.range(0, predicted.length).filter(i -> predicted[i] == label).toArray();
                    counts.add(members.length);
                    kids.add(members.length >= 10
                            ? Kid.compute(testByClass[c], pick(generated, members), new Kid.Options(100, Math.min(members.length, 50), 0)).kid()
                            : Double.NaN);
                }
                Map<String, Object> unconditional = new LinkedHashMap<>();
                unconditional.put("kid_all", Kid.compute(testAll, generated, allKid).kid());
                unconditional.put("predicted_class_counts", counts);
                unconditional.put("kid_per_predicted_class", kids);
                unconditional.put("kid_per_predicted_class_mean", kids.stream().filter(k -> !k.isNaN()).mapToDouble(Double::doubleValue)
                        .average().orElse(Double.NaN));
                unconditional.put("seconds", seconds(start));
                report.put("unconditional", unconditional);
                System.out.printf(Locale.ROOT, "unconditional: KID %.4f, mean per-class KID %.4f%n", (double) unconditional.get("kid_all"),
                        (double) unconditional.get("kid_per_predicted_class_mean"));
            }
        }
        Files.createDirectories(out.toAbsolutePath().getParent());
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.toFile(), report);
    }

    private static double seconds(long start) {
        return (System.nanoTime() - start) / 1e9;
    }

    private static Features features(FeatureExtractor extractor, Dataset data) {
        List<Features> parts = new ArrayList<>();
        for (int from = 0; from < data.size(); from += 2000) {
            int to = Math.min(data.size(), from + 2000);
            parts.add(extractor.features(data.range(from, to), data.channels(), data.imageSize()));
        }
        return Features.concat(parts);
    }

    private static Features rows(Features features, int from, int to) {
        return new Features(to - from, features.dimension(),
                Arrays.copyOfRange(features.values(), from * features.dimension(), to * features.dimension()));
    }

    private static Features pick(Features features, int[] members) {
        int d = features.dimension();
        float[] values = new float[members.length * d];
        for (int k = 0; k < members.length; k++) {
            System.arraycopy(features.values(), members[k] * d, values, k * d, d);
        }
        return new Features(members.length, d, values);
    }

    /** {@code count} rows spread evenly over {@code features}. */
    private static Features subset(Features features, int count) {
        int[] members = new int[count];
        for (int k = 0; k < count; k++) {
            members[k] = (int) ((long) k * features.count() / count);
        }
        return pick(features, members);
    }

    private static double share(int[] predicted, int[] requested) {
        int hits = 0;
        for (int i = 0; i < predicted.length; i++) {
            hits += predicted[i] == requested[i] ? 1 : 0;
        }
        return (double) hits / predicted.length;
    }

    private static double share(int[] predicted, int label) {
        return (double) Arrays.stream(predicted).filter(p -> p == label).count() / predicted.length;
    }

    /** Softmax regression on standardised features, trained with Adam on mini-batches (deterministic from the seed). */
    record Head(float[] mean, float[] std, double[][] weights, double[] bias) {
        static Head train(Features features, int[] labels, long seed) {
            int n = features.count();
            int d = features.dimension();
            float[] mean = new float[d];
            float[] std = new float[d];
            for (int j = 0; j < d; j++) {
                double sum = 0;
                double squares = 0;
                for (int i = 0; i < n; i++) {
                    double v = features.values()[i * d + j];
                    sum += v;
                    squares += v * v;
                }
                mean[j] = (float) (sum / n);
                std[j] = (float) Math.max(Math.sqrt(Math.max(squares / n - mean[j] * (double) mean[j], 0)), 1e-6);
            }
            Head head = new Head(mean, std, new double[CLASSES][d], new double[CLASSES]);
            double[][] m = new double[CLASSES][d + 1];
            double[][] v = new double[CLASSES][d + 1];
            double rate = 1e-2;
            int batch = 256;
            long t = 0;
            SplittableRandom random = new SplittableRandom(seed);
            double[] x = new double[d];
            double[] p = new double[CLASSES];
            for (int epoch = 0; epoch < 10; epoch++) {
                int[] order = Dataset.shuffled(n, random.nextLong());
                for (int from = 0; from + batch <= n; from += batch) {
                    double[][] grad = new double[CLASSES][d + 1];
                    for (int k = from; k < from + batch; k++) {
                        int i = order[k];
                        head.standardised(features, i, x);
                        head.probabilities(x, p);
                        for (int c = 0; c < CLASSES; c++) {
                            double g = (p[c] - (labels[i] == c ? 1 : 0)) / batch;
                            for (int j = 0; j < d; j++) {
                                grad[c][j] += g * x[j];
                            }
                            grad[c][d] += g;
                        }
                    }
                    t++;
                    for (int c = 0; c < CLASSES; c++) {
                        for (int j = 0; j <= d; j++) {
                            m[c][j] = 0.9 * m[c][j] + 0.1 * grad[c][j];
                            v[c][j] = 0.999 * v[c][j] + 0.001 * grad[c][j] * grad[c][j];
                            double step = rate * (m[c][j] / (1 - Math.pow(0.9, t))) / (Math.sqrt(v[c][j] / (1 - Math.pow(0.999, t))) + 1e-8);
                            if (j < d) {
                                head.weights[c][j] -= step;
                            } else {
                                head.bias[c] -= step;
                            }
                        }
                    }
                }
                rate *= 0.7;
            }
            return head;
        }

        void standardised(Features features, int i, double[] x) {
            int d = features.dimension();
            for (int j = 0; j < d; j++) {
                x[j] = (features.values()[i * d + j] - mean[j]) / std[j];
            }
        }

        void probabilities(double[] x, double[] p) {
            double max = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < CLASSES; c++) {
                double z = bias[c];
                for (int j = 0; j < x.length; j++) {
                    z += weights[c][j] * x[j];
                }
                p[c] = z;
                max = Math.max(max, z);
            }
            double sum = 0;
            for (int c = 0; c < CLASSES; c++) {
                p[c] = Math.exp(p[c] - max);
                sum += p[c];
            }
            for (int c = 0; c < CLASSES; c++) {
                p[c] /= sum;
            }
        }

        int[] predict(Features features) {
            double[] x = new double[features.dimension()];
            double[] p = new double[CLASSES];
            int[] predicted = new int[features.count()];
            for (int i = 0; i < predicted.length; i++) {
                standardised(features, i, x);
                probabilities(x, p);
                int best = 0;
                for (int c = 1; c < CLASSES; c++) {
                    best = p[c] > p[best] ? c : best;
                }
                predicted[i] = best;
            }
            return predicted;
        }

        double accuracy(Features features, int[] labels) {
            return share(predict(features), labels);
        }
    }
}
