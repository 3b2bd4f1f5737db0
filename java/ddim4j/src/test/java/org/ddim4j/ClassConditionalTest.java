package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import org.ddim4j.data.Dataset;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Class-conditional models through the Java API: config and names, guidance, training on labels, files. */
class ClassConditionalTest {
    private static final List<String> NAMES = List.of("coat", "ankle boot", "T-shirt/top");
    private static Ddim ddim;

    static ModelConfig tinyClasses() {
        return TestModels.tiny().toBuilder().classNames(NAMES).build();
    }

    /** A few labelled images: each class a different brightness, so that the class carries information. */
    static Dataset labelled(int count) {
        int perImage = 16 * 16;
        float[] pixels = new float[count * perImage];
        int[] labels = new int[count];
        for (int i = 0; i < count; i++) {
            labels[i] = i % NAMES.size();
            for (int p = 0; p < perImage; p++) {
                pixels[i * perImage + p] = Math.clamp(0.2f * labels[i] + ((p * 7919 + i) % 64) / 255f, 0f, 1f);
            }
        }
        return Dataset.of(pixels, 1, 16).withLabels(labels, NAMES);
    }

    @BeforeAll
    static void trainTinyClassModel() {
        ddim = Ddim.create(tinyClasses(), Device.cpu(), 3);
        Trainer trainer = ddim.trainer(TrainOptions.builder().learningRate(1e-2).emaDecay(0).seed(3).build());
        Dataset data = labelled(9);
        for (int step = 0; step < 3; step++) {
            trainer.step(data.range(0, 9), data.labels(0, 9));
        }
    }

    @AfterAll
    static void close() {
        ddim.close();
    }

    @Test
    void theConfigCarriesClassesAndNamesAndFindsClassesByName() {
        ModelConfig config = ddim.config();
        assertEquals(3, config.classes());
        assertTrue(config.isClassConditional());
        assertEquals(NAMES, config.classNames());
        assertEquals(1, config.classIndex("ankle-boot"));
        assertEquals(1, config.classIndex("Ankle_Boot"));
        assertEquals(2, config.classIndex("t-shirt"), "a unique beginning");
        assertEquals(0, config.classIndex("0"));
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class, () -> config.classIndex("sneaker"));
        assertTrue(unknown.getMessage().contains("coat, ankle boot, T-shirt/top"), unknown.getMessage());
        assertFalse(TestModels.tiny().isClassConditional());
        assertThrows(IllegalArgumentException.class, () -> TestModels.tiny().classIndex("coat"));
        assertEquals("2", TestModels.tiny().toBuilder().classes(3).build().className(2), "unnamed classes go by number");
        // The parameter count covers the embedding (classes + 1 rows) and the wider first block.
        assertTrue(ddim.parameterCount() > Ddim.create(TestModels.tiny(), Device.cpu(), 3).parameterCount());
        assertThrows(IllegalArgumentException.class, () -> TestModels.tiny().toBuilder().classNames(List.of("a", "a")).build());
        assertThrows(IllegalArgumentException.class, () -> TestModels.tiny().toBuilder().classNames(List.of("a\tb")).build());
        assertThrows(IllegalArgumentException.class, () -> TestModels.tiny().toBuilder().classes(2).classNames(List.of()).classes(3)
                .classNames(List.of("x")).classes(2).build());
        assertThrows(IllegalArgumentException.class, () -> TestModels.tiny().toBuilder().classes(5000).build());
    }

    @Test
    void guidanceZeroIsTheUnconditionalPredictionAndOneTheConditional() {
        int count = 4;
        float[] noisy = ddim.noise(7, 0, count).values();
        float[] t = {0.9f, 0.5f, 0.3f, 0.7f};
        // Guided predictions evaluate batches of 2 x microBatch: compare with plain ones of that batch shape.
        SampleOptions plain = SampleOptions.builder().count(count).microBatch(8).build();
        float[] unconditional = ddim.predict(noisy, t, plain).noise();
        float[] conditional = ddim.predict(noisy, t, plain.toBuilder().classes(2, 0, 1, 2).build()).noise();
        assertFalse(Arrays.equals(unconditional, conditional), "the class changes the prediction");
        for (double w : new double[] {0, 1, 3}) {
            SampleOptions guided = plain.toBuilder().microBatch(4).classes(2, 0, 1, 2).guidance(w).build();
            float[] noise = ddim.predict(noisy, t, guided).noise();
            for (int i = 0; i < noise.length; i++) {
                double expected = unconditional[i] + w * (conditional[i] - unconditional[i]);
                assertEquals(expected, noise[i], 1e-5 + 1e-5 * Math.abs(expected), "w = " + w + " at " + i);
            }
        }
    }

    @Test
    void classSamplesAreReproducibleAndBatchInvariant() {
        SampleOptions all = SampleOptions.builder().steps(3).seed(5).guidance(2.5).classes(0, 1, 2, 1, 0).batchSize(2).build();
        assertEquals(5, all.count(), "one class per image sets the count");
        float[] pixels = ddim.sample(all).pixels();
        float[] tail = ddim.sample(all.toBuilder().firstIndex(3).classes(1, 0).batchSize(64).build()).pixels();
        assertArrayEquals(Arrays.copyOfRange(pixels, 3 * 256, 5 * 256), tail);
        float[] sneakers = ddim.sample(all.toBuilder().classes(1).count(5).build()).pixels();
        assertFalse(Arrays.equals(pixels, sneakers));
        assertArrayEquals(sneakers, ddim.sample(all.toBuilder().classes(1, 1, 1, 1, 1).build()).pixels(), "one class means all");
        SampleOptions rows = SampleOptions.builder().classRows(3, 2).build();
        assertEquals(List.of(0, 0, 1, 1, 2, 2), rows.classes());
        assertEquals(6, rows.count());
        assertEquals(1, SampleOptions.builder().classRows(1, 1).build().count());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().classRows(0, 2));
    }

    @Test
    void editingAndInterpolationTakeTheClass() {
        ImageBatch images = ddim.sample(SampleOptions.builder().count(2).steps(2).build());
        SampleOptions coat = SampleOptions.builder().count(2).steps(2).classes(0).guidance(2).build();
        SampleOptions boot = coat.toBuilder().classes(1).build();
        assertFalse(Arrays.equals(ddim.vary(images, 0.8, coat).pixels(), ddim.vary(images, 0.8, boot).pixels()));
        ImageBatch mask = new ImageBatch(1, 1, 16, 16, filled(256, 1f));
        assertFalse(Arrays.equals(ddim.inpaint(images, mask, coat).pixels(), ddim.inpaint(images, mask, boot).pixels()));
        Noise from = ddim.noise(1, 0, 1);
        Noise to = ddim.noise(2, 0, 1);
        assertFalse(Arrays.equals(ddim.interpolate(from, to, 3, coat.toBuilder().count(3).build()).pixels(),
                ddim.interpolate(from, to, 3, boot.toBuilder().count(3).build()).pixels()));
    }

    @Test
    void badClassesAreClearErrors() {
        SampleOptions tooLarge = SampleOptions.builder().count(1).steps(1).classes(3).build();
        // A caller's mistake is IllegalArgumentException on every entry point, though the native side finds this one.
        for (org.junit.jupiter.api.function.Executable call : List.<org.junit.jupiter.api.function.Executable>of(
                () -> ddim.sample(tooLarge), () -> ddim.trajectories(tooLarge),
                () -> ddim.vary(ddim.sample(SampleOptions.builder().count(1).steps(1).build()), 0.5, tooLarge))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
            assertTrue(e.getMessage().contains("class 3 does not exist"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().classes(-1).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().classes(0, 1).count(3).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().guidance(Double.NaN).build());
        assertThrows(IllegalArgumentException.class, () -> SampleOptions.builder().guidance(101).build());
        try (Ddim plain = Ddim.create(TestModels.tiny(), Device.cpu(), 1)) {
            IllegalArgumentException unconditional = assertThrows(IllegalArgumentException.class,
                    () -> plain.sample(SampleOptions.builder().count(1).steps(1).classes(0).build()));
            assertTrue(unconditional.getMessage().contains("unconditional"), unconditional.getMessage());
            assertThrows(IllegalArgumentException.class, () -> plain.trainer(TrainOptions.builder().build()).step(new float[256], new int[] {0}));
        }
        Trainer trainer = ddim.trainer(TrainOptions.builder().emaDecay(0).build());
        assertThrows(IllegalArgumentException.class, () -> trainer.step(new float[256]), "a class model needs labels");
        assertThrows(IllegalArgumentException.class, () -> trainer.step(new float[256], new int[] {0, 1}));
        assertThrows(IllegalArgumentException.class, () -> trainer.step(new float[256], new int[] {4}), "3 means no class; 4 is nothing");
        assertThrows(IllegalArgumentException.class, () -> TrainOptions.builder().labelDropout(1.5).build());
    }

    @Test
    void fitTrainsOnLabelsAndRefusesUnlabelledData(@TempDir Path dir) {
        try (Ddim model = Ddim.create(tinyClasses(), Device.cpu(), 4)) {
            Trainer trainer = model.trainer(TrainOptions.builder().batchSize(4).steps(4).emaDecay(0.9).validationSplit(0.25).build());
            Trainer.Result result = trainer.fit(labelled(16), new TrainListener() {});
            assertEquals(4, result.steps());
            double[] losses = trainer.validate(labelled(8));
            assertTrue(Double.isFinite(losses[0]) && losses[0] > 0, Arrays.toString(losses));
            IllegalArgumentException unlabelled = assertThrows(IllegalArgumentException.class,
                    () -> trainer.fit(Dataset.of(new float[4 * 256], 1, 16), new TrainListener() {}));
            assertTrue(unlabelled.getMessage().contains("no labels"), unlabelled.getMessage());
            model.save(dir.resolve("classes.safetensors"));
            try (Ddim loaded = Ddim.open(dir.resolve("classes.safetensors"), Device.cpu())) {
                assertEquals(model.config(), loaded.config(), "classes and names round-trip");
                SampleOptions options = SampleOptions.builder().count(2).steps(2).classes(2).guidance(3).build();
                assertArrayEquals(model.sample(options).pixels(), loaded.sample(options).pixels());
            }
        }
    }

    private static float[] filled(int n, float value) {
        float[] values = new float[n];
        Arrays.fill(values, value);
        return values;
    }
}
