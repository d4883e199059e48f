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

static void select_task(void *arg, int64_t ti, int thread)
{
    gate_job *j = arg;
    const moba_problem *pb = j->pb;
    const moba_params *p = &pb->p;
    const moba_tile *tile = &j->pl->tiles[ti];
    const moba_seq *sq = &pb->seqs[tile->seq];
    const int32_t Hq = p->num_q_heads, Hk = p->num_kv_heads, D = p->head_dim;
    const int32_t K = p->top_k, b = tile->block;
    const int32_t nelig = p->causal ? b : sq->nb;
    float *qrow = j->pl->scratch[thread];
    double *val = (double *)(qrow + ((D + 1) & ~1));
    int32_t *idx = (int32_t *)(val + K);
    for (int32_t r = tile->row0; r < tile->row0 + tile->rows; r++) {
        size_t tok = (size_t)(sq->start + r);
        for (int32_t h = 0; h < Hq; h++) {
            const char *qsrc = (const char *)j->q + (tok * Hq + h) * D * pb->elem_size;
            j->c->kern->to_f32(qrow, qsrc, p->dtype, D);
            const float *cent = j->pl->cent +
                                ((size_t)sq->block_offset * Hk + h / pb->group) * D;
            int32_t n = 0;
            for (int32_t blk = 0; blk < nelig; blk++) {
                if (blk == b) continue;
                float sc = j->c->kern->dot(qrow, cent + (size_t)blk * Hk * D, D);
                moba_topk_push(idx, val, &n, K - 1, blk, (double)sc);
            }
            moba_gate_write_row(j->pl->sel + (tok * Hq + h) * K, K, idx, n, b);
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
    moba_pool_run(c->pool, pl->ntiles, select_task, &job);
    return MOBA_OK;
}
