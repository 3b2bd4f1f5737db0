package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.IntFunction;

import org.ddim4j.data.Dataset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Data-parallel training with the ranks as threads of this JVM, each with its own model and Gloo group on 127.0.0.1. */
@Timeout(300)
class DistributedTrainingTest {
    @TempDir
    Path dir;

    private static final SampleOptions SAMPLE = SampleOptions.builder().count(3).steps(4).seed(7).build();

    static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Runs {@code body} for ranks 0 .. n-1 at once and returns their results in rank order. */
    static <T> List<T> ranks(int n, IntFunction<T> body) throws Exception {
        try (ExecutorService pool = Executors.newFixedThreadPool(n)) {
            List<Future<T>> futures = new ArrayList<>();
            for (int rank = 0; rank < n; rank++) {
                int r = rank;
                futures.add(pool.submit(() -> body.apply(r)));
            }
            List<T> results = new ArrayList<>();
            for (Future<T> future : futures) {
                results.add(future.get());
            }
            return results;
        }
    }

    @Test
    void thisBuildHasGloo() {
        assertTrue(Ddim.hasDistributed(), "libddim was built without Gloo (apt-get install libgloo-dev, then rebuild)");
    }

    @Test
    void eachGlobalBatchIsSharedWithoutDuplicatesOrGaps() {
        TrainOptions options = TrainOptions.builder().batchSize(13).accumulate(2)
                .distributed(Distributed.local(0, 3, 29500)).build();
        Trainer.Batching batching = Trainer.Batching.of(options, 100);
        assertEquals(12, batching.globalBatch(), "13 rounded down to a multiple of 3 ranks x 2 micro-batches");
        assertEquals(2, batching.microBatch());
        int[] order = Dataset.shuffled(100, 4);
        for (int batch = 0; batch < 100 / 12; batch++) {
            List<Integer> taken = new ArrayList<>();
            for (int rank = 0; rank < 3; rank++) {
                int[] positions = batching.positions(order, batch, rank);
                assertEquals(4, positions.length);
                Arrays.stream(positions).forEach(taken::add);
            }
            List<Integer> expected = new ArrayList<>();
            Arrays.stream(order, batch * 12, batch * 12 + 12).forEach(expected::add);
            taken.sort(null);
            expected.sort(null);
            assertEquals(expected, taken, "batch " + batch);
        }
        assertThrows(IllegalArgumentException.class, () -> Trainer.Batching.of(options.toBuilder().batchSize(5).build(), 100));
    }

    @Test
    void twoRanksTrainWhatOneProcessAccumulatingTwoMicroBatchesTrains() throws Exception {
        Dataset data = TrainerTest.squares(60, 2);
        TrainOptions options = TrainOptions.builder().batchSize(8).steps(10).seed(3).checkpointDir(dir.resolve("ranks")).build();
        int port = freePort();
        List<Object[]> ranks = ranks(2, rank -> {
            try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1 + rank)) {
                Trainer trainer = ddim.trainer(options.toBuilder().distributed(Distributed.local(rank, 2, port)).build());
                Trainer.Result result = trainer.fit(data, new TrainListener() {});
                return new Object[] {result, ddim.sample(SAMPLE).pixels(), trainer.collectiveStats()};
            }
        });
        float[] alone;
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            ddim.trainer(options.toBuilder().accumulate(2).checkpointDir(null).build()).fit(data, new TrainListener() {});
            alone = ddim.sample(SAMPLE).pixels();
        }
        assertArrayEquals((float[]) ranks.get(0)[1], (float[]) ranks.get(1)[1], "every rank holds the same model");
        double difference = 0;
        for (int i = 0; i < alone.length; i++) {
            difference = Math.max(difference, Math.abs(alone[i] - ((float[]) ranks.get(0)[1])[i]));
        }
        System.out.printf("2 ranks vs 1 process accumulating 2 micro-batches, 10 steps: max pixel difference %.3g%n", difference);
        assertTrue(difference < 1e-5, "max pixel difference " + difference);
        Trainer.Result first = (Trainer.Result) ranks.get(0)[0];
        Trainer.Result second = (Trainer.Result) ranks.get(1)[0];
        assertEquals(10, first.steps());
        assertEquals(dir.resolve("ranks/checkpoint.safetensors"), first.checkpoint());
        assertNull(second.checkpoint(), "only rank 0 writes");
        try (var files = Files.list(dir.resolve("ranks"))) {
            assertEquals(List.of("checkpoint.safetensors"), files.map(file -> file.getFileName().toString()).toList());
        }
        Trainer.CollectiveStats stats = (Trainer.CollectiveStats) ranks.get(0)[2];
        assertTrue(stats.calls() >= 10 * 2 && stats.bytes() > 10L * 4 * 30_000, stats.toString());
    }

    @Test
    void resumingWithTheSameWorldSizeIsBitExactAndAnotherIsRefused() throws Exception {
        Dataset data = TrainerTest.squares(48, 5);
        TrainOptions options = TrainOptions.builder().batchSize(8).steps(8).seed(6).checkpointEvery(3).build();
        int port = freePort();
        List<float[]> straight = ranks(2, rank -> {
            try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
                ddim.trainer(options.toBuilder().checkpointDir(dir.resolve("straight"))
                        .distributed(Distributed.local(rank, 2, port)).build()).fit(data, new TrainListener() {});
                return ddim.sample(SAMPLE).pixels();
            }
        });
        // Stopped by rank 1 after step 5 (a vote: both stop after the same step), checkpointed there by rank 0.
        int secondPort = freePort();
        Path run = dir.resolve("stopped");
        ranks(2, rank -> {
            try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
                Trainer.Result result = ddim.trainer(options.toBuilder().checkpointDir(run)
                        .distributed(Distributed.local(rank, 2, secondPort)).build()).fit(data, new TrainListener() {
                            int steps;

                            @Override
                            public void onStep(StepEvent step) {
                                steps++;
                            }

                            @Override
                            public boolean stopRequested() {
                                return rank == 1 && steps >= 5;
                            }
                        });
                assertTrue(result.cancelled());
                assertEquals(5, result.steps());
                return null;
            }
        });
        int thirdPort = freePort();
        List<float[]> resumed = ranks(2, rank -> {
            // Rank 0 opens the checkpoint; rank 1 starts empty and is given rank 0's state when it joins.
            try (Ddim ddim = rank == 0 ? Ddim.open(run.resolve("checkpoint.safetensors"), Device.cpu())
                    : Ddim.create(TestModels.tiny(), Device.cpu(), 99)) {
                Trainer trainer = ddim.trainer(options.toBuilder().checkpointDir(run).distributed(Distributed.local(rank, 2, thirdPort)).build());
                assertEquals(5, ddim.trainingSteps());
                assertEquals(8, trainer.fit(data, new TrainListener() {}).steps());
                return ddim.sample(SAMPLE).pixels();
            }
        });
        assertArrayEquals(straight.get(0), resumed.get(0));
        assertArrayEquals(straight.get(1), resumed.get(1));

        try (Ddim alone = Ddim.open(run.resolve("checkpoint.safetensors"), Device.cpu())) {
            IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
                    () -> alone.trainer(options.toBuilder().checkpointDir(run).build()).fit(data, new TrainListener() {}));
            assertTrue(error.getMessage().contains("written by a run of 2 process(es)"), error.getMessage());
        }
    }

    @Test
    void theCheckpointPositionOfOlderRunsMeansOneProcess() {
        String old = "{\"epoch\":1,\"batch\":2,\"train_size\":40,\"batch_size\":8}";
        assertEquals(new Trainer.Position(1, 2, 40, 8, 1), Trainer.Position.parse(old, 40, 8, 1));
        assertThrows(IllegalArgumentException.class, () -> Trainer.Position.parse(old, 40, 8, 2));
    }

    @Test
    void theEnvironmentIsReadAsTorchrunWritesIt() {
        Distributed distributed = Distributed.fromEnvironment(Map.of("RANK", "3", "WORLD_SIZE", "4", "MASTER_ADDR", "10.1.2.3",
                "MASTER_PORT", "1234", "LOCAL_RANK", "1"));
        assertEquals(new Distributed(3, 4, "10.1.2.3", 1234, 1, Distributed.DEFAULT_TIMEOUT), distributed);
        assertEquals(new Distributed(1, 2, "127.0.0.1", 29500, 1, Distributed.DEFAULT_TIMEOUT),
                Distributed.fromEnvironment(Map.of("RANK", "1", "WORLD_SIZE", "2")));
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> Distributed.fromEnvironment(Map.of("WORLD_SIZE", "2")));
        assertTrue(missing.getMessage().contains("RANK is not set"), missing.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Distributed.fromEnvironment(Map.of("RANK", "2", "WORLD_SIZE", "2")));
        assertThrows(IllegalArgumentException.class, () -> Distributed.fromEnvironment(Map.of("RANK", "x", "WORLD_SIZE", "2")));
        assertThrows(IllegalArgumentException.class, () -> Distributed.local(0, 2, 70000));
        assertThrows(IllegalArgumentException.class, () -> Distributed.local(0, 2, 29500).withTimeout(Duration.ZERO));
    }

    @Test
    void aGroupThatNeverFormsFailsAfterItsTimeout() {
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            Distributed lonely = Distributed.local(0, 2, freePort()).withTimeout(Duration.ofSeconds(1));
            DdimException error = assertThrows(DdimException.class,
                    () -> ddim.trainer(TrainOptions.builder().distributed(lonely).build()));
            assertEquals(Status.DISTRIBUTED, error.status());
            assertTrue(error.getMessage().contains("only 1 of 2 ranks joined"), error.getMessage());
            assertFalse(ddim.isClosed());
        }
    }
}
