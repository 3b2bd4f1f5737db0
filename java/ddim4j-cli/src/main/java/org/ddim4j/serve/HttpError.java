package org.ddim4j.serve;

/**
 * A request the server refuses, with the HTTP status, the one-line message the client gets, and the
 * reason /metrics counts it under (a short fixed word, never the message: labels must stay few).
 */
final class HttpError extends RuntimeException {
    private final int status;
    private final String reason;
    private final long retryAfterSeconds;

    HttpError(int status, String reason, String message, long retryAfterSeconds) {
        super(message, null, false, false);
        this.status = status;
        this.reason = reason;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    static HttpError badRequest(String message) {
        return new HttpError(400, "bad_request", message, 0);
    }

    int status() {
        return status;
    }

    /** Why the request was refused: bad_request, unauthorized, not_found, queue_full, timeout, shutting_down, ... */
    String reason() {
        return reason;
    }

    /** Seconds for a Retry-After header, or 0 for none. */
    long retryAfterSeconds() {
        return retryAfterSeconds;
    }
}
