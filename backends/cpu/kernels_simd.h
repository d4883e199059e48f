/*
 * The vector kernels of cpu_kernels.h, written once against a small vector
 * vocabulary that each ISA file (kernels_avx2.c, kernels_avx512.c,
 * kernels_neon.c) defines before including this file:
 *   V, VL                      vector type, f32 lanes
 *   vzero() vset1(x) vload(p) vstore(p,x) vbcast(p)
 *   vfma(a,b,c) = a*b + c (fused)   vmul vadd vmax   vhmax(x) vhsum(x)
 *   vreduce4(a,b,c,d,out)      out[0..3] = horizontal sums of a..d
 *   vexp(x)                    e^x, f32, a few ulp; 0 below ~-87.3
 *   vload_f16(p) vload_bf16(p) VL 16-bit values to f32
 *   QK_MR, QK_NR               score tile: query rows x keys
 *   PV_MR, PV_NV               value tile: rows x PV_NV vectors of columns
 *   KERNEL_NAME                "avx2", ...
 * Tiles are register blocks whose size is a compile-time constant in each
 * instantiation, so every accumulator lives in a register; the edge tiles
 * use the same per-element operation order as the full ones.
 */
#include <math.h>
#include <stdint.h>

#include "../../core/dtype.h"
#include "cpu_kernels.h"

#define INLINE static inline __attribute__((always_inline))

static void k_axpy(float *y, float a, const float *x, int n)
{
    V va = vset1(a);
    int i = 0;
    for (; i + VL <= n; i += VL) vstore(y + i, vfma(va, vload(x + i), vload(y + i)));
    for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

static void k_scale(float *y, float a, int n)
{
    V va = vset1(a);
    int i = 0;
    for (; i + VL <= n; i += VL) vstore(y + i, vmul(va, vload(y + i)));
    for (; i < n; i++) y[i] *= a;
}

static void k_to_f32(float *dst, const void *src, moba_dtype dt, int n)
{
    const uint16_t *h = src;
    int i = 0;
    switch (dt) {
    case MOBA_F16:
        for (; i + VL <= n; i += VL) vstore(dst + i, vload_f16(h + i));
        for (; i < n; i++) dst[i] = moba_f16_to_f32(h[i]);
        break;
    case MOBA_BF16:
        for (; i + VL <= n; i += VL) vstore(dst + i, vload_bf16(h + i));
        for (; i < n; i++) dst[i] = moba_bf16_to_f32(h[i]);
        break;
    default: {
        const float *f = src;
        for (; i + VL <= n; i += VL) vstore(dst + i, vload(f + i));
        for (; i < n; i++) dst[i] = f[i];
    }
    }
}

/* MR x NR scores; each accumulates x in VL lanes, then one fixed
 * horizontal reduction, then the scalar tail of d. */
INLINE void qk_tile(const int mr, const int nr, const int tail, int d,
                    const float *const *a, const float *b, size_t ldb,
                    float *s, int lds)
{
    V acc[QK_MR][QK_NR];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) acc[i][j] = vzero();
    int x = 0;
    for (; x + VL <= d; x += VL) {
        V kv[QK_NR];
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) kv[j] = vload(b + j * ldb + x);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            V qv = vload(a[i] + x);
#pragma GCC unroll 8
            for (int j = 0; j < nr; j++) acc[i][j] = vfma(qv, kv[j], acc[i][j]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        float r[4 * ((QK_NR + 3) / 4)];
#pragma GCC unroll 8
        for (int j = 0; j < nr; j += 4)
            vreduce4(acc[i][j], j + 1 < nr ? acc[i][j + 1] : vzero(),
                     j + 2 < nr ? acc[i][j + 2] : vzero(),
                     j + 3 < nr ? acc[i][j + 3] : vzero(), r + j);
        for (int j = 0; j < nr; j++) {
            float t = r[j];
            if (tail)
                for (int y = x; y < d; y++) t = fmaf(a[i][y], b[j * ldb + y], t);
            s[i * lds + j] = t;
        }
    }
}

#define QK_ROWS(nr)                                                          \
    if (d % VL) {                                                            \
        switch (mr) {                                                        \
        case 1: qk_tile(1, nr, 1, d, a + i, bj, ldb, si, lds); break;        \
        case 2: qk_tile(2, nr, 1, d, a + i, bj, ldb, si, lds); break;        \
        case 3: qk_tile(3, nr, 1, d, a + i, bj, ldb, si, lds); break;        \
        default: qk_tile(QK_MR, nr, 1, d, a + i, bj, ldb, si, lds); break;   \
        }                                                                    \
    } else {                                                                 \
        switch (mr) {                                                        \
        case 1: qk_tile(1, nr, 0, d, a + i, bj, ldb, si, lds); break;        \
        case 2: qk_tile(2, nr, 0, d, a + i, bj, ldb, si, lds); break;        \
        case 3: qk_tile(3, nr, 0, d, a + i, bj, ldb, si, lds); break;        \
        default: qk_tile(QK_MR, nr, 0, d, a + i, bj, ldb, si, lds); break;   \
        }                                                                    \
    }

static void k_qk(int m, int n, int d, const float *const *a, const float *b,
                 size_t ldb, float *s, int lds)
{
    /* Keys outer: a key tile (QK_NR rows of d floats) stays in L1 while
     * every query row passes over it. */
    for (int j = 0; j < n; j += QK_NR) {
        const float *bj = b + (size_t)j * ldb;
        int nr = n - j < QK_NR ? n - j : QK_NR;
        for (int i = 0; i < m; i += QK_MR) {
            int mr = m - i < QK_MR ? m - i : QK_MR;
            float *si = s + (size_t)i * lds + j;
            if (nr == QK_NR) {
                QK_ROWS(QK_NR)
            } else if (nr == 3) {
                QK_ROWS(3)
            } else if (nr == 2) {
                QK_ROWS(2)
            } else {
                QK_ROWS(1)
            }
        }
    }
}

/* mr rows x nv vectors of columns starting at column c. */
INLINE void pv_tile(const int mr, const int nv, int n, const float *p, int ldp,
                    const float *v, size_t ldv, float *const *acc, int c)
{
    V o[PV_MR][PV_NV];
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int t = 0; t < nv; t++) o[i][t] = vload(acc[i] + c + t * VL);
    for (int u = 0; u < n; u++) {
        V vv[PV_NV];
#pragma GCC unroll 4
        for (int t = 0; t < nv; t++) vv[t] = vload(v + (size_t)u * ldv + c + t * VL);
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            V pb = vbcast(p + (size_t)i * ldp + u);
#pragma GCC unroll 4
            for (int t = 0; t < nv; t++) o[i][t] = vfma(pb, vv[t], o[i][t]);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int t = 0; t < nv; t++) vstore(acc[i] + c + t * VL, o[i][t]);
}

#define PV_ROWS(nv)                                                          \
    switch (mr) {                                                            \
    case 1: pv_tile(1, nv, n, pi, ldp, v, ldv, acc + i, c); break;           \
    case 2: pv_tile(2, nv, n, pi, ldp, v, ldv, acc + i, c); break;           \
    case 3: pv_tile(3, nv, n, pi, ldp, v, ldv, acc + i, c); break;           \
    case 4: pv_tile(4, nv, n, pi, ldp, v, ldv, acc + i, c); break;           \
    case 5: pv_tile(5, nv, n, pi, ldp, v, ldv, acc + i, c); break;           \
    PV_MORE_ROWS(nv)                                                         \
    default: pv_tile(PV_MR, nv, n, pi, ldp, v, ldv, acc + i, c); break;      \
    }

static void k_pv(int m, int n, int d, const float *p, int ldp, const float *v,
                 size_t ldv, float *const *acc)
{
    const int w = PV_NV * VL;
    int c = 0;
    /* Column panels outer: the panel of v (n x w floats) stays in L1
     * while every row passes over it. */
    for (; c + w <= d; c += w)
        for (int i = 0; i < m; i += PV_MR) {
            int mr = m - i < PV_MR ? m - i : PV_MR;
            const float *pi = p + (size_t)i * ldp;
            PV_ROWS(PV_NV)
        }
    for (; c + VL <= d; c += VL)
        for (int i = 0; i < m; i += PV_MR) {
            int mr = m - i < PV_MR ? m - i : PV_MR;
            const float *pi = p + (size_t)i * ldp;
            PV_ROWS(1)
        }
    for (; c < d; c++) /* odd head dims only */
        for (int i = 0; i < m; i++) {
            float t = acc[i][c];
            for (int u = 0; u < n; u++)
                t = fmaf(p[(size_t)i * ldp + u], v[(size_t)u * ldv + c], t);
            acc[i][c] = t;
        }
}

static float k_scale_max(float *s, int n, float scale)
{
    V vs = vset1(scale), mx = vset1(-INFINITY);
    int u = 0;
    for (; u + VL <= n; u += VL) {
        V x = vmul(vload(s + u), vs);
        vstore(s + u, x);
        mx = vmax(mx, x);
    }
    float r = vhmax(mx);
    for (; u < n; u++) {
        s[u] *= scale;
        r = s[u] > r || isnan(s[u]) ? s[u] : r;
    }
    return r;
}

static float k_exp_sum(float *s, int n, float mx)
{
    V vm = vset1(mx), sum = vzero();
    int u = 0;
    for (; u + VL <= n; u += VL) {
        V e = vexp(vsub(vload(s + u), vm));
        vstore(s + u, e);
        sum = vadd(sum, e);
    }
    float r = vhsum(sum);
    for (; u < n; u++) {
        s[u] = expf(s[u] - mx);
        r += s[u];
    }
    return r;
}

const moba_cpu_kernels KERNEL_TABLE = {
    KERNEL_NAME, k_axpy, k_scale, k_to_f32, k_qk, k_pv, k_scale_max, k_exp_sum,
    NULL, NULL, NULL, NULL,
};
