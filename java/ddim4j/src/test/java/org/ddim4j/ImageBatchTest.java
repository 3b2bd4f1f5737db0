package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageBatchTest {
    @TempDir
    Path dir;

    /** Two 2x3 RGB images with known pixels: image i, channel c, pixel p has value (i * 6 + p) / 11 scaled per channel. */
    private static ImageBatch rgb() {
        float[] pixels = new float[2 * 3 * 2 * 3];
        for (int i = 0; i < 2; i++) {
            for (int c = 0; c < 3; c++) {
                for (int p = 0; p < 6; p++) {
                    pixels[((i * 3) + c) * 6 + p] = (i * 6 + p) / 11f * (c + 1) / 3f;
                }
            }
        }
        return new ImageBatch(2, 3, 2, 3, pixels);
    }

    @Test
    void imageMapsChannelsToRgb() {
        BufferedImage image = rgb().image(1);
        assertEquals(3, image.getWidth());
        assertEquals(2, image.getHeight());
        int argb = image.getRGB(2, 1); // pixel p = 5 of image 1
        float base = (6 + 5) / 11f;
        assertEquals(Math.round(base / 3 * 255), (argb >> 16) & 0xff);
        assertEquals(Math.round(base * 2 / 3 * 255), (argb >> 8) & 0xff);
        assertEquals(Math.round(base * 255), argb & 0xff);
    }

    @Test
    void greyscaleAndAlpha() {
        ImageBatch grey = new ImageBatch(1, 1, 1, 2, new float[] {0f, 1f});
        assertEquals(BufferedImage.TYPE_BYTE_GRAY, grey.image(0).getType());
        assertEquals(255, grey.image(0).getRaster().getSample(1, 0, 0));
        ImageBatch greyAlpha = new ImageBatch(1, 2, 1, 1, new float[] {1f, 0.5f});
        assertEquals(128, greyAlpha.image(0).getRGB(0, 0) >>> 24);
    }

    @Test
    void pngAndGridAreWrittenAndReadBack() throws IOException {
        ImageBatch batch = rgb();
        Path png = dir.resolve("nested/one.png");
        batch.writePng(0, png);
        BufferedImage read = ImageIO.read(png.toFile());
        assertEquals(batch.image(0).getRGB(1, 1), read.getRGB(1, 1));
        Path grid = dir.resolve("grid.png");
        batch.writeGrid(grid, 1);
        BufferedImage gridImage = ImageIO.read(grid.toFile());
        assertEquals(3, gridImage.getWidth());
        assertEquals(2 * 2 + 2, gridImage.getHeight()); // two rows and a 2-pixel gap
        assertEquals(batch.image(1).getRGB(0, 0), gridImage.getRGB(0, 4));
    }

    @Test
    void badShapesAndIndicesAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new ImageBatch(1, 3, 2, 2, new float[11]));
        assertThrows(IllegalArgumentException.class, () -> new ImageBatch(1, 5, 1, 1, new float[5]));
        assertThrows(IndexOutOfBoundsException.class, () -> rgb().image(2));
        assertThrows(IllegalArgumentException.class, () -> rgb().writeGrid(dir.resolve("g.png"), 0));
    }

    @Test
    void pixelsAreDefensivelyCopied() {
        float[] pixels = {0.25f};
        ImageBatch batch = new ImageBatch(1, 1, 1, 1, pixels);
        pixels[0] = 1f;
        batch.pixels()[0] = 1f;
        assertEquals(0.25f, batch.pixels()[0]);
    }
}
