package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NativeLibraryTest {
    @TempDir
    Path dir;

    private static final byte[] LIBRARY = "not really an ELF file, but bytes to cache".getBytes();

    private static String sha256(byte[] bytes) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }

    private static List<Path> list(Path directory) throws IOException {
        try (Stream<Path> files = Files.list(directory)) {
            return files.toList();
        }
    }

    @Test
    void theCopyIsNamedByItsHashAndReusedUntilItNoLongerMatches() throws Exception {
        Path root = dir.resolve("cache/ddim4j");
        Path first = NativeLibrary.cachedCopy(LIBRARY, root);
        assertEquals(root.resolve(sha256(LIBRARY)).resolve("libddim.so"), first);
        assertArrayEquals(LIBRARY, Files.readAllBytes(first));
        Object inode = Files.readAttributes(first, "unix:ino").get("ino");

        Path second = NativeLibrary.cachedCopy(LIBRARY, root);
        assertEquals(first, second);
        assertEquals(inode, Files.readAttributes(second, "unix:ino").get("ino"), "reused, not rewritten");
        assertEquals(List.of(first), list(first.getParent()), "no temporary file left");
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(root)));

        Files.writeString(first, "tampered");
        Path repaired = NativeLibrary.cachedCopy(LIBRARY, root);
        assertArrayEquals(LIBRARY, Files.readAllBytes(repaired), "a copy that fails its hash is replaced");
    }

    @Test
    void anUnusableCacheFallsBackToTheNext() throws Exception {
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        Path shared = Files.createDirectories(dir.resolve("shared"));
        Files.setPosixFilePermissions(shared, PosixFilePermissions.fromString("rwxrwxrwx"));
        assertThrows(IOException.class, () -> NativeLibrary.cachedCopy(LIBRARY, file.resolve("ddim4j")), "under a regular file");
        assertThrows(IOException.class, () -> NativeLibrary.cachedCopy(LIBRARY, shared), "writable by others");

        Path fallback = dir.resolve("tmp/ddim4j-me");
        Path copy = NativeLibrary.cachedCopy(LIBRARY, List.of(file.resolve("ddim4j"), shared, fallback));
        assertTrue(copy.startsWith(fallback), copy.toString());
        UnsatisfiedLinkError error = assertThrows(UnsatisfiedLinkError.class,
                () -> NativeLibrary.cachedCopy(LIBRARY, List.of(file.resolve("ddim4j"))));
        assertTrue(error.getMessage().contains(file.resolve("ddim4j").toString()), error.getMessage());
    }

    /** Loads the library (the jar's libddim.so) in a fresh JVM with the given cache and temporary directories. */
    private static void runVersionCommand(Path cacheHome, Path tmp) throws Exception {
        String[] result = versionWith(List.of("-Djava.io.tmpdir=" + tmp), Map.of("XDG_CACHE_HOME", cacheHome.toString()));
        assertEquals("0", result[0], result[1]);
        assertTrue(result[1].contains("ddim4j"), result[1]);
    }

    @Test
    void consecutiveJvmsShareOneExtractedLibraryAndLeaveNoTemporaryFolder() throws Exception {
        Path cacheHome = dir.resolve("xdg-cache");
        Path tmp = Files.createDirectories(dir.resolve("tmp"));
        runVersionCommand(cacheHome, tmp);
        List<Path> extracted = list(cacheHome.resolve("ddim4j"));
        assertEquals(1, extracted.size(), extracted.toString());
        Path library = extracted.getFirst().resolve("libddim.so");
        assertEquals(sha256(Files.readAllBytes(library)), extracted.getFirst().getFileName().toString());
        Object inode = Files.readAttributes(library, "unix:ino").get("ino");

        runVersionCommand(cacheHome, tmp);
        assertEquals(extracted, list(cacheHome.resolve("ddim4j")));
        assertEquals(inode, Files.readAttributes(library, "unix:ino").get("ino"), "the second JVM loads the first one's copy");
        assertEquals(List.of(), list(tmp).stream().filter(file -> file.getFileName().toString().startsWith("ddim4j")).toList(),
                "no per-JVM folder in java.io.tmpdir");
    }

    /**
     * {@link PrintVersion} in a fresh JVM with extra JVM options and environment, on the class path (the library's
     * classes, its dependencies and these tests); returns its exit code and output.
     */
    private static String[] versionWith(List<String> jvmOptions, Map<String, String> environment) throws Exception {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED"));
        command.addAll(jvmOptions);
        String classPath = String.join(java.io.File.pathSeparator, System.getProperty("jdk.module.path", ""),
                System.getProperty("java.class.path"), Path.of(System.getProperty("basedir"), "target", "test-classes").toString());
        command.addAll(List.of("-cp", classPath, PrintVersion.class.getName()));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().remove(NativeLibrary.ENVIRONMENT);
        builder.environment().putAll(environment);
        Process process = builder.start();
        String output = new String(process.getInputStream().readAllBytes());
        assertTrue(process.waitFor(120, TimeUnit.SECONDS));
        return new String[] {Integer.toString(process.exitValue()), output};
    }

    @Test
    void anExplicitLibraryFromThePropertyOrTheEnvironmentIsUsedOrNamedWhenMissing() throws Exception {
        Path built = Path.of(System.getProperty("ddim4j.repo"), "build", "libddim.so");
        String[] byProperty = versionWith(List.of("-D" + NativeLibrary.PROPERTY + "=" + built), Map.of());
        assertEquals("0", byProperty[0], byProperty[1]);
        String[] byEnvironment = versionWith(List.of(), Map.of(NativeLibrary.ENVIRONMENT, built.toString()));
        assertEquals("0", byEnvironment[0], byEnvironment[1]);

        Path missing = Path.of("/nonexistent/libddim.so");
        for (String[] result : List.of(versionWith(List.of("-D" + NativeLibrary.PROPERTY + "=" + missing), Map.of()),
                versionWith(List.of(), Map.of(NativeLibrary.ENVIRONMENT, missing.toString())))) {
            assertEquals("1", result[0], result[1]);
            assertTrue(result[1].contains("libddim not found at " + missing), result[1]);
        }
    }

    @Test
    void aMissingLibtorchIsNamedWithTheVersionTheBundledLibraryNeeds() {
        String torch = NativeLibrary.bundledTorchVersion();
        assertTrue(torch != null && torch.startsWith("1.13"), "the jar records its libtorch: " + torch);
        String message = NativeLibrary.explain(new UnsatisfiedLinkError(
                "/home/u/.cache/ddim4j/abc/libddim.so: libtorch_cpu.so.1.13: cannot open shared object file: No such file or directory"));
        assertTrue(message.contains("libtorch " + torch), message);
        assertTrue(message.contains("apt-get install libtorch-dev") && message.contains("-D" + NativeLibrary.PROPERTY), message);
    }
}
