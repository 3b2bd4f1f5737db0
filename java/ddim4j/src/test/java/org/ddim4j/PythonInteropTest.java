package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Other tools read what ddim4j writes, and ddim4j reads what they write: model files read by Python
 * with nothing but json, struct, zlib and NumPy (the safetensors format is that simple), .npy noise
 * files in both directions (float32, and NumPy's default float64), and PyTorch through
 * scripts/python/ddim4j_torch.py: its network predicts what {@link Ddim#predict} predicts and its DDIM
 * sampler samples what {@link Ddim#sample} samples, for the unconditional and the class model (with
 * classifier-free guidance), and the model files it writes (its own tensor order) sample as the
 * originals do. Uses Debian's python3 with python3-numpy and python3-torch (scripts/setup.sh installs
 * them); skipped without them, except under CI, where a skip would hide a broken check.
 */
class PythonInteropTest {
    private static final Path PYTHON = Path.of("/usr/bin/python3");
    private static final Path REPO = Path.of(System.getProperty("ddim4j.repo", ".."));
    private static final Path MODULE_DIR = REPO.resolve("scripts/python");
    private static final Path SHIPPED = REPO.resolve("models/fashion-mnist-32.safetensors");
    private static final Path SHIPPED_CLASSES = REPO.resolve("models/fashion-mnist-32-classes.safetensors");
    /** Classes for six images of the shipped class model, all different. */
    private static final int[] SIX_CLASSES = {0, 1, 5, 7, 8, 9};

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

    /** Tests that need PyTorch call this first: it fails under CI without python3-torch, and skips elsewhere. */
    private static void requireTorch() throws Exception {
        boolean available = run("import torch").exitCode == 0;
        if (System.getenv("CI") != null) {
            assertTrue(available, PYTHON + " with torch is required under CI (apt-get install python3-torch)");
        }
        assumeTrue(available, PYTHON + " with torch not available");
    }

    /** A program that imports ddim4j_torch from scripts/python (its directory is the first argument). */
    private static String withModule(String body) {
        return "import sys\nsys.path.insert(0, sys.argv[1])\nimport ddim4j_torch\n" + body;
    }

    private record Output(int exitCode, String text) {}

    /** Runs a Python program with arguments, bounded in time. */
    private static Output run(String program, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(PYTHON.toString(), "-c", program));
        command.addAll(List.of(args));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String text = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (!process.waitFor(120, TimeUnit.SECONDS)) {
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

    @Test
    void javaReadsFloat64NoiseThatNumpySavedByDefault() throws Exception {
        Path file = dir.resolve("float64.npy");
        Output output = run("""
                import sys
                import numpy as np
                a = (np.arange(2 * 1 * 4 * 4) / 7 - 1.5).reshape(2, 1, 4, 4)  # NumPy's default dtype: float64
                assert a.dtype == np.float64
                np.save(sys.argv[1], a)
                """, file.toString());
        assertEquals(0, output.exitCode, output.text);
        Noise noise = Noise.read(file);
        assertEquals(2, noise.count());
        float[] expected = new float[2 * 16];
        for (int i = 0; i < expected.length; i++) {
            expected[i] = (float) ((double) i / 7 - 1.5);  // the nearest float32 of NumPy's float64
        }
        assertArrayEquals(expected, noise.values());
    }

    @Test
    void noiseOfAnotherDtypeOrShapeIsRefusedSayingWhatIsAccepted() throws Exception {
        Path ints = dir.resolve("ints.npy");
        Path flat = dir.resolve("flat.npy");
        Path fortran = dir.resolve("fortran.npy");
        Output output = run("""
                import sys
                import numpy as np
                np.save(sys.argv[1], np.zeros((1, 1, 4, 4), dtype=np.int32))
                np.save(sys.argv[2], np.zeros((16,)))
                np.save(sys.argv[3], np.asfortranarray(np.zeros((1, 2, 4, 4), dtype=np.float32)))
                """, ints.toString(), flat.toString(), fortran.toString());
        assertEquals(0, output.exitCode, output.text);
        for (Path file : List.of(ints, flat, fortran)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Noise.read(file));
            assertTrue(e.getMessage().contains("[N, C, H, W]") && e.getMessage().contains("float32 or float64")
                    && e.getMessage().contains("C order"), e.getMessage());
        }
    }

    private static final String PREDICT = """
            import json, numpy as np, torch
            torch.set_num_threads(int(sys.argv[2]))
            model = ddim4j_torch.load(sys.argv[3])
            noisy = torch.from_numpy(np.load(sys.argv[4]))
            t = torch.from_numpy(np.load(sys.argv[5])).reshape(-1)
            classes, guidance = json.loads(sys.argv[8]), float(sys.argv[9])
            with torch.no_grad():
                noise, image = model.predict(noisy, t, use_ema=True, micro_batch=16, classes=classes, guidance=guidance)
                # The raw network at noise rate^2, as the Keras reference calls it, is the same evaluation.
                signal, rate = model.rates(t)
                direct = model(noisy[:1], rate[:1] ** 2)
                conditional = model.predict(noisy, t, classes=classes, guidance=1)[0]
            np.save(sys.argv[6], noise.numpy())
            np.save(sys.argv[7], image.numpy())
            print(float((direct - model.predict(noisy[:1], t[:1], micro_batch=None)[0]).abs().max()),
                  float((noise - conditional).abs().max()))
            """;

    @Test
    void pytorchPredictsWhatDdimPredicts() throws Exception {
        requireTorch();
        assertEquals(0.0, pytorchAgainstDdimPrediction(SHIPPED, new int[0], 1), "guidance 1 is the prediction itself");
    }

    @Test
    void pytorchPredictsWhatDdimPredictsForAClassModelWithGuidance() throws Exception {
        requireTorch();
        double guidanceEffect = pytorchAgainstDdimPrediction(SHIPPED_CLASSES, SIX_CLASSES, 3);
        assertTrue(guidanceEffect > 0.1, "guidance 3 moves the predicted noise clearly away from guidance 1's (so the parity"
                + " covers guidance): max difference " + guidanceEffect);
    }

    /**
     * Asserts that the twin's prediction on six noisy images at times from 1 to 0.05, with these classes and guidance,
     * equals {@link Ddim#predict}'s (the eager network) within 1e-4, and returns the twin's max |prediction - guidance 1's|.
     */
    private double pytorchAgainstDdimPrediction(Path modelFile, int[] classes, double guidance) throws Exception {
        int count = 6;
        float[] times = {1f, 0.8f, 0.6f, 0.4f, 0.2f, 0.05f};
        try (Ddim ddim = Ddim.open(modelFile, Device.cpu())) {
            SampleOptions.Builder conditioned = SampleOptions.builder().count(count).classes(classes).guidance(guidance);
            // Noisy versions of sampled images at six times, in the network's space.
            float[] images = ddim.sample(conditioned.steps(5).seed(3).build()).pixels();
            float[][] normalizer = ddim.normalizer();
            float[] eps = ddim.noise(9, 0, count).values();
            Schedule.Rates rates = ddim.config().schedule().rates(times);
            int perImage = ddim.config().pixelsPerImage();
            float[] noisy = new float[images.length];
            for (int i = 0; i < noisy.length; i++) {
                float x0 = (images[i] - normalizer[0][0]) / normalizer[1][0];
                noisy[i] = rates.signal()[i / perImage] * x0 + rates.noise()[i / perImage] * eps[i];
            }
            Path noisyFile = dir.resolve("noisy.npy");
            Path timesFile = dir.resolve("t.npy");
            Path noiseOut = dir.resolve("noise-out.npy");
            Path imageOut = dir.resolve("image-out.npy");
            new Noise(count, 1, 32, 32, noisy).write(noisyFile);
            new Noise(count, 1, 1, 1, times).write(timesFile);

            Output output = run(withModule(PREDICT), MODULE_DIR.toString(), String.valueOf(Ddim.threads()), modelFile.toString(),
                    noisyFile.toString(), timesFile.toString(), noiseOut.toString(), imageOut.toString(),
                    Arrays.toString(classes), String.valueOf(guidance));
            assertEquals(0, output.exitCode, output.text);
            String[] fields = output.text.split(" ");
            assertEquals(0.0, Double.parseDouble(fields[0]), 1e-4, "the raw network vs predict in Python");

            // The parity is the eager network's: the fused one (the default) rounds differently.
            Ddim.Prediction p = ddim.predict(noisy, times, conditioned.network(Network.EAGER).build());
            double noiseDifference = maxDifference(p.noise(), Noise.read(noiseOut).values());
            double imageDifference = maxDifference(p.image(), Noise.read(imageOut).values());
            assertTrue(noiseDifference <= 1e-4 && imageDifference <= 1e-4,
                    "max |PyTorch - Ddim.predict|: noise " + noiseDifference + ", image " + imageDifference);
            return Double.parseDouble(fields[1]);
        }
    }

    private static final String SAMPLE = """
            import json, numpy as np, torch
            torch.set_num_threads(int(sys.argv[2]))
            model = ddim4j_torch.load(sys.argv[3])
            noise = torch.from_numpy(np.load(sys.argv[4]))
            steps, micro_batch, classes, guidance = int(sys.argv[6]), int(sys.argv[7]), json.loads(sys.argv[8]), float(sys.argv[9])
            pixels = model.sample(noise, steps, classes=classes, guidance=guidance, micro_batch=micro_batch)
            np.save(sys.argv[5], pixels.numpy())
            """;

    /**
     * The bound on |PyTorch - ddim4j| after 20 DDIM steps. Here both give the same bits (libtorch 1.13 on both sides,
     * the same thread count). Other builds round differently, and each step feeds the next: the twin on 1 thread
     * against 2 (another summation order) differs by 3.5e-6 after 20 steps, and by 1.4e-5 when every step's prediction
     * is off by a relative 1e-6. 1e-4 allows for that many times over and is still 1/40 of an 8-bit grey level.
     */
    private static final double PIXEL_TOLERANCE = 1e-4;

    @Test
    void pytorchSamplesWhatDdimSamples() throws Exception {
        requireTorch();
        pytorchAgainstDdimSamples(SHIPPED, new int[0], 1);
    }

    @Test
    void pytorchSamplesWhatDdimSamplesForAClassModelWithGuidance() throws Exception {
        requireTorch();
        float[] guided = pytorchAgainstDdimSamples(SHIPPED_CLASSES, SIX_CLASSES, 3);
        try (Ddim ddim = Ddim.open(SHIPPED_CLASSES, Device.cpu())) {
            float[] plain = ddim.sample(sampleOptions(SIX_CLASSES, 1)).pixels();
            double guidanceEffect = maxDifference(guided, plain);
            assertTrue(guidanceEffect > 100 * PIXEL_TOLERANCE, "guidance 3 changes the images far beyond the tolerance"
                    + " (so the parity covers guidance): max pixel difference to guidance 1 " + guidanceEffect);
        }
    }

    /** Six images, 20 deterministic DDIM steps of the eager network, micro-batches of 4 (so one is padded). */
    private static SampleOptions sampleOptions(int[] classes, double guidance) {
        return SampleOptions.builder().count(6).steps(20).seed(21).microBatch(4).network(Network.EAGER).classes(classes)
                .guidance(guidance).build();
    }

    /**
     * Asserts that the twin's DDIM sampler, from the starting noise of {@link #sampleOptions}, gives
     * {@link Ddim#sample}'s pixels within PIXEL_TOLERANCE, and returns ddim4j's pixels.
     */
    private float[] pytorchAgainstDdimSamples(Path modelFile, int[] classes, double guidance) throws Exception {
        SampleOptions options = sampleOptions(classes, guidance);
        try (Ddim ddim = Ddim.open(modelFile, Device.cpu())) {
            Path noiseFile = dir.resolve("start.npy");
            Path pixelsOut = dir.resolve("pixels-out.npy");
            ddim.noise(options.seed(), 0, options.count()).write(noiseFile);
            Output output = run(withModule(SAMPLE), MODULE_DIR.toString(), String.valueOf(Ddim.threads()), modelFile.toString(),
                    noiseFile.toString(), pixelsOut.toString(), String.valueOf(options.steps()),
                    String.valueOf(options.microBatch()), Arrays.toString(classes), String.valueOf(guidance));
            assertEquals(0, output.exitCode, output.text);
            float[] pixels = ddim.sample(options).pixels();
            double difference = maxDifference(pixels, Noise.read(pixelsOut).values());
            assertTrue(difference <= PIXEL_TOLERANCE, "max |PyTorch - Ddim.sample| over 20 steps: " + difference);
            return pixels;
        }
    }

    private static double maxDifference(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs((double) a[i] - b[i]));
        }
        return max;
    }

    private static final String LOAD_STRICTLY = """
            import json, struct
            for path in sys.argv[2:]:
                model = ddim4j_torch.load(path)  # load_state_dict(strict=True): every name and shape must match
                data = open(path, "rb").read()
                (n,) = struct.unpack("<Q", data[:8])
                header = {k: v["shape"] for k, v in json.loads(data[8:8 + n]).items() if k != "__metadata__"}
                twin = {k: list(v.shape) for k, v in model.state_dict().items()}
                print("same" if header == twin else f"different: {sorted(set(header) ^ set(twin))}", len(twin))
            """;

    /**
     * The Python twin builds its U-Net on its own; the file's tensor names and shapes come from ddim4j's one
     * layer list (native/src/unet_layers.h). Strict loading of files of unusual architectures shows that the two
     * agree beyond the shipped model's: widths that are no multiple of 16 and not increasing, three blocks per
     * level, two channels, a small embedding, one level, the image target, classes (the shipped class model and one of
     * three classes, whose class embedding widens the first block's input).
     */
    @Test
    void theTwinsModulesHaveTheTensorsOfEveryArchitectureDdimWrites() throws Exception {
        requireTorch();
        List<ModelConfig> configs = List.of(
                ModelConfig.builder().channels(2).imageSize(16).widths(24, 40, 8).blockDepth(3).embeddingDim(6).build(),
                ModelConfig.builder().channels(1).imageSize(8).widths(16).blockDepth(1).embeddingDim(4).target(Target.IMAGE).build(),
                ModelConfig.builder().channels(3).imageSize(32).widths(8, 16, 24, 32, 40).blockDepth(2).build(),
                ModelConfig.builder().channels(2).imageSize(16).widths(24, 40).blockDepth(1).embeddingDim(6).classes(3).build());
        List<String> arguments = new ArrayList<>(List.of(MODULE_DIR.toString(), SHIPPED_CLASSES.toString()));
        for (int i = 0; i < configs.size(); i++) {
            Path file = dir.resolve("architecture-" + i + ".safetensors");
            try (Ddim model = Ddim.create(configs.get(i), Device.cpu(), i)) {
                model.save(file);
            }
            arguments.add(file.toString());
        }
        Output output = run(withModule(LOAD_STRICTLY), arguments.toArray(String[]::new));
        assertEquals(0, output.exitCode, output.text);
        List<String> lines = output.text.strip().lines().toList();
        assertEquals(configs.size() + 1, lines.size(), output.text);
        for (String line : lines) {
            String[] fields = line.split(" ");
            assertEquals("same", fields[0], "the file's tensors against the twin's: " + line);
            assertTrue(Integer.parseInt(fields[1]) > 20, line);
        }
    }

    private static final String RESAVE = """
            import json, struct
            model = ddim4j_torch.load(sys.argv[2])
            ddim4j_torch.save(model, sys.argv[3])
            data = open(sys.argv[3], "rb").read()
            (n,) = struct.unpack("<Q", data[:8])
            names = [name for name in json.loads(data[8:8 + n]) if name != "__metadata__"]
            offsets = {name: entry["data_offsets"][0] for name, entry in json.loads(data[8:8 + n]).items() if name != "__metadata__"}
            by_offset = sorted(names, key=lambda name: offsets[name])
            print(model.ema is not None, by_offset != sorted(names))
            """;

    @Test
    void pytorchWritesModelsThatDdimSamplesIdentically() throws Exception {
        requireTorch();
        Path tinyWithEma = dir.resolve("tiny-ema.safetensors");
        try (Ddim tiny = Ddim.create(TestModels.tiny(), Device.cpu(), 6)) {
            Trainer trainer = tiny.trainer(TrainOptions.builder().learningRate(1e-2).emaDecay(0.5).seed(6).build());
            float[] batch = new float[4 * 16 * 16];
            for (int i = 0; i < batch.length; i++) {
                batch[i] = ((i * 13) % 101) / 100f;
            }
            for (int step = 0; step < 3; step++) {
                trainer.step(batch);
            }
            tiny.setNormalizer(new float[] {0.3f}, new float[] {0.6f});
            tiny.save(tinyWithEma);
        }
        for (Path original : List.of(SHIPPED, SHIPPED_CLASSES, tinyWithEma)) {
            Path copy = dir.resolve("from-pytorch.safetensors");
            Output output = run(withModule(RESAVE), MODULE_DIR.toString(), original.toString(), copy.toString());
            assertEquals(0, output.exitCode, output.text);
            boolean hasEma = original.equals(tinyWithEma);
            assertEquals((hasEma ? "True" : "False") + " True", output.text, "EMA kept, and the tensors laid out in PyTorch's order, not ddim4j's");
            try (Ddim before = Ddim.open(original, Device.cpu()); Ddim after = Ddim.open(copy, Device.cpu())) {
                assertEquals(before.config(), after.config());  // classes and class names included
                assertEquals(hasEma, after.hasEma());
                assertArrayEquals(before.normalizer()[1], after.normalizer()[1]);
                for (boolean useEma : new boolean[] {true, false}) {
                    SampleOptions.Builder builder = SampleOptions.builder().count(4).steps(5).seed(11).useEma(useEma);
                    if (before.config().isClassConditional()) {
                        builder.classes(1, 5, 7, 9).guidance(3);
                    }
                    SampleOptions options = builder.build();
                    assertArrayEquals(before.sample(options).pixels(), after.sample(options).pixels(), original + ", useEma " + useEma);
                }
            }
            // Its checksum still guards the weights.
            byte[] corrupt = Files.readAllBytes(copy);
            corrupt[corrupt.length - 9] ^= 0x20;
            Path broken = Files.write(dir.resolve("broken.safetensors"), corrupt);
            DdimException e = assertThrows(DdimException.class, () -> Ddim.open(broken, Device.cpu()).close());
            assertEquals(Status.FORMAT, e.status());
            assertTrue(e.getMessage().contains("checksum"), e.getMessage());
        }
    }
}
