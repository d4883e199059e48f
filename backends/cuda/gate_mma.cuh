/*
 * Tensor-core gating (CUDA sm_80+, f16/bf16, D = 32, 64, 96, 128 or 256): scores and
 * top-k of 128 query rows per CTA, ranked from the tensor cores'
 * accumulators.
 *
 * Why this shape: the score FLOPs are cheap on tensor cores, so what is
 * left is moving centroids and ranking.  128 rows per CTA halve the
 * centroid reads per query against 64; the 16-bit centroid copy halves
 * them again and needs no conversion; cp.async double buffering overlaps
 * the next tile's load with this tile's math.  On sm_90a the scores are
 * wgmma's, with the centroid tile read from shared memory by the tensor
 * cores once per warpgroup: with ldmatrix each warp copied the whole tile
 * to its registers, and once the ranking got cheaper (CUDA v29) those
 * copies held the shared-memory pipe at 67 % (CUDA v30).
 *
 * Ranking layout: each warp scores 16 rows x 64 centroids per tile in the
 * mma C layout, which is also wgmma's per warp (lane (g, t): rows 16 w + g
 * and + 8, columns 8 n + 2 t and + 1), stores the accumulators to its own
 * staging rows, and ranks them in another layout: lane l takes row 16 w + l / 2, columns 32 (l & 1) ..
 * + 31.  The candidate loop turns as often as the busiest of the warp's 32
 * lanes has candidates; in the C layout a row's four lanes each kept a
 * list and the warp looped once per row half, so ranking a row on two
 * lanes of 32 columns takes ~30 % fewer turns per tile (CUDA v29,
 * scripts/gate_turns.py --lanes), merges two lists instead of four and
 * agrees its floor with one shuffle instead of two.
 *
 * Each lane keeps a list of W (a pass's selections: 2 up to top-3, 4 up
 * to top-5, 7 up to top-8, else 8 per pass), and before each tile the
 * pair agrees on a row floor that the row's final W-th best can only
 * beat (gtc_row_floor), so a candidate below it is rejected with one float
 * comparison (gtc_filter) instead of going through the list; only the
 * candidates at or above it build their key and take the exact test.  The
 * floor only rises within a pass.  In the first tile the lists are empty,
 * so each lane's (W + 1) / 2-th best candidate, the worse of the pair's,
 * serves instead (gtc_first_floor).  At the end of a pass the pair merges
 * its lists with shuffles (gtc_merge).
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
 */
#ifndef MOBA_GPU_GATE_MMA_CUH
#define MOBA_GPU_GATE_MMA_CUH

#include "gate_rows.cuh"
#include "mma_common.cuh"
#include "wgmma.cuh"

#if MOBA_GPU_HAVE_MMA

#define GTC_THREADS 256
#define GTC_ROWS 128 /* query rows per CTA: GPU_GATE_ROWS */
#define GTC_BC 64    /* centroids per tile */
#define GTC_SLD 72   /* words per staged score row */
#define GTC_SHI 4    /* words between a staged row's columns 31 and 32 */

typedef unsigned long long gtc_key_t;

/* Columns of a centroid tile in shared memory: D in whole 64-column boxes
 * of the 128-byte swizzle.  At D = 32 and 96 the last box's upper half is
 * never written and never read: the scores' k-steps stop at D. */
template <int D> __host__ __device__ constexpr int gtc_dp() { return (D + 63) / 64 * 64; }

/* Rows of a tile that NT loader threads copy at a time: the most (a power
 * of two, at most GTC_BC) whose D / 8 chunks a row NT threads cover, so
 * that each thread's rows step by whole 8-row atoms and keep its chunk's
 * swizzled place.  At D = 96 that is 16 rows of 12 chunks for 256
 * threads: 64 of them copy nothing. */
template <int D, int NT> __host__ __device__ constexpr int gtc_rs()
{
    int rs = GTC_BC;
    while (rs * (D / 8) > NT) rs /= 2;
    return rs;
}

/* At a 1024-byte aligned base (k_gate_mma rounds its dynamic shared
 * memory up; the host asks for 1024 bytes more): the centroid tiles are in
 * wgmma's 128-byte-swizzled layout (wg_sw128_off), whose 8-row atoms are
 * 1024-byte aligned; ldmatrix reads it free of bank conflicts too. */
template <int D> struct gtc_smem {
    unsigned short cs[2][GTC_BC * gtc_dp<D>()];
    gtc_key_t bound[GTC_ROWS]; /* pass bound: keys must stay below it */
    int n[GTC_ROWS];           /* entries chosen so far                 */
    int b[GTC_ROWS], want[GTC_ROWS]; /* gate_row_info, 0 want for dead rows */
    /* A tile's scores, each warp's 16 rows x 64 columns (gtc_score_tile). */
    __align__(16) float sc[GTC_THREADS / 32][16 * GTC_SLD];
};
/* The dynamic shared memory k_gate_mma asks for: gtc_smem and room to
 * align it to 1024 bytes. */
template <int D> constexpr int gtc_smem_bytes() { return (int)sizeof(gtc_smem<D>) + WG_SMEM_ALIGN; }

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

/* A loader thread's first centroid slot for the tile at block boff (tid:
 * its index among the NT threads that load).  Its 16-byte slots are
 * gtc_rs rows apart: its column group stays and its row steps, so a
 * tile's addresses are this base plus multiples of one stride
 * (gtc_cstep), and the next tile's base is this one plus GTC_BC rows.
 * Computed once per kernel and stepped, not rebuilt per tile: the general
 * index arithmetic under a per-slot predicate cost 66 instructions per
 * warp-tile, 9 % of the kernel's at 512K. */
template <int D, int NT>
__device__ __forceinline__ const unsigned short *gtc_src(const unsigned short *cent16,
                                                         int64_t cbase, int Hk, int tid)
{
    const int V8 = D / 8;
    return cent16 + (size_t)(cbase + (int64_t)(tid / V8) * Hk) * D + tid % V8 * 8;
}

template <int D, int NT> __device__ __forceinline__ size_t gtc_cstep(int Hk)
{
    return (size_t)gtc_rs<D, NT>() * Hk * D;
}

/* Centroids of one tile into cs from the thread's slot src; rows past jn
 * keep stale data (their columns are never ranked).  A thread's rows step
 * by a multiple of 8, so its 16-byte chunk keeps its swizzled place in
 * every row: one offset and a stride. */
template <int D, int NT>
__device__ __forceinline__ void gtc_load(unsigned short *cs, const unsigned short *src,
                                         size_t step, int jn, int tid)
{
    const int V8 = D / 8, RS = gtc_rs<D, NT>(), N = GTC_BC / RS;
    static_assert(GTC_BC % RS == 0 && RS % 8 == 0, "fixed column group and swizzle per thread");
    if (RS * V8 < NT && tid >= RS * V8) return;
    const int r0 = tid / V8, c = tid % V8;
    unsigned char *dst = (unsigned char *)cs + wg_sw128_off(r0, c, GTC_BC);
    if (jn == GTC_BC) {
#pragma unroll
        for (int i = 0; i < N; i++) cp_async16(dst + i * RS * 128, src + i * step);
    } else {
#pragma unroll
        for (int i = 0; i < N; i++)
            if (r0 + i * RS < jn) cp_async16(dst + i * RS * 128, src + i * step);
    }
}

/* A lower bound on the row's final W-th best score from the lists of its
 * two lanes (sorted, high words Lh), as a float floor (gtc_hi_floor): the
 * larger of two keys that each certify W or more entries at or above
 * them, the better lane W-th best and the worse lane H-th best, H = (W +
 * 1) / 2 (two lanes hold H each).  Empty slots are 0, which only weakens
 * it.  The high word of the larger / smaller key is the larger / smaller
 * high word, so the lanes exchange high words only. */
template <int W>
__device__ __forceinline__ float gtc_row_floor(const unsigned *Lh)
{
    const int H = (W + 1) / 2;
    const unsigned a = Lh[W - 1], c = Lh[H - 1];
    const unsigned a2 = max(a, (unsigned)MOBA_SHFL_XOR(a, 1, 2));
    const unsigned c2 = min(c, (unsigned)MOBA_SHFL_XOR(c, 1, 2));
    return gtc_hi_floor(max(a2, c2));
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

/* Stores one 8-column slice n of the accumulators (the mma C layout: d =
 * (row g, cols 8 n + 2 t, + 1), (row g + 8, same cols)) to the warp's
 * staging rows sw ([16][GTC_SLD], columns 32 and up GTC_SHI words further
 * on, so that both these pair stores and the lanes' 4-column reads are
 * free of bank conflicts). */
__device__ __forceinline__ void gtc_stage(float *sw, const float *d, int n, int lane)
{
    const int g = lane / 4, t = lane % 4;
    float *p = sw + g * GTC_SLD + 8 * n + 2 * t + (n >= 4 ? GTC_SHI : 0);
    *(float2 *)p = make_float2(d[0], d[1]);
    *(float2 *)(p + 8 * GTC_SLD) = make_float2(d[2], d[3]);
}

/* Scores of one 64-centroid tile (cs, wg_sw128_off's layout) for the
 * warp's 16 rows, staged unfiltered to sw.  On sm_90a one wgmma per 16
 * columns of D for the warpgroup's 64 rows, the centroids read by the
 * tensor cores from shared memory once per warpgroup; elsewhere mma.sync
 * with each warp's ldmatrix copies of the whole tile (4 times the
 * shared-memory reads, and 80 issue slots per warp and tile). */
template <int DT, int D>
__device__ __forceinline__ void gtc_score_tile(const uint32_t (*qf)[4], const unsigned short *cs,
                                               float *sw, int lane)
{
#if MOBA_WGMMA_OK
    float d[32];
    const uint64_t b0 = wg_desc_sw128(cs, 16, 1024);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        wgmma_m64n64k16<DT, 0>(d, qf[kk], wg_desc_step(b0, (kk / 4) * GTC_BC * 128 + (kk % 4) * 32),
                               kk > 0);
    wg_commit();
    wg_wait<0>();
#pragma unroll
    for (int n = 0; n < 8; n++) gtc_stage(sw, d + 4 * n, n, lane);
#else
    /* ldmatrix row addresses in the swizzled layout: matrix m = lane / 8
     * of a k-step pair kk is chunk 2 kk + m of row 8 n + lane % 8, which
     * sits at chunk ((2 kk) % 8 + m) ^ (lane % 8): one of two offsets per
     * lane, as 2 kk % 8 is 0 or 4. */
    const int x = (lane / 8) ^ (lane % 8);
    const unsigned char *row = (const unsigned char *)cs + (lane % 8) * 128;
    const unsigned char *p0 = row + x * 16, *p4 = row + (x ^ 4) * 16;
    /* Centroids in steps of 8 NQ, so that only 4 NQ accumulators are
     * live: the kernel must fit 128 registers. */
    const int NQ = 4;
#pragma unroll
    for (int half = 0; half < 8 / NQ; half++) {
        float s[NQ][4];
#pragma unroll
        for (int nn = 0; nn < NQ; nn++) {
            const int n = NQ * half + nn;
            s[nn][0] = s[nn][1] = s[nn][2] = s[nn][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk += 2) {
                uint32_t bq[4];
                ldsm_x4(bq, (const unsigned short *)((kk % 4 ? p4 : p0) + (kk / 4) * GTC_BC * 128 +
                                                     n * 8 * 128));
                mma16816<DT>(s[nn], qf[kk], bq[0], bq[1]);
                mma16816<DT>(s[nn], qf[kk + 1], bq[2], bq[3]);
            }
        }
#pragma unroll
        for (int nn = 0; nn < NQ; nn++) gtc_stage(sw, s[nn], NQ * half + nn, lane);
    }
#endif
}

/* m |= bit unless x < f (NaN is never below), as one compare and one
 * predicated OR: written in C, nvcc makes it a compare, a select and half
 * a three-input OR, a quarter more of the filter's issue slots. */
__device__ __forceinline__ void gtc_set_if_not_below(unsigned &m, float x, float f, unsigned bit)
{
    asm("{\n\t.reg .pred p;\n\tsetp.geu.f32 p, %1, %2;\n\t@p or.b32 %0, %0, %3;\n\t}"
        : "+r"(m)
        : "f"(x), "f"(f), "r"(bit));
}

/* The bits of a lane's 32 staged scores x (columns jb .. jb + 31) that are
 * not below the floor f (NaN never is: it goes to the exact test), less
 * the columns that are no candidates: j >= jend and the row's own block
 * myb. */
__device__ __forceinline__ unsigned gtc_filter(const float *x, float f, int jb, int jend, int myb)
{
    unsigned m = 0;
#pragma unroll
    for (int q = 0; q < 8; q++) {
        const float4 v = *(const float4 *)(x + 4 * q);
        gtc_set_if_not_below(m, v.x, f, 1u << (4 * q));
        gtc_set_if_not_below(m, v.y, f, 2u << (4 * q));
        gtc_set_if_not_below(m, v.z, f, 4u << (4 * q));
        gtc_set_if_not_below(m, v.w, f, 8u << (4 * q));
    }
    const int lim = jend - jb, own = myb - jb;
    if (lim < 32) m &= lim > 0 ? (1u << lim) - 1u : 0u;
    if ((unsigned)own < 32u) m &= ~(1u << own);
    return m;
}

/* Keeps b[0 .. H) the H best of the numbers offered so far, descending
 * (-inf where fewer), offered v if on.  fmaxf with -inf turns NaN into
 * -inf: a NaN taken as missing by fminf would copy b[k - 1] into b[k]. */
template <int H> __device__ __forceinline__ void gtc_keep_best(float *b, float v, bool on)
{
    const float s = on ? fmaxf(v, -INFINITY) : -INFINITY;
#pragma unroll
    for (int k = H - 1; k > 0; k--) b[k] = fmaxf(b[k], fminf(b[k - 1], s));
    b[0] = fmaxf(b[0], s);
}

/* The first tile of the first pass, where the lists are empty and give
 * no floor: each lane's H-th best candidate (H = (W + 1) / 2), the worse
 * of the pair's, is a floor that W candidates of the tile reach (two lanes
 * hold H each), so a score below it is out of the row's top W.  Without
 * it the warp loops once per lane candidate (up to 32 times here).  NaN
 * candidates stay in m; the H best are numbers. */
template <int W>
__device__ __forceinline__ float gtc_first_floor(const float *x, unsigned m)
{
    const int H = (W + 1) / 2;
    float b[H];
#pragma unroll
    for (int i = 0; i < H; i++) b[i] = -INFINITY;
#pragma unroll
    for (int q = 0; q < 8; q++) {
        const float4 v4 = *(const float4 *)(x + 4 * q);
        const float v[4] = {v4.x, v4.y, v4.z, v4.w};
#pragma unroll
        for (int i = 0; i < 4; i++) gtc_keep_best<H>(b, v[i], m >> (4 * q + i) & 1u);
    }
    return fminf(b[H - 1], MOBA_SHFL_XOR(b[H - 1], 1, 2));
}

/* The exact test and the insertion of a lane's candidates m (bits of its
 * staged scores x, columns jb + bit), below the previous pass's last key
 * prev (~0 in the first pass: no bound).  The next candidate's score is
 * loaded before this one is ranked: loaded in its own turn, each turn
 * began with the load's latency (CUDA v32). */
template <int W>
__device__ __forceinline__ void gtc_rank(unsigned *Lh, int *Lj, const float *x, unsigned m, int jb,
                                         gtc_key_t prev)
{
    if (!m) return;
    int c = __ffs(m) - 1;
    float s = x[c];
    for (;;) {
        m &= m - 1;
        const int cn = max(__ffs(m) - 1, 0);
        const float sn = x[cn];
        const unsigned xh = gtc_hi(s);
        if (xh >= Lh[W - 1] && gtc_key(xh, jb + c) < prev)
            gtc_insert<W>(Lh, Lj, xh, jb + c);
        if (!m) return;
        c = cn;
        s = sn;
    }
}

/* Row r's pass state before the first pass: no bound, nothing chosen,
 * its own block, and 0 wanted for a dead row. */
__device__ __forceinline__ void gtc_row_init(const gpu_args &a, const moba_seq &sq,
                                             const gpu_qtile &tile, int r, gtc_key_t *bound,
                                             int *n, int *b, int *want)
{
    const gate_row w = gate_row_info(a, sq, tile, r);
    b[r] = w.b;
    want[r] = w.live ? w.want : 0;
    bound[r] = ~0ull;
    n[r] = 0;
}

/* One tile's ranking on a lane (columns jb .. jb + 31 of its row, staged
 * at sx): the float filter against the row floor rf, in the first tile
 * of the first pass (first, warp-uniform: its floor shuffles) a floor
 * from the tile itself, then the exact test and the insertion of what
 * passed (below the previous pass's last key, prev).  The
 * warp loops as often as its busiest lane has candidates, not once per
 * candidate slot: that is why a row is ranked by two lanes of 32 columns
 * each rather than by the four lanes of 16 columns that hold it in the
 * mma layout (CUDA v29). */
template <int W>
__device__ __forceinline__ void gtc_rank_tile(unsigned *Lh, int *Lj, float &rf, const float *sx,
                                              int jb, int jend, int myb, int want, bool first,
                                              gtc_key_t prev)
{
    unsigned m = want ? gtc_filter(sx, rf, jb, jend, myb) : 0u;
    if (first) {
        rf = fmaxf(rf, gtc_first_floor<W>(sx, m));
        m = want ? gtc_filter(sx, rf, jb, jend, myb) : 0u;
    }
    gtc_rank<W>(Lh, Lj, sx, m, jb, prev);
}

/* End of a pass: the pair merges its lists (shuffles between lanes 2 i
 * and 2 i + 1) and the pair's first lane (hl 0) appends the row's best W
 * to its selection row, keeping the row's count n[r] and pass bound[r]. */
template <int W>
__device__ __forceinline__ void gtc_pass_end(const unsigned *Lh, const int *Lj, int *n_,
                                             gtc_key_t *bound, const gpu_args &a, int64_t tok0,
                                             int r, int h, int hl, int want)
{
    /* The merge's width: W up to the next power of two, empty slots 0
     * (lists of 2 in a merge of 8 would pay for 8: the merge is a pass's
     * fixed cost, and at 128K blk512/top3 a pass is ~2 tiles). */
    const int NM = W <= 2 ? 2 : W <= 4 ? 4 : GPU_TOPK;
    gtc_key_t L[NM], P[NM];
#pragma unroll
    for (int i = 0; i < NM; i++) L[i] = i < W ? gtc_key(Lh[i], Lj[i]) : 0;
#pragma unroll
    for (int i = 0; i < NM; i++) P[i] = MOBA_SHFL_XOR(L[i], 1, 2);
    gtc_merge<NM>(L, P);
    /* The pair's first lane appends the row's best W (past W the merge
     * may miss an entry that a lane's list of W dropped). */
    if (hl == 0 && n_[r] < want) {
        int32_t *selrow = gate_sel_row(a, tok0, r, h);
        int n = n_[r];
#pragma unroll
        for (int i = 0; i < W; i++) {
            if (n < want && L[i] != 0) {
                selrow[n++] = (int32_t)(unsigned)L[i];
                bound[r] = L[i];
            }
        }
        n_[r] = n;
    }
}

/* Two CTAs an SM at 128 registers; at D = 256 Q's fragments alone are 64
 * registers, and one CTA of 255 keeps the kernel from spilling (~180). */
template <int DT, int D, int W>
__global__ void __launch_bounds__(GTC_THREADS, D > 128 ? 1 : 2)
k_gate_mma(const unsigned short *q, gpu_args a)
{
    extern __shared__ __align__(128) unsigned char gtc_raw[];
    gtc_smem<D> &sm = *(gtc_smem<D> *)wg_smem_align(gtc_raw);
    const gpu_qtile tile = a.gtiles[blockIdx.x];
    const int h = a.h0 + blockIdx.y, kh = h / a.group;
    const moba_seq sq = a.seqs[tile.seq];
    const int K = a.K;
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int g = lane / 4, t = lane % 4;
    const int64_t tok0 = sq.start + tile.row0;
    const int64_t cbase = sq.block_offset * a.Hk + kh;
    const gate_tile gt = gate_tile_info(a, sq, tile);
    const int jend_tile = gt.jend;
    const bool need_rank = gt.need_rank;

    if (tid < GTC_ROWS) gtc_row_init(a, sq, tile, tid, sm.bound, sm.n, sm.b, sm.want);
    /* The mma layout: lane (g, t) holds rows 16 warp + g and + 8. */
    uint32_t qf[D / 16][4];
    {
        const int r0 = 16 * warp + g, r1 = r0 + 8;
        mma_load_a<D>(qf, r0 < tile.rows ? q + ((size_t)(tok0 + r0) * a.Hq + h) * D : NULL,
                      r1 < tile.rows ? q + ((size_t)(tok0 + r1) * a.Hq + h) * D : NULL, t);
    }
    /* The ranking layout: lane l ranks row r's columns 32 (l & 1) .. + 31
     * of every tile. */
    const int r = 16 * warp + lane / 2, hl = lane & 1;
    float *const sw = &sm.sc[warp][0];
    const float *const sx = sw + (lane / 2) * GTC_SLD + hl * (32 + GTC_SHI);
    const int npass = (K - 1 + W - 1) / W;
    const int ntile = (jend_tile + GTC_BC - 1) / GTC_BC;
    const unsigned short *const csrc0 = gtc_src<D, GTC_THREADS>(a.cent16, cbase, a.Hk, tid);
    const size_t cstep = gtc_cstep<D, GTC_THREADS>(a.Hk);
    const size_t ctile = (size_t)GTC_BC * a.Hk * D;
    __syncthreads();
    const int myb = sm.b[r], want = sm.want[r];
    const int jend = a.causal ? myb : sq.nb;
    for (int pass = 0; pass < npass && need_rank; pass++) {
        unsigned Lh[W];
        int Lj[W];
#pragma unroll
        for (int i = 0; i < W; i++) Lh[i] = Lj[i] = 0;
        /* The row floor only rises within a pass: a floor that W entries
         * reached stays one (the first tile's outlives the tile). */
        float rf = want ? -INFINITY : INFINITY;
        const gtc_key_t prev = sm.bound[r];
        const unsigned short *csrc = csrc0;
        gtc_load<D, GTC_THREADS>(sm.cs[0], csrc, cstep, min(GTC_BC, jend_tile), tid);
        cp_async_commit();
        for (int it = 0; it < ntile; it++) {
            const int j0 = it * GTC_BC;
            /* One barrier per tile: past it tile it is in and every warp is
             * done with tile it - 1, whose buffer then takes tile it + 1
             * (loaded before the barrier, the next buffer needed a second
             * barrier at the tile's end; v15's profile had 10 % of the
             * stall samples on that one). */
            cp_async_wait<0>();
            wg_fence_smem(); /* the cp.async writes, to wgmma's async proxy */
            __syncthreads();
            if (it + 1 < ntile) {
                csrc += ctile;
                gtc_load<D, GTC_THREADS>(sm.cs[(it + 1) & 1], csrc, cstep,
                                         min(GTC_BC, jend_tile - j0 - GTC_BC), tid);
            }
            cp_async_commit();
            /* Every lane shuffles (full-mask shuffles); dead rows keep an
             * infinite floor. */
            rf = fmaxf(rf, gtc_row_floor<W>(Lh));
            /* The lanes' last reads of the staged scores come before this
             * tile's stores. */
            __syncwarp();
            gtc_score_tile<DT, D>(qf, sm.cs[it & 1], sw, lane);
            __syncwarp();
            gtc_rank_tile<W>(Lh, Lj, rf, sx, j0 + 32 * hl, jend, myb, want,
                                          pass == 0 && it == 0, prev);
        }
        cp_async_wait<0>();
        gtc_pass_end<W>(Lh, Lj, sm.n, sm.bound, a, tok0, r, h, hl, want);
        __syncthreads();
    }
    /* Whole warps (dead rows too): gate_finish_row counts warp by warp. */
    if (tid < GTC_ROWS)
        gate_finish_row(a, sq, kh, gate_row_info(a, sq, tile, tid), need_rank, sm.n[tid],
                        gate_sel_row(a, tok0, tid, h), 0xffffffffu);
}

#endif /* MOBA_GPU_HAVE_MMA */

#endif /* MOBA_GPU_GATE_MMA_CUH */
