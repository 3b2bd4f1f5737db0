package org.ddim4j.data;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Where decoded images live: on the Java heap when they fit comfortably, else in a memory-mapped
 * temporary file (deleted as soon as it is mapped), so a large image folder is decoded once and then read from the
 * page cache rather than decoded every epoch.
 *
 * <p>The threshold is {@code ddim4j.cache.memoryLimitMiB} (default 2048 MiB); the file goes to
 * {@code ddim4j.cache.dir} (default the system temporary directory).
 */
final class ImageCache {
    private ImageCache() {}

    record Store(MemorySegment segment, int count, int channels, int imageSize) {
        void put(int index, float[] image) {
            long perImage = (long) channels * imageSize * imageSize;
            MemorySegment.copy(image, 0, segment, ValueLayout.JAVA_FLOAT, index * perImage * Float.BYTES, (int) perImage);
        }
    }

    static Store allocate(int count, int channels, int imageSize) {
        long bytes = (long) count * channels * imageSize * imageSize * Float.BYTES;
        long limit = Long.getLong("ddim4j.cache.memoryLimitMiB", 2048) << 20;
        return bytes <= limit ? inMemory(count, channels, imageSize) : onDisk(count, channels, imageSize, bytes);
    }

    static Store inMemory(int count, int channels, int imageSize) {
        long floats = (long) count * channels * imageSize * imageSize;
        if (floats > Integer.MAX_VALUE - 8) {
            return onDisk(count, channels, imageSize, floats * Float.BYTES);
        }
        return new Store(MemorySegment.ofArray(new float[(int) floats]), count, channels, imageSize);
    }

    private static Store onDisk(int count, int channels, int imageSize, long bytes) {
        try {
            Path directory = Path.of(System.getProperty("ddim4j.cache.dir", System.getProperty("java.io.tmpdir")));
            Files.createDirectories(directory);
            Path file = Files.createTempFile(directory, "ddim4j-images-", ".f32");
            // On Linux DELETE_ON_CLOSE unlinks the file at once; the mapping keeps its pages, and a killed JVM leaves nothing.
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE,
                    StandardOpenOption.DELETE_ON_CLOSE)) {
                MemorySegment segment = channel.map(FileChannel.MapMode.READ_WRITE, 0, bytes, Arena.ofAuto());
                return new Store(segment, count, channels, imageSize);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the on-disk image cache: " + e.getMessage(), e);
        }
    }
}
