package org.ddim4j.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import org.ddim4j.Ddim;
import org.ddim4j.ImageBatch;
import org.ddim4j.Noise;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "interpolate", mixinStandardHelpOptions = true,
        description = "A strip of images between two noises, by spherical interpolation: images --from and --to of the seed, "
                + "or the first two images of --noise-in.")
final class InterpolateCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    SamplingOptions sampling = new SamplingOptions();

    @Option(names = "--from", defaultValue = "0", paramLabel = "I", description = "the seed's image I starts the strip (default: ${DEFAULT-VALUE})")
    long from;

    @Option(names = "--to", defaultValue = "1", paramLabel = "J", description = "the seed's image J ends it (default: ${DEFAULT-VALUE})")
    long to;

    @Option(names = "--noise-in", paramLabel = "NPY", description = "take the two ends from this noise file (images 0 and 1) instead")
    Path noiseIn;

    @Option(names = "--frames", defaultValue = "8", description = "images in the strip, >= 2 (default: ${DEFAULT-VALUE})")
    int frames;

    @Option(names = {"-o", "--out"}, defaultValue = "interpolation.png", paramLabel = "PNG", description = "the strip (default: ${DEFAULT-VALUE})")
    Path out;

    @Mixin
    RuntimeOptions runtime = new RuntimeOptions();

    @Override
    public Integer call() {
        sampling.validate();
        ImageBatch.imageFormat(out); // a bad file name fails now, not after the work
        if (frames < 2) {
            throw new IllegalArgumentException("--frames must be >= 2, got " + frames);
        }
        if (from < 0 || to < 0) {
            throw new IllegalArgumentException("--from and --to must be >= 0");
        }
        Noise ends = noiseIn == null ? null : Noise.read(noiseIn);
        if (ends != null && ends.count() < 2) {
            throw new IllegalArgumentException(noiseIn + " holds " + ends.count() + " noise(s); interpolation needs 2");
        }
        PrintWriter stdout = spec.commandLine().getOut();
        try (Ddim ddim = Ddim.open(sampling.model, runtime.device()); SamplingProgress progress = sampling.progress("interpolate")) {
            Noise start = ends != null ? ends.image(0) : ddim.noise(sampling.seed, from, 1);
            Noise end = ends != null ? ends.image(1) : ddim.noise(sampling.seed, to, 1);
            ImageBatch strip = ddim.interpolate(start, end, frames, sampling.builder(frames, ddim.config()).listener(progress).build());
            progress.close();
            strip.writeGrid(out, frames);
            stdout.printf("wrote %d interpolated image(s) to %s%n", frames, out.toAbsolutePath());
        }
        return 0;
    }
}
