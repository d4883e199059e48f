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

/* Keys per attention step of the tile kernels (step_bf16 below). */
#define MOBA_CPU_STEP_KEYS 512

/* One online-softmax step of up to 16 query rows against n keys of one
 * block (bf16 storage): scores, weights, and the accumulators' update. */
typedef struct moba_cpu_step {
    int m, n, d;              /* rows 1..16, keys 1..MOBA_CPU_STEP_KEYS,
                               * head dim (a multiple of 32) */
    const uint16_t *const *q; /* m query rows */
    const uint16_t *k;        /* key u at k + u*ldk */
    size_t ldk;
    const uint16_t *vp;       /* the n values, as pack_v_bf16 left them */
    const int32_t *lim;       /* per row, keys visible (1..n); NULL: all */
    float scale;
    float *const *acc;        /* m accumulator rows of d floats */
    float *mx, *l;            /* m running maxima / sums, updated */
    void *work;               /* step_work_bf16(d) bytes, 64-aligned */
} moba_cpu_step;

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
    /* Optional (NULL if absent), all three or none: tile attention on bf16
     * storage.  pack_v_bf16 lays out n value rows (pitch ldv) for
     * step_bf16 in (n rounded up to 32) * d elements. */
    void (*pack_v_bf16)(uint16_t *dst, const uint16_t *v, size_t ldv, int n, int d);
    void (*step_bf16)(const moba_cpu_step *st);
    size_t (*step_work_bf16)(int d);
} moba_cpu_kernels;

void moba_cpu_qk_bf16_avx512bf16(int m, int n, int d, const uint16_t *const *a,
                                 const uint16_t *b, size_t ldb, float *s, int lds);

void moba_cpu_pack_v_bf16_amx(uint16_t *dst, const uint16_t *v, size_t ldv,
                              int n, int d);
void moba_cpu_step_bf16_amx(const moba_cpu_step *st);
size_t moba_cpu_step_work_bf16_amx(int d);

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
