/*
 * Tensor-core (mma.sync) key-centric attention for f16/bf16 on sm_80+.
 * k_mma_kv writes exactly the partials of k_simt_kv (O / l in the storage
 * dtype, lse in f32, addressed by partial index); k_mma_own is k_simt_own
 * (causal own block, then the partials merged in slot order with
 * gpu_merge_row's arithmetic) with the attention on tensor cores and the
 * merge reading whole 16-byte vectors.  HIP, f32 and other head dims keep
 * the SIMT kernels.
 *
 * Fragment layouts and the mma/ldmatrix primitives: mma_common.cuh.
 *
 * S = Q K^T: A = Q rows (registers, loaded once per tile), B = K^T, whose
 * column n is key n's row in shared memory, so b[0]/b[1] are single 32-bit
 * loads.  The C fragment of S over 16 keys is the A fragment of P for
 * P V (FlashAttention-2's register reuse).  V is row-major [key][d] in
 * shared memory; ldmatrix .trans turns its 8x8 tiles into B fragments.
 *
 * Determinism: row r's result depends only on row r of Q and on the keys
 * taken in a fixed order (chunks ascending, the same mma sequence), and
 * its max/sum reductions run over the 4 lanes that hold that row, so it
 * does not depend on which rows share the CTA.
 */
#ifndef MOBA_GPU_ATTEND_MMA_CUH
#define MOBA_GPU_ATTEND_MMA_CUH

#include "attend_simt.cuh"
#include "mma_common.cuh"

#define MMA_WARPS 4
#define MMA_THREADS (32 * MMA_WARPS) /* 16 rows per warp: GPU_TILE_ROWS */
#define MMA_KC 64                    /* keys per shared-memory chunk     */
#define MMA_KR 128 /* keys of a block resident in shared memory (k_mma_kv) */
/* CTAs per SM k_mma_kv is built for: 3 x 70 KB of K/V fit in sm_90's
 * 228 KB, 2 in sm_80's 164 KB, where the 168-register cap of 3 only made
 * it spill. */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#define MMA_KV_CTAS 2
#else
#define MMA_KV_CTAS 3
#endif

/* Which (dtype, head dim) instances have the mma path. */
template <int DT, int D> struct mma_ok {
    enum { value = MOBA_GPU_HAVE_MMA && DT != 0 && (D == 64 || D == 128) };
};

#if MOBA_GPU_HAVE_MMA

/* Keys [0, nk) (nk <= MMA_KR) of a block into ks/vs ([MMA_KR][LD]) with
 * cp.async, rows nk .. the next multiple of MMA_KC zeroed so that masked
 * weights never meet NaN garbage; the caller waits (cp_async_wait<0>) and
 * synchronises.  The unroll is pinned: left to the compiler it changed
 * with the kernels around it, once enough to make k_mma_kv spill. */
template <int D>
__device__ __forceinline__ void mma_load_kv_async(const unsigned short *k,
                                                  const unsigned short *v, int64_t tok0,
                                                  int Hk, int kh, int nk, unsigned short *ks,
                                                  unsigned short *vs)
{
    const int LD = mma_cfg<D>::LD, V8 = D / 8;
    const int nr = (nk + MMA_KC - 1) / MMA_KC * MMA_KC;
#pragma unroll 4
    for (int e = threadIdx.x; e < nr * V8; e += MMA_THREADS) {
        const int u = e / V8, c = e % V8;
        if (u < nk) {
            const size_t o = ((size_t)(tok0 + u) * Hk + kh) * D + c * 8;
            cp_async16(ks + u * LD + c * 8, k + o);
            cp_async16(vs + u * LD + c * 8, v + o);
        } else {
            *(uint4 *)(ks + u * LD + c * 8) = make_uint4(0, 0, 0, 0);
            *(uint4 *)(vs + u * LD + c * 8) = make_uint4(0, 0, 0, 0);
        }
    }
    cp_async_commit();
}

/* Online softmax step of one row: mx is this thread's max over its keys of
 * the chunk, reduced over the row's 4 lanes; updates m, rescales l and
 * returns the factor for the row's O (1 while nothing was seen yet). */
__device__ __forceinline__ float mma_rescale(float mx, float &m, float &l)
{
    mx = fmaxf(mx, MOBA_SHFL_XOR(mx, 1, 4));
    mx = fmaxf(mx, MOBA_SHFL_XOR(mx, 2, 4));
    const float mn = fmaxf(m, mx);
    const float alpha = (m == -INFINITY || mn == -INFINITY) ? 1.0f : __expf(m - mn);
    l *= alpha;
    m = mn;
    return alpha;
}

/* A thread's two rows (g and g+8 of its warp's 16) in registers: Q's A
 * fragments, O's C fragments, running max and (per-thread partial) sum. */
template <int D> struct mma_rows {
    uint32_t qf[D / 16][4];
    float o[D / 8][4];
    float m0, m1, l0, l1;
};

/* Q fragments of rows q0 / q1 and an empty softmax state. */
template <int D>
__device__ __forceinline__ void mma_rows_init(mma_rows<D> &R, const unsigned short *q0,
                                              const unsigned short *q1, int t)
{
    mma_load_a<D>(R.qf, q0, q1, t);
#pragma unroll
    for (int n = 0; n < D / 8; n++) R.o[n][0] = R.o[n][1] = R.o[n][2] = R.o[n][3] = 0.0f;
    R.m0 = R.m1 = -INFINITY;
    R.l0 = R.l1 = 0.0f;
}

/* One chunk of MMA_KC keys in ks/vs for the warp's 16 rows; row g sees the
 * chunk-relative keys [lo0, hi0), row g+8 [lo1, hi1).  MASKED false: every
 * key of the chunk is valid for both rows (a full chunk of a past block),
 * and the per-key compares and selects go. */
template <int DT, int D, bool MASKED>
__device__ __forceinline__ void mma_chunk(mma_rows<D> &R, const unsigned short *ks,
                                          const unsigned short *vs, float scale, int lo0,
                                          int hi0, int lo1, int hi1, int lane)
{
    const int LD = mma_cfg<D>::LD, KD = D / 16, ND = D / 8, NS = MMA_KC / 8;
    const int g = lane / 4, t = lane % 4, mi = lane / 8;
    float s[NS][4];
#pragma unroll
    for (int n = 0; n < NS; n++) {
        s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
        const unsigned short *kr = ks + (n * 8 + g) * LD + 2 * t;
#pragma unroll
        for (int kk = 0; kk < KD; kk++)
            mma16816<DT>(s[n], R.qf[kk], *(const uint32_t *)(kr + kk * 16),
                         *(const uint32_t *)(kr + kk * 16 + 8));
    }
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int n = 0; n < NS; n++)
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const int key = n * 8 + 2 * t + i;
            s[n][i] *= scale;
            s[n][2 + i] *= scale;
            if (MASKED) {
                s[n][i] = key >= lo0 && key < hi0 ? s[n][i] : -INFINITY;
                s[n][2 + i] = key >= lo1 && key < hi1 ? s[n][2 + i] : -INFINITY;
            }
            mx0 = fmaxf(mx0, s[n][i]);
            mx1 = fmaxf(mx1, s[n][2 + i]);
        }
    const float al0 = mma_rescale(mx0, R.m0, R.l0);
    const float al1 = mma_rescale(mx1, R.m1, R.l1);
    const float sub0 = R.m0 == -INFINITY ? 0.0f : R.m0;
    const float sub1 = R.m1 == -INFINITY ? 0.0f : R.m1;
#pragma unroll
    for (int n = 0; n < ND; n++) {
        R.o[n][0] *= al0;
        R.o[n][1] *= al0;
        R.o[n][2] *= al1;
        R.o[n][3] *= al1;
    }
#pragma unroll
    for (int n = 0; n < NS; n++) {
        s[n][0] = __expf(s[n][0] - sub0);
        s[n][1] = __expf(s[n][1] - sub0);
        s[n][2] = __expf(s[n][2] - sub1);
        s[n][3] = __expf(s[n][3] - sub1);
        R.l0 += s[n][0] + s[n][1];
        R.l1 += s[n][2] + s[n][3];
    }
    /* O += P V, 16 keys per step; P's A fragment is S's C layout.  ldmatrix
     * tiles: keys +0 / +8 (bit 0 of lane / 8), d +0 / +8 (bit 1). */
#pragma unroll
    for (int j = 0; j < MMA_KC / 16; j++) {
        uint32_t pa[4];
        pa[0] = mma_pack<DT>(s[2 * j][0], s[2 * j][1]);
        pa[1] = mma_pack<DT>(s[2 * j][2], s[2 * j][3]);
        pa[2] = mma_pack<DT>(s[2 * j + 1][0], s[2 * j + 1][1]);
        pa[3] = mma_pack<DT>(s[2 * j + 1][2], s[2 * j + 1][3]);
        const unsigned short *vr = vs + (j * 16 + (mi & 1) * 8 + lane % 8) * LD + (mi >> 1) * 8;
#pragma unroll
        for (int dp = 0; dp < D / 16; dp++) {
            uint32_t b[4];
            ldsm_x4_trans(b, vr + dp * 16);
            mma16816<DT>(R.o[2 * dp], pa, b[0], b[1]);
            mma16816<DT>(R.o[2 * dp + 1], pa, b[2], b[3]);
        }
    }
}

/* Full row sums (the 4 lanes of a row hold partial sums). */
template <int D> __device__ __forceinline__ void mma_rows_finish(mma_rows<D> &R)
{
    R.l0 += MOBA_SHFL_XOR(R.l0, 1, 4);
    R.l0 += MOBA_SHFL_XOR(R.l0, 2, 4);
    R.l1 += MOBA_SHFL_XOR(R.l1, 1, 4);
    R.l1 += MOBA_SHFL_XOR(R.l1, 2, 4);
}

/* Key-centric partials, the twin of k_simt_kv (same partials, bitwise).
 *
 * Each CTA takes a contiguous run of the key-centric tiles, so consecutive
 * tiles mostly belong to the same (block, kv head) list: a block of up to
 * MMA_KR keys is loaded into shared memory once (cp.async) and serves all
 * of the run's tiles of that list, and the warps then run their 16 rows
 * with no barrier at all.  Longer blocks stream through the same buffer,
 * MMA_KR keys at a time, per tile.  The tiles are of equal cost, so equal
 * runs balance the persistent grid.  On sm_90, 3 CTAs per SM (<= 168
 * registers) fit beside 3 x 70 KB of K/V at D = 128.  FULL: every block
 * length is a multiple of MMA_KC, so no chunk is masked (the common case:
 * in causal attention only a sequence's last block can be short, and it
 * is never a past block). */
template <int DT, int D, bool FULL>
__global__ void __launch_bounds__(MMA_THREADS, MMA_KV_CTAS)
k_mma_kv(const unsigned short *q, const unsigned short *k, const unsigned short *v,
         gpu_args a)
{
    const int LD = mma_cfg<D>::LD, ND = D / 8;
    extern __shared__ __align__(16) unsigned short kv_smem[];
    unsigned short *ks = kv_smem, *vs = kv_smem + MMA_KR * LD;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = lane / 4, t = lane % 4;
    const int total = a.tile_off[a.nlists];
    const int tbeg = (int)((int64_t)total * blockIdx.x / gridDim.x);
    const int tend = (int)((int64_t)total * (blockIdx.x + 1) / gridDim.x);
    if (tbeg >= tend) return;
    const int Km1 = a.K - 1;
    int64_t lst = gpu_find_list(a.tile_off, a.nlists, tbeg);
    /* The list whose block ks/vs hold whole; CTA-uniform, so it lives in
     * shared memory (a register less: the kernel is at its 168 limit).
     * Written between the load's two barriers, after every thread has read
     * it for this tile. */
    __shared__ int64_t resident;
    if (threadIdx.x == 0) resident = -1;
    __syncthreads();
    for (int tile = tbeg; tile < tend; tile++) {
        while (tile >= a.tile_off[lst + 1]) lst++;
        const int kh = (int)(lst % a.Hk);
        const gpu_block blk = a.blocks[lst / a.Hk];
        const int e0 = a.list_off[lst] + (tile - a.tile_off[lst]) * GPU_TILE_ROWS;
        const int nrows = min(GPU_TILE_ROWS, a.list_off[lst + 1] - e0);
        /* This thread's two rows: r0 = 16 warp + g and r1 = r0 + 8. */
        const int r0 = warp * 16 + g, r1 = r0 + 8;
        const bool live0 = r0 < nrows, live1 = r1 < nrows;
        const int p0 = live0 ? a.entries[e0 + r0] : 0;
        const int p1 = live1 ? a.entries[e0 + r1] : 0;
        mma_rows<D> R;
        mma_rows_init<D>(R, live0 ? q + (size_t)(p0 / Km1) * D : NULL,
                         live1 ? q + (size_t)(p1 / Km1) * D : NULL, t);
        if (blk.len <= MMA_KR) {
            if (resident != lst) {
                __syncthreads();
                mma_load_kv_async<D>(k, v, blk.start, a.Hk, kh, blk.len, ks, vs);
                if (threadIdx.x == 0) resident = lst;
                cp_async_wait<0>();
                __syncthreads();
            }
            for (int c0 = 0; c0 < blk.len; c0 += MMA_KC) {
                const int nc = min(MMA_KC, blk.len - c0);
                mma_chunk<DT, D, !FULL>(R, ks + c0 * LD, vs + c0 * LD, a.scale, 0, nc, 0, nc,
                                        lane);
            }
        } else {
            /* A longer block streams through the buffer's two halves as a
             * ring of MMA_KC-key chunks: the next chunk loads while this
             * one is computed (v5 loaded MMA_KR keys, waited, computed). */
            __syncthreads();
            if (threadIdx.x == 0) resident = -1;
            mma_load_kv_async<D>(k, v, blk.start, a.Hk, kh, MMA_KC, ks, vs);
            for (int c0 = 0, c = 0; c0 < blk.len; c0 += MMA_KC, c++) {
                /* Chunk c is in, and every warp is past chunk c - 1, whose
                 * half the next load takes. */
                cp_async_wait<0>();
                __syncthreads();
                if (c0 + MMA_KC < blk.len)
                    mma_load_kv_async<D>(k, v, blk.start + c0 + MMA_KC, a.Hk, kh,
                                         min(MMA_KC, blk.len - c0 - MMA_KC),
                                         ks + ((c + 1) & 1) * MMA_KC * LD,
                                         vs + ((c + 1) & 1) * MMA_KC * LD);
                const int nc = min(MMA_KC, blk.len - c0);
                mma_chunk<DT, D, !FULL>(R, ks + (c & 1) * MMA_KC * LD, vs + (c & 1) * MMA_KC * LD,
                                        a.scale, 0, nc, 0, nc, lane);
            }
        }
        mma_rows_finish<D>(R);
        const float inv0 = 1.0f / R.l0, inv1 = 1.0f / R.l1;
        uint32_t *po0 = (uint32_t *)((unsigned short *)a.part_o + (size_t)p0 * D);
        uint32_t *po1 = (uint32_t *)((unsigned short *)a.part_o + (size_t)p1 * D);
#pragma unroll
        for (int n = 0; n < ND; n++) {
            if (live0) po0[n * 4 + t] = mma_pack<DT>(R.o[n][0] * inv0, R.o[n][1] * inv0);
            if (live1) po1[n * 4 + t] = mma_pack<DT>(R.o[n][2] * inv1, R.o[n][3] * inv1);
        }
        if (t == 0) {
            if (live0) a.part_lse[p0] = R.m0 + __logf(R.l0);
            if (live1) a.part_lse[p1] = R.m1 + __logf(R.l1);
        }
    }
}

/* Own-block results of a tile's 64 rows for the merge, in f32: O (not yet
 * divided by l) row-major with 8 floats of padding (the C-fragment float2
 * stores of 8 rows then hit 4 bank groups, not 1), m and l per row.  The
 * union reuses the K/V chunk buffers, which are dead by then. */
template <int D> struct mma_own_smem {
    union {
        struct {
            unsigned short k[MMA_KC * mma_cfg<D>::LD], v[MMA_KC * mma_cfg<D>::LD];
        } kv[2]; /* a ring of two chunks: the next loads during this one */
        float o[GPU_TILE_ROWS][D + 8];
    } u;
    float m[GPU_TILE_ROWS], l[GPU_TILE_ROWS];
};

/* Merges every live row of the tile with its partials in ascending slot
 * order and writes out / lse: the arithmetic of gpu_merge_row, value for
 * value, so the result does not change.  Two threads per row, all 64 rows
 * at once: each thread reads every other 16-byte vector of a partial (D/16
 * independent loads), and the next partial's vectors are loaded before the
 * current one is summed, so a row waits about one memory latency in all
 * rather than one per partial.  (One row per 16 threads, 8 rows at a time,
 * was slower than the scalar reads of v4: 14.7 ms against 9.1 ms at 128K,
 * its passes in series.)  The own-block result arrives through shared
 * memory: its C-fragment layout does not give such vectors. */
template <int DT, int D>
__device__ __forceinline__ void mma_merge_tile(const gpu_args &a, const mma_own_smem<D> &sm,
                                               const gpu_qtile &tile, const moba_seq &sq,
                                               int h, unsigned short *out, float *lse)
{
    static_assert(MMA_THREADS == 2 * GPU_TILE_ROWS, "two threads per row");
    const int VPT = D / 16; /* 16-byte vectors per thread */
    const int r = threadIdx.x / 2, half = threadIdx.x % 2;
    if (r >= tile.rows) return;
    const int Km1 = a.K - 1;
    const int tloc = tile.row0 + r, b = tloc / a.S;
    const int64_t qrow = (sq.start + tloc) * a.Hq + h;
    const int32_t *selrow = a.sel + qrow * a.K;
    const float l = sm.l[r];
    const float own_lse = sm.m[r] + __logf(l);
    const float *part_lse = a.part_lse + qrow * Km1;
    /* Slots in use, where the own block sits among them, and the max. */
    float M = own_lse;
    int ns = 0, ip = -1;
    for (; ns < a.K; ns++) {
        const int j = selrow[ns];
        if (j < 0) break;
        if (j == b)
            ip = ns;
        else
            M = fmaxf(M, part_lse[ns - (ip >= 0)]);
    }
    const int np = ns - (ip >= 0);
    /* Vector x of this thread is vector half + 2x of the row. */
    const uint4 *po = (const uint4 *)((const unsigned short *)a.part_o + (size_t)qrow * Km1 * D) + half;
    uint4 nxt[VPT];
    if (np > 0)
#pragma unroll
        for (int x = 0; x < VPT; x++) nxt[x] = po[2 * x];
    float o[VPT][8];
#pragma unroll
    for (int x = 0; x < VPT; x++)
#pragma unroll
        for (int e = 0; e < 8; e++) o[x][e] = 0.0f;
    float L = 0.0f;
    for (int i = 0, c = 0; i < ns; i++) {
        if (i == ip) {
            const float w = __expf(own_lse - M), wl = w / l;
            L += w;
#pragma unroll
            for (int x = 0; x < VPT; x++)
#pragma unroll
                for (int e = 0; e < 8; e++)
                    o[x][e] = fmaf(wl, sm.u.o[r][(half + 2 * x) * 8 + e], o[x][e]);
            continue;
        }
        uint4 cur[VPT];
#pragma unroll
        for (int x = 0; x < VPT; x++) cur[x] = nxt[x];
        if (c + 1 < np)
#pragma unroll
            for (int x = 0; x < VPT; x++) nxt[x] = po[(size_t)(c + 1) * (D / 8) + 2 * x];
        const float w = __expf(part_lse[c] - M);
        L += w;
#pragma unroll
        for (int x = 0; x < VPT; x++) {
            const uint32_t pw[4] = {cur[x].x, cur[x].y, cur[x].z, cur[x].w};
#pragma unroll
            for (int e = 0; e < 8; e++)
                o[x][e] = fmaf(w, gpu_to_f32<DT>((unsigned short)(pw[e / 2] >> (16 * (e % 2)))),
                               o[x][e]);
        }
        c++;
    }
    const float inv = 1.0f / L;
    unsigned short *orow = out + (size_t)qrow * D;
#pragma unroll
    for (int x = 0; x < VPT; x++)
        *(uint4 *)(orow + (half + 2 * x) * 8) =
            make_uint4(mma_pack<DT>(o[x][0] * inv, o[x][1] * inv),
                       mma_pack<DT>(o[x][2] * inv, o[x][3] * inv),
                       mma_pack<DT>(o[x][4] * inv, o[x][5] * inv),
                       mma_pack<DT>(o[x][6] * inv, o[x][7] * inv));
    if (lse && half == 0) lse[qrow] = M + __logf(L);
}

/* Own block + merge, the twin of k_simt_own: one CTA per (query tile, query
 * head); each row attends its own block's keys [b S, hi) (hi = the row + 1
 * when causal), then merges its partials in slot order exactly as the SIMT
 * kernel does.  2 CTAs per SM: at 3 (168 registers) it spills; without a
 * bound ptxas picks 168 on sm_80 (spills) and 170 on sm_90 (2 CTAs). */
template <int DT, int D>
__global__ void __launch_bounds__(MMA_THREADS, 2)
k_mma_own(const unsigned short *q, const unsigned short *k, const unsigned short *v,
          unsigned short *out, float *lse, gpu_args a)
{
    const int ND = D / 8;
    extern __shared__ __align__(16) unsigned char own_smem[];
    mma_own_smem<D> &sm = *(mma_own_smem<D> *)own_smem;
    const gpu_qtile tile = a.qtiles[blockIdx.x];
    const int h = blockIdx.y, kh = h / a.group;
    const moba_seq sq = a.seqs[tile.seq];
    const int S = a.S;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = lane / 4, t = lane % 4;
    const int r0 = warp * 16 + g, r1 = r0 + 8;
    const bool live0 = r0 < tile.rows, live1 = r1 < tile.rows;
    const int t0 = tile.row0 + (live0 ? r0 : 0), t1 = tile.row0 + (live1 ? r1 : 0);
    const int b0 = t0 / S, b1 = t1 / S;
    const int last = tile.row0 + tile.rows - 1;
    const int klo = (tile.row0 / S) * S;
    const int khi = a.causal ? last + 1 : min((last / S + 1) * S, sq.len);
    /* Each row's keys, sequence relative: its own block, causal. */
    const int lo0 = b0 * S, hi0 = a.causal ? t0 + 1 : min(lo0 + S, sq.len);
    const int lo1 = b1 * S, hi1 = a.causal ? t1 + 1 : min(lo1 + S, sq.len);
    const int64_t qrow0 = (sq.start + t0) * a.Hq + h, qrow1 = (sq.start + t1) * a.Hq + h;
    mma_rows<D> R;
    mma_rows_init<D>(R, live0 ? q + (size_t)qrow0 * D : NULL,
                     live1 ? q + (size_t)qrow1 * D : NULL, t);
    /* Chunks through a ring of two buffers: the next loads while this one
     * is computed (long own blocks: the paper's 16384-key blocks). */
    mma_load_kv_async<D>(k, v, sq.start + klo, a.Hk, kh, min(MMA_KC, khi - klo), sm.u.kv[0].k,
                         sm.u.kv[0].v);
    for (int u0 = klo, c = 0; u0 < khi; u0 += MMA_KC, c++) {
        /* Chunk c is in, and every warp is past chunk c - 1, whose buffer
         * the next load takes. */
        cp_async_wait<0>();
        __syncthreads();
        if (u0 + MMA_KC < khi)
            mma_load_kv_async<D>(k, v, sq.start + u0 + MMA_KC, a.Hk, kh,
                                 min(MMA_KC, khi - u0 - MMA_KC), sm.u.kv[(c + 1) & 1].k,
                                 sm.u.kv[(c + 1) & 1].v);
        mma_chunk<DT, D, true>(R, sm.u.kv[c & 1].k, sm.u.kv[c & 1].v, a.scale, lo0 - u0,
                               hi0 - u0, lo1 - u0, hi1 - u0, lane);
    }
    mma_rows_finish<D>(R);
    __syncthreads(); /* the K/V chunk is dead: its space takes O */
#pragma unroll
    for (int n = 0; n < ND; n++) {
        *(float2 *)&sm.u.o[r0][n * 8 + 2 * t] = make_float2(R.o[n][0], R.o[n][1]);
        *(float2 *)&sm.u.o[r1][n * 8 + 2 * t] = make_float2(R.o[n][2], R.o[n][3]);
    }
    if (t == 0) {
        sm.m[r0] = R.m0;
        sm.l[r0] = R.l0;
        sm.m[r1] = R.m1;
        sm.l[r1] = R.l1;
    }
    __syncthreads();
    mma_merge_tile<DT, D>(a, sm, tile, sq, h, out, lse);
}

/* k_mma_kv with FULL when every block is a whole number of key chunks
 * (then no chunk needs a mask). */
template <int DT, int D, bool FULL>
static cudaError_t mma_kv_launch(const gpu_args *a, const void *q, const void *k,
                                 const void *v)
{
    typedef unsigned short T;
    /* Above the 48 KB default: opt in, then fill every SM. */
    const int smem = 2 * MMA_KR * mma_cfg<D>::LD * (int)sizeof(T);
    cudaError_t e = cudaFuncSetAttribute(k_mma_kv<DT, D, FULL>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    int per_sm = 0;
    if (e == cudaSuccess)
        e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k_mma_kv<DT, D, FULL>,
                                                          MMA_THREADS, smem);
    if (e != cudaSuccess) return e;
    const int grid = a->sm_count * (per_sm > 0 ? per_sm : 1);
    k_mma_kv<DT, D, FULL><<<grid, MMA_THREADS, smem, a->stream>>>((const T *)q, (const T *)k,
                                                                  (const T *)v, *a);
    return cudaGetLastError();
}

template <int DT, int D>
static cudaError_t mma_attend(const gpu_args *a, const void *q, const void *k,
                              const void *v, void *out, float *lse)
{
    typedef unsigned short T;
    if (a->K > 1) {
        const cudaError_t e = a->len_gcd % MMA_KC == 0 ? mma_kv_launch<DT, D, true>(a, q, k, v)
                                                       : mma_kv_launch<DT, D, false>(a, q, k, v);
        if (e != cudaSuccess) return e;
    }
    /* Two K/V chunks are above the 48 KB static limit at D = 128: opt in. */
    const int smem = (int)sizeof(mma_own_smem<D>);
    const cudaError_t e = cudaFuncSetAttribute(k_mma_own<DT, D>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    dim3 g((unsigned)a->ntiles, (unsigned)a->Hq);
    k_mma_own<DT, D><<<g, MMA_THREADS, smem, a->stream>>>((const T *)q, (const T *)k,
                                                          (const T *)v, (T *)out, lse, *a);
    return cudaGetLastError();
}

#endif /* MOBA_GPU_HAVE_MMA */

#endif /* MOBA_GPU_ATTEND_MMA_CUH */
