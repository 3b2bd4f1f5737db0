package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.sun.security.auth.module.UnixSystem;

/**
 * The natives jar as users get it, in child JVMs: found on the class path, extracted into an empty cache by two
 * JVMs at once, repaired when damaged, computing what the source build computes, and a clear error where the
 * cache cannot be written or executed. (scripts/natives-check.sh runs it on bare systems; TwoLibtorchesTest next
 * to DJL; scripts/consumer-check.sh on the module path.)
 */
class NativesJarTest {
    private static final Path PROBE = ChildJvm.REPO.resolve("scripts/natives/NativesProbe.java");
    private static final Path SOURCE_BUILD = ChildJvm.REPO.resolve("build/libddim.so");

    @TempDir
    Path dir;

    @BeforeAll
    static void theBuildMadeTheNativesJar() {
        assertTrue(Files.isRegularFile(ChildJvm.NATIVES_JAR), "no natives jar at " + ChildJvm.NATIVES_JAR + " (mvn package builds it)");
    }

    private static List<Path> list(Path directory) throws IOException {
        try (Stream<Path> files = Files.list(directory)) {
            return files.sorted().toList();
        }
    }

    @Test
    void twoJvmsStartingOnAnEmptyCacheBothLoadTheNativesAndComputeWhatTheSourceBuildComputes() throws Exception {
        Path cache = dir.resolve("xdg-cache");
        // One thread each, as the source-build run below: the thread count decides libtorch's rounding.
        Process first = ChildJvm.withNatives("-Dddim4j.threads=1").environment("XDG_CACHE_HOME", cache.toString())
                .start(PROBE.toString(), ChildJvm.SHIPPED_MODEL.toString(), dir.resolve("first").toString());
        Process second = ChildJvm.withNatives("-Dddim4j.threads=1").environment("XDG_CACHE_HOME", cache.toString())
                .start(PROBE.toString(), ChildJvm.SHIPPED_MODEL.toString(), dir.resolve("second").toString());
        ChildJvm.Result firstResult = ChildJvm.finish(first);
        ChildJvm.Result secondResult = ChildJvm.finish(second);
        assertEquals(0, firstResult.exitCode(), firstResult.output());
        assertEquals(0, secondResult.exitCode(), secondResult.output());

        List<Path> entries = list(cache.resolve("ddim4j"));
        assertEquals(1, entries.size(), "one extracted copy, no temporary directory left: " + entries);
        for (String run : List.of("first", "second")) {
            List<String> mapped = Files.readAllLines(dir.resolve(run).resolve("libraries.txt"));
            assertTrue(mapped.contains(entries.getFirst().resolve("libddim.so").toString()), mapped.toString());
            assertTrue(mapped.stream().allMatch(file -> file.startsWith(entries.getFirst().toString())),
                    "nothing from a system libtorch: " + mapped);
        }

        ChildJvm.Result source = ChildJvm.withoutNatives("-Dddim4j.threads=1", "-D" + NativeLibrary.PROPERTY + "=" + SOURCE_BUILD)
                .run(PROBE.toString(), ChildJvm.SHIPPED_MODEL.toString(), dir.resolve("source").toString());
        assertEquals(0, source.exitCode(), source.output());
        assertTrue(Files.readAllLines(dir.resolve("source/libraries.txt")).contains(SOURCE_BUILD.toString()));

        float[] expected = ChildJvm.readFloats(dir.resolve("source/samples.f32"));
        assertEquals(16 * 32 * 32, expected.length);
        for (String run : List.of("first", "second")) {
            double difference = ChildJvm.maxAbsDifference(expected, ChildJvm.readFloats(dir.resolve(run).resolve("samples.f32")));
            assertTrue(difference <= 1e-4, run + ": samples differ from the source build's by " + difference);
            List<String> losses = Files.readAllLines(dir.resolve(run).resolve("losses.txt"));
            List<String> expectedLosses = Files.readAllLines(dir.resolve("source/losses.txt"));
            assertEquals(20, losses.size());
            for (int step = 0; step < losses.size(); step++) {
                double a = Double.parseDouble(losses.get(step)), b = Double.parseDouble(expectedLosses.get(step));
                assertTrue(Math.abs(a / b - 1) <= 1e-5, run + ": step " + step + " loss " + a + " against the source build's " + b);
            }
        }
    }

    @Test
    void aDamagedCacheEntryIsFoundByItsHashesAndReplacedByTheNextJvm() throws Exception {
        Path cache = dir.resolve("xdg-cache");
        ChildJvm.Result result = ChildJvm.withNatives().environment("XDG_CACHE_HOME", cache.toString()).run(PrintVersion.class.getName());
        assertEquals(0, result.exitCode(), result.output());
        Path entry = list(cache.resolve("ddim4j")).getFirst();
        List<NativesCache.Entry> manifest = NativesCache.parse(Files.readAllBytes(entry.resolve(NativesCache.MANIFEST)), "cache");

        Path damaged = entry.resolve("libddim4j_c10.so");
        try (RandomAccessFile file = new RandomAccessFile(damaged.toFile(), "rw")) {
            file.seek(file.length() / 2);
            int b = file.read();
            file.seek(file.length() / 2);
            file.write(b ^ 0x10);
        }
        assertTrue(NativesCache.damage(entry, manifest).contains("libddim4j_c10.so"));

        result = ChildJvm.withNatives().environment("XDG_CACHE_HOME", cache.toString()).run(PrintVersion.class.getName());
        assertEquals(0, result.exitCode(), result.output());
        assertTrue(result.output().contains("libddim: " + entry.resolve("libddim.so")), result.output());
        assertNull(NativesCache.damage(entry, manifest), "the copy was replaced");
        assertEquals(List.of(entry), list(cache.resolve("ddim4j")));
    }

    @Test
    void whatWasLoadedFromWhereIsLoggedAtDebugLevel() throws Exception {
        Path cache = dir.resolve("xdg-cache");
        Path logging = Files.writeString(dir.resolve("logging.properties"), String.join("\n",
                "handlers=java.util.logging.ConsoleHandler", "java.util.logging.ConsoleHandler.level=ALL", "org.ddim4j.level=ALL", ""));
        ChildJvm debug = ChildJvm.withNatives("-Djava.util.logging.config.file=" + logging).environment("XDG_CACHE_HOME", cache.toString());
        ChildJvm.Result first = debug.run(PrintVersion.class.getName());
        assertEquals(0, first.exitCode(), first.output());
        Path entry = list(cache.resolve("ddim4j")).getFirst();
        assertTrue(first.output().contains("extracted the ddim4j natives from " + ChildJvm.NATIVES_JAR + " into " + entry), first.output());
        assertTrue(first.output().contains("loaded " + entry.resolve("libddim.so") + " (from " + ChildJvm.NATIVES_JAR + ")"), first.output());

        ChildJvm.Result explicit = ChildJvm.withNatives("-Djava.util.logging.config.file=" + logging, "-D" + NativeLibrary.PROPERTY + "=" + SOURCE_BUILD)
                .run(PrintVersion.class.getName());
        assertEquals(0, explicit.exitCode(), explicit.output());
        assertTrue(explicit.output().contains("loaded " + SOURCE_BUILD + " (from -D" + NativeLibrary.PROPERTY), explicit.output());
    }

    @Test
    void anExplicitLibraryComesBeforeTheNativesJar() throws Exception {
        Path cache = dir.resolve("xdg-cache");
        ChildJvm.Result result = ChildJvm.withNatives("-D" + NativeLibrary.PROPERTY + "=" + SOURCE_BUILD)
                .environment("XDG_CACHE_HOME", cache.toString()).run(PrintVersion.class.getName());
        assertEquals(0, result.exitCode(), result.output());
        assertTrue(result.output().contains("libddim: " + SOURCE_BUILD), result.output());
        assertFalse(Files.exists(cache.resolve("ddim4j")), "nothing extracted");
    }

    @Test
    void aReadOnlyHomeAndANoexecTemporaryDirectoryGetAnErrorNamingThePropertyThatFixesIt() throws Exception {
        assumeTrue(new UnixSystem().getUid() == 0 && Files.isExecutable(Path.of("/usr/bin/unshare")),
                "needs root and unshare to mount a read-only home and a noexec temporary directory");
        Path home = Files.createDirectories(dir.resolve("home"));
        Path tmp = Files.createDirectories(dir.resolve("tmp"));
        Path chosen = Files.createDirectories(dir.resolve("chosen"));
        // A private mount namespace: a read-only home and/or a noexec java.io.tmpdir, for this child alone.
        List<String> readOnlyHomeNoexecTmp = List.of("unshare", "-m", "sh", "-c",
                "mount -t tmpfs -o ro tmpfs \"$1\" && mount -t tmpfs -o noexec tmpfs \"$2\" && shift 2 && exec \"$@\"", "sh",
                home.toString(), tmp.toString());
        String[] options = {"-Duser.home=" + home, "-Djava.io.tmpdir=" + tmp};

        ChildJvm.Result refused = ChildJvm.withNativesUnder(readOnlyHomeNoexecTmp, options).run(PrintVersion.class.getName());
        assertEquals(1, refused.exitCode(), refused.output());
        assertTrue(refused.output().contains(home.resolve(".cache/ddim4j").toString()) && refused.output().contains("Read-only file system"),
                refused.output());
        assertTrue(refused.output().contains(tmp.resolve("ddim4j-root") + " (its file system does not allow executing code: mounted noexec)"),
                refused.output());
        assertTrue(refused.output().contains("Set -D" + NativeLibrary.CACHE_DIR + "=DIR"), refused.output());

        ChildJvm.Result fixed = ChildJvm.withNativesUnder(readOnlyHomeNoexecTmp, options[0], options[1], "-D" + NativeLibrary.CACHE_DIR + "=" + chosen)
                .run(PrintVersion.class.getName());
        assertEquals(0, fixed.exitCode(), fixed.output());
        assertTrue(fixed.output().contains("libddim: " + chosen), fixed.output());

        List<String> readOnlyHome = List.of("unshare", "-m", "sh", "-c", "mount -t tmpfs -o ro tmpfs \"$1\" && shift && exec \"$@\"", "sh",
                home.toString());
        ChildJvm.Result fallback = ChildJvm.withNativesUnder(readOnlyHome, options).run(PrintVersion.class.getName());
        assertEquals(0, fallback.exitCode(), fallback.output());
        assertTrue(fallback.output().contains("libddim: " + tmp.resolve("ddim4j-root")), "the temporary directory serves: " + fallback.output());
    }
}
