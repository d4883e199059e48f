/* Portable kernels: plain C, the reference point for the SIMD variants and
 * the path for CPUs that have none of them (MOBA_CPU_ISA=generic). */
#include <math.h>

#include "../../core/dtype.h"
#include "cpu_kernels.h"

static float dot(const float *a, const float *b, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
              ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_generic(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static void scale_generic(float *y, float a, int n)
{
    for (int i = 0; i < n; i++) y[i] *= a;
}

static void to_f32_generic(float *dst, const void *src, moba_dtype dt, int n)
{
    moba_to_f32(dst, src, dt, 0, (size_t)n);
}

static void qk_generic(int m, int n, int d, const float *const *a,
                       const float *b, size_t ldb, float *s, int lds)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            s[(size_t)i * lds + j] = dot(a[i], b + (size_t)j * ldb, d);
}

static void pv_generic(int m, int n, int d, const float *p, int ldp,
                       const float *v, size_t ldv, float *const *acc)
{
    for (int i = 0; i < m; i++)
        for (int u = 0; u < n; u++)
            axpy_generic(acc[i], p[(size_t)i * ldp + u], v + (size_t)u * ldv, d);
}

static float scale_max_generic(float *s, int n, float scale)
{
    float r = -INFINITY;
    for (int u = 0; u < n; u++) {
        s[u] *= scale;
        r = s[u] > r || isnan(s[u]) ? s[u] : r;
    }
    return r;
}

static float exp_sum_generic(float *s, int n, float mx)
{
    float r = 0.0f;
    for (int u = 0; u < n; u++) {
        s[u] = expf(s[u] - mx);
        r += s[u];
    }
    return r;
}

const moba_cpu_kernels moba_cpu_kernels_generic = {
    "generic",   axpy_generic,      scale_generic,  to_f32_generic,
    qk_generic,  pv_generic,        scale_max_generic, exp_sum_generic, NULL,
    NULL,        NULL,              NULL,
};
