package org.ddim4j.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

import org.ddim4j.Ddim;
import org.ddim4j.ImageBatch;
import org.ddim4j.ImageSink;
import org.ddim4j.ModelConfig;
import org.ddim4j.Noise;
import org.ddim4j.SampleOptions;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "sample", mixinStandardHelpOptions = true,
        description = "Generate images and write them as one grid (PNG or JPEG), or one PNG per image with --each.")
final class SampleCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    SamplingOptions sampling = new SamplingOptions();

    @Option(names = {"-n", "--count"}, description = "images to generate (default: 16, or the images in --noise-in)")
    Integer count;

    @Option(names = "--first-index", defaultValue = "0", paramLabel = "I",
            description = "start at image I of the seed's sequence, e.g. to continue a large request (default: ${DEFAULT-VALUE})")
    long firstIndex;

    @Option(names = {"-o", "--out"}, paramLabel = "PNG", description = "grid to write (default: samples.png, none with --each)")
    Path out;

    @Option(names = "--each", paramLabel = "DIR",
            description = "stream each image to DIR/image-NNNNNN.png as its batch finishes (for large counts)")
    Path each;

    @Option(names = "--columns", description = "grid columns (default: the square root of the count, rounded up)")
    Integer columns;

    @Option(names = "--noise-in", paramLabel = "NPY", description = "start from this noise (.npy, [N, C, H, W]) instead of the seed's")
    Path noiseIn;

    @Option(names = "--noise-out", paramLabel = "NPY", description = "write the noise each image started from (.npy)")
    Path noiseOut;

    @Mixin
    RuntimeOptions runtime = new RuntimeOptions();

    @Override
    public Integer call() {
        sampling.validate();
        if (each != null && out != null) {
            throw new IllegalArgumentException("--each streams single images; drop --out, or drop --each for a grid");
        }
        if (out != null) {
            ImageBatch.imageFormat(out); // a bad file name fails now, not after the work
        }
        if (columns != null && columns < 1) {
            throw new IllegalArgumentException("--columns must be >= 1, got " + columns);
        }
        if (sampling.allClasses() && (count != null || noiseIn != null)) {
            throw new IllegalArgumentException("--class all draws --columns images per class (default " + COLUMNS_PER_CLASS
                    + "): drop --count and --noise-in");
        }
        Noise noise = noiseIn == null ? null : Noise.read(noiseIn);
        int images = count != null ? count : noise != null ? noise.count() : SampleOptions.DEFAULT_COUNT;
        PrintWriter stdout = spec.commandLine().getOut();
        try (Ddim ddim = Ddim.open(sampling.model, runtime.device()); SamplingProgress progress = sampling.progress("sample")) {
            SampleOptions.Builder builder;
            if (sampling.allClasses()) {
                builder = oneRowPerClass(ddim.config());
                images = builder.build().count();
            } else {
                builder = sampling.builder(images, ddim.config()).noise(noise).count(images);
            }
            SampleOptions options = builder.firstIndex(firstIndex).listener(progress).build();
            long start = System.nanoTime();
            List<Noise> noises = new ArrayList<>();
            ImageBatch grid = null;
            if (each != null) {
                ImageSink files = ImageSink.pngFiles(each);
                ddim.sample(options, (first, batch) -> {
                    files.accept(first, batch);
                    if (noiseOut != null) {
                        noises.add(batch.startingNoise().orElseThrow());
                    }
                });
            } else {
                grid = ddim.sample(options);
                noises.add(grid.startingNoise().orElseThrow());
            }
            progress.close();
            double seconds = (System.nanoTime() - start) / 1e9;
            Path gridFile = out != null ? out : each == null ? Path.of("samples.png") : null;
            if (grid != null) {
                int gridColumns = columns != null ? columns
                        : sampling.allClasses() ? COLUMNS_PER_CLASS : (int) Math.ceil(Math.sqrt(images));
                grid.writeGrid(gridFile, gridColumns);
            }
            if (noiseOut != null) {
                Noise.concat(noises).write(noiseOut);
            }
            stdout.printf("wrote %d image(s) (%s, %d steps, seed %d%s, %.1f s on %s) to %s%n", images, options.sampler(),
                    options.steps(), options.seed(), describeClasses(ddim.config(), options), seconds, ddim.device(),
                    gridFile != null ? gridFile.toAbsolutePath() : each.toAbsolutePath());
            if (noiseOut != null) {
                stdout.printf("wrote their starting noise to %s%n", noiseOut.toAbsolutePath());
            }
        }
        return 0;
    }

    /** Images per class with --class all when --columns is not given. */
    static final int COLUMNS_PER_CLASS = 8;

    /** --class all: --columns images of each class, class by class, so that each grid row is one class. */
    private SampleOptions.Builder oneRowPerClass(ModelConfig config) {
        if (!config.isClassConditional()) {
            throw new IllegalArgumentException("--class all needs a class-conditional model; " + sampling.model + " is unconditional");
        }
        int perClass = columns != null ? columns : COLUMNS_PER_CLASS;
        return sampling.builder(1).guidance(sampling.guidance).classRows(config.classes(), perClass);
    }

    private static String describeClasses(ModelConfig config, SampleOptions options) {
        if (options.classes().isEmpty()) {
            return "";
        }
        String which = options.classes().size() == 1 ? "class " + config.className(options.classes().get(0)) : "one row per class";
        return ", " + which + ", guidance " + options.guidance();
    }
}
