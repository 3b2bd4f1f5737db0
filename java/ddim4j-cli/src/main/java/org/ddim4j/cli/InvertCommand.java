package org.ddim4j.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import org.ddim4j.Ddim;
import org.ddim4j.ImageBatch;
import org.ddim4j.Noise;
import org.ddim4j.SampleOptions;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "invert", mixinStandardHelpOptions = true,
        description = {"DDIM inversion: find the noise that generates the given images, write it (.npy), and check it by "
                + "regenerating them. The grid shows the originals (top row) over the reconstructions."})
final class InvertCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    SamplingOptions sampling = new SamplingOptions();

    @Option(names = "--images", required = true, paramLabel = "SPEC",
            description = "a PNG/JPEG file, a folder of them, an IDX file or fashion-mnist")
    String images;

    @Option(names = "--limit", defaultValue = "8", description = "images to invert at most (default: ${DEFAULT-VALUE})")
    int limit;

    @Option(names = "--noise-out", required = true, paramLabel = "NPY", description = "where to write the noise (.npy)")
    Path noiseOut;

    @Option(names = {"-o", "--out"}, defaultValue = "inversion.png", paramLabel = "PNG",
            description = "originals over reconstructions (default: ${DEFAULT-VALUE})")
    Path out;

    @Mixin
    RuntimeOptions runtime = new RuntimeOptions();

    @Override
    public Integer call() {
        sampling.validate();
        ImageBatch.imageFormat(out); // a bad file name fails now, not after the work
        if (limit < 1) {
            throw new IllegalArgumentException("--limit must be >= 1, got " + limit);
        }
        PrintWriter stdout = spec.commandLine().getOut();
        try (Ddim ddim = Ddim.open(sampling.model, runtime.device())) {
            ImageBatch originals = InputImages.read(images, ddim.config(), limit);
            Noise noise;
            try (SamplingProgress progress = sampling.progress("invert")) {
                noise = ddim.invert(originals, sampling.builder(1, ddim.config()).listener(progress).build());
            }
            noise.write(noiseOut);
            ImageBatch reconstructed;
            try (SamplingProgress progress = sampling.progress("regenerate")) {
                SampleOptions regenerate = sampling.builder(1, ddim.config()).noise(noise).listener(progress).build();
                reconstructed = ddim.sample(regenerate);
            }
            ImageBatch.concat(originals, reconstructed).writeGrid(out, originals.count());
            stdout.printf("inverted %d image(s) in %d steps to %s; regenerated with mean absolute pixel error %.4f: %s%n",
                    originals.count(), sampling.steps, noiseOut.toAbsolutePath(), reconstructed.meanAbsoluteDifference(originals),
                    out.toAbsolutePath());
        }
        return 0;
    }
}
