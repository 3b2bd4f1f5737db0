package org.ddim4j.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.cli.CliTest.Result;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a first-time user of the CLI meets: help, usage errors, messages, output files, progress in logs, defaults. */
class CliUsabilityTest {
    private static final Path REPO = Path.of(System.getProperty("ddim4j.repo"));
    private static final Path MODEL = REPO.resolve("models/fashion-mnist-32.safetensors");
    private static final List<String> COMMANDS = List.of("demo", "train", "sample", "invert", "interpolate", "inpaint", "vary",
            "eval", "plot", "lr-find", "info", "init", "export");

    @TempDir
    Path dir;

    private static Result run(String... args) {
        return CliTest.run(args);
    }

    @Test
    void everyHelpFormatsCleanlyAndEverySummaryIsASentence() {
        Result top = run("--help");
        assertEquals(0, top.code());
        for (String command : COMMANDS) {
            Result help = run(command, "--help");
            assertEquals(0, help.code(), command);
            assertFalse((help.out() + help.err()).contains("WARN"), command + " --help: " + help.err());
            // The top-level list shows each command's first description line: it must end a sentence.
            Matcher summary = Pattern.compile("(?m)^  " + Pattern.quote(command) + "\\s+(.*(?:\\n {5,}.*)*)").matcher(top.out());
            assertTrue(summary.find(), command + " missing from ddim --help");
            String text = summary.group(1).replaceAll("\\s+", " ").strip();
            assertTrue(text.endsWith("."), command + "'s summary stops mid-sentence: " + text);
        }
    }

    @Test
    void theReadmeCliSectionNamesOnlyOptionsThatHelpShows() throws Exception {
        String readme = Files.readString(REPO.resolve("README.md"));
        String cli = readme.substring(readme.indexOf("## CLI"), readme.indexOf("## Evaluation and figures"));
        Matcher line = Pattern.compile("(?m)^scripts/ddim (\\S+)(.*(?:\\n {10,}.*)*)").matcher(cli);
        int checked = 0;
        while (line.find()) {
            String help = run(line.group(1), "--help").out();
            Matcher option = Pattern.compile("(?<![\\w-])(--[a-z][a-z-]*)").matcher(line.group(2));
            while (option.find()) {
                assertTrue(help.contains(option.group(1)), "README: ddim " + line.group(1) + " " + option.group(1) + " is not in its --help");
                checked++;
            }
        }
        assertTrue(checked > 50, "checked only " + checked + " options");
    }

    @Test
    void aUsageErrorIsOneLineAndAPointerToHelp() {
        Result result = run("sample", "--model", MODEL.toString(), "--stepz", "3");
        assertEquals(2, result.code());
        List<String> lines = result.err().lines().toList();
        assertEquals(2, lines.size(), result.err());
        assertTrue(lines.get(0).startsWith("ddim: Unknown option") && lines.get(0).contains("'--stepz'"), lines.get(0));
        assertEquals("Try 'ddim sample --help' for more information.", lines.get(1));
    }

    @Test
    void messagesNameTheOptionNotTheJavaField() {
        Path data = dir.resolve("none");
        Result lr = run("train", "--data", "fashion-mnist", "--lr", "-1", "--out", data.toString(), "--steps", "1");
        assertEquals(1, lr.code());
        assertTrue(lr.err().contains("--lr must be finite and > 0"), lr.err());
        Result batch = run("sample", "-m", MODEL.toString(), "--batch-size", "0", "-o", dir.resolve("g.png").toString());
        assertTrue(batch.err().contains("--batch-size must be >= 1"), batch.err());
        Result threads = run("sample", "-m", MODEL.toString(), "--threads", "-2", "-o", dir.resolve("g.png").toString());
        assertEquals(1, threads.code());
        assertTrue(threads.err().contains("--threads must be >= 0"), threads.err());
        Result noise = run("sample", "-m", MODEL.toString(), "--noise-in", dir.resolve("nosuch.npy").toString());
        assertTrue(noise.err().contains("no such file"), noise.err());
        Result notAnImage = run("vary", "-m", MODEL.toString(), "--image", MODEL.toString(), "-o", dir.resolve("v.png").toString());
        assertEquals(1, notAnImage.code());
        assertTrue(notAnImage.err().contains("is not an image"), notAnImage.err());
    }

    @Test
    void theOutputNameChoosesPngOrJpegAndAnyOtherIsRefusedBeforeTheWork() throws Exception {
        Path jpeg = dir.resolve("g.jpg");
        assertEquals(0, run("sample", "-m", MODEL.toString(), "-n", "2", "-s", "2", "-o", jpeg.toString(), "--no-progress").code());
        byte[] bytes = Files.readAllBytes(jpeg);
        assertEquals((byte) 0xFF, bytes[0]);
        assertEquals((byte) 0xD8, bytes[1], "a JPEG file starts with FF D8");
        Path png = dir.resolve("g.PNG");
        assertEquals(0, run("sample", "-m", MODEL.toString(), "-n", "2", "-s", "2", "-o", png.toString(), "--no-progress").code());
        assertEquals((byte) 0x89, Files.readAllBytes(png)[0], "a PNG file starts with 89 'PNG'");
        Result gif = run("sample", "-m", MODEL.toString(), "-n", "2", "-s", "2", "-o", dir.resolve("g.gif").toString());
        assertEquals(1, gif.code());
        assertTrue(gif.err().contains("must end in .png, .jpg or .jpeg"), gif.err());
        assertFalse(Files.exists(dir.resolve("g.gif")));
    }

    @Test
    void shortOptionsMeanTheLongOnes() throws Exception {
        Path shortNames = dir.resolve("short.png");
        Path longNames = dir.resolve("long.png");
        assertEquals(0, run("sample", "-m", MODEL.toString(), "-n", "3", "-s", "4", "-o", shortNames.toString(), "--no-progress").code());
        assertEquals(0, run("sample", "--model", MODEL.toString(), "--count", "3", "--steps", "4", "--out", longNames.toString(),
                "--no-progress").code());
        assertArrayEquals(Files.readAllBytes(longNames), Files.readAllBytes(shortNames));
    }

    @Test
    void progressToALogIsPlainLinesEveryFewPercent() {
        // Under the test runner stderr is a pipe, not a terminal: the lines mode.
        assertFalse(Progress.stderrIsTerminal());
        Result result = run("sample", "-m", MODEL.toString(), "-n", "2", "-s", "40", "-o", dir.resolve("g.png").toString());
        assertEquals(0, result.code(), result.err());
        List<String> lines = result.err().lines().filter(l -> l.startsWith("sample: ")).toList();
        assertTrue(lines.size() >= 20 && lines.size() <= 21, lines.toString());
        assertTrue(lines.getLast().startsWith("sample: 100% (40/40 steps"), lines.getLast());
        assertFalse(result.err().contains("\r"), "no carriage returns in a log");
    }

    @Test
    void trainTakesTheModelShapeFromTheDataAndSaysSo() {
        Path run = dir.resolve("run");
        Result result = run("train", "--data", "fashion-mnist", "--limit", "80", "--widths", "8,16", "--block-depth", "1",
                "--steps", "1", "--batch-size", "16", "--out", run.toString(), "--no-progress", "--device", "cpu");
        assertEquals(0, result.code(), result.err());
        assertTrue(result.out().contains("model shape from the data: 1 channel(s), 28x28"), result.out());
        try (Ddim ddim = Ddim.open(run.resolve(TrainingRun.MODEL_FILE), Device.cpu())) {
            assertEquals(1, ddim.config().channels());
            assertEquals(28, ddim.config().imageSize(), "28 is a multiple of 2^2 (two widths)");
        }
    }

    @Test
    void sampleEveryBoundsThePreviewGridsOfASmallDataset() throws Exception {
        Path run = dir.resolve("small");
        // 40 images, 32 to train in batches of 16: an epoch is 2 steps, 30 steps are 15 epochs.
        Result result = run("train", "--data", "fashion-mnist", "--limit", "40", "--widths", "8,16", "--block-depth", "1",
                "--steps", "30", "--batch-size", "16", "--sample-every", "10", "--out", run.toString(), "--no-progress",
                "--device", "cpu");
        assertEquals(0, result.code(), result.err());
        List<String> grids = new ArrayList<>();
        try (var files = Files.list(run.resolve("samples"))) {
            files.forEach(file -> grids.add(file.getFileName().toString()));
        }
        assertEquals(List.of("epoch-005.png", "epoch-010.png", "epoch-015.png"), grids.stream().sorted().toList());
    }

    @Test
    void demoRefusesToReplaceARunWithoutForce() throws Exception {
        Path runDir = Files.createDirectories(dir.resolve("demo"));
        Files.writeString(runDir.resolve("checkpoint.safetensors"), "a previous run");
        Result result = run("demo", "--out", runDir.toString(), "--images", "160", "--epochs", "1", "--device", "cpu");
        assertEquals(1, result.code());
        assertTrue(result.err().contains("already holds a run: pass --force"), result.err());
        assertEquals("a previous run", Files.readString(runDir.resolve("checkpoint.safetensors")));
    }
}
