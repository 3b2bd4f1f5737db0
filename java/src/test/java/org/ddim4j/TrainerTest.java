package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import org.ddim4j.data.Dataset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainerTest {
    @TempDir
    Path dir;

    /** `count` 1x16x16 images: a bright 6x6 square at a seeded position on a dark background. */
    static Dataset squares(int count, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] pixels = new float[count * 256];
        for (int i = 0; i < count; i++) {
            int y = random.nextInt(10);
            int x = random.nextInt(10);
            for (int p = 0; p < 256; p++) {
                int row = p / 16;
                int column = p % 16;
                pixels[i * 256 + p] = row >= y && row < y + 6 && column >= x && column < x + 6 ? 0.9f : 0.1f;
            }
        }
        return Dataset.of(pixels, 1, 16);
    }

    private static final class Recorder implements TrainListener {
        final List<StepEvent> steps = new ArrayList<>();
        final List<EpochSummary> epochs = new ArrayList<>();
        long stopAfter = Long.MAX_VALUE;

        @Override
        public void onStep(StepEvent step) {
            steps.add(step);
        }

        @Override
        public void onEpoch(EpochSummary epoch) {
            epochs.add(epoch);
        }

        @Override
        public boolean stopRequested() {
            return steps.size() >= stopAfter;
        }
    }

    @Test
    void fitReportsStepsAndEpochsAndTheLossFalls() {
        Recorder recorder = new Recorder();
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            Trainer.Result result = ddim.trainer(TrainOptions.builder().batchSize(16).epochs(40).seed(2).build())
                    .fit(squares(80, 1), recorder);
            // 64 training images in batches of 16: 4 steps an epoch.
            assertEquals(160, result.steps());
            assertEquals(40, result.epochsCompleted());
            assertFalse(result.cancelled());
            assertEquals(160, recorder.steps.size());
            assertEquals(40, recorder.epochs.size());
            assertEquals(4, recorder.steps.get(0).batchesPerEpoch());
            double first = recorder.epochs.get(0).trainLoss();
            double last = recorder.epochs.get(39).trainLoss();
            assertTrue(last < 0.6 * first, "train loss " + first + " -> " + last);
            assertTrue(Double.isFinite(recorder.epochs.get(39).noiseLoss()));
            assertTrue(ddim.hasEma());
            // The normaliser came from the training split: squares are ~14% bright.
            float[][] normalizer = ddim.normalizer();
            assertEquals(0.1 + 0.8 * 36 / 256.0, normalizer[0][0], 0.01);
        }
    }

    @Test
    void resumingFromACheckpointIsBitExact() {
        Dataset data = squares(48, 3);
        TrainOptions options = TrainOptions.builder().batchSize(8).steps(14).seed(5).checkpointDir(dir.resolve("a")).build();
        SampleOptions sample = SampleOptions.builder().count(2).steps(3).seed(1).build();
        float[] straight;
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 9)) {
            ddim.trainer(options).fit(data, new TrainListener() {});
            straight = ddim.sample(sample).pixels();
        }
        // Half the steps (crossing an epoch boundary: 5 batches an epoch), a checkpoint, then the rest.
        TrainOptions half = options.toBuilder().steps(7).checkpointDir(dir.resolve("b")).build();
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 9)) {
            ddim.trainer(half).fit(data, new TrainListener() {});
        }
        try (Ddim resumed = Ddim.open(dir.resolve("b/checkpoint.safetensors"), Device.cpu())) {
            assertEquals(7, resumed.trainingSteps());
            Trainer.Result result = resumed.trainer(half.toBuilder().steps(14).build()).fit(data, new TrainListener() {});
            assertEquals(14, result.steps());
            assertArrayEquals(straight, resumed.sample(sample).pixels());
        }
    }

    @Test
    void fitRemovesTheTemporaryFilesOfAKilledCheckpointWriteAndNothingElse() throws Exception {
        Path leftover = Files.writeString(dir.resolve(".checkpoint.safetensors.tmp-Xy12ab"), "half a checkpoint");
        Path unrelated = Files.writeString(dir.resolve(".notes.txt.tmp-abc"), "someone else's");
        TrainOptions options = TrainOptions.builder().batchSize(8).steps(1).checkpointDir(dir).build();
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            ddim.trainer(options).fit(squares(16, 1), new TrainListener() {});
        }
        assertFalse(Files.exists(leftover));
        assertTrue(Files.exists(unrelated));
        assertTrue(Files.exists(dir.resolve("checkpoint.safetensors")));
    }

    @Test
    void cancellingLeavesALoadableCheckpoint() {
        Recorder recorder = new Recorder();
        recorder.stopAfter = 3;
        TrainOptions options = TrainOptions.builder().batchSize(8).epochs(5).checkpointDir(dir).build();
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            Trainer.Result result = ddim.trainer(options).fit(squares(40, 1), recorder);
            assertTrue(result.cancelled());
            assertEquals(3, result.steps());
        }
        try (Ddim reopened = Ddim.open(dir.resolve("checkpoint.safetensors"), Device.cpu())) {
            assertEquals(3, reopened.trainingSteps());
            assertTrue(reopened.hasEma());
            assertEquals(16, reopened.sample(SampleOptions.builder().count(1).steps(2).build()).pixels().length / 16);
        }
    }

    @Test
    void interruptingTheThreadCancelsAfterTheCurrentStep() throws Exception {
        TrainOptions options = TrainOptions.builder().batchSize(8).epochs(1000).checkpointDir(dir).build();
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            Trainer trainer = ddim.trainer(options);
            Trainer.Result[] result = new Trainer.Result[1];
            Thread thread = new Thread(() -> result[0] = trainer.fit(squares(40, 1), new TrainListener() {}));
            thread.start();
            while (trainer.steps() < 2) {
                Thread.sleep(5);
            }
            thread.interrupt();
            thread.join(60_000);
            assertTrue(result[0].cancelled());
            assertTrue(Files.exists(dir.resolve("checkpoint.safetensors")));
        }
    }

    @Test
    void customLoopsStepDirectly() {
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            Trainer trainer = ddim.trainer(TrainOptions.builder().emaDecay(0).build());
            float loss = trainer.step(squares(4, 1).range(0, 4));
            assertTrue(loss > 0 && Float.isFinite(loss));
            assertEquals(1, trainer.steps());
            assertFalse(ddim.hasEma());
            assertThrows(IllegalArgumentException.class, () -> trainer.step(new float[255]));
            float[] nan = squares(1, 1).range(0, 1);
            nan[3] = Float.NaN;
            assertThrows(IllegalArgumentException.class, () -> trainer.step(nan));
            assertEquals(1, trainer.steps());
        }
    }

    @Test
    void badOptionsAndMismatchedDataAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> TrainOptions.builder().batchSize(0).build());
        assertThrows(IllegalArgumentException.class, () -> TrainOptions.builder().learningRate(Double.NaN).build());
        assertThrows(IllegalArgumentException.class, () -> TrainOptions.builder().emaDecay(1).build());
        assertThrows(IllegalArgumentException.class, () -> TrainOptions.builder().validationSplit(1).build());
        try (Ddim ddim = Ddim.create(TestModels.tinyRgb(), Device.cpu(), 1)) {
            assertThrows(IllegalArgumentException.class, () -> ddim.trainer(TrainOptions.builder().build()).fit(squares(8, 1),
                    new TrainListener() {}));
        }
    }

    @Test
    void exportWritesSmallEmaOnlyModels() throws Exception {
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            ddim.trainer(TrainOptions.builder().batchSize(8).steps(3).build()).fit(squares(16, 1), new TrainListener() {});
            ddim.save(dir.resolve("full.safetensors"));
            ddim.export(dir.resolve("small.safetensors"), true, true);
        }
        assertTrue(Files.size(dir.resolve("small.safetensors")) < Files.size(dir.resolve("full.safetensors")) / 3);
        try (Ddim small = Ddim.open(dir.resolve("small.safetensors"), Device.cpu())) {
            assertFalse(small.hasEma());
            assertEquals(0, small.trainingSteps());
        }
    }
}
