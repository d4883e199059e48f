/*
 * cpu-check: the CPU backend (the variant MOBA_CPU_ISA picks) against the
 * double-precision reference on random problems: f32/f16/bf16, head dims
 * 32..256, block sizes 1/64/100/512, GQA 1..8, varlen batches with empty
 * sequences, then bf16 cases for the tile kernels.  Checks the selection
 * (spec §7.1 with the near-tie rule), the output and lse (§7.2
 * tolerances), that every element is written, and that 1 and 3 threads
 * give bitwise equal results.  Exit 0 if all pass, 77 if
 * the variant cannot run here.  Meant for checking the kernels before the
 * conformance suite lands; prints one line per case.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moba/moba.h"
#include "moba/reference.h"

static uint64_t rng = 12345;
static double urand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct run_out {
    void *out;
    float *lse;
    int32_t *sel;
} run_out;

static moba_status run(moba_context *ctx, const moba_params *p, const int32_t *cu,
                       int32_t B, const void *q, const void *k, const void *v,
                       size_t nq, size_t nkv, int64_t T, run_out *r)
{
    size_t es = moba_dtype_size(p->dtype);
    moba_buffer *bq = NULL, *bk = NULL, *bv = NULL, *bo = NULL, *bl = NULL;
    moba_plan *plan = NULL;
    moba_status st;
    if ((st = moba_buffer_alloc(ctx, nq * es + 4, &bq)) ||
        (st = moba_buffer_alloc(ctx, nkv * es + 4, &bk)) ||
        (st = moba_buffer_alloc(ctx, nkv * es + 4, &bv)) ||
        (st = moba_buffer_alloc(ctx, nq * es + 4, &bo)) ||
        (st = moba_buffer_alloc(ctx, (size_t)T * p->num_q_heads * 4 + 4, &bl)))
        goto done;
    moba_buffer_write(bq, 0, q, nq * es);
    moba_buffer_write(bk, 0, k, nkv * es);
    moba_buffer_write(bv, 0, v, nkv * es);
    /* NaN fill: every element must be written. */
    memset(r->out, 0xff, nq * es);
    memset(r->lse, 0xff, (size_t)T * p->num_q_heads * 4);
    moba_buffer_write(bo, 0, r->out, nq * es);
    moba_buffer_write(bl, 0, r->lse, (size_t)T * p->num_q_heads * 4);
    size_t ns;
    if ((st = moba_plan_create(ctx, p, cu, B, &plan)) ||
        (st = moba_plan_gate(plan, bq, bk)) ||
        (st = moba_plan_attend(plan, bq, bk, bv, bo, bl)) ||
        (st = moba_plan_selection_size(plan, &ns)) ||
        (st = moba_plan_read_selection(plan, r->sel, ns)))
        goto done;
    moba_buffer_read(bo, 0, r->out, nq * es);
    moba_buffer_read(bl, 0, r->lse, (size_t)T * p->num_q_heads * 4);
done:
    moba_plan_destroy(plan);
    moba_buffer_free(bq);
    moba_buffer_free(bk);
    moba_buffer_free(bv);
    moba_buffer_free(bo);
    moba_buffer_free(bl);
    return st;
}

int main(int argc, char **argv)
{
    /* --quick: smaller sequences, for emulators (qemu-user) */
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    moba_context *ctx;
    moba_status st = moba_context_create(&ctx, "cpu");
    if (st == MOBA_ERR_UNSUPPORTED) {
        printf("SKIP: %s\n", moba_last_error());
        return 77;
    }
    if (st) {
        printf("FAIL: %s\n", moba_last_error());
        return 1;
    }
    moba_device_info di;
    moba_device_info_get("cpu", 0, &di);
    static const int dims[] = {32, 64, 96, 128, 256, 40};
    static const int blocks[] = {1, 64, 100, 512};
    static const int groups[] = {1, 2, 4, 8};
    int fails = 0, cases = 0;
    /* Then 8 more bf16 cases at the head dims and block sizes the bf16
     * tile kernels take (blocks over 512 keys take several steps). */
    static const int bf16_dims[] = {32, 64, 128, 256};
    static const int bf16_blocks[] = {37, 512, 700, 64};
    for (int ci = 0; ci < 44; ci++) {
        moba_params p = moba_params_default();
        p.dtype = ci < 36 ? (moba_dtype)(ci % 3) : MOBA_BF16;
        p.head_dim = ci < 36 ? dims[ci % 6] : bf16_dims[ci % 4];
        p.block_size = ci < 36 ? blocks[(ci / 3) % 4] : bf16_blocks[(ci / 2) % 4];
        int G = groups[(ci / 2) % 4];
        p.num_kv_heads = 1 + ci % 2;
        p.num_q_heads = p.num_kv_heads * G;
        p.top_k = 1 + (ci * 7) % 9;
        p.causal = 1;
        int32_t B = 1 + ci % 4, cu[8] = {0};
        int maxlen = p.block_size == 1 ? 90 : p.block_size * 3 + 37;
        if (maxlen > (quick ? 300 : 1200)) maxlen = quick ? 300 : 1200;
        for (int b = 0; b < B; b++) {
            int len = (b == 1) ? 0 : (int)(urand() * maxlen) + 1;
            cu[b + 1] = cu[b] + len;
        }
        int64_t T = cu[B];
        size_t nq = (size_t)T * p.num_q_heads * p.head_dim;
        size_t nkv = (size_t)T * p.num_kv_heads * p.head_dim;
        size_t es = moba_dtype_size(p.dtype);
        float *f = malloc(sizeof(float) * (nq + 2 * nkv) + 4);
        char *raw = malloc(es * (nq + 2 * nkv) + 4);
        for (size_t i = 0; i < nq + 2 * nkv; i++) f[i] = (float)(urand() * 2 - 1);
        moba_convert(raw, p.dtype, f, MOBA_F32, nq + 2 * nkv);
        void *q = raw, *k = raw + nq * es, *v = raw + (nq + nkv) * es;
        size_t nsel = (size_t)T * p.num_q_heads * p.top_k;
        run_out r1 = {malloc(nq * es + 4), malloc((size_t)T * p.num_q_heads * 4 + 4),
                      malloc(nsel * 4 + 4)};
        run_out r2 = {malloc(nq * es + 4), malloc((size_t)T * p.num_q_heads * 4 + 4),
                      malloc(nsel * 4 + 4)};
        int32_t *rsel = malloc(nsel * 4 + 4);
        double *margin = malloc((size_t)T * p.num_q_heads * 8 + 8);
        double *mscale = malloc((size_t)T * p.num_q_heads * 8 + 8);
        double *ref = malloc(nq * 8 + 8), *rlse = malloc((size_t)T * p.num_q_heads * 8 + 8);
        const char *what = "ok";
        moba_context_set_num_threads(ctx, 1);
        st = run(ctx, &p, cu, B, q, k, v, nq, nkv, T, &r1);
        if (!st) {
            moba_context_set_num_threads(ctx, 3);
            st = run(ctx, &p, cu, B, q, k, v, nq, nkv, T, &r2);
        }
        double maxerr = 0;
        if (st) {
            what = moba_last_error();
        } else if (memcmp(r1.out, r2.out, nq * es) || memcmp(r1.lse, r2.lse, (size_t)T * p.num_q_heads * 4) ||
                   memcmp(r1.sel, r2.sel, nsel * 4)) {
            what = "1 vs 3 threads differ";
        } else {
            moba_reference_select(&p, cu, B, q, k, rsel, margin, mscale);
            for (size_t row = 0; row < (size_t)T * p.num_q_heads && !strcmp(what, "ok"); row++)
                if (memcmp(rsel + row * p.top_k, r1.sel + row * p.top_k, 4 * (size_t)p.top_k) &&
                    !(margin[row] < 1e-5 * (mscale[row] + 1)))
                    what = "selection differs (not a near-tie)";
            if (moba_reference_attend(&p, cu, B, q, k, v, r1.sel, ref, rlse))
                what = "invalid selection";
            double tol = p.dtype == MOBA_F32 ? 1e-5 : p.dtype == MOBA_F16 ? 2e-3 : 1.6e-2;
            for (size_t i = 0; i < nq && !strcmp(what, "ok"); i++) {
                float o;
                moba_convert(&o, MOBA_F32, (char *)r1.out + i * es, p.dtype, 1);
                double e = fabs(o - ref[i]);
                if (e > maxerr) maxerr = e;
                if (!(e <= tol + tol * fabs(ref[i]))) what = "output out of tolerance";
            }
            for (size_t i = 0; i < (size_t)T * p.num_q_heads && !strcmp(what, "ok"); i++)
                if (!(fabs(r1.lse[i] - rlse[i]) <= 1e-5 + 1e-5 * fabs(rlse[i])))
                    what = "lse out of tolerance";
        }
        int ok = !strcmp(what, "ok");
        fails += !ok;
        cases++;
        printf("%s %s D=%d S=%d top_k=%d Hq=%d Hk=%d B=%d T=%lld maxerr=%.2e: %s\n",
               ok ? "PASS" : "FAIL", moba_dtype_name(p.dtype), p.head_dim,
               p.block_size, p.top_k, p.num_q_heads, p.num_kv_heads, B,
               (long long)T, maxerr, what);
        free(f); free(raw); free(r1.out); free(r1.lse); free(r1.sel);
        free(r2.out); free(r2.lse); free(r2.sel); free(rsel); free(margin);
        free(mscale); free(ref); free(rlse);
    }
    printf("%s: %d/%d cases passed (%s)\n", fails ? "FAIL" : "PASS", cases - fails,
           cases, di.driver);
    moba_context_destroy(ctx);
    return fails ? 1 : 0;
}
