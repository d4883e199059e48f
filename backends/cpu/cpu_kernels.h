/*
 * The CPU backend's inner loops, as a table filled once per process for the
 * best instruction set the CPU (and OS) supports.  Every variant computes
 * the same function; they differ only in how (and so in rounding order, which
 * the conformance tolerances cover).
 */
#ifndef MOBA_CPU_KERNELS_H
#define MOBA_CPU_KERNELS_H

#include <stddef.h>

#include "moba/moba.h"

typedef struct moba_cpu_kernels {
    const char *name;
    /* sum_i a[i] * b[i] */
    float (*dot)(const float *a, const float *b, int n);
    /* y[i] += a * x[i] */
    void (*axpy)(float *y, float a, const float *x, int n);
    /* y[i] *= a */
    void (*scale)(float *y, float a, int n);
    /* dst[i] = (float)src[i] for n elements of storage dtype dt */
    void (*to_f32)(float *dst, const void *src, moba_dtype dt, int n);
} moba_cpu_kernels;

/* The portable variant, always present. */
extern const moba_cpu_kernels moba_cpu_kernels_generic;

/* The variant chosen for this process (MOBA_CPU_ISA overrides). */
const moba_cpu_kernels *moba_cpu_kernels_get(void);

#endif
