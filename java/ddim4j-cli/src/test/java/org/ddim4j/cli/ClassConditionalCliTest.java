package org.ddim4j.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import javax.imageio.ImageIO;

import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `ddim train --class-conditional` on a folder of class subfolders, then --class and --guidance in the sampling commands. */
class ClassConditionalCliTest {
    @TempDir
    static Path dir;
    static Path model;

    private static CliTest.Result run(String... args) {
        return CliTest.run(args);
    }

    /** Two classes of 20x20 pictures: dark "boots" and bright "sandals". */
    @BeforeAll
    static void trainOnClassFolders() throws IOException {
        Path data = dir.resolve("shoes");
        for (int i = 0; i < 8; i++) {
            for (String kind : new String[] {"boots", "sandals"}) {
                BufferedImage image = new BufferedImage(20, 20, BufferedImage.TYPE_BYTE_GRAY);
                for (int x = 0; x < 20; x++) {
                    for (int y = 0; y < 20; y++) {
                        int base = kind.equals("boots") ? 40 : 200;
                        image.getRaster().setSample(x, y, 0, base + (x * 7 + y * 3 + i * 5) % 40);
                    }
                }
                Path file = data.resolve(kind).resolve(i + ".png");
                Files.createDirectories(file.getParent());
                ImageIO.write(image, "png", file.toFile());
            }
        }
        Path out = dir.resolve("run");
        CliTest.Result train = run("train", "--data", data.toString(), "--class-conditional", "--label-dropout", "0.2", "--channels",
                "1", "--image-size", "16", "--widths", "8,16", "--block-depth", "1", "--embedding-dim", "8", "--steps", "3",
                "--batch-size", "4", "--out", out.toString(), "--no-progress", "--device", "cpu", "--sample-every", "1000");
        assertEquals(0, train.code(), train.err());
        assertTrue(train.out().contains("classes from the data: 2 (boots, sandals)"), train.out());
        model = out.resolve("model.safetensors");
    }

    @Test
    void theModelFileKeepsTheClassNamesAndInfoListsThem() {
        try (Ddim ddim = Ddim.open(model, Device.cpu())) {
            assertEquals(2, ddim.config().classes());
            assertEquals(java.util.List.of("boots", "sandals"), ddim.config().classNames());
        }
        CliTest.Result info = run("info", "--model", model.toString(), "--device", "cpu");
        assertEquals(0, info.code(), info.err());
        assertTrue(info.out().contains("classes:     2 (0 boots, 1 sandals)"), info.out());
    }

    @Test
    void sampleDrawsANamedClassWithGuidance() throws IOException {
        Path sandals = dir.resolve("sandals.png");
        CliTest.Result result = run("sample", "--model", model.toString(), "--class", "sandal", "--guidance", "3", "--count", "4",
                "--steps", "3", "--out", sandals.toString(), "--no-progress", "--device", "cpu");
        assertEquals(0, result.code(), result.err());
        assertTrue(result.out().contains("class sandals, guidance 3.0"), result.out());
        Path boots = dir.resolve("boots.png");
        assertEquals(0, run("sample", "--model", model.toString(), "--class", "1", "--guidance", "3", "--count", "4", "--steps", "3",
                "--out", boots.toString(), "--no-progress", "--device", "cpu").code());
        assertArrayEquals(Files.readAllBytes(sandals), Files.readAllBytes(boots), "class 1 is sandals");
        Path other = dir.resolve("other.png");
        assertEquals(0, run("sample", "--model", model.toString(), "--class", "boots", "--guidance", "3", "--count", "4", "--steps",
                "3", "--out", other.toString(), "--no-progress", "--device", "cpu").code());
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(sandals), Files.readAllBytes(other)));
    }

    @Test
    void classAllDrawsOneRowPerClass() throws IOException {
        Path grid = dir.resolve("all.png");
        CliTest.Result result = run("sample", "--model", model.toString(), "--class", "all", "--columns", "3", "--guidance", "2",
                "--steps", "2", "--out", grid.toString(), "--no-progress", "--device", "cpu");
        assertEquals(0, result.code(), result.err());
        assertTrue(result.out().contains("wrote 6 image(s)") && result.out().contains("one row per class"), result.out());
        BufferedImage image = ImageIO.read(grid.toFile());
        assertEquals(2 * 16 + 2, image.getHeight(), "two rows of 16-pixel images, 2 pixels apart");
        assertEquals(3 * 16 + 2 * 2, image.getWidth(), "three columns");
    }

    @Test
    void editingCommandsTakeTheClass() {
        Path strip = dir.resolve("strip.png");
        CliTest.Result result = run("interpolate", "--model", model.toString(), "--class", "boots", "--guidance", "2", "--frames", "3",
                "--steps", "2", "--out", strip.toString(), "--no-progress", "--device", "cpu");
        assertEquals(0, result.code(), result.err());
        assertTrue(Files.isRegularFile(strip));
    }

    @Test
    void mistakesAreOneClearLine() {
        CliTest.Result unknown = run("sample", "--model", model.toString(), "--class", "sneaker", "--steps", "1", "--no-progress",
                "--device", "cpu", "--out", dir.resolve("x.png").toString());
        assertEquals(1, unknown.code(), unknown.out());
        assertTrue(unknown.err().contains("no class 'sneaker': the model's classes are boots, sandals"), unknown.err());
        CliTest.Result guidanceAlone = run("sample", "--model", model.toString(), "--guidance", "3", "--steps", "1", "--no-progress",
                "--device", "cpu", "--out", dir.resolve("y.png").toString());
        assertEquals(1, guidanceAlone.code());
        assertTrue(guidanceAlone.err().contains("--guidance needs --class"), guidanceAlone.err());
        CliTest.Result unlabelled = run("train", "--data", "fashion-mnist-absent-" + System.nanoTime(), "--class-conditional", "--steps",
                "1", "--out", dir.resolve("never").toString(), "--no-progress", "--device", "cpu");
        assertEquals(1, unlabelled.code());
    }
}
