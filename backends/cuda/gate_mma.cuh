/*
 * Tensor-core gating (CUDA sm_80+, f16/bf16, D = 64 or 128): scores and
 * top-k of 128 query rows per CTA, ranked straight from the mma
 * accumulators.
 *
 * Why this shape: the score FLOPs are cheap on tensor cores, so what is
 * left is moving centroids and ranking.  128 rows per CTA halve the
 * centroid reads per query against 64; the 16-bit centroid copy halves
 * them again and needs no conversion; cp.async double buffering overlaps
 * the next tile's load with this tile's math; and ranking from registers
 * drops the shared score tile and two barriers per tile.  The 4 lanes
 * holding one query row (the mma C layout) keep separate lists of W (a
 * pass's selections: 2 up to top-3, 4 up to top-5, 7 up to top-8, else 8
 * per pass), and before each tile they agree on a row bound: the best of
 * their W-th best entries, which the row's final W-th best can only beat
 * (gtc_row_floor also takes two other certificates), so a candidate below
 * it is rejected with one float comparison against the score in the
 * bound's key (gtc_row_floor) instead of going through the list; only the
 * candidates at or above it build their key and take the exact test.  In
 * the first tile the lists are empty and that bound is void, so there each
 * lane's second best valid score, the least over the quad, serves instead
 * (gtc_cand_mask).  At the end of a pass the quad merges its lists
 * with shuffles (gtc_quad_merge).
 *
 * Ranking keys: core/gate.h's order (numbers above NaN, larger score
 * first, ties to the larger block) is the unsigned order of one 64-bit key
 * (gtc_key), so a comparison is two integer instructions, and inside a
 * lane's pass, where blocks only grow, one on the high word (gtc_insert);
 * an insertion is a branch-free W-step network.  That matters because the
 * lanes of a warp insert divergently: a candidate slot costs the warp a whole
 * insertion whenever any of its 32 lanes inserts (v4's first version,
 * with the float/index comparisons of gpu_top_push, spent ~90 % of the
 * gate there).
 *
 * Rows (16 per warp): lane (g, t) owns rows 16 w + g and 16 w + g + 8 and,
 * in every 64-centroid tile, columns 8 n + 2 t and 8 n + 2 t + 1.
 */
#ifndef MOBA_GPU_GATE_MMA_CUH
#define MOBA_GPU_GATE_MMA_CUH

#include "gate_rows.cuh"
#include "mma_common.cuh"

#if MOBA_GPU_HAVE_MMA

#define GTC_THREADS 256
#define GTC_ROWS 128 /* query rows per CTA: GPU_GATE_ROWS */
#define GTC_BC 64    /* centroids per tile */

typedef unsigned long long gtc_key_t;

template <int D> struct gtc_smem {
    unsigned short cs[2][GTC_BC * (D + 8)];
    gtc_key_t bound[GTC_ROWS]; /* pass bound: keys must stay below it */
    int n[GTC_ROWS];           /* entries chosen so far                 */
    int b[GTC_ROWS], want[GTC_ROWS]; /* gate_row_info, 0 want for dead rows */
    /* A tile's 32 scores per thread, [candidate][thread] (conflict-free
     * whatever candidate each lane reads). */
    float sc[32][GTC_THREADS];
};

/* The ranking key of (score s, block j): larger is better.  NaN scores get
 * 1 in the high word, numbers their order-preserving bit pattern (>=
 * 0x007fffff; -0 is folded into +0, which the order treats as equal), and
 * the low word the block, so equal scores go to the larger block.  An
 * empty list slot is 0.  The lists keep the two words apart (gtc_insert). */
__device__ __forceinline__ unsigned gtc_hi(float s)
{
    /* s + 0 is +0 for -0 and s otherwise (round to nearest, no flush to
     * zero); negative patterns flip whole, others gain the sign bit. */
    const unsigned u = __float_as_uint(s + 0.0f);
    const unsigned o = u ^ ((unsigned)((int)u >> 31) | 0x80000000u);
    return s != s ? 1u : o;
}

__device__ __forceinline__ gtc_key_t gtc_key(unsigned hi, int j)
{
    return ((gtc_key_t)hi << 32) | (unsigned)j;
}

/* The largest float f such that every score s < f has gtc_key(s, j) <
 * bound for any j, from the bound's high word hi: the score in it, or -inf
 * while the bound is no number (0: empty, or a NaN key), where scores must
 * go to the exact test.  NaN compares false with it and always goes there. */
__device__ __forceinline__ float gtc_hi_floor(unsigned hi)
{
    if (hi <= 1u) return -INFINITY;
    return __uint_as_float(hi & 0x80000000u ? hi & 0x7fffffffu : ~hi);
}

/* Insert (xh, xj) into a lane's descending list (high words Lh, blocks Lj)
 * in one pass; xh >= Lh[7].  A lane meets its candidates in increasing
 * block order (tiles ascend, and so do a lane's columns in a tile), so x
 * beats every entry with its high word (ties go to the larger block) and
 * comparing high words with >= is the key order: eight 32-bit comparisons
 * shared by the network's steps, where whole 64-bit keys took 26 integer
 * comparisons per insertion (CUDA v15). */
template <int W>
__device__ __forceinline__ void gtc_insert(unsigned *Lh, int *Lj, unsigned xh, int xj)
{
    bool ge[W];
#pragma unroll
    for (int i = 0; i < W; i++) ge[i] = xh >= Lh[i];
#pragma unroll
    for (int i = W - 1; i > 0; i--) {
        Lh[i] = ge[i - 1] ? Lh[i - 1] : (ge[i] ? xh : Lh[i]);
        Lj[i] = ge[i - 1] ? Lj[i - 1] : (ge[i] ? xj : Lj[i]);
    }
    Lh[0] = ge[0] ? xh : Lh[0];
    Lj[0] = ge[0] ? xj : Lj[0];
}

/* A thread's first centroid slot for the tile at block boff.  Its 16-byte
 * slots are GTC_THREADS apart: its column group stays and its row steps by
 * GTC_THREADS / (D / 8), so a tile's addresses are this base plus
 * multiples of one stride, and the next tile's base is this one plus
 * GTC_BC rows.  Computed once per kernel and stepped, not rebuilt per
 * tile: the general index arithmetic under a per-slot predicate cost 66
 * instructions per warp-tile, 9 % of the kernel's at 512K. */
template <int D>
__device__ __forceinline__ const unsigned short *gtc_src(const unsigned short *cent16,
                                                         int64_t cbase, int Hk)
{
    const int V8 = D / 8;
    return cent16 + (size_t)(cbase + (int64_t)(threadIdx.x / V8) * Hk) * D + threadIdx.x % V8 * 8;
}

/* Centroids of one tile into cs from the thread's slot src; rows past jn
 * keep stale data (their columns are never ranked). */
template <int D>
__device__ __forceinline__ void gtc_load(unsigned short *cs, const unsigned short *src,
                                         size_t step, int jn)
{
    const int LD = D + 8, V8 = D / 8, RS = GTC_THREADS / V8, N = GTC_BC * V8 / GTC_THREADS;
    static_assert(GTC_THREADS % V8 == 0 && GTC_BC % RS == 0, "fixed column group per thread");
    const int r0 = threadIdx.x / V8, c = threadIdx.x % V8;
    unsigned short *dst = cs + r0 * LD + c * 8;
    if (jn == GTC_BC) {
#pragma unroll
        for (int i = 0; i < N; i++) cp_async16(dst + i * RS * LD, src + i * step);
    } else {
#pragma unroll
        for (int i = 0; i < N; i++)
            if (r0 + i * RS < jn) cp_async16(dst + i * RS * LD, src + i * step);
    }
}

/* The second largest of the quad's 4 values x (unsigned or float). */
template <typename T> __device__ __forceinline__ T gtc_quad_second(T x0)
{
    const T x1 = MOBA_SHFL_XOR(x0, 1, 4), x2 = MOBA_SHFL_XOR(x0, 2, 4),
            x3 = MOBA_SHFL_XOR(x0, 3, 4);
    return max(min(max(x0, x1), max(x2, x3)), max(min(x0, x1), min(x2, x3)));
}

/* A lower bound on the row's final W-th best score from its 4 lanes'
 * sorted lists of W, as a float floor (gtc_hi_floor), taking the largest of
 * three keys that each certify W or more entries at or above them: the best
 * lane W-th best; the second largest lane 4th best (two lanes hold 4 each;
 * for W = 2 the second largest lane best, two lanes hold 1); the smallest
 * lane 2nd best (four lanes hold 2 each).  Empty slots are 0, which only
 * weakens it.  The floor reads only a key's high word, and the high word of
 * the largest / smallest / second largest key is the largest / smallest /
 * second largest high word, so the lanes exchange and compare the lists'
 * high words Lh (half the shuffles of whole keys). */
template <int W>
__device__ __forceinline__ float gtc_row_floor(const unsigned *Lh)
{
    static_assert(W == 2 || (W >= 4 && W <= GPU_TOPK), "the certificates hold W entries");
    unsigned a = Lh[W - 1], c = Lh[1];
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
        a = max(a, (unsigned)MOBA_SHFL_XOR(a, off, 4));
        c = min(c, (unsigned)MOBA_SHFL_XOR(c, off, 4));
    }
    const unsigned b = gtc_quad_second(Lh[W >= 4 ? 3 : 0]);
    return gtc_hi_floor(max(max(a, b), c));
}

/* Top N of two descending lists of N (a power of two) with unique keys,
 * in L, descending: L[i] vs P[N - 1 - i] keeps the N best as a bitonic
 * sequence, which log2 N half-cleaner stages sort.  (Empty slots are 0 in
 * both: equal, but only ever below every real key.) */
template <int N>
__device__ __forceinline__ void gtc_merge(gtc_key_t *L, const gtc_key_t *P)
{
    static_assert((N & (N - 1)) == 0, "a power of two");
#pragma unroll
    for (int i = 0; i < N; i++) L[i] = L[i] > P[N - 1 - i] ? L[i] : P[N - 1 - i];
#pragma unroll
    for (int st = N / 2; st > 0; st >>= 1)
#pragma unroll
        for (int i = 0; i < N; i++)
            if ((i & st) == 0) {
                const gtc_key_t x = L[i], y = L[i + st];
                L[i] = x > y ? x : y;
                L[i + st] = x > y ? y : x;
            }
}

/* The row's best N of its 4 lanes' lists, in every lane of the quad: two
 * butterfly rounds of gtc_merge over shuffled lists (v4 merged them in
 * shared memory from one thread per row, with 16- to 32-way bank
 * conflicts). */
template <int N>
__device__ __forceinline__ void gtc_quad_merge(gtc_key_t *L)
{
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
        gtc_key_t P[N];
#pragma unroll
        for (int i = 0; i < N; i++) P[i] = MOBA_SHFL_XOR(L[i], off, 4);
        gtc_merge<N>(L, P);
    }
}

/* Scores of one 64-centroid tile for the warp's 16 rows, filtered against
 * the rows' floors rf: the scores at or above them go to sc and their bits
 * to the returned mask (bit 16 hr + c: candidate c of row hr). */
template <int DT, int D>
__device__ __forceinline__ unsigned gtc_score_tile(const uint32_t (*qf)[4], const unsigned short *cs,
                                                   const float *rf, float *sc, int tid, int lane)
{
    const int LD = D + 8;
    unsigned surv = 0;
    /* Centroids in steps of 8 NQ, so that only 4 NQ accumulators are
     * live: the kernel must fit 128 registers. */
    const int NQ = 2;
#pragma unroll
    for (int half = 0; half < 8 / NQ; half++) {
        float s[NQ][4];
#pragma unroll
        for (int nn = 0; nn < NQ; nn++) {
            const int n = NQ * half + nn;
            s[nn][0] = s[nn][1] = s[nn][2] = s[nn][3] = 0.0f;
            /* ldmatrix tiles: centroids 8n .. 8n+7, d +0 / +8 / +16 / +24. */
            const unsigned short *cr = cs + (n * 8 + lane % 8) * LD + (lane / 8) * 8;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk += 2) {
                uint32_t bq[4];
                ldsm_x4(bq, cr + kk * 16);
                mma16816<DT>(s[nn], qf[kk], bq[0], bq[1]);
                mma16816<DT>(s[nn], qf[kk + 1], bq[2], bq[3]);
            }
        }
#pragma unroll
        for (int hr = 0; hr < 2; hr++)
#pragma unroll
            for (int nn = 0; nn < NQ; nn++)
#pragma unroll
                for (int i = 0; i < 2; i++) {
                    const int c = 2 * (NQ * half + nn) + i; /* 0 .. 15 */
                    const float sv = s[nn][2 * hr + i];
                    if (!(sv < rf[hr])) {
                        sc[(16 * hr + c) * GTC_THREADS + tid] = sv;
                        surv |= 1u << (16 * hr + c);
                    }
                }
    }
    return surv;
}

/* The candidate bits m of one row half in the tile at j0, less the
 * columns that are no candidates (j >= jend, the row's own block myb: the
 * tile at the row's own block, or the last of the row's range) and, in
 * the first tile of the first pass (FIRST), less the scores below a floor
 * that W valid candidates of the tile reach, so that one below it is out
 * of the row's top W: for W > 4 the least over the quad of each lane's
 * second best valid score (4 lanes hold 2 each), for W = 4 the second
 * largest of those (2 lanes hold 2 each), for W = 2 the second largest
 * lane best (2 lanes hold 1 each).  FIRST matters because the lists are
 * still empty there and the row floor let every score through: without it
 * the warp looped 16 times per half in that tile.  sc holds the half's 16
 * staged scores of this thread ([c][thread]).  NaN is never below a floor
 * and goes to the exact test. */
template <int W>
__device__ __forceinline__ unsigned gtc_cand_mask(unsigned m, const float *sc, int tid, int t,
                                                  int j0, int myb, int jend, bool first)
{
    if (first || j0 + GTC_BC > jend || (myb >= j0 && myb < j0 + GTC_BC))
#pragma unroll
        for (int c = 0; c < 16; c++) {
            const int j = j0 + 8 * (c >> 1) + 2 * t + (c & 1);
            if (j >= jend || j == myb) m &= ~(1u << c);
        }
    if (!first) return m; /* warp-uniform */
    float b1 = -INFINITY, b2 = -INFINITY;
#pragma unroll
    for (int c = 0; c < 16; c++) {
        const float sv = sc[c * GTC_THREADS + tid];
        if (m >> c & 1u) { /* at j0 = 0 every valid score was staged */
            b2 = sv > b1 ? b1 : (sv > b2 ? sv : b2);
            b1 = sv > b1 ? sv : b1;
        }
    }
    float f;
    if (W <= 4) {
        f = gtc_quad_second(W <= 2 ? b1 : b2);
    } else {
        f = fminf(b2, MOBA_SHFL_XOR(b2, 1, 4));
        f = fminf(f, MOBA_SHFL_XOR(f, 2, 4));
    }
#pragma unroll
    for (int c = 0; c < 16; c++)
        if (sc[c * GTC_THREADS + tid] < f) m &= ~(1u << c);
    return m;
}

template <int DT, int D, int W>
__global__ void __launch_bounds__(GTC_THREADS, 2)
k_gate_mma(const unsigned short *q, gpu_args a)
{
    extern __shared__ __align__(16) unsigned char gtc_raw[];
    gtc_smem<D> &sm = *(gtc_smem<D> *)gtc_raw;
    const gpu_qtile tile = a.gtiles[blockIdx.x];
    const int h = a.h0 + blockIdx.y, kh = h / a.group;
    const moba_seq sq = a.seqs[tile.seq];
    const int K = a.K;
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int g = lane / 4, t = lane % 4;
    const int64_t tok0 = sq.start + tile.row0;
    const int64_t cbase = sq.block_offset * a.Hk + kh;
    const int b_last = (tile.row0 + tile.rows - 1) / a.S;
    const int jend_tile = a.causal ? b_last : sq.nb;
    const bool need_rank = K - 1 < (a.causal ? b_last : sq.nb - 1);

    /* Row facts and pass bounds are re-read from shared memory in every
     * tile rather than held in registers: the kernel must fit 128 registers
     * for 2 CTAs per SM. */
    int rr[2];
#pragma unroll
    for (int hr = 0; hr < 2; hr++) rr[hr] = 16 * warp + g + 8 * hr;
    if (tid < GTC_ROWS) {
        const gate_row w = gate_row_info(a, sq, tile, tid);
        sm.b[tid] = w.b;
        sm.want[tid] = w.live ? w.want : 0;
        sm.bound[tid] = ~0ull;
        sm.n[tid] = 0;
    }
    uint32_t qf[D / 16][4];
    mma_load_a<D>(qf, rr[0] < tile.rows ? q + ((size_t)(tok0 + rr[0]) * a.Hq + h) * D : NULL,
                  rr[1] < tile.rows ? q + ((size_t)(tok0 + rr[1]) * a.Hq + h) * D : NULL, t);
    const int npass = (K - 1 + W - 1) / W;
    const int ntile = (jend_tile + GTC_BC - 1) / GTC_BC;
    const unsigned short *const csrc0 = gtc_src<D>(a.cent16, cbase, a.Hk);
    const size_t cstep = (size_t)(GTC_THREADS / (D / 8)) * a.Hk * D;
    const size_t ctile = (size_t)GTC_BC * a.Hk * D;
    __syncthreads();
    for (int pass = 0; pass < npass && need_rank; pass++) {
        unsigned Lh[2][W];
        int Lj[2][W];
#pragma unroll
        for (int hr = 0; hr < 2; hr++)
#pragma unroll
            for (int i = 0; i < W; i++) Lh[hr][i] = Lj[hr][i] = 0;
        const unsigned short *csrc = csrc0;
        gtc_load<D>(sm.cs[0], csrc, cstep, min(GTC_BC, jend_tile));
        cp_async_commit();
        for (int it = 0; it < ntile; it++) {
            const int j0 = it * GTC_BC;
            /* One barrier per tile: past it tile it is in and every warp is
             * done with tile it - 1, whose buffer then takes tile it + 1
             * (loaded before the barrier, the next buffer needed a second
             * barrier at the tile's end; v15's profile had 10 % of the
             * stall samples on that one). */
            cp_async_wait<0>();
            __syncthreads();
            if (it + 1 < ntile) {
                csrc += ctile;
                gtc_load<D>(sm.cs[(it + 1) & 1], csrc, cstep, min(GTC_BC, jend_tile - j0 - GTC_BC));
            }
            cp_async_commit();
            const unsigned short *cs = sm.cs[it & 1];
            /* Below the row bound's score a candidate cannot reach the row's
             * top W (one in between may still be offered: a lane's list only
             * keeps its best, so that never displaces a row winner). */
            float rf[2];
#pragma unroll
            for (int hr = 0; hr < 2; hr++) {
                /* Every lane shuffles (full-mask shuffles), then dead rows
                 * take no candidate. */
                const float f = gtc_row_floor<W>(Lh[hr]);
                rf[hr] = sm.want[rr[hr]] ? f : INFINITY;
            }
            const unsigned surv = gtc_score_tile<DT, D>(qf, cs, rf, &sm.sc[0][0], tid, lane);
            /* Candidates the float filter let through: the exact test, then
             * the insertion.  The warp loops as often as its busiest lane
             * has candidates, not once per candidate slot.  (Taking the two
             * row halves side by side, as two branch-free insertions per
             * turn, was 0.90x: the loop is bound by issue, not latency.) */
#pragma unroll
            for (int hr = 0; hr < 2; hr++) {
                const int myb = sm.b[rr[hr]];
                unsigned m = sm.want[rr[hr]] ? (hr ? surv >> 16 : surv & 0xffffu) : 0u;
                m = gtc_cand_mask<W>(m, &sm.sc[16 * hr][0], tid, t, j0, myb, a.causal ? myb : sq.nb,
                                  pass == 0 && it == 0);
                if (!m) continue;
                const gtc_key_t prev = sm.bound[rr[hr]];
                while (m) {
                    const int c = __ffs(m) - 1;
                    m &= m - 1;
                    const int j = j0 + 8 * (c >> 1) + 2 * t + (c & 1);
                    const unsigned xh = gtc_hi(sm.sc[16 * hr + c][tid]);
                    if (xh >= Lh[hr][W - 1] && gtc_key(xh, j) < prev)
                        gtc_insert<W>(Lh[hr], Lj[hr], xh, j);
                }
            }
        }
        cp_async_wait<0>();
        /* The merge's width: W up to the next power of two, empty slots 0
         * (lists of 2 in a merge of 8 would pay for 8: the merge is a pass's
         * fixed cost, and at 128K blk512/top3 a pass is ~2 tiles). */
        const int NM = W <= 2 ? 2 : W <= 4 ? 4 : GPU_TOPK;
        gtc_key_t L[2][NM];
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
#pragma unroll
            for (int i = 0; i < NM; i++) L[hr][i] = i < W ? gtc_key(Lh[hr][i], Lj[hr][i]) : 0;
            gtc_quad_merge<NM>(L[hr]);
        }
        /* Lane t < 2 of the quad appends row rr[t]'s best W (all 4 hold
         * them; past W the merge may miss an entry that a lane's list of W
         * dropped). */
        const int r = 16 * warp + g + 8 * (t & 1);
        if (t < 2 && sm.n[r] < sm.want[r]) {
            int32_t *selrow = gate_sel_row(a, tok0, r, h);
            int n = sm.n[r];
#pragma unroll
            for (int i = 0; i < W; i++) {
                const gtc_key_t x = t ? L[1][i] : L[0][i];
                if (n < sm.want[r] && x != 0) {
                    selrow[n++] = (int32_t)(unsigned)x;
                    sm.bound[r] = x;
                }
            }
            sm.n[r] = n;
        }
        __syncthreads();
    }
    /* Whole warps (dead rows too): gate_finish_row counts warp by warp. */
    if (tid < GTC_ROWS)
        gate_finish_row(a, sq, kh, gate_row_info(a, sq, tile, tid), need_rank, sm.n[tid],
                        gate_sel_row(a, tok0, tid, h), 0xffffffffu);
}

#endif /* MOBA_GPU_HAVE_MMA */

#endif /* MOBA_GPU_GATE_MMA_CUH */
