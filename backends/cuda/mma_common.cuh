/*
 * mma.sync primitives shared by the tensor-core kernels (attend_mma.cuh,
 * gate.cu): CUDA sm_80+ only; HIP (MOBA_GPU_HAVE_MMA 0) sees nothing here.
 *
 * mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}, per warp, with
 * g = lane / 4 and t = lane % 4 (PTX ISA, "Matrix Fragments for
 * mma.m16n8k16 with floating point type"):
 *   A 16x16 row-major, 4 x b32: a[0] = (row g,   cols 2t, 2t+1)
 *                               a[1] = (row g+8, cols 2t, 2t+1)
 *                               a[2] = (row g,   cols 2t+8, 2t+9)
 *                               a[3] = (row g+8, cols 2t+8, 2t+9)
 *   B 16x8 col-major, 2 x b32:  b[0] = (rows 2t, 2t+1,   col g)
 *                               b[1] = (rows 2t+8, 2t+9, col g)
 *   C/D 16x8 f32, 4 x f32:      c[0], c[1] = (row g,   cols 2t, 2t+1)
 *                               c[2], c[3] = (row g+8, cols 2t, 2t+1)
 * The lower-numbered element sits in the low 16 bits of a b32.
 */
#ifndef MOBA_GPU_MMA_COMMON_CUH
#define MOBA_GPU_MMA_COMMON_CUH

#include "kernels_common.cuh"

#if MOBA_GPU_HAVE_MMA

/* Shared-memory rows are padded by 8 halves (16 bytes): row strides of
 * 36 or 68 words put the 8 rows a fragment load touches in distinct banks
 * and keep every row 16-byte aligned for uint4 stores and ldmatrix. */
template <int D> struct mma_cfg {
    enum { LD = D + 8 };
};

template <int DT>
__device__ __forceinline__ void mma16816(float *c, const uint32_t *a, uint32_t b0,
                                         uint32_t b1)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if (DT == 1)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    (void)c; (void)a; (void)b0; (void)b1;
    __trap(); /* the host never picks this path below compute 8.0 */
#endif
}

/* Four 8x8 b16 tiles from shared memory; lanes 8i..8i+7 give the row
 * addresses of tile i.  Not transposed (ldsm_x4), each lane receives (row
 * g; cols 2t, 2t+1) of every tile: a B fragment half when the tile is
 * [n][k] (keys or centroids as rows).  Transposed (ldsm_x4_trans), (rows
 * 2t, 2t+1; col g): a B fragment half when the tile is [key][d]. */
template <bool TRANS>
__device__ __forceinline__ void ldsm_x4_impl(uint32_t *r, const unsigned short *p)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    unsigned s = (unsigned)__cvta_generic_to_shared(p);
    if (TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(s));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(s));
#else
    (void)p;
    r[0] = r[1] = r[2] = r[3] = 0;
    __trap();
#endif
}

__device__ __forceinline__ void ldsm_x4(uint32_t *r, const unsigned short *p)
{
    ldsm_x4_impl<false>(r, p);
}

__device__ __forceinline__ void ldsm_x4_trans(uint32_t *r, const unsigned short *p)
{
    ldsm_x4_impl<true>(r, p);
}

/* 16-byte global -> shared copies that bypass registers (sm_80 cp.async),
 * so a tile's load overlaps the previous tile's math. */
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
#else
    (void)smem; (void)gmem;
    __trap();
#endif
}

/* The same with n of the 16 bytes read from the source (16, or 0: the
 * chunk is zeroed and src not read, so a row past a block's end needs no
 * branch; src then only has to be some address).  The zeros are a
 * cp.async, so they count among the thread's copies that
 * cp.async.mbarrier.arrive and cp.async.wait_group wait for; a plain
 * store would not. */
__device__ __forceinline__ void cp_async16_n(void *smem, const void *gmem, int n)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
#else
    (void)smem; (void)gmem; (void)n;
    __trap();
#endif
}

__device__ __forceinline__ void cp_async_commit(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}

/* Wait until at most N committed groups are still in flight. */
template <int N> __device__ __forceinline__ void cp_async_wait(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

/* Two floats rounded to nearest-even into one b32 of the dtype, lo in the
 * low half: one cvt on sm_80+ instead of gpu_f32_to_16's integer rounding
 * per value (the P fragments of every key chunk go through here).  Numbers
 * round the same; a NaN comes out as the canonical NaN, not with its
 * payload kept. */
template <int DT> __device__ __forceinline__ uint32_t mma_pack(float lo, float hi)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    uint32_t r;
    if (DT == 1)
        asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    else
        asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#else
    return (uint32_t)gpu_f32_to_16<DT>(lo) | ((uint32_t)gpu_f32_to_16<DT>(hi) << 16);
#endif
}

/* A fragments (16 rows x D, as many k-steps as D / 16) of rows q0 (g) and
 * q1 (g + 8), given as row pointers; a null row loads zeros.  32-bit loads:
 * the rows must be 4-byte aligned. */
template <int D>
__device__ __forceinline__ void mma_load_a(uint32_t (*qf)[4], const unsigned short *q0,
                                           const unsigned short *q1, int t)
{
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        const int c = kk * 16 + 2 * t;
        qf[kk][0] = q0 ? *(const uint32_t *)(q0 + c) : 0u;
        qf[kk][1] = q1 ? *(const uint32_t *)(q1 + c) : 0u;
        qf[kk][2] = q0 ? *(const uint32_t *)(q0 + c + 8) : 0u;
        qf[kk][3] = q1 ? *(const uint32_t *)(q1 + c + 8) : 0u;
    }
}

#endif /* MOBA_GPU_HAVE_MMA */

#endif /* MOBA_GPU_MMA_COMMON_CUH */
