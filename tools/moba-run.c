/*
 * moba-run [--backend NAME] [--dtype f32|f16|bf16] --out OUT.npy
 *          [--lse LSE.npy] [--selection SEL.npy] CASE_DIR
 *
 * Runs one case (spec §8 layout) through a backend: the float32 inputs are
 * rounded to the dtype, and `out` is written back as float32 [T, Hq, D].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moba/moba.h"
#include "util/case.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: moba-run [--backend NAME] [--dtype f32|f16|bf16] --out OUT.npy\n"
               "                [--lse LSE.npy] [--selection SEL.npy] CASE_DIR\n");
}

static int die(const char *what)
{
    fprintf(stderr, "moba-run: %s\n", what);
    return 1;
}

static int die_moba(const char *call, moba_status st)
{
    fprintf(stderr, "moba-run: %s failed: %s: %s\n", call, moba_status_string(st),
            moba_last_error());
    return 1;
}

/* f32 host array -> device buffer of dtype dt. */
static moba_status upload(moba_context *ctx, const float *src, size_t n,
                          moba_dtype dt, moba_buffer **buf)
{
    size_t bytes = n * moba_dtype_size(dt);
    void *tmp = malloc(bytes ? bytes : 1);
    if (!tmp) return MOBA_ERR_OUT_OF_MEMORY;
    moba_status st = moba_convert(tmp, dt, src, MOBA_F32, n);
    if (!st) st = moba_buffer_alloc(ctx, bytes ? bytes : 1, buf);
    if (!st && bytes) st = moba_buffer_write(*buf, 0, tmp, bytes);
    free(tmp);
    return st;
}

int main(int argc, char **argv)
{
    const char *backend = NULL, *dtype_s = NULL, *out_path = NULL;
    const char *lse_path = NULL, *sel_path = NULL, *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = !strcmp(a, "--backend")     ? &backend
                           : !strcmp(a, "--dtype")     ? &dtype_s
                           : !strcmp(a, "--out")       ? &out_path
                           : !strcmp(a, "--lse")       ? &lse_path
                           : !strcmp(a, "--selection") ? &sel_path
                                                       : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (dst) {
            if (i + 1 >= argc) {
                fprintf(stderr, "moba-run: %s needs a value\n", a);
                usage(stderr);
                return 2;
            }
            *dst = argv[++i];
        } else if (a[0] == '-') {
            fprintf(stderr, "moba-run: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (dir) {
            fprintf(stderr, "moba-run: more than one case directory given\n");
            return 2;
        } else {
            dir = a;
        }
    }
    if (!dir || !out_path) {
        fprintf(stderr, "moba-run: %s is required\n", !dir ? "CASE_DIR" : "--out");
        usage(stderr);
        return 2;
    }

    char err[512];
    moba_case c;
    if (moba_case_load(dir, &c, err, sizeof err)) return die(err);
    moba_params p = c.params;
    if (dtype_s && moba_dtype_parse(dtype_s, &p.dtype) != MOBA_OK) {
        moba_case_free(&c);
        return die(moba_last_error());
    }
    const int64_t T = c.tokens;
    const size_t nq = (size_t)T * p.num_q_heads * p.head_dim;
    const size_t nkv = (size_t)T * p.num_kv_heads * p.head_dim;

    int rc = 1;
    moba_context *ctx = NULL;
    moba_buffer *q = NULL, *k = NULL, *v = NULL, *o = NULL, *lse = NULL;
    moba_plan *plan = NULL;
    void *host = NULL;
    float *of = NULL, *lsef = NULL;
    int32_t *sel = NULL;
    moba_status st;
    const char *call = "moba_context_create";
    if ((st = moba_context_create(&ctx, backend))) goto fail;
    call = "upload";
    if ((st = upload(ctx, c.q.data, nq, p.dtype, &q)) ||
        (st = upload(ctx, c.k.data, nkv, p.dtype, &k)) ||
        (st = upload(ctx, c.v.data, nkv, p.dtype, &v)))
        goto fail;
    call = "moba_buffer_alloc";
    size_t obytes = nq * moba_dtype_size(p.dtype);
    if ((st = moba_buffer_alloc(ctx, obytes ? obytes : 1, &o))) goto fail;
    if (lse_path && (st = moba_buffer_alloc(ctx, (size_t)T * p.num_q_heads * 4 + 4, &lse)))
        goto fail;
    call = "moba_plan_create";
    if ((st = moba_plan_create(ctx, &p, c.cu.data, c.batch, &plan))) goto fail;
    call = "moba_plan_gate";
    if ((st = moba_plan_gate(plan, q, k))) goto fail;
    call = "moba_plan_attend";
    if ((st = moba_plan_attend(plan, q, k, v, o, lse))) goto fail;

    host = malloc(obytes + 4);
    of = malloc(nq * sizeof(float) + 4);
    if (!host || !of) {
        die("out of memory");
        goto done;
    }
    call = "moba_buffer_read";
    if ((st = moba_buffer_read(o, 0, host, obytes))) goto fail;
    moba_convert(of, MOBA_F32, host, p.dtype, nq);
    int64_t shape[3] = {T, p.num_q_heads, p.head_dim};
    if (npy_write(out_path, "<f4", 3, shape, of, err, sizeof err)) {
        die(err);
        goto done;
    }
    if (lse_path) {
        lsef = malloc((size_t)T * p.num_q_heads * 4 + 4);
        if (!lsef) {
            die("out of memory");
            goto done;
        }
        if ((st = moba_buffer_read(lse, 0, lsef, (size_t)T * p.num_q_heads * 4))) goto fail;
        if (npy_write(lse_path, "<f4", 2, shape, lsef, err, sizeof err)) {
            die(err);
            goto done;
        }
    }
    if (sel_path) {
        size_t n;
        moba_plan_selection_size(plan, &n);
        sel = malloc(n * sizeof *sel + 4);
        if (!sel) {
            die("out of memory");
            goto done;
        }
        call = "moba_plan_read_selection";
        if ((st = moba_plan_read_selection(plan, sel, n))) goto fail;
        int64_t sshape[3] = {T, p.num_q_heads, p.top_k};
        if (npy_write(sel_path, "<i4", 3, sshape, sel, err, sizeof err)) {
            die(err);
            goto done;
        }
    }
    rc = 0;
    goto done;
fail:
    die_moba(call, st);
done:
    free(host);
    free(of);
    free(lsef);
    free(sel);
    moba_plan_destroy(plan);
    moba_buffer_free(q);
    moba_buffer_free(k);
    moba_buffer_free(v);
    moba_buffer_free(o);
    moba_buffer_free(lse);
    moba_context_destroy(ctx);
    moba_case_free(&c);
    return rc;
}
