/*
 * moba-gpu-check [BACKEND]: the GPU backend against the double-precision
 * reference over a grid of shapes (dtypes, head dims, block sizes, top-k,
 * GQA, varlen with empty sequences, causal and not).  Checks per case:
 * selection valid and equal to the reference except at near-ties, out and
 * lse within the spec tolerance of the reference over the backend's own
 * selection, every element written, and two runs bitwise equal.
 * A development tool until the conformance suite covers the backend; it
 * exits 77 when the backend is unavailable.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moba/moba.h"
#include "moba/reference.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

typedef struct gcase {
    moba_dtype dt;
    int D, Hq, Hk, S, K, causal;
    int nseq;
    int lens[8];
} gcase;

static int run_case(moba_context *ctx, const gcase *gc)
{
    moba_params p = moba_params_default();
    p.num_q_heads = gc->Hq;
    p.num_kv_heads = gc->Hk;
    p.head_dim = gc->D;
    p.block_size = gc->S;
    p.top_k = gc->K;
    p.dtype = gc->dt;
    p.causal = gc->causal;
    int32_t cu[9];
    cu[0] = 0;
    for (int i = 0; i < gc->nseq; i++) cu[i + 1] = cu[i] + gc->lens[i];
    const int64_t T = cu[gc->nseq];
    const size_t nq = (size_t)T * gc->Hq * gc->D, nkv = (size_t)T * gc->Hk * gc->D;
    const size_t es = moba_dtype_size(gc->dt);
    float *f = malloc(sizeof(float) * (nq + 2 * nkv) + 4);
    char *h = malloc(es * (nq + 2 * nkv) + 4);
    char *o1 = malloc(es * nq + 4), *o2 = malloc(es * nq + 4);
    float *l1 = malloc(sizeof(float) * (size_t)T * gc->Hq + 4);
    float *l2 = malloc(sizeof(float) * (size_t)T * gc->Hq + 4);
    size_t nsel = (size_t)T * gc->Hq * gc->K;
    int32_t *sel = malloc(sizeof(int32_t) * nsel + 4), *rsel = malloc(sizeof(int32_t) * nsel + 4);
    int32_t *sel2 = malloc(sizeof(int32_t) * nsel + 4);
    double *margin = malloc(sizeof(double) * (size_t)T * gc->Hq + 8);
    double *mscale = malloc(sizeof(double) * (size_t)T * gc->Hq + 8);
    double *ro = malloc(sizeof(double) * nq + 8), *rl = malloc(sizeof(double) * (size_t)T * gc->Hq + 8);
    float *of = malloc(sizeof(float) * nq + 4);
    for (size_t i = 0; i < nq + 2 * nkv; i++) f[i] = frand();
    moba_convert(h, gc->dt, f, MOBA_F32, nq + 2 * nkv);
    const char *hq = h, *hk = h + es * nq, *hv = h + es * (nq + nkv);
    moba_buffer *bq = NULL, *bk = NULL, *bv = NULL, *bo = NULL, *bl = NULL;
    moba_plan *plan = NULL;
    moba_status st;
    int bad = 0;
    const char *why = "";
    size_t ob = es * nq > 0 ? es * nq : 1;
    if ((st = moba_buffer_alloc(ctx, es * nq + 1, &bq)) ||
        (st = moba_buffer_alloc(ctx, es * nkv + 1, &bk)) ||
        (st = moba_buffer_alloc(ctx, es * nkv + 1, &bv)) ||
        (st = moba_buffer_alloc(ctx, ob, &bo)) ||
        (st = moba_buffer_alloc(ctx, sizeof(float) * (size_t)T * gc->Hq + 4, &bl)) ||
        (nq && (st = moba_buffer_write(bq, 0, hq, es * nq))) ||
        (nkv && (st = moba_buffer_write(bk, 0, hk, es * nkv))) ||
        (nkv && (st = moba_buffer_write(bv, 0, hv, es * nkv))) ||
        (st = moba_plan_create(ctx, &p, cu, gc->nseq, &plan)))
        goto fail;
    for (int rep = 0; rep < 2; rep++) {
        /* NaN fill: every element must be written. */
        memset(rep ? o2 : o1, 0xff, es * nq);
        if ((nq && (st = moba_buffer_write(bo, 0, rep ? o2 : o1, es * nq))) ||
            (st = moba_plan_gate(plan, bq, bk)) ||
            (st = moba_plan_read_selection(plan, rep ? sel2 : sel, nsel)) ||
            (st = moba_plan_attend(plan, bq, bk, bv, bo, bl)) ||
            (nq && (st = moba_buffer_read(bo, 0, rep ? o2 : o1, es * nq))) ||
            (T && (st = moba_buffer_read(bl, 0, rep ? l2 : l1, sizeof(float) * (size_t)T * gc->Hq))))
            goto fail;
    }
    if (memcmp(o1, o2, es * nq) || memcmp(l1, l2, sizeof(float) * (size_t)T * gc->Hq) ||
        memcmp(sel, sel2, sizeof(int32_t) * nsel)) {
        bad = 1;
        why = "not deterministic";
    }
    /* Selection vs the reference, near-ties allowed. */
    int mism = 0;
    if ((st = moba_reference_select(&p, cu, gc->nseq, hq, hk, rsel, margin, mscale))) goto fail;
    for (int64_t r = 0; r < T * gc->Hq; r++)
        if (memcmp(sel + r * gc->K, rsel + r * gc->K, sizeof(int32_t) * gc->K) &&
            !(margin[r] <= 1e-5 * (mscale[r] + 1.0) * 4))
            mism++;
    if (mism) {
        bad = 1;
        why = "selection differs";
    }
    if ((st = moba_reference_attend(&p, cu, gc->nseq, hq, hk, hv, sel, ro, rl))) {
        bad = 1;
        why = moba_last_error();
    }
    moba_convert(of, MOBA_F32, o1, gc->dt, nq);
    double tol = gc->dt == MOBA_F32 ? 1e-5 : gc->dt == MOBA_F16 ? 2e-3 : 1.6e-2;
    double maxerr = 0.0, maxlerr = 0.0;
    int nan = 0;
    for (size_t i = 0; i < nq && !st; i++) {
        if (isnan(of[i])) nan++;
        double e = fabs(of[i] - ro[i]);
        if (e > maxerr) maxerr = e;
        if (!(e <= tol + tol * fabs(ro[i]))) bad = 1, why = "out beyond tolerance";
    }
    for (int64_t i = 0; i < T * gc->Hq && !st; i++) {
        double e = fabs(l1[i] - rl[i]);
        if (e > maxlerr) maxlerr = e;
        if (!(e <= 1e-4 + 1e-4 * fabs(rl[i]))) bad = 1, why = "lse beyond tolerance";
    }
    if (nan) bad = 1, why = "NaN / unwritten output";
    printf("%s %-4s D=%3d Hq=%d Hk=%d S=%3d K=%d causal=%d T=%5lld seqs=%d  "
           "max|err| out %.2e lse %.2e  sel-mismatch %d %s\n",
           bad ? "FAIL" : "ok  ", moba_dtype_name(gc->dt), gc->D, gc->Hq, gc->Hk, gc->S,
           gc->K, gc->causal, (long long)T, gc->nseq, maxerr, maxlerr, mism, why);
    goto done;
fail:
    printf("FAIL %s D=%d S=%d K=%d: %s: %s\n", moba_dtype_name(gc->dt), gc->D, gc->S,
           gc->K, moba_status_string(st), moba_last_error());
    bad = 1;
done:
    moba_plan_destroy(plan);
    moba_buffer_free(bq);
    moba_buffer_free(bk);
    moba_buffer_free(bv);
    moba_buffer_free(bo);
    moba_buffer_free(bl);
    free(f); free(h); free(o1); free(o2); free(l1); free(l2); free(sel); free(rsel);
    free(sel2); free(margin); free(mscale); free(ro); free(rl); free(of);
    return bad;
}

int main(int argc, char **argv)
{
    const char *be = argc > 1 ? argv[1] : "cuda";
    moba_context *ctx;
    if (moba_context_create(&ctx, be)) {
        printf("SKIP: %s\n", moba_last_error());
        return 77;
    }
    const moba_dtype dts[3] = {MOBA_F32, MOBA_F16, MOBA_BF16};
    const int dims[5] = {32, 64, 96, 128, 256};
    int fails = 0, n = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 5; b++) {
            gcase c1 = {dts[a], dims[b], 4, 2, 64, 3, 1, 3, {300, 0, 517}};
            gcase c2 = {dts[a], dims[b], 2, 2, 100, 4, 1, 2, {1000, 129}};
            fails += run_case(ctx, &c1) + run_case(ctx, &c2);
            n += 2;
        }
    const int sizes[5] = {1, 64, 100, 128, 512};
    for (int a = 0; a < 3; a++)
        for (int s = 0; s < 5; s++)
            for (int k = 1; k <= 8; k += (k < 4 ? 1 : 4)) {
                int len = sizes[s] == 1 ? 40 : sizes[s] * 5 + 7;
                gcase c = {dts[a], 64, 8, 2, sizes[s], k, 1, 4, {len, 0, sizes[s] / 2 + 1, 2 * len}};
                fails += run_case(ctx, &c);
                n++;
            }
    /* GQA ratios, MQA, large top_k (multi-pass and all-selected), non-causal. */
    gcase extra[] = {
        {MOBA_BF16, 128, 8, 1, 64, 8, 1, 1, {1500}},
        {MOBA_F16, 128, 16, 2, 32, 12, 1, 1, {1200}},
        {MOBA_F32, 64, 4, 4, 16, 20, 1, 2, {900, 333}},
        {MOBA_F32, 64, 2, 1, 128, 100, 1, 1, {700}},
        {MOBA_F16, 64, 4, 2, 64, 3, 0, 3, {500, 0, 200}},
        {MOBA_BF16, 256, 4, 4, 512, 3, 0, 1, {1800}},
        {MOBA_F32, 96, 6, 3, 7, 5, 1, 5, {1, 2, 3, 0, 77}},
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        fails += run_case(ctx, &extra[i]);
        n++;
    }
    printf("%d / %d cases passed\n", n - fails, n);
    moba_context_destroy(ctx);
    return fails ? 1 : 0;
}
