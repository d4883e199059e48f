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

#define WG_KC 128      /* keys per chunk: the N of S's wgmma */
#define WG_SHORT_THREADS 128 /* k_wgmma_kv_short: one warpgroup */

/* Descriptor strides of the tiled layout, in bytes (measured by
 * tools/wgmma_probe.cu): the leading offset steps along the reduction
 * dimension, the stride offset along M/N, for K-major and MN-major alike.
 * A core matrix is 128 bytes; a tile with C columns has C / 8 of them per
 * 8 rows. */
template <int D> struct wg_cfg {
    enum {
        K_LBO = 128,          /* K: next 8 d                    */
        K_SBO = D / 8 * 128,  /* K: next 8 keys                 */
        V_LBO = D / 8 * 128,  /* V: next 8 keys (the reduction) */
        V_SBO = 128,          /* V: next 8 d                    */
        CHUNK = WG_KC * D     /* elements of one K or V chunk   */
    };
};

/* Keys [0, nk) of one tensor's chunk (K or V) into dst in the tiled
 * layout, rows nk .. WG_KC - 1 zeroed; the caller commits.  Consecutive
 * threads fill consecutive 16-byte slots (the tiled offset of (row,
 * 8-column group) is linear in ((row / 8) (D / 8) + group) 8 + row % 8),
 * so the shared-memory writes are contiguous and each row's global reads
 * come in 64-byte runs.  A thread's slots are NT (the threads loading) apart, which
 * keeps its column group and steps its row by RS: its global addresses
 * are one base plus multiples of a stride, and a whole chunk (every chunk
 * but a block's last, when its length is not a multiple of WG_KC) needs
 * no row test (FULL: every chunk is whole).  K and V are separate calls
 * so that each can be issued behind a batch of wgmmas: issued together
 * right after the chunk barrier, their 16 cp.async per thread filled the
 * LSU queue and the warps stalled on it before issuing their MMAs
 * (docs/perf.md, CUDA v9 profile). */
template <int D, bool FULL, int NT>
__device__ __forceinline__ void wg_load_async(const unsigned short *src, int64_t tok0, int Hk,
                                              int kh, int nk, unsigned short *dst)
{
    const int V8 = D / 8, RS = NT / V8, N = WG_KC * V8 / NT;
    static_assert(NT % (8 * V8) == 0, "a thread's column group must stay fixed");
    const int e0 = threadIdx.x, grp = e0 / 8, u0 = (grp / V8) * 8 + e0 % 8;
    const unsigned short *sp = src + ((size_t)(tok0 + u0) * Hk + kh) * D + (grp % V8) * 8;
    const size_t step = (size_t)RS * Hk * D;
    unsigned short *dp = dst + e0 * 8;
    if (FULL || nk == WG_KC) {
#pragma unroll
        for (int i = 0; i < N; i++) cp_async16(dp + i * NT * 8, sp + i * step);
    } else {
#pragma unroll
        for (int i = 0; i < N; i++) {
            if (u0 + i * RS < nk)
                cp_async16(dp + i * NT * 8, sp + i * step);
            else
                *(uint4 *)(dp + i * NT * 8) = make_uint4(0, 0, 0, 0);
        }
    }
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
 * at vs as MN-major B: in the tiled layout (keys 16 kc .. 16 kc + 15 are
 * two rows of core matrices) or, SW128, in attend_wgmma_ws.cuh's
 * 128-byte-swizzled one (16 rows, 2048 bytes, into each 64-column block,
 * LBO stepping between the blocks). */
template <int DT, int D, bool SW128>
__device__ __forceinline__ void wg_pv(float *o, const uint32_t (*pa)[4], const unsigned char *vs)
{
#pragma unroll
    for (int i = 0; i < D / 2; i++) wg_pin(o[i]);
    wg_fence();
    const uint64_t d0 = SW128 ? wg_desc_sw128(vs, WG_KC * 128, 1024)
                              : wg_desc(vs, wg_cfg<D>::V_LBO, wg_cfg<D>::V_SBO);
#pragma unroll
    for (int kc = 0; kc < WG_KC / 16; kc++) {
        const uint64_t desc = wg_desc_step(d0, SW128 ? kc * 16 * 128 : kc * 2 * (D / 8) * 128);
        if (D == 128)
            wgmma_m64n128k16<DT, 1>(o, pa[kc], desc, 1);
        else
            wgmma_m64n64k16<DT, 1>(o, pa[kc], desc, 1);
    }
}

/* Waits for every wgmma of the warpgroup, then pins S and O so that no
 * read of them moves above the wait. */
template <int D>
__device__ __forceinline__ void wg_wait_all(float *s, float *o)
{
    wg_wait<0>();
#pragma unroll
    for (int i = 0; i < WG_KC / 2; i++) wg_pin(s[i]);
#pragma unroll
    for (int i = 0; i < D / 2; i++) wg_pin(o[i]);
}

/* Issues (and commits) S = Q K^T for the warpgroup's 64 rows and the
 * chunk's WG_KC keys, K as K-major B. */
template <int DT, int D>
__device__ __forceinline__ void wg_qk(float *s, const uint32_t (*qf)[4], const unsigned short *ks)
{
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        wgmma_m64n128k16<DT, 0>(s, qf[kk], wg_desc(ks + kk * 128, wg_cfg<D>::K_LBO, wg_cfg<D>::K_SBO),
                                kk > 0);
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
 * rows, and the next tile's Q rows arrive by cp.async while this one
 * computes.
 *
 * Layout: a CTA of one warpgroup takes a contiguous run of the
 * key-centric tiles (mostly of one (block, kv head) list, as
 * k_mma_kv_narrow), one 64-row tile per step.  Shared memory holds the
 * block (K and V in the tiled layout of wgmma.cuh) and three Q buffers
 * ([64][D], row-major, 16-byte vectors swizzled as wg_qoff says, read
 * with ldmatrix into A fragments): step s + 2's rows load into the third
 * during step s.  With two buffers (one step ahead, CUDA v14-v39) each
 * step began by waiting for its gathered rows, with ~65 % of DRAM's
 * bandwidth busy at 512K on an H100; the third gave 1.008x end to end
 * there, though 0.98x under ncu's locked clocks (docs/perf.md, CUDA v40).
 * The padding of v14's [64][D + 8] rows is what the third buffer needed
 * to fit two CTAs an SM.  When step s + 1 is of another list, its K loads
 * once step s's S is in and its V once P V is done.  112 KB at D = 128:
 * two CTAs per SM, which never wait for each other, so one's softmax and
 * stores run under the other's wgmmas.  (Two warpgroups per CTA, with two
 * K/V slots so that the next block could load during a step, met at the
 * CTA barrier every step and reached 0.79x of this; docs/perf.md, CUDA
 * v14.) */
#define WG_SHORT_QBUFS 3
template <int D> struct wg_short_cfg {
    enum {
        QBUF = GPU_TILE_ROWS * D, /* one step's Q rows */
        SMEM = (2 * wg_cfg<D>::CHUNK + WG_SHORT_QBUFS * QBUF) * 2 /* bytes */
    };
    static_assert(D / 8 >= 8, "wg_qoff's swizzle needs 8 vectors a row");
    /* 2 CTAs an SM of 228 KB, 1 KB of it reserved per CTA, with nx[]. */
    static_assert(2 * (SMEM + 128 + 1024) <= 228 * 1024, "two CTAs an SM");
};

/* Element offset of 16-byte vector c of row r in a Q buffer: rows of D
 * elements with no padding, vector c at c ^ (r mod 8), so that the 8 rows
 * an ldmatrix tile reads, and the 8 rows of a partial's 32-bit stores
 * (wg_store_partials), fall in 8 different bank groups. */
template <int D> __device__ __forceinline__ int wg_qoff(int r, int c)
{
    return r * D + ((c ^ (r & 7)) * 8);
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

/* Largest l with off[l] <= x, as gpu_find_list, by a warp's 32 lanes at
 * once: each round probes 32 places of the range and keeps the stretch
 * the ballot points to, so 2^16 lists take 4 loads in series instead of
 * 16.  A run's first list was searched for one load at a time, and the
 * 16 dependent loads held ~5 % of k_wgmma_kv_short's stall samples at
 * 512K (docs/perf.md, CUDA v40).  The warp must be converged and x
 * warp-uniform (a CTA's runs are the same for all its threads). */
__device__ __forceinline__ int wg_find_list(const int32_t *off, int n, int x)
{
    const int lane = threadIdx.x % 32;
    int lo = 0, hi = n - 1; /* off[lo] <= x: off[0] = 0 */
    while (lo < hi) {
        const int step = (hi - lo + 32) / 32, p = lo + lane * step;
        const bool ok = lane == 0 || (p <= hi && off[p] <= x);
        /* off does not decrease, so the lanes that hold form a prefix. */
        const unsigned m = __ballot_sync(0xffffffffu, ok);
        lo += (31 - __clz(m)) * step;
        hi = min(hi, lo + step - 1);
    }
    return lo;
}

/* The step after x.  Within a list it reads nothing (the lookups waited
 * on at the end of every step were ~10 % of the stall samples); at a
 * list's end it steps the list along (tiles are contiguous, so past any
 * empty lists) rather than searching for it.  At the end of x's run it
 * goes to the run from tile nxt (the CTA's next chunk, past the last tile
 * when there is none), sets *took and searches that run's list. */
__device__ __forceinline__ wg_step wg_step_after(const gpu_args &a, const wg_step &x, int nxt,
                                                 int total, bool *took)
{
    wg_step y = x;
    y.tile = x.tile + 1;
    if (!x.any) return y;
    if (y.tile >= x.run_end) {
        y.any = nxt < total;
        if (!y.any) return y;
        *took = true;
        y.tile = nxt;
        y.run_end = min(nxt + a.chunk, total);
        y.lst = wg_find_list(a.tile_off, (int)a.nlists, nxt);
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

/* k_wgmma_kv_short's chunk counter: the next run's first tile (nxt), the
 * takes asked for so far (n) and whether the last one is still to be read
 * (wait).  Thread 0 asks in one step and every thread reads after the next
 * barrier, from slot n % 3 of the block's shared nx[3]. */
struct wg_takes {
    int nxt, n;
    bool wait;
};

/* The step after x; where it starts the next run, the run after that is
 * asked for.  tk.nxt is not read before the take replaces it: no run ends
 * within a step. */
__device__ __forceinline__ wg_step wg_step_take(const gpu_args &a, const wg_step &x, int total,
                                                int *nx, wg_takes &tk)
{
    bool took = false;
    const wg_step y = wg_step_after(a, x, tk.nxt, total, &took);
    if (took) {
        tk.nxt = total;
        if (threadIdx.x == 0) nx[tk.n % 3] = atomicAdd(a.sched, a.chunk);
        tk.wait = true;
    }
    return y;
}

/* After a barrier: the take asked for before it. */
__device__ __forceinline__ void wg_take_read(const int *nx, wg_takes &tk)
{
    if (tk.wait) {
        tk.nxt = nx[tk.n % 3];
        tk.n++;
        tk.wait = false;
    }
}

/* This thread's Q slots of a step (wg_gather_q): rows tid / V8 + i RS, the
 * 16-byte column group tid % V8. */
template <int D> struct wg_qslots {
    enum {
        V8 = D / 8,
        RS = WG_SHORT_THREADS / V8,
        N = GPU_TILE_ROWS * V8 / WG_SHORT_THREADS
    };
};

/* The partial indices of this thread's Q slots of step x (0 for dead
 * rows), read a step before the gather that needs them: each row's
 * address depends on one, and reading them in the gather stalled it on
 * the load (a quarter of the kernel's stall samples). */
template <int D>
__device__ __forceinline__ void wg_slot_entries(const gpu_args &a, const wg_step &x, int *pe)
{
    typedef wg_qslots<D> S;
    const int r0 = threadIdx.x / S::V8;
#pragma unroll
    for (int i = 0; i < S::N; i++) {
        const int r = r0 + i * S::RS;
        pe[i] = x.any && r < x.w.nrows ? a.entries[x.w.e0 + r] : 0;
    }
}

/* Into L2, the entries of the step after x (y): within a run the steps'
 * entries follow each other (a list's tiles, then the next list's, which
 * begins where this one ends), so y's are the GPU_TILE_ROWS after x's.
 * Called as x's entries are loaded, a step before y's are: those loads
 * went to DRAM, a step before the gather that needs them, and the gather
 * waited on them for 12 % of k_wgmma_kv_short's stall samples at 512K
 * (docs/perf.md, CUDA v40).  Past a run's end the guess is another run's
 * entries, which costs nothing but the prefetch. */
__device__ __forceinline__ void wg_prefetch_entries(const gpu_args &a, const wg_step &x)
{
    const int64_t n = (int64_t)a.T * a.nheads * (a.K - 1); /* the group's entries */
    const int i = threadIdx.x;
    const int64_t e = (int64_t)x.w.e0 + x.w.nrows + 32 * i;
    /* 64 entries, 256 bytes, span three 128-byte lines at most. */
    if (x.any && i < 3 && e < n) asm volatile("prefetch.global.L2 [%0];" ::"l"(a.entries + e));
}

/* The partial indices of this thread's two rows of step x (r0 and r0 + 8
 * of its warp's 16), which its partial stores need (0 for dead rows). */
__device__ __forceinline__ void wg_row_entries(const gpu_args &a, const wg_step &x, int r0,
                                               int *ps)
{
    ps[0] = x.any && r0 < x.w.nrows ? a.entries[x.w.e0 + r0] : 0;
    ps[1] = x.any && r0 + 8 < x.w.nrows ? a.entries[x.w.e0 + r0 + 8] : 0;
}

/* Step x's Q rows into qs (wg_qoff's layout, rows past nrows zeroed) by
 * cp.async, from its slots' partial indices pe; the caller commits. */
template <int D>
__device__ __forceinline__ void wg_gather_q(unsigned short *qs, const unsigned short *q,
                                            const wg_step &x, const int *pe, const gpu_args &a)
{
    typedef wg_qslots<D> S;
    const int r0 = threadIdx.x / S::V8, c = threadIdx.x % S::V8;
    if (!x.any) return;
#pragma unroll
    for (int i = 0; i < S::N; i++) {
        const int r = r0 + i * S::RS;
        if (r < x.w.nrows)
            cp_async16(qs + wg_qoff<D>(r, c), q + (size_t)gpu_entry_row(a, pe[i]) * D + c * 8);
        else
            *(uint4 *)(qs + wg_qoff<D>(r, c)) = make_uint4(0, 0, 0, 0);
    }
}

/* One tensor (K or V) of step x's block into dst; the caller commits. */
template <int D, bool FULL>
__device__ __forceinline__ void wg_short_load(const unsigned short *src, const gpu_args &a,
                                              const wg_step &x, unsigned short *dst)
{
    wg_load_async<D, FULL, WG_SHORT_THREADS>(src, x.w.blk.start, a.Hk, x.w.kh, x.w.blk.len, dst);
}

/* The warp's 16 rows' partials (O / l in the storage dtype, lse in f32)
 * at partial indices ps (rows g and g + 8 of lane (g, t)), for the rows
 * below nrows, through ow, the warp's own 16 rows of the step's Q buffer
 * (dead once its A fragments are loaded; wg_qoff's layout, which 16 w
 * keeps): each row goes out as 16-byte
 * stores of whole 256-byte rows, where the mma C layout gives 32-bit
 * stores spread over 8 rows (ncu: with those the LSU queue and the
 * registers waiting on it took ~28 % of the stall samples). */
template <int DT, int D>
__device__ __forceinline__ void wg_store_partials(const mma_acc<D, 1> &R, const gpu_args &a,
                                                  unsigned short *ow, int nrows, const int *ps,
                                                  int lane)
{
    const int C8 = D / 8, RPI = 32 / C8;
    const int g = lane / 4, t = lane % 4;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const float inv = 1.0f / R.l[h];
#pragma unroll
        for (int n = 0; n < D / 8; n++)
            *(uint32_t *)(ow + wg_qoff<D>(g + 8 * h, n) + 2 * t) =
                mma_pack<DT>(R.o[0][n][2 * h] * inv, R.o[0][n][2 * h + 1] * inv);
        if (t == 0 && g + 8 * h < nrows) a.part_lse[ps[h]] = R.m[h] + __logf(R.l[h]);
    }
    __syncwarp();
#pragma unroll
    for (int i = 0; i < 16 / RPI; i++) {
        const int rr = RPI * i + lane / C8, c = lane % C8; /* rr / 8 is i's */
        const int p = __shfl_sync(0xffffffffu, ps[RPI * i / 8], (rr % 8) * 4);
        if (rr < nrows)
            *(uint4 *)((unsigned short *)a.part_o + (size_t)p * D + c * 8) =
                *(const uint4 *)(ow + wg_qoff<D>(rr, c));
    }
}

template <int DT, int D, bool FULL>
__global__ void __launch_bounds__(WG_SHORT_THREADS, 2)
k_wgmma_kv_short(const unsigned short *q, const unsigned short *k, const unsigned short *v,
                 gpu_args a)
{
#if MOBA_WGMMA_OK
    extern __shared__ __align__(128) unsigned short wg_smem[];
    const int CH = wg_cfg<D>::CHUNK, QB = wg_short_cfg<D>::QBUF;
    const int NS = wg_qslots<D>::N;
    /* K at ks, V at ks + CH; Q buffer i at qb + i QB. */
    unsigned short *ks = wg_smem, *qb = ks + 2 * CH;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = lane / 4, t = lane % 4, mi = lane / 8;
    const int r0 = 16 * warp + g; /* this thread's rows of a step: r0, r0 + 8 */
    const int total = a.tile_off[a.nlists];
    /* Runs of tiles: with a.chunk, chunks of a.chunk tiles taken from the
     * counter a.sched (zeroed before the launch), the next one a step
     * ahead of need, so that the CTAs whose chunks cost more (short lists,
     * a K/V load every tile or two) take fewer; else one run of total /
     * gridDim.x tiles per CTA, which left a third of the SM time idle
     * (docs/perf.md, CUDA v17).  Thread 0 takes chunk k and
     * leaves it in nx[k % 3] for every thread to read after the next
     * barrier: takes are at most one per step, so a slot is written again
     * a barrier after every thread has read it (the first two chunks are
     * read before the loop's first barrier, hence a third slot). */
    __shared__ int nx[3];
    int tbeg, tend;
    wg_takes tk = {total, 0, false};
    if (a.chunk) {
        if (threadIdx.x == 0) {
            nx[0] = atomicAdd(a.sched, a.chunk);
            nx[1] = atomicAdd(a.sched, a.chunk);
        }
        __syncthreads();
        tbeg = nx[0];
        tend = min(tbeg + a.chunk, total);
        tk.nxt = nx[1];
        tk.n = 2;
    } else {
        tbeg = (int)((int64_t)total * blockIdx.x / gridDim.x);
        tend = (int)((int64_t)total * (blockIdx.x + 1) / gridDim.x);
    }
    if (tbeg >= tend) return;
    /* Bookkeeping runs ahead of the math: during step s the rows of step
     * s + 2 load (their partial indices pe were read in step s - 1), and
     * then the indices of step s + 3's rows and of step s + 1's own rows
     * (ps) are read for the steps that need them. */
    wg_step x;
    x.tile = tbeg;
    x.run_end = tend;
    x.lst = wg_find_list(a.tile_off, (int)a.nlists, tbeg);
    x.any = true;
    wg_step_list(a, x);
    wg_step xn = wg_step_take(a, x, total, nx, tk);
    int pe[NS], ps[2];
    wg_slot_entries<D>(a, x, pe);
    wg_gather_q<D>(qb, q, x, pe, a);
    wg_short_load<D, FULL>(k, a, x, ks);
    wg_short_load<D, FULL>(v, a, x, ks + CH);
    cp_async_commit();
    wg_slot_entries<D>(a, xn, pe);
    wg_gather_q<D>(qb + QB, q, xn, pe, a);
    cp_async_commit();
    if (tk.wait) { /* xn's run may end at xn (runs of one tile) */
        __syncthreads();
        wg_take_read(nx, tk);
    }
    wg_step xnn = wg_step_take(a, xn, total, nx, tk);
    wg_slot_entries<D>(a, xnn, pe);
    wg_prefetch_entries(a, xnn);
    wg_row_entries(a, x, r0, ps);
    bool kv_new = false; /* x's block was loaded in the step before, after xn's rows */
    for (int qi = 0; x.any; qi = qi == WG_SHORT_QBUFS - 1 ? 0 : qi + 1) {
        unsigned short *qs = qb + qi * QB, *q2 = qb + (qi == 0 ? WG_SHORT_QBUFS - 1 : qi - 1) * QB;
        const bool nblk = xn.any && xn.lst != x.lst; /* the next step needs another block */
        /* x's rows and block are in.  The newest group, xn's rows, may
         * still be on its way, unless x's block was asked for after it. */
        if (kv_new)
            cp_async_wait<0>();
        else
            cp_async_wait<1>();
        wg_fence_smem();
        __syncthreads(); /* every warp is past the last step */
        wg_take_read(nx, tk);
        uint32_t qf[D / 16][4];
        {
            /* Rows 16 warp + lane % 8 (+ 8), vectors 2 kk (+ 1): the row's
             * swizzle is lane % 8. */
            const unsigned short *qa = qs + (16 * warp + (mi & 1) * 8 + lane % 8) * D;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++)
                ldsm_x4(qf[kk], qa + (((2 * kk + (mi >> 1)) ^ (lane % 8)) * 8));
        }
        mma_acc<D, 1> R;
        mma_acc_init<D, 1>(R);
        float *o = &R.o[0][0][0];
        float s[1][WG_KC / 8][4];
        const int lo[2] = {0, 0}, hi[2] = {x.w.blk.len, x.w.blk.len};
        wg_qk<DT, D>(&s[0][0][0], qf, ks);
        wg_gather_q<D>(q2, q, xnn, pe, a);
        cp_async_commit();
        wg_wait_all<D>(&s[0][0][0], o);
        if (nblk) {
            __syncthreads(); /* every warp's Q K^T has read K */
            wg_short_load<D, FULL>(k, a, xn, ks);
            cp_async_commit();
        }
        mma_softmax<D, 1, WG_KC / 8, !FULL, true, true>(R, s, a.scale, a.scale_log2, lo, hi, t);
        uint32_t pa[WG_KC / 16][4];
        wg_pack_p<DT>(pa, s[0]);
        wg_pv<DT, D, false>(o, pa, (const unsigned char *)(ks + CH));
        wg_commit();
        wg_wait_all<D>(&s[0][0][0], o);
        if (nblk) {
            __syncthreads(); /* every warp's P V has read V */
            wg_short_load<D, FULL>(v, a, xn, ks + CH);
            cp_async_commit();
        }
        mma_acc_finish<D, 1>(R);
        wg_store_partials<DT, D>(R, a, qs + 16 * warp * D, x.w.nrows - 16 * warp, ps, lane);
        const wg_step x3 = wg_step_take(a, xnn, total, nx, tk);
        wg_slot_entries<D>(a, x3, pe);
        wg_prefetch_entries(a, x3);
        wg_row_entries(a, xn, r0, ps);
        kv_new = nblk;
        x = xn;
        xn = xnn;
        xnn = x3;
    }
#else
    (void)q; (void)k; (void)v; (void)a;
    __trap(); /* launched only where sm_90a code exists (gpu_backend.cu, use_mma) */
#endif
}

#endif /* MOBA_GPU_HAVE_MMA */

#endif /* MOBA_GPU_ATTEND_WGMMA_CUH */
