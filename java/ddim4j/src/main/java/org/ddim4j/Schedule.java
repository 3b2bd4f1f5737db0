package org.ddim4j;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import org.ddim4j.ffi.ddim_h;
import org.ddim4j.ffi.ddim_schedule;

/**
 * A noise schedule: maps continuous time t in [0, 1] to a signal rate and a noise rate with
 * signal^2 + noise^2 = 1 (t = 0: clean, t = 1: noise). The signal rate runs from {@code maxSignal}
 * at t = 0 down to {@code minSignal} at t = 1.
 *
 * <ul>
 *   <li>{@link #cosine} (the default): {@code angle = acos(max) + t (acos(min) - acos(max))},
 *       signal = cos(angle), noise = sin(angle).
 *   <li>{@link #linear}: DDPM's alpha-bar from betas linspace(1e-4, 0.02, 1000), interpolated at t;
 *       signal = sqrt(alpha-bar) clamped to [min, max] (the rate itself is clamped, so both
 *       schedules share the same bounds), noise = sqrt(1 - signal^2).
 * </ul>
 */
public record Schedule(Kind kind, double minSignal, double maxSignal) {
    public static final double DEFAULT_MIN_SIGNAL = 0.02;
    public static final double DEFAULT_MAX_SIGNAL = 0.95;

    /** The shape of the schedule between its signal bounds. */
    public enum Kind {
        COSINE,
        LINEAR
    }

    /** The rates at a list of times, index by index. */
    public record Rates(float[] signal, float[] noise) {}

    public Schedule {
        if (kind == null) {
            throw new IllegalArgumentException("schedule kind must not be null");
        }
        if (!(minSignal > 0 && minSignal < maxSignal && maxSignal < 1)) {
            throw new IllegalArgumentException(
                    "signal bounds must satisfy 0 < minSignal < maxSignal < 1, got " + minSignal + " and " + maxSignal);
        }
    }

    public static Schedule cosine() {
        return cosine(DEFAULT_MIN_SIGNAL, DEFAULT_MAX_SIGNAL);
    }

    public static Schedule cosine(double minSignal, double maxSignal) {
        return new Schedule(Kind.COSINE, minSignal, maxSignal);
    }

    public static Schedule linear() {
        return linear(DEFAULT_MIN_SIGNAL, DEFAULT_MAX_SIGNAL);
    }

    public static Schedule linear(double minSignal, double maxSignal) {
        return new Schedule(Kind.LINEAR, minSignal, maxSignal);
    }

    /** Evaluates the schedule (in the native core, as sampling and training do) at each t in [0, 1]. */
    public Rates rates(float... t) {
        requireTimes(t);
        NativeLibrary.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment schedule = ddim_schedule.allocate(arena);
            writeTo(schedule);
            MemorySegment times = arena.allocateFrom(ValueLayout.JAVA_FLOAT, t);
            MemorySegment signal = arena.allocate(ValueLayout.JAVA_FLOAT, Math.max(1, t.length));
            MemorySegment noise = arena.allocate(ValueLayout.JAVA_FLOAT, Math.max(1, t.length));
            Native.check(ddim_h.ddim_schedule_rates(schedule, times, t.length, signal, noise));
            return new Rates(
                    signal.asSlice(0, 4L * t.length).toArray(ValueLayout.JAVA_FLOAT),
                    noise.asSlice(0, 4L * t.length).toArray(ValueLayout.JAVA_FLOAT));
        }
    }

    /** Throws {@link IllegalArgumentException} naming the first time that is not in [0, 1] (NaN included). */
    static void requireTimes(float[] t) {
        for (int i = 0; i < t.length; i++) {
            if (!(t[i] >= 0 && t[i] <= 1)) {
                throw new IllegalArgumentException("t must lie in [0, 1], got " + t[i] + " at index " + i);
            }
        }
    }

    /** Writes this schedule into a native {@code ddim_schedule} (standalone, or the one a {@code ddim_config} nests). */
    void writeTo(MemorySegment schedule) {
        ddim_schedule.kind(schedule, kind == Kind.COSINE ? ddim_h.DDIM_SCHEDULE_COSINE() : ddim_h.DDIM_SCHEDULE_LINEAR());
        ddim_schedule.min_signal(schedule, minSignal);
        ddim_schedule.max_signal(schedule, maxSignal);
    }

    static Schedule fromNative(MemorySegment schedule) {
        Kind kind = ddim_schedule.kind(schedule) == ddim_h.DDIM_SCHEDULE_COSINE() ? Kind.COSINE : Kind.LINEAR;
        return new Schedule(kind, ddim_schedule.min_signal(schedule), ddim_schedule.max_signal(schedule));
    }
}
