/*
 * Hopper warpgroup MMA (wgmma.mma_async, sm_90a only): the primitives of
 * the attention kernel in attend_wgmma.cuh.
 *
 * A warpgroup is 4 consecutive warps (128 threads); warp w of it owns rows
 * 16 w .. 16 w + 15 of the 64-row tile.  With A in registers, each warp's
 * A fragment for a k16 step is mma.m16n8k16's (mma_common.cuh), and the
 * f32 accumulator of m64nNk16 is N / 8 of mma.m16n8's C fragments side by
 * side: d[4 n .. 4 n + 3] = (row g, cols 8 n + 2 t, + 1), (row g + 8, same
 * cols).  So the FlashAttention-2 register tricks carry over unchanged: S's
 * accumulator over 16 keys is P's A fragment for P V.
 *
 * B comes from shared memory through a matrix descriptor.  The tiles here
 * use the layout without swizzle, built from 8 x 8 "core matrices" of 128
 * contiguous bytes: element (r, c) of an R x C tile at
 * ((r / 8) (C / 8) + c / 8) 64 + (r % 8) 8 + c % 8 (wg_off).  K ([key][d])
 * is B of S = Q K^T read K-major (its rows along the reduction); V
 * ([key][d]) is B of O = P V read MN-major (transposed: d, the output
 * column, is contiguous).  The descriptor's two strides (PTX ISA, "Matrix
 * Descriptor Format") are the byte distances between neighbouring core
 * matrices along the two dimensions; which dimension each names depends on
 * the major-ness, so both are given per use (wg_cfg in
 * attend_wgmma.cuh), as measured by tools/wgmma_probe.cu on an H200.
 */
#ifndef MOBA_GPU_WGMMA_CUH
#define MOBA_GPU_WGMMA_CUH

#include "mma_common.cuh"

#if MOBA_GPU_HAVE_MMA

/* wgmma exists only in the arch-specific sm_90a target; every other
 * target compiles the callers to a trap, and the host launches them only
 * on compute capability 9.0 in a build that has sm_90a code. */
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define MOBA_WGMMA_OK 1
#else
#define MOBA_WGMMA_OK 0
#endif

/* Element offset of (r, c) in a core-matrix tiled tile with C columns. */
template <int C> __device__ __forceinline__ int wg_off(int r, int c)
{
    return ((r >> 3) * (C / 8) + (c >> 3)) * 64 + (r & 7) * 8 + (c & 7);
}

/* Shared-memory matrix descriptor, no swizzle: start address, the two
 * core-matrix strides in bytes (multiples of 16). */
__device__ __forceinline__ uint64_t wg_desc(const void *smem, unsigned lbo, unsigned sbo)
{
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    return (uint64_t)((s & 0x3ffffu) >> 4) | ((uint64_t)(lbo >> 4) << 16) |
           ((uint64_t)(sbo >> 4) << 32);
}

/* The same for a tile in the 128-byte-swizzled layout (layout type 1):
 * rows of 128 bytes (64 16-bit columns) in 8-row atoms of 1024 bytes,
 * 1024-byte aligned, whose 16-byte chunk c of row r sits at chunk c ^ (r
 * % 8); a tile wider than 64 columns is 64-column blocks one after the
 * other.  Strides as tools/wgmma_probe.cu measured them on an H200: SBO
 * the 8-row step (1024); K-major ignores LBO, MN-major takes the
 * 64-column block step. */
__device__ __forceinline__ uint64_t wg_desc_sw128(const void *smem, unsigned lbo, unsigned sbo)
{
    return wg_desc(smem, lbo, sbo) | (1ull << 62);
}

/* The descriptor of (the tile at d's address) + off bytes, off a multiple
 * of 16: the address field is the low 14 bits of address / 16, and a
 * CTA's shared memory (< 256 KB) never carries out of it (nor out of
 * the low word, whose high word stays a constant), so a chunk's wgmmas
 * share one computed base. */
__device__ __forceinline__ uint64_t wg_desc_step(uint64_t d, unsigned off)
{
    return (d & 0xffffffff00000000ull) | (unsigned)((unsigned)d + (off >> 4));
}

/* Byte offset of 16-byte chunk c (of D / 8) of row r in a tile of `rows`
 * rows in that layout. */
__device__ __forceinline__ unsigned wg_sw128_off(int r, int c, int rows)
{
    return (unsigned)((c >> 3) * rows * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4));
}

/* The alignment of 128-byte-swizzled tiles (their 8-row atoms), to which
 * the kernels that keep them in dynamic shared memory round its base up:
 * the host asks for this many bytes more. */
#define WG_SMEM_ALIGN 1024

/* The first WG_SMEM_ALIGN-aligned byte of a kernel's dynamic shared
 * memory raw, where 128-byte-swizzled tiles may start.  Rounded by an offset into raw, not through an integer: a
 * pointer rebuilt from an integer is generic, and nvcc then makes every
 * access through it a generic LD/ST instead of LDS/STS (k_gate_mma's
 * staging, CUDA v31). */
__device__ __forceinline__ unsigned char *wg_smem_align(unsigned char *raw)
{
    return raw + ((0u - (unsigned)__cvta_generic_to_shared(raw)) & (WG_SMEM_ALIGN - 1u));
}

/* Before the first wgmma that reads registers written since the last one
 * (its A fragments or accumulators). */
__device__ __forceinline__ void wg_fence(void)
{
#if MOBA_WGMMA_OK
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void wg_commit(void)
{
#if MOBA_WGMMA_OK
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}

/* Until at most N committed wgmma groups of this warpgroup are pending. */
template <int N> __device__ __forceinline__ void wg_wait(void)
{
#if MOBA_WGMMA_OK
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}

/* Shared-memory writes of the generic proxy (st.shared, cp.async) become
 * visible to wgmma, which reads through the async proxy: every writing
 * thread fences, then the CTA synchronises. */
__device__ __forceinline__ void wg_fence_smem(void)
{
#if MOBA_WGMMA_OK
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

/* Keeps the compiler from moving an accumulator register across the
 * asynchronous wgmma that owns it (reads before the wait would see stale
 * values). */
__device__ __forceinline__ void wg_pin(float &x)
{
    asm volatile("" : "+f"(x)::"memory");
}

/* wg_pin for each of the N registers of an accumulator at x. */
template <int N> __device__ __forceinline__ void wg_pin_n(float *x)
{
#pragma unroll
    for (int i = 0; i < N; i++) wg_pin(x[i]);
}

/* mbarriers (sm_90) for the warp-specialized kernel (attend_wgmma_ws.cuh):
 * a producer warp fills ring slots, consumer warpgroups drain them, and
 * neither waits at a CTA barrier for the other.  A barrier's phase
 * completes when `count` arrivals are in; waits name the parity of the
 * phase they wait for (the CUTLASS convention: a producer's first wait
 * on an empty slot asks for parity 1, which a fresh barrier counts as
 * complete). */
__device__ __forceinline__ unsigned wg_smem_addr(const void *p)
{
    return (unsigned)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void wg_mbar_init(uint64_t *b, unsigned count)
{
#if MOBA_WGMMA_OK
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(wg_smem_addr(b)), "r"(count)
                 : "memory");
#else
    (void)b; (void)count;
#endif
}

/* Makes the inits visible before any thread uses the barriers (then a
 * CTA barrier). */
__device__ __forceinline__ void wg_mbar_init_fence(void)
{
#if MOBA_WGMMA_OK
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}

/* Until the phase of parity `parity` has completed (acquire). */
__device__ __forceinline__ void wg_mbar_wait(uint64_t *b, unsigned parity)
{
#if MOBA_WGMMA_OK
    asm volatile("{\n.reg .pred p;\nWG_MBAR_WAIT:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
                 "@!p bra WG_MBAR_WAIT;\n}\n" ::"r"(wg_smem_addr(b)),
                 "r"(parity)
                 : "memory");
#else
    (void)b; (void)parity;
#endif
}

/* One arrival (release). */
__device__ __forceinline__ void wg_mbar_arrive(uint64_t *b)
{
#if MOBA_WGMMA_OK
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(wg_smem_addr(b)) : "memory");
#else
    (void)b;
#endif
}

/* One arrival once every cp.async this thread issued so far has landed;
 * noinc: the arrival is one of the barrier's `count`. */
__device__ __forceinline__ void wg_mbar_arrive_cp_async(uint64_t *b)
{
#if MOBA_WGMMA_OK
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(wg_smem_addr(b))
                 : "memory");
#else
    (void)b;
#endif
}

/* The box wg_tma_load3 would copy, into L2 only. */
__device__ __forceinline__ void wg_tma_prefetch3(const void *tmap, int c0, int c1, int c2)
{
#if MOBA_WGMMA_OK
    asm volatile("cp.async.bulk.prefetch.tensor.3d.L2.global.tile [%0, {%1, %2, %3}];\n" ::"l"(tmap),
                 "r"(c0), "r"(c1), "r"(c2));
#else
    (void)tmap; (void)c0; (void)c1; (void)c2;
#endif
}

/* The tensor memory accelerator (TMA, sm_90): one thread asks for a box
 * of a tensor map and the copy engine writes it into shared memory,
 * 128-byte swizzled as the map says, then completes `bytes` of the
 * transaction count of mbarrier b.  The arrival that announces the bytes
 * (wg_mbar_arrive_tx) comes before the copies.  tmap: the generic address
 * of a __grid_constant__ kernel parameter. */
__device__ __forceinline__ void wg_mbar_arrive_tx(uint64_t *b, unsigned bytes)
{
#if MOBA_WGMMA_OK
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(
                     wg_smem_addr(b)),
                 "r"(bytes)
                 : "memory");
#else
    (void)b; (void)bytes;
#endif
}

__device__ __forceinline__ void wg_tma_load3(void *dst, const void *tmap, int c0, int c1, int c2,
                                             uint64_t *b)
{
#if MOBA_WGMMA_OK
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(wg_smem_addr(dst)),
                 "l"(tmap), "r"(c0), "r"(c1), "r"(c2), "r"(wg_smem_addr(b))
                 : "memory");
#else
    (void)dst; (void)tmap; (void)c0; (void)c1; (void)c2; (void)b;
#endif
}

/* One asm statement per shape; the dtype (f16, bf16) is a string
 * literal pasted into the opcode.  The accumulators' operand numbers and
 * bindings, 16 (n32), 32 (n64) or 64 (n128) of them, are shared by the
 * shapes. */
#define MOBA_WGMMA_R16 \
    "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15"
#define MOBA_WGMMA_R32 \
    "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15," \
    "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31"
#define MOBA_WGMMA_R64 \
    MOBA_WGMMA_R32 "," \
    "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47," \
    "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"
#define MOBA_WGMMA_D16 \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
    "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
#define MOBA_WGMMA_D32 \
    MOBA_WGMMA_D16, \
    "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
    "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define MOBA_WGMMA_D64 \
    MOBA_WGMMA_D32, \
    "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
    "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
    "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
    "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

#define MOBA_WGMMA_N32(TY) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n32k16.f32." TY "." TY " {" MOBA_WGMMA_R16 \
                 "}, {%16,%17,%18,%19}, %20, p, 1, 1, %22;\n}\n" \
                 : MOBA_WGMMA_D16 \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc), "r"(acc), "n"(TB) \
                 : "memory")

#define MOBA_WGMMA_N64(TY) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY " {" MOBA_WGMMA_R32 \
                 "}, {%32,%33,%34,%35}, %36, p, 1, 1, %38;\n}\n" \
                 : MOBA_WGMMA_D32 \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc), "r"(acc), "n"(TB) \
                 : "memory")

#define MOBA_WGMMA_N128(TY) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY " {" MOBA_WGMMA_R64 \
                 "}, {%64,%65,%66,%67}, %68, p, 1, 1, %70;\n}\n" \
                 : MOBA_WGMMA_D64 \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(bdesc), "r"(acc), "n"(TB) \
                 : "memory")

/* D (64 x N, f32) = A (64 x 16, registers) B (16 x N, descriptor) + D when
 * acc != 0; TB 0: B K-major, 1: B MN-major (transposed). */
template <int DT, int TB>
__device__ __forceinline__ void wgmma_m64n32k16(float *d, const uint32_t *a, uint64_t bdesc, int acc)
{
#if MOBA_WGMMA_OK
    if (DT == 1)
        MOBA_WGMMA_N32("f16");
    else
        MOBA_WGMMA_N32("bf16");
#else
    (void)d; (void)a; (void)bdesc; (void)acc;
    __trap();
#endif
}

template <int DT, int TB>
__device__ __forceinline__ void wgmma_m64n64k16(float *d, const uint32_t *a, uint64_t bdesc, int acc)
{
#if MOBA_WGMMA_OK
    if (DT == 1)
        MOBA_WGMMA_N64("f16");
    else
        MOBA_WGMMA_N64("bf16");
#else
    (void)d; (void)a; (void)bdesc; (void)acc;
    __trap();
#endif
}

template <int DT, int TB>
__device__ __forceinline__ void wgmma_m64n128k16(float *d, const uint32_t *a, uint64_t bdesc, int acc)
{
#if MOBA_WGMMA_OK
    if (DT == 1)
        MOBA_WGMMA_N128("f16");
    else
        MOBA_WGMMA_N128("bf16");
#else
    (void)d; (void)a; (void)bdesc; (void)acc;
    __trap();
#endif
}

/* The same with A from shared memory too (both K-major), as the
 * warp-specialized kernel's S = Q K^T takes it: Q in registers held 32 of
 * a consumer's registers for a whole item (attend_wgmma_ws.cuh). */
#define MOBA_WGMMA_N128_SS(TY) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY " {" MOBA_WGMMA_R64 \
                 "}, %64, %65, p, 1, 1, 0, 0;\n}\n" \
                 : MOBA_WGMMA_D64 \
                 : "l"(adesc), "l"(bdesc), "r"(acc) \
                 : "memory")

template <int DT>
__device__ __forceinline__ void wgmma_m64n128k16_ss(float *d, uint64_t adesc, uint64_t bdesc,
                                                    int acc)
{
#if MOBA_WGMMA_OK
    if (DT == 1)
        MOBA_WGMMA_N128_SS("f16");
    else
        MOBA_WGMMA_N128_SS("bf16");
#else
    (void)d; (void)adesc; (void)bdesc; (void)acc;
    __trap();
#endif
}

#undef MOBA_WGMMA_N32
#undef MOBA_WGMMA_N64
#undef MOBA_WGMMA_N128
#undef MOBA_WGMMA_N128_SS
#undef MOBA_WGMMA_R16
#undef MOBA_WGMMA_R32
#undef MOBA_WGMMA_R64
#undef MOBA_WGMMA_D16
#undef MOBA_WGMMA_D32
#undef MOBA_WGMMA_D64

#endif /* MOBA_GPU_HAVE_MMA */

#endif /* MOBA_GPU_WGMMA_CUH */
