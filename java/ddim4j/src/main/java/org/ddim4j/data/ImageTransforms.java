package org.ddim4j.data;

import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;

/** The reference's transform: centre crop to a square, resize, and conversion to channel planes in [0, 1]. */
final class ImageTransforms {
    private ImageTransforms() {}

    /** The reference's whole transform: centre crop, resize to size x size, then channel planes in [0, 1]. */
    static float[] toModelInput(BufferedImage image, int size, int channels) {
        return toPlanes(centerCropResize(image, size), channels);
    }

    /** Centre-crops {@code image} to a square and resizes it to size x size (bilinear; halving steps first when shrinking, to avoid aliasing). */
    static BufferedImage centerCropResize(BufferedImage image, int size) {
        int side = Math.min(image.getWidth(), image.getHeight());
        BufferedImage current = toArgb(image.getSubimage((image.getWidth() - side) / 2, (image.getHeight() - side) / 2, side, side));
        while (current.getWidth() >= 2 * size) {
            current = scale(current, current.getWidth() / 2);
        }
        return current.getWidth() == size ? current : scale(current, size);
    }

    /** Channel planes in [0, 1]: 1 luma; 2 luma + alpha; 3 RGB; 4 RGBA. */
    static float[] toPlanes(BufferedImage image, int channels) {
        int width = image.getWidth();
        int height = image.getHeight();
        int plane = width * height;
        float[] planes = new float[channels * plane];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int argb = image.getRGB(x, y);
                float alpha = (argb >>> 24) / 255f;
                float red = ((argb >> 16) & 0xff) / 255f;
                float green = ((argb >> 8) & 0xff) / 255f;
                float blue = (argb & 0xff) / 255f;
                int p = y * width + x;
                if (channels <= 2) {
                    planes[p] = 0.299f * red + 0.587f * green + 0.114f * blue; // ITU-R BT.601 luma, as PIL's "L"
                    if (channels == 2) {
                        planes[plane + p] = alpha;
                    }
                } else {
                    planes[p] = red;
                    planes[plane + p] = green;
                    planes[2 * plane + p] = blue;
                    if (channels == 4) {
                        planes[3 * plane + p] = alpha;
                    }
                }
            }
        }
        return planes;
    }

    private static BufferedImage toArgb(BufferedImage image) {
        BufferedImage argb = new BufferedImage(image.getWidth(), image.getHeight(), BufferedImage.TYPE_INT_ARGB);
        Graphics2D graphics = argb.createGraphics();
        try {
            graphics.drawImage(image, 0, 0, null);
        } finally {
            graphics.dispose();
        }
        return argb;
    }

    private static BufferedImage scale(BufferedImage image, int size) {
        BufferedImage scaled = new BufferedImage(size, size, BufferedImage.TYPE_INT_ARGB);
        Graphics2D graphics = scaled.createGraphics();
        try {
            graphics.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
            graphics.setRenderingHint(RenderingHints.KEY_RENDERING, RenderingHints.VALUE_RENDER_QUALITY);
            graphics.drawImage(image, 0, 0, size, size, null);
        } finally {
            graphics.dispose();
        }
        return scaled;
    }
}
