package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import org.ddim4j.data.Dataset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
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
    void cancellingMidEpochThenResumingIsBitExact() throws Exception {
        Dataset data = squares(48, 3);
        TrainOptions options = TrainOptions.builder().batchSize(8).steps(14).seed(5).checkpointEvery(2)
                .checkpointDir(dir.resolve("straight")).build();
        SampleOptions sample = SampleOptions.builder().count(2).steps(3).seed(1).build();
        Path straightWeights = dir.resolve("straight.safetensors");
        float[] straight;
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 9)) {
            ddim.trainer(options).fit(data, new TrainListener() {});
            straight = ddim.sample(sample).pixels();
            ddim.export(straightWeights, false, false);
        }
        // Cancelled after step 7, in the middle of the second epoch, between periodic checkpoints.
        Recorder recorder = new Recorder();
        recorder.stopAfter = 7;
        TrainOptions interrupted = options.toBuilder().checkpointDir(dir.resolve("interrupted")).build();
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 9)) {
            Trainer.Result result = ddim.trainer(interrupted).fit(data, recorder);
            assertTrue(result.cancelled());
            assertEquals(7, result.steps());
            assertEquals(1, result.epochsCompleted());
        }
        Path resumedWeights = dir.resolve("resumed.safetensors");
        try (Ddim resumed = Ddim.open(dir.resolve("interrupted/checkpoint.safetensors"), Device.cpu())) {
            assertEquals(7, resumed.trainingSteps());
            assertEquals(14, resumed.trainer(interrupted).fit(data, new TrainListener() {}).steps());
            assertArrayEquals(straight, resumed.sample(sample).pixels());
            resumed.export(resumedWeights, false, false);
        }
        // Weights, EMA and BatchNorm statistics, byte for byte.
        assertArrayEquals(Files.readAllBytes(straightWeights), Files.readAllBytes(resumedWeights));
    }

    /** The first training step's loss of a fresh tiny model (whose network outputs exactly zero) on the squares. */
    private static float firstLoss(ModelConfig config, TrainOptions options) {
        try (Ddim ddim = Ddim.create(config, Device.cpu(), 1)) {
            return ddim.trainer(options).step(squares(8, 2).range(0, 8));
        }
    }

    @Test
    void theLossAndTargetOptionsDecideWhatIsLearned() {
        // A fresh network predicts 0, so the first loss measures the target itself: the noise eps ~ N(0, 1) has
        // E|eps| = sqrt(2 / pi) and E[eps^2] = 1; the image target is the (unnormalised) squares, mean 0.2125.
        TrainOptions mae = TrainOptions.builder().build();
        assertEquals(Math.sqrt(2 / Math.PI), firstLoss(TestModels.tiny(), mae), 0.05);
        assertEquals(1.0, firstLoss(TestModels.tiny(), mae.toBuilder().loss(Loss.MSE).build()), 0.1);
        ModelConfig image = TestModels.tiny().toBuilder().target(Target.IMAGE).build();
        assertEquals((36 * 0.9 + 220 * 0.1) / 256, firstLoss(image, mae), 1e-5);
        assertEquals((36 * 0.81 + 220 * 0.01) / 256, firstLoss(image, mae.toBuilder().loss(Loss.MSE).build()), 1e-5);
    }

    @Test
    void theLinearScheduleTrainsAndDrawsOtherNoiseLevels() {
        ModelConfig linear = TestModels.tiny().toBuilder().schedule(Schedule.linear()).build();
        Dataset data = squares(16, 4);
        float[][] losses = new float[2][];
        int k = 0;
        for (ModelConfig config : new ModelConfig[] {TestModels.tiny(), linear}) {
            try (Ddim ddim = Ddim.create(config, Device.cpu(), 1)) {
                Trainer trainer = ddim.trainer(TrainOptions.builder().learningRate(1e-2).build());
                losses[k++] = new float[] {trainer.step(data.range(0, 8)), trainer.step(data.range(8, 16)), trainer.step(data.range(0, 8))};
                float[] pixels = ddim.sample(SampleOptions.builder().count(2).steps(3).build()).pixels();
                for (float p : pixels) {
                    assertTrue(p >= 0 && p <= 1);
                }
            }
        }
        // Same weights, data and draws of t: only the schedule's noise levels differ, and so the later losses.
        assertEquals(losses[0][0], losses[1][0]);  // the untrained network predicts 0 under any schedule
        assertFalse(Arrays.equals(losses[0], losses[1]), Arrays.toString(losses[0]) + " vs " + Arrays.toString(losses[1]));
    }

    @Test
    void useEmaChoosesBetweenTheAveragedAndTheRawWeights() {
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            Trainer trainer = ddim.trainer(TrainOptions.builder().learningRate(1e-2).build());
            for (int i = 0; i < 3; i++) {
                trainer.step(squares(8, i).range(0, 8));
            }
            assertTrue(ddim.hasEma());
            SampleOptions options = SampleOptions.builder().count(2).steps(3).build();
            float[] averaged = ddim.sample(options).pixels();
            float[] raw = ddim.sample(options.toBuilder().useEma(false).build()).pixels();
            assertFalse(Arrays.equals(averaged, raw), "the EMA lags the raw weights");
            assertArrayEquals(raw, ddim.sample(options.toBuilder().useEma(false).build()).pixels());
            // A model trained without an EMA samples its raw weights either way.
        }
        try (Ddim ddim = TestModels.trainedTiny(1)) {
            SampleOptions options = SampleOptions.builder().count(2).steps(3).build();
            assertFalse(ddim.hasEma());
            assertArrayEquals(ddim.sample(options).pixels(), ddim.sample(options.toBuilder().useEma(false).build()).pixels());
        }
    }

    @Test
    void aStopOnAnEpochsLastStepStillEndsThatEpoch() {
        // 40 images, 32 to train in batches of 8: 4 steps an epoch; stop after step 8, the last of epoch 2.
        Recorder recorder = new Recorder();
        recorder.stopAfter = 8;
        TrainOptions options = TrainOptions.builder().batchSize(8).epochs(5).checkpointDir(dir).build();
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            Trainer.Result result = ddim.trainer(options).fit(squares(40, 1), recorder);
            assertTrue(result.cancelled());
            assertEquals(8, result.steps());
            assertEquals(2, result.epochsCompleted());
            assertEquals(List.of(4L, 8L), recorder.epochs.stream().map(TrainListener.EpochSummary::step).toList(),
                    "the epoch the last step completed is validated and reported");
        }
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
    @Timeout(120)  // the wait for the second step below is otherwise unbounded
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
