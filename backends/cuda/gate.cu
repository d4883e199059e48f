/*
 * Gating on the device: block centroids, fused scores + top-k, and the
 * key-centric work lists, with no host round trip between them.
 *
 * The score matrix [T, nb] never reaches global memory: a CTA scores a
 * 64-query x 64-block tile in registers, stages it in shared memory for the
 * row owners, and each query keeps its best blocks in registers.  The tile
 * is scored with f32 FMAs (any dtype, HIP) or, for f16/bf16 at D = 64 and
 * 128 on CUDA sm_80+, with mma.sync (f32 accumulate); the ranking that
 * follows is the same code for both.
 */
#include "mma_common.cuh"

#define GATE_THREADS 256
#define GATE_DC 32 /* head-dim chunk staged in shared memory */
#define GATE_BC 64 /* candidate blocks per score tile */
#define GATE_TPR 4 /* threads per query row when ranking */

/* Each thread owns one dimension and adds the block's keys in order in f32
 * (sequential, as the CPU backend does), then rounds the mean. */
template <int DT>
__global__ void k_centroid(const typename gpu_store<DT>::type *k, float *cent,
                           const gpu_block *blocks, int Hk, int D)
{
    const int64_t g = blockIdx.x;
    const int kh = blockIdx.y;
    const gpu_block b = blocks[g];
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.0f;
        const typename gpu_store<DT>::type *p = k + ((size_t)b.start * Hk + kh) * D + d;
        for (int u = 0; u < b.len; u++) acc += gpu_to_f32<DT>(p[(size_t)u * Hk * D]);
        cent[((size_t)g * Hk + kh) * D + d] = gpu_round<DT>(acc / (float)b.len);
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

/* Shared staging of the score method: D = 0 is the SIMT tile (f32 chunks
 * of queries and centroids), D > 0 the mma tile (all D of 64 centroids in
 * the storage dtype; the queries stay in registers). */
template <int D> struct gate_stage {
    unsigned short cs[GATE_BC * (D + 8)];
};
template <> struct gate_stage<0> {
    float qs[GPU_TILE_ROWS][GATE_DC + 1];
    float cs[GATE_BC][GATE_DC + 1];
};

/* The mma tile's query A fragments, loaded once per CTA. */
template <int D> struct gate_qfrag {
    uint32_t f[D / 16][4];
};
template <> struct gate_qfrag<0> {
};

#if MOBA_GPU_HAVE_MMA
/* 8 warps: warp w scores query rows 16 (w % 4) .. +16 against blocks
 * 32 (w / 4) .. +32 (four 16x8 C tiles).  Its A fragments are rows
 * r0 + g and r0 + g + 8 of the tile; rows past the tile load zeros. */
template <int DT, int D>
__device__ __forceinline__ void gate_mma_load_q(gate_qfrag<D> &qf,
                                                const unsigned short *q,
                                                const gpu_args &a, int64_t tok0,
                                                int rows, int h)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int r0 = (warp % 4) * 16 + lane / 4, r1 = r0 + 8;
    mma_load_a<D>(qf.f, r0 < rows ? q + ((size_t)(tok0 + r0) * a.Hq + h) * D : NULL,
                  r1 < rows ? q + ((size_t)(tok0 + r1) * a.Hq + h) * D : NULL, lane % 4);
}

/* The mma twin of gate_simt_tile.  Centroids are f32 already rounded to
 * the storage dtype, so converting them back is exact; blocks past jn
 * stage as zeros (their columns are never ranked). */
template <int DT, int D>
__device__ __forceinline__ void gate_mma_tile(const gate_qfrag<D> &qf, const float *cent,
                                              const gpu_args &a, int64_t cbase, int j0,
                                              int jn, unsigned short *cs,
                                              float (*sc)[GATE_BC + 1])
{
    const int LD = mma_cfg<D>::LD, V4 = D / 4;
    for (int e = threadIdx.x; e < GATE_BC * V4; e += GATE_THREADS) {
        const int r = e / V4, c = e % V4;
        float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (r < jn)
            x = *(const float4 *)(cent + (size_t)(cbase + (int64_t)(j0 + r) * a.Hk) * D + c * 4);
        uint2 p;
        p.x = mma_pack<DT>(x.x, x.y);
        p.y = mma_pack<DT>(x.z, x.w);
        *(uint2 *)(cs + r * LD + c * 4) = p;
    }
    __syncthreads();
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = lane / 4, t = lane % 4;
    const int r0 = (warp % 4) * 16 + g, c0 = (warp / 4) * 32 + 2 * t;
#pragma unroll
    for (int n = 0; n < 4; n++) {
        float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        /* B column g: centroid 32 (w / 4) + 8 n + g, one row of cs. */
        const unsigned short *cr = cs + ((warp / 4) * 32 + n * 8 + g) * LD + 2 * t;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++)
            mma16816<DT>(s, qf.f[kk], *(const uint32_t *)(cr + kk * 16),
                         *(const uint32_t *)(cr + kk * 16 + 8));
        sc[r0][c0 + 8 * n] = s[0];
        sc[r0][c0 + 8 * n + 1] = s[1];
        sc[r0 + 8][c0 + 8 * n] = s[2];
        sc[r0 + 8][c0 + 8 * n + 1] = s[3];
    }
    __syncthreads();
}
#endif

/* One CTA per (query tile, query head).  Selections needing more than
 * GPU_TOPK past blocks take several passes, each collecting the next
 * GPU_TOPK below the previous pass's worst (a strict bound in the total
 * order, so no block is taken twice). */
/* ptxas (CUDA 13) spills a few bytes in the D = 64 mma instances at 64-80
 * registers unless told a minimum of CTAs per SM; 2 (<= 128 registers)
 * costs the other instances nothing.  HIP's second argument means
 * something else, so it gets none. */
#if MOBA_GPU_HAVE_MMA
#define GATE_BOUNDS __launch_bounds__(GATE_THREADS, 2)
#else
#define GATE_BOUNDS __launch_bounds__(GATE_THREADS)
#endif

template <int DT, int D>
__global__ void GATE_BOUNDS
k_gate(const typename gpu_store<DT>::type *q, gpu_args a)
{
    __shared__ __align__(16) gate_stage<D> st;
    /* Scores while scanning, the per-thread lists while merging. */
    __shared__ union {
        float sc[GPU_TILE_ROWS][GATE_BC + 1];
        struct {
            float v[GPU_TILE_ROWS][GATE_TPR][GPU_TOPK];
            int i[GPU_TILE_ROWS][GATE_TPR][GPU_TOPK];
        } l;
    } sm;
    __shared__ float bound_s[GPU_TILE_ROWS];
    __shared__ int bound_j[GPU_TILE_ROWS];
    __shared__ int nchosen[GPU_TILE_ROWS];

    const gpu_qtile tile = a.qtiles[blockIdx.x];
    const int h = blockIdx.y, kh = h / a.group;
    const moba_seq sq = a.seqs[tile.seq];
    const int S = a.S, K = a.K;
    const int tid = threadIdx.x, row = tid / GATE_TPR, sub = tid % GATE_TPR;
    const bool live = row < tile.rows;
    const int tloc = tile.row0 + row;
    const int b = tloc / S;
    /* Candidates j < jend, j != b. */
    const int jend = a.causal ? b : sq.nb;
    const int b_last = (tile.row0 + tile.rows - 1) / S;
    const int jend_tile = a.causal ? b_last : sq.nb;
    const int64_t tok0 = sq.start + tile.row0;
    const int64_t cbase = sq.block_offset * a.Hk + kh;
    const int ncand = live ? (a.causal ? b : sq.nb - 1) : 0;
    int32_t *selrow = a.sel + ((size_t)(tok0 + row) * a.Hq + h) * K;

    if (sub == 0 && row < GPU_TILE_ROWS) {
        bound_s[row] = 0.0f;
        bound_j[row] = -1;
        nchosen[row] = 0;
    }
#if MOBA_GPU_HAVE_MMA
    gate_qfrag<D> qf;
    if constexpr (D > 0) gate_mma_load_q<DT, D>(qf, q, a, tok0, tile.rows, h);
#endif
    const int want = K - 1 < ncand ? K - 1 : ncand;
    const int npass = (K - 1 + GPU_TOPK - 1) / GPU_TOPK;
    __syncthreads();
    /* When every candidate is selected, no scores are needed. */
    const bool need_rank = K - 1 < (a.causal ? b_last : sq.nb - 1);
    for (int pass = 0; pass < npass && need_rank; pass++) {
        float val[GPU_TOPK];
        int idx[GPU_TOPK];
#pragma unroll
        for (int i = 0; i < GPU_TOPK; i++) {
            val[i] = 0.0f;
            idx[i] = -1;
        }
        const bool bounded = bound_j[row] >= 0;
        const float bs = bound_s[row];
        const int bj = bound_j[row];
        for (int j0 = 0; j0 < jend_tile; j0 += GATE_BC) {
            int jn = jend_tile - j0 < GATE_BC ? jend_tile - j0 : GATE_BC;
#if MOBA_GPU_HAVE_MMA
            if constexpr (D > 0)
                gate_mma_tile<DT, D>(qf, a.cent, a, cbase, j0, jn, st.cs, sm.sc);
            else
#endif
                gate_simt_tile<DT>(q, a.cent, a, tok0, tile.rows, h, cbase, j0, jn,
                                   st.qs, st.cs, sm.sc);
            if (live && want > 0) {
                for (int c = sub; c < jn; c += GATE_TPR) {
                    int j = j0 + c;
                    if (j >= jend || j == b) continue;
                    float s = sm.sc[row][c];
                    if (bounded && !gpu_better(bs, bj, s, j)) continue;
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
        if (live && sub == 0 && nchosen[row] < want) {
#pragma unroll
            for (int i = 0; i < GPU_TOPK; i++) {
                val[i] = 0.0f;
                idx[i] = -1;
            }
            for (int w = 0; w < GATE_TPR; w++)
                for (int i = 0; i < GPU_TOPK; i++)
                    if (sm.l.i[row][w][i] >= 0)
                        gpu_top_push(val, idx, sm.l.v[row][w][i], sm.l.i[row][w][i]);
            int n = nchosen[row];
            for (int i = 0; i < GPU_TOPK && n < want; i++) {
                if (idx[i] < 0) break;
                selrow[n++] = idx[i];
                bound_s[row] = val[i];
                bound_j[row] = idx[i];
            }
            nchosen[row] = n;
        }
        __syncthreads();
    }
    if (!live || sub != 0) return;
    int n;
    if (need_rank) {
        n = nchosen[row];
    } else {
        /* All candidates: 0..jend-1 except b. */
        n = 0;
        for (int j = 0; j < jend; j++)
            if (j != b) selrow[n++] = j;
    }
    /* Own block in, ascending order, -1 padding; then count list entries. */
    selrow[n++] = b;
    for (int i = 1; i < n; i++) {
        int x = selrow[i], p = i;
        while (p > 0 && selrow[p - 1] > x) {
            selrow[p] = selrow[p - 1];
            p--;
        }
        selrow[p] = x;
    }
    for (int i = n; i < K; i++) selrow[i] = -1;
    for (int i = 0; i < n; i++)
        if (selrow[i] != b) atomicAdd(&a.counts[(sq.block_offset + selrow[i]) * a.Hk + kh], 1);
}

/* Exclusive scans of the list sizes and of their 64-row tile counts, in one
 * CTA: each thread sums a contiguous run, the run totals are scanned in
 * shared memory, then each thread writes its run. */
#define SCAN_THREADS 1024
__global__ void __launch_bounds__(SCAN_THREADS) k_scan(gpu_args a)
{
    __shared__ int se[SCAN_THREADS], st[SCAN_THREADS];
    const int64_t n = a.nlists;
    const int tid = threadIdx.x;
    const int64_t per = (n + SCAN_THREADS - 1) / SCAN_THREADS;
    const int64_t i0 = gpu_min64(n, tid * per), i1 = gpu_min64(n, i0 + per);
    int e = 0, t = 0;
    for (int64_t i = i0; i < i1; i++) {
        int c = a.counts[i];
        e += c;
        t += (c + GPU_TILE_ROWS - 1) / GPU_TILE_ROWS;
    }
    se[tid] = e;
    st[tid] = t;
    __syncthreads();
    for (int off = 1; off < SCAN_THREADS; off *= 2) {
        int xe = tid >= off ? se[tid - off] : 0, xt = tid >= off ? st[tid - off] : 0;
        __syncthreads();
        se[tid] += xe;
        st[tid] += xt;
        __syncthreads();
    }
    e = se[tid] - e;
    t = st[tid] - t;
    for (int64_t i = i0; i < i1; i++) {
        int c = a.counts[i];
        a.list_off[i] = e;
        a.cursor[i] = e;
        a.tile_off[i] = t;
        e += c;
        t += (c + GPU_TILE_ROWS - 1) / GPU_TILE_ROWS;
    }
    if (tid == SCAN_THREADS - 1) {
        a.list_off[n] = se[tid];
        a.tile_off[n] = st[tid];
    }
}

/* Entries of the lists: one thread per query row.  The order inside a list
 * depends on atomics, but each row's arithmetic does not depend on which
 * tile it lands in, and partials are addressed by (row, slot), so outputs
 * stay bitwise deterministic. */
__global__ void k_fill(gpu_args a)
{
    const gpu_qtile tile = a.qtiles[blockIdx.x];
    const int h = blockIdx.y, kh = h / a.group;
    const int r = threadIdx.x;
    if (r >= tile.rows) return;
    const moba_seq sq = a.seqs[tile.seq];
    const int tloc = tile.row0 + r, b = tloc / a.S;
    const int64_t qrow = (sq.start + tloc) * a.Hq + h;
    const int32_t *selrow = a.sel + qrow * a.K;
    int c = 0;
    for (int i = 0; i < a.K; i++) {
        int j = selrow[i];
        if (j < 0) break;
        if (j == b) continue;
        int pos = atomicAdd(&a.cursor[(sq.block_offset + j) * a.Hk + kh], 1);
        a.entries[pos] = (int32_t)(qrow * (a.K - 1) + c);
        c++;
    }
}

#define CHECK_LAUNCH()                             \
    do {                                           \
        cudaError_t e_ = cudaGetLastError();       \
        if (e_ != cudaSuccess) return e_;          \
    } while (0)

template <int DT>
static cudaError_t gate_run(const gpu_args *a, const void *q, const void *k)
{
    typedef typename gpu_store<DT>::type T;
    dim3 cg((unsigned)a->nblocks, (unsigned)a->Hk);
    int ct = a->D < 256 ? a->D : 256;
    k_centroid<DT><<<cg, ct, 0, a->stream>>>((const T *)k, a->cent, a->blocks, a->Hk, a->D);
    CHECK_LAUNCH();
    cudaError_t e = cudaMemsetAsync(a->counts, 0, sizeof(int32_t) * (size_t)a->nlists, a->stream);
    if (e != cudaSuccess) return e;
    dim3 tg((unsigned)a->ntiles, (unsigned)a->Hq);
    /* mma scores under attend_inst.cuh's conditions (16-bit, D 64 / 128,
     * the host allows it, 16-byte aligned q). */
    bool simt = true;
#if MOBA_GPU_HAVE_MMA
    if constexpr (DT != 0) {
        const bool mma = a->use_mma && ((uintptr_t)q & 15) == 0;
        simt = !(mma && (a->D == 128 || a->D == 64));
        if (mma && a->D == 128)
            k_gate<DT, 128><<<tg, GATE_THREADS, 0, a->stream>>>((const T *)q, *a);
        else if (mma && a->D == 64)
            k_gate<DT, 64><<<tg, GATE_THREADS, 0, a->stream>>>((const T *)q, *a);
    }
#endif
    if (simt) k_gate<DT, 0><<<tg, GATE_THREADS, 0, a->stream>>>((const T *)q, *a);
    CHECK_LAUNCH();
    if (a->K == 1) return cudaSuccess;
    k_scan<<<1, SCAN_THREADS, 0, a->stream>>>(*a);
    CHECK_LAUNCH();
    k_fill<<<tg, GPU_TILE_ROWS, 0, a->stream>>>(*a);
    CHECK_LAUNCH();
    return cudaSuccess;
}

extern "C" cudaError_t moba_gpu_gate(const gpu_args *a, const void *q, const void *k)
{
    switch (a->dtype) {
    case 1: return gate_run<1>(a, q, k);
    case 2: return gate_run<2>(a, q, k);
    default: return gate_run<0>(a, q, k);
    }
}
