/*
 * Key-centric attention for long key blocks (MMA_WIDE_MIN keys and more,
 * f16/bf16, D = 64 or 128) on Hopper (sm_90a), warp-specialized: one
 * producer warp loads the block's K/V chunks into a ring, two consumer
 * warpgroups run wgmma on them, and the two sides meet only at per-slot
 * mbarriers.  It writes the partials of k_mma_kv_wide and k_wgmma_kv.
 *
 * Why: k_wgmma_kv (attend_wgmma.cuh) ran wgmma at about k_mma_kv_wide's
 * speed, ~280 TFLOP/s at the paper's 16384-key blocks, because all 256
 * threads issued the ring's copies between their MMAs and both
 * warpgroups met at a CTA barrier every chunk, so they ran their softmax
 * at the same time and the tensor pipe idled through it (docs/perf.md,
 * CUDA v10-v12).  Here the copies are one warp's, off the consumers'
 * path, and each warpgroup waits only for its chunk to be in, so the two
 * drift apart and one's softmax runs under the other's wgmmas
 * (FlashAttention-3's producer/consumer split, with cp.async and its
 * mbarrier arrival instead of TMA, so the tiled layout of wgmma.cuh and
 * its measured descriptors stay as they are).
 *
 * Layout: 384 threads, one CTA per SM.  Warps 0-3 and 4-7 are the
 * consumer warpgroups (rows 0-63 and 64-127 of a pair of 64-row tiles of
 * one list, Q as A fragments in registers for the whole block), warps
 * 8-11 the producers, which give their registers to the consumers
 * (setmaxnreg: ptxas budgets 168 per thread for 384 threads, and a
 * consumer needs ~200 for Q, O and S without spilling; a CTA of 288
 * threads is budgeted as 384 all the same).  The ring holds WS_RING
 * chunks of WG_KC keys (K then V per slot, 64 KB at D = 128).  full[s]
 * completes when the producers' copies into slot s have landed
 * (cp.async.mbarrier.arrive.noinc by each of them);
 * empty[s] when the 8 consumer warps are done reading it (their wgmmas
 * waited for).  Both sides walk the same sequence of tile pairs (the
 * round-robin of k_wgmma_kv, computed by each side on its own), so the
 * ring's slots and phases line up without any other exchange.  A
 * warpgroup with no rows in a pair (a lone tile) still waits for each
 * chunk and releases it, so that the empty barriers count right.
 *
 * Determinism: a row's result depends only on its Q row and the block's
 * keys, in the fixed order of the chunks; the warp roles do not enter.
 */
#ifndef MOBA_GPU_ATTEND_WGMMA_WS_CUH
#define MOBA_GPU_ATTEND_WGMMA_WS_CUH

#include "attend_wgmma.cuh"

#if MOBA_GPU_HAVE_MMA

#define WS_THREADS 384   /* two consumer warpgroups and the producer one */
#define WS_PRODUCERS 128 /* the producer warpgroup */
#define WS_RING 3        /* chunks in the ring */
/* Registers per thread after setmaxnreg: the producers need few, the
 * consumers hold Q, O and S.  The consumers' increase is served from what
 * the producers release, so the two may not pass what the CTA was
 * launched with, 168 per thread (ptxas's budget for 384 threads); asking
 * for more blocks the consumers for ever. */
#define WS_PRODUCER_REGS 40
#define WS_CONSUMER_REGS 232

static_assert(WS_PRODUCERS * WS_PRODUCER_REGS + (WS_THREADS - WS_PRODUCERS) * WS_CONSUMER_REGS <=
                  65536 / WS_THREADS / 8 * 8 * WS_THREADS,
              "setmaxnreg: the consumers would wait for registers no one frees");

template <int D> struct ws_cfg {
    enum {
        STAGE = 2 * WG_KC * D,                 /* elements of a slot: K, then V */
        BARS = WS_RING * STAGE * 2,            /* byte offset of the mbarriers  */
        SMEM = BARS + 2 * WS_RING * 8          /* bytes                         */
    };
};

/* Keys [0, nk) of one tensor's chunk into dst in the tiled layout of
 * wgmma.cuh, rows nk .. WG_KC - 1 zeroed (their P is 0, but 0 x NaN
 * garbage would not be), by the producer warpgroup's WS_PRODUCERS
 * threads (pt: the thread's index among them).  Slot e of the chunk (16
 * bytes: row ((e / 8) / V8) 8 + e % 8, column group (e / 8) % V8) is
 * thread e % WS_PRODUCERS's, so each instruction of a warp fills 512
 * contiguous bytes, and a thread's slots keep their column group, so its
 * addresses are one base plus compile-time multiples of the row stride. */
template <int D, bool FULL>
__device__ __forceinline__ void ws_load(const unsigned short *src, int64_t tok0, int Hk, int kh,
                                        int nk, unsigned short *dst, int pt)
{
    const int V8 = D / 8, NT = WS_PRODUCERS, N = WG_KC * V8 / NT, RS = NT / V8;
    static_assert(NT % (8 * V8) == 0, "a thread's column group must stay fixed");
    const int u0 = (pt / 8 / V8) * 8 + pt % 8;
    const unsigned short *sp = src + ((size_t)(tok0 + u0) * Hk + kh) * D + (pt / 8 % V8) * 8;
    const size_t step = (size_t)RS * Hk * D;
    unsigned short *dp = dst + pt * 8;
#pragma unroll
    for (int i = 0; i < N; i++) {
        if (FULL) {
            cp_async16(dp + i * NT * 8, sp + i * step);
        } else {
            wg_cp_async16_zfill(dp + i * NT * 8, sp + i * step, u0 + i * RS < nk);
        }
    }
}

/* The ring position after one chunk. */
__device__ __forceinline__ void ws_advance(int &slot, unsigned &ph)
{
    if (++slot == WS_RING) {
        slot = 0;
        ph ^= 1u;
    }
}

/* Ping-pong between the consumer warpgroups (FlashAttention-3's): a
 * warpgroup issues its chunk's wgmmas (this chunk's Q K^T and the last
 * chunk's P V) only in its turn, then passes the turn and runs its
 * softmax while the other's wgmmas hold the tensor cores.  Without the
 * turns both wait for the same chunk, start together and stay in step,
 * softmax against softmax.  Named barriers 1 and 2 (0 is __syncthreads):
 * warpgroup w waits at 1 + w for the other's pass; warpgroup 1 passes
 * once before its first chunk, so that warpgroup 0 goes first. */
__device__ __forceinline__ void ws_turn_wait(int wg)
{
    asm volatile("bar.sync %0, 256;\n" ::"r"(1 + wg) : "memory");
}

__device__ __forceinline__ void ws_turn_pass(int wg)
{
    asm volatile("bar.arrive %0, 256;\n" ::"r"(2 - wg) : "memory");
}

/* Slot s (none when negative) is read for the last time: one arrival per
 * consumer warp, whose wgmmas on it were waited for. */
__device__ __forceinline__ void ws_release(uint64_t *empty, int s, int lane)
{
    __syncwarp();
    if (s >= 0 && lane == 0) wg_mbar_arrive(&empty[s]);
}

template <int DT, int D, bool FULL>
__global__ void __launch_bounds__(WS_THREADS, 1)
k_wgmma_kv_ws(const unsigned short *q, const unsigned short *k, const unsigned short *v,
              gpu_args a)
{
#if MOBA_WGMMA_OK
    extern __shared__ __align__(128) unsigned short ws_smem[];
    typedef ws_cfg<D> C;
    uint64_t *full = (uint64_t *)((unsigned char *)ws_smem + C::BARS), *empty = full + WS_RING;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (threadIdx.x == 0) {
        for (int s = 0; s < WS_RING; s++) {
            wg_mbar_init(&full[s], WS_PRODUCERS);
            wg_mbar_init(&empty[s], 8);
        }
        wg_mbar_init_fence();
    }
    __syncthreads();
    const int total = a.tile_off[a.nlists];
    int slot = 0;
    unsigned ph = 0;
    if (warp >= 8) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(WS_PRODUCER_REGS));
        const int pt = threadIdx.x - 256;
        for (int u = blockIdx.x; 2 * u < total; u += gridDim.x)
        for (int tile = 2 * u, tlast = min(2 * u + 2, total), ntl; tile < tlast; tile += ntl) {
            const gpu_kv_tile w = gpu_kv_tile_at(a, tile, tlast);
            ntl = w.ntl;
            for (int c0 = 0; c0 < w.blk.len; c0 += WG_KC) {
                const int nk = min(WG_KC, w.blk.len - c0);
                unsigned short *ks = ws_smem + slot * C::STAGE;
                wg_mbar_wait(&empty[slot], ph ^ 1u);
                ws_load<D, FULL>(k, w.blk.start + c0, a.Hk, w.kh, nk, ks, pt);
                ws_load<D, FULL>(v, w.blk.start + c0, a.Hk, w.kh, nk, ks + WG_KC * D, pt);
                wg_mbar_arrive_cp_async(&full[slot]);
                ws_advance(slot, ph);
            }
        }
        /* Nothing of this thread's may still be in flight when it exits. */
        cp_async_commit();
        cp_async_wait<0>();
        return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(WS_CONSUMER_REGS));
    const int wg = warp / 4, g = lane / 4, t = lane % 4;
    if (wg == 1) ws_turn_pass(1);
    for (int u = blockIdx.x; 2 * u < total; u += gridDim.x)
    for (int tile = 2 * u, tlast = min(2 * u + 2, total), ntl; tile < tlast; tile += ntl) {
        const gpu_kv_tile w = gpu_kv_tile_at(a, tile, tlast);
        ntl = w.ntl;
        /* wgmma is warpgroup-wide: the warpgroup computes when any of its
         * 64 rows is live (dead rows run on zero Q and are not stored). */
        const bool busy = w.nrows > 64 * wg;
        const int r0 = 16 * warp + g, r1 = r0 + 8;
        uint32_t qf[D / 16][4];
        mma_load_a<D>(qf, r0 < w.nrows ? q + (size_t)gpu_entry_row(a, a.entries[w.e0 + r0]) * D : NULL,
                      r1 < w.nrows ? q + (size_t)gpu_entry_row(a, a.entries[w.e0 + r1]) * D : NULL, t);
        mma_acc<D, 1> R;
        mma_acc_init<D, 1>(R);
        float *o = &R.o[0][0][0];
        /* P of the chunk before (its slot pslot), whose P V is issued with
         * this chunk's Q K^T. */
        uint32_t pa[WG_KC / 16][4];
        int pslot = -1;
        for (int c0 = 0; c0 < w.blk.len; c0 += WG_KC) {
            const unsigned short *ks = ws_smem + slot * C::STAGE;
            wg_mbar_wait(&full[slot], ph);
            ws_turn_wait(wg);
            /* One branch around the chunk's wgmmas and their waits (ptxas
             * serializes wgmmas issued and waited for under different
             * data-dependent branches, C7518). */
            if (busy) {
                /* The copies wrote through the generic proxy; wgmma reads
                 * through the async one. */
                wg_fence_smem();
                float s[1][WG_KC / 8][4];
                const int lo[2] = {0, 0}, hi[2] = {w.blk.len - c0, w.blk.len - c0};
                wg_qk<DT, D>(&s[0][0][0], qf, ks);
                if (pslot >= 0) wg_pv<DT, D>(o, pa, ws_smem + pslot * C::STAGE + WG_KC * D);
                ws_turn_pass(wg);
                wg_wait_all<D>(&s[0][0][0], o);
                /* O holds every chunk before this one: the softmax may
                 * rescale it. */
                mma_softmax<D, 1, WG_KC / 8, !FULL, true, true>(R, s, a.scale, a.scale_log2, lo, hi, t);
                wg_pack_p<DT>(pa, s[0]);
            } else {
                ws_turn_pass(wg);
            }
            ws_release(empty, pslot, lane);
            pslot = slot;
            ws_advance(slot, ph);
        }
        if (busy) {
            float s[1][WG_KC / 8][4];
            wg_pv<DT, D>(o, pa, ws_smem + pslot * C::STAGE + WG_KC * D);
            wg_wait_all<D>(&s[0][0][0], o);
        }
        ws_release(empty, pslot, lane);
        if (busy) {
            mma_acc_finish<D, 1>(R);
            mma_store_partials<DT, D, 1>(R, a, w.e0, 16 * warp, w.nrows, lane);
        }
    }
    /* Warpgroup 1 passed the turn once more than warpgroup 0 waited for
     * it: take that pass, so that no barrier is left half arrived. */
    if (wg == 0) ws_turn_wait(0);
#else
    (void)q; (void)k; (void)v; (void)a;
    __trap(); /* launched only where sm_90a code exists (gpu_backend.cu, use_mma) */
#endif
}

#endif /* MOBA_GPU_HAVE_MMA */

#endif /* MOBA_GPU_ATTEND_WGMMA_WS_CUH */
