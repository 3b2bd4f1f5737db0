package org.ddim4j.benchmarks;

import java.nio.file.Path;
import java.util.Locale;

import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.ImageBatch;
import org.ddim4j.Network;
import org.ddim4j.Noise;
import org.ddim4j.Precision;
import org.ddim4j.SampleOptions;
import org.ddim4j.Sampler;
import org.ddim4j.data.Dataset;
import org.ddim4j.data.IdxImages;

/**
 * Accuracy, not speed: how close each sampler gets to a 200-step DDIM reference from the same noise
 * at 5, 10 and 20 steps, the error of a bfloat16 network and of the fused float32 network against the
 * eager float32 one, and the DDIM inversion round-trip error by steps, on a trained model.
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.SamplerAccuracy [MODEL] [IMAGES]
 * </pre>
 *
 * MODEL defaults to models/fashion-mnist-32.safetensors; IMAGES (an IDX file for the inversion) to
 * Fashion-MNIST's test split. Prints mean absolute pixel differences (pixels in [0, 1]).
 */
public final class SamplerAccuracy {
    private static final int COUNT = 16;
    private static final long SEED = 7;

    private SamplerAccuracy() {}

    public static void main(String[] args) {
        Path model = Path.of(args.length > 0 ? args[0] : "models/fashion-mnist-32.safetensors");
        Path images = Path.of(args.length > 1 ? args[1] : "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
        Ddim.setThreads(0);
        try (Ddim ddim = Ddim.open(model, Device.cpu())) {
            SampleOptions.Builder base = SampleOptions.builder().count(COUNT).seed(SEED);
            ImageBatch reference = ddim.sample(base.steps(200).sampler(Sampler.DDIM).build());
            System.out.printf(Locale.ROOT, "Mean absolute pixel difference to 200-step DDIM, %d images, seed %d, %s%n", COUNT, SEED, model);
            System.out.printf(Locale.ROOT, "%-18s %8s %8s %8s%n", "sampler", "5", "10", "20");
            for (Sampler sampler : Sampler.values()) {
                StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "%-18s", sampler));
                for (int steps : new int[] {5, 10, 20}) {
                    double error = ddim.sample(base.steps(steps).sampler(sampler).build()).meanAbsoluteDifference(reference);
                    row.append(String.format(Locale.ROOT, " %8.4f", error));
                }
                System.out.println(row);
            }

            System.out.printf(Locale.ROOT, "%nbfloat16 network against float32, same noise, 20-step DDIM, %d images%n", COUNT);
            float[] exact = ddim.sample(base.steps(20).sampler(Sampler.DDIM).network(Network.EAGER).build()).pixels();
            float[] reduced = ddim.sample(base.steps(20).sampler(Sampler.DDIM).precision(Precision.BFLOAT16).build()).pixels();
            printDifference(exact, reduced);

            System.out.printf(Locale.ROOT, "%nfused network (the default) against eager, float32, same noise, 20-step DDIM, %d images%n", COUNT);
            float[] fused = ddim.sample(base.steps(20).sampler(Sampler.DDIM).precision(Precision.FLOAT32).network(Network.AUTO).build()).pixels();
            printDifference(exact, fused);

            Dataset test = IdxImages.load(images, ddim.config().channels(), ddim.config().imageSize(), COUNT);
            ImageBatch originals = new ImageBatch(COUNT, ddim.config().channels(), ddim.config().imageSize(), ddim.config().imageSize(),
                    test.range(0, COUNT));
            System.out.printf(Locale.ROOT, "%nDDIM inversion round trip (invert, then sample from the noise), %d images of %s%n", COUNT, images);
            System.out.printf(Locale.ROOT, "%-6s %10s%n", "steps", "error");
            for (int steps : new int[] {5, 10, 20, 50, 100}) {
                Noise noise = ddim.invert(originals, steps);
                double error = ddim.sample(SampleOptions.builder().steps(steps).noise(noise).build()).meanAbsoluteDifference(originals);
                System.out.printf(Locale.ROOT, "%-6d %10.4f%n", steps, error);
            }
        }
    }

    private static void printDifference(float[] expected, float[] actual) {
        Peers.Difference difference = Peers.Difference.between(expected, actual);
        System.out.printf(Locale.ROOT, "mean %.3g, max %.3g (pixels in [0, 1])%n", difference.mean(), difference.max());
    }
}
