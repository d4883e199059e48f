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
 * Defines: D, DTYPE, CAUSAL, NT, QT, KT, TXO, SC, UQK, UPV (moba_block_attend),
 * or ATTEND_CPU (its CPU form) or ATTEND_MMA with NT, QT, KT (its tensor-core
 * form), SCAN_WG.
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

/* moba_block_attend has two bodies.  On CPU devices (ATTEND_CPU; PoCL):
 * the same partials from work-items that each take two whole entries,
 * with no local memory and no barrier (the work-group form below, shaped
 * for GPUs, ran ~16x slower than the CPU
 * backend's attention on PoCL; docs/perf.md, OpenCL v5).  Work-group
 * (g, c) of NL items takes entry pairs c NL + lid, + NCH NL, ... of
 * bucket g (NCH = get_num_groups(1): a few per bucket, since the early
 * blocks' buckets hold many times the average); an item keeps its two q
 * rows and D-wide accumulators in private 16-wide vectors and goes
 * through the block's keys 16 at a time: scores, the online-softmax
 * step, then P V, in key order, each key and value load serving both
 * entries (1.3x over one entry per item).  An entry's arithmetic depends
 * only on its q row and its own keys, whichever entry it is paired with
 * (a key past one entry's causal end is masked in its scores and skipped
 * in its P V, and a step past all of its keys changes nothing), as in the
 * work-group form (whose summation order differs, so the two agree to
 * rounding, not bitwise). */
#if !ATTEND_CPU
/* One work-group of NT items per (global block g, head of the chunk);
 * blocks[g] = {first key token, keys}.  The bucket's entries go QT at a
 * time (their q rows gathered into local memory), the block's keys KT at a
 * time, and each step is a SIMT flash-attention step on register tiles:
 *   scores   item (sx, sy): rows sy * SR + i, keys sx + TXS * j, so one
 *            local float4 of q or k feeds 4 SC or 4 SR FMAs (v3 gave each
 *            item one whole row: 4 FMAs per read, D accumulators);
 *   softmax  item (pr, pp): row pr, keys pp * KP .. + KP (NP items a row);
 *   P V      item (ox, oy): rows oy * OR + i, float4 columns ox + TXO * j.
 * K and V take turns in one local buffer (V loads once the scores are
 * out), which is what lets QT = KT = 32 fit 48 KB at D = 128.  Keys past
 * the end of the block are zero rows, masked out; rows past the entries
 * are zero rows whose results are never written.  Every item of a row
 * keeps the row's max m; the pp == 0 item keeps the sum l, adding each
 * step's partial sums (red2) one step late, once a barrier has passed.
 * Defines (host-checked): NT, QT, KT, TXO, SC, UQK, UPV; see ocl_plan.c. */
#ifndef SC
#define SC 2 /* keys per item in the scores */
#endif
#define TXS (KT / SC)
#define TYS (NT / TXS)
#define SR (QT / TYS)
#define TYO (NT / TXO)
#define OR (QT / TYO)
#define OC ((D4 + TXO - 1) / TXO)
#define NP (NT / QT)
#define KP (KT / NP)
#define QS LS /* float4 stride of local q, k, v rows (tile.cl) */
#define PS (QT + 4) /* float stride of the transposed probabilities */
/* Unroll factors of the two long loops (UNROLL, tile.cl); the host passes
 * them (8 on GPUs, 1 on CPUs). */
#ifndef UQK
#define UQK 1
#endif
#ifndef UPV
#define UPV 1
#endif

#endif /* !ATTEND_CPU */

/* The chunk's ne entries (list[at], ...) and their tokens into ent and tok,
 * -1 in both past the last (a token of -1 sees no key under the causal
 * mask), between two barriers: the last chunk's readers are done, this
 * one's see them.  The work-group forms of moba_block_attend. */
inline void chunk_entries(local int *ent, local int *tok, const global int *list, int at,
                          int ne, int per_tok, int lid)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < QT) {
        int e = lid < ne ? list[at + lid] : -1;
        ent[lid] = e;
        tok[lid] = e >= 0 ? e / per_tok : -1;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

kernel void moba_block_attend(const global store_t *q, const global store_t *k,
                              const global store_t *v, const global int2 *blocks,
                              const global int *offs, const global int *list,
                              global store_t *pacc, global float2 *pml,
                              int hq, int hk, int group, int hc, int h0,
                              int top_k, float scale)
{
    const long bucket = get_group_id(0);
    const long g = bucket / hc;
    const int hl = (int)(bucket - g * hc), h = h0 + hl, kh = h / group;
    const int2 blk = blocks[g];
    const int first = offs[bucket], count = offs[bucket + 1] - first;
    const int per_tok = hc * top_k;
#if ATTEND_CPU
    const int nl = (int)get_local_size(0);
    const int step = (int)get_num_groups(1) * nl;
    const long kstride = (long)hk * D; /* between consecutive keys */
    /* two entries per item: each key and value load serves both */
    for (int x = 2 * ((int)get_group_id(1) * nl + (int)get_local_id(0)); x < count; x += 2 * step) {
        const int two = x + 1 < count;
        const int e0 = list[first + x], e1 = two ? list[first + x + 1] : e0;
        const long t0 = e0 / per_tok, t1 = e1 / per_tok;
        float16 qa[D16], qb[D16], acc0[D16], acc1[D16];
#pragma unroll
        for (int d = 0; d < D16; d++) {
            qa[d] = LD16(q, (t0 * hq + h) * D + 16 * d);
            qb[d] = LD16(q, (t1 * hq + h) * D + 16 * d);
            acc0[d] = acc1[d] = (float16)(0.0f);
        }
        /* causal: keys up to the row's token (a selected block never lies
         * past it) */
        const int nk0 = CAUSAL ? (int)min((long)blk.y, t0 - blk.x + 1) : blk.y;
        const int nk1 = CAUSAL ? (int)min((long)blk.y, t1 - blk.x + 1) : blk.y;
        const int nkm = max(nk0, nk1);
        const global store_t *kb = k + ((long)blk.x * hk + kh) * D;
        const global store_t *vb = v + ((long)blk.x * hk + kh) * D;
        float m0 = -INFINITY, l0 = 0.0f, m1 = -INFINITY, l1 = 0.0f;
        for (int u0 = 0; u0 < nkm; u0 += 16) {
            const int n = min(16, nkm - u0);
            const int n0 = clamp(nk0 - u0, 0, 16), n1 = clamp(nk1 - u0, 0, 16);
            float s0[16], s1[16];
            int j = 0;
            for (; j + 2 <= n; j += 2) {
                const long kr = (u0 + j) * kstride;
                float16 a00 = (float16)(0.0f), a01 = a00, a10 = a00, a11 = a00;
#pragma unroll
                for (int d = 0; d < D16; d++) {
                    const float16 k0 = LD16(kb, kr + 16 * d), k1 = LD16(kb, kr + kstride + 16 * d);
                    a00 = fma(qa[d], k0, a00);
                    a01 = fma(qa[d], k1, a01);
                    a10 = fma(qb[d], k0, a10);
                    a11 = fma(qb[d], k1, a11);
                }
                s0[j] = scale * hsum16(a00);
                s0[j + 1] = scale * hsum16(a01);
                s1[j] = scale * hsum16(a10);
                s1[j + 1] = scale * hsum16(a11);
            }
            for (; j < n; j++) {
                s0[j] = scale * dot16(qa, kb + (u0 + j) * kstride);
                s1[j] = scale * dot16(qb, kb + (u0 + j) * kstride);
            }
            for (j = n0; j < 16; j++) s0[j] = -INFINITY;
            for (j = n1; j < 16; j++) s1[j] = -INFINITY;
            /* the softmax step on all 16 scores at once: one vector exp */
            const float16 sv0 = vload16(0, s0), sv1 = vload16(0, s1);
            const float mx0 = fmax(m0, hmax16(sv0)), mx1 = fmax(m1, hmax16(sv1));
            /* m = -inf: nothing accumulated yet (acc and l are 0) */
            const float c0 = m0 == -INFINITY ? 0.0f : exp(m0 - mx0);
            const float c1 = m1 == -INFINITY ? 0.0f : exp(m1 - mx1);
            const float16 p0 = mx0 == -INFINITY ? (float16)(0.0f) : exp(sv0 - mx0);
            const float16 p1 = mx1 == -INFINITY ? (float16)(0.0f) : exp(sv1 - mx1);
            vstore16(p0, 0, s0);
            vstore16(p1, 0, s1);
            l0 = l0 * c0 + hsum16(p0);
            l1 = l1 * c1 + hsum16(p1);
#pragma unroll
            for (int d = 0; d < D16; d++) {
                acc0[d] *= c0;
                acc1[d] *= c1;
            }
            /* each entry only over its own keys (a masked key's value, a
             * future token's, may be anything) */
            const int nb = min(n0, n1);
            for (j = 0; j < nb; j++) {
                const long vr = (u0 + j) * kstride;
#pragma unroll
                for (int d = 0; d < D16; d++) {
                    const float16 vv = LD16(vb, vr + 16 * d);
                    acc0[d] = fma((float16)(s0[j]), vv, acc0[d]);
                    acc1[d] = fma((float16)(s1[j]), vv, acc1[d]);
                }
            }
            for (; j < n0; j++) {
                const long vr = (u0 + j) * kstride;
#pragma unroll
                for (int d = 0; d < D16; d++) acc0[d] = fma((float16)(s0[j]), LD16(vb, vr + 16 * d), acc0[d]);
            }
            for (j = nb; j < n1; j++) {
                const long vr = (u0 + j) * kstride;
#pragma unroll
                for (int d = 0; d < D16; d++) acc1[d] = fma((float16)(s1[j]), LD16(vb, vr + 16 * d), acc1[d]);
            }
            m0 = mx0;
            m1 = mx1;
        }
        /* normalised partials (moba_merge); l = 0 only if no key counted */
        const float i0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, i1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
#pragma unroll
        for (int d = 0; d < D16; d++) ST16(pacc, (long)e0 * D + 16 * d, acc0[d] * i0);
        pml[e0] = (float2)(m0, l0);
        if (two) {
#pragma unroll
            for (int d = 0; d < D16; d++) ST16(pacc, (long)e1 * D + 16 * d, acc1[d] * i1);
            pml[e1] = (float2)(m1, l1);
        }
    }
#elif ATTEND_MMA
    /* The MMA form (kernels/mma.cl; 16-bit storage, D <= 128): NT = 128
     * items as four warps, QT = 64 entries at a time (16 rows a warp), the
     * block's keys KT = 64 at a time.  A warp keeps its rows' q fragments,
     * scores (16 x KT) and output (16 x D) in registers, as FlashAttention
     * 2 does: S = Q K^T and O += P V on the tensor cores, the online
     * softmax on the score fragments, P rounded to the storage type for
     * P V.  Keys sit in local memory as rows, values transposed (a B
     * fragment of P V then pairs two keys of one column in one word); the
     * padding of both puts the eight rows a fragment reads in different
     * banks.  Every entry's arithmetic is its own row's, in the same order
     * whatever the bucket, so results stay bitwise reproducible. */
#define KS (D + 8)   /* ushort stride of the local key rows */
#define VS (KT + 8)  /* ushort stride of the local transposed value rows */
#define DK (D / 16)  /* k-steps of Q K^T */
#define DN (D / 8)   /* n-tiles of O */
#define KN (KT / 8)  /* n-tiles of S */
#define KK (KT / 16) /* k-steps of P V */
    /* declared as words: the fragments read them a word at a time, and a
     * ushort array may start at an odd half-word (a misaligned access) */
    local uint klw[KT * KS / 2], vtw[D * VS / 2];
    local ushort *kl = (local ushort *)klw, *vt = (local ushort *)vtw;
    local uint scr[MMA_SCRATCH_WORDS];
    local int ent[QT], tok[QT];
    const int lid = get_local_id(0), ln = lid % MMA_WARP;
    const int lg = ln >> 2, t = ln & 3; /* lane = 4 lg + t */
    const int r0 = (lid / MMA_WARP) * 16 + lg, r1 = r0 + 8; /* this lane's rows */

    for (int e0 = 0; e0 < count; e0 += QT) {
        const int ne = min(QT, count - e0);
        chunk_entries(ent, tok, list, first + e0, ne, per_tok, lid);
        const int tk0 = tok[r0], tk1 = tok[r1];
        uint qa[DK][4];
        {
            const global uint *q0 = (const global uint *)(q + ((long)max(tk0, 0) * hq + h) * D);
            const global uint *q1 = (const global uint *)(q + ((long)max(tk1, 0) * hq + h) * D);
            MMA_UNROLL
            for (int c = 0; c < DK; c++) { /* loads without branches */
                const uint x0 = q0[8 * c + t], x1 = q1[8 * c + t];
                const uint x2 = q0[8 * c + t + 4], x3 = q1[8 * c + t + 4];
                qa[c][0] = tk0 >= 0 ? x0 : 0u;
                qa[c][1] = tk1 >= 0 ? x1 : 0u;
                qa[c][2] = tk0 >= 0 ? x2 : 0u;
                qa[c][3] = tk1 >= 0 ? x3 : 0u;
            }
        }
        float o[DN][4];
        MMA_UNROLL
        for (int j = 0; j < DN; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
        float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

        for (int u0 = 0; u0 < blk.y; u0 += KT) {
            const int nk = min(KT, blk.y - u0);
            barrier(CLK_LOCAL_MEM_FENCE); /* the last step is done with kl, vt */
            /* 8 elements (one uint4) per item and trip; keys past the
             * block's end are zero rows */
            for (int i = lid; i < KT * (D / 8); i += NT) {
                const int r = i / (D / 8), c = i - r * (D / 8);
                uint4 x = (uint4)(0u);
                if (r < nk)
                    x = vload4(c, (const global uint *)(k + ((long)(blk.x + u0 + r) * hk + kh) * D));
                vstore4(x, c, (local uint *)(kl + r * KS));
            }
            /* values: consecutive items take consecutive keys, so that
             * their 16-bit stores into a transposed row do not collide */
            for (int i = lid; i < KT * (D / 8); i += NT) {
                const int r = i % KT, c = i / KT;
                uint4 x = (uint4)(0u);
                if (r < nk)
                    x = vload4(c, (const global uint *)(v + ((long)(blk.x + u0 + r) * hk + kh) * D));
                local ushort *dst = vt + 8 * c * VS + r;
                dst[0] = (ushort)x.x;
                dst[VS] = (ushort)(x.x >> 16);
                dst[2 * VS] = (ushort)x.y;
                dst[3 * VS] = (ushort)(x.y >> 16);
                dst[4 * VS] = (ushort)x.z;
                dst[5 * VS] = (ushort)(x.z >> 16);
                dst[6 * VS] = (ushort)x.w;
                dst[7 * VS] = (ushort)(x.w >> 16);
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            float s[KN][4];
            MMA_UNROLL
            for (int j = 0; j < KN; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
            MMA_UNROLL
            for (int c = 0; c < DK; c++)
                MMA_UNROLL
                for (int j = 0; j < KN; j++) {
                    const local uint *kr = (const local uint *)(kl + (8 * j + lg) * KS) + 8 * c + t;
                    const uint b[2] = {kr[0], kr[4]};
                    mma16816(s[j], qa[c], b, scr);
                }
            /* mask, scale, and the rows' maxima over the quad's lanes */
            float mx0 = m0, mx1 = m1;
            MMA_UNROLL
            for (int j = 0; j < KN; j++)
                for (int i = 0; i < 4; i++) {
                    const int u = 8 * j + 2 * t + (i & 1), tk = i < 2 ? tk0 : tk1;
                    const int ok = u < nk && (!CAUSAL || blk.x + u0 + u <= tk);
                    s[j][i] = ok ? scale * s[j][i] : -INFINITY;
                    if (i < 2)
                        mx0 = fmax(mx0, s[j][i]);
                    else
                        mx1 = fmax(mx1, s[j][i]);
                }
            mx0 = fmax(mx0, shfl_xor(mx0, 1, scr));
            mx0 = fmax(mx0, shfl_xor(mx0, 2, scr));
            mx1 = fmax(mx1, shfl_xor(mx1, 1, scr));
            mx1 = fmax(mx1, shfl_xor(mx1, 2, scr));
            /* m = -inf: nothing accumulated yet (o and l are 0) */
            const float c0 = m0 == -INFINITY ? 0.0f : exp(m0 - mx0);
            const float c1 = m1 == -INFINITY ? 0.0f : exp(m1 - mx1);
            m0 = mx0;
            m1 = mx1;
            l0 *= c0;
            l1 *= c1;
            MMA_UNROLL
            for (int j = 0; j < DN; j++) {
                o[j][0] *= c0;
                o[j][1] *= c0;
                o[j][2] *= c1;
                o[j][3] *= c1;
            }
            /* P as A fragments: score tiles 2c and 2c + 1 are k-step c */
            uint pa[KK][4];
            MMA_UNROLL
            for (int j = 0; j < KN; j++) {
                const float p00 = mx0 == -INFINITY ? 0.0f : exp(s[j][0] - mx0);
                const float p01 = mx0 == -INFINITY ? 0.0f : exp(s[j][1] - mx0);
                const float p10 = mx1 == -INFINITY ? 0.0f : exp(s[j][2] - mx1);
                const float p11 = mx1 == -INFINITY ? 0.0f : exp(s[j][3] - mx1);
                l0 += p00 + p01;
                l1 += p10 + p11;
                pa[j / 2][(j & 1) * 2] = pack2(p00, p01);
                pa[j / 2][(j & 1) * 2 + 1] = pack2(p10, p11);
            }
            MMA_UNROLL
            for (int c = 0; c < KK; c++)
                MMA_UNROLL
                for (int j = 0; j < DN; j++) {
                    const local uint *vr = (const local uint *)(vt + (8 * j + lg) * VS) + 8 * c + t;
                    const uint b[2] = {vr[0], vr[4]};
                    mma16816(o[j], pa[c], b, scr);
                }
        }
        /* each lane summed its own columns of l */
        l0 += shfl_xor(l0, 1, scr);
        l0 += shfl_xor(l0, 2, scr);
        l1 += shfl_xor(l1, 1, scr);
        l1 += shfl_xor(l1, 2, scr);
        /* partials normalised and in the storage type (moba_merge) */
        const float i0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, i1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
        if (r0 < ne) {
            global uint *dst = (global uint *)(pacc + (long)ent[r0] * D + 2 * t);
            MMA_UNROLL
            for (int j = 0; j < DN; j++) dst[4 * j] = pack2(o[j][0] * i0, o[j][1] * i0);
            if (t == 0) pml[ent[r0]] = (float2)(m0, l0);
        }
        if (r1 < ne) {
            global uint *dst = (global uint *)(pacc + (long)ent[r1] * D + 2 * t);
            MMA_UNROLL
            for (int j = 0; j < DN; j++) dst[4 * j] = pack2(o[j][2] * i1, o[j][3] * i1);
            if (t == 0) pml[ent[r1]] = (float2)(m1, l1);
        }
    }
#else
    local float4 qs[QT * QS];
    local float4 kvs[KT * QS];
    local float pt[KT * PS]; /* pt[u * PS + r]: score, then probability */
    local float red[NT], red2[NT], corr_s[QT];
    local int ent[QT], tok[QT];
    const int lid = get_local_id(0);
    const int sx = lid % TXS, sy = lid / TXS;
    const int ox = lid % TXO, oy = lid / TXO;
    const int pr = lid % QT, pp = lid / QT;

    for (int e0 = 0; e0 < count; e0 += QT) {
        const int ne = min(QT, count - e0);
        chunk_entries(ent, tok, list, first + e0, ne, per_tok, lid);
        for (int i = lid; i < QT * D4; i += NT) {
            int r = i / D4, d = i - r * D4;
            float4 x = (float4)(0.0f);
            if (r < ne) x = LD4(q, ((long)tok[r] * hq + h) * D + 4 * d);
            qs[r * QS + d] = x;
        }
        int trow[SR];
        for (int i = 0; i < SR; i++) trow[i] = tok[sy * SR + i];
        float4 acc[OR][OC];
        for (int i = 0; i < OR; i++)
            for (int j = 0; j < OC; j++) acc[i][j] = (float4)(0.0f);
        float m = -INFINITY, l = 0.0f;

        for (int u0 = 0; u0 < blk.y; u0 += KT) {
            const int nk = min(KT, blk.y - u0);
            barrier(CLK_LOCAL_MEM_FENCE); /* last step's P V is done with kvs */
            local_rows(kvs, k, blk.x + u0, nk, KT, hk, kh, lid, NT);
            barrier(CLK_LOCAL_MEM_FENCE);
            float s[SR][SC];
            for (int i = 0; i < SR; i++)
                for (int j = 0; j < SC; j++) s[i][j] = 0.0f;
            UNROLL(UQK)
            for (int d = 0; d < D4; d++) {
                float4 kk[SC];
                for (int j = 0; j < SC; j++) kk[j] = kvs[(sx + TXS * j) * QS + d];
                for (int i = 0; i < SR; i++) {
                    float4 qq = qs[(sy * SR + i) * QS + d];
                    for (int j = 0; j < SC; j++) {
                        s[i][j] = fma(qq.x, kk[j].x, s[i][j]);
                        s[i][j] = fma(qq.y, kk[j].y, s[i][j]);
                        s[i][j] = fma(qq.z, kk[j].z, s[i][j]);
                        s[i][j] = fma(qq.w, kk[j].w, s[i][j]);
                    }
                }
            }
            for (int j = 0; j < SC; j++) {
                const int u = sx + TXS * j, key = blk.x + u0 + u;
                for (int i = 0; i < SR; i++) {
                    int ok = u < nk && (!CAUSAL || key <= trow[i]);
                    pt[u * PS + sy * SR + i] = ok ? scale * s[i][j] : -INFINITY;
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            float mx = -INFINITY;
            for (int c = 0; c < KP; c++) mx = fmax(mx, pt[(pp * KP + c) * PS + pr]);
            red[lid] = mx;
            if (pp == 0 && u0 > 0)
                for (int x = 0; x < NP; x++) l += red2[x * QT + pr]; /* last step's */
            barrier(CLK_LOCAL_MEM_FENCE);
            float mnew = m;
            for (int x = 0; x < NP; x++) mnew = fmax(mnew, red[x * QT + pr]);
            /* m = -inf: nothing accumulated yet (acc and l are 0) */
            const float corr = m == -INFINITY ? 0.0f : exp(m - mnew);
            float psum = 0.0f;
            for (int c = 0; c < KP; c++) {
                const int idx = (pp * KP + c) * PS + pr;
                float p = mnew == -INFINITY ? 0.0f : exp(pt[idx] - mnew);
                pt[idx] = p;
                psum += p;
            }
            red2[lid] = psum;
            m = mnew;
            if (pp == 0) {
                l *= corr;
                corr_s[pr] = corr;
            }
            local_rows(kvs, v, blk.x + u0, nk, KT, hk, kh, lid, NT);
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int i = 0; i < OR; i++) {
                const float c = corr_s[oy * OR + i];
                for (int j = 0; j < OC; j++) acc[i][j] *= c;
            }
            UNROLL(UPV)
            for (int u = 0; u < KT; u++) {
                float p[OR];
#if OR % 4 == 0 /* 16-byte aligned: PS and OR are multiples of 4 */
                for (int i = 0; i < OR; i += 4)
                    vstore4(vload4(0, pt + u * PS + oy * OR + i), 0, p + i);
#else
                for (int i = 0; i < OR; i++) p[i] = pt[u * PS + oy * OR + i];
#endif
                for (int j = 0; j < OC; j++) {
                    const int c = ox + TXO * j;
                    if (D4 % TXO == 0 || c < D4) {
                        const float4 vv = kvs[u * QS + c];
                        for (int i = 0; i < OR; i++) acc[i][j] = fma((float4)(p[i]), vv, acc[i][j]);
                    }
                }
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (pp == 0) {
            for (int x = 0; x < NP; x++) l += red2[x * QT + pr];
            corr_s[pr] = l > 0.0f ? 1.0f / l : 0.0f; /* for the rows' writers */
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = 0; i < OR; i++) {
            const int r = oy * OR + i;
            if (r >= ne) continue;
            const float il = corr_s[r];
            for (int j = 0; j < OC; j++) {
                const int c = ox + TXO * j;
                if (D4 % TXO == 0 || c < D4) ST4(pacc, (long)ent[r] * D + 4 * c, acc[i][j] * il);
            }
        }
        if (pp == 0 && pr < ne) pml[ent[pr]] = (float2)(m, l);
    }
#endif
}

/* Combines the row's slots in slot order (= ascending block order).  One
 * work-item per (token, head of the chunk, dim), or on CPU devices
 * (ATTEND_CPU) per (token, head of the chunk), 16 dims at a time, the
 * weights computed once per row (per dim, the exp calls and the slot
 * reads were 30 % of a PoCL forward).  Each element's arithmetic is the
 * same, in the same order. */
kernel void moba_merge(const global int *sel, const global store_t *pacc,
                       const global float2 *pml, global store_t *out,
                       global float *lse, int want_lse, long total, int hq,
                       int hc, int h0, int top_k)
{
#if ATTEND_CPU
    long th = get_global_id(0);
    if (th >= total / D) return;
#else
    long gid = get_global_id(0);
    if (gid >= total) return;
    long th = gid / D;
    int d = (int)(gid - th * D);
#endif
    long t = th / hc;
    int h = h0 + (int)(th - t * hc);
    const global int *row = sel + (t * hq + h) * top_k;
    long e0 = th * top_k;
    float mx = -INFINITY;
    int ns = 0;
    for (; ns < top_k && row[ns] >= 0; ns++) mx = fmax(mx, pml[e0 + ns].x);
#if ATTEND_CPU
    float16 o[D16];
    for (int c = 0; c < D16; c++) o[c] = (float16)(0.0f);
#else
    float o = 0.0f;
#endif
    float l = 0.0f;
    for (int i = 0; i < ns; i++) {
        float2 ml = pml[e0 + i];
        /* the slot's weight: its partial is normalised (acc / l) */
        float w = ml.x == -INFINITY ? 0.0f : exp(ml.x - mx) * ml.y;
        l += w;
#if ATTEND_CPU
        for (int c = 0; c < D16; c++)
            o[c] = fma(LD16(pacc, (e0 + i) * D + 16 * c), (float16)(w), o[c]);
#else
        o = fma(LD(pacc, (e0 + i) * D + d), w, o);
#endif
    }
#if ATTEND_CPU
    const long ob = (t * hq + h) * D;
    for (int c = 0; c < D16; c++) {
        float r[16];
        vstore16(o[c] / l, 0, r);
        for (int x = 0; x < 16; x++) ST(out, ob + 16 * c + x, r[x]);
    }
    if (want_lse) lse[t * hq + h] = mx + log(l);
#else
    ST(out, (t * hq + h) * D + d, o / l);
    if (want_lse && d == 0) lse[t * hq + h] = mx + log(l);
#endif
}
