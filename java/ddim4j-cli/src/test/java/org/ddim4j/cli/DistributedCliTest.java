package org.ddim4j.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.SampleOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code ddim train} as a group of processes: --nproc, torchrun's variables in two "shells", and a rank killed mid-run. */
@Timeout(600)
class DistributedCliTest {
    @TempDir
    Path dir;

    /** Fashion-MNIST's first 256 images at 16x16 and a tiny U-Net: a step takes milliseconds. */
    private static List<String> trainArguments(Path out, int steps) {
        return List.of("--data", "fashion-mnist", "--limit", "256", "--image-size", "16", "--widths", "8,16", "--block-depth", "1",
                "--batch-size", "16", "--steps", Integer.toString(steps), "--sample-every", "100000", "--no-progress",
                "--device", "cpu", "--out", out.toString());
    }

    private static String[] train(List<String> arguments, String... more) {
        List<String> all = new ArrayList<>(List.of("train"));
        all.addAll(arguments);
        all.addAll(List.of(more));
        return all.toArray(String[]::new);
    }

    /** `ddim train ARGS` in a new JVM as rank {@code rank} of {@code worldSize}, as a user would start it in a shell. */
    private Process startRank(int rank, int worldSize, int port, List<String> arguments, Path log) throws IOException {
        return startRank(List.of(), "127.0.0.1", rank, worldSize, port, arguments, log);
    }

    /** As above, started through {@code prefix} (e.g. ip netns exec) with MASTER_ADDR {@code master} and no GLOO_SOCKET_IFNAME. */
    private Process startRank(List<String> prefix, String master, int rank, int worldSize, int port, List<String> arguments, Path log)
            throws IOException {
        List<String> command = new ArrayList<>(prefix);
        command.addAll(LocalLauncher.javaCommand());
        command.addAll(List.of(train(arguments, "--threads", "1")));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        LocalLauncher.setRankEnvironment(builder.environment(), rank, worldSize, port);
        builder.environment().put("MASTER_ADDR", master);
        builder.environment().remove("GLOO_SOCKET_IFNAME");
        return builder.start();
    }

    /**
     * SIGTERM to `ddim train --nproc 2` reaches both ranks: they stop after the same step, rank 0 writes its checkpoint,
     * and no rank outlives the launcher.
     */
    @Test
    void sigtermToTheLauncherStopsEveryRankWithACheckpoint() throws Exception {
        Path out = dir.resolve("signalled");
        List<String> command = new ArrayList<>(LocalLauncher.javaCommand());
        command.addAll(List.of(train(trainArguments(out, 100_000), "--nproc", "2", "--checkpoint-every", "100000")));
        Path log = dir.resolve("launcher.log");
        Process launcher = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
            while (!(Files.readString(log).contains("[rank 0] rank 0 of 2: joined") && Files.readString(log).contains("[rank 1] rank 1 of 2: joined"))
                    && System.nanoTime() < deadline && launcher.isAlive()) {
                Thread.sleep(100);
            }
            Thread.sleep(2000); // some steps
            List<ProcessHandle> ranks = launcher.toHandle().children().toList();
            assertEquals(2, ranks.size(), Files.readString(log));
            launcher.toHandle().destroy(); // SIGTERM to the launcher only
            assertTrue(launcher.waitFor(2, TimeUnit.MINUTES), "the launcher did not exit:\n" + Files.readString(log));
            String output = Files.readString(log);
            assertEquals(143, launcher.exitValue(), output);
            for (ProcessHandle rank : ranks) {
                assertFalse(rank.isAlive(), "a rank outlived the launcher:\n" + output);
            }
            try (Ddim ddim = Ddim.open(out.resolve("checkpoint.safetensors"), Device.cpu())) {
                assertTrue(ddim.trainingSteps() >= 1, output);
            }
        } finally {
            launcher.destroyForcibly();
        }
    }

    /**
     * Two "hosts": network namespaces joined by a veth pair with private addresses that never leave them, each with
     * Debian's default /etc/hosts (the host name resolves to 127.0.1.1). Without GLOO_SOCKET_IFNAME the two ranks
     * find each other, train the model a loopback group trains (the same pixels), and a rank killed with SIGKILL is
     * named by the other. Needs root and iproute2 (CI has both).
     */
    @Test
    void ranksOnTwoHostsFindEachOtherWithoutGlooSocketIfname() throws Exception {
        assumeTrue(isRoot() && run("ip", "netns", "list") == 0, "needs root and iproute2 (ip netns) to make two network namespaces");
        String suffix = Long.toString(ProcessHandle.current().pid() % 100_000);
        List<String> hosts = List.of("ddim-a" + suffix, "ddim-b" + suffix);
        List<String> addresses = List.of("10.213.77.1", "10.213.77.2");
        List<Process> ranks = new ArrayList<>();
        try {
            run("ip", "link", "add", "dv" + suffix + "a", "type", "veth", "peer", "name", "dv" + suffix + "b");
            for (int i = 0; i < 2; i++) {
                String host = hosts.get(i);
                String link = "dv" + suffix + (i == 0 ? "a" : "b");
                Path hostsFile = Path.of("/etc/netns", host, "hosts");
                Files.createDirectories(hostsFile.getParent());
                Files.writeString(hostsFile, "127.0.0.1 localhost\n127.0.1.1 " + java.net.InetAddress.getLocalHost().getHostName() + "\n");
                assertEquals(0, run("ip", "netns", "add", host));
                assertEquals(0, run("ip", "link", "set", link, "netns", host));
                assertEquals(0, run("ip", "-n", host, "addr", "add", addresses.get(i) + "/24", "dev", link));
                assertEquals(0, run("ip", "-n", host, "link", "set", link, "up"));
                assertEquals(0, run("ip", "-n", host, "link", "set", "lo", "up"));
            }
            List<List<String>> onHosts = hosts.stream().map(host -> List.of("ip", "netns", "exec", host)).toList();
            Path out = dir.resolve("hosts");
            int port = LocalLauncher.freePort();
            Process rank0 = startRank(onHosts.get(0), addresses.get(0), 0, 2, port, trainArguments(out, 12), dir.resolve("host0.log"));
            Process rank1 = startRank(onHosts.get(1), addresses.get(0), 1, 2, port, trainArguments(out, 12), dir.resolve("host1.log"));
            ranks.addAll(List.of(rank0, rank1));
            assertTrue(rank0.waitFor(3, TimeUnit.MINUTES) && rank1.waitFor(1, TimeUnit.MINUTES),
                    "the ranks did not finish:\n" + Files.readString(dir.resolve("host0.log")) + Files.readString(dir.resolve("host1.log")));
            assertEquals(0, rank0.exitValue(), Files.readString(dir.resolve("host0.log")));
            assertEquals(0, rank1.exitValue(), Files.readString(dir.resolve("host1.log")));
            Path local = dir.resolve("loopback");
            CliTest.Result loopback = CliTest.run(train(trainArguments(local, 12), "--nproc", "2"));
            assertEquals(0, loopback.code(), loopback.out() + loopback.err());
            try (Ddim acrossHosts = Ddim.open(out.resolve("model.safetensors"), Device.cpu());
                    Ddim onOneHost = Ddim.open(local.resolve("model.safetensors"), Device.cpu())) {
                SampleOptions options = SampleOptions.builder().count(4).steps(5).seed(3).build();
                assertArrayEquals(onOneHost.sample(options).pixels(), acrossHosts.sample(options).pixels());
            }

            Killed result = killRankOneMidRun(dir.resolve("hosts-killed"), onHosts, addresses.get(0), ranks);
            assertEquals(1, result.exitCode(), result.log());
            assertTrue(result.log().contains("rank 1 stopped responding"), result.log());
        } finally {
            ranks.forEach(Process::destroyForcibly);
            for (String host : hosts) {
                run("ip", "netns", "del", host);
                Files.deleteIfExists(Path.of("/etc/netns", host, "hosts"));
                Files.deleteIfExists(Path.of("/etc/netns", host));
            }
        }
    }

    /** What rank 0 did after rank 1 was killed: its exit code, its log, and the seconds it took to exit. */
    private record Killed(int exitCode, String log, double seconds) {}

    /**
     * A long run of two ranks, each started through its prefix (nothing, or a "host"), checkpointed every 10 steps;
     * rank 1 is killed (SIGKILL) once a checkpoint exists, and rank 0 gets a minute to exit. Both go into {@code started}.
     */
    private Killed killRankOneMidRun(Path out, List<List<String>> prefixes, String master, List<Process> started) throws Exception {
        List<String> arguments = new ArrayList<>(trainArguments(out, 100_000));
        arguments.addAll(List.of("--checkpoint-every", "10", "--timeout", "20"));
        int port = LocalLauncher.freePort();
        Path log = dir.resolve("survivor.log");
        Process survivor = startRank(prefixes.get(0), master, 0, 2, port, arguments, log);
        Process victim = startRank(prefixes.get(1), master, 1, 2, port, arguments, dir.resolve("victim.log"));
        started.addAll(List.of(survivor, victim));
        Path checkpoint = out.resolve("checkpoint.safetensors");
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        while (!Files.exists(checkpoint) && System.nanoTime() < deadline && survivor.isAlive()) {
            Thread.sleep(100);
        }
        assertTrue(Files.exists(checkpoint), Files.readString(log));
        victim.destroyForcibly(); // the rank's own process (ip netns exec execs java)
        long killedAt = System.nanoTime();
        assertTrue(survivor.waitFor(60, TimeUnit.SECONDS), "rank 0 still runs a minute after rank 1 was killed");
        return new Killed(survivor.exitValue(), Files.readString(log), (System.nanoTime() - killedAt) / 1e9);
    }

    private static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }

    /** Runs a command (iproute2), returns its exit code. */
    private static int run(String... command) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes());
        int code = process.waitFor();
        if (code != 0) {
            System.out.println(String.join(" ", command) + ": exit " + code + ": " + output.strip());
        }
        return code;
    }

    @Test
    void nprocTwoTrainsOneModelAndResumesWithTheSameWorldSize() throws IOException {
        Path out = dir.resolve("run");
        CliTest.Result result = CliTest.run(train(trainArguments(out, 20), "--nproc", "2"));
        assertEquals(0, result.code(), result.out() + result.err());
        assertTrue(result.out().contains("starting 2 ranks on this machine"), result.out());
        assertTrue(result.out().contains("[rank 1] rank 1 of 2: joined at step 0; 8 image(s) per rank and step (global batch 16)"),
                result.out());
        assertTrue(result.out().contains("[rank 1] finished after 20 steps"), result.out());
        assertTrue(result.out().contains("[rank 0] finished after 20 steps"), result.out());
        assertTrue(Files.exists(out.resolve("model.safetensors")));
        try (Ddim ddim = Ddim.open(out.resolve("checkpoint.safetensors"), Device.cpu())) {
            assertEquals(20, ddim.trainingSteps());
        }

        CliTest.Result alone = CliTest.run("train", "--out", out.toString(), "--resume", "--steps", "25", "--no-progress");
        assertEquals(1, alone.code());
        assertTrue(alone.err().contains("written by a run of 2 process(es); resume it with the same number (got 1)"), alone.err());

        CliTest.Result resumed = CliTest.run("train", "--out", out.toString(), "--resume", "--steps", "25", "--nproc", "2",
                "--no-progress");
        assertEquals(0, resumed.code(), resumed.out() + resumed.err());
        assertTrue(resumed.out().contains("[rank 0] resuming"), resumed.out());
        assertTrue(resumed.out().contains("[rank 1] rank 1 of 2: joined at step 20"), resumed.out());
        assertTrue(resumed.out().contains("[rank 0] finished after 25 steps"), resumed.out());
    }

    @Test
    void twoShellsWithTorchrunVariablesTrainTogetherAndAKilledRankIsNamed() throws Exception {
        Path out = dir.resolve("shells");
        int port = LocalLauncher.freePort();
        Process rank0 = startRank(0, 2, port, trainArguments(out, 12), dir.resolve("rank0.log"));
        Process rank1 = startRank(1, 2, port, trainArguments(out, 12), dir.resolve("rank1.log"));
        assertTrue(rank0.waitFor(3, TimeUnit.MINUTES) && rank1.waitFor(1, TimeUnit.MINUTES), "the ranks did not finish");
        String log0 = Files.readString(dir.resolve("rank0.log"));
        String log1 = Files.readString(dir.resolve("rank1.log"));
        assertEquals(0, rank0.exitValue(), log0);
        assertEquals(0, rank1.exitValue(), log1);
        assertTrue(log1.contains("finished after 12 steps") && !log1.contains("; model:"), "rank 1 writes no model: " + log1);
        assertTrue(Files.exists(out.resolve("model.safetensors")), log0);

        Path killed = dir.resolve("killed");
        Killed result = killRankOneMidRun(killed, List.of(List.of(), List.of()), "127.0.0.1", new ArrayList<>());
        System.out.printf("rank 1 killed: rank 0 exited with %d after %.1f s:%n%s%n", result.exitCode(), result.seconds(),
                result.log().lines().filter(line -> line.startsWith("ddim:")).findFirst().orElse(""));
        assertEquals(1, result.exitCode(), result.log());
        assertTrue(result.log().contains("ddim: DISTRIBUTED: distributed training stopped: rank 1 stopped responding"), result.log());
        assertFalse(result.log().contains("\tat "), "no stack trace: " + result.log());
        // The last good checkpoint is intact, and no model file pretends the run finished.
        try (Ddim ddim = Ddim.open(killed.resolve("checkpoint.safetensors"), Device.cpu())) {
            assertTrue(ddim.trainingSteps() >= 10 && ddim.trainingSteps() % 10 == 0, "steps " + ddim.trainingSteps());
        }
        assertFalse(Files.exists(killed.resolve("model.safetensors")));
    }
}
