package org.ddim4j.data;

import java.nio.file.Files;
import java.nio.file.Path;

/** Opens a dataset from a command-line style name: a folder of images, one image file, an IDX file, or {@code fashion-mnist}. */
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
            return IdxImages.load(path, channels, imageSize, limit);
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

    /** Fashion-MNIST's 60,000 training images from the Debian package's files. */
    public static Dataset fashionMnist(int channels, int imageSize) {
        return fashionMnist(channels, imageSize, Integer.MAX_VALUE);
    }

    /** The first {@code limit} of Fashion-MNIST's training images. */
    public static Dataset fashionMnist(int channels, int imageSize, int limit) {
        Path images = FASHION_MNIST_DIR.resolve("train-images-idx3-ubyte.gz");
        if (!Files.isRegularFile(images)) {
            throw new IllegalArgumentException("Fashion-MNIST not found at " + images
                    + ": install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist; scripts/setup.sh does)");
        }
        return IdxImages.load(images, channels, imageSize, limit);
    }
}
