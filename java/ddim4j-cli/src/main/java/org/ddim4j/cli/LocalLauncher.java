package org.ddim4j.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * {@code ddim train --nproc N}: starts N copies of this command as ranks 0 .. N-1 of one training group on this
 * machine, as {@code torchrun --nproc-per-node N} does: each gets torchrun's variables (RANK, WORLD_SIZE,
 * MASTER_ADDR=127.0.0.1, a free MASTER_PORT, LOCAL_RANK) and its share of the CPU threads; their output comes
 * back here line by line, prefixed with the rank. When one rank fails, the others notice it by themselves
 * (the process group names the lost rank); a rank still running after the group's timeout is stopped.
 */
final class LocalLauncher {
    /** A JVM ended by SIGINT or SIGTERM (after its shutdown hooks) exits with 128 + the signal's number. */
    private static final int SIGINT_EXIT = 130;
    private static final int SIGTERM_EXIT = 143;

    private final PrintWriter out;
    private final PrintWriter err;

    LocalLauncher(PrintWriter out, PrintWriter err) {
        this.out = out;
        this.err = err;
    }

    /** Runs {@code nproc} ranks of {@code ddim <arguments>}; returns 0 when all succeed, else the first failing rank's code. */
    int run(int nproc, List<String> arguments, int threadsPerRank, Duration timeout) throws IOException, InterruptedException {
        int port = freePort();
        out.printf("starting %d ranks on this machine (rendezvous 127.0.0.1:%d, %d thread(s) each)%n", nproc, port, threadsPerRank);
        List<Process> ranks = new CopyOnWriteArrayList<>(); // read by the shutdown hook too
        List<Thread> pumps = new CopyOnWriteArrayList<>();
        // Ctrl-C or SIGTERM here: the ranks stop after the same step (rank 0 checkpoints); wait for them and their last lines.
        Thread forwardStop = new Thread(() -> {
            try {
                // SIGTERM through the handle: Process.destroy() would also close the pipes and lose the ranks' last lines.
                ranks.forEach(process -> process.toHandle().destroy());
                for (Process process : ranks) {
                    process.waitFor(5, TimeUnit.MINUTES);
                }
                for (Thread pump : pumps) {
                    pump.join(TimeUnit.SECONDS.toMillis(10));
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "ddim-launcher-stop");
        Runtime.getRuntime().addShutdownHook(forwardStop);
        try {
            for (int rank = 0; rank < nproc; rank++) {
                List<String> command = new ArrayList<>(javaCommand());
                command.add("train");
                command.addAll(arguments);
                command.add("--threads=" + threadsPerRank);
                ProcessBuilder builder = new ProcessBuilder(command);
                setRankEnvironment(builder.environment(), rank, nproc, port);
                Process process = builder.start();
                process.getOutputStream().close();
                ranks.add(process);
                pumps.add(pump(process.getInputStream(), out, rank));
                pumps.add(pump(process.getErrorStream(), err, rank));
            }
            int exitCode = waitForAll(ranks, timeout);
            for (Thread pump : pumps) {
                pump.join(TimeUnit.SECONDS.toMillis(10));
            }
            return exitCode;
        } finally {
            ranks.forEach(Process::destroyForcibly);
            try {
                Runtime.getRuntime().removeShutdownHook(forwardStop);
            } catch (IllegalStateException e) {
                // shutting down: the hook is running
            }
        }
    }

    /** Waits for every rank; once one has failed, gives the rest the group's timeout (plus a margin) to stop by themselves. */
    private int waitForAll(List<Process> ranks, Duration timeout) throws InterruptedException {
        int firstFailure = 0;
        long deadline = Long.MAX_VALUE;
        while (true) {
            boolean running = false;
            for (int rank = 0; rank < ranks.size(); rank++) {
                Process process = ranks.get(rank);
                if (process.isAlive()) {
                    running = true;
                } else if (process.exitValue() != 0 && firstFailure == 0) {
                    firstFailure = process.exitValue();
                    if (firstFailure == SIGINT_EXIT || firstFailure == SIGTERM_EXIT) {
                        // Ctrl-C or a kill reached the ranks: they stop together after a step, by themselves.
                        err.printf("ddim: rank %d stopped by a signal%n", rank);
                    } else {
                        err.printf("ddim: rank %d exited with code %d%n", rank, firstFailure);
                    }
                    deadline = System.nanoTime() + timeout.plusSeconds(30).toNanos();
                }
            }
            if (!running) {
                return firstFailure;
            }
            if (System.nanoTime() > deadline) {
                for (int rank = 0; rank < ranks.size(); rank++) {
                    if (ranks.get(rank).isAlive()) {
                        err.printf("ddim: stopping rank %d, still running %d s after a rank failed%n", rank, timeout.plusSeconds(30).toSeconds());
                        ranks.get(rank).destroyForcibly();
                    }
                }
                return firstFailure;
            }
            Thread.sleep(100);
        }
    }

    private static Thread pump(InputStream stream, PrintWriter target, int rank) {
        return Thread.ofVirtual().start(() -> {
            try (BufferedReader reader = new BufferedReader(new InputStreamReader(stream, StandardCharsets.UTF_8))) {
                for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                    synchronized (target) {
                        target.println("[rank " + rank + "] " + line);
                    }
                }
            } catch (IOException e) {
                // the rank's pipe closed with it
            }
        });
    }

    /** torchrun's variables for rank {@code rank} of {@code worldSize} on this machine, rendezvous at 127.0.0.1:{@code port}. */
    static void setRankEnvironment(Map<String, String> environment, int rank, int worldSize, int port) {
        environment.put("RANK", Integer.toString(rank));
        environment.put("LOCAL_RANK", Integer.toString(rank));
        environment.put("WORLD_SIZE", Integer.toString(worldSize));
        environment.put("MASTER_ADDR", "127.0.0.1");
        environment.put("MASTER_PORT", Integer.toString(port));
    }

    /**
     * This JVM's command line up to the arguments: the same java, options, class path and main class, and the
     * ddim4j.* system properties however they were set (an embedding program may set them in code).
     */
    static List<String> javaCommand() {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        List<String> options = ManagementFactory.getRuntimeMXBean().getInputArguments();
        command.addAll(options);
        for (String name : System.getProperties().stringPropertyNames()) {
            if (name.startsWith("ddim4j.") && options.stream().noneMatch(option -> option.startsWith("-D" + name + "="))) {
                command.add("-D" + name + "=" + System.getProperty(name));
            }
        }
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(Main.class.getName());
        return command;
    }

    /** A port free on the loopback now; rank 0 binds it moments later (as torchrun picks one). */
    static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot find a free port for the rendezvous: " + e.getMessage(), e);
        }
    }
}
