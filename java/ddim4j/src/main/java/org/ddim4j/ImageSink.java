package org.ddim4j;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;

/** Receives images chunk by chunk from {@link Ddim#sample(SampleOptions, ImageSink)}, so large requests never sit in memory at once. */
@FunctionalInterface
public interface ImageSink {
    /**
     * @param firstIndex the sequence index of the chunk's first image (the request's firstIndex plus its position)
     * @param images the chunk, with its starting noise
     */
    void accept(long firstIndex, ImageBatch images) throws IOException;

    /** Writes each image to {@code directory/image-NNNNNN.png}, NNNNNN its sequence index. */
    static ImageSink pngFiles(Path directory) {
        return (firstIndex, images) -> {
            for (int i = 0; i < images.count(); i++) {
                images.writePng(i, directory.resolve(String.format(Locale.ROOT, "image-%06d.png", firstIndex + i)));
            }
        };
    }
}
