package org.ddim4j;

import java.nio.file.Path;

/**
 * A child JVM, started under a file-size limit by {@link ModelFileTest}: saves a new model over the file named by its
 * argument and prints how the save ended.
 */
public final class SaveOverProbe {
    private SaveOverProbe() {}

    public static void main(String[] args) {
        try (Ddim ddim = Ddim.create(TestModels.tiny(), Device.cpu(), 99)) {
            ddim.save(Path.of(args[0]));
            System.out.println("saved");
        } catch (DdimException e) {
            System.out.println("save failed: " + e.status() + ": " + e.getMessage());
        }
    }
}
