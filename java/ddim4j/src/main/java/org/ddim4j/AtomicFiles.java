package org.ddim4j;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * Writes files atomically: into a hidden temporary file beside the target, then one rename, so a
 * failed or interrupted write never replaces a good file with half of a new one. Missing parent
 * directories are created. Failures are {@link UncheckedIOException}s naming the file.
 *
 * <p>The temporary file of {@code name} is {@code .name.tmp-<random>}, the same pattern as the native
 * library's checkpoint and model writer, so {@link #removeStaleTemporaries} clears what a killed
 * process of either left behind.
 */
public final class AtomicFiles {
    private static final String TEMPORARY_MARKER = ".tmp-";

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
            temp = Files.createTempFile(target.getParent(), "." + target.getFileName() + TEMPORARY_MARKER, "");
            content.writeTo(temp);
            // createTempFile makes it owner-only; give it a plain file's rw-r--r--, as the native writer does.
            Files.setPosixFilePermissions(temp, PosixFilePermissions.fromString("rw-r--r--"));
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
        } finally {
            if (temp != null) {
                try {
                    Files.deleteIfExists(temp);
                } catch (IOException ignored) {
                    // best effort: the temporary file is hidden, and removeStaleTemporaries clears it later
                }
            }
        }
    }

    public static void writeString(Path path, String text) {
        write(path, temp -> Files.writeString(temp, text));
    }

    /**
     * Deletes the temporary files that interrupted atomic writes (a killed process) left in
     * {@code directory} (not in its subdirectories): {@code .NAME.tmp-*} for any NAME. Call it only on a
     * directory that no other process is writing into, e.g. a run directory when a run starts.
     *
     * @return the files deleted (none when the directory does not exist)
     */
    public static List<Path> removeStaleTemporaries(Path directory) {
        return removeStaleTemporaries(directory, name -> name.startsWith(".") && name.indexOf(TEMPORARY_MARKER, 2) > 0);
    }

    /**
     * Deletes the temporary files that interrupted atomic writes of {@code directory/fileName} left
     * behind ({@code .fileName.tmp-*}).
     *
     * @return the files deleted (none when the directory does not exist)
     */
    public static List<Path> removeStaleTemporaries(Path directory, String fileName) {
        String prefix = "." + fileName + TEMPORARY_MARKER;
        return removeStaleTemporaries(directory, name -> name.startsWith(prefix));
    }

    private static List<Path> removeStaleTemporaries(Path directory, Predicate<String> isTemporary) {
        List<Path> removed = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(directory,
                entry -> isTemporary.test(entry.getFileName().toString()) && Files.isRegularFile(entry, LinkOption.NOFOLLOW_LINKS))) {
            for (Path temporary : entries) {
                if (Files.deleteIfExists(temporary)) {
                    removed.add(temporary);
                }
            }
        } catch (NoSuchFileException e) {
            return removed;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove stale temporary files in " + directory + ": " + e.getMessage(), e);
        }
        return removed;
    }
}
