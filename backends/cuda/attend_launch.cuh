/*
 * Launchers of the tensor-core attention (attend_mma.cuh,
 * attend_wgmma.cuh): which key-centric kernel runs for the block size and
 * the device, then the own-block + merge kernel.
 */
#ifndef MOBA_GPU_ATTEND_LAUNCH_CUH
#define MOBA_GPU_ATTEND_LAUNCH_CUH

#include "attend_wgmma_ws.cuh"

#if MOBA_GPU_HAVE_MMA

#include "tma_map.cuh"
#include <string.h>

/* K's and V's tensor maps for the warp-specialized kernels (ws_tma): the
 * whole [T, Hk, D] tensors, boxes of 64 columns x 1 head x WG_KC keys,
 * 128-byte swizzled (gpu_tma_encode_rows).  tm.on stays 0, and every copy
 * goes through cp.async, where a->tma is off, a token index would not fit
 * TMA's int32 coordinates, or the driver has no encoder or refuses a map. */
template <int D>
static ws_tma ws_tma_encode(const gpu_args *a, const void *k, const void *v)
{
    ws_tma tm;
    memset(&tm, 0, sizeof tm);
    if (!a->tma || a->T > INT32_MAX) return tm;
    tm.on = gpu_tma_encode_rows(&tm.k, k, D, a->Hk, a->T, WG_KC) &&
            gpu_tma_encode_rows(&tm.v, v, D, a->Hk, a->T, WG_KC);
    return tm;
}

/* Long blocks' key-centric work on k_wgmma_kv_ws: one CTA per SM. */
template <int DT, int D>
static cudaError_t ws_kv_launch(const gpu_args *a, const void *q, const void *k, const void *v)
{
    typedef unsigned short T;
    void (*kern)(const T *, const T *, const T *, gpu_args, const ws_tma) =
        a->len_gcd % WG_KC == 0 ? k_wgmma_kv_ws<DT, D, true> : k_wgmma_kv_ws<DT, D, false>;
    const int smem = ws_cfg<D>::SMEM;
    const cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               smem);
    if (e != cudaSuccess) return e;
    int grid = a->sm_count;
    if (a->grid_cap > 0 && grid > a->grid_cap) grid = a->grid_cap;
    kern<<<grid, WS_THREADS, smem, a->stream>>>((const T *)q, kv_heads_at((const T *)k, a),
                                                kv_heads_at((const T *)v, a), *a,
                                                ws_tma_encode<D>(a, k, v));
    return cudaGetLastError();
}

/* k_wgmma_kv_short's runs of tiles: chunks taken from a counter by
 * whichever CTA is free, where one run per CTA (total / grid tiles each)
 * left CTAs idle at the end: 1.20x at 32K tokens, 1.18x at 128K and 1.13x
 * at 512K end to end (H200, docs/perf.md CUDA v17).  Each chunk's start
 * costs its K/V block's load and a barrier; long chunks leave the CTAs
 * less even at the end.  On an H100 (CUDA v42), chunks of 64 against 32:
 * 512K 1.0045x, 128K a tie, 32K 0.985x; so 64 where the launch has at
 * least 1024 tiles a CTA (an upper bound: every row's top_k - 1 picks,
 * in 64-row tiles; 128K and up at B = 2, H = 16, top-8), else 32.  But
 * the tiles in flight, grid x chunk, are what the L2 must hold the Q rows
 * of between a row's picks (the places go head-major, gpu_list_at): where
 * one (sequence, head)'s Q rows fit in the L2, chunks of 16 keep about
 * one (sequence, head) in flight, and the kernel read 7.94 GB instead of
 * 8.88 at 128K B2 (1.012x) and 6.63 instead of 8.71 at 32K x 8 (1.044x);
 * at 512K (128 MB of Q a (sequence, head)) they read more and lost 1.8 %
 * (H100, docs/perf.md CUDA v50).  MOBA_CUDA_SCHED_CHUNK sets the chunk
 * for measurements, 0 for one run per CTA. */
#define WG_SHORT_CHUNK 32
#define WG_SHORT_CHUNK_L2 16
static int wg_short_chunk(const gpu_args *a, int grid)
{
    if (a->chunk >= 0) return a->chunk;
    /* A kv head's lists gather the rows of its group's query heads. */
    const int64_t q_bytes = (int64_t)a->max_seqlen * a->group * a->D * 2;
    if (a->tile_order && q_bytes <= a->l2_bytes) return WG_SHORT_CHUNK_L2;
    const int64_t tiles = gpu_group_entries(a) / GPU_TILE_ROWS;
    return tiles >= (int64_t)1024 * grid ? 2 * WG_SHORT_CHUNK : WG_SHORT_CHUNK;
}

/* Whether the mma.sync key-centric partials of a call take k_mma_kv_wide
 * rather than k_mma_kv_narrow: long blocks, and at D = 256 every block,
 * where Q in registers would not fit beside O (mma_kc). */
template <int D> static bool mma_kv_wide_for(const gpu_args *a)
{
    return a->S >= MMA_WIDE_MIN || D > 128;
}

/* The key-centric kernel: where wgmma is allowed (a->use_mma ==
 * GPU_MMA_WGMMA: compute 9.0 with sm_90a code, the default there)
 * k_wgmma_kv_ws for blocks of a->ws_min keys and more and
 * k_wgmma_kv_short for blocks of at most WG_KC keys, else k_mma_kv_wide
 * for long blocks and k_mma_kv_narrow for the rest; FULL when every
 * block is a whole number of the kernel's key chunks (then no chunk needs
 * a mask). */
template <int DT, int D>
static cudaError_t mma_kv_launch(const gpu_args *a, const void *q, const void *k,
                                 const void *v)
{
    typedef unsigned short T;
    void (*kern)(const T *, const T *, const T *, gpu_args) = NULL;
    void (*kern_tma)(const T *, const T *, const T *, gpu_args, const ws_tma) = NULL;
    int threads = MMA_THREADS, smem;
    const bool wide = mma_kv_wide_for<D>(a);
    if constexpr (wg_ok<D>::value) {
        if (a->S >= a->ws_min && a->use_mma == GPU_MMA_WGMMA)
            return ws_kv_launch<DT, D>(a, q, k, v);
        if (a->S <= WG_KC && a->use_mma == GPU_MMA_WGMMA) {
            kern_tma = a->len_gcd % WG_KC == 0 ? k_wgmma_kv_short<DT, D, true>
                                               : k_wgmma_kv_short<DT, D, false>;
            threads = WG_SHORT_THREADS;
            smem = wg_short_cfg<D>::SMEM;
        }
    }
    if (!kern_tma) {
        if (wide) {
            const bool full = a->len_gcd % mma_kc<D>() == 0;
            kern = full ? k_mma_kv_wide<DT, D, true> : k_mma_kv_wide<DT, D, false>;
            smem = mma_kv_wide_smem<D>();
        } else if constexpr (D <= 128) {
            const bool full = a->len_gcd % MMA_KC == 0;
            kern = full ? k_mma_kv_narrow<DT, D, true> : k_mma_kv_narrow<DT, D, false>;
            smem = mma_kv_narrow_smem<D>();
        }
    }
    /* Above the 48 KB default: opt in, then fill every SM. */
    const void *fn = kern_tma ? (const void *)kern_tma : (const void *)kern;
    cudaError_t e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    int per_sm = 0;
    if (e == cudaSuccess)
        e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fn, threads, smem);
    if (e != cudaSuccess) return e;
    int grid = a->sm_count * (per_sm > 0 ? per_sm : 1);
    if (a->grid_cap > 0 && grid > a->grid_cap) grid = a->grid_cap;
    gpu_args b = *a;
    b.chunk = wg_short_chunk(a, grid);
    /* k_wgmma_kv_short's runs and its chunk counter (the other kernels
     * need neither). */
    if (kern_tma) e = moba_gpu_runs(&b, grid);
    if (e == cudaSuccess && kern_tma && b.chunk)
        e = cudaMemsetAsync(b.sched, 0, sizeof(int32_t), b.stream);
    if (e != cudaSuccess) return e;
    const T *kh = kv_heads_at((const T *)k, a), *vh = kv_heads_at((const T *)v, a);
    if constexpr (wg_ok<D>::value)
        if (kern_tma) {
            kern_tma<<<grid, threads, smem, a->stream>>>((const T *)q, kh, vh, b,
                                                         ws_tma_encode<D>(a, k, v));
            return cudaGetLastError();
        }
    kern<<<grid, threads, smem, a->stream>>>((const T *)q, kh, vh, b);
    return cudaGetLastError();
}

/* Long blocks' own blocks on k_wgmma_own_ws, each row merged there with
 * its partials into out and lse: one CTA per SM over the tile pairs of
 * every head, two at a time (ws_pair). */
template <int DT, int D>
static cudaError_t ws_own_launch(const gpu_args *a, const void *q, const void *k, const void *v,
                                 void *out, float *lse)
{
    typedef unsigned short T;
    const int smem = ws_cfg<D>::SMEM;
    cudaError_t e = cudaFuncSetAttribute(k_wgmma_own_ws<DT, D>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    const int64_t twos = ((a->ntiles + 1) / 2 * a->nheads + 1) / 2; /* pairs two by two */
    int grid = a->sm_count;
    if (a->grid_cap > 0 && grid > a->grid_cap) grid = a->grid_cap;
    if (grid > twos) grid = (int)twos;
    k_wgmma_own_ws<DT, D><<<grid, WS_THREADS, smem, a->stream>>>(
        (const T *)q, (const T *)k, (const T *)v, (T *)out, lse, *a, ws_tma_encode<D>(a, k, v));
    return cudaGetLastError();
}

/* Where k_wgmma_own_ws takes the own blocks from k_mma_own (H200, B = 2,
 * H = 16, D = 128, bf16, docs/perf.md CUDA v37): at 512-key blocks / top-3
 * 1.08x end to end at 128K and 512K tokens; at 128-key blocks / top-8
 * 0.83x and 0.86x (one 128-key chunk per pair of tiles leaves its ring
 * and its two consumer warpgroups little to overlap).  Between 129 and
 * 511 keys it is not measured. */
#define WS_OWN_MIN 512

/* Whether the mma.sync kernels that a call would run fit the shared
 * memory a CTA may opt in to: 99 KB on compute 8.6 and 8.9, where
 * k_mma_kv_wide at D = 128 (102 KB) does not. */
template <int D> static bool mma_smem_fits(const gpu_args *a)
{
    const int kv = a->K < 2                ? 0
                   : mma_kv_wide_for<D>(a) ? mma_kv_wide_smem<D>()
                                           : mma_kv_narrow_smem<D>();
    return kv <= a->smem_optin && mma_own_smem_size<D>(false) <= a->smem_optin;
}

template <int DT, int D>
static cudaError_t mma_attend(const gpu_args *a, const void *q, const void *k,
                              const void *v, void *out, float *lse)
{
    typedef unsigned short T;
    if (a->K > 1) {
        const cudaError_t e = mma_kv_launch<DT, D>(a, q, k, v);
        if (e != cudaSuccess) return e;
    }
    /* With wgmma, the own blocks of blocks of WS_OWN_MIN keys and more,
     * and their merge, run on the warp-specialized kernel (MOBA_CUDA_OWN_WS
     * forces it either way). */
    if constexpr (wg_ok<D>::value)
        if (a->use_mma == GPU_MMA_WGMMA &&
            (a->own_ws < 0 ? a->S >= WS_OWN_MIN : a->own_ws == 1))
            return ws_own_launch<DT, D>(a, q, k, v, out, lse);
    void (*own)(const T *, const T *, const T *, T *, float *, gpu_args) = k_mma_own<DT, D>;
    /* Two K/V chunks are above the 48 KB static limit at D = 128: opt in.
     * The early slot where a CTA may have it (not on compute 8.6 / 8.9,
     * 99 KB) and MOBA_CUDA_OWN_EARLY leaves it on. */
    gpu_args b = *a;
    b.own_early = a->own_early && mma_own_early_fits<D>() &&
                  a->smem_optin >= mma_own_smem_size<D>(true);
    const int smem = mma_own_smem_size<D>(b.own_early != 0);
    const cudaError_t e =
        cudaFuncSetAttribute(own, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    dim3 g((unsigned)a->ntiles, (unsigned)a->nheads);
    own<<<g, MMA_THREADS, smem, a->stream>>>((const T *)q, (const T *)k, (const T *)v, (T *)out,
                                             lse, b);
    return cudaGetLastError();
}

#endif /* MOBA_GPU_HAVE_MMA */

#endif /* MOBA_GPU_ATTEND_LAUNCH_CUH */
