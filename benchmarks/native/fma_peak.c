/* This machine's float32 peak as code can reach it: every core running independent AVX2 FMAs
 * (8 lanes, 2 FLOPs each) with no memory traffic, for about a second. The GFLOP/s of the
 * benchmarks are reported against it, since a VM's clock (and so its nominal peak) is unknown.
 * Prints one JSON line. AVX2 + FMA only: on AVX-512 machines the real peak is up to twice this. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>

int main(void) {
    const long iterations = 1000000000;
    const int threads = omp_get_max_threads();
    float sink = 0;
    const double start = omp_get_wtime();
#pragma omp parallel reduction(+ : sink)
    {
        /* 10 independent accumulators cover the FMA latency (4-5 cycles) of 2 pipes. */
        __m256 acc[10];
        const __m256 scale = _mm256_set1_ps(0.9999999f), offset = _mm256_set1_ps(1e-7f);
        for (int i = 0; i < 10; i++) acc[i] = _mm256_set1_ps((float)i);
        for (long it = 0; it < iterations; it++) {
#pragma GCC unroll 10  /* keeps the accumulators in registers */
            for (int i = 0; i < 10; i++) acc[i] = _mm256_fmadd_ps(acc[i], scale, offset);
        }
        for (int i = 0; i < 10; i++) sink += acc[i][0];
    }
    const double seconds = omp_get_wtime() - start;
    const double flops = (double)iterations * 10 * 8 * 2 * threads;
    printf("{\"tool\": \"fma_peak\", \"threads\": %d, \"gflops\": %.1f, \"seconds\": %.3f, \"sink\": %g}\n", threads,
           flops / seconds / 1e9, seconds, sink);
    return 0;
}
