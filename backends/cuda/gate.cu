/*
 * Gating on the device: block centroids, fused scores + top-k, and the
 * key-centric work lists, with no host round trip between them.
 *
 * The score matrix [T, nb] never reaches global memory.  Two scoring
 * kernels share the per-row bookkeeping of gate_rows.cuh: k_gate_mma
 * (gate_mma.cuh: tensor cores, 128 rows per CTA, ranked from registers)
 * for f16/bf16 at D = 32, 64, 96, 128 and 256 on CUDA sm_80+, or on sm_90a at
 * 64 and 128 its warp-specialized form k_gate_ws (gate_ws.cuh), and k_gate here (f32
 * FMAs through a shared score tile) for everything else, HIP included.
 */
#include "gate_ws.cuh"
#include "tma_map.cuh"

#include <string.h>

#define GATE_THREADS 256
#define GATE_DC 32 /* head-dim chunk staged in shared memory */
#define GATE_BC 64 /* candidate blocks per score tile */
#define GATE_TPR 4 /* threads per query row when ranking */

/* Centroids: each thread owns V consecutive dimensions of one (block, kv
 * head) pair, 16 bytes of a key row where K and its rows are 16-byte
 * aligned (V = 16 / sizeof(element)), else one (V = 1), and adds the
 * block's keys to them in order in f32 (sequential, as the CPU backend
 * does), then rounds the mean; 16-bit dtypes also get the mean in the
 * storage dtype for the tensor-core gate.  The pairs are dealt flat, the
 * kv heads of a block side by side, so that the threads of a CTA read a
 * key row's heads as one contiguous run.  (One thread per dimension and a
 * CTA per pair made eight 2-byte loads of every 16 bytes: ~3.3 TB/s at
 * 512K, docs/perf.md CUDA v38.)  The sums and their order are the same
 * for every V, so the centroids do not depend on it. */
#define CENT_THREADS 256
template <int DT, int V>
__global__ void __launch_bounds__(CENT_THREADS)
k_centroid(const typename gpu_store<DT>::type *k, float *cent, unsigned short *cent16,
           const gpu_block *blocks, int64_t nblocks, int Hk, int D)
{
    typedef typename gpu_store<DT>::type T;
    static_assert(V == 1 || V * sizeof(T) == 16, "one element or one 16-byte vector");
    const int nv = D / V; /* threads per pair */
    const int64_t idx = (int64_t)blockIdx.x * CENT_THREADS + threadIdx.x;
    if (idx >= nblocks * Hk * nv) return;
    const int64_t pair = idx / nv;
    const int d0 = (int)(idx % nv) * V, kh = (int)(pair % Hk);
    const int64_t g = pair / Hk;
    const gpu_block b = blocks[g];
    const size_t row = (size_t)Hk * D;
    const T *p = k + ((size_t)b.start * Hk + kh) * D + d0;
    float acc[V];
#pragma unroll
    for (int e = 0; e < V; e++) acc[e] = 0.0f;
    /* Unrolled so that several keys' loads are in flight; the adds stay in
     * key order. */
#pragma unroll 4
    for (int u = 0; u < b.len; u++) {
        T x[V];
        if (V == 1) {
            x[0] = p[(size_t)u * row];
        } else {
            /* One 16-byte load, its bytes taken apart by memcpy: HIP's
             * vector types have constructors and cannot share a union. */
            const uint4 w = *(const uint4 *)(p + (size_t)u * row);
            memcpy(x, &w, sizeof x);
        }
#pragma unroll
        for (int e = 0; e < V; e++) acc[e] += gpu_to_f32<DT>(x[e]);
    }
    const size_t o = ((size_t)g * Hk + kh) * D + d0;
#pragma unroll
    for (int e = 0; e < V; e++) {
        cent[o + e] = gpu_round<DT>(acc[e] / (float)b.len);
        if (DT != 0) cent16[o + e] = gpu_f32_to_16<DT>(acc[e] / (float)b.len);
    }
}

/* Score tile of 64 query rows x 64 candidate blocks into sc (shared). */
template <int DT>
__device__ void gate_simt_tile(const typename gpu_store<DT>::type *q,
                                const float *cent, const gpu_args &a,
                                int64_t tok0, int rows, int h, int64_t cbase,
                                int j0, int jn, float (*qs)[GATE_DC + 1],
                                float (*cs)[GATE_DC + 1],
                                float (*sc)[GATE_BC + 1])
{
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int D = a.D;
    float r[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) r[i][j] = 0.0f;
    for (int d0 = 0; d0 < D; d0 += GATE_DC) {
        for (int e = tid; e < GPU_TILE_ROWS * GATE_DC; e += GATE_THREADS) {
            int rr = e / GATE_DC, dd = e % GATE_DC;
            float x = 0.0f, c = 0.0f;
            if (rr < rows && d0 + dd < D)
                x = gpu_to_f32<DT>(q[((size_t)(tok0 + rr) * a.Hq + h) * D + d0 + dd]);
            if (rr < jn && d0 + dd < D)
                c = cent[(size_t)(cbase + (int64_t)(j0 + rr) * a.Hk) * D + d0 + dd];
            qs[rr][dd] = x;
            cs[rr][dd] = c;
        }
        __syncthreads();
#pragma unroll 8
        for (int dd = 0; dd < GATE_DC; dd++) {
            float qv[4], cv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) qv[i] = qs[ty * 4 + i][dd];
#pragma unroll
            for (int j = 0; j < 4; j++) cv[j] = cs[tx + 16 * j][dd];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) r[i][j] = fmaf(qv[i], cv[j], r[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) sc[ty * 4 + i][tx + 16 * j] = r[i][j];
    __syncthreads();
}

/* One CTA per (64-row query tile, query head): scores from gate_simt_tile
 * (f32 FMAs: any dtype and head dim, HIP included) staged in shared memory,
 * each row ranked by its 4 owner threads, whose lists are merged per pass
 * (gate_rows.cuh). */
template <int DT>
__global__ void __launch_bounds__(GATE_THREADS)
k_gate(const typename gpu_store<DT>::type *q, gpu_args a)
{
    __shared__ float qs[GPU_TILE_ROWS][GATE_DC + 1];
    __shared__ float cs[GATE_BC][GATE_DC + 1];
    /* Scores while scanning, the per-thread lists while merging. */
    __shared__ union {
        float sc[GPU_TILE_ROWS][GATE_BC + 1];
        struct {
            float v[GPU_TILE_ROWS][GATE_TPR][GPU_TOPK];
            int i[GPU_TILE_ROWS][GATE_TPR][GPU_TOPK];
        } l;
    } sm;
    __shared__ gate_pass_state ps[GPU_TILE_ROWS];

    const gpu_qtile tile = a.qtiles[blockIdx.x];
    const int h = a.h0 + blockIdx.y, kh = h / a.group;
    const moba_seq sq = a.seqs[tile.seq];
    const int K = a.K;
    const int tid = threadIdx.x, row = tid / GATE_TPR, sub = tid % GATE_TPR;
    const gate_row me = gate_row_info(a, sq, tile, row);
    const gate_tile gt = gate_tile_info(a, sq, tile);
    const int jend_tile = gt.jend;
    const int64_t tok0 = sq.start + tile.row0;
    const int64_t cbase = sq.block_offset * a.Hk + kh;

    if (sub == 0) gate_pass_init(ps[row]);
    const int npass = (K - 1 + GPU_TOPK - 1) / GPU_TOPK;
    __syncthreads();
    const bool need_rank = gt.need_rank;
    for (int pass = 0; pass < npass && need_rank; pass++) {
        float val[GPU_TOPK];
        int idx[GPU_TOPK];
        gpu_top_clear(val, idx);
        const gate_pass_state prev = ps[row];
        for (int j0 = 0; j0 < jend_tile; j0 += GATE_BC) {
            int jn = jend_tile - j0 < GATE_BC ? jend_tile - j0 : GATE_BC;
            gate_simt_tile<DT>(q, a.cent, a, tok0, tile.rows, h, cbase, j0, jn, qs, cs, sm.sc);
            if (me.live && me.want > 0) {
                for (int c = sub; c < jn; c += GATE_TPR) {
                    int j = j0 + c;
                    if (j >= me.jend || j == me.b) continue;
                    float s = sm.sc[row][c];
                    if (prev.j >= 0 && !gpu_better(prev.s, prev.j, s, j)) continue;
                    gpu_top_push(val, idx, s, j);
                }
            }
            __syncthreads();
        }
#pragma unroll
        for (int i = 0; i < GPU_TOPK; i++) {
            sm.l.v[row][sub][i] = val[i];
            sm.l.i[row][sub][i] = idx[i];
        }
        __syncthreads();
        if (sub == 0)
            gate_pass_merge(me, ps[row], &sm.l.v[row][0][0], &sm.l.i[row][0][0], GATE_TPR,
                            gate_sel_row(a, tok0, row, h));
        __syncthreads();
    }
    /* The lanes of each warp's rows (sub 0), dead rows too: they count
     * together. */
    if (sub == 0) {
        static_assert(32 % GATE_TPR == 0, "a warp holds whole rows");
        unsigned mask = 0;
        for (int l = 0; l < 32; l += GATE_TPR) mask |= 1u << l;
        gate_finish_row(a, sq, kh, me, need_rank, ps[row].n, gate_sel_row(a, tok0, row, h),
                        mask);
    }
}

/* Exclusive scans of the list sizes and of their 64-row tile counts, in one
 * CTA, in tiles of SCAN_THREADS x SCAN_PER lists.  Each thread sums
 * SCAN_PER neighbours; each group of 32 lanes scans its sums with xor
 * shuffles and writes its total; after one barrier every group adds the
 * totals of the groups before it (five shuffles more), and every thread
 * the tile's total to its carry.  The totals are double-buffered by tile
 * parity, so one barrier a tile is enough: a group that writes tile i + 2's
 * totals has passed tile i + 1's barrier, which every group reaches only
 * after reading tile i's.  (A log-step scan in shared memory took 22
 * barriers a tile: 0.122 ms at 512K, docs/perf.md CUDA v38; each thread
 * once summed one contiguous run of n / SCAN_THREADS lists, whose loads
 * touched 32 lines a warp, CUDA v18.)  Only xor shuffles, by every thread
 * alike: HIP-CPU runs no other kind right (scripts/hip_cpu/check.sh). */
#define SCAN_THREADS 1024
#define SCAN_PER 4
#define SCAN_GROUP 32
#define SCAN_GROUPS (SCAN_THREADS / SCAN_GROUP)
static_assert(SCAN_GROUPS <= SCAN_GROUP, "one lane per group total");

/* Inclusive scan of x over the SCAN_GROUP lanes of this thread's group;
 * *total gets the group's sum. */
__device__ __forceinline__ int scan_group(int x, int lane, int *total)
{
    int sum = x;
#pragma unroll
    for (int off = 1; off < SCAN_GROUP; off *= 2) {
        const int y = MOBA_SHFL_XOR(sum, off, SCAN_GROUP);
        if (lane & off) x += y;
        sum += y;
    }
    *total = sum;
    return x;
}

/* The sum over lanes of v where lane < n, and over all lanes (*all). */
__device__ __forceinline__ int sum_below(int v, int lane, int n, int *all)
{
    int below = lane < n ? v : 0;
#pragma unroll
    for (int off = 1; off < SCAN_GROUP; off *= 2) {
        below += MOBA_SHFL_XOR(below, off, SCAN_GROUP);
        v += MOBA_SHFL_XOR(v, off, SCAN_GROUP);
    }
    *all = v;
    return below;
}

__global__ void __launch_bounds__(SCAN_THREADS) k_scan(gpu_args a)
{
    __shared__ int ge[2][SCAN_GROUPS], gt[2][SCAN_GROUPS];
    const int64_t n = a.nlists;
    const int tid = threadIdx.x, lane = tid % SCAN_GROUP, grp = tid / SCAN_GROUP;
    int carry_e = 0, carry_t = 0;
    int c[SCAN_PER];
#pragma unroll
    for (int x = 0; x < SCAN_PER; x++) {
        const int64_t i = (int64_t)tid * SCAN_PER + x;
        c[x] = i < n ? a.counts[gpu_list_at(&a, (int)i)] : 0;
    }
    int par = 0;
    for (int64_t base = 0; base < n; base += SCAN_THREADS * SCAN_PER, par ^= 1) {
        const int64_t i0 = base + (int64_t)tid * SCAN_PER;
        int e = 0, t = 0;
#pragma unroll
        for (int x = 0; x < SCAN_PER; x++) {
            e += c[x];
            t += (c[x] + GPU_TILE_ROWS - 1) / GPU_TILE_ROWS;
        }
        /* The next tile's counts load while this one is scanned. */
        const int64_t j0 = i0 + SCAN_THREADS * SCAN_PER;
        int cn[SCAN_PER];
#pragma unroll
        for (int x = 0; x < SCAN_PER; x++) cn[x] = j0 + x < n ? a.counts[gpu_list_at(&a, (int)(j0 + x))] : 0;
        int tot_e, tot_t;
        const int ie = scan_group(e, lane, &tot_e), it = scan_group(t, lane, &tot_t);
        if (lane == 0) {
            ge[par][grp] = tot_e;
            gt[par][grp] = tot_t;
        }
        __syncthreads();
        const int xe = lane < SCAN_GROUPS ? ge[par][lane] : 0;
        const int xt = lane < SCAN_GROUPS ? gt[par][lane] : 0;
        int all_e, all_t;
        e = carry_e + sum_below(xe, lane, grp, &all_e) + ie - e;
        t = carry_t + sum_below(xt, lane, grp, &all_t) + it - t;
#pragma unroll
        for (int x = 0; x < SCAN_PER; x++) {
            if (i0 + x < n) {
                a.list_off[i0 + x] = e;
                a.cursor[i0 + x] = e; /* by place (gpu_cursor) */
                a.tile_off[i0 + x] = t;
            }
            e += c[x];
            t += (c[x] + GPU_TILE_ROWS - 1) / GPU_TILE_ROWS;
            c[x] = cn[x];
        }
        carry_e += all_e;
        carry_t += all_t;
    }
    if (tid == 0) {
        a.list_off[n] = carry_e;
        a.tile_off[n] = carry_t;
    }
}

/* runs (gpu_args, run_bounds.h): a thread a chunk, each run's first
 * tile and list found by a search of tile_off. */
#define RUNS_THREADS 256
__global__ void __launch_bounds__(RUNS_THREADS) k_runs(gpu_args a, int grid)
{
    const int64_t c = (int64_t)blockIdx.x * RUNS_THREADS + threadIdx.x;
    const int total = a.tile_off[a.nlists];
    const int chunk = gpu_run_chunk(a.chunk, total, grid);
    if (c > gpu_run_count(chunk, total)) return;
    int lst;
    const int beg = gpu_run_begin(a.tile_off, (int)a.nlists, chunk, (int)c, &lst);
    *(int2 *)(a.runs + 2 * c) = make_int2(beg, lst);
}

extern "C" cudaError_t moba_gpu_runs(const gpu_args *a, int grid)
{
    /* Runs of a chunk: at most the group's tiles (gpu_runs_at), and one
     * more that begins at the end. */
    const int64_t runs = a->chunk > 0 ? gpu_group_entries(a) / GPU_TILE_ROWS + a->nlists : grid;
    k_runs<<<(unsigned)((runs + RUNS_THREADS) / RUNS_THREADS), RUNS_THREADS, 0, a->stream>>>(*a, grid);
    return cudaGetLastError();
}

/* Where slot block j (>= 0) of this thread's row goes in its list,
 * lists[j * step] (gpu_cursor_step): the next place of the list's
 * cursor.  With warp matching (NVIDIA), the lanes that picked the same
 * block take their places with one atomic: the rows of a tile mostly
 * pick the same few blocks (1M tokens in 16384-key blocks, top-3: every
 * lane of a warp the same two), and the atomics on one cursor are served
 * one after the other (k_fill took 3.98 ms at 256K, CUDA v23).  Every
 * lane of the warp calls it, j < 0 for none. */
__device__ __forceinline__ int fill_place(int32_t *lists, int j, int step)
{
#if MOBA_GPU_HAVE_MATCH
    const unsigned same = __match_any_sync(0xffffffffu, j);
    const int lane = (int)(threadIdx.x % 32), leader = __ffs(same) - 1;
    int base = 0;
    if (j >= 0 && lane == leader) base = atomicAdd(&lists[(int64_t)j * step], __popc(same));
    base = __shfl_sync(0xffffffffu, base, leader);
    return base + __popc(same & ((1u << lane) - 1u));
#else
    return j >= 0 ? atomicAdd(&lists[(int64_t)j * step], 1) : 0;
#endif
}

/* How a row's slots meet their lists (fill_row). */
enum {
    FILL_CURSOR, /* places from the cursors (lists[g * gpu_cursor_step])  */
    FILL_COUNT,  /* counted into a span's lists in shared memory, lists[g] */
    FILL_PLACE   /* places from those, which hold each list's next place   */
};

/* Where row r of tile t, query head h, meets the lists: its row of the
 * selection (qrow), the list index of its sequence's block 0 counted from
 * lo (g0), its own block (b), and whether it is past the tile's rows. */
struct fill_rowinfo {
    int64_t qrow, erow; /* erow: its part_ent run (gpu_ent_row) */
    int g0, b;
    bool dead;
};

__device__ __forceinline__ fill_rowinfo fill_row_info(const gpu_args &a, const gpu_qtile &t,
                                                      int r, int h, int64_t lo)
{
    const moba_seq sq = a.seqs[t.seq];
    const int tloc = t.row0 + r;
    fill_rowinfo w;
    w.qrow = (sq.start + tloc) * a.Hq + h;
    w.erow = gpu_ent_row(&a, sq.start + tloc, h);
    w.g0 = (int)(sq.block_offset - lo);
    w.b = tloc / a.S;
    w.dead = r >= t.rows;
    return w;
}

/* Slots i0 .. i0 + 7 of a row as list indices (g0 + block), -1 for none:
 * the own block, and every slot from the first empty one on (end). */
__device__ __forceinline__ void fill_slots(const gpu_args &a, const fill_rowinfo &w, int i0,
                                           bool &end, int *j)
{
    const int32_t *selrow = a.sel + w.qrow * a.K;
#pragma unroll
    for (int x = 0; x < 8; x++) j[x] = !end && i0 + x < a.K ? __ldg(selrow + i0 + x) : -1;
#pragma unroll
    for (int x = 0; x < 8; x++) {
        end = end || j[x] < 0;
        j[x] = end || j[x] == w.b ? -1 : w.g0 + j[x];
    }
}

/* A live row's partial places past its last partial (c of K - 1 used):
 * entry 0, so that the merges may read a row's K - 1 entry indices, and
 * the lse they point at, before they know how many it uses.  Not for a
 * dead row, whose qrow may be the next sequence's row. */
__device__ __forceinline__ void fill_ent_tail(const gpu_args &a, int64_t erow, int c)
{
    for (; c < a.K - 1; c++) a.part_ent[erow + c] = 0;
}

/* The entries of row w (dead rows too: they have no slots, and every
 * lane of the warp must call, for fill_place's matching), and each
 * partial's entry index (part_ent).  A slot's list
 * counts blocks from the lo that w was made with (w.g0).  The
 * row's slots go eight at a time: their block ids are read together,
 * then their places are taken together (one slot after the other, each
 * atomic waited for the slot's read and the store the atomic before it:
 * 1.26 ms at 128K, docs/perf.md CUDA v14).  c, a slot's place among the
 * row's partials, counts its past blocks in order. */
template <int MODE>
__device__ __forceinline__ void fill_row(const gpu_args &a, const fill_rowinfo &w,
                                         int32_t *lists)
{
    int c = 0;
    bool end = w.dead;
    for (int i0 = 0; i0 < a.K; i0 += 8) {
        int j[8];
        fill_slots(a, w, i0, end, j);
        if (MODE == FILL_COUNT) {
#pragma unroll
            for (int x = 0; x < 8; x++)
                if (j[x] >= 0) atomicAdd(&lists[j[x]], 1);
        } else {
            int pos[8];
#pragma unroll
            for (int x = 0; x < 8; x++)
                pos[x] = MODE == FILL_CURSOR ? fill_place(lists, j[x], gpu_cursor_step(&a))
                                             : j[x] >= 0 ? atomicAdd(&lists[j[x]], 1) : 0;
#pragma unroll
            for (int x = 0; x < 8; x++)
                if (j[x] >= 0) {
                    a.entries[pos[x]] = (int32_t)(w.qrow * (a.K - 1) + c);
                    a.part_ent[w.erow + c++] = pos[x];
                }
        }
    }
    if (MODE != FILL_COUNT && !w.dead) fill_ent_tail(a, w.erow, c);
}

/* Entries of the lists: one thread per query row.  The order inside a list
 * depends on atomics, but each row's arithmetic does not depend on which
 * tile it lands in, and partials are addressed by (row, slot), so outputs
 * stay bitwise deterministic. */
__global__ void k_fill(gpu_args a)
{
    const int h = a.h0 + blockIdx.y;
    fill_row<FILL_CURSOR>(a, fill_row_info(a, a.qtiles[blockIdx.x], (int)threadIdx.x, h, 0),
                          gpu_cursor(&a, h / a.group - a.kh0));
}

/* The lists' entries again, a span of query tiles per CTA (for one kv
 * head and all of its query heads), where k_fill takes a global atomic per
 * (row, slot).  The span's picks are counted per list in shared memory,
 * each list the span touches takes its places with one global atomic, and
 * the picks take them from shared memory: the global atomics shrink by the
 * picks per touched list (14-250x on the benchmark's shapes), and a list's
 * entries from one span land side by side.  A pick's place among its
 * list's picks of the span is the count its shared atomic returned, kept
 * in a register with the pick until the bases are known, so each pick
 * takes one shared atomic: with two (the second to hand out the places
 * again), the shared atomics held the kernel on short-scoreboard and MIO
 * stalls at about what k_fill's global atomics had cost (H200, docs/
 * perf.md CUDA v36: 1.27x k_fill at 128K, 1.05x at 512K, 4.25x with
 * 16384-key blocks, where k_fill's atomics on a few addresses wait on
 * each other; one atomic: 1.30x / 1.33x faster again, CUDA v37).  The
 * atomics go unmatched: warp matching cost 1.15x at 128K and gained
 * nothing with few blocks.  On CUDA the entries then go out through
 * shared memory as runs (the staged form below: 1.64x at 512K, 1.67x at
 * 128K, CUDA v37).  The order inside a list changes; results do not
 * (as k_fill says).  Selections of more than eight slots, or spans of
 * more rows than the registers hold (MOBA_CUDA_FILL_SPAN), count first
 * and take the places with a second atomic; a span whose sequences hold
 * more than a.fill_cap (GPU_FILL_CAP) blocks takes its places from the
 * cursors directly. */
#define FILL_THREADS 1024
#define FILL_REG_ROWS 4 /* rows per thread whose picks the registers hold */
#define FILL_ROWS (FILL_THREADS * FILL_REG_ROWS) /* per CTA, its query heads together */
#define FILL_PICK_BITS 14 /* a pick's list (< GPU_FILL_CAP) in its low bits */
static_assert(GPU_FILL_CAP <= 1 << FILL_PICK_BITS, "a list index fits a pick's low bits");
static_assert(FILL_ROWS < 1 << (31 - FILL_PICK_BITS), "a pick's rank fits its high bits");

/* Item x of a span of nt tiles from t0 (query head kh * group + x /
 * (nt * 64)): the tile and the row in it, and the head. */
__device__ __forceinline__ fill_rowinfo fill_item(const gpu_args &a, int64_t t0, int nt, int kh,
                                                  int x, int64_t lo)
{
    const int per_head = nt * GPU_TILE_ROWS, hh = x / per_head, rem = x - hh * per_head;
    return fill_row_info(a, a.qtiles[t0 + rem / GPU_TILE_ROWS], rem % GPU_TILE_ROWS,
                         kh * a.group + hh, lo);
}

/* Every row of the span, each query head of kv head kh (GQA: the group's
 * heads fill the same lists, so they share the counts).  Items come in
 * whole 64-row tiles, so a warp's lanes are all there. */
template <int MODE>
__device__ __forceinline__ void fill_span_rows(const gpu_args &a, int64_t t0, int nt, int kh,
                                               int32_t *lists, int64_t lo)
{
    const int items = nt * GPU_TILE_ROWS * a.group;
    for (int x = (int)threadIdx.x; x < items; x += FILL_THREADS)
        fill_row<MODE>(a, fill_item(a, t0, nt, kh, x, lo), lists);
}

/* Pass 1 of the register path for one row (item x, if it is one): each
 * slot's list counted in cnt, the pick (list | rank << FILL_PICK_BITS, or
 * ~0 for none) kept in p. */
__device__ __forceinline__ void fill_rank_row(const gpu_args &a, int64_t t0, int nt, int kh,
                                              int x, int items, int32_t *cnt, int64_t lo,
                                              unsigned *p)
{
    int j[8];
    bool end = x >= items;
    if (!end) {
        const fill_rowinfo w = fill_item(a, t0, nt, kh, x, lo);
        end = w.dead;
        fill_slots(a, w, 0, end, j);
    } else {
#pragma unroll
        for (int s = 0; s < 8; s++) j[s] = -1;
    }
#pragma unroll
    for (int s = 0; s < 8; s++)
        p[s] = j[s] >= 0 ? (unsigned)j[s] | (unsigned)atomicAdd(&cnt[j[s]], 1) << FILL_PICK_BITS
                         : ~0u;
}

/* Pass 3 of the register path: row x's entries to dst at at[list] plus
 * their ranks (the entries at their lists' bases; staged, val at the
 * lists' offsets), and their entry indices, base[list] plus the ranks
 * (the lists' bases), to part_ent; c counts the row's past blocks in
 * slot order. */
__device__ __forceinline__ void fill_put_row(const gpu_args &a, int64_t t0, int nt, int kh,
                                             int x, int items, int64_t lo, const unsigned *p,
                                             const int32_t *at, int32_t *dst,
                                             const int32_t *base)
{
    if (x >= items || a.K < 2) return;
    const fill_rowinfo w = fill_item(a, t0, nt, kh, x, lo);
    if (w.dead) return; /* no picks */
    const int64_t e0 = w.qrow * (a.K - 1);
    int c = 0, ent[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma unroll
    for (int s = 0; s < 8; s++)
        if (p[s] != ~0u) {
            const int l = (int)(p[s] & ((1u << FILL_PICK_BITS) - 1u));
            const int r = (int)(p[s] >> FILL_PICK_BITS);
            dst[at[l] + r] = (int32_t)(e0 + c);
            /* ent[c], by selects: indexed at run time it would go to
             * local memory. */
#pragma unroll
            for (int u = 0; u < 8; u++) ent[u] = u == c ? base[l] + r : ent[u];
            c++;
        }
    /* The row as one or two 16-byte vectors (gpu_ent_pitch: K <= 8 here). */
    int4 *pe = (int4 *)(a.part_ent + w.erow);
    pe[0] = make_int4(ent[0], ent[1], ent[2], ent[3]);
    if (a.K > 5) pe[1] = make_int4(ent[4], ent[5], ent[6], ent[7]);
}

#if MOBA_GPU_FILL_STAGE
/* The staged form of pass 3: a span's entries go to shared memory grouped
 * by list (val), then out as runs, eight lanes per list, so that a
 * warp's stores land on a few sectors rather than one per pick (32 per
 * store instruction, each 4 bytes into another list: that pass held ~60 %
 * of the unstaged kernel's stall samples, CUDA v37; H200 ncu, 1.348
 * -> 0.824 ms at 512K B1, 0.608 -> 0.365 at 128K B2).  cnt holds the
 * lists' counts on entry; the lists' offsets in val go to cnt[0 .. n]
 * and their global bases to cnt[FILL_HALF ..]. */
#define FILL_HALF (GPU_FILL_CAP / 2)
#define FILL_STAGE_VALS (FILL_ROWS * 7) /* picks of a span of K <= 8 */
#define FILL_RUN_LANES 8
#define FILL_SMEM ((GPU_FILL_CAP + FILL_STAGE_VALS) * (int)sizeof(int32_t))

/* Exclusive scan of cnt[0 .. n) in place, total in cnt[n]; each touched
 * list's global base taken (one atomic per list) into cnt[FILL_HALF + l]. */
__device__ __forceinline__ void fill_stage_offsets(int32_t *cnt, int n, int32_t *cursor,
                                                   int64_t lo, int step)
{
    __shared__ int32_t wsum[FILL_THREADS / 32];
    const int tid = (int)threadIdx.x, lane = tid % 32, w = tid / 32;
    const int per = (n + FILL_THREADS - 1) / FILL_THREADS, i0 = tid * per;
    const int i1 = min(i0 + per, n);
    int s = 0;
    for (int i = i0; i < i1; i++) {
        const int32_t c = cnt[i];
        cnt[FILL_HALF + i] = c ? atomicAdd(&cursor[(lo + i) * step], c) : 0;
        s += c;
    }
    int x = s;
#pragma unroll
    for (int o = 1; o < 32; o *= 2) {
        const int y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
    }
    if (lane == 31) wsum[w] = x;
    __syncthreads();
    if (w == 0) {
        int v = lane < FILL_THREADS / 32 ? wsum[lane] : 0;
#pragma unroll
        for (int o = 1; o < 32; o *= 2) {
            const int y = __shfl_up_sync(0xffffffffu, v, o);
            if (lane >= o) v += y;
        }
        if (lane < FILL_THREADS / 32) wsum[lane] = v;
    }
    __syncthreads();
    int e = (w ? wsum[w - 1] : 0) + x - s;
    for (int i = i0; i < i1; i++) {
        const int32_t c = cnt[i];
        cnt[i] = e;
        e += c;
    }
    if (tid == FILL_THREADS - 1) cnt[n] = wsum[FILL_THREADS / 32 - 1];
}

/* Pass 4: every list's run of val to its place in the entries. */
__device__ __forceinline__ void fill_stage_out(const gpu_args &a, const int32_t *cnt,
                                               const int32_t *val, int n)
{
    const int l8 = (int)threadIdx.x % FILL_RUN_LANES;
    for (int l = (int)threadIdx.x / FILL_RUN_LANES; l < n; l += FILL_THREADS / FILL_RUN_LANES) {
        const int s = cnt[l], c = cnt[l + 1] - s, b = cnt[FILL_HALF + l];
        for (int k = l8; k < c; k += FILL_RUN_LANES) a.entries[b + k] = val[s + k];
    }
}
#endif

/* Grid: (spans of a.fill_span tiles, kv heads of the launch). */
__global__ void __launch_bounds__(FILL_THREADS) k_fill_span(gpu_args a)
{
#if MOBA_GPU_FILL_STAGE
    extern __shared__ int32_t fill_smem[]; /* FILL_SMEM bytes, 48 KB unstaged */
    int32_t *cnt = fill_smem;
#else
    __shared__ int32_t cnt[GPU_FILL_CAP];
#endif
    const int64_t t0 = (int64_t)blockIdx.x * a.fill_span;
    const int nt = (int)(a.ntiles - t0 < a.fill_span ? a.ntiles - t0 : a.fill_span);
    const int kl = (int)blockIdx.y, kh = a.kh0 + kl;
    const int items = nt * GPU_TILE_ROWS * a.group;
    int32_t *cursor = gpu_cursor(&a, kl); /* list (g, kl)'s is cursor[g * step] */
    /* Lists of every block of the span's sequences: [lo, lo + n). */
    const int64_t lo = a.seqs[a.qtiles[t0].seq].block_offset;
    const moba_seq last = a.seqs[a.qtiles[t0 + nt - 1].seq];
    const int64_t n = last.block_offset + last.nb - lo;
    if (n > a.fill_cap) {
        fill_span_rows<FILL_CURSOR>(a, t0, nt, kh, cursor, 0);
        return;
    }
    for (int i = (int)threadIdx.x; i < n; i += FILL_THREADS) cnt[i] = 0;
    __syncthreads();
    const bool reg = a.K <= 8 && items <= FILL_ROWS;
    unsigned p[FILL_REG_ROWS][8];
    if (reg) {
#pragma unroll
        for (int i = 0; i < FILL_REG_ROWS; i++)
            fill_rank_row(a, t0, nt, kh, (int)threadIdx.x + i * FILL_THREADS, items, cnt, lo, p[i]);
    } else {
        fill_span_rows<FILL_COUNT>(a, t0, nt, kh, cnt, lo);
    }
    __syncthreads();
    /* Pass 3 puts the entries at their lists' bases, at[list], plus their
     * ranks; staged, into val at the lists' offsets (cnt). */
    const int32_t *at = cnt;
#if MOBA_GPU_FILL_STAGE
    bool staged = false;
    int32_t *val = fill_smem + GPU_FILL_CAP;
    if (reg && n < FILL_HALF && a.fill_stage) {
        fill_stage_offsets(cnt, (int)n, cursor, lo, gpu_cursor_step(&a));
        __syncthreads();
        /* Unless the span holds more picks than val (only if a row's
         * selection lacked its own block, which the gate never writes). */
        staged = cnt[n] <= FILL_STAGE_VALS;
        at = cnt + FILL_HALF;
    } else
#endif
    {
        for (int i = (int)threadIdx.x; i < n; i += FILL_THREADS) {
            const int32_t c = cnt[i];
            if (c) cnt[i] = atomicAdd(&cursor[(lo + i) * gpu_cursor_step(&a)], c);
        }
        __syncthreads();
    }
    if (reg) {
        /* Two calls, so that each knows its stores' memory (STS or STG). */
#pragma unroll
        for (int i = 0; i < FILL_REG_ROWS; i++) {
            const int x = (int)threadIdx.x + i * FILL_THREADS;
#if MOBA_GPU_FILL_STAGE
            if (staged)
                fill_put_row(a, t0, nt, kh, x, items, lo, p[i], cnt, val, at);
            else
#endif
                fill_put_row(a, t0, nt, kh, x, items, lo, p[i], at, a.entries, at);
        }
    } else {
        fill_span_rows<FILL_PLACE>(a, t0, nt, kh, cnt, lo);
    }
#if MOBA_GPU_FILL_STAGE
    if (staged) {
        __syncthreads();
        fill_stage_out(a, cnt, val, (int)n);
    }
#endif
}

/* Query tiles per k_fill_span CTA: FILL_ROWS rows over the kv head's query
 * heads, fewer where that would leave fewer than four CTAs per SM;
 * a.fill_span if the caller set it (MOBA_CUDA_FILL_SPAN), 0 for k_fill. */
static int fill_span_tiles(const gpu_args *a)
{
    if (a->fill_span >= 0) return a->fill_span;
    int64_t f = FILL_ROWS / ((int64_t)GPU_TILE_ROWS * a->group);
    const int64_t fill = a->ntiles * a->Hkl / (4 * (int64_t)(a->sm_count > 0 ? a->sm_count : 1));
    if (f > fill) f = fill;
    return f < 1 ? 1 : (int)f;
}

#define CHECK_LAUNCH()                             \
    do {                                           \
        cudaError_t e_ = cudaGetLastError();       \
        if (e_ != cudaSuccess) return e_;          \
    } while (0)

#if MOBA_GPU_HAVE_MMA
/* k_gate_ws (sm_90a, up to top-8): its centroid tiles through TMA where
 * the map can be built and MOBA_CUDA_TMA allows it (gws_tma). */
template <int DT, int D, int W> static cudaError_t gate_ws_launch(const gpu_args *a, const void *q)
{
    gws_tma tm;
    memset(&tm, 0, sizeof tm);
    if (a->tma && a->nblocks <= INT32_MAX)
        tm.on = gpu_tma_encode_rows(&tm.c, a->cent16, D, a->Hk, a->nblocks, GTC_BC);
    void (*kern)(const unsigned short *, gpu_args, const gws_tma) =
        tm.on ? k_gate_ws<DT, D, W, true> : k_gate_ws<DT, D, W, false>;
    const int smem = (int)sizeof(gws_smem<D>) + WG_SMEM_ALIGN; /* room to align it */
    cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    dim3 gg((unsigned)a->ngtiles, (unsigned)a->nheads);
    kern<<<gg, GWS_THREADS, smem, a->stream>>>((const unsigned short *)q, *a, tm);
    return cudaGetLastError();
}

/* Both tensor-core gates' shared memory is above the 48 KB static limit:
 * opt in.  k_gate_ws where the wgmma kernels run (sm_90a code on a compute
 * 9.0 device), a pass is the whole selection (W < GPU_TOPK: up to
 * top-8) and D is 64 or 128 (its scorers hold two tiles' Q fragments,
 * 128 registers at D = 256, and its TMA boxes are whole 64 columns);
 * k_gate_mma elsewhere, and for longer selections, which take passes of 8
 * below the previous pass's bound: k_gate_ws's rankers keep no pass state
 * (its 64-register rankers of CUDA v35 spilled with lists of 8; since v45
 * they have 128, but passes were not brought back). */
template <int DT, int D, int W> static cudaError_t gate_mma_launch(const gpu_args *a, const void *q)
{
    if constexpr (W < GPU_TOPK && (D == 64 || D == 128))
        if (a->use_mma == GPU_MMA_WGMMA) return gate_ws_launch<DT, D, W>(a, q);
    const int smem = gtc_smem_bytes<D>();
    cudaError_t e = cudaFuncSetAttribute(k_gate_mma<DT, D, W>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    dim3 gg((unsigned)a->ngtiles, (unsigned)a->nheads);
    k_gate_mma<DT, D, W><<<gg, GTC_THREADS, smem, a->stream>>>((const unsigned short *)q, *a);
    return cudaGetLastError();
}

/* Lists as long as a pass needs: the row floor is a list's last entry, so
 * lists of 7 for top-8 (7 past blocks) keep it at the 7th best rather than
 * the 8th, and each insertion is a step shorter; 2 covers top-2 and top-3,
 * 4 top-4 and top-5.  Longer selections take passes of 8. */
template <int DT, int D> static cudaError_t gate_mma_run(const gpu_args *a, const void *q)
{
    if (a->K - 1 <= 2) return gate_mma_launch<DT, D, 2>(a, q);
    if (a->K - 1 <= 4) return gate_mma_launch<DT, D, 4>(a, q);
    if (a->K - 1 <= 7) return gate_mma_launch<DT, D, 7>(a, q);
    return gate_mma_launch<DT, D, GPU_TOPK>(a, q);
}
#endif

template <int DT> static cudaError_t centroids_run(const gpu_args *a, const void *k)
{
    typedef typename gpu_store<DT>::type T;
    constexpr int V = 16 / (int)sizeof(T);
    /* The vector path needs every key row's dimensions to start on 16
     * bytes: K itself, and D a multiple of V. */
    const bool vec = ((uintptr_t)k & 15) == 0 && a->D % V == 0;
    const int64_t n = a->nblocks * a->Hk * (vec ? a->D / V : a->D);
    const unsigned cg = (unsigned)((n + CENT_THREADS - 1) / CENT_THREADS);
    if (vec)
        k_centroid<DT, V><<<cg, CENT_THREADS, 0, a->stream>>>(
            (const T *)k, a->cent, a->cent16, a->blocks, a->nblocks, a->Hk, a->D);
    else
        k_centroid<DT, 1><<<cg, CENT_THREADS, 0, a->stream>>>(
            (const T *)k, a->cent, a->cent16, a->blocks, a->nblocks, a->Hk, a->D);
    CHECK_LAUNCH();
    return cudaMemsetAsync(a->counts, 0, sizeof(int32_t) * (size_t)a->nlists, a->stream);
}

template <int DT> static cudaError_t select_run(const gpu_args *a, const void *q)
{
    typedef typename gpu_store<DT>::type T;
    dim3 tg((unsigned)a->ntiles, (unsigned)a->nheads);
    /* Tensor cores under attend_inst.cuh's conditions (16-bit, D 32 / 64 /
     * 96 / 128 / 256, the host allows it, 16-byte aligned q). */
    bool simt = true;
#if MOBA_GPU_HAVE_MMA
    if constexpr (DT != 0) {
        cudaError_t e = cudaSuccess;
        /* k_gate_mma at D = 256 takes 105 KB, more than a CTA may have on
         * compute 8.6 / 8.9. */
        const bool mma = a->use_mma && ((uintptr_t)q & 15) == 0 &&
                         (a->D != 256 || a->smem_optin >= gtc_smem_bytes<256>());
        simt = false;
        switch (mma ? a->D : 0) {
        case 32: e = gate_mma_run<DT, 32>(a, q); break;
        case 64: e = gate_mma_run<DT, 64>(a, q); break;
        case 96: e = gate_mma_run<DT, 96>(a, q); break;
        case 128: e = gate_mma_run<DT, 128>(a, q); break;
        case 256: e = gate_mma_run<DT, 256>(a, q); break;
        default: simt = true;
        }
        if (e != cudaSuccess) return e;
    }
#endif
    if (simt) k_gate<DT><<<tg, GATE_THREADS, 0, a->stream>>>((const T *)q, *a);
    CHECK_LAUNCH();
    if (a->K == 1) return cudaSuccess;
    k_scan<<<1, SCAN_THREADS, 0, a->stream>>>(*a);
    CHECK_LAUNCH();
    gpu_args f = *a;
    f.fill_span = fill_span_tiles(a);
    if (f.fill_span == 0) {
        k_fill<<<tg, GPU_TILE_ROWS, 0, a->stream>>>(f);
    } else {
        dim3 fg((unsigned)((a->ntiles + f.fill_span - 1) / f.fill_span), (unsigned)a->Hkl);
#if MOBA_GPU_FILL_STAGE
        /* Devices that give a CTA less shared memory than the staging needs
         * (compute 8.6 and 8.9: 99 KB) store the entries one by one. */
        int smem = FILL_SMEM;
        if (!f.fill_stage || a->smem_optin < FILL_SMEM) {
            f.fill_stage = 0;
            smem = GPU_FILL_CAP * (int)sizeof(int32_t);
        }
        const cudaError_t e =
            cudaFuncSetAttribute(k_fill_span, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        if (e != cudaSuccess) return e;
        k_fill_span<<<fg, FILL_THREADS, smem, a->stream>>>(f);
#else
        k_fill_span<<<fg, FILL_THREADS, 0, a->stream>>>(f);
#endif
    }
    CHECK_LAUNCH();
    return cudaSuccess;
}

extern "C" cudaError_t moba_gpu_centroids(const gpu_args *a, const void *k)
{
    switch (a->dtype) {
    case 1: return centroids_run<1>(a, k);
    case 2: return centroids_run<2>(a, k);
    default: return centroids_run<0>(a, k);
    }
}

extern "C" cudaError_t moba_gpu_select(const gpu_args *a, const void *q)
{
    switch (a->dtype) {
    case 1: return select_run<1>(a, q);
    case 2: return select_run<2>(a, q);
    default: return select_run<0>(a, q);
    }
}
