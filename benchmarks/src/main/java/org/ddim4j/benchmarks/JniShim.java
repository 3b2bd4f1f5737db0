package org.ddim4j.benchmarks;

import java.nio.file.Files;
import java.nio.file.Path;

/** The JNI side of the FFM-versus-JNI benchmarks: benchmarks/jni/ddim_jni_shim.c, built by CMake when it finds JNI. */
final class JniShim {
    private JniShim() {}

    /** Loads build/libddim_jni_shim.so (or -Dddim4j.jniShim=PATH); libddim must be loaded first. */
    static void load() {
        Path shim = Path.of(System.getProperty("ddim4j.jniShim", "build/libddim_jni_shim.so")).toAbsolutePath();
        if (!Files.isRegularFile(shim)) {
            throw new IllegalStateException("the JNI shim " + shim + " is missing: build it (cmake finds JNI with JAVA_HOME set; "
                    + "scripts/bench.sh does) or pass -Dddim4j.jniShim=PATH");
        }
        System.load(shim.toString());
    }

    static native long statusName(int status);

    static native int checkPixelsCopy(float[] pixels);

    static native int checkPixelsCritical(float[] pixels);
}
