/* The ranking rule of spec §3 and the top-k helpers of core/gate.h. */
#include <math.h>
#include <stdlib.h>

#include "core/gate.h"
#include "unit.h"

void test_rank_rule(void **state)
{
    (void)state;
    /* larger score first */
    assert_true(moba_gate_better(2.0, 0, 1.0, 5));
    assert_false(moba_gate_better(1.0, 5, 2.0, 0));
    /* ties: the larger (more recent) block index */
    assert_true(moba_gate_better(1.0, 3, 1.0, 2));
    assert_false(moba_gate_better(1.0, 2, 1.0, 3));
    assert_true(moba_gate_better(-0.0, 4, 0.0, 1)); /* -0 == +0 is a tie */
    /* NaN below every number, -inf included */
    assert_false(moba_gate_better(NAN, 9, -1e300, 0));
    assert_true(moba_gate_better(-1e300, 0, NAN, 9));
    assert_true(moba_gate_better(-INFINITY, 0, NAN, 5));
    assert_false(moba_gate_better(NAN, 5, -INFINITY, 0));
    assert_true(moba_gate_better(INFINITY, 0, 1e300, 7));
    /* among NaN, and among -inf, the larger index */
    assert_true(moba_gate_better(NAN, 5, NAN, 3));
    assert_false(moba_gate_better(NAN, 3, NAN, 5));
    assert_true(moba_gate_better(-INFINITY, 1, -INFINITY, 0));
    /* irreflexive */
    assert_false(moba_gate_better(1.5, 2, 1.5, 2));
    assert_false(moba_gate_better(NAN, 2, NAN, 2));
}

/* Index of the best of score[0..n) not yet taken, by brute force. */
static int best_left(const double *s, const char *taken, int n)
{
    int best = -1;
    for (int j = 0; j < n; j++) {
        if (taken[j]) continue;
        if (best < 0) {
            best = j;
            continue;
        }
        /* spelled out independently of moba_gate_better */
        int nj = !isnan(s[j]), nb = !isnan(s[best]);
        int better = nj != nb ? nj : (nj && s[j] != s[best]) ? s[j] > s[best] : j > best;
        if (better) best = j;
    }
    return best;
}

void test_topk_push(void **state)
{
    (void)state;
    static const double pool[] = {1.0, -1.0, 0.5, NAN, -INFINITY, INFINITY, 2.0, 0.0};
    unsigned seed = 12345;
    for (int trial = 0; trial < 2000; trial++) {
        int n = 1 + trial % 23, cap = trial % 9;
        double s[23];
        char taken[23] = {0};
        for (int j = 0; j < n; j++) {
            seed = seed * 1103515245u + 12345u;
            s[j] = pool[(seed >> 16) % 8]; /* many ties, NaN, inf */
        }
        int32_t idx[9];
        double val[9];
        int32_t m = 0;
        for (int j = 0; j < n; j++) moba_topk_push(idx, val, &m, cap, j, s[j]);
        assert_int_equal(m, cap < n ? cap : n);
        for (int i = 0; i < m; i++) {
            int want = best_left(s, taken, n);
            taken[want] = 1;
            assert_int_equal(idx[i], want); /* best first */
            assert_memory_equal(&val[i], &s[want], sizeof(double));
        }
    }
    int32_t idx[1];
    double val[1];
    int32_t m = 0;
    moba_topk_push(idx, val, &m, 0, 3, 1.0);
    assert_int_equal(m, 0);
}

void test_gate_write_row(void **state)
{
    (void)state;
    int32_t row[6];
    const int32_t a[3] = {5, 1, 3};
    moba_gate_write_row(row, 6, a, 3, 7);
    const int32_t ra[6] = {1, 3, 5, 7, -1, -1};
    assert_memory_equal(row, ra, sizeof ra);
    moba_gate_write_row(row, 3, a, 0, 4);
    const int32_t rb[3] = {4, -1, -1};
    assert_memory_equal(row, rb, sizeof rb);
    const int32_t c[2] = {9, 2}; /* non-causal: past and future blocks */
    moba_gate_write_row(row, 4, c, 2, 4);
    const int32_t rc[4] = {2, 4, 9, -1};
    assert_memory_equal(row, rc, sizeof rc);
    const int32_t d[2] = {0, 1};
    moba_gate_write_row(row, 3, d, 2, 2); /* full row, no padding */
    const int32_t rd[3] = {0, 1, 2};
    assert_memory_equal(row, rd, sizeof rd);
}

void test_gate_count(void **state)
{
    (void)state;
    moba_params p = moba_params_default();
    p.top_k = 3;
    assert_int_equal(moba_gate_count(&p, 0, 10), 1);
    assert_int_equal(moba_gate_count(&p, 1, 10), 2);
    assert_int_equal(moba_gate_count(&p, 2, 10), 3);
    assert_int_equal(moba_gate_count(&p, 9, 10), 3);
    p.causal = 0;
    assert_int_equal(moba_gate_count(&p, 0, 2), 2);
    assert_int_equal(moba_gate_count(&p, 0, 10), 3);
    p.top_k = 1;
    assert_int_equal(moba_gate_count(&p, 0, 10), 1);
}
