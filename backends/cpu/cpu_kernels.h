/*
 * The CPU backend's inner loops, as a table filled once per process for the
 * best instruction set the CPU (and OS) supports (dispatch.c).  Every
 * variant computes the same function; they differ only in rounding order,
 * which the conformance tolerances cover.  Within one variant each output
 * element is computed by the same sequence of operations whatever the row
 * grouping, so results do not depend on tiling or thread count.
 */
#ifndef MOBA_CPU_KERNELS_H
#define MOBA_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "moba/moba.h"

typedef struct moba_cpu_kernels {
    const char *name;
    /* y[i] += a * x[i] */
    void (*axpy)(float *y, float a, const float *x, int n);
    /* y[i] *= a */
    void (*scale)(float *y, float a, int n);
    /* dst[i] = (float)src[i] for n elements of storage dtype dt */
    void (*to_f32)(float *dst, const void *src, moba_dtype dt, int n);
    /* Scores, dot-product form (K and centroids stay row-major):
     * s[i*lds + j] = sum_{x<d} a[i][x] * b[j*ldb + x], i < m, j < n. */
    void (*qk)(int m, int n, int d, const float *const *a, const float *b,
               size_t ldb, float *s, int lds);
    /* Weighted values: acc[i][c] += sum_{u<n} p[i*ldp + u] * v[u*ldv + c],
     * i < m, c < d. */
    void (*pv)(int m, int n, int d, const float *p, int ldp, const float *v,
               size_t ldv, float *const *acc);
    /* s[u] *= scale for u < n; returns the max (NaN-propagating). */
    float (*scale_max)(float *s, int n, float scale);
    /* s[u] = exp(s[u] - mx) for u < n; returns their sum. */
    float (*exp_sum)(float *s, int n, float mx);
    /* Optional (NULL if absent): qk on bf16 storage, f32 results. */
    void (*qk_bf16)(int m, int n, int d, const uint16_t *const *a,
                    const uint16_t *b, size_t ldb, float *s, int lds);
} moba_cpu_kernels;

void moba_cpu_qk_bf16_avx512bf16(int m, int n, int d, const uint16_t *const *a,
                                 const uint16_t *b, size_t ldb, float *s, int lds);

/* The variants compiled in; NULL entries were not built for this target. */
extern const moba_cpu_kernels moba_cpu_kernels_generic;
extern const moba_cpu_kernels moba_cpu_kernels_avx2;
extern const moba_cpu_kernels moba_cpu_kernels_avx512;
extern const moba_cpu_kernels moba_cpu_kernels_neon;

/* The variant chosen for this process: the best the CPU and OS support, or
 * the one MOBA_CPU_ISA names.  NULL (and *why set) if MOBA_CPU_ISA names a
 * variant this build or CPU lacks: no silent fallback. */
const moba_cpu_kernels *moba_cpu_kernels_get(const char **why);

#endif
