/*
 * Storage dtype access, selected by -DDTYPE (0 f32, 1 f16, 2 bf16).
 * Everything is computed in f32.  f16 goes through the core OpenCL 1.2
 * vload_half / vstore_half_rte where the device lacks cl_khr_fp16 (half
 * may always be a pointee type for storage), so f16 works on NVIDIA's
 * OpenCL and PoCL alike; with cl_khr_fp16 loads are plain half reads.
 * bf16 is never native: ushort bits, widened by a shift and narrowed with round-to-nearest-even (the rule of core/dtype.h).
 */
#if DTYPE == 0
typedef float store_t;
#define LD(p, i) ((p)[i])
#define ST(p, i, x) ((p)[i] = (x))
#elif DTYPE == 1 && HAS_FP16
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
typedef half store_t;
#define LD(p, i) convert_float((p)[i])
#define ST(p, i, x) vstore_half_rte((x), (i), (p))
#elif DTYPE == 1
typedef half store_t;
#define LD(p, i) vload_half((i), (p))
#define ST(p, i, x) vstore_half_rte((x), (i), (p))
#else
typedef ushort store_t;
#define LD(p, i) as_float((uint)(p)[i] << 16)
#define ST(p, i, x) ((p)[i] = f32_to_bf16(x))
inline ushort f32_to_bf16(float f)
{
    uint u = as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN stays a quiet NaN */
        return (ushort)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (ushort)(u >> 16);
}
#endif

/* Four consecutive elements as a float4 (rows are multiples of 16 long):
 * one vector load where the dtype allows it. */
#if DTYPE == 0
#define LD4(p, i) vload4(0, (p) + (i))
#elif DTYPE == 1 && HAS_FP16
#define LD4(p, i) convert_float4(vload4(0, (p) + (i)))
#elif DTYPE == 1
#define LD4(p, i) vload_half4(0, (p) + (i))
#else
#define LD4(p, i) as_float4(convert_uint4(vload4(0, (p) + (i))) << 16)
#endif

/* 16 consecutive elements as a float16: one AVX-512 register (PoCL maps
 * the vector types to the host's SIMD; float4 code ran at a quarter of
 * the width). */
#if DTYPE == 0
#define LD16(p, i) vload16(0, (p) + (i))
#elif DTYPE == 1 && HAS_FP16
#define LD16(p, i) convert_float16(vload16(0, (p) + (i)))
#elif DTYPE == 1
#define LD16(p, i) vload_half16(0, (p) + (i))
#else
#define LD16(p, i) as_float16(convert_uint16(vload16(0, (p) + (i))) << 16)
#endif

/* 4 and 16 consecutive elements stored from f32, rounded as ST rounds. */
#if DTYPE == 0
#define ST4(p, i, x) vstore4((x), 0, (p) + (i))
#define ST16(p, i, x) vstore16((x), 0, (p) + (i))
#elif DTYPE == 1
#define ST4(p, i, x) vstore_half4_rte((x), 0, (p) + (i))
#define ST16(p, i, x) vstore_half16_rte((x), 0, (p) + (i))
#else
inline void st_bf16(global ushort *p, const float *x, int n)
{
    for (int k = 0; k < n; k++) p[k] = f32_to_bf16(x[k]);
}
inline void st_bf16x4(global ushort *p, float4 x)
{
    float r[4];
    vstore4(x, 0, r);
    st_bf16(p, r, 4);
}
inline void st_bf16x16(global ushort *p, float16 x)
{
    float r[16];
    vstore16(x, 0, r);
    st_bf16(p, r, 16);
}
#define ST4(p, i, x) st_bf16x4((p) + (i), (x))
#define ST16(p, i, x) st_bf16x16((p) + (i), (x))
#endif
