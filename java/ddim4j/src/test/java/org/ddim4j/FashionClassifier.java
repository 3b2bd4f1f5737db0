package org.ddim4j;

import org.ddim4j.data.Dataset;
import org.ddim4j.data.Datasets;

/**
 * Which Fashion-MNIST class an image looks like, as the project's classifier sees it: the shipped feature extractor
 * (the penultimate layer of scripts/train-feature-extractor.py's CNN classifier) and the nearest class centroid of
 * 1,000 real test images' features. Tests of class-conditional sampling use it (an untrained model scores ~1 in 10).
 */
public final class FashionClassifier implements AutoCloseable {
    private static final int CLASSES = 10;
    private final FeatureExtractor extractor = FeatureExtractor.open(FeatureExtractor.defaultPath(), Device.cpu());
    private final double[][] centroids;

    public FashionClassifier() {
        Dataset real = Datasets.fashionMnistTest(1, 32, 1000);
        Features features = extractor.features(new ImageBatch(real.size(), 1, 32, 32, real.range(0, real.size())));
        int[] labels = real.labels(0, real.size());
        centroids = new double[CLASSES][features.dimension()];
        int[] members = new int[CLASSES];
        for (int i = 0; i < real.size(); i++) {
            float[] row = features.row(i);
            members[labels[i]]++;
            for (int d = 0; d < row.length; d++) {
                centroids[labels[i]][d] += row[d];
            }
        }
        for (int c = 0; c < CLASSES; c++) {
            for (int d = 0; d < centroids[c].length; d++) {
                centroids[c][d] /= members[c];
            }
        }
    }

    /** The class of each image (1 x 32 x 32, pixels in [0, 1]). */
    public int[] classify(ImageBatch images) {
        Features features = extractor.features(images);
        int[] classes = new int[features.count()];
        for (int i = 0; i < classes.length; i++) {
            classes[i] = nearest(features.row(i));
        }
        return classes;
    }

    private int nearest(float[] features) {
        int best = -1;
        double bestDistance = Double.POSITIVE_INFINITY;
        for (int c = 0; c < centroids.length; c++) {
            double distance = 0;
            for (int d = 0; d < features.length; d++) {
                distance += (features[d] - centroids[c][d]) * (features[d] - centroids[c][d]);
            }
            if (distance < bestDistance) {
                bestDistance = distance;
                best = c;
            }
        }
        return best;
    }

    @Override
    public void close() {
        extractor.close();
    }
}
