package org.ddim4j.benchmarks;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.SampleOptions;

import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * What classifier-free guidance costs per image, with the default network: the shipped class model sampled with
 * classes and guidance 3 (both halves in one network batch) against the shipped unconditional model, and against
 * the class model without classes (one half). Interleaved A/B rounds in one process, in an order rotated every
 * round; the ratio is taken per round (guided time / unconditional time), then its median. The bar: <= 2.1x.
 *
 * <p>Usage: {@code GuidanceCost CLASS_MODEL UNCONDITIONAL_MODEL [rounds] [count] [steps]}; prints one JSON line.
 */
public final class GuidanceCost {
    private GuidanceCost() {}

    public static void main(String[] args) throws Exception {
        Path classModel = Path.of(args[0]);
        Path unconditionalModel = Path.of(args[1]);
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 5;
        int count = args.length > 3 ? Integer.parseInt(args[3]) : 64;
        int steps = args.length > 4 ? Integer.parseInt(args[4]) : 20;
        Ddim.setThreads(0);
        List<Integer> classes = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            classes.add(i % 10);
        }
        SampleOptions.Builder base = SampleOptions.builder().count(count).steps(steps).seed(2026);
        SampleOptions guided = base.classes(classes).guidance(3).build();
        SampleOptions plain = SampleOptions.builder().count(count).steps(steps).seed(2026).build();
        Map<String, List<Double>> seconds = new LinkedHashMap<>();
        List<Double> versusUnconditional = new ArrayList<>();
        List<Double> versusNoClass = new ArrayList<>();
        try (Ddim withClasses = Ddim.open(classModel, Device.cpu()); Ddim unconditional = Ddim.open(unconditionalModel, Device.cpu())) {
            List<Runnable> sides = List.of(() -> withClasses.sample(guided), () -> unconditional.sample(plain),
                    () -> withClasses.sample(plain));
            List<String> names = List.of("class model, guidance 3", "unconditional model", "class model, no class");
            for (Runnable side : sides) {
                side.run();  // warm-up: plans built, pages touched
            }
            for (int round = 0; round < rounds; round++) {
                double[] times = new double[sides.size()];
                for (int i = 0; i < sides.size(); i++) {
                    int which = (i + round) % sides.size();
                    long start = System.nanoTime();
                    sides.get(which).run();
                    times[which] = (System.nanoTime() - start) / 1e9;
                    seconds.computeIfAbsent(names.get(which), k -> new ArrayList<>()).add(times[which]);
                }
                versusUnconditional.add(times[0] / times[1]);
                versusNoClass.add(times[0] / times[2]);
            }
        }
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("tool", "guidance-cost");
        report.put("count", count);
        report.put("steps", steps);
        report.put("threads", Ddim.threads());
        report.put("seconds", seconds);
        report.put("guided_over_unconditional_median", median(versusUnconditional));
        report.put("guided_over_unconditional_all", versusUnconditional);
        report.put("guided_over_no_class_median", median(versusNoClass));
        System.out.println(new ObjectMapper().writeValueAsString(report));
    }

    private static double median(List<Double> values) {
        List<Double> sorted = values.stream().sorted().toList();
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }
}
