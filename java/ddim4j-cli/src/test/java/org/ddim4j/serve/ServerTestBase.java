package org.ddim4j.serve;

import java.io.IOException;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.BooleanSupplier;

import org.ddim4j.Ddim;
import org.ddim4j.TestModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;

/**
 * One model per test class (a trained tiny one unless {@link #openModel()} says otherwise), and at most one server
 * per test on a random localhost port, closed after it; the sampling thread held for as long as a test needs.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class ServerTestBase {
    protected Ddim ddim;
    protected SampleServer server;
    /** Every gate a test held, opened after it, so that a failed assertion never leaves the shared model blocked. */
    private final List<Gate> gates = new ArrayList<>();

    protected Ddim openModel() {
        return TestModels.trainedTiny(7);
    }

    @BeforeAll
    void open() {
        ddim = openModel();
    }

    @AfterAll
    void closeModel() {
        ddim.close();
    }

    @AfterEach
    void stopServer() {
        gates.forEach(Gate::open);
        gates.clear();
        if (server != null) {
            server.close();
            server = null;
        }
    }

    /** Starts the server (closed after the test) and returns a client of it without a token. */
    protected ServeClient start(ServeSettings settings, ServeAccess access) throws IOException {
        server = SampleServer.start(ddim, settings, access, "127.0.0.1", 0);
        return new ServeClient(server);
    }

    /** Holds the server's sampling thread until the gate opens (at the latest after the test). */
    protected Gate hold() throws InterruptedException {
        Gate gate = Gate.hold(server.batcher());
        gates.add(gate);
        return gate;
    }

    /** Waits until {@code requests} requests are queued. */
    protected void awaitQueued(int requests) throws InterruptedException {
        await(() -> server.batcher().stats().queued() == requests, requests + " requests are queued");
    }

    /** Posts {@code bodies} to /v1/samples while the sampling thread is held, so that all of them queue, then lets it go. */
    protected List<CompletableFuture<HttpResponse<String>>> queueTogether(ServeClient client, List<String> bodies)
            throws InterruptedException {
        Gate gate = hold();
        List<CompletableFuture<HttpResponse<String>>> queued = new ArrayList<>();
        for (String body : bodies) {
            queued.add(client.postAsync("/v1/samples", body));
        }
        awaitQueued(bodies.size());
        gate.open();
        return queued;
    }

    protected static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(10);
        }
    }
}
