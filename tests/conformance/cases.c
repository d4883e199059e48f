/* One case through the public API: upload, plan, gate, read the selection,
 * attend, read back, then every check of spec §7 against the reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

moba_params conf_params(int32_t hq, int32_t hk, int32_t d, int32_t s,
                        int32_t top_k, moba_dtype dt)
{
    moba_params p = moba_params_default();
    p.num_q_heads = hq;
    p.num_kv_heads = hk;
    p.head_dim = d;
    p.block_size = s;
    p.top_k = top_k;
    p.dtype = dt;
    return p;
}

/* One backend run: plan, gate, selection, attention, everything read back. */
typedef struct run_out {
    int32_t *sel; /* entries + guard */
    conf_buf out, lse;
} run_out;

#define SEL_GUARD 16
#define SEL_SENTINEL ((int32_t)0x7a5a5a5a)

static void run_free(run_out *r)
{
    free(r->sel);
    conf_buf_free(&r->out);
    conf_buf_free(&r->lse);
}

static int api_fail(const char *name, const char *call, moba_status st)
{
    fprintf(stderr, "  [%s] %s failed: %s: %s\n", name, call,
            moba_status_string(st), moba_last_error());
    return 1;
}

/* 0 ok, 1 failure, 2 unsupported (from plan_create).  fused: one
 * moba_plan_forward call, then the selection read (where the case has
 * attention), else moba_plan_gate, the selection read, moba_plan_attend. */
static int backend_run(const conf_case *c, conf_buf *q, conf_buf *k,
                       conf_buf *v, run_out *r, int fused)
{
    const moba_params *p = &c->p;
    int64_t T = c->cu[c->batch];
    size_t entries = (size_t)T * p->num_q_heads * p->top_k;
    size_t es = moba_dtype_size(p->dtype);
    memset(r, 0, sizeof *r);
    r->sel = malloc(sizeof(int32_t) * (entries + SEL_GUARD));
    if (!r->sel) return 1;
    for (size_t i = 0; i < entries + SEL_GUARD; i++) r->sel[i] = SEL_SENTINEL;
    moba_plan *plan = NULL;
    moba_status st = moba_plan_create(g_ctx, p, c->cu, c->batch, &plan);
    if (st == MOBA_ERR_UNSUPPORTED) {
        if (!moba_last_error()[0]) {
            fprintf(stderr, "  [%s] UNSUPPORTED without a message\n", c->name);
            return 1;
        }
        printf("  [%s] unsupported: %s\n", c->name, moba_last_error());
        return 2;
    }
    if (st) return api_fail(c->name, "moba_plan_create", st);
    size_t have = 0;
    int fail = 0;
    if ((st = moba_plan_selection_size(plan, &have)) || have != entries) {
        fprintf(stderr, "  [%s] moba_plan_selection_size = %zu, expected %zu\n",
                c->name, have, entries);
        fail = 1;
    }
    const int attend = !(c->flags & CASE_SELECT_ONLY);
    fused = fused && attend;
    if (!fail && attend &&
        (conf_buf_output_at(&r->out, g_ctx, (size_t)T * p->num_q_heads * p->head_dim * es,
                            p->dtype, (c->flags & CASE_OFFSET_OUT) ? es : 0) ||
         conf_buf_output_at(&r->lse, g_ctx, (size_t)T * p->num_q_heads * sizeof(float),
                            MOBA_F32, (c->flags & CASE_OFFSET_OUT) ? sizeof(float) : 0)))
        fail = 1;
    if (!fail && fused &&
        (st = moba_plan_forward(plan, q->buf, k->buf, v->buf, r->out.buf, r->lse.buf)))
        fail = api_fail(c->name, "moba_plan_forward", st);
    if (!fail && !fused && (st = moba_plan_gate(plan, q->buf, k->buf)))
        fail = api_fail(c->name, "moba_plan_gate", st);
    if (!fail && (st = moba_plan_read_selection(plan, r->sel, entries)))
        fail = api_fail(c->name, "moba_plan_read_selection", st);
    for (size_t i = entries; !fail && i < entries + SEL_GUARD; i++)
        if (r->sel[i] != SEL_SENTINEL) {
            fprintf(stderr, "  [%s] read_selection wrote past its %zu entries\n",
                    c->name, entries);
            fail = 1;
        }
    if (attend) {
        if (!fail && !fused &&
            (st = moba_plan_attend(plan, q->buf, k->buf, v->buf, r->out.buf, r->lse.buf)))
            fail = api_fail(c->name, "moba_plan_attend", st);
        int g1 = fail ? 0 : conf_buf_fetch(&r->out);
        int g2 = fail ? 0 : conf_buf_fetch(&r->lse);
        if (g1 || g2) {
            fprintf(stderr, "  [%s] write outside the outputs: %d guard bytes "
                    "of out and %d of lse changed\n", c->name, g1, g2);
            fail = 1;
        }
    }
    moba_plan_destroy(plan);
    return fail;
}

static int check_inputs_untouched(const conf_case *c, conf_buf *b[3],
                                  void *host[3])
{
    static const char *names[3] = {"q", "k", "v"};
    int bad = 0;
    for (int i = 0; i < 3; i++)
        if (conf_buf_unchanged(b[i], host[i])) {
            fprintf(stderr, "  [%s] input %s (or its guard) was modified\n",
                    c->name, names[i]);
            bad++;
        }
    return bad;
}

/* Selection of every eligible block: dense (causal) attention. */
static int32_t *all_blocks(const conf_case *c)
{
    const moba_params *p = &c->p;
    int64_t T = c->cu[c->batch];
    int32_t K = p->top_k, S = p->block_size;
    int32_t *sel = malloc(sizeof *sel * ((size_t)T * p->num_q_heads * K + 1));
    if (!sel) return NULL;
    for (int32_t s = 0; s < c->batch; s++) {
        int32_t len = c->cu[s + 1] - c->cu[s];
        int32_t nb = (len + S - 1) / S;
        for (int32_t t = 0; t < len; t++)
            for (int32_t h = 0; h < p->num_q_heads; h++) {
                int32_t *row = sel + ((size_t)(c->cu[s] + t) * p->num_q_heads + h) * K;
                int32_t n = p->causal ? t / S + 1 : nb;
                for (int32_t i = 0; i < K; i++) row[i] = i < n ? i : -1;
            }
    }
    return sel;
}

static int check_outputs(const conf_case *c, const void *q, const void *k,
                         const void *v, const run_out *r)
{
    const moba_params *p = &c->p;
    int64_t T = c->cu[c->batch];
    int32_t Hq = p->num_q_heads, D = p->head_dim;
    size_t n = (size_t)T * Hq * D;
    double atol, rtol;
    conf_tolerance(p->dtype, &atol, &rtol);
    int bad = conf_check_written(c->name, "out", r->out.host, n, p->dtype) +
              conf_check_written(c->name, "lse", r->lse.host, (size_t)T * Hq,
                                 MOBA_F32);
    double *ro = malloc(sizeof *ro * (n + 1));
    double *rl = malloc(sizeof *rl * ((size_t)T * Hq + 1));
    int32_t *dense = (c->flags & CASE_DENSE) ? all_blocks(c) : NULL;
    if (!ro || !rl || ((c->flags & CASE_DENSE) && !dense)) {
        bad++;
        goto done;
    }
    moba_status st = moba_reference_attend(p, c->cu, c->batch, q, k, v, r->sel,
                                           ro, rl);
    if (st) {
        bad += api_fail(c->name, "moba_reference_attend", st);
        goto done;
    }
    bad += conf_compare(c->name, "out", r->out.host, p->dtype, ro, T, Hq, D,
                        atol, rtol);
    bad += conf_compare(c->name, "lse", r->lse.host, MOBA_F32, rl, T, Hq, 1,
                        atol, rtol);
    if (dense) {
        if (memcmp(dense, r->sel, sizeof *dense * (size_t)T * Hq * p->top_k)) {
            fprintf(stderr, "  [%s] top_k >= nb but the selection is not every "
                    "eligible block\n", c->name);
            bad++;
        }
        st = moba_reference_attend(p, c->cu, c->batch, q, k, v, dense, ro, rl);
        if (st) {
            bad += api_fail(c->name, "moba_reference_attend (dense)", st);
            goto done;
        }
        bad += conf_compare(c->name, "out vs dense attention", r->out.host,
                            p->dtype, ro, T, Hq, D, atol, rtol);
        bad += conf_compare(c->name, "lse vs dense attention", r->lse.host,
                            MOBA_F32, rl, T, Hq, 1, atol, rtol);
    }
done:
    free(ro);
    free(rl);
    free(dense);
    return bad;
}

static int check_selection(const conf_case *c, const void *q, const void *k,
                           const int32_t *sel)
{
    const moba_params *p = &c->p;
    int64_t T = c->cu[c->batch];
    size_t rows = (size_t)T * p->num_q_heads;
    int bad = conf_check_selection_valid(c->name, p, c->cu, c->batch, sel);
    int32_t *ref = malloc(sizeof *ref * (rows * p->top_k + 1));
    double *margin = malloc(sizeof *margin * (rows + 1));
    double *mscale = malloc(sizeof *mscale * (rows + 1));
    if (!ref || !margin || !mscale) {
        bad++;
    } else {
        moba_status st = moba_reference_select(p, c->cu, c->batch, q, k, ref,
                                               margin, mscale);
        if (st)
            bad += api_fail(c->name, "moba_reference_select", st);
        else
            bad += conf_check_selection_ref(c->name, p, c->cu, c->batch, sel,
                                            ref, margin, mscale,
                                            !!(c->flags & CASE_STRICT_SELECT));
    }
    if (c->check_sel) bad += c->check_sel(c, sel);
    free(ref);
    free(margin);
    free(mscale);
    return bad;
}

static int same_bits(const char *name, const char *what, const void *a,
                     const void *b, size_t bytes)
{
    if (bytes == 0 || memcmp(a, b, bytes) == 0) return 0;
    fprintf(stderr, "  [%s] not deterministic: two runs give different %s\n",
            name, what);
    return 1;
}

conf_result conf_run_case(const conf_case *c)
{
    const moba_params *p = &c->p;
    int64_t T = c->cu[c->batch];
    size_t nq = (size_t)T * p->num_q_heads * p->head_dim;
    size_t nk = (size_t)T * p->num_kv_heads * p->head_dim;
    size_t es = moba_dtype_size(p->dtype);
    const size_t oin = (c->flags & CASE_OFFSET_IN) ? es : 0;
    conf_rng rng = {c->seed};
    float *qf = malloc(sizeof *qf * (nq + 1));
    float *kf = malloc(sizeof *kf * (nk + 1));
    float *vf = malloc(sizeof *vf * (nk + 1));
    void *host[3] = {NULL, NULL, NULL};
    conf_buf qb = {0}, kb = {0}, vb = {0};
    conf_buf *bufs[3] = {&qb, &kb, &vb};
    run_out r1 = {0}, r2 = {0};
    int bad = 0, unsupported = 0;
    if (!qf || !kf || !vf) {
        bad = 1;
        goto done;
    }
    for (size_t i = 0; i < nq; i++) qf[i] = conf_rng_value(&rng);
    for (size_t i = 0; i < nk; i++) kf[i] = conf_rng_value(&rng);
    for (size_t i = 0; i < nk; i++) vf[i] = conf_rng_value(&rng);
    if (c->prepare) c->prepare(c, qf, kf, vf);
    host[0] = conf_to_storage(qf, nq, p->dtype);
    host[1] = conf_to_storage(kf, nk, p->dtype);
    host[2] = conf_to_storage(vf, nk, p->dtype);
    if (!host[0] || !host[1] || !host[2] ||
        conf_buf_input_at(&qb, g_ctx, host[0], nq * es, oin) ||
        conf_buf_input_at(&kb, g_ctx, host[1], nk * es, oin) ||
        conf_buf_input_at(&vb, g_ctx, host[2], nk * es, oin)) {
        bad = 1;
        goto done;
    }
    /* Every case through moba_plan_forward; the repeat through the
     * separate calls, which must give the same bits. */
    int rc = backend_run(c, &qb, &kb, &vb, &r1, 1);
    if (rc == 2) {
        unsupported = 1;
        goto done;
    }
    if (rc) {
        bad = 1;
        goto done;
    }
    bad += check_inputs_untouched(c, bufs, host);
    bad += check_selection(c, host[0], host[1], r1.sel);
    if (!(c->flags & CASE_SELECT_ONLY))
        bad += check_outputs(c, host[0], host[1], host[2], &r1);
    if (c->flags & CASE_REPEAT) {
        /* Where the backend has a thread count, the second run uses another
         * one: results must not depend on how work is split. */
        int threads = 0, other = 0;
        if (moba_context_get_num_threads(g_ctx, &threads) == MOBA_OK) {
            other = threads == 1 ? 3 : 1;
            if (moba_context_set_num_threads(g_ctx, other) != MOBA_OK) {
                fprintf(stderr, "  [%s] set_num_threads(%d): %s\n", c->name, other,
                        moba_last_error());
                bad++;
                goto done;
            }
        }
        int rc = backend_run(c, &qb, &kb, &vb, &r2, 0);
        if (other && moba_context_set_num_threads(g_ctx, threads) != MOBA_OK) bad++;
        if (rc) {
            bad++;
            goto done;
        }
        bad += same_bits(c->name, "selections", r1.sel, r2.sel,
                         sizeof(int32_t) * (size_t)T * p->num_q_heads * p->top_k);
        if (!(c->flags & CASE_SELECT_ONLY)) {
            bad += same_bits(c->name, "out", r1.out.host, r2.out.host, r1.out.need);
            bad += same_bits(c->name, "lse", r1.lse.host, r2.lse.host, r1.lse.need);
        }
    }
done:
    run_free(&r1);
    run_free(&r2);
    for (int i = 0; i < 3; i++) {
        conf_buf_free(bufs[i]);
        free(host[i]);
    }
    free(qf);
    free(kf);
    free(vf);
    if (unsupported) return CONF_UNSUPPORTED;
    if (bad) fprintf(stderr, "  [%s] FAILED (%d problems)\n", c->name, bad);
    return bad ? CONF_FAIL : CONF_PASS;
}

/* Whether the device info promises this dtype and head dim. */
static int device_lists(const moba_params *p)
{
    if (!(g_dev.dtypes & MOBA_DTYPE_BIT(p->dtype))) return 0;
    if (g_dev.num_head_dims == 0)
        return p->head_dim >= 1 && p->head_dim <= g_dev.head_dim_max;
    for (int i = 0; i < g_dev.num_head_dims; i++)
        if (g_dev.head_dims[i] == p->head_dim) return 1;
    return 0;
}

int conf_run(const conf_case *c)
{
    int listed = device_lists(&c->p);
    conf_result r = conf_run_case(c);
    if (r == CONF_UNSUPPORTED) {
        if (!listed || (c->flags & CASE_ALLOW_UNSUPPORTED)) {
            conf_note_unsupported(c->name, moba_last_error());
            return 0;
        }
        fprintf(stderr, "  [%s] FAILED: the device info lists dtype %s and "
                "head_dim %d, but plan_create says unsupported\n",
                c->name, moba_dtype_name(c->p.dtype), (int)c->p.head_dim);
        return 1;
    }
    if (!listed && r == CONF_PASS) {
        fprintf(stderr, "  [%s] FAILED: dtype %s / head_dim %d is not in the "
                "device info, so plan_create must return MOBA_ERR_UNSUPPORTED\n",
                c->name, moba_dtype_name(c->p.dtype), (int)c->p.head_dim);
        return 1;
    }
    return r == CONF_FAIL;
}
