package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CancellationException;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Batch-invariant seeds, caller noise, streaming, progress and cancellation, and argument checks, on a
 * tiny model trained a few steps (so the network's own rounding is part of every image).
 */
class ReproducibleSamplingTest {
    private static Ddim ddim;

    @TempDir
    Path dir;

    @BeforeAll
    static void createModel() {
        ddim = TestModels.trainedTiny(3);
    }

    @AfterAll
    static void closeModel() {
        ddim.close();
    }

    private static SampleOptions.Builder options(int count, Sampler sampler) {
        return SampleOptions.builder().count(count).steps(3).seed(17).sampler(sampler).eta(sampler == Sampler.DDIM ? 1.0 : 0);
    }

    private static float[] imagesOf(ImageBatch batch, int from, int to) {
        return batch.slice(from, to).pixels();
    }

    @Test
    void imageIdsSampleSeveralRequestsInOneCallWithEachRequestsPixels() {
        for (Sampler sampler : Sampler.values()) {
            ImageBatch a = ddim.sample(options(3, sampler).seed(5).build());
            ImageBatch b = ddim.sample(options(2, sampler).seed(99).firstIndex(7).build());
            List<ImageId> ids = new ArrayList<>(ImageId.range(5, 0, 3));
            ids.addAll(ImageId.range(99, 7, 2));
            ImageBatch merged = ddim.sample(options(1, sampler).images(ids).batchSize(4).build());
            assertEquals(5, merged.count());
            assertArrayEquals(a.pixels(), imagesOf(merged, 0, 3), sampler + ": first request");
            assertArrayEquals(b.pixels(), imagesOf(merged, 3, 5), sampler + ": second request");
            assertArrayEquals(Noise.concat(List.of(a.startingNoise().orElseThrow(), b.startingNoise().orElseThrow())).values(),
                    merged.startingNoise().orElseThrow().values(), sampler + ": starting noise");
        }
        assertThrows(IllegalArgumentException.class, () -> options(2, Sampler.DDIM).images(List.of(new ImageId(1, 0))).count(2).build());
        assertThrows(IllegalArgumentException.class, () -> new ImageId(1, -1));
    }

    @Test
    void previewsShowThePredictedImagesEveryFewStepsAndTheLastIsTheSample() {
        List<Integer> previewSteps = new ArrayList<>();
        float[][] last = new float[1][];
        ImageBatch images = ddim.sample(options(3, Sampler.DDIM).eta(0).steps(5).previewEvery(2).listener(p -> {
            if (p.preview() != null) {
                assertEquals(p.images(), p.preview().count());
                previewSteps.add(p.step());
                last[0] = p.preview().pixels();
            }
        }).build());
        assertEquals(List.of(2, 4, 5), previewSteps);
        assertArrayEquals(images.pixels(), last[0]);
        List<Integer> none = new ArrayList<>();
        ddim.sample(options(1, Sampler.DDIM).listener(p -> none.add(p.preview() == null ? 0 : 1)).build());
        assertEquals(List.of(0, 0, 0), none);
        assertThrows(IllegalArgumentException.class, () -> options(1, Sampler.DDIM).previewEvery(-1).build());
    }

    @Test
    void imageIDependsOnlyOnSeedAndIndexNotOnCountOrChunking() {
        for (Sampler sampler : Sampler.values()) {
            ImageBatch sixtyFour = ddim.sample(options(64, sampler).build());
            ImageBatch eight = ddim.sample(options(8, sampler).build());
            assertArrayEquals(imagesOf(sixtyFour, 0, 8), eight.pixels(), sampler + ": count 64 vs count 8");
            ImageBatch inFives = ddim.sample(options(12, sampler).batchSize(5).build());
            assertArrayEquals(imagesOf(sixtyFour, 0, 12), inFives.pixels(), sampler + ": chunks of 5");
            ImageBatch fromForty = ddim.sample(options(3, sampler).firstIndex(40).build());
            assertArrayEquals(imagesOf(sixtyFour, 40, 43), fromForty.pixels(), sampler + ": starting at image 40");
        }
    }

    @Test
    void theTrainedNetworkShapesTheImages() {
        try (Ddim fresh = Ddim.create(TestModels.tiny(), Device.cpu(), 3)) {
            float[] trained = ddim.sample(options(4, Sampler.DDIM).eta(0).build()).pixels();
            ImageBatch untrained = fresh.sample(options(4, Sampler.DDIM).eta(0).build());
            assertTrue(untrained.meanAbsoluteDifference(
                    new ImageBatch(4, 1, 16, 16, trained)) > 0.01, "the trained network must change the images");
        }
    }

    @Test
    void microBatchesKeepImagesIndependentOfTheRequest() {
        for (Sampler sampler : Sampler.values()) {
            ImageBatch inFives = ddim.sample(options(12, sampler).microBatch(4).batchSize(5).build());
            ImageBatch fromNine = ddim.sample(options(3, sampler).microBatch(4).firstIndex(9).build());
            assertArrayEquals(imagesOf(inFives, 9, 12), fromNine.pixels(), sampler + ": micro-batch 4, chunks of 5 vs from 9");
            ImageBatch whole = ddim.sample(options(12, sampler).microBatch(4).build());
            assertArrayEquals(whole.pixels(), inFives.pixels(), sampler + ": micro-batch 4, one chunk vs chunks of 5");
        }
    }

    @Test
    void startingNoiseRegeneratesTheImagesAndSurvivesAFile() {
        ImageBatch images = ddim.sample(options(4, Sampler.DDIM).eta(0).build());
        Noise noise = images.startingNoise().orElseThrow();
        assertArrayEquals(ddim.noise(17, 0, 4).values(), noise.values());
        Path file = dir.resolve("noise.npy");
        noise.write(file);
        Noise read = Noise.read(file);
        assertArrayEquals(noise.values(), read.values());
        assertEquals(4, read.count());
        ImageBatch again = ddim.sample(SampleOptions.builder().steps(3).seed(999).noise(read).build());
        assertArrayEquals(images.pixels(), again.pixels(), "the seed is not used when noise is given");
        assertSame(read, again.startingNoise().orElseThrow());
    }

    @Test
    void theStartingNoiseNeedsNoModelAndIsDrawnWhenAskedFor() {
        ImageBatch images;
        try (Ddim other = Ddim.create(ddim.config(), Device.cpu(), 5)) {
            images = other.sample(options(3, Sampler.DDIM).firstIndex(2).build());
        }
        // The model is closed: the noise is drawn now, from (config, seed, index) alone, as ddim.noise draws it.
        Noise noise = images.startingNoise().orElseThrow();
        assertArrayEquals(ddim.noise(17, 2, 3).values(), noise.values());
        assertArrayEquals(Noise.ofSeed(ddim.config(), 17, 2, 3).values(), noise.values());
        assertSame(noise, images.startingNoise().orElseThrow(), "drawn once");
        assertArrayEquals(Noise.ofSeed(ddim.config(), 17, 3, 1).values(), images.slice(1, 2).startingNoise().orElseThrow().values());
        assertThrows(IllegalArgumentException.class, () -> Noise.ofSeed(ddim.config(), 17, -1, 1));
    }

    @Test
    void corruptNoiseFilesAreRejectedClearly() throws Exception {
        Path file = dir.resolve("noise.npy");
        ddim.noise(1, 0, 2).write(file);
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(bytes, bytes.length - 10));
        IllegalArgumentException truncated = assertThrows(IllegalArgumentException.class, () -> Noise.read(file));
        assertTrue(truncated.getMessage().contains("truncated"), truncated.getMessage());
        Files.write(file, new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
        assertThrows(IllegalArgumentException.class, () -> Noise.read(file));
    }

    @Test
    void streamingDeliversTheSameImagesChunkByChunk() {
        SampleOptions options = options(11, Sampler.DDPM).batchSize(4).build();
        List<Long> firsts = new ArrayList<>();
        List<ImageBatch> chunks = new ArrayList<>();
        ddim.sample(options, (first, images) -> {
            firsts.add(first);
            chunks.add(images);
        });
        assertEquals(List.of(0L, 4L, 8L), firsts);
        assertEquals(List.of(4, 4, 3), chunks.stream().map(ImageBatch::count).toList());
        ImageBatch whole = ddim.sample(options);
        ImageBatch joined = ImageBatch.concat(ImageBatch.concat(chunks.get(0), chunks.get(1)), chunks.get(2));
        assertArrayEquals(whole.pixels(), joined.pixels());
    }

    @Test
    void streamingToPngFilesWritesOneFilePerImage() {
        ddim.sample(options(5, Sampler.DDIM).batchSize(2).firstIndex(10).build(), ImageSink.pngFiles(dir));
        for (int i = 10; i < 15; i++) {
            assertTrue(Files.isRegularFile(dir.resolve(String.format("image-%06d.png", i))), "image " + i);
        }
    }

    @Test
    void progressCountsEveryStepOfEveryChunk() {
        List<SampleListener.SampleProgress> seen = new ArrayList<>();
        ddim.sample(options(5, Sampler.DDIM).batchSize(2).listener(seen::add).build());
        assertEquals(9, seen.size(), "3 chunks x 3 steps");
        for (int k = 0; k < seen.size(); k++) {
            assertEquals(k + 1, seen.get(k).stepsDone());
            assertEquals(9, seen.get(k).totalSteps());
        }
        assertEquals(4, seen.get(8).firstImage());
        assertEquals(1, seen.get(8).images());
        assertEquals(1.0, seen.get(8).fraction());

        List<SampleListener.SampleProgress> streamed = new ArrayList<>();
        ddim.sample(options(5, Sampler.DDIM).batchSize(2).listener(streamed::add).build(), (first, images) -> {});
        assertEquals(seen, streamed, "streaming reports the same progress");
    }

    @Test
    void aListenerCanCancelAndItsExceptionsComeBack() {
        SampleListener stopAfterTwo = new SampleListener() {
            int calls;

            @Override
            public void onStep(SampleProgress progress) {
                calls++;
            }

            @Override
            public boolean stopRequested() {
                return calls == 2;
            }
        };
        CancellationException cancelled = assertThrows(CancellationException.class,
                () -> ddim.sample(options(2, Sampler.DDIM).steps(5).listener(stopAfterTwo).build()));
        assertTrue(cancelled.getMessage().contains("after step 2"), cancelled.getMessage());

        IllegalStateException thrown = assertThrows(IllegalStateException.class, () -> ddim.sample(options(2, Sampler.DDIM)
                .listener(p -> {
                    throw new IllegalStateException("listener broke");
                }).build()));
        assertEquals("listener broke", thrown.getMessage());

        Thread.currentThread().interrupt();
        try {
            assertThrows(CancellationException.class, () -> ddim.sample(options(2, Sampler.DDIM).listener(p -> {}).build()));
        } finally {
            assertTrue(Thread.interrupted(), "the interrupt stays set for the caller");
        }
        // The model is still usable afterwards.
        assertEquals(2, ddim.sample(options(2, Sampler.DDIM).build()).count());
    }

    @Test
    void badArgumentsAreRejectedInJavaBeforeAnyNativeCall() {
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().eta(-0.1).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().steps(0).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().batchSize(0).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().microBatch(0).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().firstIndex(-1).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().noise(ddim.noise(1, 0, 2)).count(3).build());

        ImageBatch images = ddim.sample(options(2, Sampler.DDIM).build());
        SampleOptions defaults = SampleOptions.builder().steps(2).build();
        for (double strength : new double[] {0, -0.5, 1.5, Double.NaN}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ddim.vary(images, strength, defaults));
            assertTrue(e.getMessage().contains("strength"), e.getMessage());
        }
        ImageBatch wrongSizeMask = new ImageBatch(1, 1, 8, 8, new float[64]);
        IllegalArgumentException mask = assertThrows(IllegalArgumentException.class, () -> ddim.inpaint(images, wrongSizeMask, defaults));
        assertTrue(mask.getMessage().contains("mask"), mask.getMessage());
        ImageBatch threeMasks = new ImageBatch(3, 1, 16, 16, new float[3 * 256]);
        assertThrows(IllegalArgumentException.class, () -> ddim.inpaint(images, threeMasks, defaults));
        float[] outOfRange = new float[256];
        outOfRange[3] = 2;
        assertThrows(IllegalArgumentException.class, () -> ddim.inpaint(images, new ImageBatch(1, 1, 16, 16, outOfRange), defaults));
        float[] nan = images.pixels();
        nan[5] = Float.NaN;
        assertThrows(IllegalArgumentException.class, () -> ddim.invert(new ImageBatch(2, 1, 16, 16, nan), 3));
        ImageBatch rgb = new ImageBatch(1, 3, 16, 16, new float[3 * 256]);
        assertThrows(IllegalArgumentException.class, () -> ddim.invert(rgb, 3));
        assertThrows(IllegalArgumentException.class,
                () -> ddim.invert(images, SampleOptions.builder().sampler(Sampler.DDPM).build()));
        Noise wrongShape = new Noise(1, 1, 8, 8, new float[64]);
        assertThrows(IllegalArgumentException.class, () -> ddim.sample(SampleOptions.builder().noise(wrongShape).build()));
        assertThrows(IllegalArgumentException.class, () -> ddim.interpolate(ddim.noise(1, 0, 1), ddim.noise(2, 0, 1), 1, defaults));
    }

    @Test
    void slerpKeepsTheEndsAndTheNorm() {
        Noise a = ddim.noise(1, 0, 1);
        Noise b = ddim.noise(2, 0, 1);
        Noise strip = Noise.slerpStrip(a, b, 5);
        assertEquals(5, strip.count());
        assertArrayEquals(a.values(), strip.image(0).values(), 1e-6f);
        assertArrayEquals(b.values(), strip.image(4).values(), 1e-6f);
        double normA = norm(a);
        double normMiddle = norm(strip.image(2));
        // Two independent Gaussians are nearly orthogonal: a straight line's midpoint has ~0.71x the norm.
        assertEquals(normA, normMiddle, normA * 0.05);
        ImageBatch images = ddim.interpolate(a, b, 5, SampleOptions.builder().steps(2).build());
        assertEquals(5, images.count());
        assertArrayEquals(ddim.sample(SampleOptions.builder().steps(2).noise(a).build()).pixels(), images.slice(0, 1).pixels());
        assertFalse(Arrays.equals(images.slice(0, 1).pixels(), images.slice(2, 3).pixels()));
    }

    private static double norm(Noise noise) {
        double sum = 0;
        for (float v : noise.values()) {
            sum += (double) v * v;
        }
        return Math.sqrt(sum);
    }
}
