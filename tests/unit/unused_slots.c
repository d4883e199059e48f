/* The CUDA backend's partial slots that no forward writes
 * (backends/cuda/unused_slots.h, zeroed by gpu_plan_create): on random
 * inputs, causal and not, the rows whose reference selection has fewer
 * than top_k blocks are exactly each sequence's first gpu_unused_rows
 * tokens. */
#include <stdlib.h>

#include "backends/cuda/unused_slots.h"
#include "moba/reference.h"
#include "unit.h"

enum { D = 4, MAXT = 700 };

static void check_case(const int32_t *lens, int batch, int S, int K, int causal, unsigned *seed)
{
    static float q[MAXT * D], k[MAXT * D];
    static int32_t sel[MAXT * 16];
    int32_t cu[8] = {0};
    for (int s = 0; s < batch; s++) cu[s + 1] = cu[s] + lens[s];
    const int T = cu[batch];
    assert_true(T <= MAXT && K <= 16);
    for (int i = 0; i < T * D; i++) {
        q[i] = (float)rand_r(seed) / (float)RAND_MAX - 0.5f;
        k[i] = (float)rand_r(seed) / (float)RAND_MAX - 0.5f;
    }
    moba_params p = moba_params_default();
    p.head_dim = D;
    p.block_size = S;
    p.top_k = K;
    p.causal = causal;
    assert_int_equal(moba_reference_select(&p, cu, batch, q, k, sel, NULL, NULL), MOBA_OK);
    for (int s = 0; s < batch; s++) {
        const int64_t n = gpu_unused_rows(lens[s], S, K, causal);
        for (int t = cu[s]; t < cu[s + 1]; t++) {
            int picks = 0;
            for (int i = 0; i < K; i++) picks += sel[t * K + i] >= 0;
            /* a slot unused: fewer than K picks, so fewer than K - 1 partials */
            assert_int_equal(picks < K, t - cu[s] < n);
        }
    }
}

void test_unused_slots(void **state)
{
    (void)state;
    unsigned seed = 7;
    /* a zero-length sequence, one shorter than a block, lengths that are
     * not multiples of S, and long enough for every row past the first
     * K - 1 blocks to have K picks */
    const int32_t lens[4] = {300, 0, 37, 250};
    const int blocks[3] = {1, 16, 50}, topks[4] = {1, 2, 5, 9};
    for (int c = 0; c < 2; c++)
        for (int b = 0; b < 3; b++)
            for (int j = 0; j < 4; j++) check_case(lens, 4, blocks[b], topks[j], c, &seed);
    assert_int_equal(gpu_unused_rows(131072, 128, 8, 1), 7 * 128);
    assert_int_equal(gpu_unused_rows(100, 128, 8, 1), 100);
    assert_int_equal(gpu_unused_rows(800, 128, 8, 0), 800);
    assert_int_equal(gpu_unused_rows(1000, 128, 8, 1), 896);
    assert_int_equal(gpu_unused_rows(1100, 128, 8, 0), 0);
    assert_int_equal(gpu_unused_rows(5000, 64, 1, 1), 0);
}
