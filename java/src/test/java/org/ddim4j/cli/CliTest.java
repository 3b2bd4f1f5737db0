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
    void usageErrorsAreReportedByPicocli() {
        Result result = run("sample");
        assertEquals(2, result.code());
        assertTrue(result.err().contains("--model"), result.err());
    }
}
