package org.ddim4j;

import java.time.Duration;
import java.util.Map;
import java.util.Objects;

/**
 * Where this process stands in a data-parallel training group: its rank among {@code worldSize}
 * processes, and where rank 0 hosts the rendezvous. The variables are torchrun's, so a launcher
 * that starts PyTorch workers starts ddim4j ones too:
 *
 * <pre>{@code
 * // RANK=1 WORLD_SIZE=2 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 java ...
 * TrainOptions options = TrainOptions.builder().distributed(Distributed.fromEnvironment()).build();
 * }</pre>
 *
 * <p>The {@link Trainer} then joins the group (libtorch's c10d: Gloo on the CPU, NCCL on CUDA), takes
 * rank 0's weights, and averages gradients over the ranks at every step; each rank trains on its
 * share of every batch and only rank 0 writes checkpoints.
 *
 * @param rank this process, 0 .. worldSize - 1
 * @param worldSize processes in the group
 * @param masterAddr host name or address of rank 0
 * @param masterPort TCP port of rank 0's rendezvous
 * @param localRank this process's index on its machine (picks the CUDA device with {@code Device.auto()} semantics)
 * @param timeout how long joining and each collective wait for the other ranks: a rank that hangs for
 *     longer makes the others fail, naming it (one that dies fails them at once)
 */
public record Distributed(int rank, int worldSize, String masterAddr, int masterPort, int localRank, Duration timeout) {

    /** The default {@link #timeout}: long enough for rank 0's epoch-end previews, short enough to notice a hung rank. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(5);

    public Distributed {
        if (worldSize < 1 || worldSize > 65536) {
            throw new IllegalArgumentException("worldSize must lie in [1, 65536], got " + worldSize);
        }
        if (rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("rank must lie in [0, worldSize), got " + rank + " of " + worldSize);
        }
        Objects.requireNonNull(masterAddr, "masterAddr");
        if (masterAddr.isBlank() || masterAddr.length() > 255) {
            throw new IllegalArgumentException("masterAddr must be a host name or address, got '" + masterAddr + "'");
        }
        if (masterPort < 1 || masterPort > 65535) {
            throw new IllegalArgumentException("masterPort must lie in [1, 65535], got " + masterPort);
        }
        if (localRank < 0) {
            throw new IllegalArgumentException("localRank must be >= 0, got " + localRank);
        }
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.toMillis() < 1 || timeout.compareTo(Duration.ofHours(24)) > 0) {
            throw new IllegalArgumentException("timeout must lie in [1 ms, 24 h], got " + timeout);
        }
    }

    /** Rank {@code rank} of {@code worldSize} processes on this machine, rendezvous at 127.0.0.1:{@code masterPort}. */
    public static Distributed local(int rank, int worldSize, int masterPort) {
        return new Distributed(rank, worldSize, "127.0.0.1", masterPort, rank, DEFAULT_TIMEOUT);
    }

    /** True when the environment has torchrun's {@code WORLD_SIZE} (this process was started as a rank). */
    public static boolean inEnvironment() {
        return System.getenv("WORLD_SIZE") != null;
    }

    /**
     * The group torchrun's variables describe: {@code RANK}, {@code WORLD_SIZE}, {@code MASTER_ADDR}
     * (default 127.0.0.1), {@code MASTER_PORT} (default 29500) and {@code LOCAL_RANK} (default: RANK).
     */
    public static Distributed fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /** {@link #fromEnvironment()} on the given variables. */
    public static Distributed fromEnvironment(Map<String, String> environment) {
        int worldSize = integer(environment, "WORLD_SIZE", null);
        int rank = integer(environment, "RANK", null);
        String masterAddr = environment.getOrDefault("MASTER_ADDR", "127.0.0.1");
        return new Distributed(rank, worldSize, masterAddr, integer(environment, "MASTER_PORT", 29500),
                integer(environment, "LOCAL_RANK", rank), DEFAULT_TIMEOUT);
    }

    public Distributed withTimeout(Duration newTimeout) {
        return new Distributed(rank, worldSize, masterAddr, masterPort, localRank, newTimeout);
    }

    private static int integer(Map<String, String> environment, String name, Integer fallback) {
        String value = environment.get(name);
        if (value == null || value.isBlank()) {
            if (fallback == null) {
                throw new IllegalArgumentException(name + " is not set: distributed training needs RANK and WORLD_SIZE"
                        + " (and MASTER_ADDR, MASTER_PORT), as torchrun sets them");
            }
            return fallback;
        }
        try {
            return Integer.parseInt(value.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " must be an integer, got '" + value + "'");
        }
    }
}
