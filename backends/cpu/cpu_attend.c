/*
 * Block-sparse attention on the CPU.  One task = one query tile (rows of one
 * block of one sequence) x one kv head, covering the kv group's query heads,
 * so each key/value chunk is converted to f32 once and serves every row of
 * the task that selected its block.  Each row keeps an online softmax
 * (running max m, sum l, accumulator) and visits its blocks in ascending
 * order in chunks of CHUNK keys; that order does not depend on the tile or
 * the thread, so results are bitwise reproducible.  No score matrix larger
 * than one chunk per row exists.
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

size_t moba_cpu_attend_scratch(const moba_problem *pb, int32_t tile_rows)
{
    const moba_params *p = &pb->p;
    size_t rg = (size_t)tile_rows * pb->group, D = (size_t)p->head_dim;
    size_t K = (size_t)p->top_k;
    size_t attend = 2 * rg * D + 2 * rg + 2 * CHUNK * D + CHUNK +
                    rg * K + rg + 16;
    size_t gate = D + 2 + 3 * K + 16;
    size_t cent = (size_t)p->num_kv_heads * D;
    size_t n = attend > gate ? attend : gate;
    return n > cent ? n : cent;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
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

    /* scratch layout (floats) */
    float *qf = j->pl->scratch[thread];
    float *acc = qf + (size_t)RG * D;
    float *m = acc + (size_t)RG * D;
    float *l = m + RG;
    float *kc = l + RG;
    float *vc = kc + (size_t)CHUNK * D;
    float *sc = vc + (size_t)CHUNK * D;
    int32_t *uni = (int32_t *)(sc + CHUNK);
    int32_t *cur = uni + (size_t)RG * K;

    int32_t nuni = 0;
    for (int32_t i = 0; i < RG; i++) {
        int32_t r = i / G, h = kh * G + i % G;
        size_t tok = (size_t)(sq->start + tile->row0 + r);
        kern->to_f32(qf + (size_t)i * D, (const char *)j->q + (tok * Hq + h) * D * es,
                     p->dtype, D);
        memset(acc + (size_t)i * D, 0, sizeof(float) * (size_t)D);
        m[i] = -INFINITY;
        l[i] = 0.0f;
        cur[i] = 0;
        const int32_t *row = j->pl->sel + (tok * Hq + h) * K;
        for (int32_t x = 0; x < K && row[x] >= 0; x++) uni[nuni++] = row[x];
    }
    qsort(uni, (size_t)nuni, sizeof *uni, cmp_i32);

    const size_t kvstride = (size_t)Hk * D; /* elements between key rows */
    for (int32_t ui = 0; ui < nuni; ui++) {
        int32_t blk = uni[ui];
        if (ui > 0 && uni[ui - 1] == blk) continue;
        int32_t u0 = blk * S, u1 = u0 + S < sq->len ? u0 + S : sq->len;
        if (p->causal && blk == b && u1 > tile->row0 + R) u1 = tile->row0 + R;
        for (int32_t c0 = u0; c0 < u1; c0 += CHUNK) {
            int32_t nk = u1 - c0 < CHUNK ? u1 - c0 : CHUNK;
            const float *kp, *vp;
            size_t ks;
            size_t base = ((size_t)(sq->start + c0) * Hk + kh) * D;
            if (p->dtype == MOBA_F32) {
                kp = (const float *)j->k + base;
                vp = (const float *)j->v + base;
                ks = kvstride;
            } else {
                for (int32_t u = 0; u < nk; u++) {
                    kern->to_f32(kc + (size_t)u * D,
                                 (const char *)j->k + (base + u * kvstride) * es,
                                 p->dtype, D);
                    kern->to_f32(vc + (size_t)u * D,
                                 (const char *)j->v + (base + u * kvstride) * es,
                                 p->dtype, D);
                }
                kp = kc;
                vp = vc;
                ks = (size_t)D;
            }
            for (int32_t i = 0; i < RG; i++) {
                int32_t r = i / G, h = kh * G + i % G;
                size_t tok = (size_t)(sq->start + tile->row0 + r);
                const int32_t *row = j->pl->sel + (tok * Hq + h) * K;
                if (cur[i] >= K || row[cur[i]] != blk) continue;
                int32_t n = nk;
                if (p->causal && blk == b) {
                    int32_t lim = tile->row0 + r + 1 - c0;
                    if (lim < n) n = lim;
                }
                if (n <= 0) continue;
                const float *qi = qf + (size_t)i * D;
                float mx = -INFINITY;
                for (int32_t u = 0; u < n; u++) {
                    sc[u] = scale * kern->dot(qi, kp + (size_t)u * ks, D);
                    if (sc[u] > mx) mx = sc[u];
                }
                float mnew = mx > m[i] ? mx : m[i];
                if (mnew == -INFINITY) continue;
                float *ai = acc + (size_t)i * D;
                if (m[i] != mnew) {
                    float corr = expf(m[i] - mnew);
                    kern->scale(ai, corr, D);
                    l[i] *= corr;
                    m[i] = mnew;
                }
                float sum = 0.0f;
                for (int32_t u = 0; u < n; u++) {
                    float w = expf(sc[u] - mnew);
                    sum += w;
                    kern->axpy(ai, w, vp + (size_t)u * ks, D);
                }
                l[i] += sum;
            }
        }
        for (int32_t i = 0; i < RG; i++) {
            int32_t r = i / G, h = kh * G + i % G;
            size_t tok = (size_t)(sq->start + tile->row0 + r);
            const int32_t *row = j->pl->sel + (tok * Hq + h) * K;
            if (cur[i] < K && row[cur[i]] == blk) cur[i]++;
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
