package org.ddim4j.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import org.ddim4j.Ddim;
import org.ddim4j.Device;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "export", mixinStandardHelpOptions = true,
        description = "Write a model file for sampling from a model or checkpoint: no optimizer state, optionally EMA weights only and float16.")
final class ExportCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "FILE", description = "a model or checkpoint file")
    Path model;

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "FILE", description = "the model file to write")
    Path out;

    @Option(names = "--ema-only", description = "keep only the EMA weights (what sampling uses), halving the file")
    boolean emaOnly;

    @Option(names = "--half", description = "store the weights as float16 (loads as float32)")
    boolean half;

    @Override
    public Integer call() throws Exception {
        try (Ddim ddim = Ddim.open(model, Device.cpu())) {
            ddim.export(out, emaOnly, half);
        }
        spec.commandLine().getOut().printf("wrote %s (%,d bytes)%n", out.toAbsolutePath(), Files.size(out));
        return 0;
    }
}
