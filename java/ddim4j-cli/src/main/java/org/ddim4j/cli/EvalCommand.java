package org.ddim4j.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

import org.ddim4j.AtomicFiles;
import org.ddim4j.Ddim;
import org.ddim4j.tools.Evaluation;
import org.ddim4j.FeatureExtractor;
import org.ddim4j.Kid;
import org.ddim4j.ModelConfig;
import org.ddim4j.SampleOptions;
import org.ddim4j.data.Dataset;
import org.ddim4j.data.Datasets;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Judge a model as the reference does: KID and the validation losses.",
                "KID between real images and --count generated ones, and noise_loss and image_loss on the real images.",
                "With --class (class-conditional models), that class's samples against that class's real images."})
final class EvalCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    @Spec
    CommandSpec spec;

    @Option(names = "--data", required = true, paramLabel = "DIR|FILE|fashion-mnist",
            description = "real images: a folder, an image or IDX file (e.g. Fashion-MNIST's test split), or fashion-mnist")
    String data;

    @Option(names = {"-n", "--count"}, defaultValue = "1000", description = "images to generate, and real images to compare with (default: ${DEFAULT-VALUE})")
    int count;

    @Option(names = "--extractor", paramLabel = "PT",
            description = "TorchScript feature extractor (default: models/" + FeatureExtractor.DEFAULT_FILE + ", for grey 28/32-pixel images)")
    Path extractor;

    @Option(names = "--subsets", defaultValue = "100", description = "KID subsets (default: ${DEFAULT-VALUE})")
    int subsets;

    @Option(names = "--subset-size", defaultValue = "0", description = "images per KID subset; 0 = half the smaller set, at most 1000 (default)")
    int subsetSize;

    @Option(names = "--json", paramLabel = "FILE", description = "also write the figures as JSON")
    Path json;

    @Mixin
    SamplingOptions sampling = new SamplingOptions();

    @Mixin
    RuntimeOptions runtime = new RuntimeOptions();

    @Override
    public Integer call() throws Exception {
        sampling.validate();
        Kid.Options kidOptions = new Kid.Options(subsets, subsetSize, 0);
        Path extractorPath = extractor != null ? extractor : FeatureExtractor.defaultPath();
        PrintWriter stdout = spec.commandLine().getOut();
        try (Ddim ddim = Ddim.open(sampling.model, runtime.device());
             FeatureExtractor features = FeatureExtractor.open(extractorPath, ddim.device());
             SamplingProgress progress = sampling.progress("eval")) {
            ModelConfig config = ddim.config();
            SampleOptions options = sampling.builder(count, ddim.config()).listener(progress).build();
            long start = System.nanoTime();
            Evaluation result = Evaluation.run(ddim, realImages(config, options), features, count, options, kidOptions);
            progress.close();
            double seconds = (System.nanoTime() - start) / 1e9;
            Kid.Result kid = result.kid();
            stdout.printf("KID         %.5f ± %.5f  (%d subsets of %d; %d real, %d generated; %s, %d steps)%n", kid.kid(), kid.std(),
                    kid.subsets(), kid.subsetSize(), result.realCount(), result.generatedCount(), options.sampler(), options.steps());
            stdout.printf("noise_loss  %.5f%n", result.noiseLoss());
            stdout.printf("image_loss  %.5f%n", result.imageLoss());
            stdout.printf("(%.1f s; features from %s)%n", seconds, extractorPath);
            if (json != null) {
                Map<String, Object> figures = new LinkedHashMap<>();
                figures.put("model", sampling.model.toString());
                figures.put("data", data);
                figures.put("kid", kid.kid());
                figures.put("kid_std", kid.std());
                figures.put("kid_subsets", kid.subsets());
                figures.put("kid_subset_size", kid.subsetSize());
                figures.put("noise_loss", result.noiseLoss());
                figures.put("image_loss", result.imageLoss());
                figures.put("real", result.realCount());
                figures.put("generated", result.generatedCount());
                figures.put("sampler", options.sampler().toString());
                figures.put("steps", options.steps());
                figures.put("seed", options.seed());
                figures.put("extractor", extractorPath.toString());
                figures.put("seconds", seconds);
                AtomicFiles.writeString(json, JSON.writeValueAsString(figures));
            }
        }
        return 0;
    }

    /** The real images to compare with: the first --count of --data, or with --class, the first --count of that class. */
    private Dataset realImages(ModelConfig config, SampleOptions options) {
        if (options.classes().isEmpty()) {
            return Datasets.open(data, config.channels(), config.imageSize(), Math.max(count, 1));
        }
        Dataset all = Datasets.open(data, config.channels(), config.imageSize());
        if (!all.hasLabels()) {
            throw new IllegalArgumentException("--class compares with the class's real images, and " + data + " has no labels");
        }
        return all.ofClass(options.classes().get(0)).head(Math.max(count, 1));
    }
}
