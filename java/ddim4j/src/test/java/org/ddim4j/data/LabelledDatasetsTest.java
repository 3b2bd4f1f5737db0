package org.ddim4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPOutputStream;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Labels: IDX label files (Fashion-MNIST's too) and folders with one subfolder per class. */
class LabelledDatasetsTest {
    private static void writeIdxImages(Path file, int count, int side, boolean gzip) throws IOException {
        try (OutputStream raw = Files.newOutputStream(file);
                DataOutputStream out = new DataOutputStream(gzip ? new GZIPOutputStream(raw) : raw)) {
            out.writeInt(0x00000803);
            out.writeInt(count);
            out.writeInt(side);
            out.writeInt(side);
            for (int i = 0; i < count * side * side; i++) {
                out.writeByte((i * 31 + i / (side * side) * 7) % 256);
            }
        }
    }

    private static void writeIdxLabels(Path file, int announced, int[] labels, boolean gzip) throws IOException {
        try (OutputStream raw = Files.newOutputStream(file);
                DataOutputStream out = new DataOutputStream(gzip ? new GZIPOutputStream(raw) : raw)) {
            out.writeInt(0x00000801);
            out.writeInt(announced);
            for (int label : labels) {
                out.writeByte(label);
            }
        }
    }

    @Test
    void idxImagesPickUpTheLabelFileBesideThem(@TempDir Path dir) throws IOException {
        Path images = dir.resolve("train-images-idx3-ubyte.gz");
        writeIdxImages(images, 5, 8, true);
        writeIdxLabels(dir.resolve("train-labels-idx1-ubyte"), 5, new int[] {3, 0, 1, 3, 2}, false);
        Dataset data = Datasets.open(images.toString(), 1, 8);
        assertTrue(data.hasLabels());
        assertEquals(List.of("0", "1", "2", "3"), data.classNames(), "unnamed classes are numbered up to the largest label");
        assertArrayEquals(new int[] {3, 0, 1, 3, 2}, data.labels(0, 5));
        assertArrayEquals(new int[] {2, 3}, data.labels(new int[] {4, 0}));
        assertEquals(2, data.ofClass(3).size());
        Dataset first = Datasets.open(images.toString(), 1, 8, 3);
        assertArrayEquals(new int[] {3, 0, 1}, first.labels(0, 3), "a limit reads the first labels only");
        // Views keep each image's label.
        Dataset.Split split = data.split(0.4, 7);
        for (Dataset part : List.of(split.train(), split.validation())) {
            for (int i = 0; i < part.size(); i++) {
                float[] image = part.range(i, i + 1);
                int original = -1;
                for (int j = 0; j < data.size(); j++) {
                    if (java.util.Arrays.equals(image, data.range(j, j + 1))) {
                        original = j;
                    }
                }
                assertEquals(data.labels(original, original + 1)[0], part.labels(i, i + 1)[0]);
            }
        }
    }

    @Test
    void imagesWithoutALabelFileAreUnlabelled(@TempDir Path dir) throws IOException {
        Path images = dir.resolve("mine-images-idx3-ubyte");
        writeIdxImages(images, 2, 8, false);
        Dataset data = Datasets.open(images.toString(), 1, 8);
        assertFalse(data.hasLabels());
        assertEquals(List.of(), data.classNames());
        assertThrows(IllegalStateException.class, () -> data.labels(0, 1));
    }

    @Test
    void badLabelFilesAreNamedErrors(@TempDir Path dir) throws IOException {
        Path images = dir.resolve("x-images-idx3-ubyte");
        writeIdxImages(images, 4, 8, false);
        Path labels = dir.resolve("x-labels-idx1-ubyte");
        writeIdxLabels(labels, 4, new int[] {1, 2}, false);
        IllegalArgumentException truncated = assertThrows(IllegalArgumentException.class, () -> Datasets.open(images.toString(), 1, 8));
        assertTrue(truncated.getMessage().contains("truncated"), truncated.getMessage());
        writeIdxLabels(labels, 3, new int[] {1, 2, 0}, false);
        IllegalArgumentException fewer = assertThrows(IllegalArgumentException.class, () -> Datasets.open(images.toString(), 1, 8));
        assertTrue(fewer.getMessage().contains("3 labels for 4 images"), fewer.getMessage());
        Files.write(labels, new byte[] {0, 0, 8, 3, 0, 0, 0, 4, 1, 1, 1, 1});
        IllegalArgumentException magic = assertThrows(IllegalArgumentException.class, () -> Datasets.open(images.toString(), 1, 8));
        assertTrue(magic.getMessage().contains("magic number"), magic.getMessage());
        writeIdxLabels(labels, 4, new int[] {0, 1, 0, 1}, false);
        Dataset data = IdxImages.load(images, 1, 8);
        IllegalArgumentException names = assertThrows(IllegalArgumentException.class,
                () -> IdxLabels.label(data, labels, List.of("only")));
        assertTrue(names.getMessage().contains("label 1 is not one of its 1 classes"), names.getMessage());
        assertThrows(IllegalArgumentException.class, () -> data.withLabels(new int[] {0, 1, 0}, List.of("a", "b")));
        assertThrows(IllegalArgumentException.class, () -> data.withLabels(new int[] {0, 1, 0, 2}, List.of("a", "b")));
    }

    @Test
    void fashionMnistCarriesItsTenClasses() {
        // Not skipped when missing: a silent skip would pass whatever the code does. scripts/setup.sh installs it.
        assertTrue(Files.isRegularFile(Datasets.FASHION_MNIST_DIR.resolve("train-labels-idx1-ubyte.gz")),
                "Debian's dataset-fashion-mnist is not installed in " + Datasets.FASHION_MNIST_DIR + " (scripts/setup.sh installs it)");
        Dataset train = Datasets.fashionMnist(1, 28, 1000);
        assertEquals(IdxLabels.FASHION_MNIST_CLASSES, train.classNames());
        assertEquals("Ankle boot", train.classNames().get(9));
        // The file's first labels: ankle boot, T-shirt/top, T-shirt/top, dress, T-shirt/top.
        assertArrayEquals(new int[] {9, 0, 0, 3, 0}, train.labels(0, 5));
        // All 60,000 labels: 6,000 per class.
        int[] counts = new int[10];
        for (int label : IdxLabels.read(Datasets.FASHION_MNIST_DIR.resolve("train-labels-idx1-ubyte.gz"), Integer.MAX_VALUE)) {
            counts[label]++;
        }
        for (int count : counts) {
            assertEquals(6000, count);
        }
        Dataset test = Datasets.fashionMnistTest(1, 28, 10);
        assertEquals(10, test.size());
        assertTrue(test.hasLabels());
    }

    @Test
    void subfoldersNameTheClasses(@TempDir Path dir) throws IOException {
        BufferedImage grey = new BufferedImage(8, 8, BufferedImage.TYPE_BYTE_GRAY);
        for (String file : List.of("tulip/a.png", "rose/b.png", "rose/nested/c.png", "tulip/d.png", "daisy/e.png")) {
            Path path = dir.resolve(file);
            Files.createDirectories(path.getParent());
            ImageIO.write(grey, "png", path.toFile());
        }
        Files.writeString(dir.resolve("rose/notes.txt"), "not an image");
        Dataset data = ImageFolder.load(dir, 1, 8);
        assertEquals(List.of("daisy", "rose", "tulip"), data.classNames());
        // Files in sorted order: daisy/e, rose/b, rose/nested/c, tulip/a, tulip/d.
        assertArrayEquals(new int[] {0, 1, 1, 2, 2}, data.labels(0, 5));
        // An image at the top level leaves the folder unlabelled.
        ImageIO.write(grey, "png", dir.resolve("loose.png").toFile());
        assertFalse(ImageFolder.load(dir, 1, 8).hasLabels());
    }
}
