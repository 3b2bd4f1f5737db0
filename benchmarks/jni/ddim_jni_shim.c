/* A JNI shim over libddim, built only for the FFM-versus-JNI benchmarks (CallOverheadBenchmark,
 * TransferBenchmark): the same ddim functions the FFM benchmarks call, reached through JNI. */
#include <jni.h>
#include <stdint.h>
#include <stdlib.h>

#include "ddim.h"

JNIEXPORT jlong JNICALL Java_org_ddim4j_benchmarks_JniShim_statusName(JNIEnv* env, jclass type, jint status) {
    return (jlong)(intptr_t)ddim_status_name(status);
}

/* Copies the array out (as an FFM call with a heap array copied into native memory does). */
JNIEXPORT jint JNICALL Java_org_ddim4j_benchmarks_JniShim_checkPixelsCopy(JNIEnv* env, jclass type, jfloatArray pixels) {
    jsize count = (*env)->GetArrayLength(env, pixels);
    float* buffer = malloc((size_t)count * sizeof(float));
    if (buffer == NULL) return DDIM_ERR_OUT_OF_MEMORY;
    (*env)->GetFloatArrayRegion(env, pixels, 0, count, buffer);
    jint status = ddim_check_pixels(buffer, count);
    free(buffer);
    return status;
}

/* Pins the array and passes its address (as an FFM critical call with a heap segment does). */
JNIEXPORT jint JNICALL Java_org_ddim4j_benchmarks_JniShim_checkPixelsCritical(JNIEnv* env, jclass type, jfloatArray pixels) {
    jsize count = (*env)->GetArrayLength(env, pixels);
    float* pinned = (*env)->GetPrimitiveArrayCritical(env, pixels, NULL);
    if (pinned == NULL) return DDIM_ERR_OUT_OF_MEMORY;
    jint status = ddim_check_pixels(pinned, count);
    (*env)->ReleasePrimitiveArrayCritical(env, pixels, pinned, JNI_ABORT);
    return status;
}
