package org.ddim4j;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

import org.ddim4j.ffi.ddim_config;
import org.ddim4j.ffi.ddim_h;

/**
 * The architecture and diffusion process of a model. The defaults are the reference's: 3x64x64
 * images, U-Net widths 32-64-96-128, block depth 2, a 32-dimensional noise embedding, the cosine
 * schedule with signal rates 0.02..0.95, predicting the noise.
 *
 * <pre>{@code
 * ModelConfig config = ModelConfig.builder().channels(1).imageSize(32).build();
 * }</pre>
 *
 * Valid configurations: channels 1..4; image size divisible by 2^(number of widths); 1..8 positive
 * widths; block depth >= 1; even embedding size. {@link Builder#build()} checks them with the native
 * core's own validation and throws {@link IllegalArgumentException} naming the bad field.
 */
public final class ModelConfig {
    private final int channels;
    private final int imageSize;
    private final int[] widths;
    private final int blockDepth;
    private final int embeddingDim;
    private final Schedule schedule;
    private final Target target;

    private ModelConfig(Builder builder) {
        this.channels = builder.channels;
        this.imageSize = builder.imageSize;
        this.widths = builder.widths.clone();
        this.blockDepth = builder.blockDepth;
        this.embeddingDim = builder.embeddingDim;
        this.schedule = builder.schedule;
        this.target = builder.target;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The reference configuration. */
    public static ModelConfig defaults() {
        return builder().build();
    }

    /** A builder starting from this configuration. */
    public Builder toBuilder() {
        return new Builder()
                .channels(channels)
                .imageSize(imageSize)
                .widths(widths)
                .blockDepth(blockDepth)
                .embeddingDim(embeddingDim)
                .schedule(schedule)
                .target(target);
    }

    public int channels() {
        return channels;
    }

    public int imageSize() {
        return imageSize;
    }

    public int[] widths() {
        return widths.clone();
    }

    public int blockDepth() {
        return blockDepth;
    }

    public int embeddingDim() {
        return embeddingDim;
    }

    public Schedule schedule() {
        return schedule;
    }

    public Target target() {
        return target;
    }

    /** Floats in one image: channels x imageSize x imageSize. */
    public int pixelsPerImage() {
        return channels * imageSize * imageSize;
    }

    /** Floats in {@code count} images of this shape; more than one Java array holds is an {@link IllegalArgumentException}. */
    long floatsFor(int count) {
        long floats = (long) count * pixelsPerImage();
        if (floats > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(count + " images of " + pixelsPerImage()
                    + " floats do not fit one Java array; use sample(options, sink) or fewer images at a time");
        }
        return floats;
    }

    /** How many images of this shape {@code pixels} holds; a partial image or none is an error. */
    int imageCount(float[] pixels) {
        java.util.Objects.requireNonNull(pixels, "pixels");
        int perImage = pixelsPerImage();
        if (pixels.length == 0 || pixels.length % perImage != 0) {
            throw new IllegalArgumentException("pixels must hold a whole, non-zero number of " + channels + "x" + imageSize + "x"
                    + imageSize + " images (" + perImage + " floats each), got " + pixels.length + " floats");
        }
        return pixels.length / perImage;
    }

    /**
     * The sinusoidal embedding this configuration's U-Net gives each noise variance (noise rate
     * squared): row i holds {@code embeddingDim()} values, sines then cosines of 2 pi f v_i, with
     * frequencies f spaced geometrically from 1 to 1000.
     */
    public float[][] noiseEmbedding(float... noiseVariances) {
        if (noiseVariances.length == 0) {
            throw new IllegalArgumentException("need at least one noise variance");
        }
        NativeLibrary.load();
        try (Arena arena = Arena.ofConfined()) {
            long floats = (long) noiseVariances.length * embeddingDim();
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, floats);
            Native.check(ddim_h.ddim_noise_embedding(toNative(arena), arena.allocateFrom(ValueLayout.JAVA_FLOAT, noiseVariances),
                    noiseVariances.length, out, floats));
            float[][] rows = new float[noiseVariances.length][];
            for (int i = 0; i < rows.length; i++) {
                rows[i] = out.asSlice(4L * i * embeddingDim(), 4L * embeddingDim()).toArray(ValueLayout.JAVA_FLOAT);
            }
            return rows;
        }
    }

    MemorySegment toNative(Arena arena) {
        MemorySegment config = ddim_config.allocate(arena);
        ddim_config.channels(config, channels);
        ddim_config.image_size(config, imageSize);
        ddim_config.num_widths(config, widths.length);
        for (int i = 0; i < Math.min(widths.length, ddim_h.DDIM_MAX_WIDTHS()); i++) {
            ddim_config.widths(config, i, widths[i]);
        }
        ddim_config.block_depth(config, blockDepth);
        ddim_config.embedding_dim(config, embeddingDim);
        schedule.writeTo(ddim_config.schedule(config));
        ddim_config.target(config, target == Target.NOISE ? ddim_h.DDIM_TARGET_NOISE() : ddim_h.DDIM_TARGET_IMAGE());
        return config;
    }

    static ModelConfig fromNative(MemorySegment config) {
        int[] widths = new int[ddim_config.num_widths(config)];
        for (int i = 0; i < widths.length; i++) {
            widths[i] = ddim_config.widths(config, i);
        }
        return builder()
                .channels(ddim_config.channels(config))
                .imageSize(ddim_config.image_size(config))
                .widths(widths)
                .blockDepth(ddim_config.block_depth(config))
                .embeddingDim(ddim_config.embedding_dim(config))
                .schedule(Schedule.fromNative(ddim_config.schedule(config)))
                .target(ddim_config.target(config) == ddim_h.DDIM_TARGET_NOISE() ? Target.NOISE : Target.IMAGE)
                .build();
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof ModelConfig that
                && channels == that.channels
                && imageSize == that.imageSize
                && Arrays.equals(widths, that.widths)
                && blockDepth == that.blockDepth
                && embeddingDim == that.embeddingDim
                && schedule.equals(that.schedule)
                && target == that.target;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(new Object[] {channels, imageSize, Arrays.hashCode(widths), blockDepth, embeddingDim, schedule, target});
    }

    @Override
    public String toString() {
        return "ModelConfig{channels=" + channels + ", imageSize=" + imageSize + ", widths=" + Arrays.toString(widths)
                + ", blockDepth=" + blockDepth + ", embeddingDim=" + embeddingDim + ", schedule=" + schedule.kind()
                .name().toLowerCase(java.util.Locale.ROOT) + "(" + schedule.minSignal() + ", "
                + schedule.maxSignal() + "), target=" + target.name().toLowerCase(java.util.Locale.ROOT) + "}";
    }

    /** Every setter is optional; unset fields keep the reference defaults. */
    public static final class Builder {
        private int channels = 3;
        private int imageSize = 64;
        private int[] widths = {32, 64, 96, 128};
        private int blockDepth = 2;
        private int embeddingDim = 32;
        private Schedule schedule = Schedule.cosine();
        private Target target = Target.NOISE;

        private Builder() {}

        public Builder channels(int channels) {
            this.channels = channels;
            return this;
        }

        public Builder imageSize(int imageSize) {
            this.imageSize = imageSize;
            return this;
        }

        public Builder widths(int... widths) {
            if (widths == null) {
                throw new IllegalArgumentException("widths must not be null");
            }
            this.widths = widths.clone();
            return this;
        }

        public Builder blockDepth(int blockDepth) {
            this.blockDepth = blockDepth;
            return this;
        }

        public Builder embeddingDim(int embeddingDim) {
            this.embeddingDim = embeddingDim;
            return this;
        }

        public Builder schedule(Schedule schedule) {
            if (schedule == null) {
                throw new IllegalArgumentException("schedule must not be null");
            }
            this.schedule = schedule;
            return this;
        }

        public Builder target(Target target) {
            if (target == null) {
                throw new IllegalArgumentException("target must not be null");
            }
            this.target = target;
            return this;
        }

        /** Validates with the native core's rules; throws {@link IllegalArgumentException} naming the bad field. */
        public ModelConfig build() {
            if (widths.length < 1 || widths.length > ddim_h.DDIM_MAX_WIDTHS()) {
                throw new IllegalArgumentException("invalid model config: between 1 and " + ddim_h.DDIM_MAX_WIDTHS()
                        + " widths are needed, got " + widths.length);
            }
            ModelConfig config = new ModelConfig(this);
            NativeLibrary.load();
            try (Arena arena = Arena.ofConfined()) {
                int status = ddim_h.ddim_config_validate(config.toNative(arena));
                if (status != ddim_h.DDIM_OK()) {
                    throw new IllegalArgumentException(ddim_h.ddim_last_error().getString(0));
                }
            }
            return config;
        }
    }
}
