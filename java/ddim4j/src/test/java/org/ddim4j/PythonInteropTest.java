package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Other tools read what ddim4j writes, and ddim4j reads what they write: model files read by Python
 * with nothing but json, struct, zlib and NumPy (the safetensors format is that simple), and .npy
 * noise files in both directions. Uses Debian's python3 with python3-numpy (scripts/setup.sh installs
 * them); skipped without them, except under CI, where a skip would hide a broken check.
 */
class PythonInteropTest {
    private static final Path PYTHON = Path.of("/usr/bin/python3");

    @TempDir
    Path dir;

    @BeforeAll
    static void requirePython() throws Exception {
        boolean available = Files.isExecutable(PYTHON) && run("import numpy").exitCode == 0;
        if (System.getenv("CI") != null) {
            assertTrue(available, PYTHON + " with numpy is required under CI (apt-get install python3-numpy)");
        }
        assumeTrue(available, PYTHON + " with numpy not available");
    }

    private record Output(int exitCode, String text) {}

    /** Runs a Python program with arguments, bounded in time. */
    private static Output run(String program, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(PYTHON.toString(), "-c", program));
        command.addAll(List.of(args));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String text = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            return new Output(-1, "timed out: " + text);
        }
        return new Output(process.exitValue(), text);
    }

    private static final String READ_MODEL = """
            import json, struct, sys, zlib
            import numpy as np
            data = open(sys.argv[1], "rb").read()
            (n,) = struct.unpack("<Q", data[:8])
            header = json.loads(data[8:8 + n])
            body = data[8 + n:]
            meta = header.pop("__metadata__")
            assert meta["format"] == "ddim4j" and meta["format_version"] == "1", meta
            assert int(meta["data_crc32"], 16) == zlib.crc32(body), "checksum"
            def tensor(name):
                entry = header[name]
                begin, end = entry["data_offsets"]
                dtype = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}[entry["dtype"]]
                return np.frombuffer(body[begin:end], dtype=dtype).reshape(entry["shape"])
            covered = sorted(tuple(entry["data_offsets"]) for entry in header.values())
            assert covered[0][0] == 0 and covered[-1][1] == len(body), "data section"
            assert all(a[1] == b[0] for a, b in zip(covered, covered[1:])), "gaps"
            weight = tensor("net.input_conv.weight")
            print(json.loads(meta["config"])["image_size"], len(header), "x".join(map(str, weight.shape)), weight.dtype,
                  float(tensor("normalizer.std")[0]), float(np.abs(tensor("net.down.0.blocks.0.conv_a.weight")).sum()))
            """;

    @Test
    void pythonReadsAModelFileWithJsonStructAndNumpy() throws Exception {
        Path model = dir.resolve("m.safetensors");
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu())) {
            ddim.setNormalizer(new float[] {0.5f}, new float[] {0.25f});
            ddim.save(model);
        }
        Output output = run(READ_MODEL, model.toString());
        assertEquals(0, output.exitCode, output.text);
        String[] fields = output.text.split(" ");
        assertEquals("16", fields[0], output.text);
        assertEquals("8x1x1x1", fields[2], output.text);
        assertEquals("float32", fields[3], output.text);
        assertEquals(0.25, Double.parseDouble(fields[4]), 1e-7);
        assertTrue(Double.parseDouble(fields[5]) > 0, "the weights Python read are the initialised ones: " + output.text);
    }

    @Test
    void numpyLoadsNoiseThatJavaWrote() throws Exception {
        float[] values = new float[2 * 1 * 4 * 4];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) Math.sin(i) * 3;
        }
        Path file = dir.resolve("noise.npy");
        new Noise(2, 1, 4, 4, values).write(file);
        Output output = run("""
                import sys
                import numpy as np
                a = np.load(sys.argv[1])
                print(a.dtype, "x".join(map(str, a.shape)), " ".join(float(v).hex() for v in a.ravel()))
                """, file.toString());
        assertEquals(0, output.exitCode, output.text);
        String[] fields = output.text.split(" ");
        assertEquals("float32", fields[0]);
        assertEquals("2x1x4x4", fields[1]);
        float[] read = new float[values.length];
        for (int i = 0; i < read.length; i++) {
            read[i] = (float) Double.parseDouble(fields[2 + i]);  // Python's float.hex(): exact
        }
        assertArrayEquals(values, read);
    }

    @Test
    void javaReadsNoiseThatNumpySaved() throws Exception {
        Path file = dir.resolve("from-numpy.npy");
        Output output = run("""
                import sys
                import numpy as np
                np.save(sys.argv[1], (np.arange(3 * 1 * 4 * 4, dtype=np.float32) / 7).reshape(3, 1, 4, 4))
                """, file.toString());
        assertEquals(0, output.exitCode, output.text);
        Noise noise = Noise.read(file);
        assertEquals(3, noise.count());
        assertEquals(4, noise.height());
        float[] expected = new float[3 * 16];
        for (int i = 0; i < expected.length; i++) {
            expected[i] = (float) i / 7;
        }
        assertArrayEquals(expected, noise.values());
    }
}
