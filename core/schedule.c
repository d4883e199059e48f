#include <stdlib.h>
#include <string.h>

#include "gate.h"
#include "schedule.h"

int64_t moba_schedule_row_cost(const moba_problem *pb, int32_t seq,
                               int32_t row)
{
    const moba_params *p = &pb->p;
    int32_t b = row / p->block_size;
    int32_t cnt = moba_gate_count(p, b, pb->seqs[seq].nb);
    int64_t own = p->causal ? (row % p->block_size) + 1 : p->block_size;
    return (int64_t)(cnt - 1) * p->block_size + own;
}

static int cmp_cost_desc(const void *a, const void *b)
{
    const moba_tile *x = a, *y = b;
    if (x->cost != y->cost) return x->cost < y->cost ? 1 : -1;
    if (x->seq != y->seq) return x->seq < y->seq ? -1 : 1;
    return x->row0 < y->row0 ? -1 : (x->row0 > y->row0);
}

/* Cuts every sequence into tiles; counts them, and fills `out` unless NULL. */
static int64_t cut_tiles(const moba_problem *pb, int32_t tile_rows,
                         moba_tile *out)
{
    const int32_t S = pb->p.block_size;
    int64_t n = 0;
    for (int32_t s = 0; s < pb->batch; s++) {
        int32_t len = pb->seqs[s].len;
        for (int32_t r = 0; r < len;) {
            int32_t end = (r / S + 1) * S;
            if (end > len) end = len;
            int32_t rows = end - r < tile_rows ? end - r : tile_rows;
            if (out) {
                out[n].seq = s;
                out[n].row0 = r;
                out[n].rows = rows;
                out[n].block = r / S;
                out[n].cost = (int64_t)rows *
                              moba_schedule_row_cost(pb, s, r + rows - 1);
            }
            n++;
            r += rows;
        }
    }
    return n;
}

moba_status moba_schedule_tiles(const moba_problem *pb, int32_t tile_rows,
                                moba_tile **tiles, int64_t *count)
{
    int64_t n = cut_tiles(pb, tile_rows, NULL);
    *tiles = NULL;
    *count = n;
    if (n == 0) return MOBA_OK;
    moba_tile *t = malloc(sizeof *t * (size_t)n);
    if (!t) return MOBA_ERR_OUT_OF_MEMORY;
    cut_tiles(pb, tile_rows, t);
    qsort(t, (size_t)n, sizeof *t, cmp_cost_desc);
    *tiles = t;
    return MOBA_OK;
}

void moba_kv_lists_free(moba_kv_lists *l)
{
    if (!l) return;
    free(l->offsets);
    free(l->token);
    free(l->head);
    free(l->slot);
    l->offsets = NULL;
    l->token = l->head = l->slot = NULL;
}

moba_status moba_schedule_kv_lists(const moba_problem *pb, const int32_t *sel,
                                   moba_kv_lists *l)
{
    const int32_t Hq = pb->p.num_q_heads, Hk = pb->p.num_kv_heads;
    const int32_t K = pb->p.top_k;
    const int64_t nlists = pb->total_blocks * Hk;
    memset(l, 0, sizeof *l);
    l->nlists = nlists;
    l->offsets = calloc((size_t)nlists + 1, sizeof *l->offsets);
    if (!l->offsets) return MOBA_ERR_OUT_OF_MEMORY;
    /* Pass 1: count entries per list. */
    int64_t total = 0;
    for (int32_t s = 0; s < pb->batch; s++) {
        const moba_seq *sq = &pb->seqs[s];
        for (int32_t r = 0; r < sq->len; r++)
            for (int32_t h = 0; h < Hq; h++) {
                const int32_t *row = sel + ((size_t)(sq->start + r) * Hq + h) * K;
                for (int32_t i = 0; i < K && row[i] >= 0; i++) {
                    l->offsets[(sq->block_offset + row[i]) * Hk + h / pb->group + 1]++;
                    total++;
                }
            }
    }
    for (int64_t i = 0; i < nlists; i++) l->offsets[i + 1] += l->offsets[i];
    size_t n = total ? (size_t)total : 1;
    l->token = malloc(n * sizeof *l->token);
    l->head = malloc(n * sizeof *l->head);
    l->slot = malloc(n * sizeof *l->slot);
    int64_t *fill = malloc(((size_t)nlists + 1) * sizeof *fill);
    if (!l->token || !l->head || !l->slot || !fill) {
        free(fill);
        moba_kv_lists_free(l);
        return MOBA_ERR_OUT_OF_MEMORY;
    }
    memcpy(fill, l->offsets, ((size_t)nlists + 1) * sizeof *fill);
    /* Pass 2: fill in (token, head) order, which makes each list sorted. */
    for (int32_t s = 0; s < pb->batch; s++) {
        const moba_seq *sq = &pb->seqs[s];
        for (int32_t r = 0; r < sq->len; r++)
            for (int32_t h = 0; h < Hq; h++) {
                int64_t tok = sq->start + r;
                const int32_t *row = sel + ((size_t)tok * Hq + h) * K;
                for (int32_t i = 0; i < K && row[i] >= 0; i++) {
                    int64_t e = fill[(sq->block_offset + row[i]) * Hk + h / pb->group]++;
                    l->token[e] = (int32_t)tok;
                    l->head[e] = h;
                    l->slot[e] = i;
                }
            }
    }
    free(fill);
    return MOBA_OK;
}
