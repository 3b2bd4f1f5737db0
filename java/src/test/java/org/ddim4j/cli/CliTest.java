package org.ddim4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CliTest {
    @TempDir
    Path dir;

    record Result(int code, String out, String err) {}

    private static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Result(code, out.toString(), err.toString());
    }

    @Test
    void initInfoSampleEndToEnd() throws Exception {
        Path model = dir.resolve("m.safetensors");
        Result init = run("init", "--out", model.toString(), "--channels", "1", "--image-size", "16", "--widths", "8,16",
                "--block-depth", "1", "--embedding-dim", "8", "--device", "cpu");
        assertEquals(0, init.code(), init.err());
        assertTrue(Files.size(model) > 0);

        Result info = run("info", "--model", model.toString(), "--device", "cpu");
        assertEquals(0, info.code(), info.err());
        assertTrue(info.out().contains("1 channel(s), 16x16"), info.out());
        assertTrue(info.out().contains("widths [8, 16]"), info.out());

        Path grid = dir.resolve("grid.png");
        Result sample = run("sample", "--model", model.toString(), "--count", "6", "--steps", "2", "--seed", "3",
                "--columns", "3", "--out", grid.toString(), "--device", "cpu", "--threads", "1");
        assertEquals(0, sample.code(), sample.err());
        BufferedImage image = ImageIO.read(grid.toFile());
        assertEquals(3 * 16 + 2 * 2, image.getWidth());
        assertEquals(2 * 16 + 2, image.getHeight());
    }

    @Test
    void badInputGivesOneClearLineAndExitCodeOne() throws Exception {
        Path junk = dir.resolve("junk.safetensors");
        Files.write(junk, new byte[] {1, 2, 3});
        Result result = run("info", "--model", junk.toString());
        assertEquals(1, result.code());
        assertTrue(result.err().startsWith("ddim: FORMAT:"), result.err());
        assertEquals(1, result.err().strip().lines().count(), result.err());

        Result badSteps = run("sample", "--model", junk.toString(), "--steps", "0");
        assertEquals(1, badSteps.code());
        assertTrue(badSteps.err().contains("steps must be >= 1"), badSteps.err());

        Result badConfig = run("init", "--out", dir.resolve("x.safetensors").toString(), "--image-size", "50");
        assertEquals(1, badConfig.code());
        assertTrue(badConfig.err().contains("image_size"), badConfig.err());
    }

    @Test
    void trainResumeAndExportEndToEnd() throws Exception {
        Path images = dir.resolve("images");
        Files.createDirectories(images);
        for (int i = 0; i < 12; i++) {
            BufferedImage image = new BufferedImage(20 + i, 24, BufferedImage.TYPE_INT_RGB);
            image.setRGB(i, 3, 0xffffff);
            ImageIO.write(image, i % 2 == 0 ? "png" : "jpg", images.resolve("img" + i + (i % 2 == 0 ? ".png" : ".jpg")).toFile());
        }
        Path run = dir.resolve("run");
        Result train = run("train", "--data", images.toString(), "--image-size", "16", "--channels", "1", "--widths", "8,16",
                "--block-depth", "1", "--epochs", "2", "--batch-size", "4", "--out", run.toString(), "--no-progress", "--device", "cpu");
        assertEquals(0, train.code(), train.err() + train.out());
        assertTrue(train.out().contains("epoch 2: train loss"), train.out());
        for (String file : new String[] {"checkpoint.safetensors", "model.safetensors", "run.json", "loss.png", "samples/epoch-001.png",
                "samples/epoch-002.png"}) {
            assertTrue(Files.exists(run.resolve(file)), file);
        }
        assertEquals(3, Files.readAllLines(run.resolve("metrics.csv")).size()); // header + 2 epochs
        // 12 images, 80% = 10 to train, batches of 4: 2 steps an epoch.
        assertEquals(1 + 4, Files.readAllLines(run.resolve("losses.csv")).size());

        Result again = run("train", "--data", images.toString(), "--out", run.toString());
        assertEquals(1, again.code());
        assertTrue(again.err().contains("--resume"), again.err());

        Result resume = run("train", "--out", run.toString(), "--resume", "--epochs", "3", "--no-progress", "--device", "cpu");
        assertEquals(0, resume.code(), resume.err());
        assertTrue(resume.out().contains("resuming"), resume.out());
        assertEquals(4, Files.readAllLines(run.resolve("metrics.csv")).size());
        assertTrue(resume.out().contains("after 6 steps"), resume.out());

        Path small = dir.resolve("small.safetensors");
        Result export = run("export", "--model", run.resolve("checkpoint.safetensors").toString(), "--out", small.toString(),
                "--ema-only", "--half");
        assertEquals(0, export.code(), export.err());
        Result sample = run("sample", "--model", small.toString(), "--count", "4", "--steps", "2", "--out",
                dir.resolve("s.png").toString(), "--device", "cpu");
        assertEquals(0, sample.code(), sample.err());
    }

    @Test
    void usageErrorsAreReportedByPicocli() {
        Result result = run("sample");
        assertEquals(2, result.code());
        assertTrue(result.err().contains("--model"), result.err());
    }
}
