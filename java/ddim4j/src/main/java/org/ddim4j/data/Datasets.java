package org.ddim4j.data;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Opens a dataset from a command-line style name: a folder of images, one image file, an IDX file, or {@code fashion-mnist}.
 * Labels come along where the data has them: an IDX label file beside IDX images ({@code *-labels-idx1-ubyte[.gz]} beside
 * {@code *-images-idx3-ubyte[.gz]}), Fashion-MNIST's with its class names, and a folder's first-level subfolders.
 */
public final class Datasets {
    /** Where Debian's dataset-fashion-mnist package installs the files. */
    public static final Path FASHION_MNIST_DIR = Path.of("/usr/share/datasets/fashion-mnist");

    private Datasets() {}

    public static Dataset open(String spec, int channels, int imageSize) {
        return open(spec, channels, imageSize, Integer.MAX_VALUE);
    }

    /** The first {@code limit} images only; IDX files (and so Fashion-MNIST) are not decoded past them. */
    public static Dataset open(String spec, int channels, int imageSize, int limit) {
        if (spec.equals("fashion-mnist")) {
            return fashionMnist(channels, imageSize, limit);
        }
        Path path = Path.of(spec);
        if (Files.isDirectory(path)) {
            return ImageFolder.load(path, channels, imageSize).head(limit);
        }
        if (Files.isRegularFile(path) && ImageFolder.isImage(path)) {
            return ImageFolder.loadFile(path, channels, imageSize);
        }
        if (Files.isRegularFile(path)) {
            if (!IdxImages.isIdx(path)) {
                throw new IllegalArgumentException(spec + " is not an image: expected a .png/.jpg file, a folder of them, an IDX"
                        + " image file or fashion-mnist");
            }
            Dataset images = IdxImages.load(path, channels, imageSize, limit);
            return IdxLabels.besideImages(path).map(labels -> IdxLabels.label(images, labels, null)).orElse(images);
        }
        throw new IllegalArgumentException("no such dataset: " + spec + " (expected a folder of images, a .png/.jpg file, an IDX file, or fashion-mnist)");
    }

    /**
     * The channels and side the data comes in, for choosing a model that fits it: IDX files (and Fashion-MNIST) are
     * grey, of the file's size; images and folders of them are taken as RGB, of no one size ({@code size} 0).
     */
    public record Shape(int channels, int size) {}

    /** The {@link Shape} of the data {@link #open} would read from {@code spec}, from file headers only. */
    public static Shape shape(String spec) {
        Path idx = spec.equals("fashion-mnist") ? FASHION_MNIST_DIR.resolve("train-images-idx3-ubyte.gz") : Path.of(spec);
        if (Files.isRegularFile(idx) && !ImageFolder.isImage(idx) && IdxImages.isIdx(idx)) {
            return new Shape(1, IdxImages.imageSize(idx));
        }
        return new Shape(3, 0);
    }

    /** Fashion-MNIST's 60,000 training images from the Debian package's files, labelled with its 10 classes. */
    public static Dataset fashionMnist(int channels, int imageSize) {
        return fashionMnist(channels, imageSize, Integer.MAX_VALUE);
    }

    /** The first {@code limit} of Fashion-MNIST's training images. */
    public static Dataset fashionMnist(int channels, int imageSize, int limit) {
        return fashionMnist("train", channels, imageSize, limit);
    }

    /** The first {@code limit} of Fashion-MNIST's 10,000 test images, labelled (for evaluation, never for training). */
    public static Dataset fashionMnistTest(int channels, int imageSize, int limit) {
        return fashionMnist("t10k", channels, imageSize, limit);
    }

    private static Dataset fashionMnist(String part, int channels, int imageSize, int limit) {
        Path images = FASHION_MNIST_DIR.resolve(part + "-images-idx3-ubyte.gz");
        Path labels = FASHION_MNIST_DIR.resolve(part + "-labels-idx1-ubyte.gz");
        if (!Files.isRegularFile(images) || !Files.isRegularFile(labels)) {
            throw new IllegalArgumentException("Fashion-MNIST not found at " + images
                    + ": install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist; scripts/setup.sh does)");
        }
        return IdxLabels.label(IdxImages.load(images, channels, imageSize, limit), labels, IdxLabels.FASHION_MNIST_CLASSES);
    }
}
