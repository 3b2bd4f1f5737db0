package org.ddim4j.benchmarks;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.TimeUnit;

import org.ddim4j.Ddim;
import org.ddim4j.ffi.ddim_h;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Handing an image batch (16 x 3 x 64 x 64 floats, 768 KiB) to native code, which reads all of it
 * ({@code ddim_check_pixels}): a heap array copied into native memory (what the Java API does), an
 * off-heap segment the caller filled directly, a heap array passed by address to a critical
 * downcall, and the two JNI equivalents.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class TransferBenchmark {
    private static final int FLOATS = 16 * 3 * 64 * 64;

    private float[] heap;
    private Arena arena;
    private MemorySegment offHeap;
    /** static final, as jextract's own handles are, so the JIT can inline the call. */
    private static final MethodHandle CRITICAL_CHECK = criticalCheck();

    @Setup
    public void setUp() {
        Ddim.version();
        JniShim.load();
        heap = new float[FLOATS];
        for (int i = 0; i < FLOATS; i++) {
            heap[i] = (i % 255) / 255f;
        }
        arena = Arena.ofShared();
        offHeap = arena.allocateFrom(ValueLayout.JAVA_FLOAT, heap);
    }

    private static MethodHandle criticalCheck() {
        Ddim.version(); // loads libddim
        MemorySegment symbol = SymbolLookup.loaderLookup().find("ddim_check_pixels").orElseThrow();
        // critical(true) lets native code read the heap array in place; legal for a short call that never calls back.
        return Linker.nativeLinker().downcallHandle(symbol,
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG), Linker.Option.critical(true));
    }

    @TearDown
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public int ffmHeapCopied() {
        try (Arena call = Arena.ofConfined()) {
            return ddim_h.ddim_check_pixels(call.allocateFrom(ValueLayout.JAVA_FLOAT, heap), FLOATS);
        }
    }

    @Benchmark
    public int ffmOffHeap() {
        return ddim_h.ddim_check_pixels(offHeap, FLOATS);
    }

    @Benchmark
    public int ffmCriticalHeap() throws Throwable {
        return (int) CRITICAL_CHECK.invokeExact(MemorySegment.ofArray(heap), (long) FLOATS);
    }

    @Benchmark
    public int jniCopied() {
        return JniShim.checkPixelsCopy(heap);
    }

    @Benchmark
    public int jniCritical() {
        return JniShim.checkPixelsCritical(heap);
    }
}
