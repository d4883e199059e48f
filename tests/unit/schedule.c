/* moba_schedule_tiles: tiles stay inside one block, cover every row once,
 * and come longest first. */
#include <stdlib.h>
#include <string.h>

#include "core/schedule.h"
#include "unit.h"

static void check_schedule(const int32_t *len, int32_t batch, int32_t S,
                           int32_t top_k, int32_t causal, int32_t tile_rows)
{
    moba_seq seqs[8];
    int32_t cu[9] = {0};
    moba_problem pb;
    memset(&pb, 0, sizeof pb);
    pb.p = moba_params_default();
    pb.p.block_size = S;
    pb.p.top_k = top_k;
    pb.p.causal = causal;
    pb.batch = batch;
    int64_t blocks = 0;
    for (int32_t s = 0; s < batch; s++) {
        cu[s + 1] = cu[s] + len[s];
        seqs[s].start = cu[s];
        seqs[s].len = len[s];
        seqs[s].nb = (len[s] + S - 1) / S;
        seqs[s].block_offset = blocks;
        blocks += seqs[s].nb;
        if (len[s] > pb.max_seqlen) pb.max_seqlen = len[s];
        if (seqs[s].nb > pb.max_blocks) pb.max_blocks = seqs[s].nb;
    }
    pb.cu_seqlens = cu;
    pb.seqs = seqs;
    pb.total_tokens = cu[batch];
    pb.total_blocks = blocks;
    pb.group = 1;
    pb.elem_size = 4;

    moba_tile *tiles = NULL;
    int64_t n = -1;
    assert_int_equal(moba_schedule_tiles(&pb, tile_rows, &tiles, &n), MOBA_OK);
    int *seen = calloc((size_t)cu[batch] + 1, sizeof *seen);
    assert_non_null(seen);
    for (int64_t i = 0; i < n; i++) {
        const moba_tile *t = &tiles[i];
        assert_in_range(t->seq, 0, batch - 1);
        assert_in_range(t->rows, 1, tile_rows);
        assert_true(t->row0 >= 0 && t->row0 + t->rows <= len[t->seq]);
        /* never across a block boundary */
        assert_int_equal(t->row0 / S, t->block);
        assert_int_equal((t->row0 + t->rows - 1) / S, t->block);
        for (int32_t r = t->row0; r < t->row0 + t->rows; r++) seen[cu[t->seq] + r]++;
        if (i > 0) assert_true(tiles[i - 1].cost >= t->cost);
        /* cost bounds the keys of its rows */
        int64_t keys = 0;
        for (int32_t r = t->row0; r < t->row0 + t->rows; r++)
            keys += moba_schedule_row_cost(&pb, t->seq, r);
        assert_true(t->cost >= keys || !causal);
        assert_true(t->cost > 0);
    }
    for (int32_t i = 0; i < cu[batch]; i++) assert_int_equal(seen[i], 1);
    if (cu[batch] == 0) assert_null(tiles);
    free(seen);
    free(tiles);
}

void test_schedule_tiles(void **state)
{
    (void)state;
    const int32_t a[5] = {100, 0, 37, 1, 64};
    const int32_t b[3] = {0, 0, 0};
    const int32_t tile_rows[4] = {1, 3, 16, 64};
    for (int i = 0; i < 4; i++) {
        check_schedule(a, 5, 16, 3, 1, tile_rows[i]);
        check_schedule(a, 5, 13, 2, 1, tile_rows[i]);
        check_schedule(a, 5, 1, 4, 1, tile_rows[i]);
        check_schedule(a, 5, 200, 3, 1, tile_rows[i]);
        check_schedule(a, 5, 16, 3, 0, tile_rows[i]);
        check_schedule(b, 3, 16, 3, 1, tile_rows[i]);
    }
}
