package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad model files give a DdimException with a clear message and never crash the JVM. */
class ModelFileTest {
    @TempDir
    Path dir;

    private Path good;
    private byte[] bytes;

    @BeforeEach
    void writeGoodModel() throws IOException {
        good = dir.resolve("good.safetensors");
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 2)) {
            ddim.save(good);
        }
        bytes = Files.readAllBytes(good);
    }

    @Test
    void truncatedFilesAreFormatErrors() throws IOException {
        for (int keep : new int[] {0, 7, 8, 200, bytes.length / 2, bytes.length - 1}) {
            DdimException e = openBroken(Arrays.copyOf(bytes, keep));
            assertEquals(Status.FORMAT, e.status(), "keeping " + keep + " bytes: " + e.getMessage());
            assertFalse(e.nativeMessage().isBlank());
        }
    }

    @Test
    void corruptWeightsFailTheChecksum() throws IOException {
        byte[] corrupt = bytes.clone();
        corrupt[corrupt.length - 10] ^= 0x11;
        DdimException e = openBroken(corrupt);
        assertEquals(Status.FORMAT, e.status());
        assertTrue(e.getMessage().contains("checksum"), e.getMessage());
    }

    /** Files written before tensors_crc32 (data_crc32 alone) still load: native/tests/model_file_test.cpp. */
    @Test
    void filesWrittenAndShippedCarryAnOrderIndependentChecksum() throws IOException {
        assertTrue(header(bytes).contains("\"tensors_crc32\":") && header(bytes).contains("\"data_crc32\":"), header(bytes));
        for (String name : new String[] {"fashion-mnist-32.safetensors", "fashion-mnist-32-classes.safetensors"}) {
            Path shipped = Path.of(System.getProperty("ddim4j.repo", ".."), "models", name);
            String shippedHeader = header(Files.readAllBytes(shipped));
            assertTrue(shippedHeader.contains("\"tensors_crc32\":") && shippedHeader.contains("\"data_crc32\":"), name);
            try (Ddim ddim = Ddim.open(shipped, Device.cpu())) {
                assertEquals(32, ddim.config().imageSize());
            }
        }
    }

    /** The JSON header of a safetensors file. */
    private static String header(byte[] file) {
        long length = java.nio.ByteBuffer.wrap(file, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        return new String(file, 8, (int) length, StandardCharsets.UTF_8);
    }

    @Test
    void garbageIsAFormatError() throws IOException {
        byte[] garbage = new byte[4096];
        new java.util.Random(1).nextBytes(garbage);
        assertEquals(Status.FORMAT, openBroken(garbage).status());
    }

    @Test
    void configThatContradictsTheWeightsIsRejected() throws IOException {
        DdimException e = openBroken(replaceInHeader("\\\"channels\\\":1", "\\\"channels\\\":3"));
        assertEquals(Status.FORMAT, e.status());
        assertTrue(e.getMessage().contains("shape"), e.getMessage());
    }

    @Test
    void unknownFormatVersionIsNamed() throws IOException {
        DdimException e = openBroken(replaceInHeader("\"format_version\":\"1\"", "\"format_version\":\"9\""));
        assertEquals(Status.FORMAT, e.status());
        assertTrue(e.getMessage().contains("version"), e.getMessage());
    }

    @Test
    void missingFileIsAnIoError() {
        DdimException e = assertThrows(DdimException.class, () -> Ddim.open(dir.resolve("absent.safetensors"), Device.cpu()));
        assertEquals(Status.IO, e.status());
        assertTrue(e.getMessage().contains("absent.safetensors"), e.getMessage());
    }

    @Test
    void failedSaveKeepsTheExistingFile() throws IOException {
        Files.createDirectories(dir.resolve("occupied/child"));
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 3)) {
            DdimException e = assertThrows(DdimException.class, () -> ddim.save(dir.resolve("occupied")));
            assertEquals(Status.IO, e.status());
        }
        assertTrue(Arrays.equals(bytes, Files.readAllBytes(good)));
        try (var files = Files.list(dir)) {
            assertTrue(files.noneMatch(p -> p.getFileName().toString().contains(".tmp-")), "temporary file left behind");
        }
    }

    /**
     * The save that matters: a new model over the existing good file, failing halfway through the write (a child JVM
     * under a file-size limit of half the file, as a full disk would stop it). The good file keeps its bytes.
     */
    @Test
    void saveFailingMidWriteOverTheFileKeepsItsOldBytes() throws Exception {
        ChildJvm.Result result = ChildJvm.withoutNativesUnder(List.of("prlimit", "--fsize=" + bytes.length / 2), "-XX:-UsePerfData")
                .run(SaveOverProbe.class.getName(), good.toString());
        assertTrue(result.output().contains("save failed: IO"), result.output());
        assertTrue(Arrays.equals(bytes, Files.readAllBytes(good)), "the good file changed");
        try (var files = Files.list(dir)) {
            assertTrue(files.noneMatch(p -> p.getFileName().toString().contains(".tmp-")), "temporary file left behind");
        }
    }

    private byte[] replaceInHeader(String from, String to) {
        assertEquals(from.length(), to.length(), "same-length edits keep the header size valid");
        String text = new String(bytes, StandardCharsets.ISO_8859_1);
        assertTrue(text.contains(from), "header should contain " + from);
        return text.replaceFirst(java.util.regex.Pattern.quote(from), java.util.regex.Matcher.quoteReplacement(to))
                .getBytes(StandardCharsets.ISO_8859_1);
    }

    private DdimException openBroken(byte[] content) throws IOException {
        Path broken = dir.resolve("broken.safetensors");
        Files.write(broken, content);
        return assertThrows(DdimException.class, () -> Ddim.open(broken, Device.cpu()).close());
    }
}
