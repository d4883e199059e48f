/* Portable kernels: plain C written so that compilers vectorise it
 * (independent partial sums instead of one serial chain). */
#include "../../core/dtype.h"
#include "cpu_kernels.h"

static float dot_generic(const float *a, const float *b, int n)
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

const moba_cpu_kernels moba_cpu_kernels_generic = {
    "generic", dot_generic, axpy_generic, scale_generic, to_f32_generic,
};
