package org.ddim4j.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;

import org.ddim4j.Ddim;
import org.ddim4j.ModelConfig;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "info", mixinStandardHelpOptions = true, description = "Describe a model file.")
final class InfoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "FILE", description = "a model file (.safetensors)")
    Path model;

    @Mixin
    RuntimeOptions runtime = new RuntimeOptions();

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        try (Ddim ddim = Ddim.open(model, runtime.device())) {
            ModelConfig config = ddim.config();
            float[][] normalizer = ddim.normalizer();
            out.printf("model:       %s (%,d bytes)%n", model, Files.size(model));
            out.printf("image:       %d channel(s), %dx%d%n", config.channels(), config.imageSize(), config.imageSize());
            out.printf("u-net:       widths %s, block depth %d, embedding %d%n", Arrays.toString(config.widths()),
                    config.blockDepth(), config.embeddingDim());
            out.printf("schedule:    %s, signal %.4g..%.4g%n", config.schedule().kind().name().toLowerCase(java.util.Locale.ROOT),
                    config.schedule().minSignal(), config.schedule().maxSignal());
            out.printf("target:      %s%n", config.target().name().toLowerCase(java.util.Locale.ROOT));
            if (config.isClassConditional()) {
                java.util.List<String> names = new java.util.ArrayList<>();
                for (int i = 0; i < config.classes(); i++) {
                    names.add(i + " " + config.className(i));
                }
                out.printf("classes:     %d (%s)%n", config.classes(), String.join(", ", names));
            }
            out.printf("parameters:  %,d%n", ddim.parameterCount());
            out.printf("ema weights: %s%n", ddim.hasEma() ? "yes" : "no");
            out.printf("normaliser:  mean %s, std %s%n", Arrays.toString(normalizer[0]), Arrays.toString(normalizer[1]));
            out.printf("device:      %s (ddim4j %s, libtorch %s, %d thread(s))%n", ddim.device(), Ddim.version(),
                    Ddim.torchVersion(), Ddim.threads());
        }
        return 0;
    }
}
