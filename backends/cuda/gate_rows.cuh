/*
 * Per-row bookkeeping shared by the two gating kernels (SIMT in gate.cu,
 * tensor cores in gate_mma.cuh): which candidates a query row has, the
 * pass state of selections longer than GPU_TOPK, merging the partial lists
 * of a row's owner threads, and writing the final selection row.
 */
#ifndef MOBA_GPU_GATE_ROWS_CUH
#define MOBA_GPU_GATE_ROWS_CUH

#include "kernels_common.cuh"

/* Query row r of a tile: its own block b, candidates j < jend (j != b),
 * and how many past blocks it takes (want). */
typedef struct gate_row {
    bool live;
    int b, jend, want;
} gate_row;

__device__ __forceinline__ gate_row gate_row_info(const gpu_args &a, const moba_seq &sq,
                                                  const gpu_qtile &tile, int r)
{
    gate_row w;
    w.live = r < tile.rows;
    w.b = (tile.row0 + (w.live ? r : 0)) / a.S;
    w.jend = a.causal ? w.b : sq.nb;
    const int ncand = w.live ? (a.causal ? w.b : sq.nb - 1) : 0;
    w.want = a.K - 1 < ncand ? a.K - 1 : ncand;
    return w;
}

/* What a gate CTA's rows share: the candidate blocks end at the tile's
 * last row's own block (causal) or the sequence's end, and when every
 * candidate of every row is chosen no scores are needed. */
typedef struct gate_tile {
    int jend;
    bool need_rank;
} gate_tile;

__device__ __forceinline__ gate_tile gate_tile_info(const gpu_args &a, const moba_seq &sq,
                                                    const gpu_qtile &tile)
{
    const int b_last = (tile.row0 + tile.rows - 1) / a.S;
    gate_tile w;
    w.jend = a.causal ? b_last : sq.nb;
    w.need_rank = a.K - 1 < (a.causal ? b_last : sq.nb - 1);
    return w;
}

/* A selection needing more than GPU_TOPK past blocks takes several passes,
 * each collecting the next GPU_TOPK strictly below the previous pass's
 * worst (s, j) (a strict bound in the total order: no block twice). */
typedef struct gate_pass_state {
    float s;
    int j; /* -1: no bound yet (first pass) */
    int n; /* entries chosen so far         */
} gate_pass_state;

__device__ __forceinline__ void gate_pass_init(gate_pass_state &ps)
{
    ps.s = 0.0f;
    ps.j = -1;
    ps.n = 0;
}

__device__ __forceinline__ int32_t *gate_sel_row(const gpu_args &a, int64_t tok0, int r, int h)
{
    return a.sel + ((size_t)(tok0 + r) * a.Hq + h) * a.K;
}

/* End of a pass: merge the row's nl lists (GPU_TOPK entries each, -1 for
 * empty slots) and append the best to the selection row. */
__device__ __forceinline__ void gate_pass_merge(const gate_row &w, gate_pass_state &ps,
                                                const float *v, const int *ix, int nl,
                                                int32_t *selrow)
{
    if (!w.live || ps.n >= w.want) return;
    float val[GPU_TOPK];
    int idx[GPU_TOPK];
    gpu_top_clear(val, idx);
    for (int e = 0; e < nl * GPU_TOPK; e++)
        if (ix[e] >= 0) gpu_top_push(val, idx, v[e], ix[e]);
    int n = ps.n;
    for (int i = 0; i < GPU_TOPK && n < w.want; i++) {
        if (idx[i] < 0) break;
        selrow[n++] = idx[i];
        ps.s = val[i];
        ps.j = idx[i];
    }
    ps.n = n;
}

/* Counts slot block j (>= 0; j < 0 for none) into its list, lists[j *
 * Hkl].  Every lane in mask calls it together.  With warp matching
 * (NVIDIA) the lanes that picked the same block count with one atomic:
 * with few blocks the rows of a tile mostly pick the same ones (1M tokens
 * in 16384-key blocks, top-3: every lane of a warp the same two), and the
 * atomics on one count are served one after the other (as k_fill's on
 * its cursors, CUDA v23). */
__device__ __forceinline__ void gate_count(int32_t *lists, int j, int Hkl, unsigned mask)
{
#if MOBA_GPU_HAVE_MATCH
    const unsigned same = __match_any_sync(mask, j);
    if (j >= 0 && (int)(threadIdx.x % 32) == __ffs(same) - 1)
        atomicAdd(&lists[(int64_t)j * Hkl], __popc(same));
#else
    (void)mask;
    if (j >= 0) atomicAdd(&lists[(int64_t)j * Hkl], 1);
#endif
}

/* Kv head kh's list counts for the blocks of sequence sq (list j at
 * [j * Hkl]). */
__device__ __forceinline__ int32_t *gate_lists(const gpu_args &a, const moba_seq &sq, int kh)
{
    return a.counts + sq.block_offset * a.Hkl + (kh - a.kh0);
}

/* A row's n entries v[0 .. n) (its own block among them) in ascending
 * order into its selection row, -1 padding up to K <= N, then the list
 * counts: a bitonic network in registers (N a power of two).  Every lane
 * in mask calls it together, dead rows (w.live false, n 0) too: they
 * count nothing. */
template <int N>
__device__ __forceinline__ void gate_sort_row(const gpu_args &a, int32_t *lists,
                                              const gate_row &w, int *v, int n,
                                              int32_t *selrow, unsigned mask)
{
    const int K = a.K;
#pragma unroll
    for (int i = 0; i < N; i++)
        if (i >= n) v[i] = 0x7fffffff;
#pragma unroll
    for (int k2 = 2; k2 <= N; k2 <<= 1)
#pragma unroll
        for (int j2 = k2 >> 1; j2 > 0; j2 >>= 1)
#pragma unroll
            for (int i = 0; i < N; i++) {
                const int l = i ^ j2;
                if (l > i) {
                    const int x = v[i], y = v[l];
                    if ((x > y) == ((i & k2) == 0)) {
                        v[i] = y;
                        v[l] = x;
                    }
                }
            }
#pragma unroll
    for (int i = 0; i < N; i++) {
        if (w.live && i < K) selrow[i] = i < n ? v[i] : -1;
        if (i < K) gate_count(lists, i < n && v[i] != w.b ? v[i] : -1, a.Hkl, mask);
    }
}

/* Own block in, ascending order, -1 padding, then the list counts.  When
 * every candidate is taken (need_rank false) the row was never scored.
 * Every lane in mask calls it together, dead rows (w.live false) too: they
 * count nothing. */
#define GATE_SORT_MAX 16
__device__ __forceinline__ void gate_finish_row(const gpu_args &a, const moba_seq &sq, int kh,
                                                const gate_row &w, bool need_rank,
                                                int nchosen, int32_t *selrow, unsigned mask)
{
    const int K = a.K;
    int32_t *lists = gate_lists(a, sq, kh);
    int n = 0;
    if (w.live) {
        if (need_rank) {
            n = nchosen;
        } else {
            for (int j = 0; j < w.jend; j++)
                if (j != w.b) selrow[n++] = j;
        }
        selrow[n++] = w.b;
    }
    if (K <= GATE_SORT_MAX) {
        int v[GATE_SORT_MAX];
#pragma unroll
        for (int i = 0; i < GATE_SORT_MAX; i++) v[i] = i < n ? selrow[i] : 0x7fffffff;
        gate_sort_row<GATE_SORT_MAX>(a, lists, w, v, n, selrow, mask);
        return;
    }
    if (w.live) {
        for (int i = 1; i < n; i++) {
            int x = selrow[i], p = i;
            while (p > 0 && selrow[p - 1] > x) {
                selrow[p] = selrow[p - 1];
                p--;
            }
            selrow[p] = x;
        }
        for (int i = n; i < K; i++) selrow[i] = -1;
    }
    for (int i = 0; i < K; i++) /* every lane K times: gate_count is collective */
        gate_count(lists, i < n && selrow[i] != w.b ? selrow[i] : -1, a.Hkl, mask);
}

/* gate_finish_row for a ranked row whose picks are in registers: the
 * first n of p[0 .. W) (W < N, so that the own block fits beside them),
 * sorted and written once.  Through the selection row (written, then read
 * back to sort) each row waited on a global round trip at its CTA's end:
 * ~6 % of k_gate_ws's stall samples at 512K (docs/perf.md, CUDA v45). */
template <int W, int N>
__device__ __forceinline__ void gate_finish_picked(const gpu_args &a, const moba_seq &sq, int kh,
                                                   const gate_row &w, const int *p, int n,
                                                   int32_t *selrow, unsigned mask)
{
    static_assert(W < N, "the picks and the own block fit the network");
    int32_t *lists = gate_lists(a, sq, kh);
    int v[N];
#pragma unroll
    for (int i = 0; i < N; i++) v[i] = i < W && i < n ? p[i] : i == n ? w.b : 0x7fffffff;
    gate_sort_row<N>(a, lists, w, v, w.live ? n + 1 : 0, selrow, mask);
}

#endif /* MOBA_GPU_GATE_ROWS_CUH */
