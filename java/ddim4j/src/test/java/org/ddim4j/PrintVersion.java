package org.ddim4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A fresh JVM's first use of the library, for NativeLibraryTest and NativesJarTest: prints the native version
 * and the libddim.so file this process mapped, or why it did not load.
 */
public final class PrintVersion {
    private PrintVersion() {}

    public static void main(String[] args) throws IOException {
        try {
            System.out.println("ddim4j " + Ddim.version() + " (libtorch " + Ddim.torchVersion() + ")");
        } catch (DdimException e) {
            System.out.println(e.getMessage());
            System.exit(1);
        } catch (IllegalArgumentException e) {
            System.out.println(e);
            System.exit(2);
        }
        if (args.length > 0 && args[0].equals("threads")) {
            System.out.println("threads=" + Ddim.threads());
        }
        if (args.length > 0 && args[0].equals("auto")) { // two models on Device.auto(): the fallback is logged once
            for (int i = 0; i < 2; i++) {
                try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.auto())) {
                    System.out.println("device=" + ddim.device());
                }
            }
        }
        Files.readAllLines(Path.of("/proc/self/maps")).stream().map(line -> line.substring(line.lastIndexOf(' ') + 1))
                .filter(file -> file.endsWith("/libddim.so")).distinct().forEach(file -> System.out.println("libddim: " + file));
    }
}
