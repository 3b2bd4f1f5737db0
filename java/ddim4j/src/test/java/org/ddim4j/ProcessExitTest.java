package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The JVM ends (System.exit from another thread, or SIGTERM) while a long native call runs, 20 times each: the
 * exit code is the one asked for, no hs_err file appears, the running call ends before the JVM does (sampling with
 * a CancellationException, training after its step), and training leaves a checkpoint that loads.
 */
class ProcessExitTest {
    private static final int REPETITIONS = 20;

    @ParameterizedTest(name = "{0} ended by {1}")
    @CsvSource({"sample, exit", "sample, signal", "train, exit", "train, signal"})
    void exitDuringANativeCallIsClean(String work, String how, @TempDir Path directory) throws Exception {
        for (int i = 0; i < REPETITIONS; i++) {
            Path run = Files.createDirectory(directory.resolve("run-" + i));
            Path checkpoints = run.resolve("checkpoints");
            Process process = ChildJvm.withoutNatives("-Dddim4j.repo=" + ChildJvm.REPO, "-Dprobe.delay=" + (i * 37 % 200))
                    .directory(run).start(ExitProbe.class.getName(), work, how, checkpoints.toString());
            StringBuilder output = new StringBuilder();
            try (BufferedReader lines = new BufferedReader(new InputStreamReader(process.getInputStream()))) {
                for (String line; (line = lines.readLine()) != null; ) {
                    output.append(line).append('\n');
                    if (line.equals("running") && how.equals("signal")) {
                        process.toHandle().destroy(); // SIGTERM, leaving the output stream open
                    }
                }
            }
            String context = work + " ended by " + how + ", repetition " + i + ":\n" + output;
            assertTrue(process.waitFor(60, TimeUnit.SECONDS), context);
            assertEquals(how.equals("exit") ? 3 : 143, process.exitValue(), context);
            assertTrue(crashFiles(run).isEmpty(), "hs_err files " + crashFiles(run) + " after " + context);
            assertTrue(output.toString().contains("worker done at exit"), context);
            if (work.equals("sample")) {
                assertTrue(output.toString().contains("sampling ended: cancelled: the JVM is exiting"), context);
            } else {
                assertTrue(output.toString().contains("training ended: cancelled=true"), context);
                try (Ddim checkpoint = Ddim.open(checkpoints.resolve("checkpoint.safetensors"), Device.cpu())) {
                    assertTrue(checkpoint.trainingSteps() >= 1, context);
                }
            }
        }
    }

    private static java.util.List<Path> crashFiles(Path directory) throws IOException {
        try (Stream<Path> files = Files.list(directory)) {
            return files.filter(file -> file.getFileName().toString().startsWith("hs_err")).toList();
        }
    }
}
