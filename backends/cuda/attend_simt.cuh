/*
 * Portable (SIMT) block-sparse attention: f32 everywhere, and the HIP path
 * for every dtype.  Four threads share a query row, each owning the head
 * dimensions d = 4*i + sub, so a key row read from shared memory is a
 * broadcast across rows and contiguous across the four threads.
 *
 * Two kernels:
 *  - key-centric: per (block, kv head) list, 64 gathered rows attend the
 *    block's keys and write a partial (O / l in the storage dtype, lse);
 *  - own block: per query tile, the causal own block, then the row's
 *    partials merged in ascending slot order (fixed, so deterministic).
 */
#ifndef MOBA_GPU_ATTEND_SIMT_CUH
#define MOBA_GPU_ATTEND_SIMT_CUH

#include "kernels_common.cuh"

#define SIMT_THREADS 256
#define SIMT_TPR 4

/* Keys per shared-memory chunk: 32 KiB of K plus V in f32. */
template <int D> struct simt_cfg {
    enum { KC = 4096 / D > 64 ? 64 : 4096 / D };
};

/* Loads keys [u0, u0 + nk) of (block start, kv head) into ks/vs as f32;
 * rows past nk are zero so masked weights never meet garbage. */
template <int DT, int D>
__device__ __forceinline__ void simt_load_kv(const typename gpu_store<DT>::type *k,
                                             const typename gpu_store<DT>::type *v,
                                             int64_t tok0, int Hk, int kh, int nk,
                                             float *ks, float *vs)
{
    const int KC = simt_cfg<D>::KC;
    for (int e = threadIdx.x; e < KC * D; e += SIMT_THREADS) {
        int u = e / D, d = e % D;
        float x = 0.0f, y = 0.0f;
        if (u < nk) {
            size_t o = ((size_t)(tok0 + u) * Hk + kh) * D + d;
            x = gpu_to_f32<DT>(k[o]);
            y = gpu_to_f32<DT>(v[o]);
        }
        ks[e] = x;
        vs[e] = y;
    }
}

/* Online softmax over one chunk for one row; keys outside [lo, hi) (chunk
 * relative) are masked.  q is pre-scaled. */
template <int D>
__device__ __forceinline__ void simt_chunk(const float *ks, const float *vs, int lo,
                                           int hi, const float *q, float *acc,
                                           float &m, float &l, int sub)
{
    const int KC = simt_cfg<D>::KC;
    const int NI = D / SIMT_TPR;
    float s[KC];
    float mx = -INFINITY;
#pragma unroll
    for (int u = 0; u < KC; u++) {
        float x = 0.0f;
#pragma unroll
        for (int i = 0; i < NI; i++) x = fmaf(ks[u * D + i * SIMT_TPR + sub], q[i], x);
        x += MOBA_SHFL_XOR(x, 1, SIMT_TPR);
        x += MOBA_SHFL_XOR(x, 2, SIMT_TPR);
        s[u] = (u >= lo && u < hi) ? x : -INFINITY;
        mx = fmaxf(mx, s[u]);
    }
    const float mn = fmaxf(m, mx);
    if (mn == -INFINITY) return;
    const float alpha = m == -INFINITY ? 0.0f : __expf(m - mn);
    l *= alpha;
#pragma unroll
    for (int i = 0; i < NI; i++) acc[i] *= alpha;
#pragma unroll
    for (int u = 0; u < KC; u++) {
        float p = __expf(s[u] - mn);
        l += p;
#pragma unroll
        for (int i = 0; i < NI; i++) acc[i] = fmaf(p, vs[u * D + i * SIMT_TPR + sub], acc[i]);
    }
    m = mn;
}

template <int DT, int D>
__device__ __forceinline__ void simt_load_q(const typename gpu_store<DT>::type *q,
                                            int64_t qrow, bool live, float scale,
                                            int sub, float *qr)
{
#pragma unroll
    for (int i = 0; i < D / SIMT_TPR; i++)
        qr[i] = live ? scale * gpu_to_f32<DT>(q[(size_t)qrow * D + i * SIMT_TPR + sub]) : 0.0f;
}

/* The token-head row of partial index p (< 2^31), p / (K - 1), as a
 * multiply and a shift (gpu_backend.cu sets them; with d = K - 1 and l =
 * ceil(log2 d), mul = ceil(2^(32 + l) / d) is exact for every p below
 * 2^31, since p (mul d - 2^(32 + l)) < 2^31 d <= 2^(32 + l)).  The
 * division it replaces was ~25 dependent instructions per row, a quarter
 * of k_wgmma_kv_short's instructions (docs/perf.md, CUDA v14). */
__device__ __forceinline__ int gpu_entry_row(const gpu_args &a, int p)
{
    return (int)(((uint64_t)(uint32_t)p * a.km1_mul) >> a.km1_shift);
}

/* Tile `tile` of the key-centric work, and the next one too when it is
 * below tlast and of the same list (the wide kernels take tiles in
 * pairs): its (block, kv head) list, the block, the first entry, the row
 * count (<= ntl GPU_TILE_ROWS) and ntl, the tiles taken. */
struct gpu_kv_tile {
    gpu_block blk;
    int kh; /* within the launch's head group: the key-centric kernels get
             * k and v from its first kv head on (kv_heads_at) */
    int e0, nrows, ntl;
};
/* The ntl tiles from `tile` of list lst.  LI, the list number's type:
 * int64_t in gpu_kv_tile_at, as gpu_find_list gives it (32-bit there made
 * k_mma_kv_wide spill 12 bytes), int in k_mma_kv_narrow and
 * k_wgmma_kv_short (the host keeps total_blocks x Hk below 2^31; 64-bit
 * made k_mma_kv_narrow spill at its 168 registers). */
template <typename LI>
__device__ __forceinline__ gpu_kv_tile gpu_kv_tile_in(const gpu_args &a, LI lst, int tile, int ntl)
{
    gpu_kv_tile w;
    w.ntl = ntl;
    /* lst is a place in tile_order, not a list number. */
    w.kh = gpu_place_head(&a, (int)lst);
    w.blk = a.blocks[gpu_place_block(&a, (int)lst)];
    w.e0 = a.list_off[lst] + (tile - a.tile_off[lst]) * GPU_TILE_ROWS;
    w.nrows = min(ntl * GPU_TILE_ROWS, a.list_off[lst + 1] - w.e0);
    return w;
}

/* Tile `tile` of list lst, and the next one where it is of the same list
 * and before tlast (a pair). */
template <typename LI>
__device__ __forceinline__ gpu_kv_tile gpu_kv_tile_pair(const gpu_args &a, LI lst, int tile,
                                                        int tlast)
{
    return gpu_kv_tile_in(a, lst, tile, tile + 1 < tlast && tile + 1 < a.tile_off[lst + 1] ? 2 : 1);
}

/* The same, the list found by a binary search. */
__device__ __forceinline__ gpu_kv_tile gpu_kv_tile_at(const gpu_args &a, int tile, int tlast)
{
    return gpu_kv_tile_pair(a, gpu_find_list(a.tile_off, a.nlists, tile), tile, tlast);
}

template <int DT, int D>
__global__ void __launch_bounds__(SIMT_THREADS)
k_simt_kv(const typename gpu_store<DT>::type *q, const typename gpu_store<DT>::type *k,
          const typename gpu_store<DT>::type *v, gpu_args a)
{
    typedef typename gpu_store<DT>::type T;
    const int KC = simt_cfg<D>::KC;
    const int NI = D / SIMT_TPR;
    __shared__ float ks[KC * D], vs[KC * D];
    const int tid = threadIdx.x, r = tid / SIMT_TPR, sub = tid % SIMT_TPR;
    const int total = a.tile_off[a.nlists];
    for (int tile = blockIdx.x; tile < total; tile += gridDim.x) {
        const gpu_kv_tile w = gpu_kv_tile_at(a, tile, tile + 1);
        const gpu_block blk = w.blk;
        const bool live = r < w.nrows;
        const int pidx = live ? a.entries[w.e0 + r] : 0;
        const int64_t qrow = gpu_entry_row(a, pidx);
        float qr[NI], acc[NI];
        simt_load_q<DT, D>(q, qrow, live, a.scale, sub, qr);
#pragma unroll
        for (int i = 0; i < NI; i++) acc[i] = 0.0f;
        float m = -INFINITY, l = 0.0f;
        for (int u0 = 0; u0 < blk.len; u0 += KC) {
            const int nk = min(KC, blk.len - u0);
            __syncthreads();
            simt_load_kv<DT, D>(k, v, blk.start + u0, a.Hk, w.kh, nk, ks, vs);
            __syncthreads();
            simt_chunk<D>(ks, vs, 0, nk, qr, acc, m, l, sub);
        }
        if (live) {
            T *po = (T *)a.part_o + (size_t)pidx * D;
            const float inv = 1.0f / l;
#pragma unroll
            for (int i = 0; i < NI; i++) gpu_store_f32<DT>(po, i * SIMT_TPR + sub, acc[i] * inv);
            if (sub == 0) a.part_lse[w.e0 + r] = m + __logf(l);
        }
    }
}

/* Merges the row's own-block result (acc/l, m) with its partials in
 * ascending slot order, writes out and lse.  Called by the 4 threads of a
 * live row (sub 0..3), each holding the D/4 values d = 4x + sub; erow:
 * the row's entry indices in part_ent (gpu_ent_row). */
template <int DT, int D>
__device__ __forceinline__ void gpu_merge_row(const gpu_args &a, int64_t qrow, int64_t erow,
                                              int b, const float *acc, float m, float l,
                                              int sub, typename gpu_store<DT>::type *out,
                                              float *lse)
{
    typedef typename gpu_store<DT>::type T;
    const int NI = D / SIMT_TPR;
    const int32_t *selrow = a.sel + qrow * a.K;
    const int Km1 = a.K - 1;
    const float own_lse = m + __logf(l);
    float M = own_lse;
    int c = 0;
    for (int i = 0; i < a.K; i++) {
        int j = selrow[i];
        if (j < 0) break;
        if (j == b) continue;
        M = fmaxf(M, a.part_lse[a.part_ent[erow + c]]);
        c++;
    }
    float o[NI];
#pragma unroll
    for (int i = 0; i < NI; i++) o[i] = 0.0f;
    float L = 0.0f;
    c = 0;
    for (int i = 0; i < a.K; i++) {
        int j = selrow[i];
        if (j < 0) break;
        if (j == b) {
            float w = __expf(own_lse - M), wl = w / l;
            L += w;
#pragma unroll
            for (int x = 0; x < NI; x++) o[x] = fmaf(wl, acc[x], o[x]);
            continue;
        }
        const int64_t pidx = qrow * Km1 + c;
        const float w = __expf(a.part_lse[a.part_ent[erow + c++]] - M);
        const T *po = (const T *)a.part_o + (size_t)pidx * D;
        L += w;
#pragma unroll
        for (int x = 0; x < NI; x++) o[x] = fmaf(w, gpu_to_f32<DT>(po[x * SIMT_TPR + sub]), o[x]);
    }
    const float inv = 1.0f / L;
#pragma unroll
    for (int x = 0; x < NI; x++) gpu_store_f32<DT>(out, (size_t)qrow * D + x * SIMT_TPR + sub, o[x] * inv);
    if (lse && sub == 0) lse[qrow] = M + __logf(L);
}

template <int DT, int D>
__global__ void __launch_bounds__(SIMT_THREADS)
k_simt_own(const typename gpu_store<DT>::type *q, const typename gpu_store<DT>::type *k,
           const typename gpu_store<DT>::type *v, typename gpu_store<DT>::type *out,
           float *lse, gpu_args a)
{
    const int KC = simt_cfg<D>::KC;
    const int NI = D / SIMT_TPR;
    __shared__ float ks[KC * D], vs[KC * D];
    const gpu_qtile tile = a.qtiles[blockIdx.x];
    const int h = a.h0 + blockIdx.y, kh = h / a.group;
    const moba_seq sq = a.seqs[tile.seq];
    const int S = a.S;
    const int tid = threadIdx.x, r = tid / SIMT_TPR, sub = tid % SIMT_TPR;
    const bool live = r < tile.rows;
    const int tloc = tile.row0 + (live ? r : 0), b = tloc / S;
    const int last = tile.row0 + tile.rows - 1;
    const int klo = (tile.row0 / S) * S;
    const int khi = a.causal ? last + 1 : min((last / S + 1) * S, sq.len);
    /* This row's keys, sequence relative: its own block, causal. */
    const int lo = b * S, hi = a.causal ? tloc + 1 : min(lo + S, sq.len);
    const int64_t qrow = (sq.start + tloc) * a.Hq + h;
    float qr[NI], acc[NI];
    simt_load_q<DT, D>(q, qrow, live, a.scale, sub, qr);
#pragma unroll
    for (int i = 0; i < NI; i++) acc[i] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int u0 = klo; u0 < khi; u0 += KC) {
        const int nk = min(KC, khi - u0);
        __syncthreads();
        simt_load_kv<DT, D>(k, v, sq.start + u0, a.Hk, kh, nk, ks, vs);
        __syncthreads();
        simt_chunk<D>(ks, vs, lo - u0, hi - u0, qr, acc, m, l, sub);
    }
    if (live)
        gpu_merge_row<DT, D>(a, qrow, gpu_ent_row(&a, sq.start + tloc, h), b, acc, m, l, sub,
                             out, lse);
}

/* k or v from the first kv head of a's group on: the key-centric kernels
 * address K and V by the group's own kv-head numbers (gpu_kv_tile.kh). */
template <typename T> static inline const T *kv_heads_at(const T *x, const gpu_args *a)
{
    return x + (size_t)a->kh0 * a->D;
}

template <int DT, int D>
static cudaError_t simt_attend(const gpu_args *a, const void *q, const void *k,
                               const void *v, void *out, float *lse)
{
    typedef typename gpu_store<DT>::type T;
    if (a->K > 1) {
        k_simt_kv<DT, D><<<a->sm_count * 4, SIMT_THREADS, 0, a->stream>>>(
            (const T *)q, kv_heads_at((const T *)k, a), kv_heads_at((const T *)v, a), *a);
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return e;
    }
    dim3 g((unsigned)a->ntiles, (unsigned)a->nheads);
    k_simt_own<DT, D><<<g, SIMT_THREADS, 0, a->stream>>>((const T *)q, (const T *)k,
                                                         (const T *)v, (T *)out, lse, *a);
    return cudaGetLastError();
}

#endif /* MOBA_GPU_ATTEND_SIMT_CUH */
