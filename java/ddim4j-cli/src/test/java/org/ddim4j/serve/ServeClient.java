package org.ddim4j.serve;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import javax.imageio.ImageIO;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/** A test's HTTP client of one server: JSON in and out, with or without a bearer token. */
final class ServeClient {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
    private final URI base;
    private final String token;

    ServeClient(URI base, String token) {
        this.base = base;
        this.token = token;
    }

    ServeClient(SampleServer server) {
        this(server.uri(), null);
    }

    /** The same server, sending {@code token} (null: none). */
    ServeClient withToken(String token) {
        return new ServeClient(base, token);
    }

    HttpRequest.Builder request(String path) {
        HttpRequest.Builder request = HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofMinutes(5));
        return token == null ? request : request.header("Authorization", "Bearer " + token);
    }

    HttpResponse<String> get(String path) throws IOException, InterruptedException {
        return send(request(path));
    }

    HttpResponse<String> post(String path, String body) throws IOException, InterruptedException {
        return send(postRequest(path, body));
    }

    HttpResponse<String> send(HttpRequest.Builder request) throws IOException, InterruptedException {
        return client.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    HttpResponse<byte[]> sendForBytes(HttpRequest.Builder request) throws IOException, InterruptedException {
        return client.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
    }

    /** A JSON POST, to send with headers of its own. */
    HttpRequest.Builder postRequest(String path, String body) {
        return request(path).header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body));
    }

    CompletableFuture<HttpResponse<String>> postAsync(String path, String body) {
        return client.sendAsync(postRequest(path, body).build(), HttpResponse.BodyHandlers.ofString());
    }

    static JsonNode json(HttpResponse<String> response) throws IOException {
        return JSON.readTree(response.body());
    }

    /** The base64 PNGs of an answer's images, in order. */
    static List<String> pngs(JsonNode body) {
        List<String> pngs = new ArrayList<>();
        body.get("images").forEach(image -> pngs.add(image.get("png").asText()));
        return pngs;
    }

    /** A base64 PNG's pixels, as ImageIO reads them. */
    static int[] pixels(String base64Png) throws IOException {
        return pixels(ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode(base64Png))));
    }

    static int[] pixels(BufferedImage image) {
        return image.getRaster().getPixels(0, 0, image.getWidth(), image.getHeight(), (int[]) null);
    }
}
