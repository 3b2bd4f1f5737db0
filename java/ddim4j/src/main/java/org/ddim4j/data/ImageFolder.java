package org.ddim4j.data;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/**
 * A folder of JPEG and PNG images, searched recursively (e.g. an extracted Oxford Flowers 102 or
 * Oxford-IIIT Pets). Each image is centre-cropped to a square and resized, as the reference does, once.
 *
 * <p>Files that cannot be used are skipped: those that fail to decode; truncated or corrupt ones
 * (ImageIO's errors and warnings), rather than training on half-decoded pixels; and images over
 * {@link #MAX_PIXELS} pixels, refused from their header before any pixel is decoded, since a small
 * file may declare a huge image (raise the limit with {@code -Dddim4j.maxImagePixels=N}). One
 * warning (System.Logger {@code org.ddim4j.data.ImageFolder}) names every skipped file with its
 * reason, and {@link Dataset#skippedFiles()} lists them. When every image lies in a first-level subfolder, the
 * subfolders name the classes ({@code flowers/rose/*.jpg}, {@code flowers/tulip/*.jpg}) and the dataset is labelled.
 */
public final class ImageFolder {
    /** The largest image accepted by default, in pixels: 4096 x 4096 (64 MiB once decoded, per decoding thread). */
    public static final long MAX_PIXELS = 4096L * 4096L;
    private static final System.Logger LOG = System.getLogger(ImageFolder.class.getName());
    /** The JDK JPEG reader's warnings about metadata it ignores: the pixels are whole. */
    private static final Set<String> HARMLESS_WARNINGS = Set.of("Embedded color profile is invalid; ignored",
            "JFIF markers not allowed in JFIF JPEG thumbnail; ignored");

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
        long maxPixels = maxPixels();
        float[][] decoded = new float[files.size()][];
        String[] failures = new String[files.size()];
        IntStream.range(0, files.size()).parallel().forEach(i -> {
            try {
                decoded[i] = decode(files.get(i), channels, imageSize, maxPixels);
            } catch (IOException e) {
                failures[i] = reason(e);
            }
        });
        List<Dataset.SkippedFile> skipped = new ArrayList<>();
        for (int i = 0; i < files.size(); i++) {
            if (failures[i] != null) {
                skipped.add(new Dataset.SkippedFile(files.get(i), failures[i]));
            }
        }
        if (!skipped.isEmpty()) {
            LOG.log(System.Logger.Level.WARNING, "skipped " + skipped.size() + " of " + files.size() + " image files under " + directory
                    + ": " + describe(directory, skipped));
        }
        if (skipped.size() == files.size()) {
            throw new IllegalArgumentException("none of the " + files.size() + " image files under " + directory + " could be decoded, e.g. "
                    + describe(directory, skipped.subList(0, Math.min(3, skipped.size()))));
        }
        ImageCache.Store store = ImageCache.allocate(files.size() - skipped.size(), channels, imageSize);
        List<Path> kept = new ArrayList<>();
        for (int i = 0; i < decoded.length; i++) {
            if (decoded[i] != null) {
                store.put(kept.size(), decoded[i]);
                kept.add(files.get(i));
            }
        }
        Dataset dataset = new Dataset(store, skipped, directory.toString());
        return labelledBySubfolder(directory, kept).map(labels -> dataset.withLabels(labels.labels(), labels.classNames())).orElse(dataset);
    }

    private record Labels(int[] labels, List<String> classNames) {}

    /**
     * Classes from first-level subfolders, when every image lies in one ({@code pets/cat/1.jpg}: class "cat"); classes
     * are the subfolders' names in sorted order. A folder with images of its own, or no subfolders, is unlabelled.
     */
    private static java.util.Optional<Labels> labelledBySubfolder(Path directory, List<Path> files) {
        List<String> folders = new ArrayList<>();
        for (Path file : files) {
            Path relative = directory.relativize(file);
            if (relative.getNameCount() < 2) {
                return java.util.Optional.empty();
            }
            folders.add(relative.getName(0).toString());
        }
        List<String> classNames = folders.stream().distinct().sorted().toList();
        int[] labels = folders.stream().mapToInt(name -> java.util.Collections.binarySearch(classNames, name)).toArray();
        return java.util.Optional.of(new Labels(labels, classNames));
    }

    /** One JPEG or PNG file as a one-image dataset (centre-cropped and resized); an unusable file is an error. */
    public static Dataset loadFile(Path file, int channels, int imageSize) {
        float[] image;
        try {
            image = decode(file, channels, imageSize, maxPixels());
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot use " + file + " as a JPEG or PNG image: " + reason(e), e);
        }
        ImageCache.Store store = ImageCache.allocate(1, channels, imageSize);
        store.put(0, image);
        return new Dataset(store, List.of(), file.toString());
    }

    static boolean isImage(Path file) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        return name.endsWith(".jpg") || name.endsWith(".jpeg") || name.endsWith(".png");
    }

    private static long maxPixels() {
        return Long.getLong("ddim4j.maxImagePixels", MAX_PIXELS);
    }

    /** The image's planes; the exception's message says why the file cannot be used. */
    private static float[] decode(Path file, int channels, int imageSize, long maxPixels) throws IOException {
        try {
            return ImageTransforms.toModelInput(read(file, maxPixels), imageSize, channels);
        } catch (RuntimeException e) {
            // ImageIO's readers throw unchecked exceptions too on some corrupt files.
            throw new IOException("corrupt: " + e, e);
        }
    }

    /** The file's first image: its size checked from the header before decoding, and refused if the reader had to patch it up. */
    private static BufferedImage read(Path file, long maxPixels) throws IOException {
        try (ImageInputStream input = ImageIO.createImageInputStream(file.toFile())) {
            Iterator<ImageReader> readers = input == null ? null : ImageIO.getImageReaders(input);
            if (readers == null || !readers.hasNext()) {
                throw new IOException("not an image ImageIO can read");
            }
            ImageReader reader = readers.next();
            try {
                reader.setInput(input, true, true);
                int width = reader.getWidth(0);
                int height = reader.getHeight(0);
                if (width < 1 || height < 1) {
                    throw new IOException("empty image (" + width + "x" + height + ")");
                }
                if ((long) width * height > maxPixels) {
                    throw new IOException(String.format(Locale.ROOT, "%dx%d is over the limit of %,d pixels (-Dddim4j.maxImagePixels)",
                            width, height, maxPixels));
                }
                List<String> warnings = new ArrayList<>();
                reader.addIIOReadWarningListener((source, warning) -> {
                    if (!HARMLESS_WARNINGS.contains(warning)) {
                        warnings.add(warning);
                    }
                });
                BufferedImage image = reader.read(0);
                if (!warnings.isEmpty()) {
                    // The JPEG reader fills what a truncated file lacks with grey and only warns.
                    throw new IOException("truncated or corrupt: " + String.join("; ", warnings));
                }
                return image;
            } finally {
                reader.dispose();
            }
        }
    }

    /** An exception's message and its cause's (ImageIO's "Error reading PNG image data" says why only in its cause). */
    private static String reason(IOException e) {
        Throwable cause = e.getCause();
        return cause != null && cause.getMessage() != null && !(cause instanceof RuntimeException)
                ? e.getMessage() + ": " + cause.getMessage()
                : e.getMessage();
    }

    private static String describe(Path directory, List<Dataset.SkippedFile> skipped) {
        return skipped.stream().map(file -> directory.relativize(file.file()) + " (" + file.reason() + ")")
                .collect(Collectors.joining(", "));
    }
}
