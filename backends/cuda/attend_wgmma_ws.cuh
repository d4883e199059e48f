/*
 * Key-centric attention for blocks of more than 128 keys (a->ws_min,
 * GPU_WS_MIN by default; f16/bf16, D = 64 or 128) on Hopper (sm_90a),
 * warp-specialized: a producer warpgroup loads the block's K/V chunks
 * into a ring, two consumer warpgroups run wgmma on them, and the two
 * sides meet only at per-slot mbarriers.  It writes the partials of
 * k_mma_kv_wide.
 *
 * Why: its predecessor, k_wgmma_kv (removed), ran wgmma only at
 * k_mma_kv_wide's speed, ~280 TFLOP/s at the paper's 16384-key blocks:
 * all 256 threads issued the ring's copies between their MMAs, and both
 * warpgroups met at a CTA barrier every chunk, so they ran their softmax
 * at the same time and the tensor pipe idled through it (docs/perf.md,
 * CUDA v10-v12).  Here the copies are the producers', off the consumers'
 * path; the consumers take turns at the tensor cores (ws_turn_wait), so
 * that one's softmax runs under the other's wgmmas; each issues a chunk's
 * P V with the next chunk's Q K^T.  That is FlashAttention-3's design,
 * with its TMA producer (ws_tma; cp.async where the maps cannot be built
 * and for a block's last, shorter chunk) and its 128-byte-swizzled K/V
 * layout (wg_desc_sw128), which took the kernel
 * from 1.19x to 1.91x k_mma_kv_wide (CUDA v22: the unswizzled layout's
 * conflict-free copy order read 64-byte pieces of 8 key rows per warp,
 * and the L2 was 79 % busy at 57 % of its bandwidth).
 *
 * Layout: 384 threads, one CTA per SM.  Warps 0-3 and 4-7 are the
 * consumer warpgroups (rows 0-63 and 64-127 of a pair of 64-row tiles of
 * one list, each warpgroup's Q in shared memory for the whole item,
 * ws_load_q), warps 8-11 the producers, which give their registers to
 * the consumers (setmaxnreg: ptxas budgets 168 per thread for 384
 * threads, and a consumer needs ~200 for O, S and P and the overlap
 * within a warpgroup without spilling; a CTA of 288 threads is budgeted
 * as 384 all the same).  The ring holds WS_RING chunks of WG_KC keys (K
 * then V per slot, 64 KB at D = 128), 192 KB that leave room for the two
 * Q tiles (32 KB) under the 227 KB a CTA may have.  full[s]
 * completes when the producers' copies into slot s have landed (an
 * arrival by each of them: for TMA one announces the boxes' bytes and the
 * others arrive at once; for cp.async each arrives through
 * cp.async.mbarrier.arrive.noinc); empty[s] when the 8
 * consumer warps are done reading it (their wgmmas waited for: a chunk's
 * slot is released one chunk later, after its P V).  Both sides walk the
 * same sequence of tile pairs (k_mma_kv_wide's round-robin, each side
 * computing it on its own), so the ring's slots and phases line up
 * without any other exchange.  A warpgroup with no rows in a pair (a lone tile)
 * still waits for each chunk, takes its turns and releases the chunk, so
 * that the barriers count right.
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
/* Lazy rescaling in the consumers' softmax (mma_softmax; 0 for the A/B
 * against the eager form). */
#ifndef WS_LAZY
#define WS_LAZY 1
#endif
/* Registers per thread after setmaxnreg (ws_cfg): the producers need
 * few, the consumers hold Q, O, S and P.  The consumers' increase is
 * served from what the producers release, so the two may not pass what
 * the CTA was launched with, 168 per thread (ptxas's budget for 384
 * threads); asking for more blocks the consumers for ever.  D = 128 needs
 * 232 for the consumers; at D = 64 (half the O) the producers' loop spilled
 * at 40 and takes 56. */
#define WS_LAUNCH_REGS (65536 / WS_THREADS / 8 * 8)

template <int D> struct ws_cfg {
    enum {
        PRODUCER_REGS = D > 64 ? 40 : 56,
        CONSUMER_REGS = D > 64 ? 232 : 224,
        VOFF = WG_KC * D * 2,            /* bytes: V's offset in a slot        */
        STAGE = 2 * VOFF,                /* bytes of a slot: K, then V         */
        QOFF = WS_RING * STAGE,          /* byte offset of the consumers' Q    */
        QBYTES = 64 * D * 2,             /* bytes of one consumer's 64 rows    */
        BARS = QOFF + 2 * QBYTES,        /* byte offset of the mbarriers       */
        SMEM = BARS + 2 * WS_RING * 8 + WG_SMEM_ALIGN /* bytes, with room to
                                                   * align the ring (wg_smem_align) */
    };
    static_assert(SMEM <= 232448, "more shared memory than an sm_90 CTA may have");
    static_assert(WS_PRODUCERS * PRODUCER_REGS + (WS_THREADS - WS_PRODUCERS) * CONSUMER_REGS <=
                      WS_LAUNCH_REGS * WS_THREADS,
                  "setmaxnreg: the consumers would wait for registers no one frees");
};

/* A whole chunk (WG_KC keys) of one tensor into dst in the
 * 128-byte-swizzled layout (wg_desc_sw128) by cp.async, by the producer
 * warpgroup's WS_PRODUCERS threads (pt: the thread's index among them).  Thread pt copies 16-byte
 * chunk pt % (D / 8) of rows pt / (D / 8) + i RS: a warp reads whole
 * key rows (D * 2 bytes each), and the XOR spreads each row's chunks over
 * all banks, so the shared-memory writes stay conflict-free. */
template <int D>
__device__ __forceinline__ void ws_load(const unsigned short *src, int64_t tok0, int Hk, int kh,
                                        unsigned char *dst, int pt)
{
    const int V8 = D / 8, NT = WS_PRODUCERS, RS = NT / V8, N = WG_KC / RS;
    static_assert(NT % V8 == 0 && WG_KC % RS == 0 && RS % 8 == 0, "rows step by whole atoms");
    const int c = pt % V8, r0 = pt / V8;
    const unsigned short *sp = src + ((size_t)(tok0 + r0) * Hk + kh) * D + c * 8;
    const size_t step = (size_t)RS * Hk * D;
    /* r0 + i RS has the row-in-atom of r0: one swizzled offset, stepped. */
    unsigned char *dp = dst + wg_sw128_off(r0, c, WG_KC);
#pragma unroll
    for (int i = 0; i < N; i++) cp_async16(dp + i * RS * 128, sp + i * step);
}

/* S = Q K^T for the warpgroup's 64 rows (qs: 64 rows in the swizzled
 * layout) and a chunk of WG_KC keys (ks, the same layout), both K-major:
 * k16 step kk is 32 bytes into each row of its 64-column block.  Issued,
 * not committed. */
template <int DT, int D>
__device__ __forceinline__ void ws_qk(float *s, const unsigned char *qs, const unsigned char *ks)
{
    const uint64_t a0 = wg_desc_sw128(qs, 16, 1024), b0 = wg_desc_sw128(ks, 16, 1024);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        wgmma_m64n128k16_ss<DT>(s, wg_desc_step(a0, (kk / 4) * 64 * 128 + (kk % 4) * 32),
                                wg_desc_step(b0, (kk / 4) * WG_KC * 128 + (kk % 4) * 32), kk > 0);
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

/* A unit of a CTA's work: up to two 64-row tiles (nrows rows, ntl
 * tiles) and the keys they attend, [kstart, kstart + klen) of kv head kh.
 * Key-centric (k_wgmma_kv_ws): tiles of one list, whose rows are entries
 * from e0 on.  Own blocks (k_wgmma_own_ws): consecutive query tiles of one
 * sequence and query head h, rows from row0 (token tok0), keys from klo
 * (the first row's block start), sequence relative. */
struct ws_item {
    int64_t kstart, tok0;
    int klen, kh, nrows, ntl;
    int e0;
    int h, row0, klo, seqlen;
};

/* Where a CTA is in its sequence of items: the pair (u), the tile and
 * (key-centric) its list's place, -1 before the first. */
struct ws_iter {
    int u, tile, tlast, hh, lst;
    ws_item it;
};

template <bool OWN> __device__ __forceinline__ void ws_item_at(const gpu_args &a, ws_iter &s)
{
    ws_item &it = s.it;
    if (!OWN) {
        s.lst = gpu_list_from(a, s.lst, s.tile);
        const gpu_kv_tile w = gpu_kv_tile_pair(a, s.lst, s.tile, s.tlast);
        it.kstart = w.blk.start;
        it.klen = w.blk.len;
        it.kh = w.kh;
        it.nrows = w.nrows;
        it.ntl = w.ntl;
        it.e0 = w.e0;
        return;
    }
    const gpu_qtile t0 = a.qtiles[s.tile];
    it.ntl = 1;
    it.nrows = t0.rows;
    if (s.tile + 1 < s.tlast) {
        const gpu_qtile t1 = a.qtiles[s.tile + 1];
        if (t1.seq == t0.seq) { /* tiles of a sequence are consecutive rows */
            it.ntl = 2;
            it.nrows += t1.rows;
        }
    }
    const moba_seq sq = a.seqs[t0.seq];
    const int last = t0.row0 + it.nrows - 1;
    it.klo = t0.row0 / a.S * a.S;
    it.klen = (a.causal ? last + 1 : min((last / a.S + 1) * a.S, sq.len)) - it.klo;
    it.kstart = sq.start + it.klo;
    it.h = a.h0 + s.hh;
    it.kh = it.h / a.group;
    it.tok0 = sq.start + t0.row0;
    it.row0 = t0.row0;
    it.seqlen = sq.len;
}

/* The first item of pair u (false past the last pair): pairs of
 * key-centric tiles, dealt round-robin as in k_mma_kv_wide; or pairs of
 * query tiles, head-major, so that the CTAs running together read the
 * same blocks, each S / 128 of them (about a block's) in a mirrored order,
 * first, last, second, second to last..., and dealt two by two
 * (ws_first, ws_next).
 *
 * Why the mirror: an own item takes 1 to S / 128 chunks, by its rows'
 * place in their block.  Dealt round-robin one by one, the CTAs' sums
 * drifted up to ~16 items apart, so that the CTAs running at a time
 * read ~16 blocks' keys, not 1 or 2, and the L2 missed 69 % (CUDA v23).
 * Items p and S / 128 - 1 - p take S / 128 + 1 chunks together, so that
 * CTAs taking them two by two keep in step, as the key-centric ones do
 * (whose items are all one block long). */
template <bool OWN> __device__ __forceinline__ bool ws_pair(const gpu_args &a, int u, ws_iter &s)
{
    s.u = u;
    if (OWN) {
        const int np = (int)((a.ntiles + 1) / 2);
        if (u >= np * a.nheads) return false;
        s.hh = u / np;
        const int m = u % np, grp = max(a.S / 128, 1), g0 = m - m % grp;
        const int r = m - g0, size = min(grp, np - g0);
        s.tile = 2 * (g0 + (r % 2 ? size - 1 - r / 2 : r / 2));
        s.tlast = min(s.tile + 2, (int)a.ntiles);
    } else {
        const int total = a.tile_off[a.nlists];
        if (2 * u >= total) return false;
        s.tile = 2 * u;
        s.tlast = min(s.tile + 2, total);
    }
    ws_item_at<OWN>(a, s);
    return true;
}

/* The CTA's first item: key-centric pairs one by one, own pairs two by
 * two (ws_pair). */
template <bool OWN> __device__ __forceinline__ bool ws_first(const gpu_args &a, ws_iter &s)
{
    s.lst = -1;
    return ws_pair<OWN>(a, OWN ? 2 * (int)blockIdx.x : (int)blockIdx.x, s);
}

/* The item after s's: the rest of its pair, else the CTA's next pair. */
template <bool OWN> __device__ __forceinline__ bool ws_next(const gpu_args &a, ws_iter &s)
{
    s.tile += s.it.ntl;
    if (s.tile < s.tlast) {
        ws_item_at<OWN>(a, s);
        return true;
    }
    if (!OWN) return ws_pair<OWN>(a, s.u + gridDim.x, s);
    return ws_pair<OWN>(a, s.u % 2 ? s.u - 1 + 2 * (int)gridDim.x : s.u + 1, s);
}

/* Row r of an own item: its keys [lo, hi), relative to the item's klo
 * (empty for rows past the item). */
__device__ __forceinline__ void ws_own_range(const gpu_args &a, const ws_item &w, int r, int &lo,
                                             int &hi)
{
    if (r >= w.nrows) {
        lo = hi = 0;
        return;
    }
    const int tq = w.row0 + r, b0 = tq / a.S * a.S;
    lo = b0 - w.klo;
    hi = (a.causal ? tq + 1 : min(b0 + a.S, w.seqlen)) - w.klo;
}

/* The warpgroup's 64 query rows of an item (rows r0 .. r0 + 63) into qs
 * in the swizzled layout, rows past the item zeroed, by its 128 threads
 * (ct: the thread's index among them): thread ct copies 16-byte chunk
 * ct % (D / 8) of rows ct / (D / 8) + i RS; ws_load_q_wait waits for
 * them.  Q in shared memory instead of A fragments frees 32 registers per
 * consumer thread. */
template <int D, bool OWN>
__device__ __forceinline__ void ws_load_q(const unsigned short *q, const gpu_args &a,
                                          const ws_item &w, int r0, unsigned char *qs, int ct)
{
    const int V8 = D / 8, RS = 128 / V8, N = 64 / RS;
    const int c = ct % V8;
#pragma unroll
    for (int i = 0; i < N; i++) {
        const int r = ct / V8 + i * RS, row = r0 + r;
        unsigned char *dst = qs + wg_sw128_off(r, c, 64);
        if (row < w.nrows) {
            const size_t qrow = OWN ? (size_t)(w.tok0 + row) * a.Hq + w.h
                                    : (size_t)gpu_entry_row(a, a.entries[w.e0 + row]);
            cp_async16(dst, q + qrow * D + c * 8);
        } else {
            *(uint4 *)dst = make_uint4(0, 0, 0, 0);
        }
    }
    cp_async_commit();
}

/* Every thread's copies of ws_load_q landed and fenced (the wgmmas read
 * through the async proxy), then the warpgroup meets at named barrier
 * 3 + wg. */
__device__ __forceinline__ void ws_load_q_wait(int wg)
{
    cp_async_wait<0>();
    wg_fence_smem();
    asm volatile("bar.sync %0, 128;\n" ::"r"(3 + wg) : "memory");
}

/* Whether a chunk needs the mask for a row whose keys are [lo, hi),
 * chunk relative: a live row's range does not cover the whole chunk. */
__device__ __forceinline__ bool ws_cuts(int lo, int hi, bool live)
{
    return live && (lo > 0 || hi < WG_KC);
}

/* The chunk's softmax for the warp's rows (live0/1: whether r0 / r1 are
 * rows of the item), O's factors into al (mma_softmax, LATE).  Only the
 * chunks that cut a live row's keys pay for the mask (own blocks: the
 * diagonal; key-centric: a block's partial last chunk), a warp-wide
 * choice. */
template <int D, bool FULL, bool OWN>
__device__ __forceinline__ void ws_softmax(mma_acc<D, 1> &R, float (*s)[WG_KC / 8][4],
                                           const gpu_args &a, const int *lo, const int *hi,
                                           bool live0, bool live1, int t, float *al)
{
    const bool cut = (OWN || !FULL) && __any_sync(0xffffffffu, ws_cuts(lo[0], hi[0], live0) ||
                                                                   ws_cuts(lo[1], hi[1], live1));
    if (cut)
        mma_softmax<D, 1, WG_KC / 8, true, true, true, true, 4, WS_LAZY>(
            R, s, a.scale, a.scale_log2, lo, hi, t, al);
    else
        mma_softmax<D, 1, WG_KC / 8, false, true, true, true, 4, WS_LAZY>(
            R, s, a.scale, a.scale_log2, lo, hi, t, al);
}

/* A chunk of nk < WG_KC keys, K then V, by cp.async as ws_load, rows nk
 * .. WG_KC - 1 zeroed (their P is 0, but 0 x NaN garbage would not be),
 * in a loop that is not unrolled: unrolled beside the whole chunks'
 * copies, ptxas kept its source addresses live across the producers' loop
 * and spilled them at their 40 or 56 registers, for a path that runs once
 * per block at most. */
template <int D>
__device__ __forceinline__ void ws_load_short(const unsigned short *k, const unsigned short *v,
                                              int64_t tok0, int Hk, int kh, int nk,
                                              unsigned char *dst, int pt)
{
    const int V8 = D / 8, RS = WS_PRODUCERS / V8, N = WG_KC / RS;
    const int c = pt % V8, r0 = pt / V8;
#pragma unroll 1
    for (int i = 0; i < 2 * N; i++) {
        const bool isv = i >= N;
        const int r = r0 + (isv ? i - N : i) * RS;
        const unsigned short *sp = (isv ? v : k) + ((size_t)(tok0 + r) * Hk + kh) * D + c * 8;
        unsigned char *dp = dst + (isv ? ws_cfg<D>::VOFF : 0) + wg_sw128_off(r, c, WG_KC);
        if (r < nk)
            cp_async16(dp, sp);
        else
            cp_async16_n(dp, k, 0);
    }
}

/* The producer warpgroup's loop: every item's chunks into the ring, slot
 * after slot, each once its consumers have released it.  TMA: whole
 * chunks as boxes from one thread (ws_by_tma), the rest by cp.async. */
template <int D, bool OWN, bool TMA>
__device__ __forceinline__ void ws_produce(const unsigned short *k, const unsigned short *v,
                                           const gpu_args &a, const ws_tma &tm,
                                           unsigned char *ring, uint64_t *full, uint64_t *empty)
{
    typedef ws_cfg<D> C;
    const int pt = threadIdx.x - 256;
    int slot = 0;
    unsigned ph = 0;
    ws_iter it;
    for (bool more = ws_first<OWN>(a, it); more; more = ws_next<OWN>(a, it)) {
        const ws_item &w = it.it;
        /* The maps span every kv head; the key-centric k and v start at
         * the launch's first (kv_heads_at). */
        const int khead = OWN ? w.kh : a.kh0 + w.kh;
        for (int c0 = 0; c0 < w.klen; c0 += WG_KC) {
            const int nk = min(WG_KC, w.klen - c0);
            unsigned char *ks = ring + slot * C::STAGE;
            wg_mbar_wait(&empty[slot], ph ^ 1u);
            if (nk < WG_KC) {
                ws_load_short<D>(k, v, w.kstart + c0, a.Hk, w.kh, nk, ks, pt);
                wg_mbar_arrive_cp_async(&full[slot]);
            } else if (!TMA) {
                ws_load<D>(k, w.kstart + c0, a.Hk, w.kh, ks, pt);
                ws_load<D>(v, w.kstart + c0, a.Hk, w.kh, ks + C::VOFF, pt);
                wg_mbar_arrive_cp_async(&full[slot]);
            } else {
                /* One thread's boxes and the others' plain arrivals:
                 * full[s] counts WS_PRODUCERS either way. */
                if (pt == 0) {
                    const int tok = (int)(w.kstart + c0);
                    wg_mbar_arrive_tx(&full[slot], C::STAGE);
#pragma unroll
                    for (int b = 0; b < D / 64; b++) {
                        wg_tma_load3(ks + b * WG_KC * 128, &tm.k, 64 * b, khead, tok, &full[slot]);
                        wg_tma_load3(ks + C::VOFF + b * WG_KC * 128, &tm.v, 64 * b, khead, tok,
                                     &full[slot]);
                    }
                } else {
                    wg_mbar_arrive(&full[slot]);
                }
            }
            ws_advance(slot, ph);
        }
    }
    /* Nothing of this thread's may still be in flight when it exits. */
    cp_async_commit();
    cp_async_wait<0>();
}

/* Slots of a row's selection merged in the own kernel's epilogue with
 * every load issued up front (ws_merge_row); larger top-k takes the
 * loads in the loop. */
#define WS_MERGE_PRE 4

/* ws_merge_row's two steps: the own block's share (weight w) of R's row
 * r, O / l, and a partial's, its 16-bit values x (one pair of columns per
 * n); each adds its weight to L. */
template <int D>
__device__ __forceinline__ void ws_merge_own(float (*o)[2], float &L, const mma_acc<D, 1> &R,
                                             int r, float w)
{
    const float wl = w / R.l[r];
    L += w;
#pragma unroll
    for (int n = 0; n < D / 8; n++)
#pragma unroll
        for (int e = 0; e < 2; e++) o[n][e] = fmaf(wl, R.o[0][n][2 * r + e], o[n][e]);
}

template <int DT, int D>
__device__ __forceinline__ void ws_merge_part(float (*o)[2], float &L, float w, const uint32_t *x)
{
    L += w;
#pragma unroll
    for (int n = 0; n < D / 8; n++) {
        o[n][0] = fmaf(w, gpu_to_f32<DT>((unsigned short)(x[n] & 0xffffu)), o[n][0]);
        o[n][1] = fmaf(w, gpu_to_f32<DT>((unsigned short)(x[n] >> 16)), o[n][1]);
    }
}

/* A row's own-block result (R's row r: O and l as the attention left
 * them, f32, lse m + ln l) merged with the row's partials of the
 * key-centric kernel in slot order, with gpu_merge_row's arithmetic, into
 * out (the storage dtype) and lse (when given).  It was a kernel of its
 * own (k_mma_own's merge), which read the own result back from out as
 * 16-bit values: two more passes over T Hq D values and a launch, 1.016x
 * the forward at 256K tokens with 16384-key blocks (docs/perf.md, CUDA
 * v26).  b: the row's own block; erow: its entry indices in part_ent
 * (gpu_ent_row).  Each lane of the row's quad holds columns 8 n + 2 t,
 * + 1 of O, and reads and writes those. */
template <int DT, int D>
__device__ __forceinline__ void ws_merge_row(const mma_acc<D, 1> &R, int r, const gpu_args &a,
                                             size_t qrow, int64_t erow, int b, unsigned short *out,
                                             float *lse, int t)
{
    const int K = a.K, Km1 = K - 1, ND = D / 8;
    const int32_t *selrow = a.sel + qrow * K;
    const int32_t *ent = a.part_ent + erow; /* where the lse are */
    const uint32_t *po = (const uint32_t *)((const unsigned short *)a.part_o + qrow * Km1 * D) + t;
    const float l = R.l[r], own_lse = R.m[r] + __logf(l);
    float o[ND][2];
#pragma unroll
    for (int n = 0; n < ND; n++) o[n][0] = o[n][1] = 0.0f;
    float M = own_lse, L = 0.0f;
    if (K <= WS_MERGE_PRE) {
        /* Slot i's partial is i or i - 1 (whether the own block came
         * before it): the row's Km1 partials are always there to read,
         * used or not (part_ent is 0 past its last), so every load goes
         * out before the first use. */
        int js[WS_MERGE_PRE];
        float pl[WS_MERGE_PRE - 1];
        uint32_t pv[WS_MERGE_PRE - 1][ND];
#pragma unroll
        for (int i = 0; i < WS_MERGE_PRE; i++) js[i] = i < K ? selrow[i] : -1;
#pragma unroll
        for (int c = 0; c < WS_MERGE_PRE - 1; c++) {
            pl[c] = c < Km1 ? a.part_lse[ent[c]] : -INFINITY;
#pragma unroll
            for (int n = 0; n < ND; n++) pv[c][n] = c < Km1 ? po[(size_t)c * D / 2 + n * 4] : 0u;
        }
        bool end = false, past = false; /* past: the own slot came before */
#pragma unroll
        for (int i = 0; i < WS_MERGE_PRE; i++) {
            const int cl = i > 0 ? i - 1 : 0, ch = i < WS_MERGE_PRE - 1 ? i : 0;
            end = end || js[i] < 0;
            if (!end && js[i] == b)
                past = true;
            else if (!end)
                M = fmaxf(M, past ? pl[cl] : pl[ch]);
        }
        end = past = false;
#pragma unroll
        for (int i = 0; i < WS_MERGE_PRE; i++) {
            end = end || js[i] < 0;
            if (end) continue;
            if (js[i] == b) {
                ws_merge_own<D>(o, L, R, r, __expf(own_lse - M));
                past = true;
                continue;
            }
            const int cl = i > 0 ? i - 1 : 0, ch = i < WS_MERGE_PRE - 1 ? i : 0;
            uint32_t x[ND];
#pragma unroll
            for (int n = 0; n < ND; n++) x[n] = past ? pv[cl][n] : pv[ch][n];
            ws_merge_part<DT, D>(o, L, __expf((past ? pl[cl] : pl[ch]) - M), x);
        }
    } else {
        for (int i = 0, c = 0; i < K; i++) {
            const int j = selrow[i];
            if (j < 0) break;
            if (j != b) M = fmaxf(M, a.part_lse[ent[c++]]);
        }
        for (int i = 0, c = 0; i < K; i++) {
            const int j = selrow[i];
            if (j < 0) break;
            if (j == b) {
                ws_merge_own<D>(o, L, R, r, __expf(own_lse - M));
                continue;
            }
            uint32_t x[ND];
#pragma unroll
            for (int n = 0; n < ND; n++) x[n] = po[(size_t)c * D / 2 + n * 4];
            ws_merge_part<DT, D>(o, L, __expf(a.part_lse[ent[c]] - M), x);
            c++;
        }
    }
    const float inv = 1.0f / L;
    uint32_t *dst = (uint32_t *)(out + qrow * D) + t;
#pragma unroll
    for (int n = 0; n < ND; n++) dst[n * 4] = mma_pack<DT>(o[n][0] * inv, o[n][1] * inv);
    if (lse && t == 0) lse[qrow] = M + __logf(L);
}

/* The producers and consumers of both kernels: OWN picks the items, the
 * rows' key ranges and where the results go (partials, or merged with
 * them into out and lse: ws_merge_row); FULL (key-centric only) that no chunk needs a mask. */
template <int DT, int D, bool FULL, bool OWN>
__device__ __forceinline__ void ws_run(const unsigned short *q, const unsigned short *k,
                                       const unsigned short *v, unsigned short *out,
                                       float *lse, const gpu_args &a, const ws_tma &tm)
{
    extern __shared__ __align__(128) unsigned char ws_raw[];
    typedef ws_cfg<D> C;
    unsigned char *const ring = wg_smem_align(ws_raw);
    uint64_t *full = (uint64_t *)(ring + C::BARS), *empty = full + WS_RING;
    /* The warp index through a shuffle from lane 0: nvcc then knows it
     * (and the warpgroup, the roles' branch and the ring slot) to be
     * warp-uniform and computes the wgmma descriptors on the uniform
     * datapath (CUTLASS's canonical_warp_idx_sync); from threadIdx it
     * built each in a vector register and moved it over with R2UR, four
     * per wgmma on the issue path. */
    const int lane = threadIdx.x % 32, warp = __shfl_sync(0xffffffffu, threadIdx.x / 32, 0);
    if (threadIdx.x == 0) {
        for (int s = 0; s < WS_RING; s++) {
            wg_mbar_init(&full[s], WS_PRODUCERS);
            wg_mbar_init(&empty[s], 8);
        }
        wg_mbar_init_fence();
    }
    __syncthreads();
    int slot = 0;
    unsigned ph = 0;
    ws_iter it;
    if (warp >= 8) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"((int)C::PRODUCER_REGS));
        /* One loop per copy method: with the cp.async copies of whole
         * chunks and the boxes in one loop, ptxas kept the copies' source
         * addresses live across it and spilled 404 bytes at the
         * producers' 40 registers (D = 128). */
        if (tm.on)
            ws_produce<D, OWN, true>(k, v, a, tm, ring, full, empty);
        else
            ws_produce<D, OWN, false>(k, v, a, tm, ring, full, empty);
        return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"((int)C::CONSUMER_REGS));
    const int wg = warp / 4, g = lane / 4, t = lane % 4;
    unsigned char *const qs = ring + C::QOFF + wg * C::QBYTES;
    if (wg == 1) ws_turn_pass(1);
    bool qnext = false; /* this warpgroup's Q of item it is on its way */
    for (bool more = ws_first<OWN>(a, it); more;) {
        const ws_item w = it.it;
        /* wgmma is warpgroup-wide: the warpgroup computes when any of its
         * 64 rows is live (dead rows run on zero Q and are not stored). */
        const bool busy = w.nrows > 64 * wg;
        const int r0 = 16 * warp + g, r1 = r0 + 8;
        /* The rows' keys, item relative, and the warpgroup's (own blocks:
         * a chunk outside the warpgroup's is skipped). */
        int lo0 = 0, hi0 = w.klen, lo1 = 0, hi1 = w.klen, wlo = 0, whi = w.klen;
        if (OWN) {
            ws_own_range(a, w, r0, lo0, hi0);
            ws_own_range(a, w, r1, lo1, hi1);
            int x;
            ws_own_range(a, w, 64 * wg, wlo, x);
            ws_own_range(a, w, min(64 * wg + 63, w.nrows - 1), x, whi);
        }
        /* The last item's wgmmas, which read qs, were all waited for;
         * key-centric, its end may have asked for this item's Q already. */
        if (busy && !qnext) ws_load_q<D, OWN>(q, a, w, 64 * wg, qs, threadIdx.x % 128);
        qnext = false;
        /* Key-centric: the next item, found while this one's Q is in
         * flight (it now holds the next).  (The own kernel finds it at the
         * end: its item held across the loop spilled 28 bytes.)  Its Q
         * rows asked for into L2 here too measured 0.98-1.02x (docs/perf.md
         * CUDA v58). */
        if (!OWN) more = ws_next<OWN>(a, it);
        if (busy) ws_load_q_wait(wg);
        mma_acc<D, 1> R;
        mma_acc_init<D, 1>(R);
        float *o = &R.o[0][0][0];
        /* P of the chunk before (its slot pslot, when pend), whose P V is
         * issued with this chunk's Q K^T. */
        uint32_t pa[WG_KC / 16][4];
        int pslot = -1;
        bool pend = false;
        for (int c0 = 0; c0 < w.klen; c0 += WG_KC) {
            const unsigned char *ks = ring + slot * C::STAGE;
            const bool cur = busy && (!OWN || (c0 < whi && c0 + WG_KC > wlo));
            wg_mbar_wait(&full[slot], ph);
            ws_turn_wait(wg);
            /* One branch around the chunk's wgmmas and their waits (ptxas
             * serializes wgmmas issued and waited for under different
             * data-dependent branches, C7518). */
            if (cur || pend) {
                /* cp.async wrote through the generic proxy; wgmma reads
                 * through the async one (TMA's boxes came through it). */
                if (!ws_by_tma(tm, min(WG_KC, w.klen - c0))) wg_fence_smem();
                float s[1][WG_KC / 8][4];
                const int lo[2] = {lo0 - c0, lo1 - c0}, hi[2] = {hi0 - c0, hi1 - c0};
                /* Each case issues and waits for its wgmmas inside its
                 * own branch: ptxas serializes every wgmma of the kernel
                 * when a group is issued in one branch and waited for
                 * after it (C7514, C7520). */
                float al[2];
                if (cur && pend) {
                    /* Q K^T, then the last chunk's P V: waiting for all
                     * groups but one waits for Q K^T, so that the softmax
                     * runs while P V still accumulates into O
                     * (FlashAttention-3's overlap within a warpgroup); O's
                     * rescale and P's registers, which P V reads, wait for
                     * it.  (ptxas hoists the wait above all but one row's
                     * max; the whole softmax forced above it measured
                     * 1.05x slower, docs/perf.md CUDA v24.)  The own
                     * blocks take it since Q left the registers: before,
                     * their consumers, which also hold each row's key
                     * range, spilled 96-132 bytes with it. */
                    ws_qk<DT, D>(&s[0][0][0], qs, ks);
                    wg_commit();
                    wg_pv<DT, D>(o, pa, ring + pslot * C::STAGE + C::VOFF);
                    wg_commit();
                    ws_turn_pass(wg);
                    wg_wait<1>();
                    wg_pin_n<WG_KC / 2>(&s[0][0][0]);
                    ws_softmax<D, FULL, OWN>(R, s, a, lo, hi, r0 < w.nrows, r1 < w.nrows, t, al);
                    wg_wait_all<D>(&s[0][0][0], o);
                    mma_rescale_rows<D, 1, true>(R, 0, al[0], al[1]);
                    wg_pack_p<DT>(pa, s[0]);
                } else if (cur) {
                    /* An item's first chunk (a key-centric warpgroup
                     * computes every chunk of an item or none, so pend
                     * implies cur), or an own warpgroup's first chunk. */
                    ws_qk<DT, D>(&s[0][0][0], qs, ks);
                    wg_commit();
                    ws_turn_pass(wg);
                    wg_wait_all<D>(&s[0][0][0], o);
                    ws_softmax<D, FULL, OWN>(R, s, a, lo, hi, r0 < w.nrows, r1 < w.nrows, t, al);
                    mma_rescale_rows<D, 1, true>(R, 0, al[0], al[1]);
                    wg_pack_p<DT>(pa, s[0]);
                } else if (OWN) {
                    /* An own warpgroup past its rows' keys: the last P V. */
                    wg_pv<DT, D>(o, pa, ring + pslot * C::STAGE + C::VOFF);
                    wg_commit();
                    ws_turn_pass(wg);
                    wg_wait<0>();
                    wg_pin_n<D / 2>(o);
                }
            } else {
                ws_turn_pass(wg);
            }
            ws_release(empty, pslot, lane);
            pslot = slot;
            pend = cur;
            ws_advance(slot, ph);
        }
        if (pend) {
            float s[1][WG_KC / 8][4];
            wg_pv<DT, D>(o, pa, ring + pslot * C::STAGE + C::VOFF);
            wg_commit();
            /* Key-centric: the next item's Q gather under the last P V and
             * this item's stores, once every warp of the warpgroup has
             * waited for its last Q K^T (each warp's wgmmas read its own
             * 16 rows of qs). */
            if (!OWN && more && it.it.nrows > 64 * wg) {
                asm volatile("bar.sync %0, 128;\n" ::"r"(3 + wg) : "memory");
                ws_load_q<D, OWN>(q, a, it.it, 64 * wg, qs, threadIdx.x % 128);
                qnext = true;
            }
            wg_wait_all<D>(&s[0][0][0], o);
        }
        ws_release(empty, pslot, lane);
        if (busy) {
            mma_acc_finish<D, 1>(R);
            if (OWN) {
#pragma unroll
                for (int r = 0; r < 2; r++) {
                    const int row = r ? r1 : r0;
                    if (row >= w.nrows) continue;
                    const size_t qrow = (size_t)(w.tok0 + row) * a.Hq + w.h;
                    ws_merge_row<DT, D>(R, r, a, qrow, gpu_ent_row(&a, w.tok0 + row, w.h),
                                        (w.row0 + row) / a.S, out, lse, t);
                }
            } else {
                mma_store_partials<DT, D, 1>(R, a, w.e0, 16 * warp, w.nrows, lane);
            }
        }
        if (OWN) more = ws_next<OWN>(a, it);
    }
    /* Warpgroup 1 passed the turn once more than warpgroup 0 waited for
     * it: take that pass, so that no barrier is left half arrived. */
    if (wg == 0) ws_turn_wait(0);
}

template <int DT, int D, bool FULL>
__global__ void __launch_bounds__(WS_THREADS, 1)
k_wgmma_kv_ws(const unsigned short *q, const unsigned short *k, const unsigned short *v,
              gpu_args a, const __grid_constant__ ws_tma tm)
{
#if MOBA_WGMMA_OK
    ws_run<DT, D, FULL, false>(q, k, v, NULL, NULL, a, tm);
#else
    (void)q; (void)k; (void)v; (void)a; (void)tm;
    __trap(); /* launched only where sm_90a code exists (gpu_backend.cu, use_mma) */
#endif
}

/* The own blocks of blocks of WS_OWN_MIN keys and more (attend_launch.cuh)
 * on the same warp-specialized design: each row's own block, causal,
 * merged with the row's partials (ws_merge_row) into out and lse (when
 * given).  Where k_mma_own computed them on mma.sync (one CTA of 64 rows
 * per tile and head), the own blocks were 41 % of the attention at
 * 16384-key blocks once the key-centric kernel ran on this design
 * (docs/perf.md, CUDA v22); the merge was a kernel of its own until v26.
 * k and v: the whole tensors (kh is absolute). */
template <int DT, int D>
__global__ void __launch_bounds__(WS_THREADS, 1)
k_wgmma_own_ws(const unsigned short *q, const unsigned short *k, const unsigned short *v,
               unsigned short *out, float *lse, gpu_args a, const __grid_constant__ ws_tma tm)
{
#if MOBA_WGMMA_OK
    ws_run<DT, D, false, true>(q, k, v, out, lse, a, tm);
#else
    (void)q; (void)k; (void)v; (void)out; (void)lse; (void)a; (void)tm;
    __trap(); /* launched only where sm_90a code exists (gpu_backend.cu, use_mma) */
#endif
}

#endif /* MOBA_GPU_HAVE_MMA */

#endif /* MOBA_GPU_ATTEND_WGMMA_WS_CUH */
