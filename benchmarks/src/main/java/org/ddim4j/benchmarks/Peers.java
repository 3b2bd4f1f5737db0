package org.ddim4j.benchmarks;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * What the Java peers (ONNX Runtime, DJL) share with the benchmarks that drive them: the directory
 * {@code benchmarks/python/export.py} writes, a network behind one interface, and ddim4j's
 * deterministic DDIM loop in plain Java arrays. Nothing here loads libddim: the DJL JVM must not hold
 * Debian's libtorch 1.13 next to DJL's 2.7.1.
 */
final class Peers {
    private Peers() {
    }

    /** One network evaluation: the raw output (the predicted noise for target "noise") for noisy images at their noise variances. */
    interface Network extends AutoCloseable {
        float[] run(float[] noisy, float[] variances, int batch);

        /** The engine and its version, for the results. */
        String version();

        @Override
        void close();
    }

    /** An export directory: the model's shape, schedule and normaliser (ddim4j.json) and its files. */
    record Export(Path dir, int channels, int imageSize, boolean predictsNoise, double minSignal, double maxSignal,
                  float[] mean, float[] std) {
        static Export read(Path dir) {
            try {
                JsonNode meta = new ObjectMapper().readTree(dir.resolve("ddim4j.json").toFile());
                JsonNode config = meta.get("config");
                JsonNode schedule = config.get("schedule");
                if (!schedule.get("kind").asText().equals("cosine")) {
                    throw new IllegalArgumentException("the peers' DDIM loop implements the cosine schedule only, " + dir + " has "
                            + schedule.get("kind"));
                }
                return new Export(dir, config.get("channels").asInt(), config.get("image_size").asInt(),
                        config.get("target").asText().equals("noise"), schedule.get("min_signal").asDouble(),
                        schedule.get("max_signal").asDouble(), floats(meta.get("normalizer").get("mean")),
                        floats(meta.get("normalizer").get("std")));
            } catch (IOException e) {
                throw new IllegalArgumentException("not an export directory of benchmarks/python/export.py: " + dir, e);
            }
        }

        int floatsPerImage() {
            return channels * imageSize * imageSize;
        }

        Path modelFile() {
            return dir.resolve("model.safetensors");
        }

        private static float[] floats(JsonNode array) {
            float[] values = new float[array.size()];
            for (int i = 0; i < values.length; i++) {
                values[i] = (float) array.get(i).asDouble();
            }
            return values;
        }
    }

    /**
     * The cosine schedule's {signal, noise} rates at ddim4j's sampling times t_k = 1 - k / steps, in
     * float32 operation by operation as the core computes them (angle = start + t (end - start)), so
     * that the network sees the same noise variances as ddim4j's (its embedding reaches 2 pi 1000 v).
     */
    static float[][] rates(Export export, int steps) {
        float start = (float) Math.acos(export.maxSignal());
        float range = (float) (Math.acos(export.minSignal()) - Math.acos(export.maxSignal()));
        float[][] rates = new float[2][steps + 1];
        for (int k = 0; k <= steps; k++) {
            float t = (float) (1.0 - (double) k / steps);
            float angle = start + t * range;
            rates[0][k] = (float) Math.cos(angle);
            rates[1][k] = (float) Math.sin(angle);
        }
        return rates;
    }

    /**
     * ddim4j's deterministic DDIM (eta 0) from {@code noise}: per step one network evaluation on the
     * whole batch, x_0 = (x - n eps) / s, x = s' x_0 + n' eps; returns the last x_0 de-normalised and
     * clamped to [0, 1], as {@code Ddim.sample} does.
     */
    static float[] sample(Network network, Export export, float[] noise, int batch, int steps) {
        float[][] rates = rates(export, steps);
        float[] x = noise.clone();
        float[] image = new float[x.length];
        float[] variances = new float[batch];
        for (int k = 0; k < steps; k++) {
            float signal = rates[0][k];
            float noiseRate = rates[1][k];
            float nextSignal = rates[0][k + 1];
            float nextNoise = rates[1][k + 1];
            java.util.Arrays.fill(variances, noiseRate * noiseRate);
            float[] output = network.run(x, variances, batch);
            for (int i = 0; i < x.length; i++) {
                float eps;
                if (export.predictsNoise()) {
                    eps = output[i];
                    image[i] = (x[i] - noiseRate * eps) / signal;
                } else {
                    image[i] = output[i];
                    eps = (x[i] - signal * image[i]) / noiseRate;
                }
                x[i] = nextSignal * image[i] + nextNoise * eps;
            }
        }
        int pixels = export.imageSize() * export.imageSize();
        for (int i = 0; i < image.length; i++) {
            int channel = (i / pixels) % export.channels();
            image[i] = Math.clamp(image[i] * export.std()[channel] + export.mean()[channel], 0f, 1f);
        }
        return image;
    }

    /** How far {@code actual} lies from {@code expected}, element by element: mean and largest absolute difference. */
    record Difference(double mean, double max) {
        static Difference between(float[] expected, float[] actual) {
            if (expected.length != actual.length) {
                throw new IllegalStateException(actual.length + " values, expected " + expected.length);
            }
            double max = 0;
            double sum = 0;
            for (int i = 0; i < expected.length; i++) {
                double difference = Math.abs((double) expected[i] - actual[i]);
                max = Math.max(max, difference);
                sum += difference;
            }
            return new Difference(sum / expected.length, max);
        }
    }

    /** Starting noise for a run: standard normal, from {@code seed}. */
    static float[] gaussian(long seed, int count) {
        Random random = new Random(seed);
        float[] values = new float[count];
        for (int i = 0; i < count; i++) {
            values[i] = (float) random.nextGaussian();
        }
        return values;
    }

    /** A raw little-endian float32 file (export.py's check-*.f32). */
    static float[] readFloats(Path path) throws IOException {
        ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
        float[] values = new float[bytes.remaining() / Float.BYTES];
        bytes.asFloatBuffer().get(values);
        return values;
    }

    static void writeFloats(Path path, float[] values) throws IOException {
        ByteBuffer bytes = ByteBuffer.allocate(values.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(values);
        Files.write(path, bytes.array());
    }
}
