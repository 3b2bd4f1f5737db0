package org.ddim4j.serve;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;

/**
 * Who may use a server: a bearer token (none: anyone who reaches the port) and the web origins that
 * may call it from a browser (CORS; none: same-origin only, no CORS headers at all).
 *
 * <p>The token is kept only as its SHA-256 digest, and a presented token is compared digest to digest with
 * {@link MessageDigest#isEqual}, in time that does not depend on where the two differ (nor on their lengths).
 */
public final class ServeAccess {
    /** The longest token file read; a token is a line of printable ASCII. */
    static final int MAX_TOKEN_BYTES = 4096;
    private static final int MIN_TOKEN_CHARS = 16;

    private final byte[] tokenDigest; // null: no token needed
    private final List<String> corsOrigins;

    private ServeAccess(byte[] tokenDigest, List<String> corsOrigins) {
        this.tokenDigest = tokenDigest;
        this.corsOrigins = List.copyOf(corsOrigins);
        for (String origin : this.corsOrigins) {
            if (!origin.equals("*") && !origin.matches("https?://[^/\\s]+")) {
                throw new IllegalArgumentException("a CORS origin is scheme://host[:port] (e.g. https://example.org) or *, got '" + origin + "'");
            }
        }
    }

    /** No token, no CORS: anyone who reaches the port, from its own origin. */
    public static ServeAccess open() {
        return new ServeAccess(null, List.of());
    }

    /** Requires {@code token} as {@code Authorization: Bearer <token>}. */
    public static ServeAccess withToken(String token) {
        return new ServeAccess(digest(checkedToken(token)), List.of());
    }

    /**
     * The token in {@code file}: its first line, without surrounding white space. The file must hold nothing
     * else but white space, and at most {@value #MAX_TOKEN_BYTES} bytes.
     */
    public static ServeAccess withTokenFile(Path file) throws IOException {
        if (Files.size(file) > MAX_TOKEN_BYTES) {
            throw new IllegalArgumentException("the token file " + file + " is larger than " + MAX_TOKEN_BYTES + " bytes");
        }
        String text = Files.readString(file, StandardCharsets.US_ASCII).strip();
        if (text.contains("\n")) {
            throw new IllegalArgumentException("the token file " + file + " must hold one line, the token");
        }
        return withToken(text);
    }

    /** These settings, also letting {@code origins} call from a browser ("*": any origin). */
    public ServeAccess withCorsOrigins(List<String> origins) {
        return new ServeAccess(tokenDigest, origins);
    }

    public boolean requiresToken() {
        return tokenDigest != null;
    }

    /** Whether an {@code Authorization} header value carries the token (always true without one). */
    boolean authorizes(String authorization) {
        if (tokenDigest == null) {
            return true;
        }
        String presented = "";
        if (authorization != null && authorization.regionMatches(true, 0, "Bearer ", 0, 7)) {
            presented = authorization.substring(7).strip();
        }
        return MessageDigest.isEqual(tokenDigest, digest(presented));
    }

    /** The value of Access-Control-Allow-Origin for a request from {@code origin}, or null: no CORS headers. */
    String allowedOrigin(String origin) {
        if (origin == null || corsOrigins.isEmpty()) {
            return null;
        }
        if (corsOrigins.contains("*")) {
            return "*";
        }
        return corsOrigins.contains(origin) ? origin : null;
    }

    private static String checkedToken(String token) {
        if (token == null || token.length() < MIN_TOKEN_CHARS) {
            throw new IllegalArgumentException("the token must have at least " + MIN_TOKEN_CHARS
                    + " characters (e.g. openssl rand -hex 32 > token.txt)");
        }
        for (int i = 0; i < token.length(); i++) {
            char c = token.charAt(i);
            if (c < 0x21 || c > 0x7e) {
                throw new IllegalArgumentException("the token must be printable ASCII without spaces");
            }
        }
        return token;
    }

    private static byte[] digest(String text) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JDK", e);
        }
    }

    @Override
    public String toString() { // never the token
        return "ServeAccess[token " + (requiresToken() ? "required" : "none") + ", CORS origins " + corsOrigins + "]";
    }
}
