/*
 * Block-sparse attention, gathered by key block.  Each (query row, head,
 * selection slot) is an "entry"; the entries of one (key block, head) are
 * listed together, so a work-group loads that block's keys and values once
 * and serves up to QT queries with them, whatever else those queries chose.
 * Each entry keeps its own online softmax (max m, sum l, f32 accumulator)
 * over the block and writes a partial result to its slot; a merge pass then
 * combines a row's slots in ascending block order.  An entry's arithmetic
 * does not depend on which work-group or neighbours it had, so results are
 * bitwise reproducible although the lists are built with integer atomics.
 *
 * Entries are numbered e = (t * hc + hl) * top_k + i for token t, head
 * h0 + hl of the current head chunk, slot i.
 *
 * Defines: D, DTYPE, CAUSAL, QT (work-group size), KT (keys per step),
 * SCAN_WG.
 */

/* One work-item per (token, head of the chunk, slot): counts the entries of
 * each (global block, head) bucket, or, with fill != 0, places them. */
kernel void moba_bucket(const global int *sel, const global int *tok_boff,
                        global int *cnt, global int *list, long total,
                        int hq, int hc, int h0, int top_k, int fill)
{
    long e = get_global_id(0);
    if (e >= total) return;
    long th = e / top_k;
    int i = (int)(e - th * top_k);
    long t = th / hc;
    int hl = (int)(th - t * hc);
    int blk = sel[(t * hq + h0 + hl) * top_k + i];
    if (blk < 0) return;
    long bucket = ((long)tok_boff[t] + blk) * hc + hl;
    if (fill)
        list[atomic_inc(cnt + bucket)] = (int)e;
    else
        atomic_inc(cnt + bucket);
}

/* Exclusive prefix sum of n counts into offs[0..n] and cur[0..n), in one
 * work-group of SCAN_WG items.  cur may be cnt itself (each count is read
 * before its slot is overwritten). */
kernel void moba_scan(const global int *cnt, global int *offs, global int *cur,
                      long n)
{
    local int part[SCAN_WG];
    const int lid = get_local_id(0);
    long per = (n + SCAN_WG - 1) / SCAN_WG;
    long a = lid * per, z = min(n, a + per);
    int s = 0;
    for (long i = a; i < z; i++) s += cnt[i];
    part[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0) {
        int run = 0;
        for (int i = 0; i < SCAN_WG; i++) {
            int x = part[i];
            part[i] = run;
            run += x;
        }
        offs[n] = run;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    int run = part[lid];
    for (long i = a; i < z; i++) {
        int x = cnt[i];
        offs[i] = run;
        cur[i] = run;
        run += x;
    }
}

/* One work-group per (global block g, head of the chunk); blocks[g] = {first
 * key token, keys}.  Rows of q/k/v move through local memory as float4 (D is
 * a multiple of 16); the q rows are padded by one float4 so that the
 * items' row reads fall in different banks.  Each item scores KT keys per
 * step with fully unrolled loops, so the scores and the accumulator stay in
 * registers; keys past the end of the block are zero rows, masked out. */
kernel void moba_block_attend(const global store_t *q, const global store_t *k,
                              const global store_t *v, const global int2 *blocks,
                              const global int *offs, const global int *list,
                              global float *pacc, global float2 *pml,
                              int hq, int hk, int group, int hc, int h0,
                              int top_k, float scale)
{
    local float4 qs[QT * (D4 + 1)];
    local float4 ks[KT * D4];
    local float4 vs[KT * D4];
    local int ent[QT];
    const int lid = get_local_id(0);
    const long bucket = get_group_id(0);
    const long g = bucket / hc;
    const int hl = (int)(bucket - g * hc), h = h0 + hl, kh = h / group;
    const int2 blk = blocks[g];
    const int first = offs[bucket], count = offs[bucket + 1] - first;

    for (int e0 = 0; e0 < count; e0 += QT) {
        const int ne = min(QT, count - e0);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < ne) ent[lid] = list[first + e0 + lid];
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = lid; i < ne * D4; i += QT) {
            int r = i / D4, d = i - r * D4;
            long t = ent[r] / ((long)hc * top_k);
            long base = (t * hq + h) * D + 4 * d;
            qs[r * (D4 + 1) + d] = LD4(q, base);
        }
        const int e = lid < ne ? ent[lid] : 0;
        const long t = e / ((long)hc * top_k);
        float4 acc[D4];
        for (int d = 0; d < D4; d++) acc[d] = (float4)(0.0f);
        float m = -INFINITY, l = 0.0f;
        const local float4 *qr = qs + lid * (D4 + 1);

        for (int u0 = 0; u0 < blk.y; u0 += KT) {
            const int nk = min(KT, blk.y - u0);
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int i = lid; i < KT * D4; i += QT) {
                int u = i / D4, d = i - u * D4;
                float4 kk = (float4)(0.0f), vv = (float4)(0.0f);
                if (u < nk) {
                    long src = ((long)(blk.x + u0 + u) * hk + kh) * D + 4 * d;
                    kk = LD4(k, src);
                    vv = LD4(v, src);
                }
                ks[i] = kk;
                vs[i] = vv;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            if (lid >= ne) continue;
            /* keys of this step the row may see (causal: token <= t) */
            int lim = nk;
            if (CAUSAL) lim = (int)min((long)nk, t - (blk.x + u0) + 1);
            if (lim <= 0) continue;
            float s[KT];
            dot_rows(qr, ks, s, KT);
            float mx = -INFINITY;
            for (int u = 0; u < KT; u++) {
                s[u] = u < lim ? scale * s[u] : -INFINITY;
                mx = fmax(mx, s[u]);
            }
            float mnew = fmax(m, mx);
            if (mnew == -INFINITY) continue;
            if (m != mnew) {
                float corr = exp(m - mnew);
                for (int d = 0; d < D4; d++) acc[d] *= corr;
                l *= corr;
                m = mnew;
            }
            for (int u = 0; u < KT; u++) {
                float p = exp(s[u] - m); /* 0 for masked keys (zero rows) */
                l += p;
                for (int d = 0; d < D4; d++) acc[d] = fma((float4)(p), vs[u * D4 + d], acc[d]);
            }
        }
        if (lid < ne) {
            global float4 *dst = (global float4 *)(pacc + (long)e * D);
            for (int d = 0; d < D4; d++) dst[d] = acc[d];
            pml[e] = (float2)(m, l);
        }
    }
}

/* One work-item per (token, head of the chunk, dim): combines the row's
 * slots in slot order (= ascending block order). */
kernel void moba_merge(const global int *sel, const global float *pacc,
                       const global float2 *pml, global store_t *out,
                       global float *lse, int want_lse, long total, int hq,
                       int hc, int h0, int top_k)
{
    long gid = get_global_id(0);
    if (gid >= total) return;
    long th = gid / D;
    int d = (int)(gid - th * D);
    long t = th / hc;
    int h = h0 + (int)(th - t * hc);
    const global int *row = sel + (t * hq + h) * top_k;
    long e0 = th * top_k;
    float mx = -INFINITY;
    for (int i = 0; i < top_k && row[i] >= 0; i++) mx = fmax(mx, pml[e0 + i].x);
    float l = 0.0f, o = 0.0f;
    for (int i = 0; i < top_k && row[i] >= 0; i++) {
        float2 ml = pml[e0 + i];
        float w = ml.x == -INFINITY ? 0.0f : exp(ml.x - mx);
        l = fma(ml.y, w, l);
        o = fma(pacc[(e0 + i) * D + d], w, o);
    }
    ST(out, (t * hq + h) * D + d, o / l);
    if (want_lse && d == 0) lse[t * hq + h] = mx + log(l);
}
