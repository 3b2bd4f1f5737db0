package org.ddim4j;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A fresh JVM on this test run's class path (the library's classes, its dependencies, the tests), with the
 * natives jar added or not: how the tests see the library load as a user's JVM would.
 */
final class ChildJvm {
    /** The natives jar the build made (java/ddim4j-natives), passed in by surefire. */
    static final Path NATIVES_JAR = Path.of(System.getProperty("ddim4j.nativesJar", "missing-natives.jar"));
    static final Path REPO = Path.of(System.getProperty("ddim4j.repo", "."));
    static final Path SHIPPED_MODEL = REPO.resolve("models/fashion-mnist-32.safetensors");

    private final List<String> command = new ArrayList<>();
    private final ProcessBuilder builder = new ProcessBuilder().redirectErrorStream(true);

    /** Exit code and everything the child printed. */
    record Result(int exitCode, String output) {}

    private ChildJvm(List<String> prefix, boolean withNatives, List<String> jvmOptions) {
        command.addAll(prefix);
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("--enable-native-access=ALL-UNNAMED");
        command.addAll(jvmOptions);
        List<String> classPath = new ArrayList<>(List.of(Path.of(System.getProperty("basedir", "."), "target", "test-classes").toString()));
        for (String entries : List.of(System.getProperty("jdk.module.path", ""), System.getProperty("java.class.path", ""))) {
            for (String entry : entries.split(File.pathSeparator)) {
                if (!entry.isBlank()) {
                    classPath.add(entry);
                }
            }
        }
        if (withNatives) {
            classPath.add(NATIVES_JAR.toString());
        }
        command.addAll(List.of("-cp", String.join(File.pathSeparator, classPath)));
        builder.environment().remove(NativeLibrary.ENVIRONMENT);
        builder.environment().remove("XDG_CACHE_HOME");
    }

    /** A child JVM with the natives jar on its class path. */
    static ChildJvm withNatives(String... jvmOptions) {
        return new ChildJvm(List.of(), true, List.of(jvmOptions));
    }

    /** A child JVM without the natives jar (it loads the build directory's libddim, or what -Dddim4j.library names). */
    static ChildJvm withoutNatives(String... jvmOptions) {
        return new ChildJvm(List.of(), false, List.of(jvmOptions));
    }

    /** A child JVM started through another command (e.g. prlimit), without the natives jar. */
    static ChildJvm withoutNativesUnder(List<String> prefix, String... jvmOptions) {
        return new ChildJvm(prefix, false, List.of(jvmOptions));
    }

    /** A child JVM started through another command (e.g. unshare), with the natives jar. */
    static ChildJvm withNativesUnder(List<String> prefix, String... jvmOptions) {
        return new ChildJvm(prefix, true, List.of(jvmOptions));
    }

    ChildJvm environment(String name, String value) {
        builder.environment().put(name, value);
        return this;
    }

    ChildJvm directory(Path directory) {
        builder.directory(directory.toFile());
        return this;
    }

    Process start(String mainClassOrSourceFile, String... arguments) throws IOException {
        List<String> full = new ArrayList<>(command);
        full.add(mainClassOrSourceFile);
        full.addAll(List.of(arguments));
        return builder.command(full).start();
    }

    static Result finish(Process process) throws IOException, InterruptedException {
        String output = new String(process.getInputStream().readAllBytes());
        if (!process.waitFor(120, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("the child JVM did not finish in 120 s:\n" + output);
        }
        return new Result(process.exitValue(), output);
    }

    Result run(String mainClassOrSourceFile, String... arguments) throws IOException, InterruptedException {
        return finish(start(mainClassOrSourceFile, arguments));
    }

    /** The float32 little-endian pixels a probe wrote. */
    static float[] readFloats(Path file) throws IOException {
        java.nio.ByteBuffer bytes = java.nio.ByteBuffer.wrap(Files.readAllBytes(file)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        float[] values = new float[bytes.remaining() / 4];
        bytes.asFloatBuffer().get(values);
        return values;
    }

    static double maxAbsDifference(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new AssertionError("different sizes: " + a.length + " and " + b.length);
        }
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs((double) a[i] - b[i]));
        }
        return max;
    }
}
