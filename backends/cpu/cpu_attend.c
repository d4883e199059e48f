/*
 * Block-sparse attention on the CPU.  One task = one query tile (rows of one
 * block of one sequence) x one kv head, covering the kv group's query heads.
 * The tile's selections are sorted by block, so each selected block is read
 * once per task (converted to f32 in chunks of CHUNK keys if stored in 16
 * bits) and serves all the rows that chose it at once: scores for those rows
 * x the chunk's keys in one register-blocked kernel call, an online-softmax
 * update per row, then one kernel call for p.v.
 *
 * Each row visits its blocks in ascending order and each block in the same
 * chunks whatever the tile, and the kernels compute every element with a
 * fixed operation order, so results are bitwise reproducible and do not
 * depend on tiling or thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/dtype.h"
#include "cpu_internal.h"

#define CHUNK 64

typedef struct attend_job {
    cpu_ctx *c;
    cpu_plan *pl;
    const moba_problem *pb;
    const void *q, *k, *v;
    void *out;
    float *lse;
} attend_job;

/* Carves n elements of `size` bytes from a float region, 64-byte aligned
 * (regions start aligned), so per-thread arrays never share a line. */
static void *carve(float **cur, size_t n, size_t size)
{
    void *p = *cur;
    *cur += (n * size + 63) / 64 * 16;
    return p;
}

/* The tile kernels' path: bf16 storage and head dims they take. */
static int use_steps(const moba_cpu_kernels *kern, const moba_params *p)
{
    return kern->step_bf16 && p->dtype == MOBA_BF16 && p->head_dim % 32 == 0;
}

/* Blocks that fewer rows of a task selected take the chunked path: a tile
 * step costs about the same for 1 row as for 16 (the lanes are padded),
 * and it re-reads the block's keys per 16 rows. */
#ifndef STEP_MIN_ROWS
#define STEP_MIN_ROWS 8
#endif

/* Keys of one tile step: a whole block up to MOBA_CPU_STEP_KEYS. */
static int32_t step_keys(const moba_params *p)
{
    return p->block_size < MOBA_CPU_STEP_KEYS ? p->block_size : MOBA_CPU_STEP_KEYS;
}

size_t moba_cpu_attend_scratch(const moba_cpu_kernels *kern, const moba_problem *pb,
                               int32_t tile_rows)
{
    const moba_params *p = &pb->p;
    size_t rg = (size_t)tile_rows * pb->group, D = (size_t)p->head_dim;
    size_t K = (size_t)p->top_k, al = 16;
    size_t attend = 2 * (rg * D + al) + 2 * (rg + al) + 2 * (CHUNK * (D + 16) + al) +
                    (rg * CHUNK + al) + (2 * rg * K + al) + 6 * (rg + al);
    if (use_steps(kern, p)) /* packed values, step work, 16 x (lim, m, l) */
        attend += ((size_t)(step_keys(p) + 31) / 32 * 32 * D / 2 + al) +
                  (kern->step_work_bf16(p->head_dim) / 4 + al) + 3 * (16 + al);
    size_t R = (size_t)tile_rows;
    size_t gate = (R * D + al) + (R * CHUNK + al) + (R * K + al) +
                  (2 * R * K + al) + (R + al) + 2 * (R + al) +
                  (CHUNK * (D + 16) + al);
    size_t cent = (size_t)p->num_kv_heads * D + al;
    size_t n = attend > gate ? attend : gate;
    return n > cent ? n : cent;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* One online-softmax step for the chunk's scores of one row: s holds n
 * raw scores (CHUNK wide); `valid` of them are visible (causal).  Leaves the
 * weights in s (zero past `valid`) and rescales the row's accumulator. */
static void softmax_step(const moba_cpu_kernels *kern, float *s, int n,
                         int valid, float scale, float *m, float *l,
                         float *acc, int D)
{
    if (valid <= 0) {
        memset(s, 0, sizeof(float) * (size_t)n);
        return;
    }
    float mx = kern->scale_max(s, valid, scale);
    if (valid < n) memset(s + valid, 0, sizeof(float) * (size_t)(n - valid));
    float mnew = mx > *m || isnan(mx) ? mx : *m;
    if (mnew == -INFINITY) { /* nothing finite yet: weights are all 0 */
        memset(s, 0, sizeof(float) * (size_t)n);
        return;
    }
    if (*m != mnew) {
        if (*m != -INFINITY) {
            float corr = expf(*m - mnew);
            kern->scale(acc, corr, D);
            *l *= corr;
        }
        *m = mnew;
    }
    *l += kern->exp_sum(s, valid, mnew);
}

/* Per-task buffers of the tile kernels' path. */
typedef struct step_bufs {
    uint16_t *vpk; /* one step's values, packed */
    void *work;
    int32_t *lim;
    float *sm, *sl; /* the 16 rows' running max / sum */
} step_bufs;

/* One selected block on the tile kernels: keys in steps of up to
 * step_keys (the values packed once per step), the active rows (qb, ap:
 * query rows and accumulators, ascending task rows) 16 at a time. */
static void block_steps(const attend_job *j, const moba_cpu_kernels *kern,
                        const step_bufs *sb, const moba_seq *sq,
                        const moba_tile *tile, int32_t kh, int own_causal,
                        int32_t u0, int32_t u1, const uint16_t *const *qb,
                        float *const *ap, int32_t nact, float *acc, float *m,
                        float *l)
{
    const moba_params *p = &j->pb->p;
    const int32_t D = p->head_dim, G = j->pb->group, SK = step_keys(p);
    const size_t ld = (size_t)p->num_kv_heads * D;
    for (int32_t c0 = u0; c0 < u1; c0 += SK) {
        const int32_t n = u1 - c0 < SK ? u1 - c0 : SK;
        const size_t base = ((size_t)(sq->start + c0) * p->num_kv_heads + kh) * D;
        kern->pack_v_bf16(sb->vpk, (const uint16_t *)j->v + base, ld, n, D);
        /* Causal own block: rows before c0 see none of these keys, and
         * they are a prefix of the active rows. */
        int32_t first = 0;
        if (own_causal && c0 > tile->row0) first = (c0 - tile->row0) * G;
        for (int32_t g = first; g < nact; g += 16) {
            const int32_t mm = nact - g < 16 ? nact - g : 16;
            for (int32_t x = 0; x < mm; x++) {
                int32_t i = (int32_t)((ap[g + x] - acc) / D);
                if (own_causal) {
                    int32_t lm = tile->row0 + i / G + 1 - c0;
                    sb->lim[x] = lm < n ? lm : n;
                }
                sb->sm[x] = m[i];
                sb->sl[x] = l[i];
            }
            moba_cpu_step st = {
                mm, n, D, qb + g, (const uint16_t *)j->k + base, ld, sb->vpk,
                own_causal ? sb->lim : NULL, p->softmax_scale, ap + g, sb->sm,
                sb->sl, sb->work,
            };
            kern->step_bf16(&st);
            for (int32_t x = 0; x < mm; x++) {
                int32_t i = (int32_t)((ap[g + x] - acc) / D);
                m[i] = sb->sm[x];
                l[i] = sb->sl[x];
            }
        }
    }
}

static void attend_task(void *arg, int64_t task, int thread)
{
    attend_job *j = arg;
    const moba_problem *pb = j->pb;
    const moba_params *p = &pb->p;
    const moba_cpu_kernels *kern = j->c->kern;
    const int32_t Hq = p->num_q_heads, Hk = p->num_kv_heads, D = p->head_dim;
    const int32_t S = p->block_size, K = p->top_k, G = pb->group;
    const size_t es = pb->elem_size;
    const float scale = p->softmax_scale;
    const moba_tile *tile = &j->pl->tiles[task / Hk];
    const int32_t kh = (int32_t)(task % Hk);
    const moba_seq *sq = &pb->seqs[tile->seq];
    const int32_t R = tile->rows, RG = R * G, b = tile->block;
    const int causal = p->causal;

    float *cur = j->pl->scratch[thread];
    float *qf = carve(&cur, (size_t)RG * D, sizeof(float));
    float *acc = carve(&cur, (size_t)RG * D, sizeof(float));
    float *m = carve(&cur, (size_t)RG, sizeof(float));
    float *l = carve(&cur, (size_t)RG, sizeof(float));
    float *kc = carve(&cur, (size_t)CHUNK * (D + 16), sizeof(float));
    float *vc = carve(&cur, (size_t)CHUNK * (D + 16), sizeof(float));
    float *sc = carve(&cur, (size_t)RG * CHUNK, sizeof(float));
    uint64_t *pairs = carve(&cur, (size_t)RG * K, sizeof(uint64_t));
    const float **qp = carve(&cur, (size_t)RG, sizeof(float *));
    float **ap = carve(&cur, (size_t)RG, sizeof(float *));
    /* bf16 storage with a bf16 dot-product kernel: scores straight from
     * the stored q rows and a compact bf16 copy of the key chunk. */
    const int bfdot = p->dtype == MOBA_BF16 && kern->qk_bf16;
    const uint16_t **qb = carve(&cur, (size_t)RG, sizeof(uint16_t *));
    uint16_t *kb = (uint16_t *)kc; /* kc is unused then */
    const int steps = use_steps(kern, p);
    step_bufs sb = {0};
    if (steps) {
        sb.vpk = carve(&cur, (size_t)(step_keys(p) + 31) / 32 * 32 * D, sizeof(uint16_t));
        sb.work = carve(&cur, kern->step_work_bf16(D), 1);
        sb.lim = carve(&cur, 16, sizeof(int32_t));
        sb.sm = carve(&cur, 16, sizeof(float));
        sb.sl = carve(&cur, 16, sizeof(float));
    }

    /* Row i of the task is query row r = i / G of the tile, head kh*G + i%G. */
    int32_t npairs = 0;
    for (int32_t i = 0; i < RG; i++) {
        int32_t r = i / G, h = kh * G + i % G;
        size_t tok = (size_t)(sq->start + tile->row0 + r);
        if (!bfdot) /* bf16 dot products read the stored rows */
            kern->to_f32(qf + (size_t)i * D,
                         (const char *)j->q + (tok * Hq + h) * D * es, p->dtype, D);
        memset(acc + (size_t)i * D, 0, sizeof(float) * (size_t)D);
        m[i] = -INFINITY;
        l[i] = 0.0f;
        const int32_t *row = j->pl->sel + (tok * Hq + h) * K;
        for (int32_t x = 0; x < K && row[x] >= 0; x++)
            if (row[x] != b) pairs[npairs++] = (uint64_t)row[x] << 32 | (uint32_t)i;
    }
    /* Every row selects its own block b; the others are grouped by block. */
    pairs[npairs++] = (uint64_t)b << 32 | 0xffffffffu;
    qsort(pairs, (size_t)npairs, sizeof *pairs, cmp_u64);

    const size_t kvstride = (size_t)Hk * D; /* elements between key rows */
    const size_t ld = (size_t)D + 16;
    for (int32_t pi = 0; pi < npairs;) {
        const int32_t blk = (int32_t)(pairs[pi] >> 32);
        int32_t pe = pi;
        while (pe < npairs && (int32_t)(pairs[pe] >> 32) == blk) pe++;
        int32_t nact = 0;
        for (int32_t x = blk == b ? 0 : pi; x < (blk == b ? RG : pe); x++) {
            uint32_t i = blk == b ? (uint32_t)x : (uint32_t)pairs[x];
            size_t tok = (size_t)(sq->start + tile->row0 + (int32_t)i / G);
            qp[nact] = qf + (size_t)i * D;
            qb[nact] = (const uint16_t *)j->q + (tok * Hq + kh * G + i % G) * D;
            ap[nact++] = acc + (size_t)i * D;
        }
        pi = pe;

        int32_t u0 = blk * S, u1 = u0 + S < sq->len ? u0 + S : sq->len;
        const int own_causal = causal && blk == b;
        if (own_causal && u1 > tile->row0 + R) u1 = tile->row0 + R;
        if (steps && nact >= STEP_MIN_ROWS) {
            block_steps(j, kern, &sb, sq, tile, kh, own_causal, u0, u1, qb, ap,
                        nact, acc, m, l);
            continue;
        }
        for (int32_t c0 = u0; c0 < u1; c0 += CHUNK) {
            const int32_t nk = u1 - c0 < CHUNK ? u1 - c0 : CHUNK;
            /* Causal own block: rows before c0 see none of this chunk, and
             * they are a prefix of the tile's rows. */
            int32_t first = 0;
            if (own_causal && c0 > tile->row0) first = (c0 - tile->row0) * G;
            const int32_t na = nact - first;
            /* Always copied (and converted) into a compact chunk whose row
             * pitch is D + 16 floats: K/V rows in the tensors are Hk*D apart,
             * often a multiple of 4 KB, which maps a whole chunk onto a few
             * L1 sets. */
            size_t base = ((size_t)(sq->start + c0) * Hk + kh) * D;
            for (int32_t u = 0; u < nk; u++) {
                if (bfdot)
                    memcpy(kb + (size_t)u * ld,
                           (const uint16_t *)j->k + base + u * kvstride,
                           sizeof(uint16_t) * (size_t)D);
                else
                    kern->to_f32(kc + (size_t)u * ld,
                             (const char *)j->k + (base + u * kvstride) * es,
                             p->dtype, D);
                kern->to_f32(vc + (size_t)u * ld,
                             (const char *)j->v + (base + u * kvstride) * es,
                             p->dtype, D);
            }
            const float *kp = kc, *vp = vc;
            if (bfdot)
                kern->qk_bf16(na, nk, D, qb + first, kb, ld, sc, CHUNK);
            else
                kern->qk(na, nk, D, qp + first, kp, ld, sc, CHUNK);
            for (int32_t a = 0; a < na; a++) {
                int32_t i = (int32_t)((ap[first + a] - acc) / D);
                int32_t valid = nk;
                if (own_causal) {
                    int32_t lim = tile->row0 + i / G + 1 - c0;
                    if (lim < valid) valid = lim;
                }
                softmax_step(kern, sc + (size_t)a * CHUNK, nk, valid, scale,
                             &m[i], &l[i], ap[first + a], D);
            }
            kern->pv(na, nk, D, sc, CHUNK, vp, ld, ap + first);
        }
    }

    for (int32_t i = 0; i < RG; i++) {
        int32_t r = i / G, h = kh * G + i % G;
        size_t tok = (size_t)(sq->start + tile->row0 + r);
        float inv = 1.0f / l[i];
        float *ai = acc + (size_t)i * D;
        size_t o = (tok * Hq + h) * D;
        for (int32_t d = 0; d < D; d++) moba_store_f32(j->out, p->dtype, o + d, ai[d] * inv);
        if (j->lse) j->lse[tok * Hq + h] = m[i] + logf(l[i]);
    }
}

moba_status moba_cpu_attend(cpu_ctx *c, cpu_plan *pl, const moba_problem *pb,
                            const void *q, const void *k, const void *v,
                            void *out, float *lse)
{
    moba_status st = moba_cpu_plan_scratch(pl, moba_pool_threads(c->pool));
    if (st) return st;
    attend_job job = {c, pl, pb, q, k, v, out, lse};
    moba_pool_run(c->pool, pl->ntiles * pb->p.num_kv_heads, attend_task, &job);
    return MOBA_OK;
}
