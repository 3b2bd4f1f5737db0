package org.ddim4j.cli;

import java.nio.file.Files;
import java.nio.file.Path;

import org.ddim4j.ImageBatch;
import org.ddim4j.ModelConfig;
import org.ddim4j.data.Dataset;
import org.ddim4j.data.Datasets;

/** Reads the images a command edits: a PNG/JPEG file, a folder of them, or any dataset spec, at the model's size and channels. */
final class InputImages {
    private InputImages() {}

    static ImageBatch read(String spec, ModelConfig config, int limit) {
        Dataset images = Datasets.open(spec, config.channels(), config.imageSize(), limit);
        if (images.size() == 0) {
            throw new IllegalArgumentException("no images in " + spec);
        }
        return new ImageBatch(images.size(), config.channels(), config.imageSize(), config.imageSize(), images.range(0, images.size()));
    }

    /** One mask image as a one-channel batch: white (1) = generate, black (0) = keep. */
    static ImageBatch readMask(Path file, ModelConfig config) {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("no mask file " + file);
        }
        return read(file.toString(), config.toBuilder().channels(1).build(), 1);
    }
}
