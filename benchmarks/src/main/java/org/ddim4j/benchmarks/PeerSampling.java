package org.ddim4j.benchmarks;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.Network;
import org.ddim4j.Precision;
import org.ddim4j.SampleOptions;

/**
 * ddim4j against its Java peers on the same work: full deterministic DDIM sampling runs (batch 16,
 * 20 network evaluations), timed the same way for every engine. ddim4j samples through
 * {@code Ddim.sample} (defaults; ddim4j-eager: {@code Network.EAGER}; ddim4j-bf16: {@code Precision.BFLOAT16}); ONNX Runtime and DJL evaluate the exported network and do the DDIM update in
 * plain Java arrays with ddim4j's schedule ({@link Peers#sample}). One engine per JVM (DJL's
 * libtorch 2.7.1 and ddim4j's 1.13 must not share a process); {@code benchmarks/peers.sh} interleaves them.
 *
 * <pre>java --enable-native-access=ALL-UNNAMED -cp 'benchmarks/target/benchmarks.jar:benchmarks/target/peer-libs/*' \
 *     org.ddim4j.benchmarks.PeerSampling --engine ddim4j|ddim4j-eager|ddim4j-bf16|ort|djl --model EXPORT_DIR \
 *     [--threads 2] [--batch 16] [--steps 20] [--seconds 20] [--warmup 2] [--runs 3]</pre>
 *
 * EXPORT_DIR is what {@code benchmarks/python/export.py} writes (ddim4j reads its model.safetensors).
 * Warms up, then times runs for at least {@code --seconds} and {@code --runs} runs; prints one JSON line.
 */
public final class PeerSampling {
    private static final long SEED = 1;

    private PeerSampling() {
    }

    public static void main(String[] args) throws Exception {
        String engine = null;
        Path dir = null;
        int threads = Runtime.getRuntime().availableProcessors();
        int batch = 16;
        int steps = 20;
        double seconds = 20;
        int warmup = 2;
        int runs = 3;
        for (int i = 0; i < args.length; i += 2) {
            String value = args[i + 1];
            switch (args[i]) {
                case "--engine" -> engine = value;
                case "--model" -> dir = Path.of(value);
                case "--threads" -> threads = Integer.parseInt(value);
                case "--batch" -> batch = Integer.parseInt(value);
                case "--steps" -> steps = Integer.parseInt(value);
                case "--seconds" -> seconds = Double.parseDouble(value);
                case "--warmup" -> warmup = Integer.parseInt(value);
                case "--runs" -> runs = Integer.parseInt(value);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (engine == null || dir == null) {
            throw new IllegalArgumentException("--engine ddim4j|ddim4j-eager|ddim4j-bf16|ort|djl and --model EXPORT_DIR are required");
        }
        Peers.Export export = Peers.Export.read(dir);
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("tool", "peers");
        result.put("engine", engine);
        Timing timing = new Timing(seconds, warmup, runs);
        List<Double> ms = switch (engine) {
            case "ddim4j", "ddim4j-eager", "ddim4j-bf16" -> timeDdim4j(export, engine, threads, batch, steps, timing, result);
            case "ort" -> timePeer(new OrtNetwork(export, threads), export, batch, steps, timing, result);
            case "djl" -> timePeer(new DjlNetwork(export, threads), export, batch, steps, timing, result);
            default -> throw new IllegalArgumentException("unknown engine " + engine);
        };
        List<Double> sorted = new ArrayList<>(ms);
        sorted.sort(null);
        int n = sorted.size();
        double total = ms.stream().mapToDouble(Double::doubleValue).sum();
        result.put("threads", threads);
        result.put("batch", batch);
        result.put("steps", steps);
        result.put("model", dir.toString());
        result.put("ms_median", n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2);
        result.put("ms_min", sorted.get(0));
        result.put("ms_all", ms);
        result.put("images_per_second", batch * n / (total / 1000));
        System.out.println(new ObjectMapper().writeValueAsString(result));
    }

    /**
     * The options of a ddim4j engine: ddim4j (the defaults: Network.AUTO, the fused network in float32
     * on the CPU), ddim4j-eager (Network.EAGER), ddim4j-bf16 (Precision.BFLOAT16 with the default
     * network: the fused bfloat16 plan where the CPU has AVX512-BF16, float32 elsewhere).
     */
    static SampleOptions.Builder ddim4jOptions(String engine) {
        SampleOptions.Builder options = SampleOptions.builder();
        return switch (engine) {
            case "ddim4j" -> options;
            case "ddim4j-eager" -> options.network(Network.EAGER);
            case "ddim4j-bf16" -> options.precision(Precision.BFLOAT16);
            default -> throw new IllegalArgumentException("unknown ddim4j engine " + engine);
        };
    }

    private static List<Double> timeDdim4j(Peers.Export export, String engine, int threads, int batch, int steps, Timing timing,
                                           Map<String, Object> result) {
        System.setProperty("ddim4j.threads", Integer.toString(threads));
        result.put("version", "ddim4j " + Ddim.version() + ", libtorch " + Ddim.torchVersion() + ", threads " + Ddim.threads());
        // The network sees the whole batch, as the peers' networks do (the default micro-batch is 16).
        SampleOptions options = ddim4jOptions(engine).count(batch).microBatch(batch).steps(steps).seed(SEED).build();
        try (Ddim ddim = Ddim.open(export.modelFile(), Device.cpu())) {
            return timing.time(() -> ddim.sample(options));
        }
    }

    private static List<Double> timePeer(Peers.Network network, Peers.Export export, int batch, int steps, Timing timing,
                                         Map<String, Object> result) {
        try (network) {
            result.put("version", network.version());
            long[] run = {0};
            // Fresh noise per run, drawn inside the timing as ddim4j draws its own.
            return timing.time(() -> Peers.sample(network, export, Peers.gaussian(SEED + run[0]++, batch * export.floatsPerImage()), batch, steps));
        }
    }

    /** How runs are timed: {@code warmup} untimed runs, then at least {@code runs} runs and {@code seconds} in all. */
    private record Timing(double seconds, int warmup, int runs) {
        /** Milliseconds of each timed run. */
        List<Double> time(Runnable run) {
            for (int i = 0; i < warmup; i++) {
                run.run();
            }
            List<Double> ms = new ArrayList<>();
            double total = 0;
            while (ms.size() < runs || total < seconds * 1000) {
                long start = System.nanoTime();
                run.run();
                double elapsed = (System.nanoTime() - start) / 1e6;
                ms.add(elapsed);
                total += elapsed;
            }
            return ms;
        }
    }
}
