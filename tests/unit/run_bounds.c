/* The CUDA backend's runs of key-centric tiles (backends/cuda/run_bounds.h,
 * applied on the device by k_runs): on random list layouts, empty lists
 * included, the runs cover every tile exactly once, a list of at most
 * `chunk` tiles lies in one run (its K/V block is loaded once), a longer
 * one is cut only at chunk boundaries, a run's list is the list of its
 * first tile, and only the last run can be empty. */
#include <stdlib.h>

#include "backends/cuda/run_bounds.h"
#include "unit.h"

/* A layout of n lists with lengths 0 .. maxlen (a quarter empty). */
static int make_layout(int32_t *off, int n, int maxlen, unsigned *seed)
{
    off[0] = 0;
    for (int l = 0; l < n; l++) {
        const int r = (int)(rand_r(seed) % 4u);
        const int len = r == 0 ? 0 : 1 + (int)(rand_r(seed) % (unsigned)maxlen);
        off[l + 1] = off[l] + len;
    }
    return off[n];
}

static void check_layout(const int32_t *off, int n, int chunk, int grid)
{
    const int total = off[n];
    const int c = gpu_run_chunk(chunk, total, grid);
    const int runs = gpu_run_count(c, total);
    if (chunk == 0 && grid > 0) assert_true(runs <= grid);
    int *beg = malloc(sizeof(int) * (size_t)(runs + 1));
    assert_non_null(beg);
    for (int r = 0; r <= runs; r++) {
        int lst = -1;
        beg[r] = gpu_run_begin(off, n, c, r, &lst);
        if (beg[r] < total) {
            assert_true(off[lst] <= beg[r] && beg[r] < off[lst + 1]);
        } else {
            assert_int_equal(beg[r], total);
            assert_int_equal(lst, 0);
        }
    }
    /* Past the last run a chunk begins at total: the counter's overshoot. */
    int lst = -1;
    assert_int_equal(gpu_run_begin(off, n, c, runs + 3, &lst), total);
    assert_int_equal(beg[0], 0);
    assert_int_equal(beg[runs], total);
    for (int r = 0; r < runs; r++) {
        /* Contiguous runs, so every tile is in exactly one; empty only
         * at the end; never longer than 2 chunk - 1 tiles. */
        assert_true(beg[r] <= beg[r + 1]);
        if (r + 1 < runs) assert_true(beg[r] < beg[r + 1]);
        assert_true(beg[r + 1] - beg[r] <= 2 * c - 1);
        assert_true(beg[r] >= r * c);
    }
    int r = 0;
    for (int l = 0; l < n; l++) {
        const int s = off[l], e = off[l + 1];
        for (int t = s; t < e; t++) {
            while (beg[r + 1] <= t) r++;
            /* The chunk that owns tile t. */
            const int own = e - s <= c ? s / c : t / c;
            assert_int_equal(r, own);
        }
    }
    free(beg);
}

void test_run_bounds(void **state)
{
    (void)state;
    unsigned seed = 12345u;
    int32_t off[402];
    for (int it = 0; it < 300; it++) {
        const int n = 1 + (int)(rand_r(&seed) % 400u);
        const int maxlen = 1 + (int)(rand_r(&seed) % 48u);
        make_layout(off, n, maxlen, &seed);
        static const int chunks[] = {1, 2, 3, 4, 8, 16, 17, 64};
        for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) check_layout(off, n, chunks[i], 0);
        check_layout(off, n, 0, 1);
        check_layout(off, n, 0, 7);
        check_layout(off, n, 0, 396);
    }
    /* Hand cases, chunk 4: lists of 3 | 5 | 0 | 2 | 6 | 1 tiles.  Tiles
     * 0-2 (list 0), 3-7 (1, long), 8-9 (3), 10-15 (4, long), 16 (5). */
    const int32_t hand[] = {0, 3, 8, 8, 10, 16, 17};
    const int want[] = {0, 4, 8, 12, 16, 17}; /* runs 0..4, then total */
    const int want_lst[] = {0, 1, 3, 4, 5, 0};
    for (int c = 0; c <= 5; c++) {
        int lst = -1;
        assert_int_equal(gpu_run_begin(hand, 6, 4, c, &lst), want[c]);
        assert_int_equal(lst, want_lst[c]);
    }
    /* Chunk 4 again, a short list straddling chunks 0 and 1 (tiles 2-4),
     * then one straddling 1 and 2 (tiles 5-8): run 0 is 0-4, run 1 5-8,
     * run 2 9 only. */
    const int32_t hand2[] = {0, 2, 5, 9, 10};
    const int want2[] = {0, 5, 9, 10};
    for (int c = 0; c <= 3; c++) {
        int lst = -1;
        assert_int_equal(gpu_run_begin(hand2, 4, 4, c, &lst), want2[c]);
    }
    check_layout(hand, 6, 4, 0);
    check_layout(hand2, 4, 4, 0);
}
