package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The natives bundle's manifest, extraction and cache, on small made-up bundles (NativesJarTest loads the real one). */
class NativesCacheTest {
    @TempDir
    Path dir;

    private static final Map<String, byte[]> FILES = new LinkedHashMap<>();
    static {
        FILES.put("libddim.so", "not really an ELF file, but bytes to cache".getBytes(StandardCharsets.UTF_8));
        FILES.put("libddim4j_c10.so", new byte[3 << 20]);  // over one copy buffer
        FILES.put("licenses/NOTICE", "what is bundled".getBytes(StandardCharsets.UTF_8));
    }

    private static String manifest(Map<String, byte[]> files) {
        StringBuilder manifest = new StringBuilder("# test bundle\n");
        files.forEach((path, bytes) -> manifest.append(NativesCache.sha256(bytes)).append(' ').append(bytes.length).append(' ')
                .append(path).append('\n'));
        return manifest.toString();
    }

    /** The bundle laid out as in the natives jar's directory, with {@code manifest} as its manifest. */
    private Path bundleDirectory(String manifest, Map<String, byte[]> files) throws IOException {
        Path location = Files.createTempDirectory(dir, "bundle");
        Path natives = Files.createDirectories(location.resolve(NativesCache.DIRECTORY));
        Files.writeString(natives.resolve(NativesCache.MANIFEST), manifest);
        for (Map.Entry<String, byte[]> file : files.entrySet()) {
            Files.createDirectories(natives.resolve(file.getKey()).getParent());
            Files.write(natives.resolve(file.getKey()), file.getValue());
        }
        return location;
    }

    private NativesCache.Bundle bundle() throws IOException {
        return NativesCache.fromLocation(bundleDirectory(manifest(FILES), FILES), "test bundle");
    }

    private static List<Path> list(Path directory) throws IOException {
        try (Stream<Path> files = Files.list(directory)) {
            return files.sorted().toList();
        }
    }

    @Test
    void theBundleIsExtractedOnceUnderTheHashOfItsManifestAndReused() throws Exception {
        NativesCache.Bundle bundle = bundle();
        Path root = dir.resolve("cache/ddim4j");
        Path copy = NativesCache.extract(bundle, root);
        assertEquals(root.resolve(NativesCache.sha256(manifest(FILES).getBytes(StandardCharsets.UTF_8))), copy);
        for (Map.Entry<String, byte[]> file : FILES.entrySet()) {
            assertArrayEquals(file.getValue(), Files.readAllBytes(copy.resolve(file.getKey())), file.getKey());
        }
        assertEquals(manifest(FILES), Files.readString(copy.resolve(NativesCache.MANIFEST)));
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(root)));
        assertEquals(List.of(copy), list(root), "no temporary directory left");
        assertTrue(Files.isRegularFile(copy.resolve(NativesCache.VERIFIED)), "fingerprinted");

        Object inode = Files.readAttributes(copy.resolve("libddim.so"), "unix:ino").get("ino");
        assertEquals(copy, NativesCache.extract(bundle, root));
        assertEquals(inode, Files.readAttributes(copy.resolve("libddim.so"), "unix:ino").get("ino"), "reused, not rewritten");
    }

    @Test
    void aDamagedCopyIsDetectedByItsHashesAndReplaced() throws Exception {
        NativesCache.Bundle bundle = bundle();
        Path root = dir.resolve("cache");
        Path copy = NativesCache.extract(bundle, root);

        byte[] flipped = FILES.get("libddim4j_c10.so").clone();
        flipped[flipped.length / 2] ^= 1;  // same size, one bit off
        Files.write(copy.resolve("libddim4j_c10.so"), flipped);
        assertTrue(NativesCache.damage(copy, bundle.entries()).contains("libddim4j_c10.so"));
        assertEquals(copy, NativesCache.extract(bundle, root));
        assertArrayEquals(FILES.get("libddim4j_c10.so"), Files.readAllBytes(copy.resolve("libddim4j_c10.so")));

        Files.delete(copy.resolve("licenses/NOTICE"));
        Files.writeString(copy.resolve("libddim.so"), "truncated");
        assertEquals(copy, NativesCache.extract(bundle, root));
        assertNull(NativesCache.damage(copy, bundle.entries()));
        assertEquals(List.of(copy), list(root), "the damaged copy is gone");
    }

    @Test
    void theFingerprintSparesTheHashingButNotAChangedFileWhoseTimesWereSetBack() throws Exception {
        NativesCache.Bundle bundle = bundle();
        Path root = dir.resolve("cache");
        Path copy = NativesCache.extract(bundle, root);
        Path library = copy.resolve("libddim4j_c10.so");
        java.nio.file.attribute.FileTime modified = Files.getLastModifiedTime(library);
        byte[] flipped = FILES.get("libddim4j_c10.so").clone();
        flipped[7] ^= 1;
        Thread.sleep(50);  // a status-change time the write below moves
        Files.write(library, flipped);
        Files.setLastModifiedTime(library, modified);  // same size, same modification time: only ctime tells
        assertEquals(copy, NativesCache.extract(bundle, root));
        assertArrayEquals(FILES.get("libddim4j_c10.so"), Files.readAllBytes(library), "hashed again and replaced");

        Files.writeString(copy.resolve(NativesCache.VERIFIED), "garbage\n");
        assertEquals(copy, NativesCache.extract(bundle, root));
        assertNull(NativesCache.damage(copy, bundle.entries()));
        assertTrue(Files.readString(copy.resolve(NativesCache.VERIFIED)).startsWith("libddim.so "), "fingerprinted again");
    }

    @Test
    void aBundleWhoseFilesDoNotMatchItsManifestIsRefusedAndLeavesNothing() throws Exception {
        Map<String, byte[]> changed = new LinkedHashMap<>(FILES);
        changed.put("libddim.so", "other bytes".getBytes(StandardCharsets.UTF_8));
        NativesCache.Bundle damaged = NativesCache.fromLocation(bundleDirectory(manifest(FILES), changed), "damaged bundle");
        Path root = dir.resolve("cache");
        IOException error = assertThrows(IOException.class, () -> NativesCache.extract(damaged, root));
        assertTrue(error.getMessage().contains("damaged bundle is damaged: libddim.so"), error.getMessage());
        assertEquals(List.of(), list(root));
    }

    @Test
    void hostileManifestsAreRefusedBeforeAnythingIsWritten() {
        String hash = "0".repeat(64);
        for (String manifest : List.of(
                hash + " 10 ../../.bashrc\n" + hash + " 1 libddim.so\n",
                hash + " 10 /etc/passwd\n" + hash + " 1 libddim.so\n",
                hash + " 10 a/b/c/d\n" + hash + " 1 libddim.so\n",
                hash + " 99999999999999 libddim.so\n",
                hash + " 4000000000 libddim.so\n" + hash + " 4000000000 libddim4j_torch_cpu.so\n" + hash + " 4000000000 x.so\n",
                hash + " -1 libddim.so\n",
                "abc 1 libddim.so\n",
                hash + " 1\n",
                hash + " 1 libddim4j_c10.so\n",
                hash + " 1 manifest\n" + hash + " 1 libddim.so\n")) {
            IOException error = assertThrows(IOException.class,
                    () -> NativesCache.parse(manifest.getBytes(StandardCharsets.UTF_8), "hostile"), manifest);
            assertTrue(error.getMessage().startsWith("hostile: "), error.getMessage());
        }
    }

    @Test
    void aJarIsReadLikeADirectory() throws Exception {
        Path jar = dir.resolve("ddim4j-natives-test-linux-x86_64.jar");
        try (ZipOutputStream zip = new ZipOutputStream(Files.newOutputStream(jar))) {
            zip.putNextEntry(new ZipEntry(NativesCache.DIRECTORY + NativesCache.MANIFEST));
            zip.write(manifest(FILES).getBytes(StandardCharsets.UTF_8));
            for (Map.Entry<String, byte[]> file : FILES.entrySet()) {
                zip.putNextEntry(new ZipEntry(NativesCache.DIRECTORY + file.getKey()));
                zip.write(file.getValue());
            }
        }
        Path copy = NativesCache.extract(NativesCache.fromLocation(jar, jar.toString()), dir.resolve("cache"));
        assertArrayEquals(FILES.get("libddim.so"), Files.readAllBytes(copy.resolve("libddim.so")));
    }

    @Test
    void concurrentExtractionsIntoAnEmptyCacheAllSucceedWithOneCopy() throws Exception {
        NativesCache.Bundle bundle = bundle();
        Path root = dir.resolve("cache");
        List<Callable<Path>> extractions = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            extractions.add(() -> NativesCache.extract(bundle, root));
        }
        try (ExecutorService threads = Executors.newFixedThreadPool(6)) {
            List<Path> copies = new ArrayList<>();
            for (Future<Path> copy : threads.invokeAll(extractions)) {
                copies.add(copy.get());
            }
            assertEquals(1, copies.stream().distinct().count(), copies.toString());
            assertEquals(List.of(copies.getFirst()), list(root), "one copy, no temporary directory left");
            assertNull(NativesCache.damage(copies.getFirst(), bundle.entries()));
        }
    }

    @Test
    void aCacheRootThatIsNotPrivateOrNotADirectoryIsRefused() throws Exception {
        NativesCache.Bundle bundle = bundle();
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        Path shared = Files.createDirectories(dir.resolve("shared"));
        Files.setPosixFilePermissions(shared, PosixFilePermissions.fromString("rwxrwxrwx"));
        assertThrows(IOException.class, () -> NativesCache.extract(bundle, file.resolve("ddim4j")), "under a regular file");
        IOException error = assertThrows(IOException.class, () -> NativesCache.extract(bundle, shared), "writable by others");
        assertTrue(error.getMessage().contains("only this user can write to"), error.getMessage());
        assertFalse(Files.exists(shared.resolve(bundle.key())));
    }

    @Test
    void whenNoRootWorksTheErrorNamesEachAndThePropertyThatFixesIt() throws Exception {
        NativesCache.Bundle bundle = bundle();
        Path file = Files.writeString(dir.resolve("not-a-directory"), "x");
        UnsatisfiedLinkError error = assertThrows(UnsatisfiedLinkError.class,
                () -> NativeLibrary.loadNatives(bundle, List.of(file.resolve("a"), file.resolve("b"))));
        String message = NativeLibrary.explain(error);
        assertTrue(message.contains(file.resolve("a").toString()) && message.contains(file.resolve("b").toString()), message);
        assertTrue(message.contains("-D" + NativeLibrary.CACHE_DIR + "=DIR"), message);
    }

    @Test
    void aLeftoverFromAKilledExtractionIsRemovedOnceStale() throws Exception {
        NativesCache.Bundle bundle = bundle();
        Path root = dir.resolve("cache");
        NativesCache.createPrivateDirectory(root);
        Path fresh = Files.createDirectory(root.resolve(".extracting-fresh"));
        Path stale = Files.createDirectory(root.resolve(".extracting-stale"));
        try (OutputStream out = Files.newOutputStream(stale.resolve("libddim.so"))) {
            out.write(1);
        }
        Files.setLastModifiedTime(stale, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() - 2 * 3600_000));
        Path copy = NativesCache.extract(bundle, root);
        assertEquals(List.of(fresh, copy).stream().sorted().toList(), list(root), "another JVM's extraction in progress stays");
    }
}
