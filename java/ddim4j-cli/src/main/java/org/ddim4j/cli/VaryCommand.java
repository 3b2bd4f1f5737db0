package org.ddim4j.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import org.ddim4j.Ddim;
import org.ddim4j.ImageBatch;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "vary", mixinStandardHelpOptions = true,
        description = "Variations of an image (SDEdit): noise it to t = --strength, then denoise; writes the original and "
                + "--count variations side by side.")
final class VaryCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    SamplingOptions sampling = new SamplingOptions();

    @Option(names = "--image", required = true, paramLabel = "FILE", description = "the image (PNG/JPEG; cropped and resized to the model)")
    Path image;

    @Option(names = "--strength", defaultValue = "0.5",
            description = "in (0, 1]: how far to noise the image; small stays close, 1 keeps little (default: ${DEFAULT-VALUE})")
    double strength;

    @Option(names = {"-n", "--count"}, defaultValue = "4", description = "variations, each from its own noise (default: ${DEFAULT-VALUE})")
    int count;

    @Option(names = {"-o", "--out"}, defaultValue = "variations.png", paramLabel = "PNG", description = "(default: ${DEFAULT-VALUE})")
    Path out;

    @Mixin
    RuntimeOptions runtime = new RuntimeOptions();

    @Override
    public Integer call() {
        sampling.validate();
        ImageBatch.imageFormat(out); // a bad file name fails now, not after the work
        if (count < 1) {
            throw new IllegalArgumentException("--count must be >= 1, got " + count);
        }
        if (!(strength > 0 && strength <= 1)) {
            throw new IllegalArgumentException("--strength must lie in (0, 1], got " + strength);
        }
        PrintWriter stdout = spec.commandLine().getOut();
        try (Ddim ddim = Ddim.open(sampling.model, runtime.device()); SamplingProgress progress = sampling.progress("vary")) {
            ImageBatch original = InputImages.read(image.toString(), ddim.config(), 1);
            ImageBatch varied = ddim.vary(original.repeat(count), strength, sampling.builder(count, ddim.config()).listener(progress).build());
            progress.close();
            ImageBatch.concat(original, varied).writeGrid(out, count + 1);
            stdout.printf("wrote the original and %d variation(s) at strength %.2f to %s%n", count, strength, out.toAbsolutePath());
        }
        return 0;
    }
}
