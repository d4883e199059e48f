/*
 * moba-ocl-bench: the small timing driver of the OpenCL backend's
 * measurements in docs/perf.md (any backend, for ratios), from before
 * tools/moba-bench; kept so that those figures can be re-run as taken.
 *   moba-ocl-bench BACKEND DTYPE B SEQLEN H D BLOCK TOPK [ITERS]
 * Random inputs (uniform, variance 1); plan_create outside the timing; prints the median
 * of ITERS gate and gate+attend times (synchronised) in milliseconds.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "moba/moba.h"

static double now_ms(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fail(const char *what, moba_status st)
{
    fprintf(stderr, "moba-ocl-bench: %s: %s: %s\n", what, moba_status_string(st),
            moba_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 9) {
        fprintf(stderr, "usage: moba-ocl-bench BACKEND DTYPE B SEQLEN H D BLOCK TOPK [ITERS]\n");
        return 2;
    }
    moba_params p = moba_params_default();
    moba_status st = moba_dtype_parse(argv[2], &p.dtype);
    if (st) return fail("dtype", st);
    int B = atoi(argv[3]), L = atoi(argv[4]);
    p.num_q_heads = p.num_kv_heads = atoi(argv[5]);
    p.head_dim = atoi(argv[6]);
    p.block_size = atoi(argv[7]);
    p.top_k = atoi(argv[8]);
    int iters = argc > 9 ? atoi(argv[9]) : 5;
    if (B < 1 || B > 1024 || L < 1 || iters < 1 || iters > 100) return 2;
    int32_t *cu = malloc(sizeof(int32_t) * (size_t)(B + 1));
    for (int i = 0; i <= B; i++) cu[i] = i * L;
    size_t T = (size_t)B * L, n = T * p.num_q_heads * p.head_dim;
    size_t bytes = n * moba_dtype_size(p.dtype);
    float *f = malloc(sizeof(float) * n);
    void *h = malloc(bytes);
    moba_context *ctx;
    if ((st = moba_context_create(&ctx, argv[1]))) return fail("context", st);
    moba_buffer *buf[4];
    unsigned long long s = 12345;
    for (int b = 0; b < 4; b++) {
        for (size_t i = 0; i < n; i++) { /* xorshift, uniform of variance 1 */
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            f[i] = (float)(((s >> 11) / 9007199254740992.0 * 2.0 - 1.0) * 1.7320508);
        }
        moba_convert(h, p.dtype, f, MOBA_F32, n);
        if ((st = moba_buffer_alloc(ctx, bytes, &buf[b]))) return fail("alloc", st);
        if (b < 3 && (st = moba_buffer_write(buf[b], 0, h, bytes))) return fail("write", st);
    }
    moba_plan *plan;
    if ((st = moba_plan_create(ctx, &p, cu, B, &plan))) return fail("plan", st);
    double *tg = malloc(sizeof(double) * (size_t)iters);
    double *tt = malloc(sizeof(double) * (size_t)iters);
    for (int it = -1; it < iters; it++) { /* it = -1: warm-up */
        double t0 = now_ms();
        if ((st = moba_plan_gate(plan, buf[0], buf[1]))) return fail("gate", st);
        if ((st = moba_context_synchronize(ctx))) return fail("sync", st);
        double t1 = now_ms();
        if ((st = moba_plan_attend(plan, buf[0], buf[1], buf[2], buf[3], NULL)))
            return fail("attend", st);
        if ((st = moba_context_synchronize(ctx))) return fail("sync", st);
        double t2 = now_ms();
        if (it >= 0) {
            tg[it] = t1 - t0;
            tt[it] = t2 - t0;
        }
    }
    qsort(tg, (size_t)iters, sizeof *tg, cmp_d);
    qsort(tt, (size_t)iters, sizeof *tt, cmp_d);
    moba_device_info info;
    memset(&info, 0, sizeof info);
    moba_device_info_get(moba_context_backend(ctx), moba_context_device(ctx), &info);
    printf("%s:%d (%s) %s B=%d L=%d H=%d D=%d S=%d k=%d: gate %.2f ms, "
           "forward %.2f ms (median of %d)\n",
           moba_context_backend(ctx), moba_context_device(ctx), info.name, argv[2], B,
           L, p.num_q_heads, p.head_dim, p.block_size, p.top_k, tg[iters / 2],
           tt[iters / 2], iters);
    moba_plan_destroy(plan);
    for (int b = 0; b < 4; b++) moba_buffer_free(buf[b]);
    moba_context_destroy(ctx);
    free(tg);
    free(tt);
    free(f);
    free(h);
    free(cu);
    return 0;
}
