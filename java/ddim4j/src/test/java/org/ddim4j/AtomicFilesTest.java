package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AtomicFilesTest {
    @TempDir
    Path dir;

    private Set<String> names(Path directory) throws IOException {
        try (Stream<Path> files = Files.list(directory)) {
            return files.map(file -> file.getFileName().toString()).collect(Collectors.toSet());
        }
    }

    @Test
    void writesUseTheNativeWritersTemporaryNameAndLeaveNothingBehind() throws IOException {
        Path target = dir.resolve("run.json");
        AtomicFiles.write(target, temp -> {
            assertTrue(temp.getFileName().toString().startsWith(".run.json.tmp-"), temp.toString());
            Files.writeString(temp, "{}");
        });
        assertEquals("{}", Files.readString(target));
        assertEquals(Set.of("run.json"), names(dir));

        assertThrows(UncheckedIOException.class, () -> AtomicFiles.write(target, temp -> {
            Files.writeString(temp, "half");
            throw new IOException("disk full");
        }));
        assertEquals("{}", Files.readString(target), "a failed write keeps the old file");
        assertEquals(Set.of("run.json"), names(dir), "and removes its temporary file");
    }

    @Test
    void staleTemporariesOfKilledWritesAreRemovedAndNothingElse() throws IOException {
        for (String name : new String[] {"checkpoint.safetensors", ".checkpoint.safetensors.tmp-Ab12Cd", ".run.json.tmp-123456789",
                ".hidden", "notes.tmp-1", ".tmp-orphan", "model.safetensors"}) {
            Files.writeString(dir.resolve(name), name);
        }
        Files.createDirectories(dir.resolve("samples"));
        Files.writeString(dir.resolve("samples/.epoch-001.png.tmp-42"), "x");

        List<Path> removedCheckpointOnly = AtomicFiles.removeStaleTemporaries(dir, "checkpoint.safetensors");
        assertEquals(List.of(dir.resolve(".checkpoint.safetensors.tmp-Ab12Cd")), removedCheckpointOnly);
        assertTrue(Files.exists(dir.resolve(".run.json.tmp-123456789")));

        List<Path> removed = AtomicFiles.removeStaleTemporaries(dir);
        assertEquals(List.of(dir.resolve(".run.json.tmp-123456789")), removed);
        assertEquals(Set.of("checkpoint.safetensors", ".hidden", "notes.tmp-1", ".tmp-orphan", "model.safetensors", "samples"),
                names(dir));
        assertTrue(Files.exists(dir.resolve("samples/.epoch-001.png.tmp-42")), "subdirectories are left alone");
        assertEquals(List.of(), AtomicFiles.removeStaleTemporaries(dir.resolve("missing")));
    }
}
