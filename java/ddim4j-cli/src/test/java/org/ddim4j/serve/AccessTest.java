package org.ddim4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Who may use a server: the bearer token on every route but /health and the page, and CORS only for named origins. */
class AccessTest extends ServerTestBase {
    private static final String TOKEN = "0123456789abcdef-test-token";

    private ServeClient start(ServeAccess access) throws Exception {
        return start(ServeSettings.defaults(), access);
    }

    @Test
    void everyApiRouteNeedsTheTokenButHealthAndThePage() throws Exception {
        ServeClient anonymous = start(ServeAccess.withToken(TOKEN));
        for (ServeClient client : List.of(anonymous, anonymous.withToken("wrong-token-of-the-same-size!"), anonymous.withToken(TOKEN + "x"))) {
            for (String path : List.of("/v1/model", "/metrics", "/v1/openapi.json", "/v1/samples/stream?count=1&steps=1", "/nowhere")) {
                HttpResponse<String> response = client.get(path);
                assertEquals(401, response.statusCode(), path);
                assertEquals("Bearer realm=\"ddim serve\"", response.headers().firstValue("WWW-Authenticate").orElseThrow(), path);
                assertFalse(response.body().contains(TOKEN), response.body());
            }
            assertEquals(401, client.post("/v1/samples", "{\"count\": 1, \"steps\": 1}").statusCode());
            assertEquals(401, client.post("/v1/interpolations", "{}").statusCode());
        }
        assertEquals(200, anonymous.get("/health").statusCode());
        assertEquals(200, anonymous.get("/").statusCode());
        assertEquals(200, anonymous.get("/app.js").statusCode());

        ServeClient authorized = anonymous.withToken(TOKEN);
        assertEquals(200, authorized.get("/v1/model").statusCode());
        assertEquals(200, authorized.post("/v1/samples", "{\"count\": 1, \"steps\": 2}").statusCode());
        assertEquals(200, authorized.send(authorized.request("/metrics").header("Authorization", "bearer " + TOKEN)).statusCode(),
                "the scheme's name is case-insensitive");
        String metrics = authorized.get("/metrics").body();
        assertTrue(metrics.contains("ddim_serve_rejected_requests_total{reason=\"unauthorized\"} 21.0"), metrics);
    }

    @Test
    void withoutATokenEveryoneOnTheInterfaceMayUseIt() throws Exception {
        ServeClient client = start(ServeAccess.open());
        assertEquals(200, client.get("/v1/model").statusCode());
        assertTrue(server.isLoopbackOnly());
    }

    @Test
    void corsHeadersOnlyForTheNamedOrigins() throws Exception {
        ServeClient client = start(ServeAccess.withToken(TOKEN).withCorsOrigins(List.of("https://app.example")));
        ServeClient authorized = client.withToken(TOKEN);
        HttpResponse<String> allowed = authorized.send(authorized.request("/v1/model").header("Origin", "https://app.example"));
        assertEquals(200, allowed.statusCode());
        assertEquals("https://app.example", allowed.headers().firstValue("Access-Control-Allow-Origin").orElseThrow());
        HttpResponse<String> other = authorized.send(authorized.request("/v1/model").header("Origin", "https://evil.example"));
        assertEquals(200, other.statusCode());
        assertTrue(other.headers().firstValue("Access-Control-Allow-Origin").isEmpty());
        // The browser's preflight carries no token.
        HttpResponse<String> preflight = client.send(client.request("/v1/samples").header("Origin", "https://app.example")
                .header("Access-Control-Request-Method", "POST").header("Access-Control-Request-Headers", "authorization, content-type")
                .method("OPTIONS", HttpRequest.BodyPublishers.noBody()));
        assertEquals(204, preflight.statusCode());
        assertTrue(preflight.headers().firstValue("Access-Control-Allow-Headers").orElseThrow().contains("Authorization"));
        assertTrue(preflight.headers().firstValue("Access-Control-Allow-Methods").orElseThrow().contains("POST"));
        stopServer();

        ServeClient noCors = start(ServeAccess.open());
        HttpResponse<String> plain = noCors.send(noCors.request("/v1/model").header("Origin", "https://app.example"));
        assertEquals(200, plain.statusCode());
        assertTrue(plain.headers().map().keySet().stream().noneMatch(name -> name.toLowerCase().startsWith("access-control")),
                plain.headers().map().toString());
        HttpResponse<String> refusedPreflight = noCors.send(noCors.request("/v1/samples").header("Origin", "https://app.example")
                .header("Access-Control-Request-Method", "POST").method("OPTIONS", HttpRequest.BodyPublishers.noBody()));
        assertEquals(405, refusedPreflight.statusCode());
    }

    @Test
    void tokensAndOriginsAreChecked(@TempDir Path dir) throws Exception {
        assertThrows(IllegalArgumentException.class, () -> ServeAccess.withToken("short"));
        assertThrows(IllegalArgumentException.class, () -> ServeAccess.withToken("has a space in it, see?"));
        assertThrows(IllegalArgumentException.class, () -> ServeAccess.withTokenFile(Files.writeString(dir.resolve("two"), TOKEN + "\n" + TOKEN)));
        assertThrows(IllegalArgumentException.class, () -> ServeAccess.withTokenFile(Files.write(dir.resolve("huge"), new byte[5000])));
        assertTrue(ServeAccess.withTokenFile(Files.writeString(dir.resolve("ok"), "  " + TOKEN + "\n")).authorizes("Bearer " + TOKEN));
        assertFalse(ServeAccess.withToken(TOKEN).toString().contains(TOKEN));
        assertThrows(IllegalArgumentException.class, () -> ServeAccess.open().withCorsOrigins(List.of("app.example")));
    }
}
