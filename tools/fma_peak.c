/*
 * fma_peak [THREADS]: the machine's f32 FMA peak, measured.  Each thread
 * runs independent chains of 8-wide (AVX2) or 4-wide (portable) fused
 * multiply-adds, enough chains to cover FMA latency x ports, and prints
 * GFLOP/s (2 FLOP per lane per FMA).  Built with the best -m flags the
 * compiler offers for this host only; it is a measuring tool, not part of
 * the library.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <immintrin.h>

#define CHAINS 12
#define ITERS 100000000L

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *run(void *arg)
{
    float *out = arg;
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(1.0f), b = _mm256_set1_ps(0.999999f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
    for (long i = 0; i < ITERS / 8; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], b, a);
    float lanes[8], s = 0;
    for (int c = 0; c < CHAINS; c++) {
        _mm256_storeu_ps(lanes, acc[c]);
        for (int l = 0; l < 8; l++) s += lanes[l];
    }
    *out = s;
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    if (n < 1 || n > 1024) return 2;
    pthread_t *th = malloc(sizeof *th * (size_t)n);
    float *sink = malloc(sizeof *sink * (size_t)n);
    double t0 = now();
    for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, run, &sink[i]);
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    double t = now() - t0;
    double flop = (double)n * (ITERS / 8) * CHAINS * 8 * 2;
    printf("fma_peak: %d threads, %.1f GFLOP/s f32 (8-wide FMA, %d chains)"
           " [sink %g]\n", n, flop / t * 1e-9, CHAINS, (double)sink[0]);
    free(th);
    free(sink);
    return 0;
}
