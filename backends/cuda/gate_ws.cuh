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
 * and stages each tile's scores; four ranking warps only filter and
 * insert, each lane one row.
 *
 * The scores go through two staging slots ([128][GTC_SLD] floats each,
 * gws_stage's layout) on mbarriers: the scorer fills slot k % 2 once the
 * rankers have released it (empty: one arrival per ranking warp) and
 * announces it (full: one per scorer thread), so it scores tile k + 1
 * while tile k is ranked.
 *
 * A row a lane (CUDA v45): the candidate loop turns as often as the
 * busiest of a warp's 32 lanes has candidates, so a warp that ranks 32
 * rows of 64 columns turns fewer times per row than one that ranks 16 rows
 * on two lanes of 32 (k_gate_mma's layout, v29: 2.65 turns per warp and
 * tile at 2048 candidates against 3.4 for twice the rows,
 * scripts/gate_turns.py), its floor is its own list's W-th best, exact
 * rather than certified from two lists, and the pair's merge and floor
 * shuffles go.  Half the ranking warps issue ~1.5x fewer instructions a
 * row; two CTAs of 256 threads an SM at 128 registers each, with no
 * register hand-over between the roles.  That alone only tied the eight
 * warps on lane pairs (the rankers wait on their loop's shared-memory
 * loads, not on issue slots); what the layout bought is room: two of the
 * scorer's wgmma chains in flight (gws_score_tile) and a row's picks
 * sorted from the list's registers (gate_finish_picked), 1.06x on the
 * gate at 512K and 1.11x at 128K on an H100 (docs/perf.md, CUDA v45).
 * The candidate loop takes two candidates a turn (gws_rank_cands, v46).
 */
#ifndef MOBA_GPU_GATE_WS_CUH
#define MOBA_GPU_GATE_WS_CUH

#include "gate_mma.cuh"

#if MOBA_GPU_HAVE_MMA

#include <cuda.h> /* CUtensorMap (the type only: no driver call here) */

#define GWS_RANKERS GTC_ROWS /* threads that rank: warps 0-3, a row each */
#define GWS_SCORERS 128      /* the scoring warpgroup: warps 4-7         */
#define GWS_THREADS (GWS_RANKERS + GWS_SCORERS)
/* 2 CTAs an SM (the staging slots and centroid tiles: ~106 KB each at D =
 * 128) give every thread 128 registers: the scorer holds 2 x D / 4 words
 * of fragments (64 at D = 128) and 32 accumulators (gws_score_tile), a
 * ranker its list and a tile's 64 scores in flight. */

/* At a 1024-byte aligned base (wg_smem_align), as gtc_smem. */
template <int D> struct gws_smem {
    unsigned short cs[2][GTC_BC * D];
    __align__(16) float sc[2][GTC_ROWS * GTC_SLD]; /* staging slots */
    uint64_t full[2], empty[2];
    uint64_t cfull[2]; /* a centroid buffer's TMA boxes have landed */
};

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

/* Staging layout: row r's 64 scores at r * GTC_SLD words, its 16-byte
 * unit u (columns 4 u .. 4 u + 3) at unit u ^ gws_flip(r) / 4, that is
 * column c at word c ^ gws_flip(r).  A ranking lane reads its row's units
 * as 16-byte loads, a quarter warp 8 rows: rows GTC_SLD = 72 words apart
 * alone put rows 4 apart on the same banks, and the flip of every other
 * four rows moves them to the others.  The scorer's pair stores (rows g
 * and g + 8 of a warp's 16, columns 8 n + 2 t) stay free of conflicts:
 * the flip moves a pair within its row's 8-word group. */
__device__ __forceinline__ int gws_flip(int r) { return (r & 4); }

/* Stores one 8-column slice n of the accumulators (the mma C layout: d =
 * (row g, cols 8 n + 2 t, + 1), (row g + 8, same cols)) to the warp's 16
 * staging rows at sw (their first row a multiple of 16). */
__device__ __forceinline__ void gws_stage(float *sw, const float *d, int n, int lane)
{
    const int g = lane / 4, t = lane % 4;
    float *p = sw + g * GTC_SLD + ((8 * n + 2 * t) ^ gws_flip(g));
    *(float2 *)p = make_float2(d[0], d[1]);
    *(float2 *)(p + 8 * GTC_SLD) = make_float2(d[2], d[3]);
}

/* Issues (and commits) one chain of the scorer's wgmmas: the 32 columns
 * nh of a tile's scores for the 64 rows of fragments qf, 16 accumulators
 * (m64n32k16 over D / 16 steps). */
template <int DT, int D>
__device__ __forceinline__ void gws_chain(float *d, const uint32_t (*qf)[4], uint64_t b0, int nh)
{
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        wgmma_m64n32k16<DT, 0>(
            d, qf[kk], wg_desc_step(b0, nh * 32 * 128 + (kk / 4) * GTC_BC * 128 + (kk % 4) * 32),
            kk > 0);
    wg_commit();
}

/* Stages chain (hf, nh)'s 16 accumulators: the warp's 16 rows of the
 * 64-row half hf, columns 32 nh .. + 31. */
__device__ __forceinline__ void gws_stage_chain(float *sc, const float *d, int hf, int nh, int wid,
                                                int lane)
{
#pragma unroll
    for (int n = 0; n < 4; n++)
        gws_stage(sc + (64 * hf + 16 * wid) * GTC_SLD, d + 4 * n, 4 * nh + n, lane);
}

/* A tile's scores: four chains of 16 accumulators (two 64-row halves,
 * two 32-column halves), two in flight, each staged while the next runs.
 * One chain at a time, each waited for before its stores, put four
 * wgmma latencies end to end on the scorer's path to the rankers; 32
 * accumulators live fit the scorer's 128 registers beside its fragments. */
template <int DT, int D>
__device__ __forceinline__ void gws_score_tile(const uint32_t (*qf)[D / 16][4],
                                               const unsigned short *cs, float *sc, int wid,
                                               int lane)
{
    const uint64_t b0 = wg_desc_sw128(cs, 16, 1024);
    float d0[16], d1[16];
    gws_chain<DT, D>(d0, qf[0], b0, 0);
    gws_chain<DT, D>(d1, qf[0], b0, 1);
    wg_wait<1>();
    wg_pin_n<16>(d0);
    gws_stage_chain(sc, d0, 0, 0, wid, lane);
    gws_chain<DT, D>(d0, qf[1], b0, 0);
    wg_wait<1>();
    wg_pin_n<16>(d1);
    gws_stage_chain(sc, d1, 0, 1, wid, lane);
    gws_chain<DT, D>(d1, qf[1], b0, 1);
    wg_wait<1>();
    wg_pin_n<16>(d0);
    gws_stage_chain(sc, d0, 1, 0, wid, lane);
    wg_wait<0>();
    wg_pin_n<16>(d1);
    gws_stage_chain(sc, d1, 1, 1, wid, lane);
}

/* The scorer: each tile's centroids (TMA, or cp.async a tile ahead, double
 * buffered as in k_gate_mma, with a barrier of its own 128 threads), the
 * scores of both 64-row halves on wgmma, staged into slot k % 2. */
template <int DT, int D, bool TMA>
__device__ __forceinline__ void gws_score(const unsigned short *q, const gpu_args &a,
                                          gws_smem<D> &sm, const gws_tma &tm, int64_t tok0,
                                          int rows, int h, int kh, int64_t boff, int ntile,
                                          int jend_tile)
{
    /* No tile to score (every row takes all of its candidates): nothing
     * may be asked for, as a TMA copy still in flight when its CTA exits
     * could land in the next CTA's shared memory. */
    if (ntile == 0) return;
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
    const unsigned short *csrc = gtc_src<D, GWS_SCORERS>(a.cent16, cbase, a.Hk, st);
    const size_t cstep = gtc_cstep<D, GWS_SCORERS>(a.Hk);
    const size_t ctile = (size_t)GTC_BC * a.Hk * D;
    unsigned cph = 0; /* the centroid buffers' phases */
    if (TMA) {
        if (st == 0) gws_tma_tile<D>(sm.cs[0], tm, kh, (int)boff, &sm.cfull[0]);
    } else {
        gtc_load<D, GWS_SCORERS>(sm.cs[0], csrc, cstep, min(GTC_BC, jend_tile), st);
        cp_async_commit();
    }
    for (int it = 0; it < ntile; it++) {
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
        const int s = it & 1;
        wg_mbar_wait(&sm.empty[s], ((it >> 1) & 1) ^ 1);
        gws_score_tile<DT, D>(qf, sm.cs[cb], sm.sc[s], wid, lane);
        wg_mbar_arrive(&sm.full[s]);
    }
    if (!TMA) cp_async_wait<0>();
}

/* Takes out of a lane's candidate bits m (columns 0-31 in m[0], 32-63 in
 * m[1], jb the tile's first block) the columns that are no candidates:
 * j >= jend and the row's own block myb. */
__device__ __forceinline__ void gws_drop_cols(unsigned *m, int jb, int jend, int myb)
{
    const int lim = jend - jb, own = myb - jb;
    if (lim < 64) {
        m[0] &= lim >= 32 ? ~0u : lim > 0 ? (1u << lim) - 1u : 0u;
        m[1] &= lim > 32 ? (1u << (lim - 32)) - 1u : 0u;
    }
    /* Not m[own / 32]: indexed at run time, m went to local memory. */
    if ((unsigned)own < 32u) m[0] &= ~(1u << own);
    else if ((unsigned)own < 64u) m[1] &= ~(1u << (own - 32));
}

/* The bits of a lane's 64 staged scores (its row at x, flip gws_flip)
 * that are not below the floor f (NaN never is: it goes to the exact
 * test), less the columns that are no candidates (gws_drop_cols).  Unit u
 * is at u ^ (flip / 4): even units one way, odd units the other. */
__device__ __forceinline__ void gws_filter(unsigned *m, const float *x, int flip, float f, int jb,
                                           int jend, int myb)
{
    const float *xe = x + flip, *xo = x - flip;
    m[0] = m[1] = 0u;
#pragma unroll
    for (int u = 0; u < 16; u++) {
        const float4 v = *(const float4 *)((u & 1 ? xo : xe) + 4 * u);
        const int sh = 4 * (u % 8);
        gtc_set_if_not_below(m[u / 8], v.x, f, 1u << sh);
        gtc_set_if_not_below(m[u / 8], v.y, f, 2u << sh);
        gtc_set_if_not_below(m[u / 8], v.z, f, 4u << sh);
        gtc_set_if_not_below(m[u / 8], v.w, f, 8u << sh);
    }
    gws_drop_cols(m, jb, jend, myb);
}

/* The first tile's floor, where the list is empty and gives none: the
 * W-th best of the maxima of the lane's 16 units (columns 4 u .. 4 u + 3,
 * candidates m only), which W different candidates reach, so a score
 * below it is out of the row's top W.  Without a floor the loop turns once
 * per candidate (up to 64 times).  Why not the tile's own W-th best: a
 * sorted network of W floats for each of 64 candidates was ~15 dependent
 * instructions a candidate, ~1000 a row, paid by every CTA before its
 * first tile is ranked; three maxima a unit and the network over 16 are
 * ~300, for ~1.2x that floor's survivors in the tile (8.4 against 7 at W =
 * 7 on i.i.d. scores: `scripts/gate_turns.py --lanes 1 --per-turn 2
 * --floor exact,units --cands 64`; over a 512-candidate row ~3 more of
 * the loop's ~30 turns).
 * Where every column of the tile is a candidate (the common case: the
 * tile is before the row's own block and the sequence's end) no mask is
 * applied.  NaN scores drop out of the maxima (fmaxf) and stay in m. */
template <int W>
__device__ __forceinline__ float gws_first_floor(const float *x, int flip, const unsigned *m)
{
    const float *xe = x + flip, *xo = x - flip;
    const bool all = (m[0] & m[1]) == ~0u;
    float b[W];
#pragma unroll
    for (int i = 0; i < W; i++) b[i] = -INFINITY;
#pragma unroll
    for (int u = 0; u < 16; u++) {
        float4 v = *(const float4 *)((u & 1 ? xo : xe) + 4 * u);
        if (!all) {
            const unsigned k = m[u / 8] >> (4 * (u % 8));
            v.x = k & 1u ? v.x : -INFINITY;
            v.y = k & 2u ? v.y : -INFINITY;
            v.z = k & 4u ? v.z : -INFINITY;
            v.w = k & 8u ? v.w : -INFINITY;
        }
        gtc_keep_best<W>(b, fmaxf(fmaxf(v.x, v.y), fmaxf(v.z, v.w)), true);
    }
    return b[W - 1];
}

/* Inserts two candidates at once into a lane's descending list (high
 * words Lh, blocks Lj): (ha, ja) the better of the pair, (hb, jb) the
 * other, both of blocks above every entry's (so >= on high words is the
 * key order, as in gtc_insert).  Every comparison is against the list as
 * it was, so the two insertions are one network, not two in a row: slot
 * i keeps its entry where a does not reach it, takes a where a reaches it
 * but not slot i - 1, and otherwise takes what the one-later shift gives
 * (entry i - 1, b, or entry i - 2).  hb = 0 (no second candidate) lands
 * only on empty slots, which stay empty (0). */
template <int W>
__device__ __forceinline__ void gws_insert2(unsigned *Lh, int *Lj, unsigned ha, int ja, unsigned hb,
                                            int jb)
{
    unsigned oh[W];
    int oj[W];
    bool ga[W], gb[W];
#pragma unroll
    for (int i = 0; i < W; i++) {
        oh[i] = Lh[i];
        oj[i] = Lj[i];
        ga[i] = ha >= oh[i];
        gb[i] = hb >= oh[i];
    }
    Lh[0] = ga[0] ? ha : oh[0];
    Lj[0] = ga[0] ? ja : oj[0];
#pragma unroll
    for (int i = 1; i < W; i++) {
        /* what the one-later shift puts in slot i once a is above it
         * (k: slot i - 2, which slot 1 does not have) */
        const int k = i >= 2 ? i - 2 : 0;
        const bool b1 = gb[i - 1], b2 = i >= 2 && gb[k];
        const unsigned sh = b1 ? (b2 ? oh[k] : hb) : oh[i - 1];
        const int sj = b1 ? (b2 ? oj[k] : jb) : oj[i - 1];
        Lh[i] = ga[i] ? (ga[i - 1] ? sh : ha) : oh[i];
        Lj[i] = ga[i] ? (ga[i - 1] ? sj : ja) : oj[i];
    }
}

/* The next candidate column of a lane's mask (m: the word being walked,
 * columns base + bit; rest: the other word, still to come), taken out of
 * it; base when none is left (a column whose score may be read, and is
 * not used). */
__device__ __forceinline__ int gws_pop(unsigned &m, unsigned &rest, int &base)
{
    const int c = base + max(__ffs(m) - 1, 0);
    m &= m - 1;
    if (!m) {
        m = rest;
        rest = 0u;
        base = 32;
    }
    return c;
}

/* The exact test and the insertion of a lane's candidates m (bits of its
 * row's staged scores at x, columns jb + bit, m[1]'s from 32), two at a
 * time in column order (gws_insert2; the later column wins ties, as
 * gtc_insert's high-word comparison needs); a candidate below the list's
 * last entry changes nothing, so no branch tests for it.  The next pair's
 * scores are loaded before this one is ranked.  Why pairs: the loop turns
 * as often as the busiest of a warp's 32 lanes has candidates, and one
 * candidate a turn was a chain of dependent instructions (the mask's
 * lowest bit, the load, the key, the test, the network: 58 % of the
 * loop's samples waited on fixed latencies and shared-memory loads, 15 %
 * issued).  Two a turn take 0.56x the turns at 2048 candidates a row
 * (`scripts/gate_turns.py --lanes 1 --per-turn 1,2`) for ~2x a turn's
 * instructions at about the same depth: the loop's samples 0.83x, the
 * gate 1.046x at 512K and 1.10x at 128K on an H100 (docs/perf.md, CUDA
 * v46).  The walk goes one word and then the other
 * rather than a 64-bit mask, whose lowest bit took ~10 instructions
 * against ~4. */
template <int W>
__device__ __forceinline__ void gws_rank_cands(unsigned *Lh, int *Lj, const float *x, int flip,
                                               const unsigned *m2, int jb)
{
    unsigned m = m2[0] ? m2[0] : m2[1], rest = m2[0] ? m2[1] : 0u;
    int base = m2[0] ? 0 : 32;
    if (!m) return;
    int c1 = gws_pop(m, rest, base);
    bool v2 = m != 0u;
    int c2 = gws_pop(m, rest, base);
    float s1 = x[c1 ^ flip], s2 = x[c2 ^ flip];
    for (;;) {
        const bool more = m != 0u;
        const int n1 = gws_pop(m, rest, base);
        const bool nv2 = m != 0u;
        const int n2 = gws_pop(m, rest, base);
        const float t1 = x[n1 ^ flip], t2 = x[n2 ^ flip];
        const unsigned h1 = gtc_hi(s1), h2 = v2 ? gtc_hi(s2) : 0u;
        const bool sw = h2 >= h1; /* the later column wins ties */
        gws_insert2<W>(Lh, Lj, sw ? h2 : h1, jb + (sw ? c2 : c1), sw ? h1 : h2,
                       jb + (sw ? c1 : c2));
        if (!more) return;
        c1 = n1;
        c2 = n2;
        s1 = t1;
        s2 = t2;
        v2 = nv2;
    }
}

/* The rankers: lane l of warp w ranks row 32 w + l over every staged
 * tile, then writes and finishes its selection row.  A dead row gets no
 * candidates (end 0). */
template <int D, int W>
__device__ __forceinline__ void gws_rank(const gpu_args &a, gws_smem<D> &sm, const moba_seq &sq,
                                         const gpu_qtile &tile, int h, int ntile, bool need_rank)
{
    const int r = threadIdx.x, lane = r % 32;
    const gate_row w = gate_row_info(a, sq, tile, r);
    int32_t *selrow = gate_sel_row(a, sq.start + tile.row0, r, h);
    if (need_rank) {
        int n = 0;
        const int want = w.live ? w.want : 0;
        const int end = want ? w.jend : 0;
        const int flip = gws_flip(r);
        unsigned Lh[W];
        int Lj[W];
#pragma unroll
        for (int i = 0; i < W; i++) Lh[i] = Lj[i] = 0;
        /* The floor only rises: one that W entries reached stays one. */
        float rf = -INFINITY;
        for (int it = 0; it < ntile; it++) {
            const int s = it & 1;
            rf = fmaxf(rf, gtc_hi_floor(Lh[W - 1]));
            wg_mbar_wait(&sm.full[s], (it >> 1) & 1);
            const float *x = &sm.sc[s][r * GTC_SLD];
            unsigned m[2];
            if (it == 0) {
                /* No floor yet (rf is -inf), so every candidate column
                 * would pass the filter: the columns alone, without the
                 * scores' 16 loads and 64 tests. */
                m[0] = m[1] = ~0u;
                gws_drop_cols(m, 0, end, w.b);
                rf = gws_first_floor<W>(x, flip, m);
            }
            gws_filter(m, x, flip, rf, it * GTC_BC, end, w.b);
            gws_rank_cands<W>(Lh, Lj, x, flip, m, it * GTC_BC);
            /* Every lane's reads of the slot before the warp releases it. */
            __syncwarp();
            if (lane == 0) wg_mbar_arrive(&sm.empty[s]);
        }
        /* The best want of the list, in key order (empty slots are 0):
         * the list's first n, as entries only leave it from the end. */
#pragma unroll
        for (int i = 0; i < W; i++)
            if (n < want && Lh[i] != 0u) n++;
        /* Whole warps (dead rows too): the counts go warp by warp. */
        gate_finish_picked<W, GPU_TOPK>(a, sq, h / a.group, w, Lj, n, selrow, 0xffffffffu);
        return;
    }
    gate_finish_row(a, sq, h / a.group, w, false, 0, selrow, 0xffffffffu);
}

template <int DT, int D, int W, bool TMA>
__global__ void __launch_bounds__(GWS_THREADS, 2)
k_gate_ws(const unsigned short *q, gpu_args a, const __grid_constant__ gws_tma tm)
{
    /* One pass: a selection longer than a list of W < GPU_TOPK takes
     * k_gate_mma's passes (gate_mma_launch). */
    static_assert(W < GPU_TOPK, "k_gate_ws takes selections of one pass (gate_mma_launch)");
#if MOBA_WGMMA_OK
    extern __shared__ __align__(128) unsigned char gtc_raw[];
    gws_smem<D> &sm = *(gws_smem<D> *)wg_smem_align(gtc_raw);
    const gpu_qtile tile = a.gtiles[blockIdx.x];
    const int h = a.h0 + blockIdx.y, kh = h / a.group;
    const moba_seq sq = a.seqs[tile.seq];
    const int tid = threadIdx.x;
    /* Warp-uniform for nvcc, so that the role branch is too. */
    const int warp = __shfl_sync(0xffffffffu, tid / 32, 0);
    const gate_tile gt = gate_tile_info(a, sq, tile);
    const int ntile = gt.need_rank ? (gt.jend + GTC_BC - 1) / GTC_BC : 0;

    if (tid == 0) {
        for (int s = 0; s < 2; s++) {
            wg_mbar_init(&sm.full[s], GWS_SCORERS);
            wg_mbar_init(&sm.empty[s], GWS_RANKERS / 32);
            wg_mbar_init(&sm.cfull[s], 1);
        }
        wg_mbar_init_fence();
    }
    __syncthreads();
    if (warp >= GWS_RANKERS / 32) {
        gws_score<DT, D, TMA>(q, a, sm, tm, sq.start + tile.row0, tile.rows, h, kh,
                              sq.block_offset, ntile, gt.jend);
        return;
    }
    gws_rank<D, W>(a, sm, sq, tile, h, ntile, gt.need_rank);
#else
    (void)q;
    (void)a;
    (void)tm;
#endif
}

#endif /* MOBA_GPU_HAVE_MMA */

#endif /* MOBA_GPU_GATE_WS_CUH */
