package org.ddim4j;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.Properties;

import org.ddim4j.ffi.ddim_h;

import com.sun.security.auth.module.UnixSystem;

/**
 * Loads libddim.so once per JVM, before any binding in {@code org.ddim4j.ffi} is touched (the
 * generated code resolves its symbols through the class loader's loaded libraries).
 *
 * <p>Where it looks, in order: the system property {@code ddim4j.library} or the environment variable
 * {@code DDIM4J_LIBRARY} (a path to libddim.so); the copy carried inside the ddim4j jar, extracted
 * once into {@code ${XDG_CACHE_HOME:-~/.cache}/ddim4j/<sha-256>/libddim.so} and reused by later runs
 * (or under {@code java.io.tmpdir/ddim4j-<user>} when the home cache is not writable); then
 * {@code java.library.path}. The libtorch that libddim links against is found by the system's
 * dynamic linker (Debian's libtorch-dev, or libddim's RUNPATH, or LD_LIBRARY_PATH).
 *
 * <p>The bundled library is built against Debian's libtorch (the version is in the jar, next to the
 * library, and in {@link Ddim#torchVersion()}); when that libtorch is missing, loading fails with a
 * {@link DdimException} that names it. Use your own build for another libtorch.
 *
 * <p>Loading changes nothing process-wide on its own: it sets libtorch's intra-op thread count to
 * {@code ddim4j.threads} (default: all available processors, since libtorch may start with a single
 * thread) and logs it, and applies {@code ddim4j.cpuCache} (bytes of freed CPU memory libddim keeps for
 * reuse; default 1 GiB) when set. libddim's own CPU memory cache needs no environment variable and
 * no process-wide malloc setting.
 * Logging goes through {@link System.Logger} ({@code org.ddim4j.*}).
 */
final class NativeLibrary {
    static final String PROPERTY = "ddim4j.library";
    static final String ENVIRONMENT = "DDIM4J_LIBRARY";
    /** Bytes of freed CPU memory libddim keeps for reuse (default 1 GiB; 0: off). */
    static final String CPU_CACHE = "ddim4j.cpuCache";
    private static final String RESOURCE = "native/linux-x86_64/libddim.so";
    /** Written by CMake beside libddim.so: the libtorch version it was built against. */
    private static final String BUILD_INFO = "native/linux-x86_64/libddim.properties";

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
            int threads = Integer.getInteger("ddim4j.threads", Runtime.getRuntime().availableProcessors());
            Native.check(ddim_h.ddim_set_num_threads(threads));
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
            loaded = true;
        }
    }

    /** The libddim the user names with {@code -Dddim4j.library} or {@code DDIM4J_LIBRARY}, or null for the bundled one. */
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

    /** The jar's libddim.so in the cache directory (extracted when missing), or null if the jar has none. */
    private static Path extractBundled() {
        byte[] library;
        try (InputStream in = NativeLibrary.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                return null;
            }
            library = in.readAllBytes();
        } catch (IOException e) {
            throw new UnsatisfiedLinkError("cannot read the bundled libddim.so: " + e.getMessage());
        }
        return cachedCopy(library, cacheRoots());
    }

    /** The library's copy under the first of {@code roots} that works (see {@link #cachedCopy(byte[], Path)}). */
    static Path cachedCopy(byte[] library, List<Path> roots) {
        List<String> failures = new ArrayList<>();
        for (Path root : roots) {
            try {
                return cachedCopy(library, root);
            } catch (IOException | UncheckedIOException e) {
                failures.add(root + " (" + e.getMessage() + ")");
            }
        }
        throw new UnsatisfiedLinkError("cannot extract the bundled libddim.so into " + String.join(" or ", failures));
    }

    /**
     * Where extracted libraries are cached, in order of preference: {@code $XDG_CACHE_HOME/ddim4j} (or
     * {@code ~/.cache/ddim4j}), then {@code java.io.tmpdir/ddim4j-<user>} for when the home cache is not writable.
     */
    static List<Path> cacheRoots() {
        String xdgCache = System.getenv("XDG_CACHE_HOME");
        Path userCache = xdgCache != null && Path.of(xdgCache).isAbsolute() ? Path.of(xdgCache)
                : Path.of(System.getProperty("user.home"), ".cache");
        return List.of(userCache.resolve("ddim4j"),
                Path.of(System.getProperty("java.io.tmpdir"), "ddim4j-" + System.getProperty("user.name")));
    }

    /**
     * {@code root/<sha-256 of library>/libddim.so}, written atomically when missing or not matching its
     * hash, so that every run of one build shares one copy and concurrent JVMs never see half a file.
     */
    static Path cachedCopy(byte[] library, Path root) throws IOException {
        createPrivateDirectory(root);
        String hash = sha256(library);
        Path directory = root.resolve(hash);
        Path cached = directory.resolve("libddim.so");
        if (Files.isRegularFile(cached) && hash.equals(sha256(Files.readAllBytes(cached)))) {
            return cached;
        }
        Files.createDirectories(directory);
        AtomicFiles.write(cached, temp -> Files.write(temp, library));
        return cached;
    }

    /**
     * Creates {@code directory} (and its parents) accessible to this user only, and refuses an existing one
     * that another user owns or can write to: in a shared temporary directory no one else may swap the
     * library this JVM loads.
     */
    private static void createPrivateDirectory(Path directory) throws IOException {
        boolean posix = directory.getFileSystem().supportedFileAttributeViews().contains("posix");
        if (!Files.isDirectory(directory)) {
            Files.createDirectories(directory.getParent());
            try {
                if (posix) {
                    Files.createDirectory(directory, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
                } else {
                    Files.createDirectory(directory);
                }
            } catch (FileAlreadyExistsException e) {
                // another JVM made it first: checked below like any existing directory
            }
        }
        if (posix) {
            PosixFileAttributes attributes = Files.readAttributes(directory, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            long owner = ((Number) Files.getAttribute(directory, "unix:uid", LinkOption.NOFOLLOW_LINKS)).longValue();
            if (!attributes.isDirectory() || owner != new UnixSystem().getUid()
                    || attributes.permissions().contains(PosixFilePermission.GROUP_WRITE)
                    || attributes.permissions().contains(PosixFilePermission.OTHERS_WRITE)) {
                throw new IOException(directory + " is not a directory of this user's that only this user can write to");
            }
        }
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform provides SHA-256", e);
        }
    }

    /** The libtorch version the bundled libddim.so was built against, or null when the jar carries no library. */
    static String bundledTorchVersion() {
        try (InputStream in = NativeLibrary.class.getResourceAsStream(BUILD_INFO)) {
            if (in == null) {
                return null;
            }
            Properties info = new Properties();
            info.load(in);
            return info.getProperty("torch.version");
        } catch (IOException e) {
            return null;
        }
    }

    static String explain(UnsatisfiedLinkError e) {
        String message = String.valueOf(e.getMessage());
        if (message.contains("libtorch") || message.contains("libc10")) {
            String explicit = explicitLibrary();
            String needs = explicit != null ? "the libtorch " + explicit + " was built against"
                    : "libtorch " + Objects.requireNonNullElse(bundledTorchVersion(), "1.13") + " (Debian's libtorch-dev, which the bundled"
                            + " libddim.so was built against)";
            return "libddim.so needs " + needs + ", and the dynamic linker cannot find it: install it (Debian: apt-get install"
                    + " libtorch-dev), or add that libtorch's lib directory to LD_LIBRARY_PATH. For another libtorch version, build"
                    + " libddim against it (CMAKE_PREFIX_PATH=/path/to/libtorch scripts/setup.sh) and point -D" + PROPERTY
                    + "=/path/to/libddim.so or " + ENVIRONMENT + " at it. (" + message + ")";
        }
        if (message.contains("no ddim in java.library.path") || message.contains("not found at")) {
            return "libddim.so not found: build it with scripts/setup.sh (which also bundles it into the ddim4j jar), "
                    + "or point -D" + PROPERTY + "=/path/to/libddim.so or " + ENVIRONMENT + " at it. (" + message + ")";
        }
        return "cannot load libddim.so: " + message;
    }
}
