package org.ddim4j;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Cleaner;
import java.util.function.Consumer;

/**
 * One native handle (a model, an extractor) and the call that frees it. The free runs at most once:
 * from {@link #free()} (the owner's {@code close()}) or, as a last resort, when the owner becomes
 * unreachable.
 */
final class NativeHandle {
    private static final Cleaner CLEANER = Cleaner.create();

    private final MemorySegment pointer;
    private final Cleaner.Cleanable cleanable;

    /** Frees {@code pointer} with {@code free} once {@code owner} is closed or unreachable. */
    NativeHandle(Object owner, MemorySegment pointer, Consumer<MemorySegment> free) {
        this.pointer = pointer;
        // The action must not reach the owner (or this), or the owner would never become unreachable.
        this.cleanable = CLEANER.register(owner, () -> free.accept(pointer));
    }

    /** A {@code *_create} / {@code *_load} call: its arguments come from {@code arena}, the new handle goes to {@code out}. */
    @FunctionalInterface
    interface Creation {
        int run(Arena arena, MemorySegment out);
    }

    /** Runs {@code creation}, checks its status, and returns the handle it made. */
    static MemorySegment create(Creation creation) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            Native.check(creation.run(arena, out));
            return out.get(ValueLayout.ADDRESS, 0);
        }
    }

    MemorySegment pointer() {
        return pointer;
    }

    /** Frees the handle; later calls do nothing. */
    void free() {
        cleanable.clean();
    }
}
