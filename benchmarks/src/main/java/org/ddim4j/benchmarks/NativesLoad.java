package org.ddim4j.benchmarks;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.ddim4j.Ddim;

/**
 * What the natives jar costs at start-up: the first use of the library in a fresh JVM, by where libddim comes
 * from, in interleaved rounds (each round: cold, warm, source build):
 * <ul>
 * <li><b>cold</b>: the natives jar with an empty cache, so it is extracted (~560 MB written, every file hashed);
 * <li><b>warm</b>: the natives jar again, on the cache the cold run filled (every file checked against its hash);
 * <li><b>source build</b>: {@code -Dddim4j.library=build/libddim.so} on Debian's libtorch, nothing extracted:
 *     what loading libtorch itself costs.
 * </ul>
 * Each child JVM is {@code java -cp benchmarks.jar:NATIVES_JAR} (the benchmarks jar carries the library, not the
 * natives) and times {@code Ddim.version()}, the first call; the parent also times the whole JVM. Prints one
 * JSON object with every round and the medians.
 *
 * <pre>java -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.NativesLoad \
 *     --natives-jar java/ddim4j-natives/target/ddim4j-natives-0.1.0-linux-x86_64.jar [--rounds 5] [--library build/libddim.so]</pre>
 */
public final class NativesLoad {
    private static final String CHILD = "--child";

    private NativesLoad() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 1 && args[0].equals(CHILD)) {
            long start = System.nanoTime();
            String version = Ddim.version();
            System.out.println("first-use-ms " + (System.nanoTime() - start) / 1e6 + " " + version);
            return;
        }
        Path nativesJar = null;
        Path library = Path.of("build/libddim.so");
        int rounds = 5;
        for (int i = 0; i < args.length; i += 2) {
            switch (args[i]) {
                case "--natives-jar" -> nativesJar = Path.of(args[i + 1]);
                case "--library" -> library = Path.of(args[i + 1]);
                case "--rounds" -> rounds = Integer.parseInt(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (nativesJar == null || !Files.isRegularFile(nativesJar)) {
            throw new IllegalArgumentException("--natives-jar JAR is required (java/ddim4j-natives/target/...)");
        }
        Path self = Path.of(NativesLoad.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        Path work = Files.createTempDirectory("ddim4j-natives-load");
        Map<String, List<double[]>> sides = new LinkedHashMap<>();
        try {
            for (int round = 0; round < rounds; round++) {
                Path cache = work.resolve("cache-" + round);
                sides.computeIfAbsent("cold", k -> new ArrayList<>()).add(child(self, nativesJar, cache, null));
                sides.computeIfAbsent("warm", k -> new ArrayList<>()).add(child(self, nativesJar, cache, null));
                sides.computeIfAbsent("source build", k -> new ArrayList<>()).add(child(self, nativesJar, cache, library.toAbsolutePath()));
                deleteRecursively(cache);
            }
        } finally {
            deleteRecursively(work);
        }
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("benchmark", "natives-load");
        result.put("cpu", cpu());
        result.put("natives_jar_bytes", Files.size(nativesJar));
        sides.forEach((side, runs) -> {
            Map<String, Object> summary = new LinkedHashMap<>();
            summary.put("first_use_ms", runs.stream().map(run -> run[0]).toList());
            summary.put("jvm_ms", runs.stream().map(run -> run[1]).toList());
            summary.put("median_first_use_ms", median(runs, 0));
            summary.put("median_jvm_ms", median(runs, 1));
            result.put(side, summary);
        });
        System.out.println(new ObjectMapper().writeValueAsString(result));
    }

    /** One child JVM: {first use of the library, whole JVM} in milliseconds. */
    private static double[] child(Path self, Path nativesJar, Path cache, Path library) throws Exception {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED"));
        if (library != null) {
            command.add("-Dddim4j.library=" + library);
        }
        command.addAll(List.of("-cp", self + File.pathSeparator + nativesJar, NativesLoad.class.getName(), CHILD));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().put("XDG_CACHE_HOME", cache.toString());
        builder.environment().remove("DDIM4J_LIBRARY");
        long start = System.nanoTime();
        Process process = builder.start();
        String output = new String(process.getInputStream().readAllBytes());
        if (!process.waitFor(300, TimeUnit.SECONDS) || process.exitValue() != 0) {
            throw new IllegalStateException("the child JVM failed:\n" + output);
        }
        double jvm = (System.nanoTime() - start) / 1e6;
        String line = output.lines().filter(l -> l.startsWith("first-use-ms ")).findFirst()
                .orElseThrow(() -> new IllegalStateException("no timing from the child:\n" + output));
        return new double[] {Double.parseDouble(line.split(" ")[1]), jvm};
    }

    /** The CPU's model name and its widest vector ISA, from /proc/cpuinfo. */
    private static String cpu() throws java.io.IOException {
        List<String> info = Files.readAllLines(Path.of("/proc/cpuinfo"));
        String model = info.stream().filter(line -> line.startsWith("model name")).map(line -> line.substring(line.indexOf(':') + 1).strip())
                .findFirst().orElse("unknown");
        String flags = " " + info.stream().filter(line -> line.startsWith("flags")).findFirst().orElse("") + " ";
        String isa = flags.contains(" avx512_bf16 ") ? "AVX-512 + AVX512-BF16" : flags.contains(" avx512f ") ? "AVX-512"
                : flags.contains(" avx2 ") ? "AVX2" : "no AVX2";
        return model + ", " + isa + ", " + Runtime.getRuntime().availableProcessors() + " cores";
    }

    private static double median(List<double[]> runs, int field) {
        double[] values = runs.stream().mapToDouble(run -> run[field]).sorted().toArray();
        return values.length % 2 == 1 ? values[values.length / 2] : (values[values.length / 2 - 1] + values[values.length / 2]) / 2;
    }

    private static void deleteRecursively(Path path) throws java.io.IOException {
        if (!Files.exists(path)) {
            return;
        }
        try (Stream<Path> files = Files.walk(path)) {
            for (Path file : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(file);
            }
        }
    }
}
