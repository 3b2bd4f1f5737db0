package org.ddim4j;

/** A native call failed. Carries the {@link Status} and the native library's message. */
public class DdimException extends RuntimeException {
    private final Status status;
    private final String nativeMessage;

    public DdimException(Status status, String nativeMessage) {
        this(status, nativeMessage, null);
    }

    DdimException(Status status, String nativeMessage, Throwable cause) {
        super(status + ": " + nativeMessage, cause);
        this.status = status;
        this.nativeMessage = nativeMessage;
    }

    public Status status() {
        return status;
    }

    /** The message the native library gave, without the status prefix. */
    public String nativeMessage() {
        return nativeMessage;
    }
}
