package org.ddim4j.serve;

import java.io.IOException;

import org.ddim4j.Ddim;
import org.ddim4j.TestModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;

/**
 * One model per test class (a trained tiny one unless {@link #openModel()} says otherwise), and at most one server
 * per test on a random localhost port, closed after it.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class ServerTestBase {
    protected Ddim ddim;
    protected SampleServer server;

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
}
