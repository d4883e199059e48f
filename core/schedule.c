#include <stdlib.h>

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

moba_status moba_schedule_tiles(const moba_problem *pb, int32_t tile_rows,
                                moba_tile **tiles, int64_t *count)
{
    const int32_t S = pb->p.block_size;
    int64_t n = 0;
    for (int32_t s = 0; s < pb->batch; s++) {
        int32_t len = pb->seqs[s].len;
        for (int32_t r = 0; r < len;) {
            int32_t end = (r / S + 1) * S;
            if (end > len) end = len;
            int32_t rows = end - r < tile_rows ? end - r : tile_rows;
            r += rows;
            n++;
        }
    }
    *tiles = NULL;
    *count = n;
    if (n == 0) return MOBA_OK;
    moba_tile *t = malloc(sizeof *t * (size_t)n);
    if (!t) return MOBA_ERR_OUT_OF_MEMORY;
    int64_t i = 0;
    for (int32_t s = 0; s < pb->batch; s++) {
        int32_t len = pb->seqs[s].len;
        for (int32_t r = 0; r < len;) {
            int32_t end = (r / S + 1) * S;
            if (end > len) end = len;
            int32_t rows = end - r < tile_rows ? end - r : tile_rows;
            t[i].seq = s;
            t[i].row0 = r;
            t[i].rows = rows;
            t[i].block = r / S;
            t[i].cost = (int64_t)rows * moba_schedule_row_cost(pb, s, r + rows - 1);
            i++;
            r += rows;
        }
    }
    qsort(t, (size_t)n, sizeof *t, cmp_cost_desc);
    *tiles = t;
    return MOBA_OK;
}
