package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Python's safetensors package reads our model files without any ddim4j code (skipped where Python lacks it). */
class SafetensorsInteropTest {
    @TempDir
    Path dir;

    private static final String SCRIPT = """
            import json, sys
            from safetensors import safe_open
            with safe_open(sys.argv[1], framework="numpy") as f:
                meta = f.metadata()
                config = json.loads(meta["config"])
                weight = f.get_tensor("net.input_conv.weight")
                print(meta["format"], meta["format_version"], config["image_size"], len(list(f.keys())),
                      "x".join(map(str, weight.shape)), str(weight.dtype), float(f.get_tensor("normalizer.std")[0]))
            """;

    @Test
    void pythonSafetensorsReadsAModelFile() throws Exception {
        assumeTrue(python("-c", "import safetensors.numpy, numpy") == 0, "python3 with safetensors and numpy not available");
        Path model = dir.resolve("m.safetensors");
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu())) {
            ddim.setNormalizer(new float[] {0.5f}, new float[] {0.25f});
            ddim.save(model);
        }
        Path script = dir.resolve("read.py");
        java.nio.file.Files.writeString(script, SCRIPT);
        ProcessBuilder builder = new ProcessBuilder("python3", script.toString(), model.toString()).redirectErrorStream(true);
        Process process = builder.start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertEquals(0, process.waitFor(), output);
        String[] fields = output.split(" ");
        assertEquals("ddim4j", fields[0], output);
        assertEquals("1", fields[1]);
        assertEquals("16", fields[2]);
        assertEquals("8x1x1x1", fields[4]);
        assertEquals("float32", fields[5]);
        assertEquals(0.25, Double.parseDouble(fields[6]), 1e-7);
    }

    private static int python(String... args) throws IOException, InterruptedException {
        String[] command = new String[args.length + 1];
        command[0] = "python3";
        System.arraycopy(args, 0, command, 1, args.length);
        try {
            Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
            process.getInputStream().readAllBytes();
            return process.waitFor(60, TimeUnit.SECONDS) ? process.exitValue() : -1;
        } catch (IOException e) {
            return -1;
        }
    }
}
