/*
 * Gating: block centroids, then each query's selection, without ever
 * writing a [T, nb] score matrix: a work-group holds GR query rows of one
 * tile (rows of one block of one sequence) and one query head in local
 * memory, streams the sequence's centroids through local memory CB at a
 * time, and keeps each row's running top-(top_k - 1) in private memory.
 *
 * Defines: D (head dim), DTYPE, CAUSAL, GNT, GR, CB, KSEL_CAP (>= ksel).
 */

/* Centroid of (block g, kv head, dim): f32 mean, rounded to the dtype.
 * Keys are summed in token order, as the CPU backend does. */
kernel void moba_centroids(const global store_t *k, global store_t *cent,
                           const global int2 *blocks, long total, int hkd)
{
    long gid = get_global_id(0);
    if (gid >= total) return;
    long g = gid / hkd;
    int r = (int)(gid - g * hkd);
    int2 b = blocks[g];
    const global store_t *src = k + (long)b.x * hkd + r;
    float acc = 0.0f;
    for (int u = 0; u < b.y; u++) acc += LD(src, (long)u * hkd);
    ST(cent, gid, acc / (float)b.y);
}

/* The ranking of core/gate.h (moba_gate_better): numbers above NaN, larger
 * score first, ties toward the larger block index. */
inline int gate_better(float sa, int ia, float sb, int ib)
{
    int na = !isnan(sa), nb = !isnan(sb);
    if (na != nb) return na > nb;
    if (na && sa != sb) return sa > sb;
    return ia > ib;
}

/* Offers block j with score s to a row's list (idx, val: n entries, best
 * first, at most ksel; thr: the full list's last score, else -inf). */
inline void gate_offer(float s, int j, int *idx, float *val, int *n, float *thr, int ksel)
{
    /* Below a full list's last score a candidate cannot get in (a number
     * below a number): one compare against a register instead of the list
     * in private arrays, which dynamic indexing keeps out of registers.
     * NaN on either side compares false and takes the exact test. */
    if (s < *thr) return;
    if (*n == ksel) {
        if (!gate_better(s, j, val[*n - 1], idx[*n - 1])) return;
        (*n)--;
    }
    int pos = *n;
    while (pos > 0 && gate_better(s, j, val[pos - 1], idx[pos - 1])) {
        idx[pos] = idx[pos - 1];
        val[pos] = val[pos - 1];
        pos--;
    }
    idx[pos] = j;
    val[pos] = s;
    (*n)++;
    if (*n == ksel) *thr = val[*n - 1];
}

/* The row: chosen blocks plus the own block b, ascending, then -1
 * (moba_gate_write_row).  When every eligible block is chosen there is
 * nothing to rank. */
inline void gate_write_row(global int *row, const int *idx, int n, int b, int nb,
                           int everything, int top_k)
{
    int m = 0;
    if (everything) {
        for (int j = 0; j < (CAUSAL ? b + 1 : nb); j++) row[m++] = j;
    } else {
        for (int i = 0; i <= n; i++) {
            int x = i < n ? idx[i] : b;
            int pos = m;
            while (pos > 0 && row[pos - 1] > x) {
                row[pos] = row[pos - 1];
                pos--;
            }
            row[pos] = x;
            m++;
        }
    }
    for (int i = m; i < top_k; i++) row[i] = -1;
}

/* tiles: per tile {token of the first row (global), rows, own block, nb of
 * the sequence, first global block of the sequence}. */
#define TILE_INTS 5

/* Declares the work-group's query head h (kv head kh) and tile: tok0,
 * rows, b, nb, boff as above, nelig (the blocks scored) and everything
 * (every eligible block is selected: nothing to rank).  The three forms
 * of moba_gate begin with it. */
#define GATE_TILE()                                                            \
    const int h = get_group_id(1), kh = h / group;                             \
    const global int *tl = tiles + (long)get_group_id(0) * TILE_INTS;          \
    const int tok0 = tl[0], rows = tl[1], b = tl[2], nb = tl[3];               \
    const long boff = tl[4];                                                   \
    const int nelig = CAUSAL ? b : nb;                                         \
    const int everything = (CAUSAL ? b + 1 : nb) <= top_k

#if GATE_CPU
/* CPU devices (GATE_CPU; PoCL): an item per row of the tile (GNT = GR),
 * its q row in private 16-wide vectors, the sequence's centroids read in
 * order four at a time (dot4x16), each score offered to the row's list as
 * it comes.  No local memory, no
 * barrier: the work-group form ran ~4x slower than the CPU backend's gate
 * on PoCL (docs/perf.md, OpenCL v5).  Scores differ from the work-group
 * form's only in f32 summation order. */
kernel void moba_gate(const global store_t *q, const global store_t *cent,
                      const global int *tiles, global int *sel, int hq,
                      int hk, int group, int top_k, int ksel)
{
    const int lid = get_local_id(0);
    GATE_TILE();
    if (lid >= rows) return;
    int idx[KSEL_CAP];
    float val[KSEL_CAP];
    int n = 0;
    float thr = -INFINITY;
    if (!everything && ksel > 0) {
        float16 qq[D16];
#pragma unroll
        for (int d = 0; d < D16; d++) qq[d] = LD16(q, ((long)(tok0 + lid) * hq + h) * D + 16 * d);
        const long cstride = (long)hk * D;
        const global store_t *cb = cent + ((long)boff * hk + kh) * D;
        for (int j0 = 0; j0 < nelig; j0 += 4) {
            float s[4];
            if (j0 + 4 <= nelig)
                vstore4(dot4x16(qq, cb + j0 * cstride, cstride), 0, s);
            else
                for (int c = 0; c < nelig - j0; c++) s[c] = dot16(qq, cb + (j0 + c) * cstride);
            for (int c = 0; c < min(4, nelig - j0); c++)
                if (j0 + c != b) gate_offer(s[c], j0 + c, idx, val, &n, &thr, ksel);
        }
    }
    gate_write_row(sel + ((long)(tok0 + lid) * hq + h) * top_k, idx, n, b, nb, everything, top_k);
}
#elif ATTEND_MMA
/* The MMA form (kernels/mma.cl; with the MMA attend form): GNT = 128
 * items as four warps, GR = 64 or 32 rows, CB = 64 centroids a chunk;
 * GR / 16 warps across the rows, the others across the chunk's columns.
 * A warp keeps its 16 rows' q fragments in registers and scores its
 * columns of the chunk on the tensor cores (f32 sums of exact bf16 / f16 products, as
 * the CUDA backend's gate); the scores go to local memory transposed.
 * GRP = GNT / GR items rank each row (GRP = 1 where their lists would not
 * fit the scores' array), item part p taking the chunk's candidates
 * p, p + GRP, ...; at the end the others' lists are offered to part 0's,
 * which gives the same top list as one item ranking everything (the
 * order of gate_better is total).  Centroid rows are stored with the
 * attend form's padding (KS), for the same banks. */
#define GKS (D + 8) /* ushort stride of the local centroid rows */
#define GWR (GR / 16) /* warps across the rows */
#define GNJ (CB / 8 / (4 / GWR)) /* n-tiles per warp */
#define GPS (GR + 4) /* float stride of the transposed scores */
kernel void moba_gate(const global store_t *q, const global store_t *cent,
                      const global int *tiles, global int *sel, int hq,
                      int hk, int group, int top_k, int ksel)
{
    local uint csw[CB * GKS / 2];
    local float st[CB * GPS];
    local uint scr[MMA_SCRATCH_WORDS];
    const int lid = get_local_id(0), ln = lid % MMA_WARP;
    const int lg = ln >> 2, t = ln & 3; /* lane = 4 lg + t */
    const int wp = lid / MMA_WARP, r0 = (wp % GWR) * 16 + lg, r1 = r0 + 8;
    const int j0 = (wp / GWR) * GNJ; /* this warp's first n-tile */
    const int row = lid % GR, part = lid / GR; /* the ranking's item */
    GATE_TILE();
    local ushort *cs = (local ushort *)csw;

    int idx[KSEL_CAP];
    float val[KSEL_CAP];
    int n = 0;
    float thr = -INFINITY; /* the full list's last score, else -inf */
    if (!everything && ksel > 0) {
        uint qa[D / 16][4];
        {
            /* rows past the tile's read its last row; their scores are
             * never ranked */
            const global uint *q0 =
                (const global uint *)(q + ((long)(tok0 + min(r0, rows - 1)) * hq + h) * D);
            const global uint *q1 =
                (const global uint *)(q + ((long)(tok0 + min(r1, rows - 1)) * hq + h) * D);
            MMA_UNROLL
            for (int c = 0; c < D / 16; c++) {
                qa[c][0] = q0[8 * c + t];
                qa[c][1] = q1[8 * c + t];
                qa[c][2] = q0[8 * c + t + 4];
                qa[c][3] = q1[8 * c + t + 4];
            }
        }
        for (int c0 = 0; c0 < nelig; c0 += CB) {
            const int nc = min(CB, nelig - c0);
            barrier(CLK_LOCAL_MEM_FENCE); /* the last chunk's ranking is done */
            for (int i = lid; i < CB * (D / 8); i += GNT) {
                const int r = i / (D / 8), c = i - r * (D / 8);
                uint4 x = (uint4)(0u);
                if (r < nc)
                    x = vload4(c, (const global uint *)(cent + ((boff + c0 + r) * hk + kh) * D));
                vstore4(x, c, (local uint *)(cs + r * GKS));
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            float s[GNJ][4];
            MMA_UNROLL
            for (int j = 0; j < GNJ; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
            MMA_UNROLL
            for (int c = 0; c < D / 16; c++)
                MMA_UNROLL
                for (int j = 0; j < GNJ; j++) {
                    const local uint *cr =
                        (const local uint *)(cs + (8 * (j0 + j) + lg) * GKS) + 8 * c + t;
                    const uint bb[2] = {cr[0], cr[4]};
                    mma16816(s[j], qa[c], bb, scr);
                }
            MMA_UNROLL
            for (int j = 0; j < GNJ; j++) {
                const int col = 8 * (j0 + j) + 2 * t;
                st[col * GPS + r0] = s[j][0];
                st[(col + 1) * GPS + r0] = s[j][1];
                st[col * GPS + r1] = s[j][2];
                st[(col + 1) * GPS + r1] = s[j][3];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            if (row >= rows || part >= GRP) continue;
            for (int c = part; c < nc; c += GRP) {
                const int j = c0 + c;
                if (j != b) gate_offer(st[c * GPS + row], j, idx, val, &n, &thr, ksel);
            }
        }
#if GRP > 1
        /* the other parts' lists, through the scores' array */
        local int *ln_ = (local int *)st, *li = ln_ + GRP * GR;
        local float *lv = (local float *)(li + GRP * GR * KSEL_CAP);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (part > 0 && part < GRP && row < rows) {
            ln_[part * GR + row] = n;
            for (int i = 0; i < n; i++) {
                li[(part * GR + row) * KSEL_CAP + i] = idx[i];
                lv[(part * GR + row) * KSEL_CAP + i] = val[i];
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (part == 0 && row < rows)
            for (int p2 = 1; p2 < GRP; p2++)
                for (int i = 0; i < ln_[p2 * GR + row]; i++)
                    gate_offer(lv[(p2 * GR + row) * KSEL_CAP + i],
                               li[(p2 * GR + row) * KSEL_CAP + i], idx, val, &n, &thr, ksel);
#endif
    }
    if (part > 0 || row >= rows) return;
    gate_write_row(sel + ((long)(tok0 + row) * hq + h) * top_k, idx, n, b, nb, everything, top_k);
}
#else

/* A work-group of GNT items: GR query rows of one tile x one query head.
 * Per chunk of CB centroids, the GR x CB scores are register tiles, as in
 * moba_block_attend (item (sx, sy): rows sy * GSR + i, centroids
 * sx + GTXS * j), written to local memory transposed; then the item of
 * each row (lid < GR) ranks the chunk's scores into its list. */
#define GTXS (CB / 2)
#define GTYS (GNT / GTXS)
#define GSR (GR / GTYS)
#define GQS LS /* float4 stride of local q and centroid rows (tile.cl) */
#define GPS (GR + 4) /* float stride of the transposed scores */

kernel void moba_gate(const global store_t *q, const global store_t *cent,
                      const global int *tiles, global int *sel, int hq,
                      int hk, int group, int top_k, int ksel)
{
    local float4 qs[GR * GQS];
    local float4 cs[CB * GQS];
    local float st[CB * GPS];
    const int lid = get_local_id(0);
    const int sx = lid % GTXS, sy = lid / GTXS;
    GATE_TILE();

    int idx[KSEL_CAP];
    float val[KSEL_CAP];
    int n = 0;
    float thr = -INFINITY; /* the full list's last score, else -inf */
    if (!everything && ksel > 0) {
        local_rows(qs, q, tok0, rows, GR, hq, h, lid, GNT);
        for (int c0 = 0; c0 < nelig; c0 += CB) {
            int nc = min(CB, nelig - c0);
            barrier(CLK_LOCAL_MEM_FENCE);
            local_rows(cs, cent, (int)boff + c0, nc, CB, hk, kh, lid, GNT);
            barrier(CLK_LOCAL_MEM_FENCE);
            float sc[GSR][2];
            for (int i = 0; i < GSR; i++) sc[i][0] = sc[i][1] = 0.0f;
            UNROLL(UQK)
            for (int d = 0; d < D4; d++) {
                const float4 c0v = cs[sx * GQS + d], c1v = cs[(sx + GTXS) * GQS + d];
                for (int i = 0; i < GSR; i++) {
                    const float4 qq = qs[(sy * GSR + i) * GQS + d];
                    sc[i][0] = fma(qq.x, c0v.x, sc[i][0]);
                    sc[i][0] = fma(qq.y, c0v.y, sc[i][0]);
                    sc[i][0] = fma(qq.z, c0v.z, sc[i][0]);
                    sc[i][0] = fma(qq.w, c0v.w, sc[i][0]);
                    sc[i][1] = fma(qq.x, c1v.x, sc[i][1]);
                    sc[i][1] = fma(qq.y, c1v.y, sc[i][1]);
                    sc[i][1] = fma(qq.z, c1v.z, sc[i][1]);
                    sc[i][1] = fma(qq.w, c1v.w, sc[i][1]);
                }
            }
            for (int i = 0; i < GSR; i++) {
                st[sx * GPS + sy * GSR + i] = sc[i][0];
                st[(sx + GTXS) * GPS + sy * GSR + i] = sc[i][1];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            if (lid >= rows) continue;
            for (int c = 0; c < nc; c++) {
                int j = c0 + c;
                float s = st[c * GPS + lid];
                if (j != b) gate_offer(s, j, idx, val, &n, &thr, ksel);
            }
        }
    }
    if (lid >= rows) return;
    gate_write_row(sel + ((long)(tok0 + lid) * hq + h) * top_k, idx, n, b, nb, everything, top_k);
}
#endif /* GATE_CPU */
