package org.ddim4j.benchmarks;

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
import org.openjdk.jmh.annotations.Warmup;

/**
 * The cost of one call of a trivial ddim function ({@code ddim_status_name}, a switch) through the
 * jextract binding, through a downcall with {@code Linker.Option.critical}, and through JNI.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class CallOverheadBenchmark {
    /** static final, as jextract's own handles are, so the JIT can inline the call. */
    private static final MethodHandle CRITICAL_STATUS_NAME = criticalStatusName();

    private int status = 1;

    private static MethodHandle criticalStatusName() {
        Ddim.version(); // loads libddim
        MemorySegment symbol = SymbolLookup.loaderLookup().find("ddim_status_name").orElseThrow();
        // critical: no thread-state transition; legal because ddim_status_name is short and never calls back into Java.
        return Linker.nativeLinker().downcallHandle(symbol, FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_INT),
                Linker.Option.critical(false));
    }

    @Setup
    public void setUp() {
        JniShim.load();
    }

    @Benchmark
    public long ffm() {
        return ddim_h.ddim_status_name(status).address();
    }

    @Benchmark
    public long ffmCritical() throws Throwable {
        return ((MemorySegment) CRITICAL_STATUS_NAME.invokeExact(status)).address();
    }

    @Benchmark
    public long jni() {
        return JniShim.statusName(status);
    }
}
