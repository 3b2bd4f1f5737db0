package org.ddim4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.stream.IntStream;
import java.util.zip.GZIPOutputStream;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DatasetTest {
    @TempDir
    Path dir;

    /** A width x height image: left half red, right half blue (so a centre crop keeps both). */
    private static BufferedImage halves(int width, int height, int type) {
        BufferedImage image = new BufferedImage(width, height, type);
        Graphics2D g = image.createGraphics();
        g.setColor(Color.RED);
        g.fillRect(0, 0, width / 2, height);
        g.setColor(Color.BLUE);
        g.fillRect(width / 2, 0, width - width / 2, height);
        g.dispose();
        return image;
    }

    private Path imageFolder() throws IOException {
        Path root = dir.resolve("images");
        Files.createDirectories(root.resolve("nested/deeper"));
        ImageIO.write(halves(50, 30, BufferedImage.TYPE_INT_RGB), "png", root.resolve("wide.png").toFile());
        ImageIO.write(halves(17, 40, BufferedImage.TYPE_INT_RGB), "jpg", root.resolve("nested/tall.JPG").toFile());
        ImageIO.write(halves(9, 9, BufferedImage.TYPE_BYTE_GRAY), "png", root.resolve("nested/grey.png").toFile());
        ImageIO.write(halves(64, 64, BufferedImage.TYPE_INT_ARGB), "png", root.resolve("nested/deeper/alpha.png").toFile());
        ImageIO.write(halves(300, 200, BufferedImage.TYPE_INT_RGB), "jpeg", root.resolve("big.jpeg").toFile());
        Files.write(root.resolve("corrupt.png"), new byte[] {(byte) 0x89, 'P', 'N', 'G', 1, 2, 3, 4, 5});
        byte[] jpeg = Files.readAllBytes(root.resolve("big.jpeg"));
        Files.write(root.resolve("nested/truncated.jpg"), Arrays.copyOf(jpeg, 40));
        Files.writeString(root.resolve("notes.txt"), "not an image");
        return root;
    }

    @Test
    void imageFolderLoadsOddSizesAndFormatsAndSkipsCorruptFiles() throws IOException {
        Dataset rgb = ImageFolder.load(imageFolder(), 3, 16);
        assertEquals(5, rgb.size());
        assertEquals(2, rgb.skipped());
        assertEquals(3, rgb.channels());
        assertEquals(16, rgb.imageSize());
        // Files are sorted: big.jpeg first. Its centre crop keeps red on the left, blue on the right.
        float[] image = rgb.batch(new int[] {0});
        int plane = 16 * 16;
        assertEquals(1f, image[8 * 16 + 1], 0.05f, "red channel, left");
        assertEquals(0f, image[2 * plane + 8 * 16 + 1], 0.05f, "blue channel, left");
        assertEquals(1f, image[2 * plane + 8 * 16 + 14], 0.05f, "blue channel, right");
        for (float p : rgb.range(0, rgb.size())) {
            assertTrue(p >= 0 && p <= 1);
        }
        Dataset grey = ImageFolder.load(imageFolder(), 1, 8);
        assertEquals(8 * 8, grey.pixelsPerImage());
        assertEquals(0.299f, grey.batch(new int[] {0})[4 * 8], 0.05f, "red as luma");
    }

    @Test
    void foldersWithoutUsableImagesAreErrors() throws IOException {
        Path empty = Files.createDirectories(dir.resolve("empty"));
        assertThrows(IllegalArgumentException.class, () -> ImageFolder.load(empty, 1, 8));
        Path broken = Files.createDirectories(dir.resolve("broken"));
        Files.write(broken.resolve("a.png"), new byte[] {1, 2, 3});
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ImageFolder.load(broken, 1, 8));
        assertTrue(e.getMessage().contains("could be decoded"), e.getMessage());
    }

    /** An IDX file of `count` rows x columns images whose pixel values are (i + p) mod 256. */
    private static byte[] idx(int count, int rows, int columns) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeInt(0x00000803);
        out.writeInt(count);
        out.writeInt(rows);
        out.writeInt(columns);
        for (int i = 0; i < count; i++) {
            for (int p = 0; p < rows * columns; p++) {
                out.writeByte((i * 40 + p) % 256);
            }
        }
        return bytes.toByteArray();
    }

    @Test
    void idxFilesLoadPlainAndGzipped() throws IOException {
        Path plain = dir.resolve("images.idx");
        Files.write(plain, idx(3, 4, 4));
        Path gzipped = dir.resolve("images.idx.gz");
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(gzipped))) {
            out.write(idx(3, 4, 4));
        }
        Dataset a = IdxImages.load(plain, 1, 4);
        Dataset b = IdxImages.load(gzipped, 1, 4);
        assertEquals(3, a.size());
        assertArrayEquals(a.range(0, 3), b.range(0, 3));
        assertEquals((1 * 40 + 5) / 255f, a.batch(new int[] {1})[5], 1e-6f, "same size: pixels pass through");
        Dataset firstTwo = IdxImages.load(plain, 1, 4, 2);
        assertEquals(2, firstTwo.size());
        assertArrayEquals(a.range(0, 2), firstTwo.range(0, 2));
        assertEquals(a.head(2).size(), Datasets.open(plain.toString(), 1, 4, 2).size());
        Dataset resized = IdxImages.load(plain, 3, 8);

        assertEquals(3 * 64, resized.pixelsPerImage());
    }

    @Test
    void malformedIdxFilesAreRejected() throws IOException {
        byte[] good = idx(2, 4, 4);
        Path truncated = dir.resolve("truncated.idx");
        Files.write(truncated, Arrays.copyOf(good, good.length - 3));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> IdxImages.load(truncated, 1, 4));
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
        byte[] labels = good.clone();
        labels[3] = 0x01; // a label file's magic
        Path wrongMagic = dir.resolve("labels.idx");
        Files.write(wrongMagic, labels);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> IdxImages.load(wrongMagic, 1, 4)).getMessage().contains("magic"));
    }

    @Test
    void fashionMnistShorthandReadsTheDebianPackage() {
        if (!Files.isRegularFile(Datasets.FASHION_MNIST_DIR.resolve("train-images-idx3-ubyte.gz"))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Datasets.open("fashion-mnist", 1, 28));
            assertTrue(e.getMessage().contains("dataset-fashion-mnist"));
            return;
        }
        Dataset data = Datasets.open("fashion-mnist", 1, 28);
        assertEquals(60000, data.size());
        float[][] statistics = data.head(2000).channelStatistics();
        assertEquals(0.286, statistics[0][0], 0.02); // Fashion-MNIST's well-known mean
    }

    @Test
    void splitIsDeterministicDisjointAndEightyTwenty() {
        Dataset data = Dataset.of(sequence(100), 1, 1);
        Dataset.Split split = data.split(0.2, 7);
        assertEquals(80, split.train().size());
        assertEquals(20, split.validation().size());
        Set<Float> seen = new HashSet<>();
        for (float v : split.train().range(0, 80)) {
            seen.add(v);
        }
        for (float v : split.validation().range(0, 20)) {
            assertTrue(seen.add(v), "validation image also in training");
        }
        assertArrayEquals(split.train().range(0, 80), data.split(0.2, 7).train().range(0, 80));
        assertNotEquals(Arrays.toString(split.train().range(0, 80)), Arrays.toString(data.split(0.2, 8).train().range(0, 80)));
        assertArrayEquals(Dataset.shuffled(10, 3), Dataset.shuffled(10, 3));
    }

    @Test
    void shufflingIsASeededPermutationThatDiffersBetweenEpochs() {
        int[] first = Dataset.shuffled(1000, 3);
        assertArrayEquals(IntStream.range(0, 1000).toArray(), Arrays.stream(first).sorted().toArray(), "a permutation");
        assertNotEquals(Arrays.toString(IntStream.range(0, 1000).toArray()), Arrays.toString(first), "actually shuffled");
        assertNotEquals(Arrays.toString(first), Arrays.toString(Dataset.shuffled(1000, 4)), "another seed (epoch), another order");
        // Every position takes each value about equally often over many seeds (a fair Fisher-Yates).
        int[] zeroAt = new int[4];
        for (long seed = 0; seed < 4000; seed++) {
            int[] order = Dataset.shuffled(4, seed);
            for (int k = 0; k < 4; k++) {
                if (order[k] == 0) {
                    zeroAt[k]++;
                }
            }
        }
        for (int count : zeroAt) {
            assertTrue(count > 850 && count < 1150, Arrays.toString(zeroAt));
        }
    }

    private static float[] sequence(int n) {
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = i / (float) n;
        }
        return values;
    }
}
