package org.ddim4j;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;

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
 * widths; block depth >= 1; even embedding size; 0..4096 classes. {@link Builder#build()} checks them with the native
 * core's own validation and throws {@link IllegalArgumentException} naming the bad field.
 *
 * <p>A class-conditional model ({@link Builder#classes(int)} > 0, or {@link Builder#classNames(List)}) also takes a
 * class per image, when training and when sampling ({@link SampleOptions.Builder#classes(int...)}, with classifier-free
 * {@link SampleOptions.Builder#guidance(double) guidance}); its class names travel in its model file.
 */
public final class ModelConfig {
    private final int channels;
    private final int imageSize;
    private final int[] widths;
    private final int blockDepth;
    private final int embeddingDim;
    private final Schedule schedule;
    private final Target target;
    private final int classes;
    private final List<String> classNames;

    private ModelConfig(Builder builder) {
        this.channels = builder.channels;
        this.imageSize = builder.imageSize;
        this.widths = builder.widths.clone();
        this.blockDepth = builder.blockDepth;
        this.embeddingDim = builder.embeddingDim;
        this.schedule = builder.schedule;
        this.target = builder.target;
        this.classes = builder.classes;
        this.classNames = List.copyOf(builder.classNames);
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
                .target(target)
                .classes(classes)
                .classNames(classNames);
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

    /** Classes of a class-conditional model; 0 for an unconditional one. */
    public int classes() {
        return classes;
    }

    /** Whether the model takes a class ({@link #classes()} > 0). */
    public boolean isClassConditional() {
        return classes > 0;
    }

    /** The classes' names, in class order; empty when the model has none (its classes are then named by number). */
    public List<String> classNames() {
        return classNames;
    }

    /** The name of class {@code index}: its name, or the number when the model has no names. */
    public String className(int index) {
        java.util.Objects.checkIndex(index, classes);
        return classNames.isEmpty() ? Integer.toString(index) : classNames.get(index);
    }

    /**
     * The class a user means by {@code name}: a class name, ignoring case and treating spaces, '-' and '_' alike
     * ({@code "sneaker"}, {@code "ankle-boot"}), a unique beginning of one ({@code "t-shirt"}), or a class number.
     * Anything else is an {@link IllegalArgumentException} listing the classes.
     */
    public int classIndex(String name) {
        java.util.Objects.requireNonNull(name, "name");
        if (classes == 0) {
            throw new IllegalArgumentException("this model is unconditional: it has no classes");
        }
        String wanted = normalized(name);
        List<Integer> prefixed = new ArrayList<>();
        for (int i = 0; i < classes; i++) {
            String candidate = normalized(className(i));
            if (candidate.equals(wanted)) {
                return i;
            }
            if (!wanted.isEmpty() && candidate.startsWith(wanted)) {
                prefixed.add(i);
            }
        }
        if (prefixed.size() == 1) {
            return prefixed.get(0);
        }
        if (name.strip().matches("\\d{1,4}") && Integer.parseInt(name.strip()) < classes) {
            return Integer.parseInt(name.strip());
        }
        List<String> names = new ArrayList<>();
        for (int i = 0; i < classes; i++) {
            names.add(className(i));
        }
        throw new IllegalArgumentException((prefixed.isEmpty() ? "no class '" : "more than one class begins with '") + name
                + "': the model's classes are " + String.join(", ", names) + " (or their numbers 0.." + (classes - 1) + ")");
    }

    private static String normalized(String name) {
        return name.strip().toLowerCase(Locale.ROOT).replaceAll("[\\s_-]+", "-");
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
        ddim_config.classes(config, classes);
        return config;
    }

    /** The names as ddim_model_set_class_names takes them: one per line. */
    String joinedClassNames() {
        return String.join("\n", classNames);
    }

    /** A native config, with the class names the model reports ('\n'-separated, "" for none). */
    static ModelConfig fromNative(MemorySegment config, String classNames) {
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
                .classes(ddim_config.classes(config))
                .classNames(classNames.isEmpty() ? List.of() : List.of(classNames.split("\n", -1)))
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
                && target == that.target
                && classes == that.classes
                && classNames.equals(that.classNames);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(new Object[] {channels, imageSize, Arrays.hashCode(widths), blockDepth, embeddingDim, schedule, target, classes,
            classNames});
    }

    @Override
    public String toString() {
        return "ModelConfig{channels=" + channels + ", imageSize=" + imageSize + ", widths=" + Arrays.toString(widths)
                + ", blockDepth=" + blockDepth + ", embeddingDim=" + embeddingDim + ", schedule=" + schedule.kind()
                .name().toLowerCase(java.util.Locale.ROOT) + "(" + schedule.minSignal() + ", "
                + schedule.maxSignal() + "), target=" + target.name().toLowerCase(java.util.Locale.ROOT)
                + (classes > 0 ? ", classes=" + classes + (classNames.isEmpty() ? "" : " " + classNames) : "") + "}";
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
        private int classes;
        private List<String> classNames = List.of();

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

        /** A class-conditional model of {@code classes} classes (0, the default: unconditional). */
        public Builder classes(int classes) {
            this.classes = classes;
            return this;
        }

        /**
         * Names the classes, in class order, and makes the model class-conditional with that many classes. Names are
         * unique, 1..64 UTF-8 bytes, without control characters. An empty list removes the names (keeping the count).
         */
        public Builder classNames(List<String> names) {
            java.util.Objects.requireNonNull(names, "names");
            this.classNames = List.copyOf(names);
            if (!names.isEmpty()) {
                this.classes = names.size();
            }
            return this;
        }

        /** Validates with the native core's rules; throws {@link IllegalArgumentException} naming the bad field. */
        public ModelConfig build() {
            checkClassNames();
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

        private void checkClassNames() {
            if (classNames.isEmpty()) {
                return;
            }
            if (classNames.size() != classes) {
                throw new IllegalArgumentException("invalid model config: " + classNames.size() + " class names for " + classes + " classes");
            }
            var seen = new HashSet<String>();
            for (String name : classNames) {
                int bytes = name.getBytes(StandardCharsets.UTF_8).length;
                if (bytes < 1 || bytes > ddim_h.DDIM_MAX_CLASS_NAME_BYTES() || name.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
                    throw new IllegalArgumentException("invalid model config: class name '" + name + "' must have 1.."
                            + ddim_h.DDIM_MAX_CLASS_NAME_BYTES() + " UTF-8 bytes and no control characters");
                }
                if (!seen.add(name)) {
                    throw new IllegalArgumentException("invalid model config: class name '" + name + "' appears twice");
                }
            }
        }
    }
}
