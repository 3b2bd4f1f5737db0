package org.ddim4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;

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
        List<String> command = new ArrayList<>(LocalLauncher.javaCommand());
        command.addAll(List.of("serve", "--model", MODEL.toString(), "--port", "0", "--threads", "1"));
        Process server = new ProcessBuilder(command).redirectErrorStream(true).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8));
            String first = out.readLine();
            Matcher address = Pattern.compile("serving .* on (http://127\\.0\\.0\\.1:\\d+/)").matcher(first == null ? "" : first);
            assertTrue(address.find(), "first line: " + first);
            URI uri = URI.create(address.group(1));
            HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            HttpResponse<String> health = client.send(HttpRequest.newBuilder(uri.resolve("/health")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, health.statusCode());
            // A long request is running when SIGTERM arrives: it is answered before the process exits.
            CompletableFuture<HttpResponse<String>> running = client.sendAsync(HttpRequest.newBuilder(uri.resolve("/v1/samples"))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"count\": 2, \"steps\": 40}")).build(), HttpResponse.BodyHandlers.ofString());
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!client.send(HttpRequest.newBuilder(uri.resolve("/health")).build(), HttpResponse.BodyHandlers.ofString()).body()
                    .contains("\"running\":1")) {
                assertTrue(System.nanoTime() < end, "the request never started");
                Thread.sleep(20);
            }
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
}
