package org.ddim4j;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import org.ddim4j.ffi.ddim_h;

/**
 * Loads libddim.so once per JVM, before any binding in {@code org.ddim4j.ffi} is touched (the
 * generated code resolves its symbols through the class loader's loaded libraries).
 *
 * <p>Where it looks, in order:
 * <ol>
 * <li>the system property {@code ddim4j.library} or the environment variable {@code DDIM4J_LIBRARY}: a
 *     libddim.so of your own build, whose libtorch the dynamic linker finds (its RUNPATH, LD_LIBRARY_PATH);
 * <li>the natives jar {@code org.ddim4j:ddim4j-natives:linux-x86_64} on the class path or module path
 *     (a runtime dependency of this library): libddim.so with a private libtorch 1.13.1, oneDNN and
 *     OpenMP, extracted once into {@code ${XDG_CACHE_HOME:-~/.cache}/ddim4j/<hash>/} (or
 *     {@code java.io.tmpdir/ddim4j-<user>/} when that is not writable, or {@code -Dddim4j.cacheDir}) by
 *     {@link NativesCache}. Its libraries carry ddim4j's own names and no process-wide symbols, so
 *     another libtorch in the same JVM (DJL's, say) does not meet them;
 * <li>the build directory of the source tree this jar was built in ({@code build/libddim.so}, on
 *     Debian's libtorch: the developers' path, {@code scripts/setup.sh});
 * <li>{@code java.library.path}.
 * </ol>
 * What was loaded from where is logged at DEBUG level.
 *
 * <p>Loading changes nothing process-wide on its own: it sets libtorch's intra-op thread count to
 * {@code ddim4j.threads} (default: all available processors, since libtorch may start with a single
 * thread) and logs it, and applies {@code ddim4j.cpuCache} (bytes of freed CPU memory libddim keeps for
 * reuse; default 1 GiB) when set, and installs {@link ProcessExit}'s shutdown hook. libddim's own CPU memory
 * cache goes into libtorch with the first model, and needs no environment variable and no process-wide malloc
 * setting.
 * Logging goes through {@link System.Logger} ({@code org.ddim4j.*}).
 */
final class NativeLibrary {
    static final String PROPERTY = "ddim4j.library";
    static final String ENVIRONMENT = "DDIM4J_LIBRARY";
    /** Where the natives jar is extracted, instead of the user's cache or the temporary directory. */
    static final String CACHE_DIR = "ddim4j.cacheDir";
    /** Bytes of freed CPU memory libddim keeps for reuse (default 1 GiB; 0: off). */
    static final String CPU_CACHE = "ddim4j.cpuCache";
    /** libtorch's CPU threads per operation (default: all available processors). */
    static final String THREADS = "ddim4j.threads";

    private static final System.Logger LOG = System.getLogger(NativeLibrary.class.getName());

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
            int threads = threadsProperty();
            Native.check(ddim_h.ddim_set_num_threads(threads));
            threads = ddim_h.ddim_get_num_threads();
            LOG.log(System.Logger.Level.DEBUG, "libddim " + ddim_h.ddim_version().getString(0) + " on libtorch "
                    + ddim_h.ddim_torch_version().getString(0) + ": " + threads + " intra-op threads");
            String cacheBytes = System.getProperty(CPU_CACHE);
            if (cacheBytes != null) {
                long bytes;
                try {
                    bytes = Long.parseLong(cacheBytes.strip());
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("-D" + CPU_CACHE + " must be a number of bytes, got '" + cacheBytes + "'");
                }
                Native.check(ddim_h.ddim_set_cpu_cache_limit(bytes));
                LOG.log(System.Logger.Level.DEBUG, "CPU memory cache limit: " + bytes + " bytes");
            }
            ProcessExit.install();
            loaded = true;
        }
    }

    /** {@code -Dddim4j.threads}: a whole number (0 or less, or absent: all available processors). */
    private static int threadsProperty() {
        String value = System.getProperty(THREADS);
        if (value == null || value.isBlank()) {
            return 0;
        }
        try {
            return Integer.parseInt(value.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("-D" + THREADS + " must be a whole number of threads, got '" + value + "'");
        }
    }

    /** The libddim the user names with {@code -Dddim4j.library} or {@code DDIM4J_LIBRARY}, or null. */
    private static String explicitLibrary() {
        String explicit = System.getProperty(PROPERTY, System.getenv(ENVIRONMENT));
        return explicit == null || explicit.isBlank() ? null : explicit;
    }

    private static void loadLibddim() {
        String explicit = explicitLibrary();
        if (explicit != null) {
            Path path = Path.of(explicit).toAbsolutePath();
            if (!Files.isRegularFile(path)) {
                throw new UnsatisfiedLinkError("libddim not found at " + path + " (from " + PROPERTY + " / " + ENVIRONMENT + ")");
            }
            load(path, "-D" + PROPERTY + " / " + ENVIRONMENT);
            return;
        }
        Optional<NativesCache.Bundle> natives;
        try {
            natives = NativesCache.find();
        } catch (UncheckedIOException e) {
            throw new UnsatisfiedLinkError(e.getMessage());
        }
        if (natives.isPresent() && isNativesPlatform()) {
            loadNatives(natives.get(), cacheRoots());
            return;
        }
        if (natives.isPresent()) {
            LOG.log(System.Logger.Level.DEBUG, "the natives jar is for Linux x86-64, not " + System.getProperty("os.name") + " "
                    + System.getProperty("os.arch") + ": not used");
        }
        Path built = buildDirectoryLibrary();
        if (built != null) {
            load(built, "the build directory");
            return;
        }
        System.loadLibrary("ddim");
        LOG.log(System.Logger.Level.DEBUG, "loaded libddim from java.library.path");
    }

    /** The one platform the natives jar is built for (its classifier, linux-x86_64). */
    static boolean isNativesPlatform() {
        String arch = System.getProperty("os.arch");
        return System.getProperty("os.name").equals("Linux") && (arch.equals("amd64") || arch.equals("x86_64"));
    }

    private static void load(Path library, String from) {
        System.load(library.toString());
        LOG.log(System.Logger.Level.DEBUG, "loaded " + library + " (from " + from + ")");
    }

    /**
     * Extracts the natives under the first root that works and loads libddim from there. A root that
     * cannot be written, or whose file system forbids executing code (mounted noexec: the dynamic linker
     * cannot map the libraries), gives way to the next.
     */
    static void loadNatives(NativesCache.Bundle natives, List<Path> roots) {
        List<String> failures = new ArrayList<>();
        for (Path root : roots) {
            Path directory;
            try {
                directory = NativesCache.extract(natives, root);
            } catch (IOException | UncheckedIOException e) {
                failures.add(root + " (" + e.getMessage() + ")");
                continue;
            }
            try {
                load(directory.resolve(NativesCache.LIBRARY), natives.origin());
                return;
            } catch (UnsatisfiedLinkError e) {
                if (!String.valueOf(e.getMessage()).contains("failed to map segment")) {
                    throw e;
                }
                failures.add(root + " (its file system does not allow executing code: mounted noexec)");
            }
        }
        throw new UnsatisfiedLinkError("cannot use the ddim4j natives from " + natives.origin() + ": " + String.join(" or ", failures)
                + ". Set -D" + CACHE_DIR + "=DIR to a directory this user can write to, on a file system that allows executing"
                + " code (not mounted noexec), or -D" + PROPERTY + "=/path/to/libddim.so");
    }

    /**
     * Where the natives are extracted, in order of preference: {@code -Dddim4j.cacheDir} alone when set; else
     * {@code $XDG_CACHE_HOME/ddim4j} (or {@code ~/.cache/ddim4j}), then {@code java.io.tmpdir/ddim4j-<user>}.
     */
    static List<Path> cacheRoots() {
        String chosen = System.getProperty(CACHE_DIR);
        if (chosen != null && !chosen.isBlank()) {
            return List.of(Path.of(chosen).toAbsolutePath());
        }
        String xdgCache = System.getenv("XDG_CACHE_HOME");
        Path userCache = xdgCache != null && Path.of(xdgCache).isAbsolute() ? Path.of(xdgCache)
                : Path.of(System.getProperty("user.home"), ".cache");
        return List.of(userCache.resolve("ddim4j"),
                Path.of(System.getProperty("java.io.tmpdir"), "ddim4j-" + System.getProperty("user.name")));
    }

    /**
     * {@code build/libddim.so} of the ddim4j source tree this code was built in (its jar or classes lie a few
     * directories below the tree's root, which holds include/ddim.h), or null.
     */
    static Path buildDirectoryLibrary() {
        Path start;
        try {
            start = Path.of(NativeLibrary.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (URISyntaxException | RuntimeException e) {
            return null;
        }
        Path directory = start.getParent();
        for (int depth = 0; directory != null && depth < 5; depth++, directory = directory.getParent()) {
            Path library = directory.resolve("build").resolve(NativesCache.LIBRARY);
            if (Files.isRegularFile(library) && Files.isRegularFile(directory.resolve("include").resolve("ddim.h"))) {
                return library;
            }
        }
        return null;
    }

    static String explain(UnsatisfiedLinkError e) {
        String message = String.valueOf(e.getMessage());
        if (message.contains("libtorch") || message.contains("libc10")) {
            String explicit = explicitLibrary();
            String needs = explicit != null ? "the libtorch " + explicit + " was built against"
                    : "Debian's libtorch 1.13 (libtorch-dev), which a libddim.so of the source build links";
            return "libddim.so needs " + needs + ", and the dynamic linker cannot find it. Add the natives jar"
                    + " org.ddim4j:ddim4j-natives:linux-x86_64 (it brings its own libtorch), install that libtorch, or add its lib"
                    + " directory to LD_LIBRARY_PATH. For another libtorch version, build libddim against it"
                    + " (CMAKE_PREFIX_PATH=/path/to/libtorch scripts/setup.sh) and point -D" + PROPERTY
                    + "=/path/to/libddim.so or " + ENVIRONMENT + " at it. (" + message + ")";
        }
        if ((message.contains("no ddim in java.library.path") || message.contains("not found at")) && !isNativesPlatform()) {
            return "libddim.so not found: the natives jar serves Linux x86-64 only; on " + System.getProperty("os.name") + " "
                    + System.getProperty("os.arch") + ", build libddim (scripts/setup.sh) and point -D" + PROPERTY
                    + "=/path/to/libddim.so or " + ENVIRONMENT + " at it. (" + message + ")";
        }
        if (message.contains("no ddim in java.library.path") || message.contains("not found at")) {
            return "libddim.so not found: add the natives jar org.ddim4j:ddim4j-natives:linux-x86_64 to the class path or module"
                    + " path (a runtime dependency of org.ddim4j:ddim4j), build it with scripts/setup.sh, or point -D" + PROPERTY
                    + "=/path/to/libddim.so or " + ENVIRONMENT + " at it. (" + message + ")";
        }
        if (message.startsWith("cannot use the ddim4j natives")) {
            return message;
        }
        return "cannot load libddim.so: " + message;
    }
}
