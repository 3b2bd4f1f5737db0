package org.ddim4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageFolderTest {
    @TempDir
    Path dir;

    private final Logger logger = Logger.getLogger(ImageFolder.class.getName());
    private final List<LogRecord> warnings = new ArrayList<>();
    private final Handler handler = new Handler() {
        @Override
        public void publish(LogRecord record) {
            if (record.getLevel().intValue() >= Level.WARNING.intValue()) {
                warnings.add(record);
            }
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
    };

    @BeforeEach
    void captureWarnings() {
        logger.addHandler(handler);
    }

    @AfterEach
    void releaseWarnings() {
        logger.removeHandler(handler);
    }

    /** A PNG chunk: length, type, data, and the CRC-32 of type and data. */
    private static void chunk(DataOutputStream out, String type, byte[] data) throws IOException {
        byte[] typeBytes = type.getBytes(StandardCharsets.US_ASCII);
        CRC32 crc = new CRC32();
        crc.update(typeBytes);
        crc.update(data);
        out.writeInt(data.length);
        out.write(typeBytes);
        out.write(data);
        out.writeInt((int) crc.getValue());
    }

    /** A valid-looking PNG of a few hundred bytes whose header declares an RGB image of width x height. */
    static byte[] pngDeclaring(int width, int height) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
        ByteArrayOutputStream header = new ByteArrayOutputStream();
        DataOutputStream headerOut = new DataOutputStream(header);
        headerOut.writeInt(width);
        headerOut.writeInt(height);
        headerOut.write(new byte[] {8, 2, 0, 0, 0}); // 8 bits, RGB, deflate, adaptive filtering, not interlaced
        chunk(out, "IHDR", header.toByteArray());
        Deflater deflater = new Deflater();
        deflater.setInput(new byte[1024]); // a few zero rows' worth: the rest is missing
        deflater.finish();
        byte[] compressed = new byte[256];
        chunk(out, "IDAT", Arrays.copyOf(compressed, deflater.deflate(compressed)));
        chunk(out, "IEND", new byte[0]);
        return bytes.toByteArray();
    }

    private static BufferedImage noise(int width, int height) {
        Random random = new Random(7);
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                image.setRGB(x, y, random.nextInt());
            }
        }
        return image;
    }

    /** The first {@code fraction} of a well-formed image file of the given format. */
    private Path truncated(String name, String format, double fraction) throws IOException {
        Path whole = dir.resolve("whole." + format);
        ImageIO.write(noise(200, 150), format, whole.toFile());
        byte[] bytes = Files.readAllBytes(whole);
        Files.delete(whole);
        return Files.write(dir.resolve(name), Arrays.copyOf(bytes, (int) (bytes.length * fraction)));
    }

    @Test
    void aSmallFileDeclaringAHugeImageIsRefusedFromItsHeader() throws IOException {
        Path bomb = Files.write(dir.resolve("bomb.png"), pngDeclaring(20000, 20000));
        assertTrue(Files.size(bomb) < 1000);
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long allocatedBefore = threads.getCurrentThreadAllocatedBytes();
        long start = System.nanoTime();
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> ImageFolder.loadFile(bomb, 3, 16));
        long allocated = threads.getCurrentThreadAllocatedBytes() - allocatedBefore;
        assertTrue(refused.getMessage().contains("20000x20000 is over the limit of 16,777,216 pixels"), refused.getMessage());
        assertTrue(allocated < 32L << 20, "allocated " + allocated + " bytes"); // decoding it would take 1.2 GB
        assertTrue(System.nanoTime() - start < 5_000_000_000L);

        ImageIO.write(noise(20, 20), "png", dir.resolve("fine.png").toFile());
        Dataset folder = ImageFolder.load(dir, 3, 16);
        assertEquals(1, folder.size());
        assertEquals(1, folder.skipped());
        assertEquals(bomb, folder.skippedFiles().getFirst().file());
        assertTrue(folder.skippedFiles().getFirst().reason().contains("20000x20000"), folder.skippedFiles().toString());
        assertEquals(1, warnings.size());
        assertTrue(warnings.getFirst().getMessage().contains("bomb.png (20000x20000 is over the limit"), warnings.getFirst().getMessage());
    }

    @Test
    void truncatedImagesAreSkippedAndEveryOneNamedInOneWarning() throws IOException {
        Path jpeg = truncated("cut.jpg", "jpg", 0.6);
        Path png = truncated("cut.png", "png", 0.9);
        Path noEnd = truncated("no-end-marker.jpg", "jpg", 0.999);
        ImageIO.write(noise(30, 20), "jpg", dir.resolve("whole.jpg").toFile());
        ImageIO.write(noise(30, 20), "png", dir.resolve("whole.png").toFile());

        Dataset folder = ImageFolder.load(dir, 3, 16);
        assertEquals(2, folder.size());
        assertEquals(List.of(jpeg, png, noEnd), folder.skippedFiles().stream().map(Dataset.SkippedFile::file).toList());
        for (Dataset.SkippedFile skipped : folder.skippedFiles()) {
            String reason = skipped.reason();
            assertTrue(reason.contains("truncated") || reason.contains("Unexpected end"), skipped.toString());
        }
        assertEquals(1, warnings.size(), warnings.toString());
        String warning = warnings.getFirst().getMessage();
        assertTrue(warning.startsWith("skipped 3 of 5 image files under " + dir), warning);
        for (String name : new String[] {"cut.jpg (", "cut.png (", "no-end-marker.jpg ("}) {
            assertTrue(warning.contains(name), warning);
        }
        assertEquals(1, warning.lines().count(), warning);

        IllegalArgumentException single = assertThrows(IllegalArgumentException.class, () -> ImageFolder.loadFile(jpeg, 1, 8));
        assertTrue(single.getMessage().contains("truncated"), single.getMessage());
    }

    @Test
    void wholeImagesLoadWithoutWarnings() throws IOException {
        ImageIO.write(noise(300, 200), "jpg", dir.resolve("a.jpg").toFile());
        ImageIO.write(noise(64, 64), "png", dir.resolve("b.png").toFile());
        Dataset folder = ImageFolder.load(dir, 1, 8);
        assertEquals(2, folder.size());
        assertEquals(List.of(), folder.skippedFiles());
        assertEquals(List.of(), warnings);
    }
}
