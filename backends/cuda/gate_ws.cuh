/*
 * Warp-specialized tensor-core gating (CUDA sm_90a, f16/bf16, D = 64 or
 * 128): k_gate_mma's scores and ranking, with the two on different warps.
 *
 * Why: k_gate_mma's warps each score their 16 rows (query fragments and
 * accumulators: 64 of its 128 registers), stage them and rank them, so
 * the register file holds four warps per scheduler, and those wait on
 * fixed-latency chains (the insertion network, the filter) with nothing
 * else to issue: 46 % of the cycles issued at 512K (CUDA v31-v34).  The
 * ranking needs neither fragments nor accumulators.  Here one warpgroup
 * (the scorer) holds the 128 rows' fragments, loads the centroid tiles
 * and stages each tile's scores; eight ranking warps, at half the
 * registers, only filter and insert.  setmaxnreg moves the registers:
 * 2 CTAs of 384 threads per SM, six warps per scheduler, of which four
 * rank without ever waiting at a CTA barrier or on a wgmma.
 *
 * The scores go through two staging slots ([128][GTC_SLD] floats each,
 * gtc_stage's layout) on mbarriers: the scorer fills slot k % 2 once the
 * rankers have released it (empty: one arrival per ranking warp) and
 * announces it (full: one per scorer thread), so it scores tile k + 1
 * while tile k is ranked.  Rankers keep v29's layout: lane l of ranking
 * warp w ranks row 16 w + l / 2, columns 32 (l & 1) .. + 31 of each tile.
 */
#ifndef MOBA_GPU_GATE_WS_CUH
#define MOBA_GPU_GATE_WS_CUH

#include "gate_mma.cuh"

#if MOBA_GPU_HAVE_MMA

#include <cuda.h> /* CUtensorMap (the type only: no driver call here) */

#define GWS_RANKERS 256 /* threads that rank: warps 0-7, 2 lanes per row */
#define GWS_SCORERS 128 /* the scoring warpgroup: warps 8-11             */
#define GWS_THREADS (GWS_RANKERS + GWS_SCORERS)
/* Registers per thread after setmaxnreg.  2 CTAs per SM launch at 65536
 * / (2 x 384) rounded down to 8, 80; the scorer holds 2 x D / 4 words of
 * fragments (64 at D = 128) and 16 accumulators (gws_score_rows), the
 * rankers their lists.  The scorer's increase is served from what the
 * rankers release, so the two may not pass the launch's total.  Both
 * budgets are tight: what the rankers hold across their loop is read
 * again from shared memory (gws_ld, gws_tid) rather than kept, which is
 * what took them from 4-36 bytes of spills to none; with lists of 8 (the
 * passes of top-10 and up) they still spill, so those stay on
 * k_gate_mma (gate.cu). */
#define GWS_LAUNCH_REGS (65536 / (2 * GWS_THREADS) / 8 * 8)
#define GWS_RANK_REGS 64
#define GWS_SCORE_REGS 112
static_assert(GWS_RANKERS * GWS_RANK_REGS + GWS_SCORERS * GWS_SCORE_REGS <=
                  GWS_LAUNCH_REGS * GWS_THREADS,
              "setmaxnreg: the scorer would wait for registers no one frees");

/* At a 1024-byte aligned base (wg_smem_align), as gtc_smem. */
template <int D> struct gws_smem {
    unsigned short cs[2][GTC_BC * D];
    __align__(16) float sc[2][GTC_ROWS * GTC_SLD]; /* staging slots */
    gtc_key_t bound[GTC_ROWS];
    int n[GTC_ROWS];
    int b[GTC_ROWS], want[GTC_ROWS];
    uint64_t full[2], empty[2];
    uint64_t cfull[2]; /* a centroid buffer's TMA boxes have landed */
    gpu_qtile tile; /* the CTA's, for the rankers (gws_ld) */
    moba_seq sq;
    int npass, ntile;
};

/* The rankers read the CTA's facts from shared memory where they use
 * them, through volatile loads that nvcc may not hoist: held in registers
 * from the kernel's start or across the ranking loop, they made ptxas
 * spill at the rankers' 64 registers. */
__device__ __forceinline__ int gws_ld(const int *p) { return *(const volatile int *)p; }
__device__ __forceinline__ int64_t gws_ld(const int64_t *p) { return *(const volatile int64_t *)p; }
__device__ __forceinline__ gtc_key_t gws_ld(const gtc_key_t *p)
{
    return *(const volatile gtc_key_t *)p;
}

__device__ __forceinline__ gpu_qtile gws_ld_tile(const gpu_qtile *p)
{
    gpu_qtile t;
    t.seq = gws_ld(&p->seq);
    t.row0 = gws_ld(&p->row0);
    t.rows = gws_ld(&p->rows);
    t.start = gws_ld(&p->start);
    return t;
}

__device__ __forceinline__ moba_seq gws_ld_seq(const moba_seq *p)
{
    moba_seq q;
    q.start = gws_ld(&p->start);
    q.len = gws_ld(&p->len);
    q.nb = gws_ld(&p->nb);
    q.block_offset = gws_ld(&p->block_offset);
    return q;
}

/* The centroids' tensor map (gate.cu: gpu_tma_encode_rows over [nblocks,
 * Hk, D] of the 16-bit copy, boxes of 64 columns x 1 head x GTC_BC
 * blocks), passed as a __grid_constant__ parameter; on is 0 where it could
 * not be built, and the scorer's threads then copy with cp.async.  Why:
 * the scorer's time per tile is on the rankers' path (v35: its copies
 * issued one address at a time cost 12 % at 512K); a tile by TMA is one
 * thread's D / 64 boxes and no per-thread addresses. */
struct gws_tma {
    CUtensorMap c;
    int on;
};

/* Tile of blocks row0 .. + GTC_BC - 1 (global block rows, kv head kh)
 * into buffer cs, announced on bar; one thread calls it.  Rows past the
 * tensor come as zeros, rows past the sequence as other blocks' data:
 * neither is ranked. */
template <int D>
__device__ __forceinline__ void gws_tma_tile(unsigned short *cs, const gws_tma &tm, int kh,
                                             int row0, uint64_t *bar)
{
    wg_mbar_arrive_tx(bar, GTC_BC * D * 2);
#pragma unroll
    for (int b = 0; b < D / 64; b++)
        wg_tma_load3((unsigned char *)cs + b * GTC_BC * 128, &tm.c, 64 * b, kh, row0, bar);
}

/* The scores of one 64-row half for the scorer's warp: gtc_score_tile's
 * wgmma as two chains of 32 columns, so that 16 accumulators are live
 * instead of 32, which is what lets the fragments of 128 rows fit the
 * scorer's registers without spilling. */
template <int DT, int D>
__device__ __forceinline__ void gws_score_rows(const uint32_t (*qf)[4], const unsigned short *cs,
                                               float *sw, int lane)
{
    const uint64_t b0 = wg_desc_sw128(cs, 16, 1024);
#pragma unroll
    for (int nh = 0; nh < 2; nh++) {
        float d[16];
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++)
            wgmma_m64n32k16<DT, 0>(
                d, qf[kk],
                wg_desc_step(b0, nh * 32 * 128 + (kk / 4) * GTC_BC * 128 + (kk % 4) * 32), kk > 0);
        wg_commit();
        wg_wait<0>();
#pragma unroll
        for (int n = 0; n < 4; n++) gtc_stage(sw, d + 4 * n, 4 * nh + n, lane);
    }
}

/* The scorer: each tile's centroids (cp.async, a tile ahead, double
 * buffered as in k_gate_mma, with a barrier of its own 128 threads), the
 * scores of both 64-row halves on
 * wgmma, staged into slot k % 2. */
template <int DT, int D, bool TMA>
__device__ __forceinline__ void gws_score(const unsigned short *q, const gpu_args &a,
                                          gws_smem<D> &sm, const gws_tma &tm, int64_t tok0,
                                          int rows, int h, int kh, int64_t boff, int npass,
                                          int ntile, int jend_tile)
{
    const int st = threadIdx.x - GWS_RANKERS, lane = st % 32, wid = st / 32;
    const int g = lane / 4, t = lane % 4;
    uint32_t qf[2][D / 16][4];
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        const int r0 = 64 * hf + 16 * wid + g, r1 = r0 + 8;
        mma_load_a<D>(qf[hf], r0 < rows ? q + ((size_t)(tok0 + r0) * a.Hq + h) * D : NULL,
                      r1 < rows ? q + ((size_t)(tok0 + r1) * a.Hq + h) * D : NULL, t);
    }
    const int64_t cbase = boff * a.Hk + kh;
    const unsigned short *const csrc0 = gtc_src<D, GWS_SCORERS>(a.cent16, cbase, a.Hk, st);
    const size_t cstep = gtc_cstep<D, GWS_SCORERS>(a.Hk);
    const size_t ctile = (size_t)GTC_BC * a.Hk * D;
    unsigned k = 0, cph = 0; /* tiles handed over; the centroid buffers' phases */
    for (int pass = 0; pass < npass; pass++) {
        const unsigned short *csrc = csrc0;
        /* A pass's first tile goes to buffer 0, which the previous pass's
         * last tile may still be scored from. */
        if (pass > 0) asm volatile("bar.sync 1, %0;\n" ::"n"(GWS_SCORERS) : "memory");
        if (TMA) {
            if (st == 0) gws_tma_tile<D>(sm.cs[0], tm, kh, (int)boff, &sm.cfull[0]);
        } else {
            gtc_load<D, GWS_SCORERS>(sm.cs[0], csrc, cstep, min(GTC_BC, jend_tile), st);
            cp_async_commit();
        }
        for (int it = 0; it < ntile; it++, k++) {
            /* Past the barrier tile it is in and every scorer warp's wgmma
             * of tile it - 1 is done, so its buffer takes tile it + 1. */
            const int cb = it & 1;
            if (TMA) {
                wg_mbar_wait(&sm.cfull[cb], (cph >> cb) & 1);
                cph ^= 1u << cb;
            } else {
                cp_async_wait<0>();
                wg_fence_smem();
            }
            asm volatile("bar.sync 1, %0;\n" ::"n"(GWS_SCORERS) : "memory");
            if (it + 1 < ntile) {
                if (TMA) {
                    if (st == 0)
                        gws_tma_tile<D>(sm.cs[cb ^ 1], tm, kh, (int)boff + (it + 1) * GTC_BC,
                                        &sm.cfull[cb ^ 1]);
                } else {
                    csrc += ctile;
                    gtc_load<D, GWS_SCORERS>(sm.cs[cb ^ 1], csrc, cstep,
                                             min(GTC_BC, jend_tile - it * GTC_BC - GTC_BC), st);
                }
            }
            if (!TMA) cp_async_commit();
            const int s = k & 1;
            wg_mbar_wait(&sm.empty[s], ((k >> 1) & 1) ^ 1);
#pragma unroll
            for (int hf = 0; hf < 2; hf++)
                gws_score_rows<DT, D>(qf[hf], sm.cs[cb],
                                      &sm.sc[s][(64 * hf + 16 * wid) * GTC_SLD], lane);
            wg_mbar_arrive(&sm.full[s]);
        }
    }
    if (!TMA) cp_async_wait<0>();
}

/* The rankers read their thread index again where they need it: held
 * across the ranking loop, the values derived from it were spilled at
 * their 64 registers (a volatile read is neither hoisted nor shared). */
__device__ __forceinline__ int gws_tid(void)
{
    int t;
    asm volatile("mov.u32 %0, %%tid.x;\n" : "=r"(t));
    return t;
}

/* One pass over the staged tiles for the lane's half row: the list, from
 * empty.  BOUNDED: past the first pass, keys must stay below the previous
 * pass's last (prev); the first pass has no bound to hold. */
template <int D, int W, bool BOUNDED>
__device__ __forceinline__ void gws_pass(gws_smem<D> &sm, unsigned *Lh, int *Lj, int ntile,
                                         unsigned &k, int end, int own, bool first, gtc_key_t prev)
{
    const int tid = gws_tid(), lane = tid % 32, hl = lane & 1;
    const int soff = (16 * (tid / 32) + lane / 2) * GTC_SLD + hl * (32 + GTC_SHI);
#pragma unroll
    for (int i = 0; i < W; i++) Lh[i] = Lj[i] = 0;
    float rf = -INFINITY;
    for (int it = 0; it < ntile; it++, k++) {
        const int s = k & 1;
        rf = fmaxf(rf, gtc_row_floor<W>(Lh));
        wg_mbar_wait(&sm.full[s], (k >> 1) & 1);
        gtc_rank_tile<W, BOUNDED, true>(Lh, Lj, rf, &sm.sc[s][soff], it * GTC_BC + 32 * hl,
                                        end, own, 1, first && it == 0, prev);
        /* Every lane's reads of the slot before the warp releases it. */
        __syncwarp();
        if (lane == 0) wg_mbar_arrive(&sm.empty[s]);
    }
}

/* The rankers: lane l of warp w ranks row 16 w + l / 2, columns 32 (l &
 * 1) .. + 31 of each staged tile, as k_gate_mma's lanes do, then warps 0-3
 * finish the 128 rows.  A dead row gets no candidates from its end (0)
 * rather than from its want, which is then not live in the loop.  As
 * gate.cu launches it (W < GPU_TOPK) a selection is one pass: the loop
 * keeps k_gate_mma's passes, bound and all, but only the first runs, and
 * this form is the one ptxas compiled without spills (docs/perf.md v35). */
template <int D, int W>
__device__ __forceinline__ void gws_rank(const gpu_args &a, gws_smem<D> &sm)
{
    const int h = a.h0 + blockIdx.y;
    const int npass = gws_ld(&sm.npass), ntile = gws_ld(&sm.ntile);
    unsigned k = 0;
    for (int pass = 0; pass < npass; pass++) {
        unsigned Lh[W];
        int Lj[W];
        {
            const int tid = gws_tid(), r = 16 * (tid / 32) + tid % 32 / 2;
            const int myb = gws_ld(&sm.b[r]);
            /* Causal: a row's candidates end at its own block. */
            const int end = gws_ld(&sm.want[r]) ? (a.causal ? myb : gws_ld(&sm.sq.nb)) : 0;
            const int own = a.causal ? end : myb;
            if (pass == 0)
                gws_pass<D, W, false>(sm, Lh, Lj, ntile, k, end, own, true, 0);
            else
                gws_pass<D, W, true>(sm, Lh, Lj, ntile, k, end, own, false, gws_ld(&sm.bound[r]));
        }
        const int tid = gws_tid(), r = 16 * (tid / 32) + tid % 32 / 2;
        gtc_pass_end<W>(Lh, Lj, sm.n, sm.bound, a, gws_ld(&sm.sq.start) + gws_ld(&sm.tile.row0), r,
                        h, tid & 1, gws_ld(&sm.want[r]));
        __syncwarp();
    }
    /* Warps 0-3 finish the 128 rows that warps 0-7 ranked. */
    asm volatile("bar.sync 2, %0;\n" ::"n"(GWS_RANKERS) : "memory");
    const int tid = gws_tid();
    if (tid < GTC_ROWS) {
        const gpu_qtile tile = gws_ld_tile(&sm.tile);
        const moba_seq sq = gws_ld_seq(&sm.sq);
        gate_finish_row(a, sq, h / a.group, gate_row_info(a, sq, tile, tid), npass > 0, sm.n[tid],
                        gate_sel_row(a, sq.start + tile.row0, tid, h), 0xffffffffu);
    }
}

template <int DT, int D, int W, bool TMA>
__global__ void __launch_bounds__(GWS_THREADS, 2)
k_gate_ws(const unsigned short *q, gpu_args a, const __grid_constant__ gws_tma tm)
{
    /* One pass: the rankers' lists of 8 (the passes of top-10 and up)
     * spill at their 64 registers (gws_rank). */
    static_assert(W < GPU_TOPK, "k_gate_ws takes selections of one pass (gate_mma_launch)");
#if MOBA_WGMMA_OK
    extern __shared__ __align__(128) unsigned char gtc_raw[];
    gws_smem<D> &sm = *(gws_smem<D> *)wg_smem_align(gtc_raw);
    const gpu_qtile tile = a.gtiles[blockIdx.x];
    const int h = a.h0 + blockIdx.y, kh = h / a.group;
    const moba_seq sq = a.seqs[tile.seq];
    const int K = a.K;
    const int tid = threadIdx.x;
    /* Warp-uniform for nvcc, so that the role branch is too. */
    const int warp = __shfl_sync(0xffffffffu, tid / 32, 0);
    const int64_t tok0 = sq.start + tile.row0;
    const gate_tile gt = gate_tile_info(a, sq, tile);
    const int jend_tile = gt.jend;
    const bool need_rank = gt.need_rank;
    const int npass = need_rank ? (K - 1 + W - 1) / W : 0;
    const int ntile = (jend_tile + GTC_BC - 1) / GTC_BC;

    if (tid < GTC_ROWS) gtc_row_init(a, sq, tile, tid, sm.bound, sm.n, sm.b, sm.want);
    if (tid == 0) {
        sm.tile = tile;
        sm.sq = sq;
        sm.npass = npass;
        sm.ntile = ntile;
        for (int s = 0; s < 2; s++) {
            wg_mbar_init(&sm.full[s], GWS_SCORERS);
            wg_mbar_init(&sm.empty[s], GWS_RANKERS / 32);
            wg_mbar_init(&sm.cfull[s], 1);
        }
        wg_mbar_init_fence();
    }
    __syncthreads();
    if (warp >= GWS_RANKERS / 32) {
        asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(GWS_SCORE_REGS));
        gws_score<DT, D, TMA>(q, a, sm, tm, tok0, tile.rows, h, kh, sq.block_offset, npass,
                              ntile, jend_tile);
        return;
    }
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(GWS_RANK_REGS));
    gws_rank<D, W>(a, sm);
#else
    (void)q;
    (void)a;
    (void)tm;
#endif
}

#endif /* MOBA_GPU_HAVE_MMA */

#endif /* MOBA_GPU_GATE_WS_CUH */
