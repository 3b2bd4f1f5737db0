package org.ddim4j;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.lang.module.ResolvedModule;
import java.net.JarURLConnection;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

import com.sun.security.auth.module.UnixSystem;

/**
 * The natives jar ({@code org.ddim4j:ddim4j-natives:linux-x86_64}) and its extracted copy in the cache.
 *
 * <p>The jar holds {@code org/ddim4j/natives/linux-x86_64/manifest} (one "SHA-256 size path" line per
 * file) beside the files it lists. {@link #find()} looks for it on the class path, among the resolved
 * modules, then in the jars of the module path (the jar has no packages, so nothing makes the module
 * system resolve it). {@link #extract} copies it once into {@code root/<SHA-256 of the manifest>/}: into
 * a temporary directory first, each file checked against its size and hash while it is copied, then one
 * atomic rename, so a JVM never sees half a copy and two JVMs extracting at once both end up loading the
 * one that won the rename. A cached copy is checked against the manifest's hashes and replaced when
 * damaged. A copy that passed is fingerprinted ({@code .verified}: each file's size, modification and
 * status-change times and inode); while the fingerprint holds, later JVMs skip the hashing, which reads
 * all ~560 MB (0.4 s from the page cache, seconds from disk). Any write to a file moves its status-change
 * time, which no one can set back, so a changed file is hashed again.
 */
final class NativesCache {
    static final String DIRECTORY = "org/ddim4j/natives/linux-x86_64/";
    static final String MANIFEST = "manifest";
    /** The file NativeLibrary loads; its neighbours resolve through its RUNPATH, $ORIGIN. */
    static final String LIBRARY = "libddim.so";
    /** The fingerprint of a copy whose hashes were checked. */
    static final String VERIFIED = ".verified";
    /** No bundle is this large (it is ~560 MB): a manifest claiming more is damaged or hostile. */
    static final long MAX_TOTAL_BYTES = 8L << 30;
    private static final long MAX_MANIFEST_BYTES = 1 << 20;
    private static final Pattern ENTRY_PATH = Pattern.compile("[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.+-]+)?");
    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    /** Extractions older than this were abandoned by a JVM that died: removed by the next extraction. */
    private static final Duration STALE = Duration.ofHours(1);

    private static final System.Logger LOG = System.getLogger(NativesCache.class.getName());

    private NativesCache() {}

    /** One file of the bundle, as the manifest lists it. */
    record Entry(String path, long size, String sha256) {}

    /** Reads one file of the bundle by its path under {@link #DIRECTORY}. */
    @FunctionalInterface
    interface Source {
        InputStream open(String path) throws IOException;
    }

    /** A natives bundle: its manifest (raw bytes, whose hash names the cache entry), its files, and where it is. */
    record Bundle(byte[] manifest, List<Entry> entries, Source source, String origin) {
        String key() {
            return sha256(manifest);
        }
    }

    /** The natives on the class path or module path, or empty when there are none. */
    static Optional<Bundle> find() {
        try {
            ClassLoader loader = NativesCache.class.getClassLoader();
            URL manifest = loader == null ? null : loader.getResource(DIRECTORY + MANIFEST);
            if (manifest != null) {
                Path location = locationOf(manifest);
                return Optional.of(fromLocation(location, location.toString()));
            }
            for (ResolvedModule module : ModuleLayer.boot().configuration().modules()) {
                Optional<Path> location = module.reference().location().filter(uri -> uri.getScheme().equals("file")).map(Path::of);
                if (location.isPresent() && contains(location.get())) {
                    return Optional.of(fromLocation(location.get(), location.get().toString()));
                }
            }
            for (String entry : System.getProperty("jdk.module.path", "").split(java.io.File.pathSeparator)) {
                for (Path candidate : modulePathJars(entry)) {
                    if (contains(candidate)) {
                        return Optional.of(fromLocation(candidate, candidate.toString()));
                    }
                }
            }
            return Optional.empty();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the ddim4j natives: " + e.getMessage(), e);
        }
    }

    /** The jar (or directory) a class-loader resource URL of the manifest comes from. */
    private static Path locationOf(URL manifest) throws IOException {
        try {
            return switch (manifest.getProtocol()) {
                case "jar" -> Path.of(((JarURLConnection) manifest.openConnection()).getJarFileURL().toURI());
                case "file" -> {
                    Path file = Path.of(manifest.toURI());
                    for (String ignored : DIRECTORY.split("/")) {
                        file = file.getParent();
                    }
                    yield file.getParent();
                }
                default -> throw new IOException("the ddim4j natives at " + manifest + " are neither in a jar nor in a directory");
            };
        } catch (URISyntaxException e) {
            throw new IOException("cannot locate " + manifest, e);
        }
    }

    private static List<Path> modulePathJars(String entry) {
        if (entry.isBlank()) {
            return List.of();
        }
        Path path = Path.of(entry);
        if (!Files.isDirectory(path)) {
            return List.of(path);
        }
        try (Stream<Path> files = Files.list(path)) {
            return files.filter(file -> file.getFileName().toString().endsWith(".jar")).sorted().toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    private static boolean contains(Path location) {
        if (Files.isDirectory(location)) {
            return Files.isRegularFile(location.resolve(DIRECTORY + MANIFEST));
        }
        if (!Files.isRegularFile(location)) {
            return false;
        }
        try (ZipFile zip = new ZipFile(location.toFile())) {
            return zip.getEntry(DIRECTORY + MANIFEST) != null;
        } catch (IOException e) {
            return false;  // not a jar: not ours
        }
    }

    /** The bundle in a jar or an exploded directory (a build's target/classes). */
    static Bundle fromLocation(Path location, String origin) throws IOException {
        Source source;
        if (Files.isDirectory(location)) {
            Path directory = location.resolve(DIRECTORY);
            source = path -> Files.newInputStream(directory.resolve(path));
        } else {
            source = path -> {
                ZipFile zip = new ZipFile(location.toFile());
                ZipEntry entry = zip.getEntry(DIRECTORY + path);
                if (entry == null) {
                    zip.close();
                    throw new NoSuchFileException(location + "!/" + DIRECTORY + path);
                }
                return new java.io.FilterInputStream(zip.getInputStream(entry)) {
                    @Override
                    public void close() throws IOException {
                        try {
                            super.close();
                        } finally {
                            zip.close();
                        }
                    }
                };
            };
        }
        byte[] manifest;
        try (InputStream in = source.open(MANIFEST)) {
            manifest = in.readNBytes((int) MAX_MANIFEST_BYTES + 1);
        }
        if (manifest.length > MAX_MANIFEST_BYTES) {
            throw new IOException(origin + ": the natives manifest is over " + MAX_MANIFEST_BYTES + " bytes");
        }
        return new Bundle(manifest, parse(manifest, origin), source, origin);
    }

    /** The manifest's entries: every line checked (path shape, size bounds, hash shape) before anything is written. */
    static List<Entry> parse(byte[] manifest, String origin) throws IOException {
        List<Entry> entries = new ArrayList<>();
        long total = 0;
        boolean hasLibrary = false;
        for (String line : new String(manifest, StandardCharsets.UTF_8).split("\n")) {
            if (line.isBlank() || line.startsWith("#")) {
                continue;
            }
            String[] fields = line.strip().split(" ");
            long size;
            try {
                size = fields.length == 3 ? Long.parseLong(fields[1]) : -1;
            } catch (NumberFormatException e) {
                size = -1;
            }
            if (size < 0 || size > MAX_TOTAL_BYTES || !SHA256.matcher(fields[0]).matches()
                    || !ENTRY_PATH.matcher(fields[2]).matches() || fields[2].contains("..") || fields[2].equals(MANIFEST)) {
                throw new IOException(origin + ": bad natives manifest line '" + line + "'");
            }
            total += size;
            if (total > MAX_TOTAL_BYTES) {
                throw new IOException(origin + ": the natives manifest lists over " + MAX_TOTAL_BYTES + " bytes");
            }
            hasLibrary |= fields[2].equals(LIBRARY);
            entries.add(new Entry(fields[2], size, fields[0]));
        }
        if (!hasLibrary) {
            throw new IOException(origin + ": the natives manifest does not list " + LIBRARY);
        }
        return List.copyOf(entries);
    }

    /**
     * The bundle's copy under {@code root} ({@code root/<key>/}), extracted when missing and replaced when
     * it no longer matches the manifest.
     */
    static Path extract(Bundle bundle, Path root) throws IOException {
        createPrivateDirectory(root);
        Path target = root.resolve(bundle.key());
        for (int attempt = 0; attempt < 3; attempt++) {
            if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
                if (unchangedSinceVerified(target, bundle.entries())) {
                    return target;
                }
                String damage = damage(target, bundle.entries());
                if (damage == null) {
                    recordVerified(target, bundle.entries());
                    return target;
                }
                LOG.log(System.Logger.Level.WARNING, "the cached ddim4j natives in " + target + " are damaged (" + damage + "): extracting them again");
                Path aside = root.resolve(".damaged-" + System.nanoTime());
                try {
                    Files.move(target, aside, StandardCopyOption.ATOMIC_MOVE);
                } catch (NoSuchFileException e) {
                    // another JVM moved it first
                }
                deleteRecursively(aside);
            }
            removeStaleExtractions(root);
            Path temp = Files.createTempDirectory(root, ".extracting-");
            try {
                Instant start = Instant.now();
                for (Entry entry : bundle.entries()) {
                    copy(bundle, entry, temp.resolve(entry.path()));
                }
                Files.write(temp.resolve(MANIFEST), bundle.manifest());
                try {
                    Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
                    recordVerified(target, bundle.entries());
                    LOG.log(System.Logger.Level.DEBUG, "extracted the ddim4j natives from " + bundle.origin() + " into " + target
                            + " in " + Duration.between(start, Instant.now()).toMillis() + " ms");
                    return target;
                } catch (FileAlreadyExistsException e) {
                    // another JVM renamed its copy into place first: checked on the next round
                } catch (FileSystemException e) {
                    if (!Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
                        throw e;
                    }
                }
            } finally {
                deleteRecursively(temp);
            }
        }
        throw new IOException("the copy in " + target + " kept changing while it was extracted (another process?)");
    }

    /** Copies one file out of the bundle, checking its size and hash as it goes: a damaged jar is refused too. */
    private static void copy(Bundle bundle, Entry entry, Path file) throws IOException {
        Files.createDirectories(file.getParent());
        MessageDigest digest = sha256();
        long written;
        try (InputStream in = new DigestInputStream(bundle.source().open(entry.path()), digest);
             OutputStream out = Files.newOutputStream(file)) {
            written = transfer(in, out, entry.size() + 1);
        }
        String hash = HexFormat.of().formatHex(digest.digest());
        if (written != entry.size() || !hash.equals(entry.sha256())) {
            throw new IOException(bundle.origin() + " is damaged: " + entry.path() + " has " + written + " bytes, SHA-256 " + hash
                    + "; its manifest says " + entry.size() + " bytes, " + entry.sha256());
        }
    }

    /** Copies at most {@code limit} bytes (the manifest's size, plus one to notice a longer file). */
    private static long transfer(InputStream in, OutputStream out, long limit) throws IOException {
        byte[] buffer = new byte[1 << 20];
        long total = 0;
        int read;
        while (total < limit && (read = in.read(buffer, 0, (int) Math.min(buffer.length, limit - total))) > 0) {
            out.write(buffer, 0, read);
            total += read;
        }
        return total;
    }

    /** Why the copy in {@code directory} does not match the manifest, or null when every file does. */
    static String damage(Path directory, List<Entry> entries) throws IOException {
        if (!Files.isDirectory(directory, LinkOption.NOFOLLOW_LINKS)) {
            return "not a directory";
        }
        for (Entry entry : entries) {
            Path file = directory.resolve(entry.path());
            if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
                return entry.path() + " is missing";
            }
            if (Files.size(file) != entry.size()) {
                return entry.path() + " has " + Files.size(file) + " bytes, not " + entry.size();
            }
            MessageDigest digest = sha256();
            try (InputStream in = new DigestInputStream(Files.newInputStream(file), digest)) {
                transfer(in, OutputStream.nullOutputStream(), entry.size());
            }
            if (!HexFormat.of().formatHex(digest.digest()).equals(entry.sha256())) {
                return entry.path() + " does not match its SHA-256";
            }
        }
        return null;
    }

    /** Each file's size, modification and status-change times (ns) and inode, one line per manifest entry. */
    private static List<String> fingerprint(Path directory, List<Entry> entries) throws IOException {
        List<String> lines = new ArrayList<>();
        for (Entry entry : entries) {
            Map<String, Object> attributes = Files.readAttributes(directory.resolve(entry.path()), "unix:size,lastModifiedTime,ctime,ino",
                    LinkOption.NOFOLLOW_LINKS);
            lines.add(entry.path() + " " + attributes.get("size") + " " + ((FileTime) attributes.get("lastModifiedTime")).to(TimeUnit.NANOSECONDS)
                    + " " + ((FileTime) attributes.get("ctime")).to(TimeUnit.NANOSECONDS) + " " + attributes.get("ino"));
        }
        return lines;
    }

    private static boolean unchangedSinceVerified(Path directory, List<Entry> entries) {
        try {
            return Files.readAllLines(directory.resolve(VERIFIED)).equals(fingerprint(directory, entries));
        } catch (IOException | RuntimeException e) {
            return false;  // no fingerprint, a missing file, or no unix attributes: check the hashes
        }
    }

    private static void recordVerified(Path directory, List<Entry> entries) {
        try {
            List<String> lines = fingerprint(directory, entries);
            AtomicFiles.write(directory.resolve(VERIFIED), temp -> Files.write(temp, lines));
        } catch (IOException | RuntimeException e) {
            // only costs this check again at the next start
        }
    }

    private static void removeStaleExtractions(Path root) {
        Instant before = Instant.now().minus(STALE);
        try (DirectoryStream<Path> leftovers = Files.newDirectoryStream(root, ".{extracting,damaged}-*")) {
            for (Path leftover : leftovers) {
                FileTime modified = Files.getLastModifiedTime(leftover, LinkOption.NOFOLLOW_LINKS);
                if (modified.toInstant().isBefore(before)) {
                    deleteRecursively(leftover);
                }
            }
        } catch (IOException e) {
            // best effort: they are hidden, and the next extraction tries again
        }
    }

    private static void deleteRecursively(Path path) {
        if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> files = Files.walk(path)) {
            for (Path file : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(file);
            }
        } catch (IOException | UncheckedIOException e) {
            // best effort: a leftover is hidden and removed by a later extraction
        }
    }

    /**
     * Creates {@code directory} (and its parents) accessible to this user only, and refuses an existing one
     * that another user owns or can write to: in a shared temporary directory no one else may swap the
     * libraries this JVM loads.
     */
    static void createPrivateDirectory(Path directory) throws IOException {
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

    static String sha256(byte[] bytes) {
        return HexFormat.of().formatHex(sha256().digest(bytes));
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform provides SHA-256", e);
        }
    }
}
