/* moba_plan_gate called again on one plan with new q/k: the plan must
 * carry nothing over from the first inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "conformance.h"

typedef struct inputs {
    void *host[3];
    conf_buf buf[3];
} inputs;

static int make_inputs(inputs *in, const moba_params *p, int64_t T,
                       uint64_t seed)
{
    size_t n[3] = {(size_t)T * p->num_q_heads * p->head_dim,
                   (size_t)T * p->num_kv_heads * p->head_dim,
                   (size_t)T * p->num_kv_heads * p->head_dim};
    conf_rng r = {seed};
    for (int i = 0; i < 3; i++) {
        float *f = malloc(sizeof *f * n[i]);
        if (!f) return -1;
        for (size_t j = 0; j < n[i]; j++) f[j] = conf_rng_value(&r);
        in->host[i] = conf_to_storage(f, n[i], p->dtype);
        free(f);
        if (!in->host[i] ||
            conf_buf_input(&in->buf[i], g_ctx, in->host[i],
                           n[i] * moba_dtype_size(p->dtype)))
            return -1;
    }
    return 0;
}

static void free_inputs(inputs *in)
{
    for (int i = 0; i < 3; i++) {
        conf_buf_free(&in->buf[i]);
        free(in->host[i]);
    }
}

/* Gate + attend on `plan` with `in`, checked against the reference. */
static int gate_attend_check(const char *name, moba_plan *plan,
                             const moba_params *p, const int32_t *cu,
                             int32_t batch, inputs *in)
{
    int64_t T = cu[batch];
    size_t rows = (size_t)T * p->num_q_heads, n = rows * p->head_dim;
    size_t entries = rows * p->top_k;
    int32_t *sel = malloc(sizeof *sel * entries);
    int32_t *ref = malloc(sizeof *ref * entries);
    double *margin = malloc(sizeof *margin * rows);
    double *mscale = malloc(sizeof *mscale * rows);
    double *ro = malloc(sizeof *ro * n), *rl = malloc(sizeof *rl * rows);
    conf_buf out = {0}, lse = {0};
    int bad = 0;
    moba_status st;
    if (!sel || !ref || !margin || !mscale || !ro || !rl ||
        conf_buf_output(&out, g_ctx, n * moba_dtype_size(p->dtype), p->dtype) ||
        conf_buf_output(&lse, g_ctx, rows * sizeof(float), MOBA_F32)) {
        bad = 1;
        goto done;
    }
    if ((st = moba_plan_gate(plan, in->buf[0].buf, in->buf[1].buf)) ||
        (st = moba_plan_read_selection(plan, sel, entries)) ||
        (st = moba_plan_attend(plan, in->buf[0].buf, in->buf[1].buf,
                               in->buf[2].buf, out.buf, lse.buf))) {
        fprintf(stderr, "  [%s] %s: %s\n", name, moba_status_string(st),
                moba_last_error());
        bad = 1;
        goto done;
    }
    if (conf_buf_fetch(&out) || conf_buf_fetch(&lse)) {
        fprintf(stderr, "  [%s] write outside the outputs\n", name);
        bad++;
    }
    bad += conf_check_selection_valid(name, p, cu, batch, sel);
    if ((st = moba_reference_select(p, cu, batch, in->host[0], in->host[1], ref,
                                    margin, mscale)) ||
        (st = moba_reference_attend(p, cu, batch, in->host[0], in->host[1],
                                    in->host[2], sel, ro, rl))) {
        fprintf(stderr, "  [%s] reference: %s\n", name, moba_last_error());
        bad++;
        goto done;
    }
    double atol, rtol;
    conf_tolerance(p->dtype, &atol, &rtol);
    bad += conf_check_selection_ref(name, p, cu, batch, sel, ref, margin, mscale, 0);
    bad += conf_check_written(name, "out", out.host, n, p->dtype);
    bad += conf_compare(name, "out", out.host, p->dtype, ro, T, p->num_q_heads,
                        p->head_dim, atol, rtol);
    bad += conf_compare(name, "lse", lse.host, MOBA_F32, rl, T, p->num_q_heads,
                        1, atol, rtol);
done:
    conf_buf_free(&out);
    conf_buf_free(&lse);
    free(sel);
    free(ref);
    free(margin);
    free(mscale);
    free(ro);
    free(rl);
    return bad;
}

void test_plan_reuse(void **state)
{
    (void)state;
    static const moba_dtype dts[] = {MOBA_F32, MOBA_BF16};
    int32_t cu[3] = {0, conf_scaled(150, 40), 0};
    cu[2] = cu[1] + 45;
    int bad = 0;
    for (size_t i = 0; i < 2; i++) {
        moba_params p = conf_params(4, 2, 64, 16, 3, dts[i]);
        inputs a = {0}, b = {0};
        moba_plan *plan = NULL;
        moba_status st = moba_plan_create(g_ctx, &p, cu, 2, &plan);
        if (st) {
            fprintf(stderr, "  plan reuse %s: plan_create: %s\n",
                    moba_dtype_name(dts[i]), moba_last_error());
            bad++;
            continue;
        }
        if (make_inputs(&a, &p, cu[2], 500 + i) || make_inputs(&b, &p, cu[2], 510 + i)) {
            bad++;
        } else {
            char name[64];
            snprintf(name, sizeof name, "plan reuse %s, first inputs", moba_dtype_name(dts[i]));
            bad += gate_attend_check(name, plan, &p, cu, 2, &a);
            snprintf(name, sizeof name, "plan reuse %s, second inputs", moba_dtype_name(dts[i]));
            bad += gate_attend_check(name, plan, &p, cu, 2, &b);
            snprintf(name, sizeof name, "plan reuse %s, first again", moba_dtype_name(dts[i]));
            bad += gate_attend_check(name, plan, &p, cu, 2, &a);
        }
        free_inputs(&a);
        free_inputs(&b);
        moba_plan_destroy(plan);
    }
    assert_int_equal(bad, 0);
}
