/* Spec §8: the golden vectors computed by the official MoBA reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "conformance.h"
#include "util/case.h"

static int golden_case(const char *name)
{
    char dir[4096], err[512];
    snprintf(dir, sizeof dir, "%s/%s", g_vectors_dir, name);
    moba_case gc;
    if (moba_case_load(dir, &gc, err, sizeof err)) {
        fprintf(stderr, "  [golden %s] %s\n", name, err);
        return 1;
    }
    int bad = 0;
    const moba_params *p = &gc.params;
    size_t nq = gc.q.count, nk = gc.k.count;
    conf_buf q = {0}, k = {0}, v = {0}, out = {0};
    double *ref = malloc(sizeof *ref * (gc.o.count + 1));
    if (!gc.o.data || p->dtype != MOBA_F32 || !ref) {
        fprintf(stderr, "  [golden %s] needs o.npy and dtype f32\n", name);
        bad = 1;
        goto done;
    }
    if (conf_buf_input(&q, g_ctx, gc.q.data, nq * 4) ||
        conf_buf_input(&k, g_ctx, gc.k.data, nk * 4) ||
        conf_buf_input(&v, g_ctx, gc.v.data, nk * 4) ||
        conf_buf_output(&out, g_ctx, gc.o.count * 4, MOBA_F32)) {
        bad = 1;
        goto done;
    }
    moba_status st = moba_forward(g_ctx, p, gc.cu.data, gc.batch, q.buf, k.buf,
                                  v.buf, out.buf, NULL);
    if (st) {
        fprintf(stderr, "  [golden %s] moba_forward: %s: %s\n", name,
                moba_status_string(st), moba_last_error());
        bad = 1;
        goto done;
    }
    if (conf_buf_fetch(&out)) {
        fprintf(stderr, "  [golden %s] write outside out\n", name);
        bad++;
    }
    const float *o = gc.o.data;
    for (size_t i = 0; i < gc.o.count; i++) ref[i] = (double)o[i];
    char label[64];
    snprintf(label, sizeof label, "golden %s", name);
    bad += conf_check_written(label, "out", out.host, gc.o.count, MOBA_F32);
    bad += conf_compare(label, "out vs o.npy", out.host, MOBA_F32, ref, gc.tokens,
                        p->num_q_heads, p->head_dim, 1e-5, 1e-5);
    if (!bad)
        printf("  golden %s: %lld tokens, B=%d, S=%d, top_k=%d match o.npy\n",
               name, (long long)gc.tokens, (int)gc.batch, (int)p->block_size,
               (int)p->top_k);
done:
    conf_buf_free(&q);
    conf_buf_free(&k);
    conf_buf_free(&v);
    conf_buf_free(&out);
    free(ref);
    moba_case_free(&gc);
    return bad;
}

void test_golden(void **state)
{
    (void)state;
    assert_non_null(g_vectors_dir);
    int bad = golden_case("g1") + golden_case("g4");
    assert_int_equal(bad, 0);
}
