package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hostile and careless input through the Java API: files and arguments that once crashed the JVM,
 * allocated without bound, hung or returned NaN pixels, and listeners that call back into the model.
 * (The native suite runs the same files in memory-capped child processes.)
 */
class HostileInputTest {
    private static final Duration QUICKLY = Duration.ofSeconds(20);

    @TempDir
    Path dir;

    /** A model file holding only a header: ddim4j's metadata with {@code configJson} and {@code tensors}. */
    private Path headerOnlyFile(String name, String configJson, String tensors) throws IOException {
        String metadata = "{\"format\":\"ddim4j\",\"format_version\":\"1\",\"config\":" + jsonString(configJson) + "}";
        byte[] header = ("{\"__metadata__\":" + metadata + (tensors.isEmpty() ? "" : "," + tensors) + "}")
                .getBytes(StandardCharsets.UTF_8);
        ByteBuffer file = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
        file.putLong(header.length).put(header);
        return Files.write(dir.resolve(name), file.array());
    }

    private static String jsonString(String text) {
        return "\"" + text.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    private static final String TINY_CONFIG = "{\"channels\":1,\"image_size\":16,\"widths\":[8,16],\"block_depth\":1,"
            + "\"embedding_dim\":8,\"schedule\":{\"kind\":\"cosine\",\"min_signal\":0.02,\"max_signal\":0.95},\"target\":\"noise\"}";

    private static DdimException openFails(Path path) {
        return assertTimeoutPreemptively(QUICKLY, () -> assertThrows(DdimException.class, () -> Ddim.open(path, Device.cpu())));
    }

    @Test
    void aDeeplyNestedDtypeIsAFormatErrorAndTheJvmSurvives() throws IOException {
        String nested = "[".repeat(10_000) + "]".repeat(10_000);
        Path file = headerOnlyFile("nested.safetensors", TINY_CONFIG,
                "\"net.x\":{\"dtype\":" + nested + ",\"shape\":[],\"data_offsets\":[0,0]}");
        DdimException e = openFails(file);
        assertEquals(Status.FORMAT, e.status());
        assertTrue(e.getMessage().contains("nests deeper"), e.getMessage());
    }

    @Test
    void aConfigBeyondTheParameterLimitIsAFormatError() throws IOException {
        String huge = TINY_CONFIG.replace("\"widths\":[8,16]", "\"widths\":[4096,4096,4096,4096,4096,4096,4096,4096]")
                .replace("\"block_depth\":1", "\"block_depth\":64").replace("\"image_size\":16", "\"image_size\":4096");
        DdimException e = openFails(headerOnlyFile("huge.safetensors", huge, ""));
        assertEquals(Status.FORMAT, e.status());
        assertTrue(e.getMessage().contains("DDIM_MAX_PARAMETERS"), e.getMessage());
    }

    @Test
    void devicesFifosAndDirectoriesAreIoErrorsWithoutReading() throws Exception {
        assertEquals(Status.IO, openFails(Path.of("/dev/zero")).status());
        Path fifo = dir.resolve("fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        DdimException e = openFails(fifo);
        assertEquals(Status.IO, e.status());
        assertTrue(e.getMessage().contains("not a regular file"), e.getMessage());
        assertEquals(Status.IO, openFails(dir).status());
    }

    @Test
    void oversizedOptionsAreRefusedBeforeAnyNativeCall() {
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().steps(Integer.MAX_VALUE).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().steps(SampleOptions.MAX_STEPS + 1).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().microBatch(Integer.MAX_VALUE).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().eta(1e300).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().firstIndex(Long.MAX_VALUE).build());
        assertEquals(10_000, SampleOptions.MAX_STEPS);
        int before = Ddim.threads();
        IllegalArgumentException e = assertTimeoutPreemptively(QUICKLY,
                () -> assertThrows(IllegalArgumentException.class, () -> Ddim.setThreads(3000)));
        assertTrue(e.getMessage().contains("at most " + Ddim.maxThreads()), e.getMessage());
        assertEquals(before, Ddim.threads());
    }

    @Test
    void extremeNoiseGivesNonFiniteInsteadOfNaNPixels() {
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            float[] values = new float[16 * 16];
            Arrays.fill(values, 3e38f);
            Noise noise = new Noise(1, 1, 16, 16, values);
            DdimException e = assertThrows(DdimException.class,
                    () -> ddim.sample(SampleOptions.builder().noise(noise).steps(3).build()));
            assertEquals(Status.NON_FINITE, e.status());
        }
    }

    @Test
    void divergedWeightsGiveNonFiniteErrorsNotNaNPixels() {
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            // A learning rate of 1e30 throws every weight to about +-1e30 in one AdamW step.
            Trainer trainer = ddim.trainer(TrainOptions.builder().learningRate(1e30).emaDecay(0).build());
            float[] pixels = new float[4 * 16 * 16];
            Arrays.fill(pixels, 0.5f);
            trainer.step(pixels);
            DdimException sampling = assertThrows(DdimException.class,
                    () -> ddim.sample(SampleOptions.builder().count(2).steps(2).build()));
            assertEquals(Status.NON_FINITE, sampling.status());
            DdimException training = assertThrows(DdimException.class, () -> trainer.step(pixels));
            assertEquals(Status.NON_FINITE, training.status());
            assertEquals(1, trainer.steps());
        }
    }

    @Test
    void evaluationAndTrainingRefusePixelsOutsideTheUnitRange() {
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            float[] pixels = new float[16 * 16];
            pixels[9] = 2f;
            assertThrows(IllegalArgumentException.class, () -> ddim.evaluate(pixels, 1, false));
            Trainer trainer = ddim.trainer(TrainOptions.builder().build());
            pixels[9] = Float.NaN;
            assertThrows(IllegalArgumentException.class, () -> trainer.step(pixels));
            assertEquals(0, trainer.steps());
        }
    }

    @Test
    void aListenerCallingBackIntoItsModelGetsIllegalStateNotADeadlock() {
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            for (Runnable reentry : new Runnable[] {ddim::hasEma, ddim::config, ddim::close,
                    () -> ddim.sample(SampleOptions.defaults())}) {
                SampleListener listener = progress -> reentry.run();
                IllegalStateException e = assertTimeoutPreemptively(QUICKLY, () -> assertThrows(IllegalStateException.class,
                        () -> ddim.sample(SampleOptions.builder().count(1).steps(2).listener(listener).build())));
                assertTrue(e.getMessage().contains("SampleListener"), e.getMessage());
            }
            // Neither the refused calls nor the refused close changed the model.
            assertFalse(ddim.isClosed());
            assertEquals(1, ddim.sample(SampleOptions.builder().count(1).steps(2).build()).count());
        }
    }

    @Test
    void closeFromAnotherThreadCancelsTheRunningCallAndWaitsForIt() throws Exception {
        Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1);
        float[] reference = ddim.sample(SampleOptions.builder().count(2).steps(4).build()).pixels();
        CountDownLatch inFirstStep = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicReference<Integer> stepsSeen = new AtomicReference<>(0);
        SampleListener blocking = progress -> {
            stepsSeen.set(stepsSeen.get() + 1);
            inFirstStep.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        };
        try (ExecutorService pool = Executors.newFixedThreadPool(2)) {
            Future<ImageBatch> sampling = pool.submit(
                    () -> ddim.sample(SampleOptions.builder().count(2).steps(4).listener(blocking).build()));
            assertTrue(inFirstStep.await(20, TimeUnit.SECONDS));
            Future<?> closing = pool.submit(ddim::close);
            while (!ddim.isClosed()) {
                Thread.onSpinWait();
            }
            // close() has asked to cancel and is waiting: the call is still running, the model not freed.
            assertFalse(closing.isDone());
            release.countDown();
            closing.get(20, TimeUnit.SECONDS);
            java.util.concurrent.ExecutionException e = assertThrows(java.util.concurrent.ExecutionException.class,
                    () -> sampling.get(20, TimeUnit.SECONDS));
            assertTrue(e.getCause() instanceof CancellationException, e.getCause().toString());
            assertTrue(e.getCause().getMessage().contains("closed"), e.getCause().getMessage());
        }
        assertEquals(1, stepsSeen.get());  // cancelled at the next step, not run to the end
        assertTrue(ddim.isClosed());
        assertThrows(IllegalStateException.class, () -> ddim.sample(SampleOptions.defaults()));
        assertEquals(2 * 16 * 16, reference.length);
    }

    @Test
    void aRefusedCallLeavesResultsBitIdentical() {
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            SampleOptions options = SampleOptions.builder().count(2).steps(3).build();
            float[] before = ddim.sample(options).pixels();
            assertThrows(DdimException.class, () -> ddim.sample(options.toBuilder()
                    .noise(new Noise(2, 1, 16, 16, filled(2 * 16 * 16, 3e38f))).build()));
            assertArrayEquals(before, ddim.sample(options).pixels());
        }
    }

    private static float[] filled(int n, float value) {
        float[] values = new float[n];
        Arrays.fill(values, value);
        return values;
    }
}
