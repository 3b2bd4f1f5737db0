package org.ddim4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URLDecoder;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.InputFormat;
import com.networknt.schema.SchemaLocation;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.dialect.Dialects;

import io.swagger.v3.parser.OpenAPIV3Parser;
import io.swagger.v3.parser.core.models.SwaggerParseResult;

import org.junit.jupiter.api.Test;

/**
 * GET /v1/openapi.json stays true: swagger-parser reads it as a valid OpenAPI 3.1 document, it lists every route the
 * server has, and real requests and responses (every status the API gives, every media type) are validated against
 * it: the operation and the status must be declared, the content type too, and each JSON body must satisfy its
 * schema (networknt's validator, OpenAPI 3.1's JSON Schema dialect).
 */
class OpenApiTest extends ServerTestBase {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String DOCUMENT = "https://ddim4j.invalid/openapi.json";
    private static final String TOKEN = "openapi-test-token-0123456789";
    private JsonNode document;
    private SchemaRegistry schemas;
    private final Set<String> checked = new HashSet<>();

    /** Starts the server and reads its document; the client sends the token. */
    private ServeClient startDocumented(ServeSettings settings, ServeAccess access) throws Exception {
        ServeClient client = start(settings, access).withToken(TOKEN);
        String text = client.get("/v1/openapi.json").body();
        document = JSON.readTree(text);
        schemas = SchemaRegistry.withDialect(Dialects.getOpenApi31(), builder -> builder.schemas(java.util.Map.of(DOCUMENT, text)));
        return client;
    }

    @Test
    void theDocumentIsValidOpenApi31AndListsEveryRoute() throws Exception {
        startDocumented(ServeSettings.defaults(), ServeAccess.open());
        SwaggerParseResult parsed = new OpenAPIV3Parser().readContents(JSON.writeValueAsString(document), null, null);
        assertTrue(parsed.getMessages() == null || parsed.getMessages().isEmpty(), "swagger-parser: " + parsed.getMessages());
        assertNotNull(parsed.getOpenAPI());
        assertEquals("3.1.0", parsed.getOpenAPI().getOpenapi());
        Set<String> documented = new HashSet<>();
        document.get("paths").fieldNames().forEachRemaining(documented::add);
        assertEquals(SampleServer.ROUTES, documented, "the routes documented vs served");
    }

    @Test
    void realRequestsAndResponsesMatchTheDocument() throws Exception {
        ServeClient client = startDocumented(ServeSettings.defaults().withQueueCapacity(1).withBatching(1, Duration.ZERO),
                ServeAccess.withToken(TOKEN));
        exchange(client, "GET", "/health", null);
        exchange(client, "GET", "/v1/model", null);
        exchange(client, "GET", "/v1/openapi.json", null);
        exchange(client, "GET", "/metrics", null);
        exchange(client, "POST", "/v1/samples", "{\"count\": 2, \"steps\": 2, \"seed\": 5, \"sampler\": \"DDPM\", \"eta\": 0}");
        exchange(client, "POST", "/v1/samples", "{}");
        exchange(client, "POST", "/v1/samples", "{\"count\": 0}"); // 400
        exchange(client, "POST", "/v1/samples", "{\"class\": 1}"); // 400: an unconditional model
        exchange(client, "POST", "/v1/samples", "{\"count\": 1, \"pad\": \"" + "x".repeat(20_000) + "\"}"); // 413
        exchange(client.withToken(null), "POST", "/v1/samples", "{\"count\": 1}"); // 401
        exchange(client.withToken("not-the-token-but-long-enough"), "GET", "/v1/model", null); // 401
        exchange(client, "POST", "/v1/interpolations", "{\"from\": 3, \"to\": 4, \"frames\": 3, \"steps\": 2}");
        exchange(client, "POST", "/v1/interpolations", "{\"frames\": 1}"); // 400
        HttpResponse<String> png = client.send(client.request("/v1/samples").header("Accept", "image/png")
                .POST(HttpRequest.BodyPublishers.ofString("{\"count\": 2, \"steps\": 1}")));
        checkResponse("POST", "/v1/samples", png);
        HttpResponse<String> stream = exchange(client, "GET", "/v1/samples/stream?count=2&steps=2&seed=3&sampler=DDIM", null);
        checkStreamResult(stream.body());
        exchange(client, "GET", "/v1/samples/stream?count=-1", null); // 400

        // 429 and 503: a held sampling thread, a full queue, then a stopping server.
        Gate gate = hold();
        CompletableFuture<HttpResponse<String>> waiting = client.postAsync("/v1/samples", "{\"count\": 1, \"steps\": 1}");
        awaitQueued(1);
        exchange(client, "POST", "/v1/samples", "{\"count\": 1, \"steps\": 1}"); // 429
        gate.open();
        checkResponse("POST", "/v1/samples", waiting.get());
        assertEquals(Set.of("200", "400", "401", "413", "429"), statuses(), "the statuses this test saw");
    }

    private Set<String> statuses() {
        Set<String> statuses = new HashSet<>();
        checked.forEach(entry -> statuses.add(entry.substring(entry.lastIndexOf(' ') + 1)));
        return statuses;
    }

    /** Sends a request (its body validated first), then validates the response. */
    private HttpResponse<String> exchange(ServeClient client, String method, String pathAndQuery, String body) throws Exception {
        String path = pathAndQuery.contains("?") ? pathAndQuery.substring(0, pathAndQuery.indexOf('?')) : pathAndQuery;
        JsonNode operation = operation(method, path);
        if (pathAndQuery.contains("?")) {
            Set<String> declared = new HashSet<>();
            operation.path("parameters").forEach(parameter -> declared.add(parameter.get("name").asText()));
            for (String pair : pathAndQuery.substring(pathAndQuery.indexOf('?') + 1).split("&")) {
                String name = URLDecoder.decode(pair.substring(0, pair.indexOf('=')), StandardCharsets.UTF_8);
                assertTrue(declared.contains(name), "query parameter " + name + " of " + path + " is documented");
            }
        }
        HttpRequest.Builder request = client.request(pathAndQuery);
        request = body == null ? request.method(method, HttpRequest.BodyPublishers.noBody())
                : request.header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(body));
        HttpResponse<String> response = client.send(request);
        checkResponse(method, path, response);
        if (body != null && response.statusCode() == 200) { // a request the server takes is one the document allows
            validate(pointer(operation, "/requestBody/content/application~1json/schema"), body, method + " " + path + " request");
        }
        return response;
    }

    private void checkResponse(String method, String path, HttpResponse<String> response) {
        JsonNode declared = operation(method, path).path("responses").path(Integer.toString(response.statusCode()));
        assertTrue(!declared.isMissingNode(), method + " " + path + " answered " + response.statusCode() + ", which is not documented: "
                + response.body());
        String responsePointer = declared.has("$ref") ? declared.get("$ref").asText().substring(1)
                : "/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method.toLowerCase(Locale.ROOT) + "/responses/" + response.statusCode();
        JsonNode resolved = document.at(responsePointer);
        String type = response.headers().firstValue("Content-Type").orElseThrow().split(";")[0].strip();
        assertTrue(resolved.path("content").has(type), method + " " + path + " " + response.statusCode() + " answered " + type
                + ", documented: " + resolved.path("content"));
        resolved.path("headers").fieldNames().forEachRemaining(header -> {
            if (!header.equals("Retry-After") || response.statusCode() == 429) {
                assertTrue(response.headers().firstValue(header).isPresent(), header + " of " + response.statusCode());
            }
        });
        if (type.equals("application/json")) {
            validate(responsePointer + "/content/application~1json/schema", response.body(), method + " " + path + " " + response.statusCode());
        }
        checked.add(method + " " + path + " " + response.statusCode());
    }

    /** The stream's result event is what POST /v1/samples answers. */
    private void checkStreamResult(String events) {
        int at = events.indexOf("event: result\ndata: ");
        assertTrue(at >= 0, events);
        String data = events.substring(at + "event: result\ndata: ".length(), events.indexOf('\n', at + "event: result\ndata: ".length()));
        validate("/components/schemas/Samples", data, "the stream's result event");
    }

    private JsonNode operation(String method, String path) {
        JsonNode operation = document.path("paths").path(path).path(method.toLowerCase(Locale.ROOT));
        assertTrue(!operation.isMissingNode(), method + " " + path + " is not documented");
        return operation;
    }

    /** The JSON pointer of {@code relative} inside {@code operation}, found by searching the document for the node. */
    private String pointer(JsonNode operation, String relative) {
        List<String> found = new ArrayList<>();
        document.path("paths").fields().forEachRemaining(pathItem -> pathItem.getValue().fields().forEachRemaining(op -> {
            if (op.getValue() == operation) {
                found.add("/paths/" + pathItem.getKey().replace("~", "~0").replace("/", "~1") + "/" + op.getKey() + relative);
            }
        }));
        assertEquals(1, found.size());
        assertTrue(!document.at(found.getFirst()).isMissingNode(), found.getFirst() + " is documented");
        return found.getFirst();
    }

    private void validate(String pointer, String json, String what) {
        var errors = schemas.getSchema(SchemaLocation.of(DOCUMENT + "#" + pointer)).validate(json, InputFormat.JSON);
        assertTrue(errors.isEmpty(), what + " does not match " + pointer + ": " + errors + "\n" + json.substring(0, Math.min(json.length(), 400)));
    }
}
