package org.ddim4j.data;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * IDX label files, the MNIST / Fashion-MNIST format (gzipped or not): a big-endian header (magic
 * 0x00000801: unsigned bytes, 1 dimension), the count, then one byte per image, its class.
 */
public final class IdxLabels {
    private static final int MAGIC_UBYTE_1D = 0x00000801;

    /** Fashion-MNIST's classes, in label order (0 T-shirt/top ... 9 Ankle boot). */
    public static final List<String> FASHION_MNIST_CLASSES = List.of("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
            "Shirt", "Sneaker", "Bag", "Ankle boot");

    private IdxLabels() {}

    /** The first {@code limit} labels of {@code file} (all of them when there are fewer), each 0..255. */
    public static int[] read(Path file, int limit) {
        if (limit < 1) {
            throw new IllegalArgumentException("limit must be >= 1, got " + limit);
        }
        try (InputStream raw = new BufferedInputStream(Files.newInputStream(file))) {
            DataInputStream in = new DataInputStream(IdxImages.gunzipIfNeeded(raw));
            int magic = in.readInt();
            if (magic != MAGIC_UBYTE_1D) {
                throw malformed(file, String.format("magic number 0x%08x is not 0x%08x (unsigned-byte labels)", magic, MAGIC_UBYTE_1D));
            }
            int count = in.readInt();
            if (count < 1) {
                throw malformed(file, "implausible label count " + count);
            }
            byte[] bytes = new byte[Math.min(count, limit)];
            in.readFully(bytes);
            int[] labels = new int[bytes.length];
            for (int i = 0; i < bytes.length; i++) {
                labels[i] = Byte.toUnsignedInt(bytes[i]);
            }
            return labels;
        } catch (EOFException e) {
            throw malformed(file, "truncated: fewer labels than the header announces");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * The label file that goes with IDX images by MNIST's naming: {@code train-images-idx3-ubyte[.gz]} beside
     * {@code train-labels-idx1-ubyte[.gz]} (gzipped or not), if it exists.
     */
    public static Optional<Path> besideImages(Path images) {
        String name = images.getFileName().toString();
        if (!name.contains("images-idx3")) {
            return Optional.empty();
        }
        String base = name.replace("images-idx3", "labels-idx1").replaceFirst("\\.gz$", "");
        for (String candidate : List.of(base + ".gz", base)) {
            Path labels = images.resolveSibling(candidate);
            if (Files.isRegularFile(labels)) {
                return Optional.of(labels);
            }
        }
        return Optional.empty();
    }

    /**
     * {@code images} labelled from {@code labelFile}: the file must hold a label for every image. Classes are named
     * {@code classNames} when given (each label must be one of them), else by number, 0 .. the largest label.
     */
    public static Dataset label(Dataset images, Path labelFile, List<String> classNames) {
        int[] labels = read(labelFile, images.size());
        if (labels.length != images.size()) {
            throw malformed(labelFile, "it holds " + labels.length + " labels for " + images.size() + " images");
        }
        List<String> names = classNames;
        if (names == null || names.isEmpty()) {
            int largest = java.util.Arrays.stream(labels).max().orElse(0);
            names = new ArrayList<>();
            for (int i = 0; i <= largest; i++) {
                names.add(Integer.toString(i));
            }
        }
        for (int label : labels) {
            if (label >= names.size()) {
                throw malformed(labelFile, "label " + label + " is not one of its " + names.size() + " classes");
            }
        }
        return images.withLabels(labels, names);
    }

    private static IllegalArgumentException malformed(Path file, String why) {
        return new IllegalArgumentException("malformed IDX label file " + file + ": " + why);
    }
}
