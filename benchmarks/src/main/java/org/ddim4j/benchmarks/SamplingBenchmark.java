package org.ddim4j.benchmarks;

import java.util.concurrent.TimeUnit;

import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.ImageBatch;
import org.ddim4j.ModelConfig;
import org.ddim4j.SampleOptions;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Sampling throughput through the Java API, on the CPU, for an untrained model (weights do not
 * change the cost). Divide the score by {@code count} for images per second.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@Warmup(iterations = 2, time = 10)
@Measurement(iterations = 3, time = 10)
public class SamplingBenchmark {
    /** "fashion": 1x32x32 (Fashion-MNIST); "reference": 3x64x64. */
    @Param({"fashion", "reference"})
    public String config;

    @Param({"16"})
    public int count;

    @Param({"20"})
    public int steps;

    private Ddim ddim;
    private SampleOptions options;

    @Setup(Level.Trial)
    public void setUp() {
        ModelConfig modelConfig = config.equals("fashion")
                ? ModelConfig.builder().channels(1).imageSize(32).build()
                : ModelConfig.defaults();
        ddim = Ddim.create(modelConfig, Device.cpu(), 1);
        options = SampleOptions.builder().count(count).steps(steps).seed(1).build();
    }

    @Benchmark
    public ImageBatch sample() {
        return ddim.sample(options);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ddim.close();
    }
}
