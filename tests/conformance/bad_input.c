/* Spec §7.6: bad input gets the right status, a message, no crash, and the
 * output buffers stay as they were. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conformance.h"

/* A valid problem with its buffers; each test breaks one thing. */
typedef struct fixture {
    moba_params p;
    int32_t cu[3];
    conf_buf q, k, v, out, lse;
    unsigned char *out0, *lse0; /* contents before any call */
} fixture;

static fixture fx;
static char marker[256];

static void fixture_setup(void)
{
    memset(&fx, 0, sizeof fx);
    fx.p = conf_params(2, 1, 32, 8, 3, MOBA_F32);
    fx.cu[0] = 0;
    fx.cu[1] = 20;
    fx.cu[2] = 33;
    size_t nq = 33 * 2 * 32, nk = 33 * 32;
    float *data = malloc(sizeof *data * nq);
    assert_non_null(data);
    conf_rng r = {900};
    for (size_t i = 0; i < nq; i++) data[i] = conf_rng_value(&r);
    assert_int_equal(conf_buf_input(&fx.q, g_ctx, data, nq * 4), 0);
    assert_int_equal(conf_buf_input(&fx.k, g_ctx, data, nk * 4), 0);
    assert_int_equal(conf_buf_input(&fx.v, g_ctx, data + nk, nk * 4), 0);
    free(data);
    assert_int_equal(conf_buf_output(&fx.out, g_ctx, nq * 4, MOBA_F32), 0);
    assert_int_equal(conf_buf_output(&fx.lse, g_ctx, 33 * 2 * 4, MOBA_F32), 0);
    fx.out0 = malloc(fx.out.total);
    fx.lse0 = malloc(fx.lse.total);
    assert_non_null(fx.out0);
    assert_non_null(fx.lse0);
    memcpy(fx.out0, fx.out.host, fx.out.total);
    memcpy(fx.lse0, fx.lse.host, fx.lse.total);
}

static void fixture_teardown(void)
{
    conf_buf_free(&fx.q);
    conf_buf_free(&fx.k);
    conf_buf_free(&fx.v);
    conf_buf_free(&fx.out);
    conf_buf_free(&fx.lse);
    free(fx.out0);
    free(fx.lse0);
}

/* Leaves a known message behind, so that a call that fails without
 * setting its own is caught. */
static void mark(void)
{
    moba_dtype dt;
    moba_dtype_parse("conformance-marker", &dt);
    snprintf(marker, sizeof marker, "%s", moba_last_error());
}

static int expect(const char *call, moba_status want, moba_status got)
{
    int bad = 0;
    const char *msg = moba_last_error();
    if (got != want) {
        fprintf(stderr, "  %s: got %s (%d), expected %s (%d): %s\n", call,
                moba_status_string(got), (int)got, moba_status_string(want),
                (int)want, msg);
        bad++;
    } else if (!msg[0] || strcmp(msg, marker) == 0) {
        fprintf(stderr, "  %s: %s but no message of its own\n", call,
                moba_status_string(got));
        bad++;
    } else {
        printf("  ok %-60.60s -> %s: %s\n", call, moba_status_string(got), msg);
    }
    if (conf_buf_fetch(&fx.out) || conf_buf_fetch(&fx.lse) ||
        memcmp(fx.out.host, fx.out0, fx.out.total) != 0 ||
        memcmp(fx.lse.host, fx.lse0, fx.lse.total) != 0) {
        fprintf(stderr, "  %s: the output buffers were modified\n", call);
        bad++;
        memcpy(fx.out.host, fx.out0, fx.out.total);
        memcpy(fx.lse.host, fx.lse0, fx.lse.total);
        moba_buffer_write(fx.out.buf, 0, fx.out0, fx.out.total);
        moba_buffer_write(fx.lse.buf, 0, fx.lse0, fx.lse.total);
    }
    return bad;
}

#define EXPECT(want, call) (mark(), expect(#call, (want), (call)))

static moba_status fwd(const moba_params *p, const int32_t *cu, int32_t batch)
{
    return moba_forward(g_ctx, p, cu, batch, fx.q.buf, fx.k.buf, fx.v.buf,
                        fx.out.buf, fx.lse.buf);
}

void test_bad_null(void **state)
{
    (void)state;
    fixture_setup();
    moba_plan *plan = NULL;
    moba_buffer *b = NULL;
    int32_t sel[8];
    moba_device_info info;
    moba_dtype dt;
    const moba_params *p = &fx.p;
    const int32_t *cu = fx.cu;
    const moba_status NP = MOBA_ERR_NULL_POINTER;
    int bad = 0;
    bad += EXPECT(NP, moba_context_create(NULL, g_backend));
    bad += EXPECT(NP, moba_plan_create(NULL, p, cu, 2, &plan));
    bad += EXPECT(NP, moba_plan_create(g_ctx, NULL, cu, 2, &plan));
    bad += EXPECT(NP, moba_plan_create(g_ctx, p, NULL, 2, &plan));
    bad += EXPECT(NP, moba_plan_create(g_ctx, p, cu, 2, NULL));
    bad += EXPECT(NP, moba_forward(NULL, p, cu, 2, fx.q.buf, fx.k.buf, fx.v.buf, fx.out.buf, fx.lse.buf));
    bad += EXPECT(NP, moba_forward(g_ctx, NULL, cu, 2, fx.q.buf, fx.k.buf, fx.v.buf, fx.out.buf, fx.lse.buf));
    bad += EXPECT(NP, moba_forward(g_ctx, p, NULL, 2, fx.q.buf, fx.k.buf, fx.v.buf, fx.out.buf, fx.lse.buf));
    bad += EXPECT(NP, moba_forward(g_ctx, p, cu, 2, NULL, fx.k.buf, fx.v.buf, fx.out.buf, fx.lse.buf));
    bad += EXPECT(NP, moba_forward(g_ctx, p, cu, 2, fx.q.buf, NULL, fx.v.buf, fx.out.buf, fx.lse.buf));
    bad += EXPECT(NP, moba_forward(g_ctx, p, cu, 2, fx.q.buf, fx.k.buf, NULL, fx.out.buf, fx.lse.buf));
    bad += EXPECT(NP, moba_forward(g_ctx, p, cu, 2, fx.q.buf, fx.k.buf, fx.v.buf, NULL, fx.lse.buf));
    bad += EXPECT(NP, moba_plan_gate(NULL, fx.q.buf, fx.k.buf));
    bad += EXPECT(NP, moba_plan_attend(NULL, fx.q.buf, fx.k.buf, fx.v.buf, fx.out.buf, fx.lse.buf));
    bad += EXPECT(NP, moba_plan_read_selection(NULL, sel, 8));
    bad += EXPECT(NP, moba_plan_tokens(NULL, NULL));
    bad += EXPECT(NP, moba_buffer_alloc(NULL, 16, &b));
    bad += EXPECT(NP, moba_buffer_alloc(g_ctx, 16, NULL));
    bad += EXPECT(NP, moba_buffer_wrap(g_ctx, NULL, 16, &b));
    bad += EXPECT(NP, moba_buffer_write(NULL, 0, sel, 4));
    bad += EXPECT(NP, moba_buffer_read(NULL, 0, sel, 4));
    bad += EXPECT(NP, moba_buffer_write(fx.q.buf, 0, NULL, 4));
    bad += EXPECT(NP, moba_backend_count(NULL));
    bad += EXPECT(NP, moba_backend_info_get(0, NULL));
    bad += EXPECT(NP, moba_device_info_get(NULL, 0, &info));
    bad += EXPECT(NP, moba_dtype_parse(NULL, &dt));
    bad += EXPECT(NP, moba_context_synchronize(NULL));
    bad += EXPECT(NP, moba_context_get_num_threads(g_ctx, NULL));
    bad += EXPECT(NP, moba_convert(NULL, MOBA_F16, sel, MOBA_F32, 1));
    assert_int_equal(moba_plan_create(g_ctx, p, cu, 2, &plan), MOBA_OK);
    bad += EXPECT(NP, moba_plan_gate(plan, NULL, fx.k.buf));
    bad += EXPECT(NP, moba_plan_gate(plan, fx.q.buf, NULL));
    bad += EXPECT(NP, moba_plan_read_selection(plan, NULL, 1000));
    assert_int_equal(moba_plan_gate(plan, fx.q.buf, fx.k.buf), MOBA_OK);
    bad += EXPECT(NP, moba_plan_attend(plan, fx.q.buf, fx.k.buf, NULL, fx.out.buf, fx.lse.buf));
    bad += EXPECT(NP, moba_plan_attend(plan, fx.q.buf, fx.k.buf, fx.v.buf, NULL, fx.lse.buf));
    bad += EXPECT(NP, moba_plan_forward(NULL, fx.q.buf, fx.k.buf, fx.v.buf, fx.out.buf, fx.lse.buf));
    bad += EXPECT(NP, moba_plan_forward(plan, NULL, fx.k.buf, fx.v.buf, fx.out.buf, fx.lse.buf));
    bad += EXPECT(NP, moba_plan_forward(plan, fx.q.buf, NULL, fx.v.buf, fx.out.buf, fx.lse.buf));
    bad += EXPECT(NP, moba_plan_forward(plan, fx.q.buf, fx.k.buf, NULL, fx.out.buf, fx.lse.buf));
    bad += EXPECT(NP, moba_plan_forward(plan, fx.q.buf, fx.k.buf, fx.v.buf, NULL, fx.lse.buf));
    moba_plan_destroy(plan);
    fixture_teardown();
    assert_int_equal(bad, 0);
}

void test_bad_params(void **state)
{
    (void)state;
    fixture_setup();
    const moba_status IA = MOBA_ERR_INVALID_ARGUMENT;
    static const int32_t vals[] = {0, -1, INT32_MIN};
    int bad = 0;
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        moba_params p;
        p = fx.p, p.head_dim = vals[i];
        bad += EXPECT(IA, fwd(&p, fx.cu, 2));
        p = fx.p, p.block_size = vals[i];
        bad += EXPECT(IA, fwd(&p, fx.cu, 2));
        p = fx.p, p.top_k = vals[i];
        bad += EXPECT(IA, fwd(&p, fx.cu, 2));
        p = fx.p, p.num_q_heads = vals[i];
        bad += EXPECT(IA, fwd(&p, fx.cu, 2));
        p = fx.p, p.num_kv_heads = vals[i];
        bad += EXPECT(IA, fwd(&p, fx.cu, 2));
    }
    moba_params p = fx.p;
    p.num_q_heads = 3, p.num_kv_heads = 2; /* Hq % Hk != 0 */
    bad += EXPECT(IA, fwd(&p, fx.cu, 2));
    p = fx.p, p.num_q_heads = 1, p.num_kv_heads = 2;
    bad += EXPECT(IA, fwd(&p, fx.cu, 2));
    p = fx.p, p.dtype = (moba_dtype)7;
    bad += EXPECT(IA, fwd(&p, fx.cu, 2));
    p = fx.p, p.dtype = (moba_dtype)-1;
    bad += EXPECT(IA, fwd(&p, fx.cu, 2));
    p = fx.p, p.softmax_scale = -1.0f;
    bad += EXPECT(IA, fwd(&p, fx.cu, 2));
    p = fx.p, p.softmax_scale = NAN;
    bad += EXPECT(IA, fwd(&p, fx.cu, 2));
    p = fx.p, p.softmax_scale = INFINITY;
    bad += EXPECT(IA, fwd(&p, fx.cu, 2));
    p = fx.p, p.causal = 2;
    bad += EXPECT(IA, fwd(&p, fx.cu, 2));
    fixture_teardown();
    assert_int_equal(bad, 0);
}

void test_bad_seqlens(void **state)
{
    (void)state;
    fixture_setup();
    const moba_status IA = MOBA_ERR_INVALID_ARGUMENT;
    int32_t first[3] = {1, 20, 33}, decr[3] = {0, 20, 10}, neg[3] = {0, -5, 33};
    int32_t beyond[3] = {0, 20, 1000};
    int bad = 0;
    bad += EXPECT(IA, fwd(&fx.p, first, 2));
    bad += EXPECT(IA, fwd(&fx.p, decr, 2));
    bad += EXPECT(IA, fwd(&fx.p, neg, 2));
    bad += EXPECT(IA, fwd(&fx.p, fx.cu, 0));
    bad += EXPECT(IA, fwd(&fx.p, fx.cu, -1));
    bad += EXPECT(IA, fwd(&fx.p, fx.cu, INT32_MIN));
    /* more tokens than the buffers hold */
    bad += EXPECT(MOBA_ERR_BUFFER_TOO_SMALL, fwd(&fx.p, beyond, 2));
    fixture_teardown();
    assert_int_equal(bad, 0);
}

void test_bad_overflow(void **state)
{
    (void)state;
    fixture_setup();
    const moba_status OV = MOBA_ERR_OVERFLOW;
    int32_t huge[2] = {0, INT32_MAX};
    moba_plan *plan = NULL;
    int bad = 0;
    moba_params p = fx.p;
    p.num_q_heads = p.num_kv_heads = 1 << 30, p.head_dim = 1 << 30;
    bad += EXPECT(OV, moba_plan_create(g_ctx, &p, huge, 1, &plan));
    bad += EXPECT(OV, fwd(&p, huge, 1));
    p = fx.p, p.num_q_heads = 1, p.num_kv_heads = 1, p.head_dim = 1 << 26;
    bad += EXPECT(OV, moba_plan_create(g_ctx, &p, huge, 1, &plan));
    p = fx.p, p.num_q_heads = 1, p.num_kv_heads = 1, p.head_dim = 1, p.top_k = INT32_MAX;
    bad += EXPECT(OV, moba_plan_create(g_ctx, &p, huge, 1, &plan));
    p = fx.p, p.num_q_heads = INT32_MAX, p.num_kv_heads = 1;
    bad += EXPECT(OV, fwd(&p, huge, 1));
    assert_null(plan);
    fixture_teardown();
    assert_int_equal(bad, 0);
}

/* A head dim the device does not list (0 if it takes every one). */
static int32_t unlisted_head_dim(void)
{
    if (g_dev.num_head_dims == 0) return g_dev.head_dim_max + 1;
    for (int32_t d = 1;; d++) {
        int listed = 0;
        for (int i = 0; i < g_dev.num_head_dims; i++) listed |= g_dev.head_dims[i] == d;
        if (!listed) return d;
    }
}

void test_bad_unsupported(void **state)
{
    (void)state;
    fixture_setup();
    const moba_status UN = MOBA_ERR_UNSUPPORTED;
    moba_plan *plan = NULL;
    int bad = 0;
    moba_params p = fx.p;
    p.head_dim = unlisted_head_dim();
    printf("  unlisted head_dim: %d\n", (int)p.head_dim);
    bad += EXPECT(UN, moba_plan_create(g_ctx, &p, fx.cu, 2, &plan));
    bad += EXPECT(UN, fwd(&p, fx.cu, 2));
    for (int d = MOBA_F32; d <= MOBA_BF16; d++)
        if (!(g_dev.dtypes & MOBA_DTYPE_BIT(d))) {
            p = fx.p, p.dtype = (moba_dtype)d;
            printf("  unlisted dtype: %s\n", moba_dtype_name(p.dtype));
            bad += EXPECT(UN, moba_plan_create(g_ctx, &p, fx.cu, 2, &plan));
        }
    assert_null(plan);
    fixture_teardown();
    assert_int_equal(bad, 0);
}

void test_bad_buffers(void **state)
{
    (void)state;
    fixture_setup();
    const moba_status TS = MOBA_ERR_BUFFER_TOO_SMALL;
    struct { moba_buffer *buf; } sq = {0}, sk = {0}, so = {0}, sl = {0};
    moba_buffer *zero = NULL;
    /* one byte short of what the problem needs */
    assert_int_equal(moba_buffer_alloc(g_ctx, fx.q.need - 1, &sq.buf), MOBA_OK);
    assert_int_equal(moba_buffer_alloc(g_ctx, fx.k.need - 1, &sk.buf), MOBA_OK);
    assert_int_equal(moba_buffer_alloc(g_ctx, fx.out.need - 1, &so.buf), MOBA_OK);
    assert_int_equal(moba_buffer_alloc(g_ctx, fx.lse.need - 1, &sl.buf), MOBA_OK);
    const int32_t *cu = fx.cu;
    const moba_params *p = &fx.p;
    int32_t sel[4];
    moba_plan *plan = NULL;
    int bad = 0;
    bad += EXPECT(TS, moba_forward(g_ctx, p, cu, 2, sq.buf, fx.k.buf, fx.v.buf, fx.out.buf, fx.lse.buf));
    bad += EXPECT(TS, moba_forward(g_ctx, p, cu, 2, fx.q.buf, sk.buf, fx.v.buf, fx.out.buf, fx.lse.buf));
    bad += EXPECT(TS, moba_forward(g_ctx, p, cu, 2, fx.q.buf, fx.k.buf, sk.buf, fx.out.buf, fx.lse.buf));
    bad += EXPECT(TS, moba_forward(g_ctx, p, cu, 2, fx.q.buf, fx.k.buf, fx.v.buf, so.buf, fx.lse.buf));
    bad += EXPECT(TS, moba_forward(g_ctx, p, cu, 2, fx.q.buf, fx.k.buf, fx.v.buf, fx.out.buf, sl.buf));
    bad += EXPECT(TS, moba_buffer_write(fx.q.buf, fx.q.total - 3, sel, 4));
    bad += EXPECT(TS, moba_buffer_read(fx.q.buf, fx.q.total + 1, sel, 0));
    bad += EXPECT(TS, moba_buffer_read(fx.q.buf, SIZE_MAX, sel, 4));
    bad += EXPECT(MOBA_ERR_INVALID_ARGUMENT, moba_buffer_alloc(g_ctx, 0, &zero));
    assert_null(zero);
    assert_int_equal(moba_plan_create(g_ctx, p, cu, 2, &plan), MOBA_OK);
    assert_int_equal(moba_plan_gate(plan, fx.q.buf, fx.k.buf), MOBA_OK);
    bad += EXPECT(TS, moba_plan_read_selection(plan, sel, 4));
    moba_plan_destroy(plan);
    moba_buffer_free(sq.buf);
    moba_buffer_free(sk.buf);
    moba_buffer_free(so.buf);
    moba_buffer_free(sl.buf);
    fixture_teardown();
    assert_int_equal(bad, 0);
}

void test_bad_wrong_context(void **state)
{
    (void)state;
    fixture_setup();
    const moba_status WC = MOBA_ERR_WRONG_CONTEXT;
    moba_context *other = NULL;
    assert_int_equal(moba_context_create(&other, g_backend), MOBA_OK);
    conf_buf oq = {0}, oo = {0};
    assert_int_equal(conf_buf_input(&oq, other, fx.q.host, fx.q.need), 0);
    assert_int_equal(conf_buf_output(&oo, other, fx.out.need, MOBA_F32), 0);
    unsigned char *oo0 = malloc(oo.total);
    assert_non_null(oo0);
    memcpy(oo0, oo.host, oo.total);
    const int32_t *cu = fx.cu;
    const moba_params *p = &fx.p;
    moba_plan *plan = NULL;
    int bad = 0;
    bad += EXPECT(WC, moba_forward(g_ctx, p, cu, 2, oq.buf, fx.k.buf, fx.v.buf, fx.out.buf, fx.lse.buf));
    bad += EXPECT(WC, moba_forward(g_ctx, p, cu, 2, fx.q.buf, fx.k.buf, fx.v.buf, oo.buf, fx.lse.buf));
    assert_int_equal(moba_plan_create(g_ctx, p, cu, 2, &plan), MOBA_OK);
    bad += EXPECT(WC, moba_plan_gate(plan, oq.buf, fx.k.buf));
    assert_int_equal(moba_plan_gate(plan, fx.q.buf, fx.k.buf), MOBA_OK);
    bad += EXPECT(WC, moba_plan_attend(plan, fx.q.buf, fx.k.buf, fx.v.buf, oo.buf, NULL));
    moba_plan_destroy(plan);
    if (conf_buf_fetch(&oo) || memcmp(oo.host, oo0, oo.total) != 0) {
        fprintf(stderr, "  the other context's output buffer was modified\n");
        bad++;
    }
    free(oo0);
    conf_buf_free(&oq);
    conf_buf_free(&oo);
    moba_context_destroy(other);
    fixture_teardown();
    assert_int_equal(bad, 0);
}

void test_bad_order(void **state)
{
    (void)state;
    fixture_setup();
    const moba_status IA = MOBA_ERR_INVALID_ARGUMENT;
    moba_plan *plan = NULL;
    int32_t sel[33 * 2 * 3];
    int bad = 0;
    assert_int_equal(moba_plan_create(g_ctx, &fx.p, fx.cu, 2, &plan), MOBA_OK);
    bad += EXPECT(IA, moba_plan_attend(plan, fx.q.buf, fx.k.buf, fx.v.buf, fx.out.buf, fx.lse.buf));
    bad += EXPECT(IA, moba_plan_read_selection(plan, sel, sizeof sel / sizeof sel[0]));
    moba_plan_destroy(plan);
    fixture_teardown();
    assert_int_equal(bad, 0);
}

void test_bad_backend(void **state)
{
    (void)state;
    fixture_setup();
    const moba_status BU = MOBA_ERR_BACKEND_UNAVAILABLE;
    moba_context *c = NULL;
    char name[64];
    int bad = 0;
    bad += EXPECT(BU, moba_context_create(&c, "nosuch"));
    bad += EXPECT(BU, moba_context_create(&c, "cuda:99"));
    snprintf(name, sizeof name, "%s:99", g_backend);
    bad += EXPECT(BU, moba_context_create(&c, name));
    bad += EXPECT(BU, moba_context_create(&c, ""));
    snprintf(name, sizeof name, "%s:x", g_backend);
    bad += EXPECT(MOBA_ERR_INVALID_ARGUMENT, moba_context_create(&c, name));
    snprintf(name, sizeof name, "%s:-1", g_backend);
    bad += EXPECT(MOBA_ERR_INVALID_ARGUMENT, moba_context_create(&c, name));
    const char *saved = getenv("MOBA_BACKEND");
    char *keep = saved ? strdup(saved) : NULL;
    setenv("MOBA_BACKEND", "bogus", 1);
    bad += EXPECT(BU, moba_context_create(&c, NULL));
    if (keep) {
        setenv("MOBA_BACKEND", keep, 1);
        free(keep);
    } else {
        unsetenv("MOBA_BACKEND");
    }
    assert_null(c);
    fixture_teardown();
    assert_int_equal(bad, 0);
}
