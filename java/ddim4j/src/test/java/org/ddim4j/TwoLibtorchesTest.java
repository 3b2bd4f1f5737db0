package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * ddim4j's natives and DJL's PyTorch 2.7.1 engine in one JVM (TwoLibtorches), in both load orders: each computes
 * a correct result. The control shows what the natives' isolation prevents: the source build, on a libtorch
 * with the usual names and process-wide symbols, takes the JVM down next to DJL.
 */
class TwoLibtorchesTest {
    @TempDir
    Path dir;

    private float[] sourceBuildPixels() {
        try (Ddim ddim = Ddim.open(ChildJvm.SHIPPED_MODEL)) {
            return ddim.sample(SampleOptions.builder().count(4).steps(20).seed(42).build()).pixels();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"djl-first", "ddim4j-first"})
    void ddim4jAndDjlComputeCorrectlyInOneJvm(String order) throws Exception {
        Path pixels = dir.resolve("pixels.f32");
        ChildJvm.Result result = ChildJvm.withNatives("-XX:ErrorFile=" + dir.resolve("hs_err_%p.log"))
                .environment("XDG_CACHE_HOME", dir.resolve("cache").toString()).directory(dir)
                .run(TwoLibtorches.class.getName(), order, ChildJvm.SHIPPED_MODEL.toString(), pixels.toString());
        assertEquals(0, result.exitCode(), result.output());
        assertEquals(2, result.output().split("djl 2\\.7\\.1 matmul: \\[7\\.0, 10\\.0, 15\\.0, 22\\.0\\] conv: \\[10\\.0\\]", -1).length - 1,
                "DJL's libtorch 2.7.1 computes, before and after ddim4j's: " + result.output());
        assertTrue(result.output().contains("ddim4j 0.1.0 on libtorch 1.13"), result.output());
        assertTrue(result.output().contains("/libtorch_cpu.so") && result.output().contains("/libddim4j_torch_cpu.so"),
                "both libtorch copies are mapped: " + result.output());
        double difference = ChildJvm.maxAbsDifference(sourceBuildPixels(), ChildJvm.readFloats(pixels));
        assertTrue(difference <= 1e-4, "ddim4j's samples next to DJL differ from the source build's by " + difference);
    }

    @Test
    void withoutTheIsolationTheSecondLibtorchTakesTheJvmDown() throws Exception {
        Path build = ChildJvm.REPO.resolve("build/libddim.so");
        ChildJvm.Result result = ChildJvm.withoutNatives("-D" + NativeLibrary.PROPERTY + "=" + build, "-XX:ErrorFile=" + dir.resolve("hs_err_%p.log"))
                .directory(dir).run(TwoLibtorches.class.getName(), "djl-first", ChildJvm.SHIPPED_MODEL.toString(),
                        dir.resolve("pixels.f32").toString());
        assertNotEquals(0, result.exitCode(), result.output());
        assertTrue(result.output().contains("Tried to register multiple backend fallbacks"), result.output());
    }
}
