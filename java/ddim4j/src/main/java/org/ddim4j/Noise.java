package org.ddim4j;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.ddim4j.ffi.ddim_h;

/**
 * The starting noise of a batch of images (the sample at t = 1), NCHW floats. Sampling from the
 * same noise with deterministic DDIM gives the same images; {@link Ddim#invert} finds the noise of
 * given images. Immutable. Files are NumPy {@code .npy} (written as little-endian float32, shape
 * [N, C, H, W]; float64 is read too), so Python reads them with {@code numpy.load} and writes them
 * with {@code numpy.save}.
 */
public final class Noise {
    private static final byte[] NPY_MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern NPY_HEADER = Pattern.compile(
            "\\{\\s*'descr':\\s*'([^']*)',\\s*'fortran_order':\\s*(True|False),\\s*'shape':\\s*\\(([0-9,\\s]*)\\),?\\s*\\}");

    private final int count;
    private final int channels;
    private final int height;
    private final int width;
    private final float[] values;

    /** Wraps a copy of {@code values}: count x channels x height x width finite floats. */
    public Noise(int count, int channels, int height, int width, float[] values) {
        Objects.requireNonNull(values, "values");
        if (count < 1 || channels < 1 || height < 1 || width < 1) {
            throw new IllegalArgumentException("bad noise shape " + count + "x" + channels + "x" + height + "x" + width);
        }
        if ((long) count * channels * height * width != values.length) {
            throw new IllegalArgumentException("a " + count + "x" + channels + "x" + height + "x" + width + " noise needs "
                    + (long) count * channels * height * width + " floats, got " + values.length);
        }
        for (int i = 0; i < values.length; i++) {
            if (!Float.isFinite(values[i])) {
                throw new IllegalArgumentException("noise value " + i + " is " + values[i] + "; noise must be finite");
            }
        }
        this.count = count;
        this.channels = channels;
        this.height = height;
        this.width = width;
        this.values = values.clone();
    }

    public int count() {
        return count;
    }

    public int channels() {
        return channels;
    }

    public int height() {
        return height;
    }

    public int width() {
        return width;
    }

    /** Floats per image. */
    public int valuesPerImage() {
        return channels * height * width;
    }

    /** A copy of all values, NCHW. */
    public float[] values() {
        return values.clone();
    }

    /** Images {@code from} (inclusive) to {@code to} (exclusive). */
    public Noise slice(int from, int to) {
        Objects.checkFromToIndex(from, to, count);
        if (from == to) {
            throw new IllegalArgumentException("an empty slice has no noise");
        }
        float[] part = new float[(to - from) * valuesPerImage()];
        System.arraycopy(values, from * valuesPerImage(), part, 0, part.length);
        return new Noise(to - from, channels, height, width, part);
    }

    /** Image {@code i} alone. */
    public Noise image(int i) {
        return slice(i, i + 1);
    }

    /**
     * The starting noise of images {@code firstIndex} .. {@code firstIndex + count - 1} of {@code seed} for models
     * shaped by {@code config}: image i's noise is drawn on the CPU from a generator seeded by (seed, i), so it is the
     * same on every device and in every batch. No model is needed.
     */
    public static Noise ofSeed(ModelConfig config, long seed, long firstIndex, int count) {
        Objects.requireNonNull(config, "config");
        if (count < 1 || firstIndex < 0 || firstIndex > SampleOptions.MAX_FIRST_INDEX) {
            throw new IllegalArgumentException("count must be >= 1 and firstIndex in [0, 2^62], got " + count + " and " + firstIndex);
        }
        long floats = config.floatsFor(count);
        NativeLibrary.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, floats);
            Native.check(ddim_h.ddim_seed_noise(config.toNative(arena), seed, firstIndex, count, out, floats));
            return new Noise(count, config.channels(), config.imageSize(), config.imageSize(), out.toArray(ValueLayout.JAVA_FLOAT));
        }
    }

    /** The images of all {@code parts}, in order; all must share one image shape. */
    public static Noise concat(List<Noise> parts) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("nothing to concatenate");
        }
        Noise first = parts.get(0);
        int total = 0;
        for (Noise part : parts) {
            if (part.channels != first.channels || part.height != first.height || part.width != first.width) {
                throw new IllegalArgumentException("noises of different image shapes cannot be concatenated");
            }
            total += part.count;
        }
        float[] all = new float[total * first.valuesPerImage()];
        int offset = 0;
        for (Noise part : parts) {
            System.arraycopy(part.values, 0, all, offset, part.values.length);
            offset += part.values.length;
        }
        return new Noise(total, first.channels, first.height, first.width, all);
    }

    /**
     * Spherical interpolation (slerp) between two single-image noises at {@code t} in [0, 1]: it
     * follows the great circle between them, so the result keeps a Gaussian's norm, where a straight
     * line would pass through low-norm noise the model never saw. Computed in double precision.
     */
    public static Noise slerp(Noise from, Noise to, double t) {
        Objects.requireNonNull(from, "from");
        Objects.requireNonNull(to, "to");
        if (from.count != 1 || to.count != 1) {
            throw new IllegalArgumentException("slerp needs one image on each side, got " + from.count + " and " + to.count);
        }
        if (from.channels != to.channels || from.height != to.height || from.width != to.width) {
            throw new IllegalArgumentException("slerp needs two noises of one shape");
        }
        if (!(t >= 0 && t <= 1)) {
            throw new IllegalArgumentException("t must lie in [0, 1], got " + t);
        }
        double dot = 0;
        double fromNorm = 0;
        double toNorm = 0;
        for (int i = 0; i < from.values.length; i++) {
            dot += (double) from.values[i] * to.values[i];
            fromNorm += (double) from.values[i] * from.values[i];
            toNorm += (double) to.values[i] * to.values[i];
        }
        double cosine = dot / Math.sqrt(fromNorm * toNorm);
        double angle = Math.acos(Math.clamp(cosine, -1.0, 1.0));
        double fromWeight;
        double toWeight;
        if (Math.sin(angle) < 1e-6) { // (anti)parallel: the great circle is not unique; a straight line is as good
            fromWeight = 1 - t;
            toWeight = t;
        } else {
            fromWeight = Math.sin((1 - t) * angle) / Math.sin(angle);
            toWeight = Math.sin(t * angle) / Math.sin(angle);
        }
        float[] mixed = new float[from.values.length];
        for (int i = 0; i < mixed.length; i++) {
            mixed[i] = (float) (fromWeight * from.values[i] + toWeight * to.values[i]);
        }
        return new Noise(1, from.channels, from.height, from.width, mixed);
    }

    /** {@code frames} noises from {@code from} to {@code to} (both included) by {@link #slerp}; frames >= 2. */
    public static Noise slerpStrip(Noise from, Noise to, int frames) {
        if (frames < 2) {
            throw new IllegalArgumentException("an interpolation needs at least 2 frames, got " + frames);
        }
        Noise[] strip = new Noise[frames];
        for (int f = 0; f < frames; f++) {
            strip[f] = slerp(from, to, (double) f / (frames - 1));
        }
        return concat(List.of(strip));
    }

    /** Writes a NumPy .npy file (float32, shape [N, C, H, W]) atomically, creating missing directories. */
    public void write(Path path) {
        String dictionary = String.format(Locale.ROOT, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d, %d), }",
                count, channels, height, width);
        int unpadded = NPY_MAGIC.length + 2 + 2 + dictionary.length() + 1;
        String header = dictionary + " ".repeat((64 - unpadded % 64) % 64) + "\n";
        ByteBuffer buffer = ByteBuffer.allocate(NPY_MAGIC.length + 4 + header.length() + 4 * values.length)
                .order(ByteOrder.LITTLE_ENDIAN);
        buffer.put(NPY_MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length())
                .put(header.getBytes(StandardCharsets.US_ASCII));
        buffer.asFloatBuffer().put(values);
        AtomicFiles.write(path, temp -> Files.write(temp, buffer.array()));
    }

    /** What {@link #read} accepts, for its messages. */
    private static final String NPY_ACCEPTED =
            "a 4-dimensional [N, C, H, W] array of float32 or float64 ('<f4' or '<f8': little-endian), in C order";

    /**
     * Reads a .npy file written by {@link #write} or by NumPy: a 4-dimensional [N, C, H, W] array of
     * float32 or float64 ({@code '<f4'} or {@code '<f8'}: little-endian), in C order. float64 (NumPy's
     * default dtype, as {@code np.random.randn} gives) is rounded to float32. Anything else, values
     * that are not finite (or overflow float32), or a truncated file, is an
     * {@link IllegalArgumentException} naming the problem and what is accepted.
     */
    public static Noise read(Path path) {
        try (InputStream in = Files.newInputStream(path); DataInputStream data = new DataInputStream(in)) {
            byte[] magic = data.readNBytes(NPY_MAGIC.length);
            if (!java.util.Arrays.equals(magic, NPY_MAGIC)) {
                throw new IllegalArgumentException(path + " is not a NumPy .npy file");
            }
            int major = data.readUnsignedByte();
            data.readUnsignedByte();
            int headerLength = major == 1
                    ? Short.toUnsignedInt(Short.reverseBytes(data.readShort()))
                    : Integer.reverseBytes(data.readInt());
            if (headerLength < 0 || headerLength > 65536) {
                throw new IllegalArgumentException(path + " has a corrupt .npy header");
            }
            String header = new String(data.readNBytes(headerLength), StandardCharsets.ISO_8859_1).trim();
            Matcher matcher = NPY_HEADER.matcher(header);
            if (!matcher.matches()) {
                throw new IllegalArgumentException(path + " has an unreadable .npy header: " + header);
            }
            String dtype = matcher.group(1);
            if (!(dtype.equals("<f4") || dtype.equals("<f8")) || matcher.group(2).equals("True")) {
                throw new IllegalArgumentException(path + " must hold " + NPY_ACCEPTED + ", got dtype '" + dtype
                        + "' with fortran_order " + matcher.group(2));
            }
            int bytesPerValue = dtype.equals("<f8") ? 8 : 4;
            String[] dims = matcher.group(3).trim().split("\\s*,\\s*");
            if (dims.length != 4) {
                throw new IllegalArgumentException(path + " must hold " + NPY_ACCEPTED + ", got shape (" + matcher.group(3) + ")");
            }
            int[] shape = new int[4];
            for (int d = 0; d < 4; d++) {
                shape[d] = Integer.parseInt(dims[d]);
                if (shape[d] < 1) {
                    throw new IllegalArgumentException(path + " must hold " + NPY_ACCEPTED + " with every dimension >= 1, got shape ("
                            + matcher.group(3) + ")");
                }
            }
            long floats = (long) shape[0] * shape[1] * shape[2] * shape[3];
            if (floats * bytesPerValue > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException(path + " is too large for one noise batch");
            }
            byte[] body = data.readNBytes((int) floats * bytesPerValue);
            if (body.length != floats * bytesPerValue) {
                throw new IllegalArgumentException(path + " is truncated: " + body.length + " of " + floats * bytesPerValue
                        + " data bytes");
            }
            float[] values = new float[(int) floats];
            ByteBuffer buffer = ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN);
            if (bytesPerValue == 4) {
                buffer.asFloatBuffer().get(values);
            } else {
                java.nio.DoubleBuffer doubles = buffer.asDoubleBuffer();
                for (int i = 0; i < values.length; i++) {
                    values[i] = (float) doubles.get(i);  // nearest float32; beyond its range, infinite (refused below)
                }
            }
            return new Noise(shape[0], shape[1], shape[2], shape[3], values);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + path + ": " + e.getMessage(), e);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(path + " has a corrupt .npy shape", e);
        }
    }

    @Override
    public String toString() {
        return "Noise[" + count + "x" + channels + "x" + height + "x" + width + "]";
    }
}
