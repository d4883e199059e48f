/*
 * Device helpers shared by every kernel: storage dtypes, the gating order
 * of core/gate.h, a top-list kept in registers.
 */
#ifndef MOBA_GPU_KERNELS_COMMON_CUH
#define MOBA_GPU_KERNELS_COMMON_CUH

#include "gpu_internal.h"

/* Storage type per dtype (0 f32, 1 f16, 2 bf16, as moba_dtype). */
template <int DT> struct gpu_store { typedef unsigned short type; };
template <> struct gpu_store<0> { typedef float type; };

template <int DT> __device__ __forceinline__ float gpu_to_f32(float x)
{
    return x;
}
template <int DT> __device__ __forceinline__ float gpu_to_f32(unsigned short x)
{
    if (DT == 1) return __half2float(__ushort_as_half(x));
    return __uint_as_float((unsigned)x << 16);
}

template <int DT> __device__ __forceinline__ unsigned short gpu_f32_to_16(float f)
{
    if (DT == 1) return __half_as_ushort(__float2half_rn(f));
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

template <int DT> __device__ __forceinline__ void
gpu_store_f32(typename gpu_store<DT>::type *p, size_t i, float x);
template <> __device__ __forceinline__ void gpu_store_f32<0>(float *p, size_t i, float x)
{
    p[i] = x;
}
template <> __device__ __forceinline__ void
gpu_store_f32<1>(unsigned short *p, size_t i, float x)
{
    p[i] = gpu_f32_to_16<1>(x);
}
template <> __device__ __forceinline__ void
gpu_store_f32<2>(unsigned short *p, size_t i, float x)
{
    p[i] = gpu_f32_to_16<2>(x);
}

template <int DT> __device__ __forceinline__ float gpu_round(float x)
{
    if (DT == 0) return x;
    return gpu_to_f32<DT>(gpu_f32_to_16<DT>(x));
}

/* core/gate.h's moba_gate_better: numbers above NaN, larger score first,
 * ties to the larger block index. */
__device__ __forceinline__ bool gpu_better(float sa, int ia, float sb, int ib)
{
    bool na = sa == sa, nb = sb == sb;
    if (na != nb) return na;
    if (na && sa != sb) return sa > sb;
    return ia > ib;
}

/* Best-first list of at most GPU_TOPK candidates; fully unrolled so that it
 * stays in registers.  Empty slots hold index -1. */
#define GPU_TOPK 8

__device__ __forceinline__ void gpu_top_clear(float *val, int *idx)
{
#pragma unroll
    for (int i = 0; i < GPU_TOPK; i++) {
        val[i] = 0.0f;
        idx[i] = -1;
    }
}

__device__ __forceinline__ void gpu_top_push(float *val, int *idx, float s, int j)
{
    if (idx[GPU_TOPK - 1] >= 0 && !gpu_better(s, j, val[GPU_TOPK - 1], idx[GPU_TOPK - 1]))
        return;
    /* Shift worse entries down by one; insert at the first worse slot. */
    bool placed = false;
#pragma unroll
    for (int i = GPU_TOPK - 1; i > 0; i--) {
        bool worse_above = idx[i - 1] < 0 || gpu_better(s, j, val[i - 1], idx[i - 1]);
        if (!placed) {
            if (worse_above) {
                val[i] = val[i - 1];
                idx[i] = idx[i - 1];
            } else {
                val[i] = s;
                idx[i] = j;
                placed = true;
            }
        }
    }
    if (!placed) {
        val[0] = s;
        idx[0] = j;
    }
}

#endif /* MOBA_GPU_KERNELS_COMMON_CUH */
