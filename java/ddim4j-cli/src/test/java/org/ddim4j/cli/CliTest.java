package org.ddim4j.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CancellationException;

import javax.imageio.ImageIO;

import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.ImageBatch;
import org.ddim4j.ImageSink;
import org.ddim4j.Noise;
import org.ddim4j.Network;
import org.ddim4j.Precision;
import org.ddim4j.SampleOptions;
import org.ddim4j.Sampler;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CliTest {
    @TempDir
    Path dir;

    record Result(int code, String out, String err) {}

    static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Result(code, out.toString(), err.toString());
    }

    /** The PNGs `ddim sample --each` writes with {@code flags}, by name. */
    private Map<String, byte[]> cliImages(Path model, String name, String... flags) throws IOException {
        Path out = dir.resolve(name);
        List<String> args = new ArrayList<>(List.of("sample", "--model", model.toString(), "--count", "3", "--steps", "3",
                "--each", out.toString(), "--no-progress", "--device", "cpu"));
        args.addAll(List.of(flags));
        Result result = run(args.toArray(String[]::new));
        assertEquals(0, result.code(), result.err());
        return pngsIn(out);
    }

    /** The PNGs the Java API writes for {@code options}, by name. */
    private Map<String, byte[]> apiImages(Path model, String name, SampleOptions options) throws IOException {
        Path out = dir.resolve(name);
        try (Ddim ddim = Ddim.open(model, Device.cpu())) {
            ddim.sample(options, ImageSink.pngFiles(Files.createDirectories(out)));
        }
        return pngsIn(out);
    }

    private static Map<String, byte[]> pngsIn(Path directory) throws IOException {
        Map<String, byte[]> images = new TreeMap<>();
        try (var files = Files.list(directory)) {
            for (Path file : files.toList()) {
                images.put(file.getFileName().toString(), Files.readAllBytes(file));
            }
        }
        return images;
    }

    private static void assertSameImages(Map<String, byte[]> expected, Map<String, byte[]> actual, String what) {
        assertEquals(expected.keySet(), actual.keySet(), what);
        for (String name : expected.keySet()) {
            assertArrayEquals(expected.get(name), actual.get(name), what + ": " + name);
        }
    }

    @Test
    void everySamplingFlagReachesTheApi() throws Exception {
        Path model = Path.of(System.getProperty("ddim4j.repo"), "models", "fashion-mnist-32.safetensors");
        SampleOptions.Builder base = SampleOptions.builder().count(3).steps(3);
        Map<String, byte[]> plain = cliImages(model, "plain");
        assertSameImages(apiImages(model, "plain-api", base.build()), plain, "defaults");
        record Case(List<String> flags, SampleOptions options, boolean changesPixels) {}
        List<Case> cases = List.of(
                new Case(List.of("--sampler", "ddpm"), base.sampler(Sampler.DDPM).build(), true),
                new Case(List.of("--eta", "0.5"), base.sampler(Sampler.DDIM).eta(0.5).build(), true),
                new Case(List.of("--first-index", "5"), base.eta(0).firstIndex(5).build(), true),
                // A micro-batch changes rounding only where the kernels differ by batch shape: equality is what counts.
                new Case(List.of("--micro-batch", "2"), base.firstIndex(0).microBatch(2).build(), false),
                new Case(List.of("--precision", "bfloat16"), base.microBatch(SampleOptions.DEFAULT_MICRO_BATCH)
                        .precision(Precision.BFLOAT16).build(), true),
                // Eager rounds differently from the default (fused) in the last bits, which 8-bit PNGs rarely
                // show: equality with the API is what counts.
                new Case(List.of("--network", "eager"), base.precision(Precision.FLOAT32).network(Network.EAGER).build(), false),
                new Case(List.of("--network", "fused"), base.network(Network.FUSED).build(), false));
        for (Case c : cases) {
            String name = String.join("", c.flags()).replace("-", "");
            Map<String, byte[]> cli = cliImages(model, name, c.flags().toArray(String[]::new));
            assertSameImages(apiImages(model, name + "-api", c.options()), cli, String.join(" ", c.flags()));
            boolean differs = false;
            for (String image : cli.keySet()) {
                differs |= !Arrays.equals(cli.get(image), plain.get(image));
            }
            assertTrue(differs || !c.changesPixels(), String.join(" ", c.flags()) + " changed nothing");
        }
    }

    @Test
    void demoWithTinySettingsTrainsAndWritesItsGrid() throws Exception {
        Path runDir = dir.resolve("demo");
        Result result = run("demo", "--images", "160", "--epochs", "1", "--out", runDir.toString(), "--no-progress", "--device", "cpu");
        assertEquals(0, result.code(), result.err());
        Path grid = runDir.resolve("demo-samples.png");
        assertTrue(result.out().contains("demo samples: " + grid.toAbsolutePath()), result.out());
        BufferedImage image = ImageIO.read(grid.toFile());
        assertEquals(image.getWidth(), image.getHeight(), "8 x 8 images");
        assertTrue(image.getWidth() >= 8 * 32, "width " + image.getWidth());
        try (Ddim checkpoint = Ddim.open(runDir.resolve("checkpoint.safetensors"), Device.cpu())) {
            assertEquals(2, checkpoint.trainingSteps());  // 128 training images in batches of 64, one epoch
            assertTrue(checkpoint.hasEma());
        }
        assertTrue(Files.exists(runDir.resolve(TrainingRun.MODEL_FILE)));
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
        assertTrue(badSteps.err().contains("steps must lie in [1, 10000], got 0"), badSteps.err());

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
                "--block-depth", "1", "--epochs", "2", "--batch-size", "4", "--sample-every", "1", "--out", run.toString(), "--no-progress",
                "--device", "cpu");
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
    void anUnwritableRunDirectoryGivesOneClearLineAndExitCodeOne() throws Exception {
        // Under a regular file: unwritable even for root, whom permission bits do not stop.
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        Path out = file.resolve("run");
        Result result = run("train", "--data", "fashion-mnist", "--limit", "8", "--image-size", "16", "--channels", "1", "--steps", "1",
                "--out", out.toString(), "--no-progress", "--device", "cpu");
        assertEquals(1, result.code(), result.err());
        assertTrue(result.err().startsWith("ddim: ") && result.err().contains(file.toString()), result.err());
        assertEquals(1, result.err().strip().lines().count(), result.err());
        assertFalse(result.err().contains("Exception") || result.err().contains("\tat "), result.err());

        Result sample = run("sample", "--model", dir.resolve("none.safetensors").toString(), "--out", out.resolve("grid.png").toString());
        assertEquals(1, sample.code(), sample.err());
        assertEquals(1, sample.err().strip().lines().count(), sample.err());
    }

    @Test
    void expectedFailuresBecomeOneLineAndBugsKeepTheirStackTrace() {
        assertEquals("/runs/a: permission denied", Main.userMessage(new AccessDeniedException("/runs/a")));
        assertEquals("/runs/a: permission denied", Main.userMessage(new UncheckedIOException(new AccessDeniedException("/runs/a"))));
        assertEquals("cannot write /runs/a/run.json: /runs/a/.run.json.tmp-1 (permission denied)", Main.userMessage(
                new UncheckedIOException("cannot write /runs/a/run.json: /runs/a/.run.json.tmp-1", new AccessDeniedException("/runs/a/.run.json.tmp-1"))));
        assertEquals("/x/y: Not a directory", Main.userMessage(new FileSystemException("/x/y", null, "Not a directory")));
        assertEquals("/m.safetensors: no such file or directory", Main.userMessage(new NoSuchFileException("/m.safetensors")));
        assertEquals("No space left on device", Main.userMessage(new IOException("No space left on device")));
        assertEquals("this Ddim is closed", Main.userMessage(new IllegalStateException("this Ddim is closed")));
        assertEquals("cancelled", Main.userMessage(new CancellationException()));
        assertEquals(null, Main.userMessage(new NullPointerException("a bug")));
        assertEquals(null, Main.userMessage(new ArrayIndexOutOfBoundsException(3)), "bugs are rethrown, with their stack trace");
    }

    @Test
    void usageErrorsAreReportedByPicocli() {
        Result result = run("sample");
        assertEquals(2, result.code());
        assertTrue(result.err().contains("--model"), result.err());
    }

    private Path tinyModel() {
        Path model = dir.resolve("tiny.safetensors");
        Result init = run("init", "--out", model.toString(), "--channels", "1", "--image-size", "16", "--widths", "8,16",
                "--block-depth", "1", "--embedding-dim", "8", "--device", "cpu");
        assertEquals(0, init.code(), init.err());
        return model;
    }

    @Test
    void noiseOutThenNoiseInRegeneratesTheSameImages() throws Exception {
        Path model = tinyModel();
        Path first = dir.resolve("a.png");
        Path noise = dir.resolve("noise.npy");
        Result a = run("sample", "--model", model.toString(), "--count", "5", "--steps", "2", "--seed", "9", "--batch-size", "2",
                "--out", first.toString(), "--noise-out", noise.toString(), "--device", "cpu", "--no-progress");
        assertEquals(0, a.code(), a.err());
        Path second = dir.resolve("b.png");
        Result b = run("sample", "--model", model.toString(), "--steps", "2", "--seed", "1", "--noise-in", noise.toString(),
                "--out", second.toString(), "--device", "cpu", "--no-progress");
        assertEquals(0, b.code(), b.err());
        assertTrue(b.out().contains("wrote 5 image(s)"), b.out());
        assertArrayEquals(Files.readAllBytes(first), Files.readAllBytes(second));

        Path each = dir.resolve("each");
        Path streamedNoise = dir.resolve("streamed.npy");
        Result streamed = run("sample", "--model", model.toString(), "--count", "5", "--steps", "2", "--seed", "9", "--batch-size",
                "2", "--each", each.toString(), "--noise-out", streamedNoise.toString(), "--device", "cpu", "--no-progress");
        assertEquals(0, streamed.code(), streamed.err());
        try (var files = Files.list(each)) {
            assertEquals(5, files.count());
        }
        assertArrayEquals(Files.readAllBytes(noise), Files.readAllBytes(streamedNoise));
    }

    @Test
    void editingCommandsWritePngs() throws Exception {
        Path model = tinyModel();
        Path picture = dir.resolve("picture.png");
        BufferedImage source = new BufferedImage(20, 16, BufferedImage.TYPE_INT_RGB);
        for (int x = 0; x < 20; x++) {
            for (int y = 0; y < 16; y++) {
                source.setRGB(x, y, (x * 12) << 16 | (y * 15) << 8 | 90);
            }
        }
        ImageIO.write(source, "png", picture.toFile());
        Path mask = dir.resolve("mask.png");
        BufferedImage maskImage = new BufferedImage(16, 16, BufferedImage.TYPE_BYTE_GRAY);
        maskImage.getRaster().setSample(3, 3, 0, 255);
        ImageIO.write(maskImage, "png", mask.toFile());
        String[] common = {"--model", model.toString(), "--steps", "3", "--device", "cpu", "--no-progress"};

        Path noise = dir.resolve("inverted.npy");
        Path inversion = dir.resolve("inversion.png");
        Result invert = run(concat(new String[] {"invert", "--images", picture.toString(), "--noise-out", noise.toString(), "--out",
                inversion.toString()}, common));
        assertEquals(0, invert.code(), invert.err());
        assertTrue(invert.out().contains("mean absolute pixel error"), invert.out());
        assertEquals(2 * 16 + 2, ImageIO.read(inversion.toFile()).getHeight(), "originals over reconstructions");
        // The noise is the API's inversion of the same picture, bit for bit, and regenerates it as the CLI said.
        try (Ddim ddim = Ddim.open(model, Device.cpu())) {
            ImageBatch originals = InputImages.read(picture.toString(), ddim.config(), 8);
            SampleOptions three = SampleOptions.builder().steps(3).build();
            Noise expected = ddim.invert(originals, three);
            assertArrayEquals(expected.values(), Noise.read(noise).values());
            double error = ddim.sample(three.toBuilder().noise(expected).build()).meanAbsoluteDifference(originals);
            assertTrue(invert.out().contains(String.format(Locale.ROOT, "error %.4f", error)), invert.out() + " vs " + error);
        }

        Path strip = dir.resolve("strip.png");
        Result interpolate = run(concat(new String[] {"interpolate", "--frames", "5", "--out", strip.toString()}, common));
        assertEquals(0, interpolate.code(), interpolate.err());
        assertEquals(5 * 16 + 4 * 2, ImageIO.read(strip.toFile()).getWidth());
        // The strip runs from the seed's image 0 to its image 1: its ends are exactly those samples.
        try (Ddim ddim = Ddim.open(model, Device.cpu())) {
            SampleOptions three = SampleOptions.builder().steps(3).build();
            ImageBatch strip5 = ddim.interpolate(ddim.noise(42, 0, 1), ddim.noise(42, 1, 1), 5, three);
            ImageBatch ends = ddim.sample(three.toBuilder().count(2).build());
            assertArrayEquals(ends.slice(0, 1).pixels(), strip5.slice(0, 1).pixels());
            assertArrayEquals(ends.slice(1, 2).pixels(), strip5.slice(4, 5).pixels());
            Path expected = dir.resolve("expected-strip.png");
            strip5.writeGrid(expected, 5);
            assertArrayEquals(Files.readAllBytes(expected), Files.readAllBytes(strip), "interpolate");
        }

        Path filled = dir.resolve("filled.png");
        Result inpaint = run(concat(new String[] {"inpaint", "--image", picture.toString(), "--mask", mask.toString(), "--count", "2",
                "--out", filled.toString()}, common));
        assertEquals(0, inpaint.code(), inpaint.err());
        assertEquals(3 * 16 + 2 * 2, ImageIO.read(filled.toFile()).getWidth());

        Path varied = dir.resolve("varied.png");
        Result vary = run(concat(new String[] {"vary", "--image", picture.toString(), "--strength", "0.3", "--count", "3", "--out",
                varied.toString()}, common));
        assertEquals(0, vary.code(), vary.err());
        assertEquals(4 * 16 + 3 * 2, ImageIO.read(varied.toFile()).getWidth());

        // Both grids are the original beside what the API makes of it, byte for byte.
        try (Ddim ddim = Ddim.open(model, Device.cpu())) {
            ImageBatch original = InputImages.read(picture.toString(), ddim.config(), 1);
            SampleOptions three = SampleOptions.builder().steps(3).build();
            Path expected = dir.resolve("expected.png");
            ImageBatch.concat(original, ddim.inpaint(original.repeat(2), InputImages.readMask(mask, ddim.config()), three))
                    .writeGrid(expected, 3);
            assertArrayEquals(Files.readAllBytes(expected), Files.readAllBytes(filled), "inpaint");
            ImageBatch.concat(original, ddim.vary(original.repeat(3), 0.3, three)).writeGrid(expected, 4);
            assertArrayEquals(Files.readAllBytes(expected), Files.readAllBytes(varied), "vary");
        }

        Result badStrength = run(concat(new String[] {"vary", "--image", picture.toString(), "--strength", "1.5"}, common));
        assertEquals(1, badStrength.code());
        assertTrue(badStrength.err().contains("--strength must lie in (0, 1]"), badStrength.err());
        Result noMask = run(concat(new String[] {"inpaint", "--image", picture.toString(), "--mask", dir.resolve("none.png").toString()},
                common));
        assertEquals(1, noMask.code());
        assertTrue(noMask.err().contains("no mask file"), noMask.err());
    }

    @Test
    void evalPlotsAndLrFindEndToEnd() throws Exception {
        String model = Path.of(System.getProperty("ddim4j.repo", ".."), "models", "fashion-mnist-32.safetensors").toString();
        Path json = dir.resolve("eval.json");
        Result eval = run("eval", "--model", model, "--data", "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                "--count", "32", "--steps", "5", "--subsets", "10", "--json", json.toString(), "--no-progress", "--device", "cpu");
        assertEquals(0, eval.code(), eval.err());
        assertTrue(eval.out().contains("KID") && eval.out().contains("noise_loss") && eval.out().contains("image_loss"), eval.out());
        com.fasterxml.jackson.databind.JsonNode figures = new com.fasterxml.jackson.databind.ObjectMapper().readTree(json.toFile());
        assertTrue(Double.isFinite(figures.get("kid").asDouble()));
        assertEquals(32, figures.get("generated").asInt());
        // No --extractor: the shipped Fashion-MNIST extractor is the default.
        assertEquals(org.ddim4j.FeatureExtractor.DEFAULT_FILE, Path.of(figures.get("extractor").asText()).getFileName().toString());

        for (String[] plot : new String[][] {
                {"plot", "schedules", "--out", dir.resolve("schedules.png").toString()},
                {"plot", "embedding", "--out", dir.resolve("embedding.png").toString()},
                {"plot", "process", "--model", model, "--device", "cpu", "--out", dir.resolve("process.png").toString()}}) {
            Result result = run(plot);
            assertEquals(0, result.code(), result.err());
            Path png = Path.of(plot[plot.length - 1]);
            assertTrue(ImageIO.read(png.toFile()).getWidth() > 100, png.toString());
        }

        Path lr = dir.resolve("lr.png");
        Result find = run("lr-find", "--data", "fashion-mnist", "--limit", "256", "--channels", "1", "--image-size", "16", "--widths",
                "8,16", "--block-depth", "1", "--embedding-dim", "8", "--steps", "20", "--batch-size", "8", "--device", "cpu",
                "--out", lr.toString());
        assertEquals(0, find.code(), find.err());
        assertTrue(find.out().contains("suggested learning rate"), find.out());
        assertTrue(Files.readAllLines(dir.resolve("lr.csv")).size() > 10);
        assertTrue(ImageIO.read(lr.toFile()).getWidth() > 100);

        Result missing = run("eval", "--model", model, "--data", "fashion-mnist", "--extractor", dir.resolve("none.pt").toString());
        assertEquals(1, missing.code());
        assertTrue(missing.err().startsWith("ddim: IO:"), missing.err());
    }

    private static String[] concat(String[] a, String[] b) {
        String[] all = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
