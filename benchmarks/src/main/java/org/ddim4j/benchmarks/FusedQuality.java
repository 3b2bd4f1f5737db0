package org.ddim4j.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.FeatureExtractor;
import org.ddim4j.Features;
import org.ddim4j.ImageBatch;
import org.ddim4j.Kid;
import org.ddim4j.Network;
import org.ddim4j.Precision;
import org.ddim4j.SampleOptions;
import org.ddim4j.data.Dataset;
import org.ddim4j.data.Datasets;

import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Does the fused bfloat16 plan draw as well as float32? KID (the shipped extractor, Fashion-MNIST's 10,000 test
 * images, 100 subsets of 1,000) of {@code count} samples of the shipped model in float32 (the default network) and in
 * bfloat16 (the fused bfloat16 plan), from the same seed; the eager float32 network for reference. The bar:
 * |KID bf16 - KID f32| &lt;= 0.01. Needs a CPU with AVX512-BF16 or AMX ({@link Ddim#hasFusedBfloat16()}); elsewhere it
 * says so and measures float32 alone.
 *
 * <p>Usage: {@code FusedQuality MODEL OUT.json [count] [steps]}.
 */
public final class FusedQuality {
    private FusedQuality() {}

    public static void main(String[] args) throws IOException {
        Path model = Path.of(args[0]);
        Path out = Path.of(args[1]);
        int count = args.length > 2 ? Integer.parseInt(args[2]) : 1000;
        int steps = args.length > 3 ? Integer.parseInt(args[3]) : 20;
        Ddim.setThreads(0);
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("model", model.toString());
        report.put("count", count);
        report.put("steps", steps);
        report.put("fused_bfloat16", Ddim.hasFusedBfloat16());
        Kid.Options kid = new Kid.Options(100, Math.min(count, 1000), 0);
        try (FeatureExtractor extractor = FeatureExtractor.open(FeatureExtractor.defaultPath(), Device.cpu());
             Ddim ddim = Ddim.open(model, Device.cpu())) {
            Dataset test = Datasets.fashionMnistTest(1, ddim.config().imageSize(), Integer.MAX_VALUE);
            List<Features> parts = new ArrayList<>();
            for (int from = 0; from < test.size(); from += 2000) {
                parts.add(extractor.features(test.range(from, Math.min(test.size(), from + 2000)), test.channels(), test.imageSize()));
            }
            Features real = Features.concat(parts);
            SampleOptions.Builder options = SampleOptions.builder().count(count).steps(steps).seed(2026);
            Map<String, SampleOptions> variants = new LinkedHashMap<>();
            variants.put("float32 (default: fused)", options.build());
            variants.put("float32 eager", options.network(Network.EAGER).build());
            if (Ddim.hasFusedBfloat16()) {
                variants.put("bfloat16 fused", options.network(Network.FUSED).precision(Precision.BFLOAT16).build());
            }
            Map<String, Object> kids = new LinkedHashMap<>();
            for (var variant : variants.entrySet()) {
                long start = System.nanoTime();
                ImageBatch images = ddim.sample(variant.getValue());
                double seconds = (System.nanoTime() - start) / 1e9;
                Kid.Result result = Kid.compute(real, extractor.features(images), kid);
                kids.put(variant.getKey(), Map.of("kid", result.kid(), "std", result.std(), "sample_seconds", seconds));
                System.err.printf("%s: KID %.4f +- %.4f (%.1f s of sampling)%n", variant.getKey(), result.kid(), result.std(), seconds);
            }
            report.put("kid", kids);
            if (Ddim.hasFusedBfloat16()) {
                @SuppressWarnings("unchecked")
                double f32 = (double) ((Map<String, Object>) kids.get("float32 (default: fused)")).get("kid");
                @SuppressWarnings("unchecked")
                double bf16 = (double) ((Map<String, Object>) kids.get("bfloat16 fused")).get("kid");
                report.put("kid_difference_bf16_minus_f32", bf16 - f32);
                report.put("within_0_01", Math.abs(bf16 - f32) <= 0.01);
            } else {
                report.put("note", "no AVX512-BF16 or AMX on this CPU: the bfloat16 plan's quality is unmeasured here");
            }
        }
        String json = new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(report);
        Files.writeString(out, json + "\n");
        System.out.println(json);
    }
}
