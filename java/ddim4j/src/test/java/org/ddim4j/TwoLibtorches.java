package org.ddim4j;

import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

/**
 * ddim4j and DJL's PyTorch engine (libtorch 2.7.1) in one JVM, for TwoLibtorchesTest: each computes in
 * the order given, then each again, so both are used while the other is loaded.
 *
 *     TwoLibtorches djl-first|ddim4j-first MODEL PIXELS_OUT
 *
 * Prints DJL's results and the libtorch files mapped; writes ddim4j's 4 samples (20 steps, seed 42) as
 * float32 little-endian.
 */
public final class TwoLibtorches {
    private TwoLibtorches() {}

    public static void main(String[] args) throws IOException {
        System.setProperty("ai.djl.offline", "true");  // DJL takes its libtorch from the jar on the class path
        boolean djlFirst = args[0].equals("djl-first");
        Path model = Path.of(args[1]);
        Path pixels = Path.of(args[2]);
        for (int round = 0; round < 2; round++) {
            if (djlFirst) {
                djl();
                ddim4j(model, pixels);
            } else {
                ddim4j(model, pixels);
                djl();
            }
        }
        Files.readAllLines(Path.of("/proc/self/maps")).stream().map(line -> line.substring(line.lastIndexOf(' ') + 1))
                .filter(file -> file.contains("torch_cpu")).distinct().sorted().forEach(file -> System.out.println("mapped: " + file));
    }

    private static void djl() {
        try (NDManager manager = NDManager.newBaseManager(ai.djl.Device.cpu(), "PyTorch")) {
            NDArray a = manager.create(new float[] {1, 2, 3, 4}, new Shape(2, 2));
            System.out.println("djl " + Engine.getEngine("PyTorch").getVersion() + " matmul: " + Arrays.toString(a.dot(a).toFloatArray())
                    + " conv: " + Arrays.toString(ai.djl.nn.convolutional.Conv2d.conv2d(
                            a.reshape(1, 1, 2, 2), manager.ones(new Shape(1, 1, 2, 2))).singletonOrThrow().toFloatArray()));
        }
    }

    private static void ddim4j(Path model, Path out) throws IOException {
        try (Ddim ddim = Ddim.open(model)) {
            float[] pixels = ddim.sample(SampleOptions.builder().count(4).steps(20).seed(42).build()).pixels();
            try (DataOutputStream data = new DataOutputStream(Files.newOutputStream(out))) {
                for (float pixel : pixels) {
                    data.writeInt(Integer.reverseBytes(Float.floatToRawIntBits(pixel)));
                }
            }
            System.out.println("ddim4j " + Ddim.version() + " on libtorch " + Ddim.torchVersion() + ": " + pixels.length + " pixels");
        }
    }
}
