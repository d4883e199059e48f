/* The double-precision reference on a case small enough to work out by
 * hand: 1 head, D = 2, S = 2, 6 tokens (3 blocks), top_k = 2. */
#include <math.h>
#include <string.h>

#include "moba/reference.h"
#include "unit.h"

static const float K[6][2] = {{1, 0}, {1, 2}, {2, 0}, {2, -2}, {0, 1}, {1, 1}};
static const float V[6][2] = {{1, 2}, {-1, 0.5f}, {3, 1}, {0.5f, -2}, {2, 2}, {-1, -1}};
static const float Q[6][2] = {{1, 1}, {-1, 1}, {1, -1}, {0.5f, 2}, {0, 1}, {2, 1}};
static const int32_t CU[2] = {0, 6};

/* Centroids: block 0 = (1, 1), block 1 = (2, -1).
 *   t0, t1 (block 0): own block only.
 *   t2, t3 (block 1): the one past block 0 as well.
 *   t4: q.c0 = 1 > q.c1 = -1  -> blocks {0, 2}.
 *   t5: q.c0 = 3 = q.c1 = 3   -> tie, the larger index: {1, 2}. */
static const int32_t SEL[6][2] = {{0, -1}, {0, -1}, {0, 1}, {0, 1}, {0, 2}, {1, 2}};
/* Keys each token attends: selected blocks, causal inside its own. */
static const int KEYS[6][5] = {{0, -1}, {0, 1, -1}, {0, 1, 2, -1}, {0, 1, 2, 3, -1},
                               {0, 1, 4, -1}, {2, 3, 4, 5, -1}};

static moba_params hand_params(void)
{
    moba_params p = moba_params_default();
    p.head_dim = 2;
    p.block_size = 2;
    p.top_k = 2;
    return p;
}

void test_reference_hand(void **state)
{
    (void)state;
    moba_params p = hand_params();
    int32_t sel[12];
    double margin[6], mscale[6];
    assert_int_equal(moba_reference_select(&p, CU, 1, Q, K, sel, margin, mscale), MOBA_OK);
    assert_memory_equal(sel, SEL, sizeof sel);
    /* margins: the worst selected past score minus the best unselected */
    assert_true(isinf(margin[0]) && isinf(margin[1]) && isinf(margin[2]) && isinf(margin[3]));
    assert_true(fabs(margin[4] - 2.0) < 1e-12 && fabs(mscale[4] - 1.0) < 1e-12);
    assert_true(margin[5] == 0.0 && fabs(mscale[5] - 3.0) < 1e-12);

    double out[12], lse[6];
    assert_int_equal(moba_reference_attend(&p, CU, 1, Q, K, V, sel, out, lse), MOBA_OK);
    /* softmax_scale is a float parameter: 1/sqrt(D) rounded to f32 */
    const double scale = (double)(float)(1.0 / sqrt(2.0));
    for (int t = 0; t < 6; t++) {
        double w[5], sum = 0.0, o[2] = {0, 0};
        int n = 0;
        for (; KEYS[t][n] >= 0; n++) {
            int u = KEYS[t][n];
            w[n] = exp(scale * (Q[t][0] * K[u][0] + Q[t][1] * K[u][1]));
            sum += w[n];
        }
        for (int i = 0; i < n; i++) {
            o[0] += w[i] / sum * V[KEYS[t][i]][0];
            o[1] += w[i] / sum * V[KEYS[t][i]][1];
        }
        assert_true(fabs(out[2 * t] - o[0]) < 1e-12);
        assert_true(fabs(out[2 * t + 1] - o[1]) < 1e-12);
        assert_true(fabs(lse[t] - log(sum)) < 1e-12);
    }
    /* t0 sees only itself */
    assert_true(out[0] == 1.0 && out[1] == 2.0);
    assert_true(fabs(lse[0] - scale) < 1e-15);
    /* lse is optional */
    assert_int_equal(moba_reference_attend(&p, CU, 1, Q, K, V, sel, out, NULL), MOBA_OK);

    /* top_k = 1: block-local causal attention */
    p.top_k = 1;
    int32_t sel1[6];
    assert_int_equal(moba_reference_select(&p, CU, 1, Q, K, sel1, NULL, NULL), MOBA_OK);
    const int32_t want1[6] = {0, 0, 1, 1, 2, 2};
    assert_memory_equal(sel1, want1, sizeof want1);
}

void test_reference_rejects(void **state)
{
    (void)state;
    moba_params p = hand_params();
    double out[12];
    int32_t sel[12];
    memcpy(sel, SEL, sizeof sel);
    sel[2 * 1 + 1] = 1; /* t1 (block 0) reads future block 1 */
    assert_int_equal(moba_reference_attend(&p, CU, 1, Q, K, V, sel, out, NULL),
                     MOBA_ERR_INVALID_ARGUMENT);
    memcpy(sel, SEL, sizeof sel);
    sel[2 * 4 + 1] = 1; /* t4 without its own block 2 */
    assert_int_equal(moba_reference_attend(&p, CU, 1, Q, K, V, sel, out, NULL),
                     MOBA_ERR_INVALID_ARGUMENT);
    memcpy(sel, SEL, sizeof sel);
    sel[2 * 5] = 2; /* t5: duplicate */
    assert_int_equal(moba_reference_attend(&p, CU, 1, Q, K, V, sel, out, NULL),
                     MOBA_ERR_INVALID_ARGUMENT);
    memcpy(sel, SEL, sizeof sel);
    sel[2 * 2 + 1] = -1; /* t2: one block short */
    assert_int_equal(moba_reference_attend(&p, CU, 1, Q, K, V, sel, out, NULL),
                     MOBA_ERR_INVALID_ARGUMENT);
    assert_true(moba_last_error()[0] != '\0');
}
