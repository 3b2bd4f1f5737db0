package org.ddim4j.data;

import java.awt.image.BufferedImage;
import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPInputStream;

/**
 * IDX image files, the MNIST / Fashion-MNIST format (gzipped or not): a big-endian header (magic
 * 0x00000803: unsigned bytes, 3 dimensions), the dimensions, then the pixels. Images are resized to
 * the requested size (bilinear) and replicated to the requested channels.
 */
public final class IdxImages {
    private static final int MAGIC_UBYTE_3D = 0x00000803;

    private IdxImages() {}

    public static Dataset load(Path file, int channels, int imageSize) {
        return load(file, channels, imageSize, Integer.MAX_VALUE);
    }

    /** Reads only the first {@code limit} images (all of them when there are fewer), without decoding the rest. */
    public static Dataset load(Path file, int channels, int imageSize, int limit) {
        if (limit < 1) {
            throw new IllegalArgumentException("limit must be >= 1, got " + limit);
        }
        try (InputStream raw = new BufferedInputStream(Files.newInputStream(file))) {
            DataInputStream in = new DataInputStream(gunzipIfNeeded(raw));
            int magic = in.readInt();
            if (magic != MAGIC_UBYTE_3D) {
                throw malformed(file, String.format("magic number 0x%08x is not 0x%08x (unsigned-byte images)", magic, MAGIC_UBYTE_3D));
            }
            int count = in.readInt();
            int rows = in.readInt();
            int columns = in.readInt();
            if (count < 1 || rows < 1 || columns < 1 || (long) rows * columns > 1 << 24) {
                throw malformed(file, "implausible dimensions " + count + "x" + rows + "x" + columns);
            }
            int used = Math.min(count, limit);
            ImageCache.Store store = ImageCache.allocate(used, channels, imageSize);
            byte[] pixels = new byte[rows * columns];
            BufferedImage image = new BufferedImage(columns, rows, BufferedImage.TYPE_BYTE_GRAY);
            for (int i = 0; i < used; i++) {
                in.readFully(pixels);
                image.getRaster().setDataElements(0, 0, columns, rows, pixels);
                store.put(i, ImageTransforms.toModelInput(image, imageSize, channels));
            }
            return new Dataset(store, List.of(), used < count ? file + " (first " + used + ")" : file.toString());
        } catch (EOFException e) {
            throw malformed(file, "truncated: fewer pixels than the header announces");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    /** Whether {@code file} starts like an IDX image file (gzipped or not): the unsigned-byte, 3-dimension magic. */
    public static boolean isIdx(Path file) {
        try (InputStream raw = new BufferedInputStream(Files.newInputStream(file))) {
            return new DataInputStream(gunzipIfNeeded(raw)).readInt() == MAGIC_UBYTE_3D;
        } catch (IOException e) {
            return false;
        }
    }

    /** The side of the file's images when they are square (28 for MNIST and Fashion-MNIST), read from its header. */
    public static int imageSize(Path file) {
        try (InputStream raw = new BufferedInputStream(Files.newInputStream(file))) {
            DataInputStream in = new DataInputStream(gunzipIfNeeded(raw));
            if (in.readInt() != MAGIC_UBYTE_3D) {
                throw malformed(file, "not an IDX image file");
            }
            in.readInt();
            int rows = in.readInt();
            int columns = in.readInt();
            if (rows < 1 || rows != columns) {
                throw malformed(file, "images of " + rows + "x" + columns + " pixels are not square");
            }
            return rows;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    static InputStream gunzipIfNeeded(InputStream in) throws IOException {
        in.mark(2);
        int first = in.read();
        int second = in.read();
        in.reset();
        return first == 0x1f && second == 0x8b ? new GZIPInputStream(in, 1 << 16) : in;
    }

    private static IllegalArgumentException malformed(Path file, String why) {
        return new IllegalArgumentException("malformed IDX file " + file + ": " + why);
    }
}
