package org.ddim4j;

import org.ddim4j.ffi.ddim_h;

/** Status-code checking for calls into the generated bindings. */
final class Native {
    private Native() {}

    /**
     * Throws unless {@code status} is DDIM_OK: {@link IllegalArgumentException} for DDIM_ERR_INVALID_ARGUMENT (a
     * caller's mistake is one exception wherever it is found, in Java or at the C boundary), else
     * {@link DdimException}. Call it right after the native call, on the same thread: the message is kept per
     * native thread.
     */
    static void check(int status) {
        if (status == ddim_h.DDIM_ERR_INVALID_ARGUMENT()) {
            throw new IllegalArgumentException(ddim_h.ddim_last_error().getString(0));
        }
        if (status != ddim_h.DDIM_OK()) {
            throw new DdimException(Status.of(status), ddim_h.ddim_last_error().getString(0));
        }
    }
}
