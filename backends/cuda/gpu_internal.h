/*
 * Shared between the backend's host code (gpu_backend.cu) and the kernel
 * launchers (gate.cu, attend_*.cu): the device-side view of a plan.
 */
#ifndef MOBA_GPU_INTERNAL_H
#define MOBA_GPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "vendor.h"
#include "run_bounds.h" /* after vendor.h: its qualifiers */
#include "../../core/backend.h"

/* Query rows per tile (gating, own-block attention) and gathered rows per
 * tile of the key-centric attention. */
#define GPU_TILE_ROWS 64
/* Blocks of this many keys and more are long: their key-centric and
 * own-block attention stream the block in chunks (attend_mma.cuh's wide
 * kernel, attend_wgmma_ws.cuh). */
#define GPU_WIDE_MIN 4096
/* Where the wgmma kernels run, blocks of this many keys and more take
 * their key-centric work to the warp-specialized k_wgmma_kv_ws rather
 * than the mma.sync k_mma_kv_narrow, which kept them up to GPU_WIDE_MIN:
 * 1.38x / 1.61x / 1.83x / 2.08x end to end at 128K tokens in blocks of
 * 256 / 512 / 1024 / 2048 keys (H100, B = 2, H = 16, D = 128, bf16,
 * docs/perf.md CUDA v57).  Blocks of up to 128 keys stay on
 * k_wgmma_kv_short, which keeps a block resident where this kernel would
 * stream it again for every pair of tiles (3x slower at 128 keys, v27). */
#define GPU_WS_MIN 129
/* Lists a CTA of the lists' fill counts in shared memory (gate.cu,
 * k_fill_span: 48 KB). */
#define GPU_FILL_CAP 12288
/* Query rows per CTA of the tensor-core gate (gate_mma.cuh). */
#define GPU_GATE_ROWS 128

/* gpu_args.use_mma: the kernels a call may use. */
#define GPU_MMA_NONE 0     /* SIMT only                                     */
#define GPU_MMA_SYNC 1     /* mma.sync (compute 8.0+)                       */
#define GPU_MMA_WGMMA 2     /* and the wgmma kernels (compute 9.0, sm_90a code
                             * built): k_wgmma_kv_short, k_wgmma_kv_ws       */

/* One key block: its first token in the packed tensors and its length. */
typedef struct gpu_block {
    int64_t start;
    int32_t len;
    int32_t seq;
} gpu_block;

/* A run of at most GPU_TILE_ROWS rows of one sequence (may span blocks). */
typedef struct gpu_qtile {
    int32_t seq;
    int32_t row0;
    int32_t rows;
    /* The sequence's first token (moba_seq.start; cu_seqlens are int32,
     * so it fits): a kernel whose CTAs each take one tile and need no
     * more of the sequence (k_mma_own, causal) then skips the load of
     * a.seqs[seq] that would wait on this one. */
    int32_t start;
} gpu_qtile;

/* Everything a kernel launch needs; device pointers unless noted. */
typedef struct gpu_args {
    int32_t Hq, Hk, D, S, K, group, causal, dtype;
    float scale;
    float scale_log2; /* scale * log2(e): the mma kernels' exponent (host) */
    int64_t T;
    int64_t nblocks;  /* total blocks (host)                        */
    int64_t nlists;   /* nblocks * Hkl (host)                       */
    int64_t ntiles;   /* query tiles (host)                         */
    int64_t ngtiles;  /* GPU_GATE_ROWS-row tiles (host)             */
    int32_t nseqs;
    int32_t sm_count; /* for persistent grids (host)                */
    int32_t max_seqlen; /* the longest sequence (host)              */
    int64_t l2_bytes; /* the device's L2 (host)                     */
    int32_t smem_optin; /* shared memory per CTA, bytes (host; CUDA) */
    int32_t use_mma;  /* GPU_MMA_*: tensor-core kernels allowed (host, per call) */
    int32_t len_gcd;  /* gcd of every block's length (host)          */
    int32_t km1_shift;/* gpu_entry_row's p / (K - 1) as a multiply:   */
    uint64_t km1_mul; /* (p km1_mul) >> km1_shift (host, K > 1)     */
    /* The heads a launch covers (gpu_head_group): query heads [h0, h0 +
     * nheads) = kv heads [kh0, kh0 + Hkl).  Its lists are (block, kv head
     * kh0 + i) for i < Hkl, numbered block * Hkl + i, and counts, list_off,
     * tile_off, cursor, entries and part_lse point at the group's own
     * part (part_ent's entry indices count from it). */
    int32_t h0, nheads, kh0, Hkl;
    /* k_wgmma_kv_short's runs: chunks of `chunk` tiles, taken by their
     * number from the counter *sched (one per head group), or, with chunk
     * 0, one run per CTA; each cut at list boundaries (runs); -1 lets the
     * launch choose (wg_short_chunk; host, per call). */
    int32_t chunk;
    int32_t *sched;
    /* At most this many CTAs in a persistent key-centric kernel, 0 for no
     * cap (host, per call: MOBA_CUDA_GRID, for tests that need a CTA to
     * run many tiles). */
    int32_t grid_cap;
    /* K/V copies of the warp-specialized kernels through TMA where the
     * driver can build the tensor maps (host, per call: MOBA_CUDA_TMA=0
     * keeps them all on cp.async, for A/B and to test that path). */
    int32_t tma;
    /* Query tiles per CTA of the lists' fill (gate.cu, k_fill_span), 0 for
     * a thread per row (k_fill), -1 for the launch's default; and the most
     * lists a CTA counts in shared memory, more taking their places from
     * the cursors (host, per call: MOBA_CUDA_FILL_SPAN and
     * MOBA_CUDA_FILL_CAP, for A/B and to test every path). */
    int32_t fill_span, fill_cap;
    /* k_fill_span stages its entries in shared memory where it can (CUDA;
     * host, per call: MOBA_CUDA_FILL_STAGE=0 stores them one by one). */
    int32_t fill_stage;
    /* Own blocks on k_wgmma_own_ws: 1 for every block size, 0 for none,
     * -1 for blocks of WS_OWN_MIN keys and more (host, per call:
     * MOBA_CUDA_OWN_WS, for A/B and tests; only where the wgmma kernels
     * run). */
    int32_t own_ws;
    /* Key-centric work of blocks of at least this many keys on
     * k_wgmma_kv_ws where the wgmma kernels run, shorter blocks on
     * k_wgmma_kv_short (up to WG_KC keys) or k_mma_kv_narrow (host, per
     * call: MOBA_CUDA_WS_MIN, GPU_WS_MIN when unset; for A/B and tests). */
    int32_t ws_min;
    /* k_mma_own asks for a tile's first partial before its own-block
     * attention, into 16 KB more shared memory (D = 128), where a CTA may
     * have it (host, per call: MOBA_CUDA_OWN_EARLY=0 leaves it out, for
     * A/B and to test the merge with MMA_OWN_SLOTS slots). */
    int32_t own_early;
    /* The key-centric kernels' order of the lists, in which list_off and
     * tile_off hold them (gpu_list_at): 1 head-major, list (block g, kv
     * head kl) at place g + kl nblocks, so that the tiles in flight
     * gather the Q rows of one (sequence, head), some of them again from
     * L2 (with the partials' stores evict-first: ~1 GB less DRAM read at
     * 128K B2, docs/perf.md CUDA v49); 0 block-major, at g Hkl + kl, the
     * lists' own numbering, which counts keep, so that the gate's
     * atomics on them stay spread (host, per call: MOBA_CUDA_TILE_ORDER). */
    int32_t tile_order;
    /* k_wgmma_kv_short asks for a new block's V into L2 as it loads the
     * block's K, where V's own load waits for P V (host, per call:
     * MOBA_CUDA_KV_PREFETCH=0 leaves it out, for A/B). */
    int32_t kv_prefetch;
    const moba_seq *seqs;
    const gpu_block *blocks;
    const gpu_qtile *qtiles;
    const gpu_qtile *gtiles; /* the same rows in GPU_GATE_ROWS tiles */
    float *cent;      /* [nblocks, Hk, D], rounded to the dtype      */
    unsigned short *cent16; /* the same in the 16-bit dtype (or NULL) */
    int32_t *sel;     /* [T, Hq, K]                                  */
    int32_t *counts;  /* [nlists]: entries per list                  */
    int32_t *list_off;/* [nlists + 1] by place (gpu_list_at); a plan
                       * holds nblocks * Hk + Hk                     */
    int32_t *tile_off;/* [nlists + 1] by place: key-centric tiles    */
    int32_t *cursor;  /* [nlists] by place (gpu_cursor)              */
    /* k_wgmma_kv_short's runs, chunk c's at 2 c: its first tile and
     * that tile's place (run_bounds.h; the run ends where run c + 1
     * begins), so that a run starts on one load, made a run ahead
     * (moba_gpu_runs writes them; a plan holds gpu_runs_cap pairs). */
    int32_t *runs;
    int32_t *entries; /* [T * Hq * (K - 1)]: partial index per entry */
    void *part_o;     /* [T * Hq * (K - 1), D], storage dtype, by partial index */
    /* A partial's lse goes at its entry's index, not its partial index:
     * a key-centric tile's rows are one run of entries, so its lse stores
     * are one run too, where by partial index each was 4 bytes of its own
     * 32-byte sector, written back half-filled and read by DRAM to merge
     * (ncu, H200, 512K B1: 1.9 GB read and 1.9 GB written, 14 % of
     * k_wgmma_kv_short's time; docs/perf.md CUDA v47).  The merges find
     * it through part_ent. */
    float *part_lse;  /* [T * Hq * (K - 1)], by entry index          */
    int32_t *part_ent;/* [Hq, T, gpu_ent_pitch] (gpu_ent_row): entry
                       * index per partial, 0 past a row's last one  */
    cudaStream_t stream;
} gpu_args;

#ifdef __cplusplus
extern "C" {
#endif

/* The entries of a's heads (every row's top_k - 1 picks of each of its
 * query heads): where its entries and partials end, and an upper bound on
 * the rows of its lists' tiles. */
__host__ __device__ static inline int64_t gpu_group_entries(const gpu_args *a)
{
    return a->T * a->nheads * (a->K - 1);
}

/* part_ent's row pitch for K - 1 partials: 4 or a multiple of 8, so
 * that a row is whole 16-byte vectors and, from 5 partials on, whole
 * 32-byte sectors (k_fill_span stores a row as one or two vectors). */
__host__ __device__ static inline int64_t gpu_ent_pitch(int K)
{
    return K < 2 ? 0 : K <= 5 ? 4 : (int64_t)(K - 1 + 7) / 8 * 8;
}

/* Where part_ent holds the K - 1 entry indices of query head h of token
 * tok: head-major, so that the rows of one head in token order, as a
 * k_fill_span CTA writes them and a k_mma_own tile reads them, are one
 * run.  Token-major, a fill CTA's rows were Hq (K - 1) indices apart,
 * each its own 32-byte sector written half-filled (k_fill_span 0.78 ->
 * 3.05 ms at 512K B1, docs/perf.md CUDA v47). */
__host__ __device__ static inline int64_t gpu_ent_row(const gpu_args *a, int64_t tok, int h)
{
    return ((int64_t)h * a->T + tok) * gpu_ent_pitch(a->K);
}

/* The block g and the kv head kl (within the launch's group) of the
 * list at place v of the key-centric kernels' order (tile_order), and
 * that list's number, g Hkl + kl; 32-bit, as the host keeps nblocks x Hk
 * below 2^31. */
__host__ __device__ static inline int gpu_place_block(const gpu_args *a, int v)
{
    return a->tile_order ? v % (int)a->nblocks : v / a->Hkl;
}

__host__ __device__ static inline int gpu_place_head(const gpu_args *a, int v)
{
    return a->tile_order ? v / (int)a->nblocks : v % a->Hkl;
}

__host__ __device__ static inline int gpu_list_at(const gpu_args *a, int v)
{
    return a->tile_order ? gpu_place_block(a, v) * a->Hkl + gpu_place_head(a, v) : v;
}

/* The lists' cursors (k_scan sets them, the fill takes places from them)
 * are by place too, so that k_scan writes them in one run (by list, its
 * stores were 4 bytes a sector: 0.195 ms at 512K B1 against 0.132, with
 * its strided reads of the counts; 0.096 block-major, docs/perf.md CUDA
 * v49): kv head kl's cursor of block g is gpu_cursor(a, kl)[g *
 * gpu_cursor_step(a)]. */
__host__ __device__ static inline int gpu_cursor_step(const gpu_args *a)
{
    return a->tile_order ? 1 : a->Hkl;
}

__host__ __device__ static inline int32_t *gpu_cursor(const gpu_args *a, int kl)
{
    return a->cursor + (a->tile_order ? (int64_t)kl * a->nblocks : kl);
}

/* Where group g's runs begin, in runs (query heads from h0, lists from
 * lists0): its tiles are at most its entries / GPU_TILE_ROWS plus one a
 * list (each list's last tile is partial), and it has at most a run a
 * tile and one more that begins at its end, so every group's part fits
 * before the next one's.  gpu_runs_cap is the whole array. */
static inline int64_t gpu_runs_at(const gpu_args *a, int64_t h0, int64_t lists0, int g)
{
    return a->T * h0 * (a->K - 1) / GPU_TILE_ROWS + lists0 + g;
}

static inline int64_t gpu_runs_cap(const gpu_args *a)
{
    return gpu_runs_at(a, a->Hq, a->nblocks * a->Hk, a->Hk) + 1;
}

/* The view of a whole-problem args a that covers kv-head group g of G
 * (kv heads [g Hk / G, (g + 1) Hk / G), with their query heads): the
 * groups' lists, offsets and entries lie side by side in the plan's
 * arrays, so every group can be gated and attended on its own, and G = 1
 * is the whole problem. */
static inline gpu_args gpu_head_group(const gpu_args *a, int G, int g)
{
    gpu_args r = *a;
    const int kh0 = (int)((int64_t)a->Hk * g / G), kh1 = (int)((int64_t)a->Hk * (g + 1) / G);
    const int64_t lists0 = a->nblocks * kh0;
    r.kh0 = kh0;
    r.Hkl = kh1 - kh0;
    r.h0 = kh0 * a->group;
    r.nheads = r.Hkl * a->group;
    r.nlists = a->nblocks * r.Hkl;
    r.counts = a->counts + lists0;
    r.cursor = a->cursor + lists0;
    r.list_off = a->list_off + lists0 + g;
    r.tile_off = a->tile_off + lists0 + g;
    r.runs = a->runs + 2 * gpu_runs_at(a, r.h0, lists0, g);
    r.entries = a->entries + a->T * r.h0 * (a->K - 1);
    r.part_lse = a->part_lse + a->T * r.h0 * (a->K - 1); /* by entry too */
    r.sched = a->sched + g;
    return r;
}

/* Block centroids of k (every kv head), and the list counts zeroed. */
cudaError_t moba_gpu_centroids(const gpu_args *a, const void *k);
/* Scores + top-k and the per-(block, kv head) lists of the heads of a
 * (gpu_head_group), once the centroids are in. */
cudaError_t moba_gpu_select(const gpu_args *a, const void *q);

/* runs from tile_off (after moba_gpu_select), for k_wgmma_kv_short's
 * launch: a->chunk its chunk, grid its CTAs (for a->chunk 0). */
cudaError_t moba_gpu_runs(const gpu_args *a, int grid);

/* Attention of one (dtype, head dim) instance, for the heads of a. */
typedef cudaError_t (*moba_gpu_attend_fn)(const gpu_args *a, const void *q,
                                          const void *k, const void *v,
                                          void *out, float *lse);
moba_gpu_attend_fn moba_gpu_attend_get(int dtype, int head_dim);
/* Shipped head dims, ascending; returns their count. */
int moba_gpu_head_dims(int *dims, int cap);

#ifdef __cplusplus
}
#endif

#endif /* MOBA_GPU_INTERNAL_H */
