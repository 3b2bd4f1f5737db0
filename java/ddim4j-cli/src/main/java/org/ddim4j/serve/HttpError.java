package org.ddim4j.serve;

/** A request the server refuses, with the HTTP status and the one-line message the client gets. */
final class HttpError extends RuntimeException {
    private final int status;
    private final long retryAfterSeconds;

    HttpError(int status, String message, long retryAfterSeconds) {
        super(message, null, false, false);
        this.status = status;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    static HttpError badRequest(String message) {
        return new HttpError(400, message, 0);
    }

    int status() {
        return status;
    }

    /** Seconds for a Retry-After header, or 0 for none. */
    long retryAfterSeconds() {
        return retryAfterSeconds;
    }
}
