/* Gating on the CPU: block centroids, then each query's top-k blocks with
 * the ranking of core/gate.h. */
#include <stdint.h>
#include <string.h>

#include "../../core/dtype.h"
#include "../../core/gate.h"
#include "cpu_internal.h"

typedef struct gate_job {
    cpu_ctx *c;
    cpu_plan *pl;
    const moba_problem *pb;
    const void *q, *k;
} gate_job;

/* Sequence owning global block index g: the last sequence whose first
 * block is at or before g (empty sequences share their successor's offset,
 * and the last such one is the non-empty owner). */
static int32_t seq_of_block(const moba_problem *pb, int64_t g)
{
    int32_t lo = 0, hi = pb->batch - 1;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo + 1) / 2;
        if (pb->seqs[mid].block_offset <= g)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

static void centroid_task(void *arg, int64_t g, int thread)
{
    gate_job *j = arg;
    const moba_problem *pb = j->pb;
    const moba_params *p = &pb->p;
    const int32_t HkD = p->num_kv_heads * p->head_dim, S = p->block_size;
    int32_t s = seq_of_block(pb, g);
    const moba_seq *sq = &pb->seqs[s];
    int32_t blk = (int32_t)(g - sq->block_offset);
    int32_t u0 = blk * S, u1 = u0 + S < sq->len ? u0 + S : sq->len;
    float *row = j->pl->scratch[thread];
    float *acc = j->pl->cent + (size_t)g * HkD;
    memset(acc, 0, sizeof(float) * (size_t)HkD);
    for (int32_t u = u0; u < u1; u++) {
        const char *src = (const char *)j->k +
                          (size_t)(sq->start + u) * HkD * pb->elem_size;
        j->c->kern->to_f32(row, src, p->dtype, HkD);
        j->c->kern->axpy(acc, 1.0f, row, HkD);
    }
    float n = (float)(u1 - u0);
    for (int32_t i = 0; i < HkD; i++)
        acc[i] = moba_round_to(p->dtype, acc[i] / n);
}

/* Scores of a tile's rows against the eligible blocks, CHUNK blocks at a
 * time as one register-blocked kernel call (centroids stay row-major), then
 * each row's running top-k.  One task = one tile x one kv head, so the kv
 * group's query heads share the centroid rows while they are in cache. */
#define CHUNK 64

static void select_task(void *arg, int64_t task, int thread)
{
    gate_job *j = arg;
    const moba_problem *pb = j->pb;
    const moba_params *p = &pb->p;
    const moba_cpu_kernels *kern = j->c->kern;
    const int32_t Hk = p->num_kv_heads;
    const moba_tile *tile = &j->pl->tiles[task / Hk];
    const int32_t kh = (int32_t)(task % Hk);
    const moba_seq *sq = &pb->seqs[tile->seq];
    const int32_t Hq = p->num_q_heads, D = p->head_dim, R = tile->rows;
    const int32_t K = p->top_k, b = tile->block;
    const int32_t nelig = p->causal ? b : sq->nb;
    float *cur = j->pl->scratch[thread];
    float *qf = cur;
    float *sc = qf + ((size_t)R * D + 15) / 16 * 16;
    int32_t *idx = (int32_t *)(sc + (size_t)R * CHUNK);
    double *val = (double *)(idx + ((size_t)R * K + 15) / 16 * 16);
    int32_t *cnt = (int32_t *)(val + ((size_t)R * K + 7) / 8 * 8);
    const float **qp = (const float **)(cnt + ((size_t)R + 15) / 16 * 16);
    /* Centroids of this head are Hk*D apart (often a multiple of 4 KB, one
     * L1 set): each chunk is copied to rows D + 16 apart first. */
    const size_t ldc = (size_t)D + 16;
    float *cc = (float *)(qp + ((size_t)R + 7) / 8 * 8);
    const float *cent = j->pl->cent + ((size_t)sq->block_offset * Hk + kh) * D;

    for (int32_t h = kh * pb->group; h < (kh + 1) * pb->group; h++) {
        for (int32_t r = 0; r < R; r++) {
            size_t tok = (size_t)(sq->start + tile->row0 + r);
            kern->to_f32(qf + (size_t)r * D,
                         (const char *)j->q + (tok * Hq + h) * D * pb->elem_size,
                         p->dtype, D);
            qp[r] = qf + (size_t)r * D;
            cnt[r] = 0;
        }
        for (int32_t c0 = 0; c0 < nelig; c0 += CHUNK) {
            int32_t n = nelig - c0 < CHUNK ? nelig - c0 : CHUNK;
            for (int32_t x = 0; x < n; x++)
                memcpy(cc + (size_t)x * ldc, cent + (size_t)(c0 + x) * Hk * D,
                       sizeof(float) * (size_t)D);
            kern->qk(R, n, D, qp, cc, ldc, sc, CHUNK);
            for (int32_t r = 0; r < R; r++)
                for (int32_t x = 0; x < n; x++)
                    if (c0 + x != b)
                        moba_topk_push(idx + (size_t)r * K, val + (size_t)r * K,
                                       &cnt[r], K - 1, c0 + x,
                                       (double)sc[(size_t)r * CHUNK + x]);
        }
        for (int32_t r = 0; r < R; r++) {
            size_t tok = (size_t)(sq->start + tile->row0 + r);
            moba_gate_write_row(j->pl->sel + (tok * Hq + h) * K, K,
                                idx + (size_t)r * K, cnt[r], b);
        }
    }
}

moba_status moba_cpu_gate(cpu_ctx *c, cpu_plan *pl, const moba_problem *pb,
                          const void *q, const void *k)
{
    moba_status st = moba_cpu_plan_scratch(pl, moba_pool_threads(c->pool));
    if (st) return st;
    gate_job job = {c, pl, pb, q, k};
    moba_pool_run(c->pool, pb->total_blocks, centroid_task, &job);
    moba_pool_run(c->pool, pl->ntiles * pb->p.num_kv_heads, select_task, &job);
    return MOBA_OK;
}
