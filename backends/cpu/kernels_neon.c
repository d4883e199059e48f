/* NEON kernels (AArch64, where Advanced SIMD and fp16 conversion are part
 * of the base ISA, so no run-time check is needed). */
#include <arm_neon.h>

#define V float32x4_t
#define VL 4
#define vzero() vdupq_n_f32(0.0f)
#define vset1(x) vdupq_n_f32(x)
#define vload(p) vld1q_f32(p)
#define vstore(p, x) vst1q_f32(p, x)
#define vbcast(p) vld1q_dup_f32(p)
#define vfma(a, b, c) vfmaq_f32(c, a, b)
#define vmul(a, b) vmulq_f32(a, b)
#define vadd(a, b) vaddq_f32(a, b)
#define vsub(a, b) vsubq_f32(a, b)
#define vmax(m, x) vmaxq_f32(m, x)
#define vhsum(x) vaddvq_f32(x)
#define vhmax(x) vmaxvq_f32(x)
#define vload_f16(p) vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)))
#define vload_bf16(p) vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16))

static inline void vreduce4(float32x4_t a, float32x4_t b, float32x4_t c,
                            float32x4_t d, float *out)
{
    vst1q_f32(out, vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, d)));
}

/* The expf of kernels_avx2.c, 4 lanes. */
static inline float32x4_t vexp(float32x4_t x)
{
    const float32x4_t lo = vdupq_n_f32(-87.33654f);
    uint32x4_t under = vcltq_f32(x, lo);
    x = vminq_f32(vdupq_n_f32(88.0f), vmaxq_f32(lo, x));
    float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_n_f32(x, n, 0.693359375f);
    r = vfmsq_n_f32(r, n, -2.12194440e-4f);
    float32x4_t y = vdupq_n_f32(1.9875691500e-4f);
    y = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), y, r);
    y = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), y, r);
    y = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), y, r);
    y = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), y, r);
    y = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), y, r);
    y = vfmaq_f32(r, y, vmulq_f32(r, r));
    y = vaddq_f32(y, vdupq_n_f32(1.0f));
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    float32x4_t res = vmulq_f32(y, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(res), under));
}

/* 32 q registers: 4 x 4 scores = 16 accumulators; 6 x 16 values = 24. */
#define QK_MR 4
#define QK_NR 4
#define PV_MR 6
#define PV_NV 4
#define PV_MORE_ROWS(nv)
#define KERNEL_NAME "neon"
#define KERNEL_TABLE moba_cpu_kernels_neon

#include "kernels_simd.h"
