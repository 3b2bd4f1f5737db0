package org.ddim4j.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import org.ddim4j.Ddim;
import org.ddim4j.ImageBatch;
import org.ddim4j.SampleOptions;
import org.ddim4j.Sampler;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "sample", mixinStandardHelpOptions = true,
        description = "Generate images with DDIM and write them as one PNG grid.")
final class SampleCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "FILE", description = "a model file (.safetensors)")
    Path model;

    @Option(names = "--count", defaultValue = "16", description = "images to generate (default: ${DEFAULT-VALUE})")
    int count;

    @Option(names = "--steps", defaultValue = "20", description = "network evaluations (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--seed", defaultValue = "42", description = "noise seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--out", defaultValue = "samples.png", paramLabel = "PNG", description = "grid to write (default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--columns", description = "grid columns (default: the square root of the count, rounded up)")
    Integer columns;

    @Option(names = "--sampler", defaultValue = "DDIM",
            description = "DDIM, DDPM or DPM_SOLVER_PP_2M (default: ${DEFAULT-VALUE})")
    Sampler sampler;

    @Option(names = "--eta", defaultValue = "0", description = "DDIM's eta: 0 deterministic, 1 DDPM-like (default: ${DEFAULT-VALUE})")
    double eta;

    @Option(names = "--no-ema", description = "sample with the raw weights even when the model has EMA weights")
    boolean noEma;

    @Mixin
    RuntimeOptions runtime = new RuntimeOptions();

    @Override
    public Integer call() {
        SampleOptions options = SampleOptions.builder().count(count).steps(steps).seed(seed).useEma(!noEma).sampler(sampler)
                .eta(eta).build();
        int gridColumns = columns != null ? columns : (int) Math.ceil(Math.sqrt(count));
        if (gridColumns < 1) {
            throw new IllegalArgumentException("--columns must be >= 1, got " + gridColumns);
        }
        PrintWriter stdout = spec.commandLine().getOut();
        try (Ddim ddim = Ddim.open(model, runtime.device())) {
            long start = System.nanoTime();
            ImageBatch images = ddim.sample(options);
            double seconds = (System.nanoTime() - start) / 1e9;
            images.writeGrid(out, gridColumns);
            stdout.printf("wrote %d image(s) (%d steps, seed %d, %.1f s on %s) to %s%n", count, steps, seed, seconds,
                    ddim.device(), out.toAbsolutePath());
        }
        return 0;
    }
}
