package org.ddim4j.benchmarks;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.Noise;

/**
 * Do the peers compute what ddim4j computes? On the check input of an export directory (noisy images,
 * their t, and the noise variances ddim4j derives from t; {@code benchmarks/python/export.py}), each
 * engine makes (a) one network evaluation, ddim4j through {@code Ddim.predict}, and (b) a 20-step
 * deterministic DDIM run from the same starting noise (the check's noisy images), ddim4j through
 * {@code Ddim.sample}, the peers through {@link Peers#sample}. Prints one JSON line per engine: the
 * largest and mean absolute difference from ddim4j's eager float32 network of the network's output (the predicted
 * noise; the image for target "image") and of the pixels.
 * Eager PyTorch's prediction (written by export.py) is compared too: it shows the inputs agree.
 *
 * <pre>java --enable-native-access=ALL-UNNAMED -cp 'benchmarks/target/benchmarks.jar:benchmarks/target/peer-libs/*' \
 *     org.ddim4j.benchmarks.PeerCheck --model EXPORT_DIR [--threads N] [--steps 20] [--engines ddim4j,ddim4j-bf16,ort,djl]</pre>
 *
 * Each engine runs in a child JVM of its own (libtorch 1.13 and DJL's 2.7.1 must not share a process).
 */
public final class PeerCheck {
    /** Compared with ddim4j's eager float32 network (what PyTorch computes), which always runs. */
    private static final List<String> ENGINES = List.of("ddim4j", "ddim4j-bf16", "ort", "djl");

    private PeerCheck() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = null;
        String child = null;
        Path out = null;
        int threads = Runtime.getRuntime().availableProcessors();
        int steps = 20;
        List<String> engines = ENGINES;
        for (int i = 0; i < args.length; i += 2) {
            String value = args[i + 1];
            switch (args[i]) {
                case "--model" -> dir = Path.of(value);
                case "--threads" -> threads = Integer.parseInt(value);
                case "--steps" -> steps = Integer.parseInt(value);
                case "--engines" -> engines = List.of(value.split(","));
                case "--child" -> child = value;
                case "--out" -> out = Path.of(value);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (dir == null) {
            throw new IllegalArgumentException("--model EXPORT_DIR is required");
        }
        Peers.Export export = Peers.Export.read(dir);
        if (child != null) {
            System.out.println(runChild(child, export, threads, steps, out));
        } else {
            compare(export, engines, threads, steps);
        }
    }

    /** Runs every engine in its own JVM and prints their differences from ddim4j float32. */
    private static void compare(Peers.Export export, List<String> engines, int threads, int steps) throws Exception {
        ObjectMapper json = new ObjectMapper();
        Path work = Files.createTempDirectory("ddim4j-peer-check");
        try {
            Map<String, String> versions = new LinkedHashMap<>();
            for (String engine : engines) {
                if (!ENGINES.contains(engine)) {
                    throw new IllegalArgumentException("unknown engine " + engine + "; known: " + ENGINES);
                }
            }
            spawn("ddim4j-eager", export, threads, steps, work.resolve("ddim4j-eager"));
            for (String engine : engines) {
                versions.put(engine, spawn(engine, export, threads, steps, work.resolve(engine)));
            }
            float[] output = Peers.readFloats(work.resolve("ddim4j-eager-output.f32"));
            float[] pixels = Peers.readFloats(work.resolve("ddim4j-eager-pixels.f32"));
            List<String> compared = new ArrayList<>(List.of("pytorch-eager"));
            compared.addAll(engines);
            for (String engine : compared) {
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("tool", "peer-check");
                row.put("model", export.dir().toString());
                row.put("engine", engine);
                row.put("against", "ddim4j-eager");
                row.put("threads", threads);
                row.put("output", export.predictsNoise() ? "noise" : "image");
                if (engine.equals("pytorch-eager")) {
                    row.put("version", "export.py (Python torch)");
                    differences(row, "output", output, Peers.readFloats(export.dir().resolve("check-pytorch-output.f32")));
                } else {
                    row.put("version", versions.get(engine));
                    differences(row, "output", output, Peers.readFloats(work.resolve(engine + "-output.f32")));
                    row.put("steps", steps);
                    differences(row, "pixels", pixels, Peers.readFloats(work.resolve(engine + "-pixels.f32")));
                }
                row.put("output_max_abs", maxAbs(output));
                System.out.println(json.writeValueAsString(row));
            }
        } finally {
            try (var files = Files.list(work)) {
                for (Path file : files.toList()) {
                    Files.delete(file);
                }
            }
            Files.delete(work);
        }
    }

    /** This class in a fresh JVM for one engine; returns the version line it prints. */
    private static String spawn(String engine, Peers.Export export, int threads, int steps, Path out)
            throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(ProcessHandle.current().info().command().orElse("java"));
        command.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments()); // this JVM's flags and -D settings
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), PeerCheck.class.getName(), "--child", engine,
                "--model", export.dir().toString(), "--threads", Integer.toString(threads), "--steps", Integer.toString(steps),
                "--out", out.toString()));
        Process process = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (process.waitFor() != 0) {
            throw new IllegalStateException("the " + engine + " check failed (exit " + process.exitValue() + ")");
        }
        return output;
    }

    /** One engine: writes OUT-output.f32 (one evaluation) and OUT-pixels.f32 (a sampling run); returns its version. */
    private static String runChild(String engine, Peers.Export export, int threads, int steps, Path out) throws IOException {
        Path dir = export.dir();
        float[] noisy = Peers.readFloats(dir.resolve("check-noisy.f32"));
        float[] t = Peers.readFloats(dir.resolve("check-t.f32"));
        float[] variances = Peers.readFloats(dir.resolve("check-variances.f32"));
        int batch = t.length;
        float[] output;
        float[] pixels;
        String version;
        if (engine.startsWith("ddim4j")) {
            System.setProperty("ddim4j.threads", Integer.toString(threads));
            version = "ddim4j " + Ddim.version() + ", libtorch " + Ddim.torchVersion();
            try (Ddim ddim = Ddim.open(export.modelFile(), Device.cpu())) {
                Ddim.Prediction prediction = ddim.predict(noisy, t, PeerSampling.ddim4jOptions(engine).build());
                output = export.predictsNoise() ? prediction.noise() : prediction.image();
                Noise start = new Noise(batch, export.channels(), export.imageSize(), export.imageSize(), noisy);
                pixels = ddim.sample(PeerSampling.ddim4jOptions(engine).count(batch).steps(steps).noise(start).build()).pixels();
            }
        } else {
            try (Peers.Network network = engine.equals("ort") ? new OrtNetwork(export, threads) : new DjlNetwork(export, threads)) {
                version = network.version();
                output = network.run(noisy, variances, batch);
                pixels = Peers.sample(network, export, noisy, batch, steps);
            }
        }
        Peers.writeFloats(Path.of(out + "-output.f32"), output);
        Peers.writeFloats(Path.of(out + "-pixels.f32"), pixels);
        return version;
    }

    private static void differences(Map<String, Object> row, String name, float[] expected, float[] actual) {
        Peers.Difference difference;
        try {
            difference = Peers.Difference.between(expected, actual);
        } catch (IllegalStateException e) {
            throw new IllegalStateException(name + ": " + e.getMessage(), e);
        }
        row.put(name + "_max_abs_diff", difference.max());
        row.put(name + "_mean_abs_diff", difference.mean());
    }

    private static double maxAbs(float[] values) {
        double max = 0;
        for (float value : values) {
            max = Math.max(max, Math.abs(value));
        }
        return max;
    }
}
