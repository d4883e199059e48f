/*
 * Key-centric attention on Hopper's warpgroup MMA (sm_90a) for short key
 * blocks (at most WG_KC keys, f16/bf16, D = 64 or 128), k_wgmma_kv_short,
 * and the wgmma steps it shares with the long-block kernel of
 * attend_wgmma_ws.cuh.
 *
 * Why wgmma: a warpgroup's m64n128k16 reads B straight from shared memory
 * once for 64 rows, where 16-row mma.sync fragments re-read it through
 * registers per warp; k_wgmma_kv_short is 1.21-1.29x k_mma_kv_narrow at
 * 128K and 512K tokens (docs/perf.md, CUDA v14).  (The first long-block
 * wgmma kernel, k_wgmma_kv, two warpgroups loading their own ring and
 * meeting at a CTA barrier every chunk, only tied k_mma_kv_wide, CUDA
 * v10-v12; k_wgmma_kv_ws replaced it, CUDA v22.)
 *
 * Determinism: as the mma.sync kernels, a row's result depends only on its
 * Q row and the block's keys in a fixed order; which kernel runs depends on
 * the block size, the device (compute capability 9.0 with sm_90a code) and
 * MOBA_CUDA_KERNEL, not on the data.
 */
#ifndef MOBA_GPU_ATTEND_WGMMA_CUH
#define MOBA_GPU_ATTEND_WGMMA_CUH

#include "attend_mma.cuh"
#include "wgmma.cuh"

#if MOBA_GPU_HAVE_MMA

#include <cuda.h> /* CUtensorMap (the type only: no driver call here) */

#define WG_KC 128      /* keys per chunk: the N of S's wgmma */
#define WG_SHORT_THREADS 128 /* k_wgmma_kv_short: one warpgroup */

/* Elements of one K or V chunk (WG_KC keys of D columns). */
template <int D> struct wg_cfg {
    enum { CHUNK = WG_KC * D };
};

/* K's and V's tensor maps ([T, Hk, D] as boxes of 64 columns, one head
 * and WG_KC keys, 128-byte swizzled: one box is one 64-column block of a
 * WG_KC-key tile, wg_sw128_off's layout), built by the host
 * (ws_tma_encode) and passed as a __grid_constant__ kernel parameter; on
 * is 0 where they could not be built (the copies then all go through
 * cp.async).
 *
 * Why TMA: with cp.async the warp-specialized kernels' producer
 * warpgroup issued 2 D / 8 copies per thread and chunk plus their address
 * arithmetic, on the schedulers the consumers issue from, and every
 * consumer fenced each chunk (fence.proxy.async: cp.async writes through
 * the generic proxy, which wgmma does not see without it).  A TMA box is
 * one instruction of one thread and lands through the async proxy,
 * visible to wgmma once the slot's mbarrier completes: FlashAttention-3's
 * producer.  k_wgmma_kv_short's copies were 4-byte cp.async, 128 a thread
 * per block, on the LSU queue its Q loads and partial stores wait on
 * (docs/perf.md, CUDA v42). */
struct ws_tma {
    CUtensorMap k, v;
    int on;
};

/* Whether a chunk of nk keys comes through TMA: a box is always WG_KC
 * keys, and the rows of a shorter chunk past its keys must be zeros (their
 * P is 0, but 0 x NaN garbage would not be), which cp.async writes. */
__device__ __forceinline__ bool ws_by_tma(const ws_tma &tm, int nk)
{
    return tm.on && nk == WG_KC;
}

/* P's A fragments from S's accumulator after the softmax, 16 keys per
 * step (the mma C layout is the A layout). */
template <int DT>
__device__ __forceinline__ void wg_pack_p(uint32_t (*pa)[4], const float (*s)[4])
{
#pragma unroll
    for (int kc = 0; kc < WG_KC / 16; kc++) {
        pa[kc][0] = mma_pack<DT>(s[2 * kc][0], s[2 * kc][1]);
        pa[kc][1] = mma_pack<DT>(s[2 * kc][2], s[2 * kc][3]);
        pa[kc][2] = mma_pack<DT>(s[2 * kc + 1][0], s[2 * kc + 1][1]);
        pa[kc][3] = mma_pack<DT>(s[2 * kc + 1][2], s[2 * kc + 1][3]);
    }
}

/* Issues O += P V for the warpgroup's 64 rows (not committed), V's chunk
 * at vs as MN-major B in the 128-byte-swizzled layout (16 rows, 2048
 * bytes, into each 64-column block, LBO stepping between the blocks).
 * fresh: O = P V, the first wgmma's scale-d 0 ignoring what O's registers
 * hold (k_wgmma_kv_short leaves them unset rather than spend 64 moves a
 * step on zeros). */
template <int DT, int D>
__device__ __forceinline__ void wg_pv(float *o, const uint32_t (*pa)[4], const unsigned char *vs,
                                      bool fresh = false)
{
    if (!fresh) wg_pin_n<D / 2>(o);
    wg_fence();
    const uint64_t d0 = wg_desc_sw128(vs, WG_KC * 128, 1024);
#pragma unroll
    for (int kc = 0; kc < WG_KC / 16; kc++) {
        const uint64_t desc = wg_desc_step(d0, kc * 16 * 128);
        if (D == 128)
            wgmma_m64n128k16<DT, 1>(o, pa[kc], desc, !fresh || kc > 0);
        else
            wgmma_m64n64k16<DT, 1>(o, pa[kc], desc, !fresh || kc > 0);
    }
}

/* Waits for every wgmma of the warpgroup, then pins S and O so that no
 * read of them moves above the wait. */
template <int D>
__device__ __forceinline__ void wg_wait_all(float *s, float *o)
{
    wg_wait<0>();
    wg_pin_n<WG_KC / 2>(s);
    wg_pin_n<D / 2>(o);
}

/* Waits for every wgmma of the warpgroup, then pins the N values at x
 * (one accumulator) so that no read of them moves above the wait, and
 * nothing else is kept live for it. */
template <int N> __device__ __forceinline__ void wg_wait_pin(float *x)
{
    wg_wait<0>();
    wg_pin_n<N>(x);
}

/* Issues (and commits) S = Q K^T for the warpgroup's 64 rows (A from
 * registers) and the chunk's WG_KC keys, K as K-major B in the
 * 128-byte-swizzled layout: k16 step kk is 32 bytes into each row of its
 * 64-column block. */
template <int DT, int D>
__device__ __forceinline__ void wg_qk(float *s, const uint32_t (*qf)[4], const unsigned char *ks)
{
    const uint64_t b0 = wg_desc_sw128(ks, 16, 1024);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        wgmma_m64n128k16<DT, 0>(s, qf[kk],
                                wg_desc_step(b0, (kk / 4) * WG_KC * 128 + (kk % 4) * 32), kk > 0);
    wg_commit();
}

/* Short blocks (at most WG_KC keys: MoBA's common 128-key blocks) on
 * wgmma: k_mma_kv_narrow's partials.
 *
 * Why: k_mma_kv_narrow keeps its tensor pipe 27 % busy at 128K tokens
 * (docs/perf.md, v9 profile): a 16-row warp reads every K and V fragment
 * through registers for 16 rows only (two shared-memory wavefronts per
 * mma), and each tile waits for its entries and then its Q rows.  Here a
 * warpgroup's m64n128k16 reads K and V from shared memory once for 64
 * rows.
 *
 * Layout: a CTA of one warpgroup takes runs of the key-centric tiles
 * (mostly of one (block, kv head) list, as k_mma_kv_narrow), one 64-row
 * tile per step.  Shared memory holds only the block, K and V in the
 * 128-byte-swizzled layout with each row's words in wg_word's order, so
 * that every thread loads its Q fragments, and stores its rows of O, as
 * 16-byte vectors between its registers and global memory: 64 KB at D =
 * 128, three CTAs an SM.  Each step is one warpgroup's chain (Q K^T,
 * softmax, P V, the stores), bound by its latency rather than its bytes
 * (docs/perf.md, CUDA v28), and until v41 the rows were staged in
 * shared-memory Q buffers (two, then three: 112 KB), which left room for
 * two CTAs an SM; with a third the kernel ran 1.06x faster at 128K and
 * 512K on an H100 (v41).  A step's Q fragments load once its S is spent
 * (right after Q K^T, the instances spilled at 168 registers), the rows
 * prefetched into L2 under Q K^T, and when the next step is of another
 * list its K loads once this step's S is in and its V once P V is
 * done.  (Two warpgroups per CTA, with two K/V slots so that the next
 * block could load during a step, met at the CTA barrier every step and
 * reached 0.79x of the one-warpgroup kernel; docs/perf.md, CUDA v14.) */
template <int D> struct wg_short_cfg {
    enum {
        CTAS = 3,                       /* per SM */
        TILE = wg_cfg<D>::CHUNK * 2,    /* bytes of K (or V) */
        SMEM = 2 * TILE + WG_SMEM_ALIGN /* K and V, 1024-byte aligned */
    };
    /* An SM's 228 KB, 1 KB of it reserved per CTA, with nx[] and the
     * mbarriers. */
    static_assert(CTAS * (SMEM + 128 + 1024) <= 228 * 1024, "CTAS CTAs an SM");
};

/* k_wgmma_kv_short's order of a row's D / 2 words (pairs of elements).
 * Lane (g, t)'s A fragments of Q and C fragments of O hold, of each
 * 8-column group c, the word t: in a row's natural order that is one word
 * in four, which is why Q went through shared memory.  Instead, group c's
 * word t is the row's natural word wg_word(c, t), so that lane t's words of
 * groups 4 m .. 4 m + 3 are the 16 natural bytes at 64 m + 16 t: a quad
 * covers 64 contiguous bytes per vector.  Q K^T sums over d in whatever
 * order K agrees on, so K is stored in that order (the sums' rounding is
 * another than in natural order, the same in every run); O's columns
 * come out in V's column order, so V is stored in it too (wg_short_permute). */
__host__ __device__ constexpr int wg_word(int c, int t)
{
    return 16 * (c / 4) + 4 * t + c % 4;
}

/* A block's K or V comes in natural order, 128-byte swizzled (through
 * TMA where wg_short_by_tma allows, else wg_short_copy), and each thread
 * then puts one key row, threadIdx.x, into wg_word's order in place
 * (wg_short_permute).  Until v43 the copies permuted the words themselves,
 * 4-byte cp.async since a natural 16-byte vector's words go to four
 * groups: 128 a thread per block, on the LSU queue that the step's Q loads
 * and partial stores wait on (docs/perf.md, CUDA v42); the permute is 8
 * 16-byte shared-memory loads and stores a row, and a warp's 32 rows put
 * each chunk on all 32 banks through the swizzle. */
static_assert(WG_SHORT_THREADS == WG_KC, "k_wgmma_kv_short: a key row a thread");

/* threadIdx.x, read where called: an asm volatile, which the compiler
 * neither hoists out of a loop nor shares between calls, so that what is
 * computed from it is computed anew at each call rather than kept in
 * registers from one call to the next. */
__device__ __forceinline__ unsigned wg_tid_here(void)
{
    unsigned t;
    asm volatile("mov.u32 %0, %%tid.x;" : "=r"(t));
    return t;
}

/* One tensor's block (keys from tok0) into dst by 16-byte cp.async, rows
 * from nk on zeroed so that masked weights never meet NaN garbage (0 x
 * NaN is NaN); the caller commits.  Thread i copies chunk i % (D / 8) of
 * rows i / (D / 8) + j RS (as ws_load): a warp reads whole rows, and rows
 * RS apart share their swizzle, so that one base and constants address
 * every copy (a thread's own row, whose chunks each need their swizzled
 * offset, spilled at 168 registers). */
template <int D, bool FULL>
__device__ __forceinline__ void wg_short_copy(const unsigned short *src, int64_t tok0, int Hk,
                                              int kh, int nk, unsigned char *dst)
{
    const int V8 = D / 8, RS = WG_SHORT_THREADS / V8;
    static_assert(RS % 8 == 0 && WG_KC % RS == 0, "rows step by whole atoms");
    /* In the masked instance the thread's offsets (dp, its rows' base),
     * computed once for the first block's copies and kept across the
     * step loop, held registers that spilled run_end and a list number
     * (20 bytes at 168 registers): read anew, they are a few integer
     * instructions per copied block instead.  FULL fits as it is, and
     * keeps its code. */
    const unsigned tid = FULL ? threadIdx.x : wg_tid_here();
    const int c = tid % V8, r0 = tid / V8;
    const unsigned short *sp = src + ((size_t)(tok0 + r0) * Hk + kh) * D + c * 8;
    const size_t step = (size_t)RS * Hk * D;
    unsigned char *dp = dst + wg_sw128_off(r0, c, WG_KC);
    /* Past nk a row's address (maybe past the tensor) is not read. */
#pragma unroll
    for (int j = 0; j < WG_KC / RS; j++)
        cp_async16_n(dp + j * RS * 128, sp + j * step, FULL || r0 + j * RS < nk ? 16 : 0);
}

/* This thread's key row of a tensor at dst from the natural order into
 * wg_word's: of each 64-byte run m of the row (chunks 4 m .. 4 m + 3),
 * chunk 4 m + i's word t is the natural chunk 4 m + t's word i, a 4 x 4
 * transpose of words between four 16-byte loads and four stores. */
template <int D>
__device__ __forceinline__ void wg_short_permute(unsigned char *dst)
{
    const int u = threadIdx.x;
    /* One run at a time: 16 loaded words live beside the next step's Q
     * fragments rather than 64. */
#pragma unroll 1
    for (int m = 0; m < D / 32; m++) {
        uint4 x[4];
#pragma unroll
        for (int j = 0; j < 4; j++) x[j] = *(const uint4 *)(dst + wg_sw128_off(u, 4 * m + j, WG_KC));
        *(uint4 *)(dst + wg_sw128_off(u, 4 * m, WG_KC)) = make_uint4(x[0].x, x[1].x, x[2].x, x[3].x);
        *(uint4 *)(dst + wg_sw128_off(u, 4 * m + 1, WG_KC)) = make_uint4(x[0].y, x[1].y, x[2].y, x[3].y);
        *(uint4 *)(dst + wg_sw128_off(u, 4 * m + 2, WG_KC)) = make_uint4(x[0].z, x[1].z, x[2].z, x[3].z);
        *(uint4 *)(dst + wg_sw128_off(u, 4 * m + 3, WG_KC)) = make_uint4(x[0].w, x[1].w, x[2].w, x[3].w);
    }
}

/* A step of k_wgmma_kv_short: its tile (gpu_kv_tile: block, kv head,
 * first entry, rows), its list and where that list's tiles and entries
 * end, and whether there is a step (past the CTA's run there is not). */
struct wg_step {
    gpu_kv_tile w;
    int tile, lst, tile_end, e_end;
    int run_end; /* the end of the step's run of tiles */
    bool any;
};

/* The list's facts: read once per list, not per step. */
__device__ __forceinline__ void wg_step_list(const gpu_args &a, wg_step &y)
{
    y.tile_end = a.tile_off[y.lst + 1];
    y.e_end = a.list_off[y.lst + 1];
    y.w = gpu_kv_tile_in(a, y.lst, y.tile, 1);
}

/* k_wgmma_kv_short's chunk counter: the next run (its first tile nxt,
 * its end and nxt's list nl, read from runs as the chunk is taken, a run
 * before they are needed: the search of tile_off they replace took 3-4
 * dependent loads at every run's start), the takes asked for so far (n)
 * and whether the last one is still to be read (wait).  Thread 0 asks in
 * one step and every thread reads after the next barrier, from slot n %
 * 3 of the block's shared nx[3]. */
struct wg_takes {
    int nxt, end, nl, n;
    bool wait;
};

/* Chunk c's run (run_bounds.h) of a launch whose chunks are `chunk`
 * tiles: empty, at the end, where the counter has passed the last. */
__device__ __forceinline__ void wg_run_at(const gpu_args &a, int c, int chunk, int total,
                                          wg_takes &tk)
{
    if ((int64_t)c * chunk >= total) {
        tk.nxt = tk.end = total;
        tk.nl = 0;
        return;
    }
    const int2 r = *(const int2 *)(a.runs + 2 * (int64_t)c);
    tk.nxt = r.x;
    tk.nl = r.y;
    tk.end = a.runs[2 * (int64_t)c + 2];
}

/* The step after x.  Within a list it reads nothing (the lookups waited
 * on at the end of every step were ~10 % of the stall samples); at a
 * list's end it steps the list along (tiles are contiguous, so past any
 * empty lists) rather than searching for it.  At the end of x's run it
 * goes to the next run (tk: the CTA's next chunk, empty when there is
 * none) and sets *took. */
__device__ __forceinline__ wg_step wg_step_after(const gpu_args &a, const wg_step &x,
                                                 const wg_takes &tk, bool *took)
{
    wg_step y = x;
    y.tile = x.tile + 1;
    if (!x.any) return y;
    if (y.tile >= x.run_end) {
        y.any = tk.nxt < tk.end;
        if (!y.any) return y;
        *took = true;
        y.tile = tk.nxt;
        y.run_end = tk.end;
        y.lst = tk.nl;
        wg_step_list(a, y);
        return y;
    }
    if (y.tile < x.tile_end) {
        y.w.e0 = x.w.e0 + GPU_TILE_ROWS;
    } else {
        do y.lst++; while (y.tile >= a.tile_off[y.lst + 1]);
        wg_step_list(a, y);
        return y;
    }
    y.w.nrows = min(GPU_TILE_ROWS, y.e_end - y.w.e0);
    return y;
}

/* The step after x; where it starts the next run, the run after that is
 * asked for.  tk's run is not read before the take replaces it: no run
 * ends within a step. */
__device__ __forceinline__ wg_step wg_step_take(const gpu_args &a, const wg_step &x, int total,
                                                int *nx, wg_takes &tk)
{
    bool took = false;
    const wg_step y = wg_step_after(a, x, tk, &took);
    if (took) {
        tk.nxt = tk.end = total;
        if (threadIdx.x == 0) nx[tk.n % 3] = atomicAdd(a.sched, 1);
        tk.wait = true;
    }
    return y;
}

/* After a barrier: the take asked for before it. */
__device__ __forceinline__ void wg_take_read(const gpu_args &a, const int *nx, int total,
                                             wg_takes &tk)
{
    if (tk.wait) {
        wg_run_at(a, nx[tk.n % 3], a.chunk, total, tk);
        tk.n++;
        tk.wait = false;
    }
}

/* Into L2, the entries of the step after x (y): within a run the steps'
 * entries follow each other (a list's tiles, then the next list's, which
 * begins where this one ends), so y's are the GPU_TILE_ROWS after x's.
 * Called as x is found, at the end of the step before the one whose top
 * reads x's entries, so y's are asked for a step before they are read:
 * without it those loads went to DRAM, and the Q gather that needs them waited on them for 12 %
 * of k_wgmma_kv_short's stall samples at 512K (docs/perf.md, CUDA v40).
 * Past a run's end the guess is another run's entries, which costs
 * nothing but the prefetch. */
__device__ __forceinline__ void wg_prefetch_entries(const gpu_args &a, const wg_step &x)
{
    const int64_t n = gpu_group_entries(&a);
    const int i = threadIdx.x;
    const int64_t e = (int64_t)x.w.e0 + x.w.nrows + 32 * i;
    /* 64 entries, 256 bytes, span three 128-byte lines at most. */
    if (x.any && i < 3 && e < n) asm volatile("prefetch.global.L2 [%0];" ::"l"(a.entries + e));
}

/* The partial indices of this thread's two rows of step x (r0 and r0 + 8
 * of its warp's 16), which its Q loads and partial stores need (0 for
 * dead rows). */
__device__ __forceinline__ void wg_row_entries(const gpu_args &a, const wg_step &x, int r0,
                                               int *ps)
{
    ps[0] = x.any && r0 < x.w.nrows ? a.entries[x.w.e0 + r0] : 0;
    ps[1] = x.any && r0 + 8 < x.w.nrows ? a.entries[x.w.e0 + r0 + 8] : 0;
}

/* Into L2, step x's Q rows (partial indices pe of this thread's rows):
 * lane t of a quad takes the 128-byte line t % 2 of row r0 + 8 (t / 2).
 * wg_load_qf's 16-byte loads are moved into the A fragments' registers
 * right where they are issued (ptxas places the moves there), so each
 * step waited on its next step's rows from DRAM: ~38 % of
 * k_wgmma_kv_short's stall samples at 512K on an H100.  This prefetch,
 * issued under Q K^T, made the kernel 1.02x faster; loading each word
 * straight into its register (32 4-byte loads, no moves) did no better
 * (docs/perf.md, CUDA v41). */
template <int D>
__device__ __forceinline__ void wg_prefetch_q(const unsigned short *q, const gpu_args &a,
                                              const int *pe, int t)
{
    if (D > 64 || t % 2 == 0) {
        const int e = t < 2 ? pe[0] : pe[1]; /* pe[t / 2] went to local memory */
        const unsigned short *p = q + (size_t)gpu_entry_row(a, e) * D + (t % 2) * 64;
        asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
    }
}

/* Step x's Q fragments of this thread's rows (partial indices pe) in
 * wg_word's order: lane t's 16 bytes at 64 m + 16 t of each row hold its
 * words of groups 4 m .. 4 m + 3, that is of k-steps 2 m and 2 m + 1.
 * Dead rows load the row of entry 0, which the stores skip. */
template <int D>
__device__ __forceinline__ void wg_load_qf(uint32_t (*qf)[4], const unsigned short *q,
                                           const gpu_args &a, const int *pe, int t)
{
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const uint4 *p = (const uint4 *)(q + (size_t)gpu_entry_row(a, pe[h]) * D) + t;
#pragma unroll
        for (int m = 0; m < D / 32; m++) {
            const uint4 x = __ldg(p + 4 * m);
            qf[2 * m][h] = x.x;
            qf[2 * m][2 + h] = x.y;
            qf[2 * m + 1][h] = x.z;
            qf[2 * m + 1][2 + h] = x.w;
        }
    }
}

/* Whether a block comes through TMA: in the FULL instance, where every
 * block has WG_KC keys (ws_by_tma), and only there; the masked instance's
 * blocks come by 16-byte cp.async (with TMA for its whole blocks it
 * spilled 20 bytes at 168 registers, before wg_tid_here; not retried). */
template <bool FULL> __device__ __forceinline__ bool wg_short_by_tma(const ws_tma &tm)
{
    return FULL && tm.on;
}

/* One tensor (K or V, map m) of step x's block into dst: D / 64 boxes
 * from thread 0, their bytes announced on bar, or this thread's row by
 * cp.async (the caller commits). */
template <int D, bool FULL>
__device__ __forceinline__ void wg_short_load(const unsigned short *src, const CUtensorMap *m,
                                              const ws_tma &tm, const gpu_args &a,
                                              const wg_step &x, unsigned char *dst, uint64_t *bar,
                                              const CUtensorMap *pre = NULL)
{
    if (wg_short_by_tma<FULL>(tm)) {
        if (threadIdx.x == 0) {
            wg_mbar_arrive_tx(bar, wg_short_cfg<D>::TILE);
            /* The maps span every kv head; k and v start at the launch's
             * first (kv_heads_at). */
#pragma unroll
            for (int b = 0; b < D / 64; b++)
                wg_tma_load3(dst + b * WG_KC * 128, m, 64 * b, a.kh0 + x.w.kh,
                             (int)x.w.blk.start, bar);
            /* K's load asks for V into L2 (pre): V is asked for only once
             * P V is done, and the next step's top waits on both.  (The
             * cp.async path leaves pre out.) */
            if (pre)
#pragma unroll
                for (int b = 0; b < D / 64; b++)
                    wg_tma_prefetch3(pre, 64 * b, a.kh0 + x.w.kh, (int)x.w.blk.start);
        }
    } else {
        wg_short_copy<D, FULL>(src, x.w.blk.start, a.Hk, x.w.kh, x.w.blk.len, dst);
    }
}

/* Step x's block, asked for by wg_short_load, is in: TMA's mbarriers
 * (phase *ph, then flipped) or this thread's copies waited for, and this
 * thread's rows of K and V permuted.  The caller fences and synchronises
 * before any wgmma reads them. */
template <int D, bool FULL>
__device__ __forceinline__ void wg_short_arrive(const ws_tma &tm, uint64_t *bar,
                                                unsigned *ph, unsigned char *ks, unsigned char *vs)
{
    if (wg_short_by_tma<FULL>(tm)) {
        wg_mbar_wait(&bar[0], *ph);
        wg_mbar_wait(&bar[1], *ph);
        *ph ^= 1u;
    } else {
        cp_async_wait<0>();
        __syncthreads(); /* the rows came by every thread's copies */
    }
    wg_short_permute<D>(ks);
    wg_short_permute<D>(vs);
}

/* A partial's O goes to L2 evict-first: it is read back only by the
 * merge, after the whole of the key-centric work, and kept at the normal
 * priority it pushed out the Q rows of the (sequence, head) whose tiles
 * are in flight (tile_order), which the next steps gather again.  (Q's
 * loads and prefetches evict-last as well measured slower; docs/perf.md,
 * CUDA v49.) */
__device__ __forceinline__ uint64_t wg_policy_first(void)
{
    uint64_t p;
    asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(p));
    return p;
}

__device__ __forceinline__ void wg_st_first(uint4 *p, uint4 x)
{
    asm volatile("st.global.L1::no_allocate.L2::cache_hint.v4.b32 [%0], {%1, %2, %3, %4}, %5;"
                 ::"l"(p), "r"(x.x), "r"(x.y), "r"(x.z), "r"(x.w), "l"(wg_policy_first())
                 : "memory");
}

/* This thread's rows r0 and r0 + 8 of a step's partials (O / l in the
 * storage dtype at partial indices ps, rl the rows' 1 / l; lse in f32 at
 * their entry indices, e0 the step's first), those below nrows.  O's
 * columns are in V's order, wg_word's, so lane t's words of groups 4 m ..
 * 4 m + 3 are one 16-byte store at 64 m + 16 t of the row: whole 64-byte
 * runs per quad, where the natural order gave 32-bit stores spread over
 * 8 rows (ncu: with those the LSU queue and the registers waiting on it
 * took ~28 % of the stall samples, v14). */
template <int DT, int D>
__device__ __forceinline__ void wg_store_rows(const mma_acc<D, 1> &R, const float *rl,
                                              const gpu_args &a, const int *ps, int e0,
                                              int r0, int nrows, int t)
{
#pragma unroll
    for (int h = 0; h < 2; h++) {
        if (r0 + 8 * h >= nrows) continue;
        const float inv = rl[h];
        uint4 *p = (uint4 *)((unsigned short *)a.part_o + (size_t)ps[h] * D) + t;
#pragma unroll
        for (int m = 0; m < D / 32; m++) {
            uint4 x;
            x.x = mma_pack<DT>(R.o[0][4 * m][2 * h] * inv, R.o[0][4 * m][2 * h + 1] * inv);
            x.y = mma_pack<DT>(R.o[0][4 * m + 1][2 * h] * inv, R.o[0][4 * m + 1][2 * h + 1] * inv);
            x.z = mma_pack<DT>(R.o[0][4 * m + 2][2 * h] * inv, R.o[0][4 * m + 2][2 * h + 1] * inv);
            x.w = mma_pack<DT>(R.o[0][4 * m + 3][2 * h] * inv, R.o[0][4 * m + 3][2 * h + 1] * inv);
            wg_st_first(p + 4 * m, x);
        }
        if (t == 0) a.part_lse[e0 + r0 + 8 * h] = R.m[h] + __logf(R.l[h]);
    }
}

template <int DT, int D, bool FULL>
__global__ void __launch_bounds__(WG_SHORT_THREADS, wg_short_cfg<D>::CTAS)
k_wgmma_kv_short(const unsigned short *q, const unsigned short *k, const unsigned short *v,
                 gpu_args a, const __grid_constant__ ws_tma tm)
{
#if MOBA_WGMMA_OK
    extern __shared__ __align__(128) unsigned char wg_short_raw[];
    unsigned char *ks = wg_smem_align(wg_short_raw), *vs = ks + wg_short_cfg<D>::TILE;
    __shared__ uint64_t bar[2]; /* K's and V's boxes */
    unsigned ph = 0;            /* their phase */
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, t = lane % 4;
    const int r0 = 16 * warp + lane / 4; /* this thread's rows of a step: r0, r0 + 8 */
    const int total = a.tile_off[a.nlists];
    /* Runs of tiles: with a.chunk, chunks of a.chunk tiles taken from the
     * counter a.sched (zeroed before the launch; it counts chunks), the
     * next one a step ahead of need, so that the CTAs whose chunks cost
     * more (short lists, a K/V load every tile or two) take fewer; else
     * one run of about total / gridDim.x tiles per CTA, which left a third
     * of the SM time idle (docs/perf.md, CUDA v17).  Either way a chunk's
     * run is cut at list boundaries (run_bounds.h).  Thread 0 takes a
     * chunk and leaves it in nx[] for every thread to read after the next
     * barrier (wg_takes). */
    __shared__ int nx[3];
    wg_takes tk = {total, total, 0, 0, false}, t0;
    if (threadIdx.x == 0) {
        wg_mbar_init(&bar[0], 1);
        wg_mbar_init(&bar[1], 1);
        wg_mbar_init_fence();
        if (a.chunk) {
            nx[0] = atomicAdd(a.sched, 1);
            nx[1] = atomicAdd(a.sched, 1);
        }
    }
    __syncthreads();
    /* Chunks cut at list boundaries (run_bounds.h, k_runs). */
    if (a.chunk) {
        wg_run_at(a, nx[0], a.chunk, total, t0);
        wg_run_at(a, nx[1], a.chunk, total, tk);
        tk.n = 2;
    } else {
        wg_run_at(a, blockIdx.x, gpu_run_chunk(0, total, gridDim.x), total, t0);
    }
    if (t0.nxt >= t0.end) return;
    /* Bookkeeping runs ahead of the math: during step s the Q fragments
     * of step s + 1 load, their partial indices pn read at the step's top,
     * and at its end step s + 2 is found and its entries prefetched. */
    wg_step x;
    x.tile = t0.nxt;
    x.run_end = t0.end;
    x.lst = t0.nl;
    x.any = true;
    wg_step_list(a, x);
    wg_step xn = wg_step_take(a, x, total, nx, tk);
    int pe[2]; /* x's rows' partial indices (pn: xn's) */
    wg_row_entries(a, x, r0, pe);
    wg_short_load<D, FULL>(k, &tm.k, tm, a, x, ks, &bar[0]);
    wg_short_load<D, FULL>(v, &tm.v, tm, a, x, vs, &bar[1]);
    cp_async_commit();
    uint32_t qf[D / 16][4];
    wg_load_qf<D>(qf, q, a, pe, t);
    wg_prefetch_entries(a, xn);
    bool kv_new = true; /* x's block was asked for in the step before */
    for (;;) {
        const bool nblk = xn.any && xn.lst != x.lst; /* the next step needs another block */
        /* xn's entries (in L2: wg_prefetch_entries asked for them a step
         * ago), first waited for under Q K^T.  Read at the end of the step
         * before, ptxas moved them into their loop-carried registers at
         * this top, which waited for the loads: 9 % of the kernel's stall
         * samples at 512K on an H100 (docs/perf.md, CUDA v44). */
        int pn[2];
        wg_row_entries(a, xn, r0, pn);
        /* A barrier only where a copy or a take is to be read: a step of
         * the same block and no take leaves the warps free to drift. */
        if (kv_new) wg_short_arrive<D, FULL>(tm, bar, &ph, ks, vs);
        if (kv_new || tk.wait) {
            wg_fence_smem();
            __syncthreads();
            wg_take_read(a, nx, total, tk);
        }
        /* One block a step: O starts at zero for P V, and the softmax's
         * rescale factors (al) are not applied. */
        mma_acc<D, 1> R;
        R.m[0] = R.m[1] = -INFINITY;
        R.l[0] = R.l[1] = 0.0f;
        float *o = &R.o[0][0][0], al[2];
        float s[1][WG_KC / 8][4];
        const int lo[2] = {0, 0}, hi[2] = {x.w.blk.len, x.w.blk.len};
        wg_qk<DT, D>(&s[0][0][0], qf, ks);
        /* Under Q K^T, whose wait would hide the one on pn if its load is
         * still out. */
        if (xn.any) wg_prefetch_q<D>(q, a, pn, t);
        wg_wait_pin<WG_KC / 2>(&s[0][0][0]);
        if (nblk) {
            __syncthreads(); /* every warp's Q K^T has read K */
            wg_short_load<D, FULL>(k, &tm.k, tm, a, xn, ks, &bar[0], a.kv_prefetch ? &tm.v : NULL);
            cp_async_commit();
        }
        mma_softmax<D, 1, WG_KC / 8, !FULL, true, true, true>(R, s, a.scale, a.scale_log2, lo,
                                                               hi, t, al);
        uint32_t pa[WG_KC / 16][4];
        wg_pack_p<DT>(pa, s[0]);
        /* The next step's Q, in flight through P V and the stores: issued
         * here, where S is spent, rather than right after Q K^T, where the
         * FULL and masked instances spilled at 168 registers. */
        if (xn.any) wg_load_qf<D>(qf, q, a, pn, t);
        /* The rows' sums are complete: their reciprocals now, while O does
         * not hold its registers (the division's slow path is a call,
         * which at 168 registers spilled around it). */
        mma_acc_finish<D, 1>(R);
        const float inv[2] = {1.0f / R.l[0], 1.0f / R.l[1]};
        wg_pv<DT, D>(o, pa, vs, true);
        wg_commit();
        wg_wait_pin<D / 2>(o);
        if (nblk) {
            __syncthreads(); /* every warp's P V has read V */
            wg_short_load<D, FULL>(v, &tm.v, tm, a, xn, vs, &bar[1]);
            cp_async_commit();
        }
        wg_store_rows<DT, D>(R, inv, a, pe, x.w.e0, r0, x.w.nrows, t);
        if (!xn.any) break;
        const wg_step x2 = wg_step_take(a, xn, total, nx, tk);
        pe[0] = pn[0];
        pe[1] = pn[1];
        wg_prefetch_entries(a, x2);
        kv_new = nblk;
        x = xn;
        xn = x2;
    }
#else
    (void)q; (void)k; (void)v; (void)a; (void)tm;
    __trap(); /* launched only where sm_90a code exists (gpu_backend.cu, use_mma) */
#endif
}

#endif /* MOBA_GPU_HAVE_MMA */

#endif /* MOBA_GPU_ATTEND_WGMMA_CUH */
