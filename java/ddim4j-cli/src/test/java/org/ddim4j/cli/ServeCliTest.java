package org.ddim4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `ddim serve` as a user runs it: a real process on a free port, answering, then stopped by SIGTERM. */
class ServeCliTest {
    private static final Path MODEL = Path.of(System.getProperty("ddim4j.repo"), "models", "fashion-mnist-32.safetensors");

    @Test
    void aPortInUseIsOneClearLine() throws Exception {
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            CliTest.Result result = CliTest.run("serve", "--model", MODEL.toString(), "--port", Integer.toString(taken.getLocalPort()));
            assertEquals(1, result.code(), result.out() + result.err());
            assertEquals("ddim: cannot listen on 127.0.0.1:" + taken.getLocalPort()
                    + ": Address already in use (another server? try --port)", result.err().strip());
        }
    }

    @Test
    void serveAnswersAndStopsGracefullyOnSigterm() throws Exception {
        Process server = start(Path.of("."));
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8));
            URI uri = address(out);
            HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            HttpResponse<String> health = client.send(HttpRequest.newBuilder(uri.resolve("/health")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, health.statusCode());
            // A long request is running when SIGTERM arrives: it is answered before the process exits.
            CompletableFuture<HttpResponse<String>> running = client.sendAsync(HttpRequest.newBuilder(uri.resolve("/v1/samples"))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"count\": 2, \"steps\": 40}")).build(), HttpResponse.BodyHandlers.ofString());
            awaitRunning(client, uri);
            server.toHandle().destroy(); // SIGTERM (Process.destroy would also close our end of its output)
            HttpResponse<String> answered = running.get(60, TimeUnit.SECONDS);
            assertEquals(200, answered.statusCode(), answered.body());
            assertTrue(answered.body().contains("\"images\""));
            assertTrue(server.waitFor(60, TimeUnit.SECONDS), "the server exits");
            String rest = String.join("\n", out.lines().toList());
            assertTrue(rest.contains("stopping: finishing the running batch"), rest);
            assertTrue(rest.contains("stopped"), rest);
            assertEquals(143, server.exitValue(), "ended by SIGTERM");
        } finally {
            server.destroyForcibly();
        }
    }

    /**
     * SIGTERM while the server is busy, 20 times: each time the process ends with 143 after "stopped", every
     * client gets an answer (its images, or 503 for a request the stop refused), and no hs_err file appears.
     */
    @Test
    void sigtermUnderLoadExitsCleanlyEveryTime(@TempDir Path directory) throws Exception {
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        for (int i = 0; i < 20; i++) {
            Path run = Files.createDirectory(directory.resolve("run-" + i));
            Process server = start(run);
            try {
                BufferedReader out = new BufferedReader(new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8));
                URI uri = address(out);
                List<CompletableFuture<HttpResponse<String>>> load = new ArrayList<>();
                for (int request = 0; request < 4; request++) {
                    load.add(client.sendAsync(HttpRequest.newBuilder(uri.resolve("/v1/samples"))
                            .POST(HttpRequest.BodyPublishers.ofString("{\"count\": 2, \"steps\": 40, \"seed\": " + request + "}")).build(),
                            HttpResponse.BodyHandlers.ofString()));
                }
                awaitRunning(client, uri);
                Thread.sleep(i * 17 % 120);
                server.toHandle().destroy();
                for (CompletableFuture<HttpResponse<String>> answer : load) {
                    int status = answer.get(60, TimeUnit.SECONDS).statusCode();
                    assertTrue(status == 200 || status == 503, "repetition " + i + ": HTTP " + status);
                }
                assertTrue(server.waitFor(60, TimeUnit.SECONDS), "repetition " + i + ": the server exits");
                String rest = String.join("\n", out.lines().toList());
                assertEquals(143, server.exitValue(), "repetition " + i + ":\n" + rest);
                assertTrue(rest.contains("stopped"), "repetition " + i + ":\n" + rest);
                try (Stream<Path> files = Files.list(run)) {
                    assertEquals(List.of(), files.filter(file -> file.getFileName().toString().startsWith("hs_err")).toList(),
                            "repetition " + i + ":\n" + rest);
                }
            } finally {
                server.destroyForcibly();
            }
        }
    }

    /**
     * A client that sends its request too slowly is cut off (the JDK server's maximum request time, 30 s by default,
     * here 1 s), and the server goes on answering. Also: a class-conditional model is served with a class and guidance,
     * behind --token-file: no token gets 401, the token gets the images, and the token never appears in the output.
     */
    @Test
    void aSlowClientIsCutOffAndAClassModelIsServedBehindAToken(@TempDir Path dir) throws Exception {
        Path classModel = MODEL.resolveSibling("fashion-mnist-32-classes.safetensors");
        String token = "t0ken-" + Long.toHexString(System.nanoTime()) + "-never-printed";
        Path tokenFile = Files.writeString(dir.resolve("token.txt"), token + "\n");
        Process server = start(Path.of("."), classModel, List.of("-Dsun.net.httpserver.maxReqTime=1"), "--token-file", tokenFile.toString());
        StringBuilder printed = new StringBuilder();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8));
            URI uri = address(out);
            try (java.net.Socket slow = new java.net.Socket(uri.getHost(), uri.getPort())) {
                slow.getOutputStream().write("POST /v1/samples HTTP/1.1\r\nHost: x\r\n".getBytes(StandardCharsets.US_ASCII));
                slow.getOutputStream().flush();
                slow.setSoTimeout(20_000);
                long start = System.nanoTime();
                // The rest of the headers never come: the server closes the connection (end of stream) after ~1 s.
                while (slow.getInputStream().read() != -1) {
                    // skip whatever it sends before closing
                }
                double seconds = (System.nanoTime() - start) / 1e9;
                assertTrue(seconds < 15, "cut off after " + seconds + " s");
            }
            HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            String request = "{\"count\": 2, \"steps\": 5, \"class\": \"sneaker\", \"guidance\": 3}";
            HttpResponse<String> refused = client.send(HttpRequest.newBuilder(uri.resolve("/v1/samples"))
                    .POST(HttpRequest.BodyPublishers.ofString(request)).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(401, refused.statusCode(), refused.body());
            HttpResponse<String> sampled = client.send(HttpRequest.newBuilder(uri.resolve("/v1/samples")).header("Authorization", "Bearer " + token)
                    .POST(HttpRequest.BodyPublishers.ofString(request)).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, sampled.statusCode(), sampled.body());
            assertTrue(sampled.body().contains("\"className\":\"Sneaker\""), sampled.body());
            server.toHandle().destroy(); // SIGTERM: the rest of the output, to its end
            out.lines().forEach(line -> printed.append(line).append('\n'));
            assertTrue(server.waitFor(60, TimeUnit.SECONDS));
            assertTrue(printed.toString().contains("stopped"), printed.toString());
            assertFalse(printed.toString().contains(token), "the token was printed:\n" + printed);
            assertFalse(printed.toString().contains("warning"), printed.toString());
        } finally {
            server.destroyForcibly();
        }
    }

    /** Listening beyond loopback without a token is allowed, with a warning. */
    @Test
    void listeningOnEveryAddressWithoutATokenWarns() throws Exception {
        Process server = start(Path.of("."), MODEL, List.of(), "--host", "0.0.0.0");
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8));
            StringBuilder printed = new StringBuilder();
            for (String line; (line = out.readLine()) != null && !line.contains("openapi.json"); ) {
                printed.append(line).append('\n');
            }
            assertTrue(printed.toString().contains("warning: listening on 0.0.0.0 without --token-file"), printed.toString());
        } finally {
            server.destroyForcibly();
        }
    }

    /** `ddim serve` of the shipped model on a free port, one thread, in {@code directory}. */
    private static Process start(Path directory) throws IOException {
        return start(directory, MODEL, List.of());
    }

    /** `ddim serve` of {@code model} on a free port, one thread, in {@code directory}, with extra JVM and serve options. */
    private static Process start(Path directory, Path model, List<String> jvmOptions, String... serveOptions) throws IOException {
        List<String> command = new ArrayList<>(LocalLauncher.javaCommand());
        command.addAll(1, jvmOptions);
        command.addAll(List.of("serve", "--model", model.toString(), "--port", "0", "--threads", "1"));
        command.addAll(List.of(serveOptions));
        return new ProcessBuilder(command).directory(directory.toFile()).redirectErrorStream(true).start();
    }

    /** The address from the server's first line. */
    private static URI address(BufferedReader out) throws IOException {
        String first = out.readLine();
        Matcher address = Pattern.compile("serving .* on (http://127\\.0\\.0\\.1:\\d+/)").matcher(first == null ? "" : first);
        assertTrue(address.find(), "first line: " + first);
        return URI.create(address.group(1));
    }

    /** Waits until the server reports running requests. */
    private static void awaitRunning(HttpClient client, URI uri) throws Exception {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        Pattern running = Pattern.compile("\"running\":[1-9]");
        while (!running.matcher(client.send(HttpRequest.newBuilder(uri.resolve("/health")).build(), HttpResponse.BodyHandlers.ofString())
                .body()).find()) {
            assertTrue(System.nanoTime() < end, "the request never started");
            Thread.sleep(20);
        }
    }
}
