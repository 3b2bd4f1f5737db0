package org.ddim4j.data;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import javax.imageio.ImageIO;

/**
 * A folder of JPEG and PNG images, searched recursively (e.g. an extracted Oxford Flowers 102 or
 * Oxford-IIIT Pets). Each image is centre-cropped to a square and resized, as the reference does,
 * once; files that fail to decode are skipped and counted.
 */
public final class ImageFolder {
    private ImageFolder() {}

    public static Dataset load(Path directory, int channels, int imageSize) {
        if (!Files.isDirectory(directory)) {
            throw new IllegalArgumentException("not a directory: " + directory);
        }
        List<Path> files;
        try (Stream<Path> walk = Files.walk(directory)) {
            files = walk.filter(Files::isRegularFile).filter(ImageFolder::isImage).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + directory + ": " + e.getMessage(), e);
        }
        if (files.isEmpty()) {
            throw new IllegalArgumentException("no .jpg, .jpeg or .png files under " + directory);
        }
        float[][] decoded = new float[files.size()][];
        AtomicInteger skipped = new AtomicInteger();
        IntStream.range(0, files.size()).parallel().forEach(i -> {
            decoded[i] = decode(files.get(i), channels, imageSize);
            if (decoded[i] == null) {
                skipped.incrementAndGet();
            }
        });
        int usable = files.size() - skipped.get();
        if (usable == 0) {
            throw new IllegalArgumentException("none of the " + files.size() + " image files under " + directory + " could be decoded");
        }
        ImageCache.Store store = ImageCache.allocate(usable, channels, imageSize);
        int next = 0;
        for (float[] image : decoded) {
            if (image != null) {
                store.put(next++, image);
            }
        }
        return new Dataset(store, skipped.get(), directory.toString());
    }

    /** One JPEG or PNG file as a one-image dataset (centre-cropped and resized); an unreadable file is an error. */
    public static Dataset loadFile(Path file, int channels, int imageSize) {
        float[] image = decode(file, channels, imageSize);
        if (image == null) {
            throw new IllegalArgumentException("cannot decode " + file + " as a JPEG or PNG image");
        }
        ImageCache.Store store = ImageCache.allocate(1, channels, imageSize);
        store.put(0, image);
        return new Dataset(store, 0, file.toString());
    }

    static boolean isImage(Path file) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        return name.endsWith(".jpg") || name.endsWith(".jpeg") || name.endsWith(".png");
    }

    /** The image's planes, or null when it cannot be read. */
    private static float[] decode(Path file, int channels, int imageSize) {
        try {
            BufferedImage image = ImageIO.read(file.toFile());
            if (image == null || image.getWidth() < 1 || image.getHeight() < 1) {
                return null;
            }
            return ImageTransforms.toModelInput(image, imageSize, channels);
        } catch (IOException | RuntimeException e) {
            // Corrupt or truncated files make ImageIO throw all sorts of things; skip and count them.
            return null;
        }
    }
}
