/*
 * Tensor-core primitives for the MMA form of moba_block_attend
 * (ATTEND_MMA, 16-bit storage only): the m16n8k16 matrix product with f32
 * accumulators, a butterfly shuffle, and the packing of two f32 into the
 * 16-bit operand type.
 *
 * ATTEND_MMA == 1: NVIDIA (sm_80 and later), through inline PTX.  NVIDIA's
 * OpenCL compiles OpenCL C to PTX and accepts asm statements, but has no
 * extension that reaches the tensor cores; without them its OpenCL runs
 * every FLOP as an f32 FMA (docs/perf.md, OpenCL v4 and v6).
 * ATTEND_MMA == 2: the same operations emulated through local memory and
 * work-group barriers, on any device, so that the fragment bookkeeping of
 * the kernel is checked where no tensor core exists (conformance on
 * PoCL).  It needs every item of the work-group to reach every call,
 * which the kernel's loops give (their bounds are the work-group's).
 *
 * Both take a warp as 32 consecutive items of the work-group, as NVIDIA's
 * OpenCL lays them out.  Fragments follow PTX's m16n8k16 layouts: with
 * lane = 4 g + t, a[0..3] hold A rows g, g + 8, g, g + 8 at columns
 * 2t, 2t, 2t + 8, 2t + 8 (two elements each, the lower index in the low
 * half), b[0..1] B rows 2t and 2t + 8 of column g, and d[0..3] D (row g,
 * columns 2t, 2t + 1), then row g + 8.
 */
#if ATTEND_MMA
#define MMA_WARP 32
/* Fragment arrays stay in registers only when their loops are unrolled;
 * the emulation keeps them rolled (its barriers make unrolled code slow to
 * compile on PoCL). */
#if ATTEND_MMA == 1
#define MMA_UNROLL _Pragma("unroll")
#else
#define MMA_UNROLL
#endif
#if ATTEND_MMA == 2
#define MMA_SCRATCH_WORDS (4 * MMA_WARP * 6) /* 4 warps x (a, b) */
#else
#define MMA_SCRATCH_WORDS 1
#endif

#if ATTEND_MMA == 1
#if DTYPE == 1
#define MMA_PTX "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
#define CVT_PTX "cvt.rn.f16x2.f32 %0, %1, %2;"
#else
#define MMA_PTX "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
#define CVT_PTX "cvt.rn.bf16x2.f32 %0, %1, %2;"
#endif

/* d += a b (scr unused) */
inline void mma16816(float *d, const uint *a, const uint *b, local uint *scr)
{
    asm volatile(MMA_PTX "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                         "{%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* x of the lane whose number differs from this one's in the bits of m */
inline float shfl_xor(float x, int m, local uint *scr)
{
    float r;
    asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;"
                 : "=f"(r)
                 : "f"(x), "r"(m));
    return r;
}

/* lo in the low half, both rounded to nearest even */
inline uint pack2(float lo, float hi)
{
    uint r;
    asm("" CVT_PTX : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

#else /* ATTEND_MMA == 2 */

inline float mma_elem(uint w, int hi)
{
    const ushort bits = (ushort)(hi ? w >> 16 : w);
#if DTYPE == 1
    return vload_half(0, (const private half *)&bits);
#else
    return as_float((uint)bits << 16);
#endif
}

inline void mma16816(float *d, const uint *a, const uint *b, local uint *scr)
{
    const int lid = (int)get_local_id(0), ln = lid % MMA_WARP;
    local uint *s = scr + (lid / MMA_WARP) * MMA_WARP * 6;
    for (int i = 0; i < 4; i++) s[ln * 6 + i] = a[i];
    s[ln * 6 + 4] = b[0];
    s[ln * 6 + 5] = b[1];
    barrier(CLK_LOCAL_MEM_FENCE);
    const int g = ln >> 2, t = ln & 3;
    for (int i = 0; i < 4; i++) {
        const int r = g + 8 * (i >> 1), c = 2 * t + (i & 1);
        float acc = d[i];
        for (int k = 0; k < 16; k++) {
            const uint wa = s[((r & 7) * 4 + (k & 7) / 2) * 6 + (r >> 3) + 2 * (k >> 3)];
            const uint wb = s[(c * 4 + (k & 7) / 2) * 6 + 4 + (k >> 3)];
            acc = fma(mma_elem(wa, k & 1), mma_elem(wb, k & 1), acc);
        }
        d[i] = acc;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

inline float shfl_xor(float x, int m, local uint *scr)
{
    const int lid = (int)get_local_id(0);
    scr[lid] = as_uint(x);
    barrier(CLK_LOCAL_MEM_FENCE);
    const float r = as_float(scr[lid ^ m]);
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

inline uint pack2(float lo, float hi)
{
#if DTYPE == 1
    ushort h[2];
    vstore_half_rte(lo, 0, (private half *)h);
    vstore_half_rte(hi, 1, (private half *)h);
    return (uint)h[0] | (uint)h[1] << 16;
#else
    return (uint)f32_to_bf16(lo) | (uint)f32_to_bf16(hi) << 16;
#endif
}
#endif
#endif /* ATTEND_MMA */
