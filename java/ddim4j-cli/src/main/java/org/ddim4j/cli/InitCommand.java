package org.ddim4j.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;

import org.ddim4j.Ddim;
import org.ddim4j.ModelConfig;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "init", mixinStandardHelpOptions = true,
        description = "Create an untrained model file from a configuration (the reference's by default).")
final class InitCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "FILE", description = "model file to write (.safetensors)")
    Path out;

    @Mixin
    ModelOptions model = new ModelOptions();

    @Option(names = "--seed", defaultValue = "0", description = "weight initialisation seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Mixin
    RuntimeOptions runtime = new RuntimeOptions();

    @Override
    public Integer call() {
        ModelConfig config = model.spec().toConfig();
        try (Ddim ddim = Ddim.create(config, runtime.device(), seed)) {
            ddim.save(out);
            spec.commandLine().getOut().printf("wrote an untrained model (%,d parameters) to %s%n", ddim.parameterCount(),
                    out.toAbsolutePath());
        }
        return 0;
    }
}
