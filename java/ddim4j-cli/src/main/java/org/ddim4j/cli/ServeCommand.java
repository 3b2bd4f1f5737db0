package org.ddim4j.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

import org.ddim4j.Ddim;
import org.ddim4j.Network;
import org.ddim4j.Precision;
import org.ddim4j.SampleOptions;
import org.ddim4j.serve.SampleServer;
import org.ddim4j.serve.ServeAccess;
import org.ddim4j.serve.ServeSettings;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serve a model over HTTP: a web page at /, and an API (/health, /v1/model, POST /v1/samples,",
                "GET /v1/samples/stream for live denoising, POST /v1/interpolations, /metrics for Prometheus, and",
                "/v1/openapi.json describing them). Class models take a class (or one per image) and a guidance weight.",
                "Concurrent requests are sampled together (dynamic batching) and each still gets exactly the pixels it",
                "would get alone.",
                "Ctrl-C or SIGTERM stops taking requests, lets the running batch finish, then exits."})
final class ServeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "FILE", description = "a model file (.safetensors)")
    Path model;

    @Option(names = "--host", defaultValue = "127.0.0.1",
            description = "address to listen on; 0.0.0.0 serves other machines too: give it a --token-file (default: ${DEFAULT-VALUE})")
    String host;

    @Option(names = "--token-file", paramLabel = "FILE",
            description = "require Authorization: Bearer <the token in FILE> on every route but /health and the page's files "
                    + "(e.g. openssl rand -hex 32 > token.txt)")
    Path tokenFile;

    @Option(names = "--cors-origin", paramLabel = "ORIGIN",
            description = "let web pages of this origin (https://example.org, or * for any) call the API from a browser; repeatable "
                    + "(default: none, no CORS headers)")
    java.util.List<String> corsOrigins = new java.util.ArrayList<>();

    @Option(names = {"-p", "--port"}, defaultValue = "8080", description = "port; 0 picks a free one (default: ${DEFAULT-VALUE})")
    int port;

    @Option(names = "--max-count", defaultValue = "" + ServeSettings.DEFAULT_MAX_COUNT, paramLabel = "N", description = "images per request (default: ${DEFAULT-VALUE})")
    int maxCount;

    @Option(names = "--max-steps", defaultValue = "" + ServeSettings.DEFAULT_MAX_STEPS, paramLabel = "N", description = "steps per request (default: ${DEFAULT-VALUE})")
    int maxSteps;

    @Option(names = "--queue", defaultValue = "" + ServeSettings.DEFAULT_QUEUE_CAPACITY, paramLabel = "N",
            description = "requests that may wait; more get 429 with Retry-After (default: ${DEFAULT-VALUE})")
    int queue;

    @Option(names = "--max-batch", defaultValue = "" + ServeSettings.DEFAULT_MAX_BATCH_IMAGES, paramLabel = "IMAGES",
            description = "images of concurrent requests sampled in one call; 1 turns dynamic batching off (default: ${DEFAULT-VALUE})")
    int maxBatch;

    @Option(names = "--batch-window", defaultValue = "" + ServeSettings.DEFAULT_BATCH_WINDOW_MILLIS, paramLabel = "MS",
            description = "how long a request to an idle server waits for others to batch with (default: ${DEFAULT-VALUE} ms)")
    long batchWindowMillis;

    @Option(names = "--timeout", defaultValue = "" + ServeSettings.DEFAULT_REQUEST_TIMEOUT_SECONDS, paramLabel = "SECONDS",
            description = "how long a request may wait and run before it is cancelled with 503 (default: ${DEFAULT-VALUE})")
    long timeoutSeconds;

    @Option(names = "--max-body", defaultValue = "" + ServeSettings.DEFAULT_MAX_BODY_BYTES, paramLabel = "BYTES", description = "largest request body (default: ${DEFAULT-VALUE})")
    int maxBody;

    @Option(names = "--preview-every", defaultValue = "" + ServeSettings.DEFAULT_PREVIEW_EVERY, paramLabel = "STEPS",
            description = "steps between the predicted images a stream sends (default: ${DEFAULT-VALUE})")
    int previewEvery;

    @Option(names = "--micro-batch", defaultValue = "" + SampleOptions.DEFAULT_MICRO_BATCH, paramLabel = "N",
            description = "images per network evaluation; the images depend on it (default: ${DEFAULT-VALUE})")
    int microBatch;

    @Option(names = "--precision", defaultValue = "FLOAT32", description = "FLOAT32 or BFLOAT16 (default: ${DEFAULT-VALUE})")
    Precision precision;

    @Option(names = "--network", defaultValue = "AUTO",
            description = "AUTO (FUSED on the CPU, EAGER elsewhere), FUSED or EAGER (default: ${DEFAULT-VALUE})")
    Network network;

    @Option(names = "--grace", defaultValue = "" + ServeSettings.DEFAULT_SHUTDOWN_GRACE_SECONDS, paramLabel = "SECONDS",
            description = "on shutdown, how long the running batch may take before it is cancelled (default: ${DEFAULT-VALUE})")
    long graceSeconds;

    @Mixin
    RuntimeOptions runtime = new RuntimeOptions();

    @Override
    public Integer call() throws Exception {
        ServeSettings settings = new ServeSettings(maxCount, maxSteps, queue, maxBatch, Duration.ofMillis(batchWindowMillis),
                Duration.ofSeconds(timeoutSeconds), maxBody, previewEvery, microBatch, precision, network,
                Duration.ofSeconds(graceSeconds));
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("--port must lie in [0, 65535], got " + port);
        }
        ServeAccess access = (tokenFile == null ? ServeAccess.open() : ServeAccess.withTokenFile(tokenFile)).withCorsOrigins(corsOrigins);
        // A client that sends its request slowly is cut off (the JDK server reads this when it starts).
        System.setProperty("sun.net.httpserver.maxReqTime", System.getProperty("sun.net.httpserver.maxReqTime", "30"));
        PrintWriter out = spec.commandLine().getOut();
        CountDownLatch stopped = new CountDownLatch(1);
        CountDownLatch closed = new CountDownLatch(1);
        // "stopped" is printed before the shutdown hook is released: once the hook returns, the JVM halts.
        try {
            try (Ddim ddim = Ddim.open(model, runtime.device())) {
                SampleServer server;
                try {
                    server = SampleServer.start(ddim, settings, access, host, port);
                } catch (java.net.BindException e) {
                    throw new java.io.UncheckedIOException("cannot listen on " + host + ":" + port + ": " + e.getMessage()
                            + " (another server? try --port)", e);
                }
                Thread hook = new Thread(() -> {
                    out.println("stopping: finishing the running batch (at most " + graceSeconds + " s)");
                    out.flush();
                    server.close();
                    stopped.countDown();
                    try { // the JVM halts when the hooks end: let the model be freed first
                        closed.await(10, java.util.concurrent.TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }, "ddim-serve-shutdown");
                Runtime.getRuntime().addShutdownHook(hook);
                Ddim.setCancelOnExit(false); // the hook finishes the running batch within the grace, then cancels it itself
                out.printf("serving %s (%s, %,d parameters) on %s%n", model, ddim.device(), ddim.parameterCount(), server.uri());
                if (!access.requiresToken() && !server.isLoopbackOnly()) {
                    spec.commandLine().getErr().printf("warning: listening on %s without --token-file: anyone who reaches this port "
                            + "can use the server%n", host);
                    spec.commandLine().getErr().flush();
                }
                String auth = tokenFile == null ? "" : " -H \"Authorization: Bearer $(cat " + tokenFile + ")\"";
                String body = ddim.config().isClassConditional()
                        ? "{\"count\": 4, \"class\": \"" + ddim.config().className(0) + "\", \"guidance\": 3}" : "{\"count\": 4}";
                out.printf("  page:  %s%n  API:   curl -X POST %sv1/samples%s -H 'Content-Type: application/json' -d '%s'%n",
                        server.uri(), server.uri(), auth, body);
                out.printf("         %sv1/openapi.json describes it; %smetrics for Prometheus%n", server.uri(), server.uri());
                out.flush();
                stopped.await(); // until SIGTERM or Ctrl-C
            }
            out.println("stopped");
            out.flush();
        } finally {
            closed.countDown();
        }
        return 0;
    }
}
