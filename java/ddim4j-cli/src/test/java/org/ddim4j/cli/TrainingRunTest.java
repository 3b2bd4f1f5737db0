package org.ddim4j.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.LongStream;

import javax.imageio.ImageIO;

import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.cli.CliTest.Result;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Run directories after interrupted runs: no stale temporary files, and logs that match the checkpoint a run resumes from. */
class TrainingRunTest {
    @TempDir
    Path dir;

    private static Result run(String... args) {
        return CliTest.run(args);
    }

    /** 12 small images: 10 to train in batches of 4, so 2 steps an epoch. */
    private Path images() throws IOException {
        Path images = Files.createDirectories(dir.resolve("images"));
        for (int i = 0; i < 12; i++) {
            BufferedImage image = new BufferedImage(20, 20, BufferedImage.TYPE_INT_RGB);
            image.setRGB(i, 3, 0xffffff);
            ImageIO.write(image, "png", images.resolve("img" + i + ".png").toFile());
        }
        return images;
    }

    private static List<String> trainArguments(Path images, Path runDir, long steps) {
        return List.of("train", "--data", images.toString(), "--image-size", "16", "--channels", "1", "--widths", "8,16",
                "--block-depth", "1", "--embedding-dim", "8", "--steps", Long.toString(steps), "--batch-size", "4",
                "--checkpoint-every", "2", "--out", runDir.toString(), "--no-progress", "--device", "cpu", "--threads", "1");
    }

    private static Result resume(Path runDir, long steps) {
        return run("train", "--out", runDir.toString(), "--resume", "--steps", Long.toString(steps), "--no-progress", "--device", "cpu",
                "--threads", "1");
    }

    private static List<String[]> rows(Path csv) throws IOException {
        List<String> lines = Files.readAllLines(csv);
        return lines.subList(1, lines.size()).stream().map(line -> line.split(",")).toList();
    }

    /** losses.csv holds every step from 1 to {@code steps} once, in order; metrics.csv every epoch once, with a finite loss. */
    private static void assertLogsCoverEachStepOnce(Path runDir, long steps) throws IOException {
        List<Long> lossSteps = rows(runDir.resolve("losses.csv")).stream().map(row -> Long.parseLong(row[0])).toList();
        assertEquals(LongStream.rangeClosed(1, steps).boxed().toList(), lossSteps);
        List<String[]> epochs = rows(runDir.resolve("metrics.csv"));
        List<Integer> epochNumbers = new ArrayList<>();
        for (String[] epoch : epochs) {
            epochNumbers.add(Integer.parseInt(epoch[0]));
            assertEquals(2L * Integer.parseInt(epoch[0]), Long.parseLong(epoch[1]), String.join(",", epoch));
            assertTrue(Double.isFinite(Double.parseDouble(epoch[2])), "train_loss of " + String.join(",", epoch));
        }
        assertEquals(LongStream.rangeClosed(1, steps / 2).mapToObj(epoch -> (int) epoch).toList(), epochNumbers);
    }

    @Test
    void resumingFromAnOlderCheckpointDropsTheLogRowsPastIt() throws IOException {
        Path runDir = dir.resolve("run");
        Result first = run(trainArguments(images(), runDir, 4).toArray(String[]::new));
        assertEquals(0, first.code(), first.err());
        Path checkpointAtStep4 = Files.copy(runDir.resolve("checkpoint.safetensors"), dir.resolve("step4.safetensors"));
        Result further = resume(runDir, 8);
        assertEquals(0, further.code(), further.err());
        assertLogsCoverEachStepOnce(runDir, 8);

        // As if that second run had been killed after step 8 with its last checkpoint at step 4.
        Files.copy(checkpointAtStep4, runDir.resolve("checkpoint.safetensors"), StandardCopyOption.REPLACE_EXISTING);
        Result again = resume(runDir, 10);
        assertEquals(0, again.code(), again.err());
        assertTrue(again.out().contains("resuming") && again.out().contains("at step 4"), again.out());
        assertLogsCoverEachStepOnce(runDir, 10);
    }

    @Test
    void anEpochResumedHalfwayReportsTheLossOfAllItsSteps() throws IOException {
        Path images = images();
        Path straight = dir.resolve("straight");
        assertEquals(0, run(trainArguments(images, straight, 6).toArray(String[]::new)).code());
        Path halted = dir.resolve("halted");
        assertEquals(0, run(trainArguments(images, halted, 3).toArray(String[]::new)).code()); // stops halfway through epoch 2
        Result resumed = resume(halted, 6);
        assertEquals(0, resumed.code(), resumed.err());
        assertLogsCoverEachStepOnce(halted, 6);
        // Resuming is bit-exact on the CPU, so the logs match those of the run that went straight through.
        assertEquals(Files.readAllLines(straight.resolve("losses.csv")), Files.readAllLines(halted.resolve("losses.csv")));
        List<String> straightLosses = rows(straight.resolve("metrics.csv")).stream().map(row -> row[2]).toList();
        List<String> resumedLosses = rows(halted.resolve("metrics.csv")).stream().map(row -> row[2]).toList();
        assertEquals(straightLosses, resumedLosses);
        // And the weights (with the EMA and BatchNorm statistics) byte for byte.
        assertArrayEquals(Files.readAllBytes(straight.resolve(TrainingRun.MODEL_FILE)),
                Files.readAllBytes(halted.resolve(TrainingRun.MODEL_FILE)));
    }

    /** Starts `ddim train` in a child JVM and returns once it has written its first checkpoint. */
    private Process startTrainingUntilTheFirstCheckpoint(Path runDir) throws Exception {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Djava.awt.headless=true", "-cp", System.getProperty("java.class.path"),
                Main.class.getName()));
        command.addAll(trainArguments(images(), runDir, 1_000_000));
        Process training = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(dir.resolve("train.log").toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (!Files.exists(runDir.resolve("checkpoint.safetensors")) && training.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertTrue(training.isAlive(), Files.readString(dir.resolve("train.log")));
            Thread.sleep(1500); // a few more steps, checkpoints and epochs
            return training;
        } catch (Throwable e) {
            training.destroyForcibly();
            throw e;
        }
    }

    @Test
    void sigtermStopsTrainingWithALoadableCheckpointAndTheModel() throws Exception {
        Path runDir = dir.resolve("run");
        Process training = startTrainingUntilTheFirstCheckpoint(runDir);
        training.destroy(); // SIGTERM: the shutdown hook asks the trainer to stop after its current step
        boolean stopped = training.waitFor(120, TimeUnit.SECONDS);
        training.destroyForcibly();
        assertTrue(stopped, "training did not stop");
        String log = Files.readString(dir.resolve("train.log"));
        assertTrue(log.contains("stopped after"), log);
        long stoppedAt = Long.parseLong(log.replaceAll("(?s).*stopped after (\\d+) steps.*", "$1"));
        try (Ddim checkpoint = Ddim.open(runDir.resolve("checkpoint.safetensors"), Device.cpu());
                Ddim model = Ddim.open(runDir.resolve(TrainingRun.MODEL_FILE), Device.cpu())) {
            assertEquals(stoppedAt, checkpoint.trainingSteps(), "the checkpoint is written at the step the run stopped");
            assertTrue(stoppedAt >= 2, log);
            assertTrue(model.hasEma());
        }
        assertLogsCoverEachStepOnce(runDir, stoppedAt);
    }

    @Test
    void aKilledRunResumesWithEveryStepLoggedOnceAndItsTemporaryFilesRemoved() throws Exception {
        Path runDir = dir.resolve("run");
        Process training = startTrainingUntilTheFirstCheckpoint(runDir);
        training.destroyForcibly(); // SIGKILL: no shutdown hook, no flush
        training.waitFor(30, TimeUnit.SECONDS);
        long checkpointStep;
        try (Ddim checkpoint = Ddim.open(runDir.resolve("checkpoint.safetensors"), Device.cpu())) {
            checkpointStep = checkpoint.trainingSteps();
        }
        assertTrue(checkpointStep >= 2, "step " + checkpointStep);
        // What a kill during a checkpoint leaves behind (the native writer's .NAME.tmp-XXXXXX).
        Path staleCheckpoint = Files.write(runDir.resolve(".checkpoint.safetensors.tmp-Kx81Qz"), new byte[4096]);
        Path stalePreview = Files.write(runDir.resolve("samples/.epoch-001.png.tmp-123456"), new byte[16]);

        Result resumed = resume(runDir, checkpointStep + 4);
        assertEquals(0, resumed.code(), resumed.err());
        assertFalse(Files.exists(staleCheckpoint));
        assertFalse(Files.exists(stalePreview));
        assertTrue(resumed.out().contains("removed temporary files of an interrupted run: ") && resumed.out().contains(".checkpoint.safetensors.tmp-Kx81Qz")
                && resumed.out().contains("samples/.epoch-001.png.tmp-123456"), resumed.out());
        assertLogsCoverEachStepOnce(runDir, checkpointStep + 4);
    }
}
