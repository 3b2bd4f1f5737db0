import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.ddim4j.Ddim;
import org.ddim4j.Device;
import org.ddim4j.ImageBatch;
import org.ddim4j.ModelConfig;
import org.ddim4j.SampleOptions;
import org.ddim4j.TrainOptions;
import org.ddim4j.Trainer;

/**
 * What the natives checks compare between builds and machines (scripts/natives-check.sh, NativesJarTest): the
 * README's sampling call on a model (16 images, 20 steps, seed 42) and a 20-step training run of a tiny model
 * on a fixed pattern. Run as a source file, with the library and its dependencies on the class path:
 *
 *     java --enable-native-access=ALL-UNNAMED -cp 'lib/*' NativesProbe.java MODEL OUT_DIR
 *
 * Writes OUT_DIR/samples.f32 (the pixels, float32 little-endian, NCHW), OUT_DIR/losses.txt (one loss a step)
 * and OUT_DIR/libraries.txt (the libtorch and libddim files this process mapped, from /proc/self/maps).
 */
public final class NativesProbe {
    public static void main(String[] args) throws IOException {
        Path model = Path.of(args[0]);
        Path out = Files.createDirectories(Path.of(args[1]));
        try (Ddim ddim = Ddim.open(model)) {
            ImageBatch images = ddim.sample(SampleOptions.builder().count(16).steps(20).seed(42).build());
            try (DataOutputStream data = new DataOutputStream(Files.newOutputStream(out.resolve("samples.f32")))) {
                for (float pixel : images.pixels()) {
                    data.writeInt(Integer.reverseBytes(Float.floatToRawIntBits(pixel)));
                }
            }
        }
        ModelConfig tiny = ModelConfig.builder().channels(1).imageSize(16).widths(8, 16).blockDepth(1).embeddingDim(8).build();
        List<String> losses = new ArrayList<>();
        try (Ddim ddim = Ddim.create(tiny, Device.cpu(), 7)) {
            Trainer trainer = ddim.trainer(TrainOptions.builder().seed(7).build());
            float[] pixels = new float[8 * 16 * 16];
            for (int i = 0; i < pixels.length; i++) {
                pixels[i] = ((i * 7919) % 256) / 255f;
            }
            for (int step = 0; step < 20; step++) {
                losses.add(Float.toString(trainer.step(pixels)));
            }
        }
        Files.write(out.resolve("losses.txt"), losses);
        List<String> mapped = Files.readAllLines(Path.of("/proc/self/maps")).stream()
                .map(line -> line.substring(line.lastIndexOf(' ') + 1))
                .filter(file -> file.contains("libddim") || file.contains("libtorch") || file.contains("libc10"))
                .distinct().sorted().toList();
        Files.write(out.resolve("libraries.txt"), mapped);
        System.out.println("NativesProbe: ddim4j " + Ddim.version() + " on libtorch " + Ddim.torchVersion() + ", libddim from "
                + mapped.stream().filter(file -> file.endsWith("/libddim.so")).findFirst().orElse("?"));
    }
}
