package org.ddim4j;

import org.ddim4j.ffi.ddim_h;

/** Why a native call failed; mirrors {@code ddim_status} in include/ddim.h. */
public enum Status {
    OK(ddim_h.DDIM_OK()),
    INVALID_ARGUMENT(ddim_h.DDIM_ERR_INVALID_ARGUMENT()),
    NULL_POINTER(ddim_h.DDIM_ERR_NULL_POINTER()),
    BUFFER_SIZE(ddim_h.DDIM_ERR_BUFFER_SIZE()),
    IO(ddim_h.DDIM_ERR_IO()),
    FORMAT(ddim_h.DDIM_ERR_FORMAT()),
    DEVICE(ddim_h.DDIM_ERR_DEVICE()),
    OUT_OF_MEMORY(ddim_h.DDIM_ERR_OUT_OF_MEMORY()),
    INTERNAL(ddim_h.DDIM_ERR_INTERNAL()),
    /** A progress listener cancelled the call (the Java API throws {@link java.util.concurrent.CancellationException} instead). */
    CANCELLED(ddim_h.DDIM_ERR_CANCELLED()),
    /** The computation produced NaN or infinite values (extreme weights or input, or a diverged training step). */
    NON_FINITE(ddim_h.DDIM_ERR_NON_FINITE()),
    /** A callback called back into the model whose call is running (the Java API throws {@link IllegalStateException} first). */
    REENTRANT(ddim_h.DDIM_ERR_REENTRANT()),
    /** Distributed training: the group did not form in time, or a rank was lost (the message names it). */
    DISTRIBUTED(ddim_h.DDIM_ERR_DISTRIBUTED()),
    /** libddim or libtorch could not be loaded (never returned by native code). */
    LIBRARY_NOT_LOADED(-1),
    /** A status code this version of the Java API does not know. */
    UNKNOWN(-2);

    private final int code;

    Status(int code) {
        this.code = code;
    }

    /** The native {@code ddim_status} value. */
    public int code() {
        return code;
    }

    static Status of(int code) {
        for (Status status : values()) {
            if (status.code == code && code >= 0) {
                return status;
            }
        }
        return UNKNOWN;
    }
}
