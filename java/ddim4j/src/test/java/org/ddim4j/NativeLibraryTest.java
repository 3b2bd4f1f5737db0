package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NativeLibraryTest {
    @TempDir
    Path dir;

    @Test
    void theBuildDirectoryIsFoundFromTheCompiledClasses() {
        Path built = NativeLibrary.buildDirectoryLibrary();
        assertEquals(Path.of(System.getProperty("ddim4j.repo"), "build", "libddim.so").toAbsolutePath().normalize(), built);
    }

    @Test
    void onlyTheChosenCacheDirectoryIsUsedWhenThePropertyIsSet() {
        String before = System.getProperty(NativeLibrary.CACHE_DIR);
        try {
            System.setProperty(NativeLibrary.CACHE_DIR, dir.toString());
            assertEquals(List.of(dir), NativeLibrary.cacheRoots());
            System.clearProperty(NativeLibrary.CACHE_DIR);
            List<Path> roots = NativeLibrary.cacheRoots();
            assertEquals(2, roots.size(), roots.toString());
            assertTrue(roots.get(1).startsWith(System.getProperty("java.io.tmpdir")), roots.toString());
        } finally {
            if (before != null) {
                System.setProperty(NativeLibrary.CACHE_DIR, before);
            }
        }
    }

    /**
     * {@link PrintVersion} in a fresh JVM with extra JVM options and environment, on the class path (the library's
     * classes, its dependencies and these tests); returns its exit code and output.
     */
    private static String[] versionWith(List<String> jvmOptions, Map<String, String> environment) throws Exception {
        ChildJvm child = ChildJvm.withoutNatives(jvmOptions.toArray(String[]::new));
        environment.forEach(child::environment);
        ChildJvm.Result result = child.run(PrintVersion.class.getName());
        return new String[] {Integer.toString(result.exitCode()), result.output()};
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
    void aMissingLibtorchOrLibraryPointsAtTheNativesJar() {
        String message = NativeLibrary.explain(new UnsatisfiedLinkError(
                "/work/build/libddim.so: libtorch_cpu.so.1.13: cannot open shared object file: No such file or directory"));
        assertTrue(message.contains("org.ddim4j:ddim4j-natives:linux-x86_64") && message.contains("-D" + NativeLibrary.PROPERTY), message);
        message = NativeLibrary.explain(new UnsatisfiedLinkError("no ddim in java.library.path: /usr/lib"));
        assertTrue(message.contains("org.ddim4j:ddim4j-natives:linux-x86_64") && message.contains("scripts/setup.sh"), message);
    }

    @Test
    void onAnotherPlatformTheNativesJarIsNotUsedAndTheErrorSaysSo() {
        assertTrue(NativeLibrary.isNativesPlatform(), "the tests run on Linux x86-64");
        String arch = System.getProperty("os.arch");
        try {
            System.setProperty("os.arch", "aarch64");
            assertFalse(NativeLibrary.isNativesPlatform());
            String message = NativeLibrary.explain(new UnsatisfiedLinkError("no ddim in java.library.path: /usr/lib"));
            assertTrue(message.contains("Linux x86-64 only") && message.contains("aarch64") && message.contains("-D" + NativeLibrary.PROPERTY),
                    message);
        } finally {
            System.setProperty("os.arch", arch);
        }
    }
}
