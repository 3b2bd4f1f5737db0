package org.ddim4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageCacheTest {
    @TempDir
    Path dir;

    @Test
    void theOnDiskCacheLeavesNoFileEvenWhileInUse() throws IOException {
        String oldLimit = System.getProperty("ddim4j.cache.memoryLimitMiB");
        String oldDir = System.getProperty("ddim4j.cache.dir");
        System.setProperty("ddim4j.cache.memoryLimitMiB", "0");
        System.setProperty("ddim4j.cache.dir", dir.toString());
        try {
            ImageCache.Store store = ImageCache.allocate(3, 1, 4);
            float[] image = new float[16];
            image[5] = 0.5f;
            store.put(2, image);
            try (Stream<Path> files = Files.list(dir)) {
                assertEquals(0, files.count(), "a killed JVM would leave this file behind");
            }
            assertArrayEquals(image, store.segment().asSlice(2 * 16 * Float.BYTES, 16 * Float.BYTES).toArray(ValueLayout.JAVA_FLOAT));
        } finally {
            restore("ddim4j.cache.memoryLimitMiB", oldLimit);
            restore("ddim4j.cache.dir", oldDir);
        }
    }

    @Test
    void aMemoryMappedLoadEqualsTheInMemoryOne() {
        Dataset inMemory = Datasets.fashionMnist(1, 32, 300);
        String oldLimit = System.getProperty("ddim4j.cache.memoryLimitMiB");
        String oldDir = System.getProperty("ddim4j.cache.dir");
        System.setProperty("ddim4j.cache.memoryLimitMiB", "0");  // every load goes to a mapped file
        System.setProperty("ddim4j.cache.dir", dir.toString());
        try {
            Dataset mapped = Datasets.fashionMnist(1, 32, 300);
            assertEquals(inMemory.size(), mapped.size());
            assertArrayEquals(inMemory.range(0, 300), mapped.range(0, 300));
            int[] positions = Dataset.shuffled(300, 5);
            assertArrayEquals(inMemory.batch(positions), mapped.batch(positions));
        } finally {
            restore("ddim4j.cache.memoryLimitMiB", oldLimit);
            restore("ddim4j.cache.dir", oldDir);
        }
    }

    private static void restore(String property, String value) {
        if (value == null) {
            System.clearProperty(property);
        } else {
            System.setProperty(property, value);
        }
    }
}
