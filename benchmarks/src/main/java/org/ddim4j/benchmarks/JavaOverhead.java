package org.ddim4j.benchmarks;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.ModelConfig;
import org.ddim4j.SampleOptions;
import org.ddim4j.TrainOptions;
import org.ddim4j.Trainer;
import org.ddim4j.ffi.ddim_config;
import org.ddim4j.ffi.ddim_h;
import org.ddim4j.ffi.ddim_sample_params;
import org.ddim4j.ffi.ddim_train_params;

/**
 * Java's overhead over the C ABI, measured in one process with the two interleaved: round after
 * round, the same work through the Java API ({@code Ddim.sample}, {@code Trainer.step}) and as the
 * native driver does it (one bare downcall per operation into preallocated native memory), in
 * alternating order (AB, BA, ...) so that drift of this machine's speed falls on both alike.
 *
 * <p>Separate processes minutes apart (JMH against {@code ddim_bench}) differ by more than the
 * overhead on this VM; paired rounds cancel that. Prints one JSON object per workload: the ratio
 * Java/native - 1 of every round, their median, and the throughput of both.
 *
 * <pre>java --enable-native-access=ALL-UNNAMED -cp benchmarks/target/benchmarks.jar \
 *     org.ddim4j.benchmarks.JavaOverhead [--rounds 8] [--seconds 5] [--threads N] [--only fashion-sample]</pre>
 */
public final class JavaOverhead {
    private static final int BATCH = 16;
    private static final int STEPS = 20;
    private static final long SEED = 1;

    private JavaOverhead() {
    }

    /** One way of doing one operation of a workload. */
    private interface Operation {
        void run();
    }

    public static void main(String[] args) throws Exception {
        int rounds = 8;
        double secondsPerRound = 5;
        int threads = Runtime.getRuntime().availableProcessors();
        String only = null;
        for (int i = 0; i < args.length; i += 2) {
            String value = args[i + 1];
            switch (args[i]) {
                case "--rounds" -> rounds = Integer.parseInt(value);
                case "--seconds" -> secondsPerRound = Double.parseDouble(value);
                case "--threads" -> threads = Integer.parseInt(value);
                case "--only" -> only = value;
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        System.setProperty("ddim4j.threads", Integer.toString(threads));
        Ddim.version(); // loads libddim and applies the thread count and malloc caching, as for every Java user
        ObjectMapper json = new ObjectMapper();
        for (String config : List.of("fashion", "reference")) {
            for (String mode : List.of("sample", "train")) {
                String name = config + "-" + mode;
                if (only != null && !only.equals(name)) {
                    continue;
                }
                Map<String, Object> result = measure(config, mode, rounds, secondsPerRound);
                result.put("threads", ddim_h.ddim_get_num_threads());
                System.out.println(json.writeValueAsString(result));
            }
        }
    }

    private static Map<String, Object> measure(String config, String mode, int rounds, double secondsPerRound) {
        ModelConfig modelConfig = config.equals("fashion") ? ModelConfig.builder().channels(1).imageSize(32).build() : ModelConfig.defaults();
        int floats = BATCH * modelConfig.pixelsPerImage();
        float[] pixels = new float[floats];
        for (int i = 0; i < floats; i++) {
            pixels[i] = (float) ((i * 2654435761L) % 1000) / 1000f; // the driver's training batch
        }
        try (Ddim ddim = Ddim.create(modelConfig, Device.cpu(), SEED);
             Arena arena = Arena.ofConfined()) {
            MemorySegment model = createNativeModel(arena, modelConfig);
            try {
                Operation java;
                Operation bare;
                if (mode.equals("sample")) {
                    SampleOptions options = SampleOptions.builder().count(BATCH).steps(STEPS).seed(SEED).build();
                    java = () -> ddim.sample(options);
                    bare = nativeSampling(arena, model, floats);
                } else {
                    Trainer trainer = ddim.trainer(TrainOptions.builder().build());
                    java = () -> trainer.step(pixels);
                    bare = nativeTraining(arena, model, pixels);
                }
                // Warm-up: two operations each, as the driver does.
                for (int i = 0; i < 2; i++) {
                    java.run();
                    bare.run();
                }
                List<Double> ratios = new ArrayList<>();
                double javaSeconds = 0;
                double nativeSeconds = 0;
                long javaOps = 0;
                long nativeOps = 0;
                for (int round = 0; round < rounds; round++) {
                    boolean javaFirst = round % 2 == 0;
                    double[] first = timeRound(javaFirst ? java : bare, secondsPerRound);
                    double[] second = timeRound(javaFirst ? bare : java, secondsPerRound);
                    double[] javaRound = javaFirst ? first : second;
                    double[] nativeRound = javaFirst ? second : first;
                    ratios.add((javaRound[0] / javaRound[1]) / (nativeRound[0] / nativeRound[1]) - 1);
                    javaSeconds += javaRound[0];
                    javaOps += (long) javaRound[1];
                    nativeSeconds += nativeRound[0];
                    nativeOps += (long) nativeRound[1];
                }
                Map<String, Object> result = new LinkedHashMap<>();
                result.put("tool", "interleaved");
                result.put("mode", mode);
                result.put("config", config);
                result.put("batch", BATCH);
                result.put("rounds", rounds);
                result.put("seconds_per_round", secondsPerRound);
                result.put("java_images_per_second", BATCH * javaOps / javaSeconds);
                result.put("native_images_per_second", BATCH * nativeOps / nativeSeconds);
                result.put("overhead_median", median(ratios));
                result.put("overhead_pooled", (javaSeconds / javaOps) / (nativeSeconds / nativeOps) - 1);
                result.put("overhead_rounds", ratios);
                return result;
            } finally {
                ddim_h.ddim_model_free(model);
            }
        }
    }

    /** Runs operations for at least {@code seconds} (and at least one); returns {seconds, operations}. */
    private static double[] timeRound(Operation operation, double seconds) {
        long start = System.nanoTime();
        long elapsed;
        int operations = 0;
        do {
            operation.run();
            operations++;
            elapsed = System.nanoTime() - start;
        } while (elapsed < seconds * 1e9);
        return new double[] {elapsed / 1e9, operations};
    }

    private static MemorySegment createNativeModel(Arena arena, ModelConfig modelConfig) {
        MemorySegment config = ddim_config.allocate(arena);
        ddim_h.ddim_config_init(config);
        ddim_config.channels(config, modelConfig.channels());
        ddim_config.image_size(config, modelConfig.imageSize());
        MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
        check(ddim_h.ddim_model_create(config, ddim_h.DDIM_DEVICE_CPU(), SEED, out), "ddim_model_create");
        return out.get(ValueLayout.ADDRESS, 0);
    }

    /** ddim_bench's sampling operation: one downcall writing into a preallocated buffer. */
    private static Operation nativeSampling(Arena arena, MemorySegment model, int floats) {
        MemorySegment params = ddim_sample_params.allocate(arena);
        ddim_h.ddim_sample_params_init(params);
        ddim_sample_params.count(params, BATCH);
        ddim_sample_params.steps(params, STEPS);
        ddim_sample_params.seed(params, SEED);
        MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, floats);
        return () -> check(ddim_h.ddim_sample(model, params, MemorySegment.NULL, 0, out, floats), "ddim_sample");
    }

    /** ddim_bench's training operation: one downcall on a batch already in native memory. */
    private static Operation nativeTraining(Arena arena, MemorySegment model, float[] pixels) {
        MemorySegment params = ddim_train_params.allocate(arena);
        ddim_h.ddim_train_params_init(params);
        check(ddim_h.ddim_train_begin(model, params), "ddim_train_begin");
        MemorySegment batch = arena.allocateFrom(ValueLayout.JAVA_FLOAT, pixels);
        MemorySegment loss = arena.allocate(ValueLayout.JAVA_FLOAT);
        return () -> check(ddim_h.ddim_train_step(model, batch, BATCH, pixels.length, loss), "ddim_train_step");
    }

    private static void check(int status, String what) {
        if (status != ddim_h.DDIM_OK()) {
            throw new IllegalStateException(what + " failed: " + ddim_h.ddim_status_name(status).getString(0) + ": "
                    + ddim_h.ddim_last_error().getString(0));
        }
    }

    private static double median(List<Double> values) {
        double[] sorted = values.stream().mapToDouble(Double::doubleValue).toArray();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
