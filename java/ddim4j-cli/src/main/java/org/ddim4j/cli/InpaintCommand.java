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

@Command(name = "inpaint", mixinStandardHelpOptions = true,
        description = "Fill the white region of --mask in an image, keeping the black region; writes --count fills side by side "
                + "after the original.")
final class InpaintCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    SamplingOptions sampling = new SamplingOptions();

    @Option(names = "--image", required = true, paramLabel = "FILE", description = "the image (PNG/JPEG; cropped and resized to the model)")
    Path image;

    @Option(names = "--mask", required = true, paramLabel = "FILE",
            description = "the mask (PNG/JPEG, resized to the model): white = generate, black = keep")
    Path mask;

    @Option(names = {"-n", "--count"}, defaultValue = "4", description = "fills to generate, each from its own noise (default: ${DEFAULT-VALUE})")
    int count;

    @Option(names = {"-o", "--out"}, defaultValue = "inpainted.png", paramLabel = "PNG", description = "(default: ${DEFAULT-VALUE})")
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
        PrintWriter stdout = spec.commandLine().getOut();
        try (Ddim ddim = Ddim.open(sampling.model, runtime.device()); SamplingProgress progress = sampling.progress("inpaint")) {
            ImageBatch original = InputImages.read(image.toString(), ddim.config(), 1);
            ImageBatch maskImage = InputImages.readMask(mask, ddim.config());
            ImageBatch filled = ddim.inpaint(original.repeat(count), maskImage, sampling.builder(count, ddim.config()).listener(progress).build());
            progress.close();
            ImageBatch.concat(original, filled).writeGrid(out, count + 1);
            stdout.printf("wrote the original and %d inpainted version(s) to %s%n", count, out.toAbsolutePath());
        }
        return 0;
    }
}
