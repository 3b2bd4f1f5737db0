package org.ddim4j;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

import org.ddim4j.ffi.ddim_h;

/**
 * Loads libddim.so once per JVM, before any binding in {@code org.ddim4j.ffi} is touched (the
 * generated code resolves its symbols through the class loader's loaded libraries).
 *
 * <p>Where it looks, in order: the system property {@code ddim4j.library} or the environment variable
 * {@code DDIM4J_LIBRARY} (a path to libddim.so); the copy carried inside the ddim4j jar; then
 * {@code java.library.path}. The libtorch that libddim links against is found by the system's
 * dynamic linker (Debian's libtorch-dev, or libddim's RUNPATH, or LD_LIBRARY_PATH).
 *
 * <p>After loading, glibc keeps freed large blocks for reuse ({@code ddim_set_malloc_caching}; off with
 * {@code -Dddim4j.mallocCaching=false}), and libtorch's intra-op thread count is set to {@code ddim4j.threads} (default:
 * all available processors), since libtorch may start with a single thread.
 */
final class NativeLibrary {
    static final String PROPERTY = "ddim4j.library";
    static final String ENVIRONMENT = "DDIM4J_LIBRARY";
    private static final String RESOURCE = "native/linux-x86_64/libddim.so";

    private static volatile boolean loaded;

    private NativeLibrary() {}

    static void load() {
        if (loaded) {
            return;
        }
        synchronized (NativeLibrary.class) {
            if (loaded) {
                return;
            }
            try {
                loadLibddim();
            } catch (UnsatisfiedLinkError e) {
                throw new DdimException(Status.LIBRARY_NOT_LOADED, explain(e), e);
            }
            int threads = Integer.getInteger("ddim4j.threads", Runtime.getRuntime().availableProcessors());
            Native.check(ddim_h.ddim_set_num_threads(threads));
            // Keeps libtorch's freed activations in the C heap: training steps measured up to 3x faster (ddim.h).
            Native.check(ddim_h.ddim_set_malloc_caching(Boolean.parseBoolean(System.getProperty("ddim4j.mallocCaching", "true")) ? 1 : 0));
            loaded = true;
        }
    }

    private static void loadLibddim() {
        String explicit = System.getProperty(PROPERTY, System.getenv(ENVIRONMENT));
        if (explicit != null && !explicit.isBlank()) {
            Path path = Path.of(explicit).toAbsolutePath();
            if (!Files.isRegularFile(path)) {
                throw new UnsatisfiedLinkError("libddim not found at " + path + " (from " + PROPERTY + " / " + ENVIRONMENT + ")");
            }
            System.load(path.toString());
            return;
        }
        Path bundled = extractBundled();
        if (bundled != null) {
            System.load(bundled.toString());
            return;
        }
        System.loadLibrary("ddim");
    }

    /** Copies the jar's libddim.so to a private temporary directory, or returns null if the jar has none. */
    private static Path extractBundled() {
        try (InputStream in = NativeLibrary.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                return null;
            }
            Path directory = Files.createTempDirectory("ddim4j-");
            Path library = directory.resolve("libddim.so");
            Files.copy(in, library, StandardCopyOption.REPLACE_EXISTING);
            library.toFile().deleteOnExit();
            directory.toFile().deleteOnExit();
            return library;
        } catch (IOException e) {
            throw new UnsatisfiedLinkError("cannot extract the bundled libddim.so: " + e.getMessage());
        }
    }

    private static String explain(UnsatisfiedLinkError e) {
        String message = String.valueOf(e.getMessage());
        if (message.contains("libtorch") || message.contains("libc10")) {
            return "libddim.so was found but libtorch was not: install libtorch (Debian: apt-get install libtorch-dev, "
                    + "or run scripts/setup.sh), or add your libtorch's lib directory to LD_LIBRARY_PATH. (" + message + ")";
        }
        if (message.contains("no ddim in java.library.path") || message.contains("not found at")) {
            return "libddim.so not found: build it with scripts/setup.sh (which also bundles it into the ddim4j jar), "
                    + "or point -D" + PROPERTY + "=/path/to/libddim.so or " + ENVIRONMENT + " at it. (" + message + ")";
        }
        return "cannot load libddim.so: " + message;
    }
}
