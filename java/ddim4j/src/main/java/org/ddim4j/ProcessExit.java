package org.ddim4j;

import java.util.concurrent.TimeUnit;

/**
 * Ends ddim4j's native calls before the JVM exits. {@code System.exit} and SIGTERM run shutdown hooks and then
 * the C runtime's exit, whose static destructors (libtorch's, oneDNN's, libddim's) must not run under a call that
 * is still computing. So the hook this class installs when libddim loads tells running calls to stop (sampling
 * cancels at its next step with a {@link java.util.concurrent.CancellationException}; {@link Trainer#fit} ends
 * after the current step and writes its checkpoint when it has a checkpoint directory) and waits for every
 * tracked call to return, at most {@link #WAIT_SECONDS} seconds. Calls that start meanwhile (the checkpoint) are
 * waited for too. An application that ends its calls from a shutdown hook of its own ({@code ddim serve} finishes
 * its running batch) turns the cancelling off with {@link Ddim#setCancelOnExit}.
 */
final class ProcessExit {
    /** The longest the JVM's exit waits for running native calls. */
    static final long WAIT_SECONDS = 10;

    private static final System.Logger LOG = System.getLogger(ProcessExit.class.getName());
    private static final Object LOCK = new Object();
    private static int running;
    private static volatile boolean exiting;
    private static volatile boolean cancelOnExit = true;
    private static boolean installed;

    private ProcessExit() {}

    /** One tracked native call; closing it ends the tracking. */
    interface Call extends AutoCloseable {
        @Override
        void close();
    }

    /** Installs the shutdown hook once per JVM (NativeLibrary.load calls it). */
    static void install() {
        synchronized (LOCK) {
            if (!installed) {
                try {
                    Runtime.getRuntime().addShutdownHook(new Thread(ProcessExit::drain, "ddim4j-exit"));
                } catch (IllegalStateException e) {
                    return; // loaded while the JVM exits: its hooks already run, and this one would come too late
                }
                installed = true;
            }
        }
    }

    static void setCancelOnExit(boolean cancel) {
        cancelOnExit = cancel;
    }

    /** Whether the JVM is exiting: long calls stop at their next step. */
    static boolean exiting() {
        return exiting;
    }

    /** Tracks a native call until the returned handle is closed (use try-with-resources). */
    static Call begin() {
        synchronized (LOCK) {
            running++;
        }
        return () -> {
            synchronized (LOCK) {
                running--;
                LOCK.notifyAll();
            }
        };
    }

    /** The shutdown hook: asks running calls to stop (unless the application does that) and waits for them, within the bound. */
    private static void drain() {
        exiting = cancelOnExit;
        try {
            if (!awaitNoCalls(TimeUnit.SECONDS.toNanos(WAIT_SECONDS))) {
                LOG.log(System.Logger.Level.WARNING, "native call(s) still running " + WAIT_SECONDS
                        + " s into the JVM's exit; it exits under them");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Waits until no tracked call runs, at most {@code nanos}; says whether none does. */
    private static boolean awaitNoCalls(long nanos) throws InterruptedException {
        long deadline = System.nanoTime() + nanos;
        synchronized (LOCK) {
            while (running > 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                TimeUnit.NANOSECONDS.timedWait(LOCK, left);
            }
            return true;
        }
    }
}
