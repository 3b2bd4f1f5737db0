package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import org.junit.jupiter.api.Test;

class LifecycleTest {
    @Test
    void closeIsIdempotentAndLaterCallsThrowIllegalState() {
        Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu());
        ddim.close();
        assertDoesNotThrow(ddim::close);
        assertTrue(ddim.isClosed());
        assertThrows(IllegalStateException.class, () -> ddim.sample(SampleOptions.defaults()));
        assertThrows(IllegalStateException.class, ddim::parameterCount);
        assertThrows(IllegalStateException.class, ddim::config);
        assertThrows(IllegalStateException.class, ddim::device);
        assertThrows(IllegalStateException.class, ddim::hasEma);
        assertThrows(IllegalStateException.class, ddim::normalizer);
        assertThrows(IllegalStateException.class, () -> ddim.save(Path.of("never-written.safetensors")));
    }

    @Test
    void threadsShareAnInstanceSafelyAndAgree() throws Exception {
        SampleOptions options = SampleOptions.builder().count(2).steps(3).seed(4).build();
        try (Ddim ddim = TestModels.trainedTiny(1);
                ExecutorService pool = Executors.newFixedThreadPool(4)) {
            float[] expected = ddim.sample(options).pixels();
            List<Future<float[]>> results = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                results.add(pool.submit(() -> ddim.sample(options).pixels()));
            }
            for (Future<float[]> result : results) {
                org.junit.jupiter.api.Assertions.assertArrayEquals(expected, result.get());
            }
        }
    }

    @Test
    void devicesParseAndCudaIsRefusedWithoutOne() {
        assertEquals(Device.cpu(), Device.parse("cpu"));
        assertEquals(Device.cuda(1), Device.parse("cuda:1"));
        assertEquals(Device.auto(), Device.parse("AUTO"));
        assertThrows(IllegalArgumentException.class, () -> Device.parse("tpu"));
        assertThrows(IllegalArgumentException.class, () -> Device.cuda(-1));
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.auto())) {
            assertEquals(Device.cudaDeviceCount() > 0 ? Device.cuda(0) : Device.cpu(), ddim.device());
        }
        DdimException e = assertThrows(DdimException.class,
                () -> Ddim.create(TestModels.tiny(), Device.cuda(Device.cudaDeviceCount())));
        assertEquals(Status.DEVICE, e.status());
    }

    @Test
    void threadCountDefaultsToAllProcessorsAndIsConfigurable() {
        // One count on both sides of the C boundary: the JVM's and libddim's agree.
        assertEquals(Runtime.getRuntime().availableProcessors(), Ddim.availableThreads());
        assertEquals(Ddim.availableThreads(), Ddim.threads());
        try {
            Ddim.setThreads(1);
            assertEquals(1, Ddim.threads());
        } finally {
            Ddim.setThreads(0);
        }
        assertEquals(Ddim.availableThreads(), Ddim.threads());
        IllegalArgumentException tooMany = assertThrows(IllegalArgumentException.class, () -> Ddim.setThreads(Ddim.maxThreads() + 1));
        assertTrue(tooMany.getMessage().contains("at most " + Ddim.maxThreads()), tooMany.getMessage());
        Ddim.setThreads(Ddim.maxThreads());
        Ddim.setThreads(0);
    }

    /** -Dddim4j.threads is applied when the library loads (checked in a fresh JVM), and nonsense is refused, not ignored. */
    @Test
    void theThreadsPropertyIsAppliedOrRefused() throws Exception {
        ChildJvm.Result one = ChildJvm.withoutNatives("-Dddim4j.threads=1").run(PrintVersion.class.getName(), "threads");
        assertTrue(one.output().contains("threads=1"), one.output());
        ChildJvm.Result nonsense = ChildJvm.withoutNatives("-Dddim4j.threads=abc").run(PrintVersion.class.getName(), "threads");
        assertEquals(2, nonsense.exitCode(), nonsense.output());
        assertTrue(nonsense.output().contains("IllegalArgumentException: -Dddim4j.threads must be a whole number of threads, got 'abc'"),
                nonsense.output());
        ChildJvm.Result tooMany = ChildJvm.withoutNatives("-Dddim4j.threads=100000").run(PrintVersion.class.getName(), "threads");
        assertTrue(tooMany.output().contains("IllegalArgumentException: threads must be at most"), tooMany.output());
    }

    /** -Dddim4j.cpuCache takes a number of bytes; anything else is refused when the library loads. */
    @Test
    void theCpuCachePropertyIsRefusedWhenItIsNoNumber() throws Exception {
        ChildJvm.Result off = ChildJvm.withoutNatives("-Dddim4j.cpuCache=0").run(PrintVersion.class.getName(), "threads");
        assertEquals(0, off.exitCode(), off.output());
        ChildJvm.Result nonsense = ChildJvm.withoutNatives("-Dddim4j.cpuCache=1GB").run(PrintVersion.class.getName(), "threads");
        assertEquals(2, nonsense.exitCode(), nonsense.output());
        assertTrue(nonsense.output().contains("-Dddim4j.cpuCache must be a number of bytes, got '1GB'"), nonsense.output());
        ChildJvm.Result negative = ChildJvm.withoutNatives("-Dddim4j.cpuCache=-5").run(PrintVersion.class.getName(), "threads");
        assertEquals(2, negative.exitCode(), negative.output());
    }

    /** Device.auto() on a machine without CUDA says so at INFO, once per JVM, through System.Logger. */
    @Test
    void deviceAutoLogsItsCpuFallbackOnce() throws Exception {
        assumeTrue(Device.cudaDeviceCount() == 0, "this machine has CUDA: Device.auto() does not fall back");
        ChildJvm.Result result = ChildJvm.withoutNatives().run(PrintVersion.class.getName(), "auto");
        assertEquals(0, result.exitCode(), result.output());
        assertEquals(2, result.output().split("device=cpu", -1).length - 1, result.output());
        assertEquals(1, result.output().split("Device.auto\\(\\): libddim \\(libtorch [^)]+\\) sees no CUDA device; models run on the CPU", -1)
                .length - 1, result.output());
    }
}
