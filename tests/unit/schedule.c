/* moba_schedule_tiles: tiles stay inside one block, cover every row once,
 * and come longest first.  moba_schedule_kv_lists: every selection entry
 * lands once in its (block, kv head) list, lists ordered by token then head. */
#include <stdlib.h>
#include <string.h>

#include "core/schedule.h"
#include "unit.h"

/* Fills pb from sequence lengths (seqs and cu have room for batch). */
static void make_problem(moba_problem *pb_out, moba_seq *seqs, int32_t *cu,
                         const int32_t *len, int32_t batch, int32_t S,
                         int32_t top_k, int32_t causal)
{
    moba_problem pb;
    memset(&pb, 0, sizeof pb);
    cu[0] = 0;
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
    *pb_out = pb;
}

static void check_schedule(const int32_t *len, int32_t batch, int32_t S,
                           int32_t top_k, int32_t causal, int32_t tile_rows)
{
    moba_seq seqs[8];
    int32_t cu[9] = {0};
    moba_problem pb;
    make_problem(&pb, seqs, cu, len, batch, S, top_k, causal);

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

void test_schedule_kv_lists(void **state)
{
    (void)state;
    const int32_t len[4] = {70, 0, 33, 5};
    const int32_t S = 8, K = 3, Hq = 4, Hk = 2;
    moba_seq seqs[4];
    int32_t cu[5];
    moba_problem pb;
    make_problem(&pb, seqs, cu, len, 4, S, K, 1);
    pb.p.num_q_heads = Hq;
    pb.p.num_kv_heads = Hk;
    pb.group = Hq / Hk;
    const int64_t T = pb.total_tokens;
    int32_t *sel = malloc(sizeof *sel * (size_t)(T * Hq * K));
    assert_non_null(sel);
    /* A valid selection that differs per token and head: own block b plus
     * up to K-1 distinct past blocks, ascending, -1 padded. */
    int64_t valid = 0;
    for (int32_t s = 0; s < 4; s++)
        for (int32_t r = 0; r < len[s]; r++)
            for (int32_t h = 0; h < Hq; h++) {
                int32_t b = r / S, *row = sel + ((cu[s] + r) * Hq + h) * K, n = 0;
                if (b >= 2) row[n++] = (r + h) % (b - 1);       /* in [0, b-2] */
                if (b >= 1) row[n++] = b - 1;
                row[n++] = b;
                valid += n;
                for (int32_t i = n; i < K; i++) row[i] = -1;
            }
    moba_kv_lists l;
    assert_int_equal(moba_schedule_kv_lists(&pb, sel, &l), MOBA_OK);
    assert_int_equal(l.nlists, pb.total_blocks * Hk);
    assert_int_equal(l.offsets[0], 0);
    assert_int_equal(l.offsets[l.nlists], valid);
    char *hit = calloc((size_t)(T * Hq * K), 1);
    assert_non_null(hit);
    for (int32_t s = 0; s < 4; s++)
        for (int32_t j = 0; j < seqs[s].nb; j++)
            for (int32_t kh = 0; kh < Hk; kh++) {
                int64_t li = (seqs[s].block_offset + j) * Hk + kh;
                for (int64_t e = l.offsets[li]; e < l.offsets[li + 1]; e++) {
                    int32_t t = l.token[e], h = l.head[e], i = l.slot[e];
                    assert_in_range(t, cu[s], cu[s + 1] - 1);
                    assert_int_equal(h / pb.group, kh);
                    assert_int_equal(sel[((int64_t)t * Hq + h) * K + i], j);
                    assert_int_equal(hit[((int64_t)t * Hq + h) * K + i]++, 0);
                    if (e > l.offsets[li])
                        assert_true(l.token[e - 1] < t ||
                                    (l.token[e - 1] == t && l.head[e - 1] < h));
                }
            }
    for (int64_t x = 0; x < T * Hq * K; x++) assert_int_equal(hit[x], sel[x] >= 0);
    free(hit);
    moba_kv_lists_free(&l);
    free(sel);
}
