package org.ddim4j;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Objects;

import javax.imageio.ImageIO;

/**
 * A batch of images as NCHW floats in [0, 1]. Channels: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
 * Immutable: {@link #pixels()} returns a copy.
 */
public final class ImageBatch {
    /** Pixels between grid cells. */
    private static final int GRID_GAP = 2;

    private final int count;
    private final int channels;
    private final int height;
    private final int width;
    private final float[] pixels;

    /** Wraps a copy of {@code pixels}, which must hold count x channels x height x width values. */
    public ImageBatch(int count, int channels, int height, int width, float[] pixels) {
        if (count < 0 || channels < 1 || channels > 4 || height < 1 || width < 1) {
            throw new IllegalArgumentException("bad batch shape " + count + "x" + channels + "x" + height + "x" + width);
        }
        Objects.requireNonNull(pixels, "pixels");
        if ((long) count * channels * height * width != pixels.length) {
            throw new IllegalArgumentException("a " + count + "x" + channels + "x" + height + "x" + width
                    + " batch needs " + (long) count * channels * height * width + " floats, got " + pixels.length);
        }
        this.count = count;
        this.channels = channels;
        this.height = height;
        this.width = width;
        this.pixels = pixels.clone();
    }

    public int count() {
        return count;
    }

    public int channels() {
        return channels;
    }

    public int height() {
        return height;
    }

    public int width() {
        return width;
    }

    /** A copy of all pixels, NCHW, in [0, 1]. */
    public float[] pixels() {
        return pixels.clone();
    }

    /** Image {@code i} as a BufferedImage: TYPE_BYTE_GRAY for 1 channel, TYPE_INT_RGB for 3, TYPE_INT_ARGB with alpha. */
    public BufferedImage image(int i) {
        Objects.checkIndex(i, count);
        BufferedImage image = new BufferedImage(width, height, imageType());
        int plane = height * width;
        int base = i * channels * plane;
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int offset = base + y * width + x;
                int first = toByte(pixels[offset]);
                if (channels == 1) {
                    image.getRaster().setSample(x, y, 0, first);
                    continue;
                }
                int argb = switch (channels) {
                    case 2 -> toByte(pixels[offset + plane]) << 24 | first << 16 | first << 8 | first;
                    case 3 -> 0xff000000 | first << 16 | toByte(pixels[offset + plane]) << 8 | toByte(pixels[offset + 2 * plane]);
                    default -> toByte(pixels[offset + 3 * plane]) << 24 | first << 16
                            | toByte(pixels[offset + plane]) << 8 | toByte(pixels[offset + 2 * plane]);
                };
                image.setRGB(x, y, argb);
            }
        }
        return image;
    }

    /** Writes image {@code i} as a PNG, atomically (a temporary file beside it, then a rename). */
    public void writePng(int i, Path path) {
        writePng(image(i), path);
    }

    /** Writes all images as one PNG grid with {@code columns} per row, atomically. */
    public void writeGrid(Path path, int columns) {
        writePng(grid(columns), path);
    }

    /** All images in a grid with {@code columns} per row, separated by a 2-pixel gap. */
    public BufferedImage grid(int columns) {
        if (columns < 1) {
            throw new IllegalArgumentException("columns must be >= 1, got " + columns);
        }
        if (count == 0) {
            throw new IllegalStateException("an empty batch has no grid");
        }
        int used = Math.min(columns, count);
        int rows = (count + used - 1) / used;
        BufferedImage grid = new BufferedImage(used * width + (used - 1) * GRID_GAP, rows * height + (rows - 1) * GRID_GAP, imageType());
        Graphics2D graphics = grid.createGraphics();
        try {
            graphics.setColor(Color.BLACK);
            graphics.fillRect(0, 0, grid.getWidth(), grid.getHeight());
            for (int i = 0; i < count; i++) {
                graphics.drawImage(image(i), (i % used) * (width + GRID_GAP), (i / used) * (height + GRID_GAP), null);
            }
        } finally {
            graphics.dispose();
        }
        return grid;
    }

    private int imageType() {
        return switch (channels) {
            case 1 -> BufferedImage.TYPE_BYTE_GRAY;
            case 3 -> BufferedImage.TYPE_INT_RGB;
            default -> BufferedImage.TYPE_INT_ARGB;
        };
    }

    private static int toByte(float value) {
        return Math.round(Math.clamp(value, 0f, 1f) * 255f);
    }

    /** Writes any image as a PNG, atomically (a temporary file beside it, then a rename), creating missing directories. */
    public static void writePng(BufferedImage image, Path path) {
        Path target = path.toAbsolutePath();
        Path temp = null;
        try {
            Path directory = target.getParent();
            Files.createDirectories(directory);
            temp = Files.createTempFile(directory, "." + target.getFileName(), ".tmp");
            if (!ImageIO.write(image, "png", temp.toFile())) {
                throw new IOException("no PNG writer available");
            }
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
        } finally {
            if (temp != null) {
                try {
                    Files.deleteIfExists(temp);
                } catch (IOException ignored) {
                    // best effort: the temporary file is hidden and harmless
                }
            }
        }
    }
}
