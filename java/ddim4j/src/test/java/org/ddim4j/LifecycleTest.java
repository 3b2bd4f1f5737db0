package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
        assertEquals(Runtime.getRuntime().availableProcessors(), Ddim.threads());
        try {
            Ddim.setThreads(1);
            assertEquals(1, Ddim.threads());
        } finally {
            Ddim.setThreads(0);
        }
        assertEquals(Runtime.getRuntime().availableProcessors(), Ddim.threads());
    }
}
