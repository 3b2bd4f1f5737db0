package org.ddim4j;

import org.ddim4j.ffi.ddim_h;

/** Status-code checking for calls into the generated bindings. */
final class Native {
    private Native() {}

    /**
     * Throws {@link DdimException} unless {@code status} is DDIM_OK. Call it right after the native
     * call, on the same thread: the message is kept per native thread.
     */
    static void check(int status) {
        if (status != ddim_h.DDIM_OK()) {
            throw new DdimException(Status.of(status), ddim_h.ddim_last_error().getString(0));
        }
    }
}
