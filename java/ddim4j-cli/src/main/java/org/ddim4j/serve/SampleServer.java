package org.ddim4j.serve;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import javax.imageio.ImageIO;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import org.ddim4j.Ddim;
import org.ddim4j.DdimException;
import org.ddim4j.ImageBatch;
import org.ddim4j.ModelConfig;
import org.ddim4j.Noise;
import org.ddim4j.SampleOptions;
import org.ddim4j.Sampler;

/**
 * {@code ddim serve}: an HTTP API and a web page over one model. The JDK's own HTTP server, one
 * virtual thread per exchange: the work is one sampling thread ({@link Batcher}), so the HTTP side
 * only parses, waits and encodes, and needs no framework.
 *
 * <ul>
 *   <li>{@code GET /health}, {@code GET /v1/model}, {@code GET /v1/openapi.json} (this API, as OpenAPI 3.1)</li>
 *   <li>{@code POST /v1/samples} (JSON in; JSON of base64 PNGs out, or one PNG grid for {@code Accept: image/png})</li>
 *   <li>{@code GET /v1/samples/stream?count=..} (Server-Sent Events: progress, previews, result)</li>
 *   <li>{@code POST /v1/interpolations} (a strip between two seeds)</li>
 *   <li>{@code GET /metrics} (Prometheus text format)</li>
 *   <li>{@code GET /} the page (static files in the jar)</li>
 * </ul>
 * Errors are JSON {@code {"error": "..."}} with a status that says whose fault it was, never a stack trace.
 * With a token ({@link ServeAccess}), every route but /health and the page's static files needs
 * {@code Authorization: Bearer <token>}; the page asks for it.
 */
public final class SampleServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(SampleServer.class.getName());
    private static final String WEB = "/org/ddim4j/serve/web/";
    private static final Map<String, String> STATIC_FILES = Map.of(
            "/", "index.html", "/index.html", "index.html", "/app.js", "app.js", "/style.css", "style.css");
    /** The API's routes: /metrics labels requests by these (anything else is "page" or "other"). */
    static final Set<String> ROUTES = Set.of("/health", "/metrics", "/v1/model", "/v1/openapi.json",
            "/v1/samples", "/v1/samples/stream", "/v1/interpolations");
    private static final String OPENAPI = "/org/ddim4j/serve/openapi.json";
    /** A stream without events for this long gets a comment line, which also finds clients that went away. */
    private static final long KEEPALIVE_MILLIS = 1000;

    private final ServeSettings settings;
    private final ServeAccess access;
    private final ServeMetrics metrics;
    private final Batcher batcher;
    private final HttpServer http;
    private final ExecutorService exchanges = Executors.newVirtualThreadPerTaskExecutor();
    private final ObjectMapper json = new ObjectMapper();
    private final ObjectNode modelJson;
    private final byte[] openApi;
    private final ModelConfig modelConfig;
    private volatile boolean stopping;

    private SampleServer(Ddim ddim, ServeSettings settings, ServeAccess access, HttpServer http) throws IOException {
        this.settings = settings;
        this.access = access;
        this.http = http;
        // PNGs are encoded in memory, and ImageIO is loaded now: during a shutdown (SIGTERM), the answers to
        // the last requests must not need a cache file or a class that can no longer be set up.
        ImageIO.setUseCache(false);
        png(new java.awt.image.BufferedImage(1, 1, java.awt.image.BufferedImage.TYPE_BYTE_GRAY));
        this.modelConfig = ddim.config();
        this.modelJson = describeModel(ddim);
        try (InputStream in = SampleServer.class.getResourceAsStream(OPENAPI)) {
            this.openApi = Objects.requireNonNull(in, OPENAPI).readAllBytes();
        }
        this.metrics = new ServeMetrics(this::queuedRequests, this::runningRequests);
        this.batcher = new Batcher(ddim, settings, metrics);
        http.setExecutor(exchanges);
        http.createContext("/", exchange -> handle(exchange, this::route));
    }

    /** {@link #start(Ddim, ServeSettings, ServeAccess, String, int)} without a token or CORS. */
    public static SampleServer start(Ddim ddim, ServeSettings settings, String host, int port) throws IOException {
        return start(ddim, settings, ServeAccess.open(), host, port);
    }

    /**
     * Serves {@code ddim} (which stays the caller's: close it after the server) on {@code host}:{@code port}
     * (port 0: any free port, see {@link #port()}), to the clients {@code access} lets in.
     */
    public static SampleServer start(Ddim ddim, ServeSettings settings, ServeAccess access, String host, int port) throws IOException {
        HttpServer http = HttpServer.create(new InetSocketAddress(host, port), 0);
        SampleServer server = null;
        try {
            server = new SampleServer(ddim, settings, access, http);
            http.start();
            return server;
        } catch (IOException | RuntimeException | Error e) { // e.g. a closed Ddim: free the port, end the sampling thread
            http.stop(0);
            if (server != null) {
                server.batcher.close(Duration.ZERO);
                server.exchanges.close();
            }
            throw e;
        }
    }

    private int queuedRequests() {
        return batcher.stats().queued();
    }

    private int runningRequests() {
        return batcher.stats().running();
    }

    /** The batcher, for tests that need to hold the sampling thread. */
    Batcher batcher() {
        return batcher;
    }

    public int port() {
        return http.getAddress().getPort();
    }

    /** Whether only this machine can connect: the server listens on a loopback address. */
    public boolean isLoopbackOnly() {
        return http.getAddress().getAddress().isLoopbackAddress();
    }

    /** The page's address, e.g. http://127.0.0.1:8080/. */
    public URI uri() {
        String host = http.getAddress().getAddress().getHostAddress();
        return URI.create("http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port() + "/");
    }

    /**
     * Stops taking requests (503), lets the running call finish for the settings' grace period (then
     * cancels it), answers the waiting clients, and closes the listening socket.
     */
    @Override
    public void close() {
        stopping = true;
        batcher.close(settings.shutdownGrace());
        http.stop(1); // the clients whose jobs just ended get a second to receive their answers
        exchanges.close();
    }

    private interface Handler {
        void handle(HttpExchange exchange) throws IOException;
    }

    /**
     * Runs {@code handler} for a client that may use the server, turning every failure into a JSON error (the
     * client never sees a stack trace), and counts the answer in /metrics.
     */
    private void handle(HttpExchange exchange, Handler handler) {
        long start = System.nanoTime();
        String path = exchange.getRequestURI().getPath();
        String route = ROUTES.contains(path) ? path : STATIC_FILES.containsKey(path) ? "page" : "other";
        try (exchange) {
            try {
                if (corsPreflight(exchange)) {
                    return;
                }
                if (!route.equals("/health") && !route.equals("page") && !access.authorizes(exchange.getRequestHeaders().getFirst("Authorization"))) {
                    exchange.getResponseHeaders().set("WWW-Authenticate", "Bearer realm=\"ddim serve\"");
                    throw new HttpError(401, "unauthorized", "this server needs a token: send Authorization: Bearer <token>", 0);
                }
                handler.handle(exchange);
            } catch (HttpError e) {
                metrics.rejected(e.reason());
                sendError(exchange, e);
            } catch (IOException e) {
                LOG.log(System.Logger.Level.DEBUG, "client went away: " + e);
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "request " + route + " failed", e);
                sendError(exchange, new HttpError(500, "internal", "internal error (the server log has the details)", 0));
            }
        } finally {
            int status = exchange.getResponseCode();
            metrics.requestAnswered(route, status < 0 ? 499 : status, start); // 499: the client left before an answer
        }
    }

    /**
     * With CORS origins, answers a browser's preflight (OPTIONS with Access-Control-Request-Method) and says true;
     * also marks the other answers to an allowed origin. Preflights need no token: browsers send them without one.
     */
    private boolean corsPreflight(HttpExchange exchange) throws IOException {
        String allowed = access.allowedOrigin(exchange.getRequestHeaders().getFirst("Origin"));
        if (allowed == null) {
            return false;
        }
        exchange.getResponseHeaders().set("Access-Control-Allow-Origin", allowed);
        exchange.getResponseHeaders().add("Vary", "Origin");
        exchange.getResponseHeaders().set("Access-Control-Expose-Headers", "Retry-After");
        if (!exchange.getRequestMethod().equals("OPTIONS") || exchange.getRequestHeaders().getFirst("Access-Control-Request-Method") == null) {
            return false;
        }
        exchange.getResponseHeaders().set("Access-Control-Allow-Methods", "GET, POST");
        exchange.getResponseHeaders().set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept");
        exchange.getResponseHeaders().set("Access-Control-Max-Age", "600");
        exchange.sendResponseHeaders(204, -1);
        return true;
    }

    private void route(HttpExchange exchange) throws IOException {
        String path = exchange.getRequestURI().getPath();
        switch (path) {
            case "/health" -> {
                requireMethod(exchange, "GET");
                health(exchange);
            }
            case "/metrics" -> {
                requireMethod(exchange, "GET");
                metricsPage(exchange);
            }
            case "/v1/openapi.json" -> {
                requireMethod(exchange, "GET");
                exchange.getResponseHeaders().set("Content-Type", "application/json");
                exchange.sendResponseHeaders(200, openApi.length);
                exchange.getResponseBody().write(openApi);
            }
            case "/v1/model" -> {
                requireMethod(exchange, "GET");
                model(exchange);
            }
            case "/v1/samples" -> {
                requireMethod(exchange, "POST");
                samples(exchange);
            }
            case "/v1/samples/stream" -> {
                requireMethod(exchange, "GET");
                stream(exchange);
            }
            case "/v1/interpolations" -> {
                requireMethod(exchange, "POST");
                interpolations(exchange);
            }
            default -> {
                String file = STATIC_FILES.get(path);
                if (file == null) {
                    throw new HttpError(404, "not_found", "no such page or endpoint: " + path, 0);
                }
                requireMethod(exchange, "GET");
                staticFile(exchange, file);
            }
        }
    }

    private static void requireMethod(HttpExchange exchange, String method) {
        if (!exchange.getRequestMethod().equals(method)) {
            exchange.getResponseHeaders().set("Allow", method);
            throw new HttpError(405, "method_not_allowed", exchange.getRequestMethod() + " is not allowed here; use " + method, 0);
        }
    }

    // ---- endpoints ---------------------------------------------------------------------------

    private void health(HttpExchange exchange) throws IOException {
        Batcher.Stats stats = batcher.stats();
        boolean ok = !stopping && batcher.isRunning();
        ObjectNode body = json.createObjectNode().put("status", ok ? "ok" : "stopping")
                .put("queued", stats.queued()).put("running", stats.running()).put("calls", stats.calls()).put("cancelledCalls", stats.cancelledCalls())
                .put("requests", stats.requests())
                .put("images", stats.images());
        sendJson(exchange, ok ? 200 : 503, body);
    }

    private void metricsPage(HttpExchange exchange) throws IOException {
        var writer = metrics.writerFor(exchange.getRequestHeaders().getFirst("Accept"));
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        metrics.write(writer, body);
        exchange.getResponseHeaders().set("Content-Type", writer.getContentType());
        exchange.sendResponseHeaders(200, body.size());
        body.writeTo(exchange.getResponseBody());
    }

    private void model(HttpExchange exchange) throws IOException {
        sendJson(exchange, 200, modelJson);
    }

    /** What /v1/model says, read once: the model's own getters wait for a running sampling call. */
    private ObjectNode describeModel(Ddim ddim) {
        ModelConfig config = modelConfig;
        ObjectNode body = json.createObjectNode();
        ObjectNode configJson = body.putObject("config").put("channels", config.channels()).put("imageSize", config.imageSize())
                .put("blockDepth", config.blockDepth()).put("embeddingDim", config.embeddingDim())
                .put("target", config.target().name().toLowerCase(Locale.ROOT)).put("classes", config.classes());
        ArrayNode widths = configJson.putArray("widths");
        for (int width : config.widths()) {
            widths.add(width);
        }
        configJson.putObject("schedule").put("kind", config.schedule().kind().name().toLowerCase(Locale.ROOT))
                .put("minSignal", config.schedule().minSignal()).put("maxSignal", config.schedule().maxSignal());
        body.put("parameters", ddim.parameterCount()).put("ema", ddim.hasEma()).put("device", ddim.device().toString())
                .put("ddim4j", Ddim.version()).put("libtorch", Ddim.torchVersion());
        ArrayNode classNames = body.putArray("classNames"); // empty for an unconditional model; else one per class
        for (int i = 0; i < config.classes(); i++) {
            classNames.add(config.className(i));
        }
        ArrayNode samplers = body.putArray("samplers");
        for (Sampler sampler : Sampler.values()) {
            samplers.add(sampler.name());
        }
        body.putObject("limits").put("maxCount", settings.maxCount()).put("maxSteps", settings.maxSteps())
                .put("queueCapacity", settings.queueCapacity()).put("maxBatchImages", settings.maxBatchImages())
                .put("microBatch", settings.microBatch()).put("requestTimeoutSeconds", settings.requestTimeout().toSeconds())
                .put("maxBodyBytes", settings.maxBodyBytes());
        return body;
    }

    private void samples(HttpExchange exchange) throws IOException {
        SampleOptions options = SampleRequests.sampleOptions(SampleRequests.fromJson(readJson(exchange)), settings, modelConfig);
        SampleJob job = submit(new SampleJob(options, null));
        respondWithImages(exchange, job, await(job));
    }

    private void interpolations(HttpExchange exchange) throws IOException {
        Map<String, List<String>> fields = SampleRequests.fromJson(readJson(exchange));
        SampleRequests.requireKnown(fields, SampleRequests.INTERPOLATION_FIELDS);
        long from = SampleRequests.longField(fields, "from", 1, Long.MIN_VALUE, Long.MAX_VALUE);
        long to = SampleRequests.longField(fields, "to", 2, Long.MIN_VALUE, Long.MAX_VALUE);
        int frames = SampleRequests.intField(fields, "frames", Math.min(8, settings.maxCount()), 2, settings.maxCount());
        int steps = SampleRequests.steps(fields, settings);
        List<Integer> classes = SampleRequests.classes(fields, settings, modelConfig);
        double guidance = SampleRequests.guidance(fields, classes);
        Noise strip = Noise.slerpStrip(Noise.ofSeed(modelConfig, from, 0, 1), Noise.ofSeed(modelConfig, to, 0, 1), frames);
        SampleOptions options = SampleOptions.builder().noise(strip).steps(steps).sampler(Sampler.DDIM).classes(classes)
                .guidance(guidance).build();
        SampleJob.Result result = await(submit(new SampleJob(options, null)));
        ObjectNode body = json.createObjectNode().put("from", from).put("to", to).put("seconds", result.seconds());
        ArrayNode images = body.putArray("images");
        for (int i = 0; i < frames; i++) {
            images.addObject().put("frame", i).put("png", base64Png(result.images(), i));
        }
        sendJson(exchange, 200, body);
    }

    /** Server-Sent Events: "queued", then "progress" (and "preview" every few steps), then "result" or "error". */
    private void stream(HttpExchange exchange) throws IOException {
        SampleOptions options = SampleRequests.sampleOptions(SampleRequests.fromQuery(exchange.getRequestURI().getRawQuery()), settings, modelConfig);
        StreamEvents events = new StreamEvents();
        SampleJob job = submit(new SampleJob(options, events));
        exchange.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
        exchange.getResponseHeaders().set("Cache-Control", "no-cache");
        exchange.sendResponseHeaders(200, 0);
        OutputStream out = exchange.getResponseBody();
        long deadline = System.nanoTime() + settings.requestTimeout().toNanos();
        try {
            writeEvent(out, "queued", json.createObjectNode().put("count", options.count()).put("steps", options.steps()));
            while (true) {
                boolean done = job.result().isDone(); // then the last update is still sent, without waiting
                if (!done && System.nanoTime() > deadline) {
                    job.cancel();
                    HttpError timedOut = timedOut();
                    writeEvent(out, "error", errorJson(timedOut.status(), timedOut.getMessage()));
                    return;
                }
                StreamEvents.Update update = events.next(done ? 0 : KEEPALIVE_MILLIS);
                if (update == null && done) {
                    break;
                }
                if (update == null) {
                    out.write(": waiting\n\n".getBytes(StandardCharsets.UTF_8));
                    out.flush();
                    continue;
                }
                writeEvent(out, "progress", json.createObjectNode().put("stepsDone", update.stepsDone())
                        .put("totalSteps", update.totalSteps()).put("fraction", (double) update.stepsDone() / update.totalSteps()));
                if (update.preview() != null) {
                    ObjectNode preview = json.createObjectNode().put("stepsDone", update.stepsDone());
                    ArrayNode images = preview.putArray("images");
                    for (int i = 0; i < update.preview().count(); i++) {
                        long index = options.firstIndex() + update.firstImage() + i;
                        images.addObject().put("index", index).put("png", base64Png(update.preview(), i));
                    }
                    writeEvent(out, "preview", preview);
                }
            }
            SampleJob.Result result;
            try {
                result = await(job);
            } catch (HttpError e) {
                writeEvent(out, "error", errorJson(e.status(), e.getMessage()));
                return;
            }
            writeEvent(out, "result", imagesJson(job, result));
        } catch (IOException | RuntimeException e) {
            job.cancel(); // the client closed the stream (or it broke): its images are not wanted any more
            throw e;
        }
    }

    private void staticFile(HttpExchange exchange, String file) throws IOException {
        byte[] body;
        try (InputStream in = SampleServer.class.getResourceAsStream(WEB + file)) {
            if (in == null) {
                throw new HttpError(404, "not_found", "no such file: " + file, 0);
            }
            body = in.readAllBytes();
        }
        String type = file.endsWith(".html") ? "text/html; charset=utf-8"
                : file.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8";
        exchange.getResponseHeaders().set("Content-Type", type);
        exchange.getResponseHeaders().set("Cache-Control", "no-cache");
        exchange.getResponseHeaders().set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:");
        exchange.getResponseHeaders().set("X-Content-Type-Options", "nosniff");
        exchange.sendResponseHeaders(200, body.length);
        exchange.getResponseBody().write(body);
    }

    // ---- jobs ---------------------------------------------------------------------------------

    private SampleJob submit(SampleJob job) {
        if (stopping) {
            throw shuttingDown();
        }
        boolean queued;
        try {
            queued = batcher.submit(job);
        } catch (IllegalStateException e) {
            throw new HttpError(503, "shutting_down", e.getMessage(), 0);
        }
        if (!queued) {
            long retry = batcher.retryAfterSeconds();
            throw new HttpError(429, "queue_full", "the queue is full (" + settings.queueCapacity() + " requests); retry in " + retry + " s", retry);
        }
        return job;
    }

    /** The job's result within the request timeout; a timeout cancels the job. */
    private SampleJob.Result await(SampleJob job) {
        try {
            return job.result().get(settings.requestTimeout().toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            job.cancel();
            throw timedOut();
        } catch (InterruptedException e) {
            job.cancel();
            Thread.currentThread().interrupt();
            throw shuttingDown();
        } catch (CancellationException e) {
            throw new HttpError(503, "cancelled", "cancelled", 0);
        } catch (ExecutionException e) {
            throw switch (e.getCause()) {
                case CancellationException _ -> new HttpError(503, "shutting_down", "cancelled: the server is shutting down", 0);
                case IllegalStateException state -> new HttpError(503, "shutting_down", state.getMessage(), 0);
                case DdimException ddimError -> new HttpError(500, "sampling_failed", "sampling failed: " + ddimError.getMessage(), 0);
                default -> {
                    LOG.log(System.Logger.Level.ERROR, "sampling failed", e.getCause());
                    yield new HttpError(500, "internal", "internal error (the server log has the details)", 0);
                }
            };
        }
    }

    // ---- bodies -------------------------------------------------------------------------------

    private com.fasterxml.jackson.databind.JsonNode readJson(HttpExchange exchange) throws IOException {
        String length = exchange.getRequestHeaders().getFirst("Content-Length");
        if (length != null) {
            try {
                if (Long.parseLong(length.strip()) > settings.maxBodyBytes()) {
                    throw tooLarge();
                }
            } catch (NumberFormatException e) {
                throw HttpError.badRequest("bad Content-Length: " + length);
            }
        }
        byte[] body = exchange.getRequestBody().readNBytes(settings.maxBodyBytes() + 1);
        if (body.length > settings.maxBodyBytes()) {
            throw tooLarge();
        }
        if (body.length == 0) {
            return json.createObjectNode(); // every field has a default
        }
        try {
            return json.readTree(body);
        } catch (JsonProcessingException e) {
            throw HttpError.badRequest("the body is not valid JSON: " + e.getOriginalMessage());
        }
    }

    /** A request that waited and ran longer than the settings allow. */
    private HttpError timedOut() {
        return new HttpError(503, "timeout", "timed out after " + settings.requestTimeout().toSeconds() + " s (the server is busy)", 5);
    }

    private static HttpError shuttingDown() {
        return new HttpError(503, "shutting_down", "the server is shutting down", 0);
    }

    private HttpError tooLarge() {
        return new HttpError(413, "too_large", "the request body is larger than " + settings.maxBodyBytes() + " bytes", 0);
    }

    private void respondWithImages(HttpExchange exchange, SampleJob job, SampleJob.Result result) throws IOException {
        String accept = exchange.getRequestHeaders().getFirst("Accept");
        if (accept != null && accept.contains("image/png")) {
            int columns = (int) Math.ceil(Math.sqrt(result.images().count()));
            byte[] png = png(result.images().grid(columns));
            exchange.getResponseHeaders().set("Content-Type", "image/png");
            exchange.sendResponseHeaders(200, png.length);
            exchange.getResponseBody().write(png);
            return;
        }
        sendJson(exchange, 200, imagesJson(job, result));
    }

    /** Each image with its seed and index (and class, for a class model): what a client needs to get it again. */
    private ObjectNode imagesJson(SampleJob job, SampleJob.Result result) {
        SampleOptions options = job.options();
        List<Integer> classes = job.imageClasses();
        ObjectNode body = json.createObjectNode();
        ArrayNode images = body.putArray("images");
        for (int i = 0; i < result.images().count(); i++) {
            ObjectNode image = images.addObject().put("index", options.firstIndex() + i).put("seed", options.seed());
            if (!classes.isEmpty()) {
                image.put("class", classes.get(i)).put("className", modelConfig.className(classes.get(i)));
            }
            image.put("png", base64Png(result.images(), i));
        }
        if (!classes.isEmpty()) {
            body.put("guidance", options.guidance());
        }
        body.put("seconds", result.seconds());
        body.putObject("batch").put("requests", result.batchRequests()).put("images", result.batchImages());
        return body;
    }

    private ObjectNode errorJson(int status, String message) {
        return json.createObjectNode().put("error", message).put("status", status);
    }

    private void sendError(HttpExchange exchange, HttpError error) {
        try {
            if (error.retryAfterSeconds() > 0) {
                exchange.getResponseHeaders().set("Retry-After", Long.toString(error.retryAfterSeconds()));
            }
            sendJson(exchange, error.status(), errorJson(error.status(), error.getMessage()));
        } catch (IOException | IllegalStateException e) { // headers already sent, or the client is gone
            LOG.log(System.Logger.Level.DEBUG, "cannot send the error: " + e);
        }
    }

    private void sendJson(HttpExchange exchange, int status, ObjectNode body) throws IOException {
        byte[] bytes = json.writeValueAsBytes(body);
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, bytes.length);
        exchange.getResponseBody().write(bytes);
    }

    private void writeEvent(OutputStream out, String event, ObjectNode data) throws IOException {
        out.write(("event: " + event + "\ndata: " + json.writeValueAsString(data) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static String base64Png(ImageBatch images, int i) {
        return Base64.getEncoder().encodeToString(png(images.image(i)));
    }

    private static byte[] png(java.awt.image.BufferedImage image) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try {
            ImageIO.write(image, "png", bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }
}
