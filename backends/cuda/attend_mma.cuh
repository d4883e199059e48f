/*
 * Tensor-core (mma.sync) key-centric attention for f16/bf16 on sm_80+.
 * k_mma_kv_narrow and k_mma_kv_wide write the partials of k_simt_kv (O / l
 * in the storage dtype, lse in f32, addressed by partial index);
 * k_mma_own is k_simt_own (causal own block, then the partials merged in
 * slot order with gpu_merge_row's arithmetic) with the attention on
 * tensor cores and the merge in the attention's C-fragment layout, at
 * every head dim the backend builds (32, 64, 96, 128, 256).  HIP and f32
 * keep the SIMT kernels.
 *
 * Fragment layouts and the mma/ldmatrix primitives: mma_common.cuh.
 *
 * S = Q K^T: A = Q rows, B = K^T, whose column n is key n's row in shared
 * memory.  k_mma_kv_narrow holds Q's A fragments in registers for the
 * tile and reads K's as 32-bit loads; k_mma_kv_wide and k_mma_own keep Q
 * in shared memory and read both with ldmatrix.  The C fragment of S over
 * 16 keys is the A fragment of P for P V (FlashAttention-2's register
 * reuse).  V is row-major [key][d] in shared memory; ldmatrix .trans
 * turns its 8x8 tiles into B fragments.
 *
 * Determinism: row r's result depends only on row r of Q and on the keys
 * taken in a fixed order (chunks ascending, the same mma sequence), and
 * its max/sum reductions run over the 4 lanes that hold that row, so it
 * does not depend on which rows share the CTA.  The kernel (and with it
 * the softmax step: 64 keys narrow, 32 wide) is a function of the block
 * size alone.
 */
#ifndef MOBA_GPU_ATTEND_MMA_CUH
#define MOBA_GPU_ATTEND_MMA_CUH

#include "attend_simt.cuh"
#include "mma_common.cuh"

#include <stddef.h>

#define MMA_WARPS 4
#define MMA_THREADS (32 * MMA_WARPS) /* k_mma_own: 16 rows per warp = GPU_TILE_ROWS */
#define MMA_KC 64                    /* keys per shared-memory chunk     */
#define MMA_KR 128 /* keys of a block resident in shared memory (narrow) */
/* Keys per softmax step in k_mma_kv_wide: 32 rows x 64 keys of S would not fit
 * beside O's 128 floats at D = 128 (spills at 255 registers). */
#define MMA_KV_STEP 32
/* Block size from which k_mma_kv_wide runs instead of k_mma_kv_narrow
 * (measured: 0.90x at 512, 1.18x at 16384; not measured between). */
#define MMA_WIDE_MIN GPU_WIDE_MIN

/* Keys per shared-memory chunk and 16-row m-tiles per warp in
 * k_mma_kv_wide and k_mma_own: at D = 256 a key row is 512 bytes, and
 * chunks of 32 keys with one m-tile (64 rows a CTA) keep those kernels at
 * two CTAs an SM (99 KB each), while O alone holds 128 f32 a thread,
 * which leaves no registers for a second m-tile. */
template <int D> __host__ __device__ constexpr int mma_kc() { return D > 128 ? 32 : MMA_KC; }
template <int D> __host__ __device__ constexpr int mma_kv_mt() { return D > 128 ? 1 : 2; }

/* Which (dtype, head dim) instances have the mma path. */
template <int DT, int D> struct mma_ok {
    enum { value = MOBA_GPU_HAVE_MMA && DT != 0 && (D == 32 || D == 64 || D == 96 || D == 128 || D == 256) };
};
/* The wgmma kernels' K/V and Q layouts go by 64-column boxes. */
template <int D> struct wg_ok {
    enum { value = D == 64 || D == 128 };
};

#if MOBA_GPU_HAVE_MMA

/* The place of the list of key-centric tile t, from place l on, where
 * l's list starts at or before t: the warp reads 32 lists' first tiles at
 * a time.  For kernels whose CTAs take tiles in order (k_wgmma_kv_ws,
 * k_mma_kv_wide: pair u, then u + grid), the next pair's list a few
 * places on; gpu_find_list's binary search over every list was a chain of
 * ~13 dependent loads at the start of each item (docs/perf.md CUDA v58).
 * Where the stride spans many short (or empty) lists, four reads leave
 * the rest to the binary search, from l on; l < 0 (a CTA's first item)
 * searches every list.  All 32 lanes call it. */
__device__ __forceinline__ int gpu_list_from(const gpu_args &a, int l, int t)
{
    const int lane = threadIdx.x % 32, n = (int)a.nlists;
    if (l < 0) return (int)gpu_find_list(a.tile_off, n, t);
    for (int r = 0; r < 4; r++, l += 32) {
        const int c = l + 1 + lane;
        const unsigned m = __ballot_sync(0xffffffffu, c >= n || a.tile_off[c] > t);
        if (m) return l + __ffs(m) - 1;
    }
    return l + (int)gpu_find_list(a.tile_off + l, n - l, t);
}

/* Keys [0, nk) (nk <= MMA_KR) of a block into ks/vs ([MMA_KR][LD]) with
 * cp.async, rows nk .. the next multiple of mma_kc<D>() zeroed so that masked
 * weights never meet NaN garbage; the caller waits (cp_async_wait<0>) and
 * synchronises.  The unroll is pinned: left to the compiler it changed
 * with the kernels around it, once enough to make k_mma_kv_narrow spill. */
template <int D>
__device__ __forceinline__ void mma_load_kv_async(const unsigned short *k,
                                                  const unsigned short *v, int64_t tok0,
                                                  int Hk, int kh, int nk, unsigned short *ks,
                                                  unsigned short *vs)
{
    const int LD = mma_cfg<D>::LD, V8 = D / 8;
    const int KC = mma_kc<D>(), nr = (nk + KC - 1) / KC * KC;
#pragma unroll 4
    for (int e = threadIdx.x; e < nr * V8; e += MMA_THREADS) {
        const int u = e / V8, c = e % V8;
        if (u < nk) {
            const size_t o = ((size_t)(tok0 + u) * Hk + kh) * D + c * 8;
            cp_async16(ks + u * LD + c * 8, k + o);
            cp_async16(vs + u * LD + c * 8, v + o);
        } else {
            *(uint4 *)(ks + u * LD + c * 8) = make_uint4(0, 0, 0, 0);
            *(uint4 *)(vs + u * LD + c * 8) = make_uint4(0, 0, 0, 0);
        }
    }
    cp_async_commit();
}

/* One step of a block streamed through a ring of two chunks of KC =
 * mma_kc<D>() keys (K slot i at ks + i stride, V at vs + i stride): waits
 * until chunk c, keys [c0, c0 + KC) of the block's len at token tok0, is in and every warp
 * is past chunk c - 1, then loads chunk c + 1 into that chunk's slot, so
 * it arrives while chunk c is computed.  PRE2: the caller loaded chunks 0
 * and 1 together (chunk 1's slot is free from the start), so step 0 waits
 * for chunk 0 alone and loads nothing. */
template <int D, bool PRE2 = false>
__device__ __forceinline__ void mma_ring_step(const unsigned short *k, const unsigned short *v,
                                              int64_t tok0, int Hk, int kh, int len, int c0,
                                              int c, unsigned short *ks, unsigned short *vs,
                                              int stride)
{
    const int KC = mma_kc<D>();
    const bool pre = PRE2 && c == 0 && c0 + KC < len;
    if (pre)
        cp_async_wait<1>();
    else
        cp_async_wait<0>();
    __syncthreads();
    if (c0 + KC < len && !pre)
        mma_load_kv_async<D>(k, v, tok0 + c0 + KC, Hk, kh, min(KC, len - c0 - KC),
                             ks + ((c + 1) & 1) * stride, vs + ((c + 1) & 1) * stride);
}

/* Online softmax step of one row: mx is this thread's max over its keys of
 * the chunk, reduced over the row's 4 lanes; updates m, rescales l and
 * returns the factor for the row's O (1 while nothing was seen yet). */
__device__ __forceinline__ float mma_rescale(float mx, float &m, float &l)
{
    mx = fmaxf(mx, MOBA_SHFL_XOR(mx, 1, 4));
    mx = fmaxf(mx, MOBA_SHFL_XOR(mx, 2, 4));
    const float mn = fmaxf(m, mx);
    const float alpha = (m == -INFINITY || mn == -INFINITY) ? 1.0f : __expf(m - mn);
    l *= alpha;
    m = mn;
    return alpha;
}

/* A warp's MT x 16 rows: O's C fragments per m-tile, and per row (index
 * 2 j + h is row 16 j + g + 8 h of the warp's rows) the running max and
 * this thread's part of the sum.  Q is the caller's (mma_chunk). */
template <int D, int MT> struct mma_acc {
    float o[MT][D / 8][4];
    float m[2 * MT], l[2 * MT];
};

template <int D, int MT> __device__ __forceinline__ void mma_acc_init(mma_acc<D, MT> &R)
{
#pragma unroll
    for (int j = 0; j < MT; j++)
#pragma unroll
        for (int n = 0; n < D / 8; n++)
            R.o[j][n][0] = R.o[j][n][1] = R.o[j][n][2] = R.o[j][n][3] = 0.0f;
#pragma unroll
    for (int r = 0; r < 2 * MT; r++) {
        R.m[r] = -INFINITY;
        R.l[r] = 0.0f;
    }
}

/* Rows [0, nr) of Q into qs ([rows][LD]) with cp.async, rows nr .. rows - 1
 * zeroed (their results are never stored, but must not be NaN garbage
 * either).  Row r is the token-head of partial index ent[r] when ent is
 * given (a key-centric tile's, gpu_entry_row), else (tok0 + r) Hq + h.  Not
 * committed: the caller's next K/V load commits it with its own group. */
template <int D>
__device__ __forceinline__ void mma_load_q_async(unsigned short *qs, int rows, int nr,
                                                 const unsigned short *q, const int32_t *ent,
                                                 const gpu_args &a, int64_t tok0, int Hq, int h)
{
    const int LD = mma_cfg<D>::LD, V8 = D / 8;
#pragma unroll 4
    for (int e = threadIdx.x; e < rows * V8; e += MMA_THREADS) {
        const int r = e / V8, c = e % V8;
        if (r < nr) {
            const size_t qr = ent ? (size_t)gpu_entry_row(a, ent[r]) : (size_t)(tok0 + r) * Hq + h;
            cp_async16(qs + r * LD + c * 8, q + qr * D + c * 8);
        } else {
            *(uint4 *)(qs + r * LD + c * 8) = make_uint4(0, 0, 0, 0);
        }
    }
}

/* 2^x with subnormal results flushed to zero: one MUFU.EX2.  (__expf
 * without -ftz compiles to a range test and two predicated multiplies
 * around it, to keep subnormal results; a softmax weight below 2^-126 of
 * the row's max counts for nothing in a sum that holds a 1.) */
__device__ __forceinline__ float mma_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

/* The online-softmax step between S = Q K^T and O += P V, for the warp's
 * MT x 16 rows and NS x 8 keys of S (mma C fragments, or a wgmma
 * accumulator, which has the same layout): masks keys outside [lo, hi) of
 * their row when MASKED, updates each row's max and sum, rescales O (with
 * VOTE only when some row's max moved) and leaves P = exp(scale S - max)
 * in s.  R.m is in scaled units, as lse needs it.
 *
 * EX2: S stays unscaled until the exponent (scale > 0, so the max
 * commutes with it), and exp(scale s - m) is computed as
 * 2^(s c - m log2 e) with c = scale log2 e (gpu_args.scale_log2: a kernel
 * parameter costs no register): one FFMA and one MUFU per score, where
 * scaling, subtracting and __expf take about six instructions
 * (FlashAttention's form).  Without EX2 (k_mma_kv_narrow), S is scaled
 * first and the exponent is 2^(s log2 e - m log2 e), one FMUL more per
 * score: at that kernel's 168-register cap the EX2 form spilled 60-170
 * bytes, this one none.
 *
 * LATE: O is left as it is, and each row's factor goes to al[2 j + h] for
 * mma_rescale_rows, so that a wgmma kernel can run this softmax while the
 * last chunk's P V still accumulates into O (attend_wgmma_ws.cuh).  MXC
 * (a power of two): chains per row max.  LAZY: a row's max moves only by
 * more than MMA_LAZY_TH (below). */
template <int D, int MT, bool VOTE>
__device__ __forceinline__ void mma_rescale_rows(mma_acc<D, MT> &R, int j, float al0, float al1)
{
    /* O is rescaled only when a row of the warp has a new max: x 1 is
     * exact, and past a long block's first chunks the max seldom moves
     * (the multiplies cost as many issue slots as the chunk's mma).
     * Not without VOTE: k_mma_kv_narrow is at its 168-register cap,
     * and the vote made its masked variant spill. */
    if (!VOTE || __any_sync(0xffffffffu, al0 != 1.0f || al1 != 1.0f))
#pragma unroll
        for (int n = 0; n < D / 8; n++) {
            R.o[j][n][0] *= al0;
            R.o[j][n][1] *= al0;
            R.o[j][n][2] *= al1;
            R.o[j][n][3] *= al1;
        }
}

/* Lazy rescaling (FlashAttention-4): a row keeps its max while no score
 * of the chunk passes it by more than MMA_LAZY_TH (natural units: P stays
 * <= 2^8, and O and l in f32 take it); the softmax is the same function.
 * Whether the row moves is each of its 4 lanes' own compare, joined by one
 * ballot, so the quad's max shuffles and the exponent of O's factor are
 * paid only by the chunks that move a row of the warp.  The choice depends
 * on the row's data alone: results stay deterministic and independent of
 * the rows beside it. */
#define MMA_LAZY_TH 5.545177444479562f /* 8 ln 2 */

/* Row h of the chunk moves: some lane of the quad saw a score past the
 * bound (bits: a ballot over the warp). */
__device__ __forceinline__ bool mma_quad_moves(unsigned bits, int lane)
{
    return (bits >> (lane & ~3)) & 0xFu;
}

template <int D, int MT, int NS, bool MASKED, bool VOTE, bool EX2, bool LATE = false, int MXC = 1,
          bool LAZY = false>
__device__ __forceinline__ void mma_softmax(mma_acc<D, MT> &R, float (*s)[NS][4], float scale,
                                            float c, const int *lo, const int *hi, int t,
                                            float *al = NULL)
{
    const float L2E = 1.4426950408889634f;
#pragma unroll
    for (int j = 0; j < MT; j++) {
        /* Each row's max in MXC chains, joined at the end (the max is
         * exact in any order): one chain of 2 NS dependent FMNMX was ~150
         * cycles of pure latency per chunk in the warp-specialized kernel,
         * where one warp per scheduler runs the softmax; the mma.sync
         * kernels keep one, since k_mma_kv_wide spilled with four. */
        float m0[MXC], m1[MXC];
#pragma unroll
        for (int ch = 0; ch < MXC; ch++) m0[ch] = m1[ch] = -INFINITY;
#pragma unroll
        for (int n = 0; n < NS; n++)
#pragma unroll
            for (int i = 0; i < 2; i++) {
                const int key = n * 8 + 2 * t + i;
                if (!EX2) {
                    s[j][n][i] *= scale;
                    s[j][n][2 + i] *= scale;
                }
                if (MASKED) {
                    s[j][n][i] = key >= lo[2 * j] && key < hi[2 * j] ? s[j][n][i] : -INFINITY;
                    s[j][n][2 + i] =
                        key >= lo[2 * j + 1] && key < hi[2 * j + 1] ? s[j][n][2 + i] : -INFINITY;
                }
                /* A chain starts at its first score (with several
                 * chains, the FMNMX against -inf were 8 of the chunk's
                 * path); a NaN there is dropped by the next fmaxf, as
                 * fmaxf(-inf, NaN) would have dropped it. */
                const int c = (2 * n + i) % MXC;
                if (MXC > 1 && 2 * n + i < MXC) {
                    m0[c] = s[j][n][i];
                    m1[c] = s[j][n][2 + i];
                } else {
                    m0[c] = fmaxf(m0[c], s[j][n][i]);
                    m1[c] = fmaxf(m1[c], s[j][n][2 + i]);
                }
            }
#pragma unroll
        for (int w = MXC / 2; w > 0; w /= 2)
#pragma unroll
            for (int k = 0; k < w; k++) {
                m0[k] = fmaxf(m0[k], m0[k + w]);
                m1[k] = fmaxf(m1[k], m1[k + w]);
            }
        float mx0 = m0[0], mx1 = m1[0];
        if (EX2) {
            mx0 *= scale;
            mx1 *= scale;
        }
        float al0 = 1.0f, al1 = 1.0f;
        if (LAZY) {
            /* m + TH is -inf before the row's first score: any finite
             * score moves it, as mma_rescale would. */
            const unsigned b0 = __ballot_sync(0xffffffffu, mx0 > R.m[2 * j] + MMA_LAZY_TH);
            const unsigned b1 = __ballot_sync(0xffffffffu, mx1 > R.m[2 * j + 1] + MMA_LAZY_TH);
            if (b0 | b1) {
                /* Warp-uniform: the shuffles need all lanes. */
                const int lane = threadIdx.x % 32;
                float m0 = R.m[2 * j], l0 = R.l[2 * j], m1 = R.m[2 * j + 1];
                float l1 = R.l[2 * j + 1];
                const float a0 = mma_rescale(mx0, m0, l0), a1 = mma_rescale(mx1, m1, l1);
                if (mma_quad_moves(b0, lane)) {
                    al0 = a0;
                    R.m[2 * j] = m0;
                    R.l[2 * j] = l0;
                }
                if (mma_quad_moves(b1, lane)) {
                    al1 = a1;
                    R.m[2 * j + 1] = m1;
                    R.l[2 * j + 1] = l1;
                }
            }
        } else {
            al0 = mma_rescale(mx0, R.m[2 * j], R.l[2 * j]);
            al1 = mma_rescale(mx1, R.m[2 * j + 1], R.l[2 * j + 1]);
        }
        float sub0 = R.m[2 * j] == -INFINITY ? 0.0f : R.m[2 * j];
        float sub1 = R.m[2 * j + 1] == -INFINITY ? 0.0f : R.m[2 * j + 1];
        if (EX2) {
            sub0 *= L2E;
            sub1 *= L2E;
        }
        if (LATE) {
            al[2 * j] = al0;
            al[2 * j + 1] = al1;
        } else {
            mma_rescale_rows<D, MT, VOTE>(R, j, al0, al1);
        }
#pragma unroll
        for (int n = 0; n < NS; n++) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const float sub = i < 2 ? sub0 : sub1;
                s[j][n][i] = EX2 ? mma_exp2(fmaf(s[j][n][i], c, -sub))
                                 : mma_exp2(fmaf(s[j][n][i], L2E, -sub * L2E));
            }
            R.l[2 * j] += s[j][n][0] + s[j][n][1];
            R.l[2 * j + 1] += s[j][n][2] + s[j][n][3];
        }
    }
}

/* One chunk of NK keys in ks/vs for the warp's MT x 16 rows, whose Q
 * starts at qs in shared memory, or with QREG (MT = 1) is qf, the A
 * fragments in registers; row 2 j + h sees the chunk-relative keys
 * [lo, hi) of its index.  MASKED false: every key is valid for every row
 * (a full chunk of a past block), and the per-key compares and selects go.
 *
 * Every K and V fragment loaded from shared memory serves all MT m-tiles:
 * at MT = 2 a chunk costs 1.25 shared-memory wavefronts per mma instead of
 * 2, and the softmax between the two GEMMs has two independent rows per
 * register lane to hide its shuffle and exp latency (FlashAttention-2's
 * 32 rows per warp).  S = Q K^T takes Q's A fragments and K's B fragments
 * with ldmatrix (non-transposed, 4 tiles each: rows +0/+8 by bit 0 of
 * lane / 8, cols +0/+8 by bit 1 for Q; keys +0/+8 by bit 1, d +0/+8 by
 * bit 0 for K).  The accumulation order of every S and O element is the
 * same for any MT and Q source, so a row's result depends on NK (the
 * softmax step) but not on MT or QREG. */
template <int DT, int D, int MT, bool MASKED, int NK = MMA_KC, bool QREG = false>
__device__ __forceinline__ void mma_chunk(mma_acc<D, MT> &R, const unsigned short *qs,
                                          const uint32_t (*qf)[4], const unsigned short *ks,
                                          const unsigned short *vs, float scale,
                                          float scale_log2, const int *lo, const int *hi,
                                          int lane)
{
    static_assert(!QREG || MT == 1, "Q fragments in registers: one m-tile");
    const int LD = mma_cfg<D>::LD, KD = D / 16, NS = NK / 8;
    const int t = lane % 4, mi = lane / 8;
    float s[MT][NS][4];
    if (QREG) {
        /* K fragments as two 32-bit loads each, in the order the mma use
         * them: at the 168-register cap of k_mma_kv_narrow, the ldmatrix
         * form's four live registers per load made it spill. */
#pragma unroll
        for (int n = 0; n < NS; n++) {
            s[0][n][0] = s[0][n][1] = s[0][n][2] = s[0][n][3] = 0.0f;
            const unsigned short *kr = ks + (n * 8 + lane / 4) * LD + 2 * t;
#pragma unroll
            for (int kk = 0; kk < KD; kk++)
                mma16816<DT>(s[0][n], qf[kk], *(const uint32_t *)(kr + kk * 16),
                             *(const uint32_t *)(kr + kk * 16 + 8));
        }
    } else {
#pragma unroll
        for (int j = 0; j < MT; j++)
#pragma unroll
            for (int n = 0; n < NS; n++)
                s[j][n][0] = s[j][n][1] = s[j][n][2] = s[j][n][3] = 0.0f;
        const unsigned short *qa = qs + ((mi & 1) * 8 + lane % 8) * LD + (mi >> 1) * 8;
        const unsigned short *kb = ks + ((mi >> 1) * 8 + lane % 8) * LD + (mi & 1) * 8;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
            uint32_t af[MT][4];
#pragma unroll
            for (int j = 0; j < MT; j++) ldsm_x4(af[j], qa + j * 16 * LD + kk * 16);
#pragma unroll
            for (int p = 0; p < NS / 2; p++) {
                uint32_t b[4];
                ldsm_x4(b, kb + p * 16 * LD + kk * 16);
#pragma unroll
                for (int j = 0; j < MT; j++) {
                    mma16816<DT>(s[j][2 * p], af[j], b[0], b[1]);
                    mma16816<DT>(s[j][2 * p + 1], af[j], b[2], b[3]);
                }
            }
        }
    }
    mma_softmax<D, MT, NS, MASKED, !QREG, !QREG>(R, s, scale, scale_log2, lo, hi, t);
    /* O += P V, 16 keys per step; P's A fragment is S's C layout.  ldmatrix
     * .trans tiles of V: keys +0 / +8 (bit 0 of lane / 8), d +0 / +8 (bit 1). */
#pragma unroll
    for (int kc = 0; kc < NK / 16; kc++) {
        uint32_t pa[MT][4];
#pragma unroll
        for (int j = 0; j < MT; j++) {
            pa[j][0] = mma_pack<DT>(s[j][2 * kc][0], s[j][2 * kc][1]);
            pa[j][1] = mma_pack<DT>(s[j][2 * kc][2], s[j][2 * kc][3]);
            pa[j][2] = mma_pack<DT>(s[j][2 * kc + 1][0], s[j][2 * kc + 1][1]);
            pa[j][3] = mma_pack<DT>(s[j][2 * kc + 1][2], s[j][2 * kc + 1][3]);
        }
        const unsigned short *vr = vs + (kc * 16 + (mi & 1) * 8 + lane % 8) * LD + (mi >> 1) * 8;
#pragma unroll
        for (int dp = 0; dp < D / 16; dp++) {
            uint32_t b[4];
            ldsm_x4_trans(b, vr + dp * 16);
#pragma unroll
            for (int j = 0; j < MT; j++) {
                mma16816<DT>(R.o[j][2 * dp], pa[j], b[0], b[1]);
                mma16816<DT>(R.o[j][2 * dp + 1], pa[j], b[2], b[3]);
            }
        }
    }
}

/* Full row sums (the 4 lanes of a row hold partial sums). */
template <int D, int MT> __device__ __forceinline__ void mma_acc_finish(mma_acc<D, MT> &R)
{
#pragma unroll
    for (int r = 0; r < 2 * MT; r++) {
        R.l[r] += MOBA_SHFL_XOR(R.l[r], 1, 4);
        R.l[r] += MOBA_SHFL_XOR(R.l[r], 2, 4);
    }
}

/* Row r (index 2 j + h) of the warp's accumulator as O / l in the storage
 * dtype at dst (a row of D), and its lse at *lse; t: the lane's index in
 * its quad. */
template <int DT, int D, int MT>
__device__ __forceinline__ void mma_store_row(const mma_acc<D, MT> &R, int r, unsigned short *dst,
                                              float *lse, int t)
{
    const float inv = 1.0f / R.l[r];
    uint32_t *po = (uint32_t *)dst;
#pragma unroll
    for (int n = 0; n < D / 8; n++)
        po[n * 4 + t] = mma_pack<DT>(R.o[r / 2][n][2 * (r % 2)] * inv,
                                     R.o[r / 2][n][2 * (r % 2) + 1] * inv);
    if (t == 0) *lse = R.m[r] + __logf(R.l[r]);
}

/* Partials of the warp's rows row0 + 8 r + g (r < 2 MT; those below nrows)
 * of a key-centric tile whose first entry is e0: O / l in the storage
 * dtype at the entry's partial index, lse in f32 at the entry's index. */
template <int DT, int D, int MT>
__device__ __forceinline__ void mma_store_partials(const mma_acc<D, MT> &R, const gpu_args &a,
                                                   int e0, int row0, int nrows, int lane)
{
    const int g = lane / 4, t = lane % 4;
#pragma unroll
    for (int r = 0; r < 2 * MT; r++) {
        const int row = row0 + 8 * r + g; /* m-tile r / 2, half r % 2 */
        if (row >= nrows) continue;
        const int p = a.entries[e0 + row];
        mma_store_row<DT, D, MT>(R, r, (unsigned short *)a.part_o + (size_t)p * D,
                                 &a.part_lse[e0 + row], t);
    }
}

/* Key-centric partials, the twins of k_simt_kv (the same partials).
 * k_mma_kv_narrow's CTAs take contiguous runs of the key-centric tiles, so
 * consecutive tiles mostly belong to the same (block, kv head) list and a
 * resident block serves them all; the tiles are of equal cost, so equal
 * runs balance the persistent grid.  k_mma_kv_wide deals tile pairs
 * round-robin instead (see there).  FULL: every
 * block length is a multiple of MMA_KC, so no chunk is masked (the common
 * case: in causal attention only a sequence's last block can be short, and
 * it is never a past block).  Which kernel runs depends on the block size
 * (mma_kv_launch).
 *
 * k_mma_kv_narrow, 16 rows per warp with Q in registers, 3 CTAs per SM on
 * sm_90 (3 x 70 KB of K/V, <= 168 registers), 2 on sm_80.  A block of up
 * to MMA_KR keys is loaded into shared memory once (cp.async) and serves
 * all of the run's tiles of its list, and the warps then run with no
 * barrier at all; a longer block streams through the same buffer as a
 * ring of two MMA_KC-key chunks.  A tile is short work there, and what
 * hides its Q load is the number of independent warps.
 *
 * k_mma_kv_wide, for blocks of MMA_WIDE_MIN keys and more, and at D = 256
 * for every block size: FlashAttention-2's 32 rows per warp.  The CTA
 * takes its tiles two at a time (128 rows) when both are of one list,
 * gathers their Q rows into shared memory, and streams the block through a
 * ring of two MMA_KC-key chunks.  104 KB of shared memory at D = 128 and
 * up to 255 registers: 2 CTAs per SM on sm_90, 1 on sm_80.  Measured on an
 * H200 (docs/perf.md, v7): 1.18x k_mma_kv_narrow at 16384-key blocks,
 * 0.90x at 512, 0.76x at 128.  At D = 256 (mma_kc, mma_kv_mt) it takes one
 * tile of 16 rows a warp and chunks of 32 keys, 99 KB. */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#define MMA_KV_CTAS 2
#else
#define MMA_KV_CTAS 3
#endif
/* At D = 96 three CTAs' 168 registers spilled 28 bytes (sm_90a, not
 * measured on a GPU yet): two there. */
template <int D> constexpr int mma_kv_ctas() { return D == 96 ? 2 : MMA_KV_CTAS; }
template <int DT, int D, bool FULL>
__global__ void __launch_bounds__(MMA_THREADS, mma_kv_ctas<D>())
k_mma_kv_narrow(const unsigned short *q, const unsigned short *k, const unsigned short *v,
               gpu_args a)
{
    static_assert(D <= 128, "Q in registers: at D = 256 k_mma_kv_wide takes every block size");
    const int LD = mma_cfg<D>::LD;
    extern __shared__ __align__(16) unsigned short kv_smem[];
    unsigned short *ks = kv_smem, *vs = ks + MMA_KR * LD;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = lane / 4, t = lane % 4;
    const int total = a.tile_off[a.nlists];
    const int tbeg = (int)((int64_t)total * blockIdx.x / gridDim.x);
    const int tend = (int)((int64_t)total * (blockIdx.x + 1) / gridDim.x);
    if (tbeg >= tend) return;
    int lst = (int)gpu_find_list(a.tile_off, a.nlists, tbeg); /* 32-bit: gpu_kv_tile_in */
    /* The list whose block ks/vs hold; CTA-uniform, so it lives in shared
     * memory (a register less).  Written between the load's two barriers,
     * after every thread has read it for this tile. */
    __shared__ int resident;
    if (threadIdx.x == 0) resident = -1;
    __syncthreads();
    for (int tile = tbeg; tile < tend; tile++) {
        while (tile >= a.tile_off[lst + 1]) lst++;
        const gpu_kv_tile w = gpu_kv_tile_in(a, lst, tile, 1);
        const int kh = w.kh, e0 = w.e0, nrows = w.nrows;
        const gpu_block blk = w.blk;
        /* This thread's two rows: r0 = 16 warp + g and r1 = r0 + 8. */
        const int r0 = warp * 16 + g, r1 = r0 + 8;
        const bool live0 = r0 < nrows, live1 = r1 < nrows;
        const int p0 = live0 ? a.entries[e0 + r0] : 0;
        const int p1 = live1 ? a.entries[e0 + r1] : 0;
        uint32_t qf[D / 16][4];
        mma_load_a<D>(qf, live0 ? q + (size_t)gpu_entry_row(a, p0) * D : NULL,
                      live1 ? q + (size_t)gpu_entry_row(a, p1) * D : NULL, t);
        mma_acc<D, 1> R;
        mma_acc_init<D, 1>(R);
        if (blk.len <= MMA_KR) {
            if (resident != lst) {
                __syncthreads();
                mma_load_kv_async<D>(k, v, blk.start, a.Hk, kh, blk.len, ks, vs);
                if (threadIdx.x == 0) resident = lst;
                cp_async_wait<0>();
                __syncthreads();
            }
            for (int c0 = 0; c0 < blk.len; c0 += MMA_KC) {
                const int lo[2] = {0, 0}, hi[2] = {blk.len - c0, blk.len - c0};
                mma_chunk<DT, D, 1, !FULL, MMA_KC, true>(R, NULL, qf, ks + c0 * LD,
                                                         vs + c0 * LD, a.scale, a.scale_log2, lo, hi, lane);
            }
        } else {
            /* A longer block streams through the buffer's two halves as a
             * ring of MMA_KC-key chunks, the next loading while this one
             * is computed. */
            __syncthreads();
            if (threadIdx.x == 0) resident = -1;
            mma_load_kv_async<D>(k, v, blk.start, a.Hk, kh, MMA_KC, ks, vs);
            for (int c0 = 0, c = 0; c0 < blk.len; c0 += MMA_KC, c++) {
                mma_ring_step<D>(k, v, blk.start, a.Hk, kh, blk.len, c0, c, ks, vs, MMA_KC * LD);
                const int lo[2] = {0, 0}, hi[2] = {blk.len - c0, blk.len - c0};
                mma_chunk<DT, D, 1, !FULL, MMA_KC, true>(R, NULL, qf,
                                                         ks + (c & 1) * MMA_KC * LD,
                                                         vs + (c & 1) * MMA_KC * LD, a.scale,
                                                         a.scale_log2, lo, hi, lane);
            }
        }
        mma_acc_finish<D, 1>(R);
        /* Written out rather than mma_store_partials, which re-reads the
         * entries: with it the FULL instance spilled at 168 registers.
         * The partial indices are read again all the same (__ldcg, which
         * is not merged with the loads above): the lse's entry index e0
         * is live through the tile now, and with p0 and p1 beside it both
         * instances spilled at 168 registers. */
        const float inv0 = 1.0f / R.l[0], inv1 = 1.0f / R.l[1];
        const int q0 = live0 ? __ldcg(&a.entries[e0 + r0]) : 0;
        const int q1 = live1 ? __ldcg(&a.entries[e0 + r1]) : 0;
        uint32_t *po0 = (uint32_t *)((unsigned short *)a.part_o + (size_t)q0 * D);
        uint32_t *po1 = (uint32_t *)((unsigned short *)a.part_o + (size_t)q1 * D);
#pragma unroll
        for (int n = 0; n < D / 8; n++) {
            if (live0) po0[n * 4 + t] = mma_pack<DT>(R.o[0][n][0] * inv0, R.o[0][n][1] * inv0);
            if (live1) po1[n * 4 + t] = mma_pack<DT>(R.o[0][n][2] * inv1, R.o[0][n][3] * inv1);
        }
        if (t == 0) {
            if (live0) a.part_lse[e0 + r0] = R.m[0] + __logf(R.l[0]);
            if (live1) a.part_lse[e0 + r1] = R.m[1] + __logf(R.l[1]);
        }
    }
}

/* k_mma_kv_narrow's shared memory: a resident block of K and V. */
template <int D> constexpr int mma_kv_narrow_smem() { return 2 * MMA_KR * mma_cfg<D>::LD * 2; }

/* k_mma_kv_wide's shared memory: a ring of two K and two V chunks, then
 * the Q rows of its MT tiles. */
template <int D> constexpr int mma_kv_wide_smem()
{
    return (4 * mma_kc<D>() + mma_kv_mt<D>() * GPU_TILE_ROWS) * mma_cfg<D>::LD * 2;
}

template <int DT, int D, bool FULL>
__global__ void __launch_bounds__(MMA_THREADS, 2)
k_mma_kv_wide(const unsigned short *q, const unsigned short *k, const unsigned short *v,
              gpu_args a)
{
    const int LD = mma_cfg<D>::LD, KC = mma_kc<D>(), MT = mma_kv_mt<D>();
    extern __shared__ __align__(16) unsigned short kv_smem[];
    /* Ring slot c of K at ks + c KC LD, of V at vs + c KC LD. */
    unsigned short *ks = kv_smem, *vs = ks + 2 * KC * LD, *qs = vs + 2 * KC * LD;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const unsigned short *qw = qs + 16 * MT * warp * LD;
    /* Groups of MT tiles dealt round-robin: group u (tiles MT u, ...) to
     * CTA u mod grid, so the CTAs running at one time work on neighbouring
     * tiles of one list and share its K/V chunks through L2.  (Contiguous
     * runs per CTA, as k_mma_kv_narrow takes them, put every CTA on a list
     * of its own: at 16384-key blocks, 8 MB of K/V per list, the lists in
     * flight streamed from HBM.)  A group that straddles two lists runs as
     * one tile at a time (gpu_kv_tile_at). */
    const int total = a.tile_off[a.nlists];
    int lst = -1; /* the last group's list (gpu_list_from) */
    for (int u = blockIdx.x; MT * u < total; u += gridDim.x)
    for (int tile = MT * u, tlast = min(MT * u + MT, total), ntl; tile < tlast; tile += ntl) {
        lst = gpu_list_from(a, lst, tile);
        const gpu_kv_tile w = gpu_kv_tile_pair(a, lst, tile, tlast);
        const int kh = w.kh, e0 = w.e0, nrows = w.nrows;
        const gpu_block blk = w.blk;
        ntl = w.ntl;
        const int wrows = nrows - 16 * MT * warp; /* this warp's rows, when > 0 */
        __syncthreads(); /* every warp is past the last group's Q and K/V */
        mma_load_q_async<D>(qs, MT * GPU_TILE_ROWS, nrows, q, a.entries + e0, a, 0, 0, 0);
        mma_load_kv_async<D>(k, v, blk.start, a.Hk, kh, min(KC, blk.len), ks, vs);
        mma_acc<D, MT> R;
        mma_acc_init<D, MT>(R);
        int lo[2 * MT], hi[2 * MT];
#pragma unroll
        for (int r = 0; r < 2 * MT; r++) lo[r] = 0;
        for (int c0 = 0, c = 0; c0 < blk.len; c0 += KC, c++) {
            mma_ring_step<D>(k, v, blk.start, a.Hk, kh, blk.len, c0, c, ks, vs, KC * LD);
            if (wrows > 0)
                for (int u = 0; u < KC && c0 + u < blk.len; u += MMA_KV_STEP) {
#pragma unroll
                    for (int r = 0; r < 2 * MT; r++) hi[r] = blk.len - c0 - u;
                    mma_chunk<DT, D, MT, !FULL, MMA_KV_STEP>(
                        R, qw, NULL, ks + ((c & 1) * KC + u) * LD,
                        vs + ((c & 1) * KC + u) * LD, a.scale, a.scale_log2, lo, hi, lane);
                }
        }
        if (wrows > 0) {
            mma_acc_finish<D, MT>(R);
            mma_store_partials<DT, D, MT>(R, a, e0, 16 * MT * warp, nrows, lane);
        }
    }
}

/* k_mma_own's shared memory.  During the own-block attention: the tile's
 * Q rows and a ring of two K/V chunks.  Once that is done, the same space
 * takes MMA_OWN_SLOTS slots of partials; one more slot, the early one,
 * lies past it: it is filled with Q and the first chunk, and is left out
 * of the launch's size where a CTA may not opt in to it
 * (gpu_args.own_early).  The own-block result stays in the registers that
 * computed it, so that the space it took (35 KB in f32 at D = 128) holds
 * two more slots: at top-8 a row's seven partials are all asked for at
 * once.
 *
 * A slot holds one partial of each of the tile's 64 rows, row-major, and
 * each warp copies and reads only its own 16 rows, so a warp barrier is
 * all the merge synchronises on.  Row r's 16-byte vectors are swizzled
 * (mma_own_vec: vector x at x ^ (r mod 8) where D / 8 is a multiple of 8),
 * so that the 8 rows an ldmatrix tile reads meet distinct bank groups.
 *
 * A slot's row is mma_own_dm<D>() columns: at D = 256 the merge runs in
 * four passes of 64 columns, each over all of a row's partials, so that
 * the pass's sums (32 f32 a thread) fit beside the own result (128 until
 * the passes consume it); with passes of 128 columns k_mma_own spilled
 * 104 bytes at 255 registers. */
#define MMA_OWN_SLOTS 6
template <int D> __host__ __device__ constexpr int mma_own_dm() { return D > 128 ? 64 : D; }
template <int D> struct mma_own_smem {
    enum { VECS = GPU_TILE_ROWS * mma_own_dm<D>() / 8 }; /* 16-byte vectors per slot */
    union {
        struct {
            unsigned short q[GPU_TILE_ROWS * mma_cfg<D>::LD];
            struct {
                unsigned short k[mma_kc<D>() * mma_cfg<D>::LD], v[mma_kc<D>() * mma_cfg<D>::LD];
            } kv[2]; /* a ring of two chunks: the next loads during this one */
        } att;
        uint4 slot[MMA_OWN_SLOTS][VECS];
    } u;
    uint4 early[VECS];
};

/* Shared memory of k_mma_own, with or without the early slot: 112 KB or
 * 96 KB at D = 128, so that two CTAs fit an sm_90 SM (228 KB, 1 KB of it
 * reserved per CTA) either way. */
template <int D> constexpr int mma_own_smem_size(bool early)
{
    return early ? (int)sizeof(mma_own_smem<D>) : (int)offsetof(mma_own_smem<D>, early);
}

/* Whether the early slot leaves two CTAs an SM (107 KB at D = 256). */
template <int D> constexpr bool mma_own_early_fits()
{
    return 2 * (mma_own_smem_size<D>(true) + 1024) <= 228 * 1024;
}

/* A row's first eight slot ids and first eight partials' entry indices
 * (where their lse is), read by k_mma_own before its own-block attention:
 * they do not depend on it, and read after it they were two memory
 * latencies in series at the head of every row's merge (1.02x, docs/
 * perf.md CUDA v21).  The lse themselves are asked for once the ids are
 * in (mma_own_row_slots), after the K/V loads. */
struct mma_merge_pre {
    int j[8];
    int e[8]; /* by partial index (past slot), not by slot */
};

__device__ __forceinline__ void mma_merge_prefetch(const gpu_args &a, int64_t qrow,
                                                   int64_t erow, mma_merge_pre &pre)
{
    const int Km1 = a.K - 1;
    const int32_t *selrow = a.sel + qrow * a.K;
#pragma unroll
    for (int x = 0; x < 8; x++) pre.j[x] = x < a.K ? selrow[x] : -1;
    /* As 16-byte vectors (gpu_ent_pitch); past Km1 unused. */
    const int4 *ent = (const int4 *)(a.part_ent + erow);
    const int4 z = make_int4(0, 0, 0, 0), e0 = Km1 > 0 ? ent[0] : z, e1 = Km1 > 4 ? ent[1] : z;
    pre.e[0] = e0.x, pre.e[1] = e0.y, pre.e[2] = e0.z, pre.e[3] = e0.w;
    pre.e[4] = e1.x, pre.e[5] = e1.y, pre.e[6] = e1.z, pre.e[7] = e1.w;
}

/* The row's slots in use (ns) and where the own block sits among them
 * (ip, -1 for none).  The first eight ids come from pre, counted with
 * selects: folded into the loop below, they were compiled as its later
 * turns are, a guarded load and a branch region per id (docs/perf.md,
 * CUDA v39-v40).  Past them eight ids are loaded at once: read one after
 * the other behind the loop's break, the two dependent loads per slot put
 * k_mma_own's warps on long-scoreboard stalls for half of its time (ncu,
 * docs/perf.md, CUDA v9). */
__device__ __forceinline__ void mma_merge_slots(const gpu_args &a, const int32_t *selrow, int b,
                                                const mma_merge_pre &pre, int &ns, int &ip)
{
    ns = 0;
    ip = -1;
    bool run = true; /* no empty slot yet (pre.j is -1 past K) */
#pragma unroll
    for (int x = 0; x < 8; x++) {
        run = run && pre.j[x] >= 0;
        ip = run && pre.j[x] == b ? x : ip;
        ns += run;
    }
    for (int s0 = 8; s0 == ns && s0 < a.K; s0 += 8) {
        int j[8];
#pragma unroll
        for (int x = 0; x < 8; x++) j[x] = s0 + x < a.K ? selrow[s0 + x] : -1;
#pragma unroll
        for (int x = 0; x < 8; x++) {
            if (ns != s0 + x || j[x] < 0) continue; /* past the first empty slot */
            if (j[x] == b) ip = ns;
            ns++;
        }
    }
}

/* One of the thread's two rows in k_mma_own's merge: rows g and g + 8 of
 * its warp's 16, those of the C fragments that hold the own-block result.
 * Known before the attention: the row's partials (np) and the own
 * block's place among them (ip: the partials before it; -1 for none).
 * A dead row takes row 0's addresses, so that its reads stay in bounds;
 * it copies and stores nothing. */
struct mma_own_row {
    int64_t qrow;
    int np, ip;
    bool live;
    float pl[8]; /* the first eight partials' lse (-inf past K - 1) */
};

/* The row's address and liveness (t: its token in the sequence, whose
 * first is start; row 0's for a dead row), and its ids and lse asked for
 * (pre). */
__device__ __forceinline__ void mma_own_row_start(const gpu_args &a, int64_t start, int h,
                                                  bool live, int t, mma_own_row &w,
                                                  mma_merge_pre &pre)
{
    w.live = live;
    w.qrow = (start + t) * a.Hq + h;
    mma_merge_prefetch(a, w.qrow, gpu_ent_row(&a, start + t, h), pre);
}

/* The row's slots from the ids (b: its own block), and its first lse
 * asked for: where they are first needed, so that the K/V loads are
 * issued before the wait for them. */
__device__ __forceinline__ void mma_own_row_slots(const gpu_args &a, int b,
                                                  const mma_merge_pre &pre, mma_own_row &w)
{
    int ns;
    mma_merge_slots(a, a.sel + w.qrow * a.K, b, pre, ns, w.ip);
    w.np = ns - (w.ip >= 0);
#pragma unroll
    for (int x = 0; x < 8; x++) w.pl[x] = x < a.K - 1 ? a.part_lse[pre.e[x]] : -INFINITY;
}

/* Vector x of row rr (0-15) of the warp's rows in a slot, swizzled
 * within the row: by rr mod 8 where a row is whole 128-byte lines (D / 8 a
 * multiple of 8), else by rr mod 4, which keeps x in its group of four
 * (D = 32, 96; there the rows' odd offsets spread the 8 rows of an
 * ldmatrix tile over 4 bank groups, 2 rows each). */
template <int D> __device__ __forceinline__ int mma_own_vec(int warp, int rr, int x)
{
    static_assert(D % 32 == 0, "a row of 16-byte vectors in groups of four");
    constexpr int SW = (D / 8) % 8 == 0 ? 7 : 3;
    return (warp * 16 + rr) * (D / 8) + (x ^ (rr & SW));
}

/* Partial c goes through slot c mod nslots, where slot 0 is the early one
 * when there is one. */
template <int D>
__device__ __forceinline__ uint4 *mma_own_slot(mma_own_smem<D> &sm, int nslots, int c)
{
    if (nslots > MMA_OWN_SLOTS) {
        const int s = c % (MMA_OWN_SLOTS + 1);
        return s == 0 ? sm.early : sm.u.slot[s - 1];
    }
    return sm.u.slot[c % MMA_OWN_SLOTS];
}

/* The thread's share (vectors t, t + 4, ...) of merge pass P's columns
 * of partial c of both its rows, those that have it, into the partial's
 * slot (cp.async, not committed).  early: partial 0 before the row's
 * count is known, for every live row where K > 1 (in bounds: the
 * partials have K - 1 places a row); one the row does not use is waited
 * for and left. */
template <int D, int P = 0>
__device__ __forceinline__ void mma_own_fill(mma_own_smem<D> &sm, const gpu_args &a,
                                             const mma_own_row (&w)[2], int nslots, int c,
                                             int warp, int lane, bool early = false)
{
    const int DM = mma_own_dm<D>();
    uint4 *s = mma_own_slot<D>(sm, nslots, c);
#pragma unroll
    for (int j = 0; j < 2; j++) {
        if (!w[j].live || (early ? a.K < 2 : c >= w[j].np)) continue;
        const uint4 *p =
            (const uint4 *)((const unsigned short *)a.part_o +
                            ((size_t)w[j].qrow * (a.K - 1) + c) * D + P * DM);
#pragma unroll
        for (int i = 0; i < DM / 32; i++) {
            const int x = lane % 4 + 4 * i;
            cp_async16(s + mma_own_vec<DM>(warp, lane / 4 + 8 * j, x), p + x);
        }
    }
}

/* Waits for partial c's group: every group stands for one partial index
 * (empty where no row of the thread has it), so nslots - 1 later ones may
 * still be in flight. */
__device__ __forceinline__ void mma_own_wait(int nslots)
{
    if (nslots > MMA_OWN_SLOTS)
        cp_async_wait<MMA_OWN_SLOTS>();
    else
        cp_async_wait<MMA_OWN_SLOTS - 1>();
}

/* Merges the thread's two rows with their partials in slot order (the own
 * block after the ip partials before it) and writes out / lse, pass P's
 * columns (mma_own_dm): the arithmetic of gpu_merge_row, value for value,
 * so the result does not change.  The partials come through the slots in the C-fragment layout
 * of the own result (ldmatrix), which the caller asked for as far as
 * nslots; partial c + nslots is asked for as soon as the warp has summed
 * c, into c's slot.  (v38 merged two threads per row from 16-byte
 * vectors, with the own result in shared memory in f32.)  Out leaves
 * through the warp's rows of slot 0 as 16-byte vectors. */
template <int DT, int D, int P = 0>
__device__ __forceinline__ void mma_own_merge(const gpu_args &a, mma_own_smem<D> &sm,
                                              const mma_acc<D, 1> &R, const mma_own_row (&w)[2],
                                              int nslots, int64_t tok0, int nrows, int h,
                                              int warp, int lane, unsigned short *out,
                                              float *lse)
{
    const int DM = mma_own_dm<D>(), ND = DM / 8, N0 = P * ND;
    float M[2], L[2], own[2];
#pragma unroll
    for (int j = 0; j < 2; j++) {
        own[j] = R.m[j] + __logf(R.l[j]);
        M[j] = own[j];
        L[j] = 0.0f;
        /* Past the first eight only (K > 9): a division is no matter. */
        const int32_t *ent = a.part_ent + gpu_ent_row(&a, w[j].qrow / a.Hq, h);
        for (int c0 = 0; c0 < w[j].np; c0 += 8) {
            float pl[8];
#pragma unroll
            for (int x = 0; x < 8; x++)
                pl[x] = c0 + x >= w[j].np ? -INFINITY
                        : c0 == 0          ? w[j].pl[x]
                                           : a.part_lse[ent[c0 + x]];
#pragma unroll
            for (int x = 0; x < 8; x++) M[j] = fmaxf(M[j], pl[x]);
        }
    }
    float o[ND][4];
#pragma unroll
    for (int n = 0; n < ND; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    const int npmax = __reduce_max_sync(0xffffffffu, max(w[0].np, w[1].np));
    /* ldmatrix tiles: rows 0-7 and 8-15 of vector x, then of x + 1. */
    const int lrr = lane % 8 + 8 * ((lane / 8) % 2), lx = lane / 16;
    for (int c = 0;; c++) {
#pragma unroll
        for (int j = 0; j < 2; j++) {
            if (c != w[j].ip) continue;
            const float e = __expf(own[j] - M[j]), el = e / R.l[j];
            L[j] += e;
#pragma unroll
            for (int n = 0; n < ND; n++) {
                o[n][2 * j] = fmaf(el, R.o[0][N0 + n][2 * j], o[n][2 * j]);
                o[n][2 * j + 1] = fmaf(el, R.o[0][N0 + n][2 * j + 1], o[n][2 * j + 1]);
            }
        }
        if (c == npmax) break;
        float wc[2];
#pragma unroll
        for (int j = 0; j < 2; j++) {
            /* The first eight lse from the registers that hold them. */
            float pc = w[j].pl[0];
#pragma unroll
            for (int x = 1; x < 8; x++) pc = c == x ? w[j].pl[x] : pc;
            if (c >= 8) pc = a.part_lse[a.part_ent[gpu_ent_row(&a, w[j].qrow / a.Hq, h) + c]];
            wc[j] = __expf(pc - M[j]);
            if (c < w[j].np) L[j] += wc[j];
        }
        mma_own_wait(nslots);
        __syncwarp(); /* the other lanes' copies of partial c are in */
        const unsigned short *s = (const unsigned short *)mma_own_slot<D>(sm, nslots, c);
#pragma unroll
        for (int x = 0; x < ND; x += 2) {
            uint32_t f[4];
            ldsm_x4(f, s + 8 * mma_own_vec<DM>(warp, lrr, x + lx));
#pragma unroll
            for (int j = 0; j < 2; j++) {
                if (c >= w[j].np) continue;
#pragma unroll
                for (int u = 0; u < 2; u++) {
                    const uint32_t b = f[2 * u + j];
                    o[x + u][2 * j] =
                        fmaf(wc[j], gpu_to_f32<DT>((unsigned short)b), o[x + u][2 * j]);
                    o[x + u][2 * j + 1] =
                        fmaf(wc[j], gpu_to_f32<DT>((unsigned short)(b >> 16)), o[x + u][2 * j + 1]);
                }
            }
        }
        __syncwarp(); /* every lane has read the slot before it is refilled */
        if (c + nslots < npmax) mma_own_fill<D, P>(sm, a, w, nslots, c + nslots, warp, lane);
        cp_async_commit();
    }
    cp_async_wait<0>();
    __syncwarp(); /* slot 0's rows of this warp are free */
    uint32_t *st = (uint32_t *)sm.u.slot[0];
#pragma unroll
    for (int j = 0; j < 2; j++) {
        const float inv = 1.0f / L[j];
#pragma unroll
        for (int n = 0; n < ND; n++)
            st[mma_own_vec<DM>(warp, lane / 4 + 8 * j, n) * 4 + lane % 4] =
                mma_pack<DT>(o[n][2 * j] * inv, o[n][2 * j + 1] * inv);
        if (P == 0 && lse && w[j].live && lane % 4 == 0) lse[w[j].qrow] = M[j] + __logf(L[j]);
    }
    __syncwarp();
#pragma unroll
    for (int v = lane; v < 16 * ND; v += 32) {
        const int rr = v / ND, x = v % ND;
        if (rr < nrows)
            *(uint4 *)(out + ((size_t)(tok0 + rr) * a.Hq + h) * D + P * DM + x * 8) =
                sm.u.slot[0][mma_own_vec<DM>(warp, rr, x)];
    }
}

/* Merge pass P, then the passes after it, each with its columns of the
 * row's first nslots partials asked for before it (pass 0's by the
 * caller). */
template <int DT, int D, int P>
__device__ __forceinline__ void mma_own_passes(const gpu_args &a, mma_own_smem<D> &sm,
                                               const mma_acc<D, 1> &R, const mma_own_row (&w)[2],
                                               int nslots, int64_t tok0, int nrows, int h,
                                               int warp, int lane, unsigned short *out,
                                               float *lse)
{
    mma_own_merge<DT, D, P>(a, sm, R, w, nslots, tok0, nrows, h, warp, lane, out, lse);
    if constexpr ((P + 1) * mma_own_dm<D>() < D) {
        __syncwarp(); /* every lane has stored its out vectors from slot 0 */
        for (int c = 0; c < nslots; c++) {
            mma_own_fill<D, P + 1>(sm, a, w, nslots, c, warp, lane);
            cp_async_commit();
        }
        mma_own_passes<DT, D, P + 1>(a, sm, R, w, nslots, tok0, nrows, h, warp, lane, out, lse);
    }
}

/* Own block + merge, the twin of k_simt_own: one CTA per (query tile, query
 * head); each row attends its own block's keys [b S, hi) (hi = the row + 1
 * when causal), then merges its partials in slot order exactly as the SIMT
 * kernel does.  Q waits in shared memory (read with ldmatrix, as in
 * k_mma_kv_wide), the key chunks stream through a ring of two, the first
 * two loaded together (a tile's own keys are mostly two chunks: the upper
 * tile of a 128-key block).  Partial 0 goes to the early slot with the
 * first chunk, partials 1-6 (0-5 without it) into the attention's space
 * right after it: 112 KB at D = 128 with the early slot, 96 KB without;
 * 2 CTAs per SM either way. */
template <int DT, int D>
__global__ void __launch_bounds__(MMA_THREADS, 2)
k_mma_own(const unsigned short *q, const unsigned short *k, const unsigned short *v,
          unsigned short *out, float *lse, gpu_args a)
{
    const int LD = mma_cfg<D>::LD, KC = mma_kc<D>();
    extern __shared__ __align__(16) unsigned char own_smem[];
    mma_own_smem<D> &sm = *(mma_own_smem<D> *)own_smem;
    const gpu_qtile tile = a.qtiles[blockIdx.x];
    const int h = a.h0 + blockIdx.y, kh = h / a.group;
    /* The sequence's start from the tile, its length (non-causal rows
     * only) from a.seqs: a load behind the tile's, at the head of every
     * CTA's chain of latencies, which causal CTAs now skip. */
    const int64_t start = tile.start;
    const int len = a.causal ? 0 : a.seqs[tile.seq].len;
    const int S = a.S;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = lane / 4;
    const int r0 = warp * 16 + g, r1 = r0 + 8;
    const bool live0 = r0 < tile.rows, live1 = r1 < tile.rows;
    const int t0 = tile.row0 + (live0 ? r0 : 0), t1 = tile.row0 + (live1 ? r1 : 0);
    const int b0 = t0 / S, b1 = t1 / S;
    const int last = tile.row0 + tile.rows - 1;
    const int klo = (tile.row0 / S) * S;
    const int khi = a.causal ? last + 1 : min((last / S + 1) * S, len);
    /* Each row's keys, sequence relative: its own block, causal. */
    const int lo0 = b0 * S, hi0 = a.causal ? t0 + 1 : min(lo0 + S, len);
    const int lo1 = b1 * S, hi1 = a.causal ? t1 + 1 : min(lo1 + S, len);
    const int kstride = (int)(sizeof sm.u.att.kv[0] / sizeof(unsigned short));
    const int nslots = MMA_OWN_SLOTS + (a.own_early != 0);
    mma_acc<D, 1> R;
    mma_acc_init<D, 1>(R);
    mma_load_q_async<D>(sm.u.att.q, GPU_TILE_ROWS, tile.rows, q, NULL, a, start + tile.row0, a.Hq,
                        h);
    mma_own_row w[2];
    {
        mma_merge_pre pre[2];
        mma_own_row_start(a, start, h, live0, t0, w[0], pre[0]);
        mma_own_row_start(a, start, h, live1, t1, w[1], pre[1]);
        /* Q, partial 0 and the first chunk are one cp.async group; the
         * second chunk another. */
        if (nslots > MMA_OWN_SLOTS) mma_own_fill<D>(sm, a, w, nslots, 0, warp, lane, true);
        mma_load_kv_async<D>(k, v, start + klo, a.Hk, kh, min(KC, khi - klo),
                             sm.u.att.kv[0].k, sm.u.att.kv[0].v);
        if (khi - klo > KC)
            mma_load_kv_async<D>(k, v, start + klo + KC, a.Hk, kh,
                                 min(KC, khi - klo - KC), sm.u.att.kv[1].k,
                                 sm.u.att.kv[1].v);
        mma_own_row_slots(a, b0, pre[0], w[0]);
        mma_own_row_slots(a, b1, pre[1], w[1]);
    }
    for (int u0 = klo, c = 0; u0 < khi; u0 += KC, c++) {
        mma_ring_step<D, true>(k, v, start + klo, a.Hk, kh, khi - klo, u0 - klo, c,
                               sm.u.att.kv[0].k, sm.u.att.kv[0].v, kstride);
        /* Softmax steps of NK keys: at D = 256, 16 (S in 8 registers a
         * thread; with 32, O's 128 beside it spilled). */
        const int NK = D > 128 ? 16 : KC;
#pragma unroll
        for (int s0 = 0; s0 < KC; s0 += NK) {
            if (s0 > 0 && u0 + s0 >= khi) break;
            const int lo[2] = {lo0 - u0 - s0, lo1 - u0 - s0}, hi[2] = {hi0 - u0 - s0, hi1 - u0 - s0};
            mma_chunk<DT, D, 1, true, NK>(R, sm.u.att.q + 16 * warp * LD, NULL,
                                          sm.u.att.kv[c & 1].k + s0 * LD,
                                          sm.u.att.kv[c & 1].v + s0 * LD, a.scale, a.scale_log2,
                                          lo, hi, lane);
        }
    }
    mma_acc_finish<D, 1>(R);
    __syncthreads(); /* Q and the K/V chunks are dead: their space takes the slots */
    for (int c = nslots - MMA_OWN_SLOTS; c < nslots; c++) {
        mma_own_fill<D>(sm, a, w, nslots, c, warp, lane);
        cp_async_commit();
    }
    mma_own_passes<DT, D, 0>(a, sm, R, w, nslots, start + tile.row0 + warp * 16,
                             tile.rows - warp * 16, h, warp, lane, out, lse);
}

#endif /* MOBA_GPU_HAVE_MMA */

#endif /* MOBA_GPU_ATTEND_MMA_CUH */
