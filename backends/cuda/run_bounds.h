/*
 * Where k_wgmma_kv_short's runs of tiles begin and end.  Plain C, so that
 * the unit tests check the rule on the host (tests/unit/run_bounds.c);
 * k_runs (gate.cu) applies it on the device.
 *
 * The key-centric tiles lie list after list (tile_off: list l's tiles are
 * [tile_off[l], tile_off[l + 1])), and a CTA takes them as chunk c =
 * tiles [c C, (c + 1) C).  A CTA loads a K/V block for every list it
 * touches, so chunks cut across lists loaded each block about twice at
 * 128K (docs/perf.md CUDA v51).  Hence runs cut at list boundaries: a list
 * of at most C tiles is all taken by the chunk it starts in (which may
 * then run up to C - 1 tiles past its end), a longer one by the chunks
 * its tiles fall in.  Chunk c's run is [begin(c), begin(c + 1)), so the
 * runs cover every tile exactly once; only the last run can be empty.
 */
#ifndef MOBA_GPU_RUN_BOUNDS_H
#define MOBA_GPU_RUN_BOUNDS_H

#include <stdint.h>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define GPU_RUN_HD static __host__ __device__ __forceinline__
#else
#define GPU_RUN_HD static inline
#endif

/* The chunk of a launch: chunk tiles, or with chunk 0 one chunk a CTA
 * (total / grid tiles each, rounded up); at least 1. */
GPU_RUN_HD int gpu_run_chunk(int chunk, int total, int grid)
{
    if (chunk > 0) return chunk;
    const int c = grid > 0 ? (total + grid - 1) / grid : total;
    return c > 0 ? c : 1;
}

/* Chunks of a launch, ceil(total / chunk); runs are indexed up to it
 * (chunk `gpu_run_count` begins at total, so the last run ends there). */
GPU_RUN_HD int gpu_run_count(int chunk, int total)
{
    return (total + chunk - 1) / chunk;
}

/* The list whose tiles hold tile x (0 <= x < off[n], off the n + 1
 * tile offsets): the last l with off[l] <= x, which is never an empty
 * list.  (Also the SIMT and mma.sync kernels' search.) */
GPU_RUN_HD int64_t gpu_find_list(const int32_t *off, int64_t n, int x)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (off[mid] <= x)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* The first tile of chunk c's run, and its list in *lst (0 where the run
 * begins at total). */
GPU_RUN_HD int gpu_run_begin(const int32_t *tile_off, int nlists, int chunk, int c,
                             int *lst)
{
    const int total = tile_off[nlists];
    const int64_t t64 = (int64_t)c * chunk;
    *lst = 0;
    if (t64 >= total) return total;
    const int t = (int)t64;
    const int l = (int)gpu_find_list(tile_off, nlists, t);
    const int s = tile_off[l], e = tile_off[l + 1];
    if (s == t || e - s > chunk) {
        *lst = l;
        return t;
    }
    /* A short list begun by an earlier chunk: that chunk takes it all. */
    if (e < total) *lst = (int)gpu_find_list(tile_off, nlists, e);
    return e;
}

#endif /* MOBA_GPU_RUN_BOUNDS_H */
