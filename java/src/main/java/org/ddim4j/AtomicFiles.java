package org.ddim4j;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writes files atomically: into a hidden temporary file beside the target, then one rename, so a
 * failed or interrupted write never replaces a good file with half of a new one. Missing parent
 * directories are created. Failures are {@link UncheckedIOException}s naming the file.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** Writes the content of a file, given the temporary path to write it to. */
    @FunctionalInterface
    public interface Content {
        void writeTo(Path temp) throws IOException;
    }

    public static void write(Path path, Content content) {
        Path target = path.toAbsolutePath();
        Path temp = null;
        try {
            Files.createDirectories(target.getParent());
            temp = Files.createTempFile(target.getParent(), "." + target.getFileName(), ".tmp");
            content.writeTo(temp);
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
        } finally {
            if (temp != null) {
                try {
                    Files.deleteIfExists(temp);
                } catch (IOException ignored) {
                    // best effort: the temporary file is hidden and harmless
                }
            }
        }
    }

    public static void writeString(Path path, String text) {
        write(path, temp -> Files.writeString(temp, text));
    }
}
