/*
 * cpu-bench T HQ HK D S TOPK DTYPE THREADS REPS
 *
 * Times gating and attention of one random causal problem (one sequence)
 * on the CPU backend and prints the median times and the GFLOP/s reached,
 * counting the useful FLOPs from the backend's own selection: 4*D per
 * (query, head, attended key) plus 2*D per (query, head, scored block).
 * A tool, not a test: timings vary with the machine.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "moba/moba.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

#define CHECK(call)                                                          \
    do {                                                                     \
        moba_status st_ = (call);                                            \
        if (st_) {                                                           \
            fprintf(stderr, "cpu-bench: %s: %s: %s\n", #call,                \
                    moba_status_string(st_), moba_last_error());             \
            return 1;                                                        \
        }                                                                    \
    } while (0)

int main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: cpu-bench T HQ HK D S TOPK DTYPE THREADS REPS\n");
        return 2;
    }
    int32_t T = atoi(argv[1]);
    moba_params p = moba_params_default();
    p.num_q_heads = atoi(argv[2]);
    p.num_kv_heads = atoi(argv[3]);
    p.head_dim = atoi(argv[4]);
    p.block_size = atoi(argv[5]);
    p.top_k = atoi(argv[6]);
    CHECK(moba_dtype_parse(argv[7], &p.dtype));
    int threads = atoi(argv[8]), reps = atoi(argv[9]);
    if (T < 1 || reps < 1 || reps > 100) return 2;

    moba_context *ctx;
    CHECK(moba_context_create(&ctx, "cpu"));
    CHECK(moba_context_set_num_threads(ctx, threads));
    moba_device_info di;
    CHECK(moba_device_info_get("cpu", 0, &di));

    size_t nq = (size_t)T * p.num_q_heads * p.head_dim;
    size_t nkv = (size_t)T * p.num_kv_heads * p.head_dim;
    size_t es = moba_dtype_size(p.dtype);
    float *tmp = malloc(sizeof(float) * (nq > nkv ? nq : nkv));
    void *raw = malloc(es * (nq > nkv ? nq : nkv));
    moba_buffer *q, *k, *v, *o;
    CHECK(moba_buffer_alloc(ctx, nq * es, &q));
    CHECK(moba_buffer_alloc(ctx, nkv * es, &k));
    CHECK(moba_buffer_alloc(ctx, nkv * es, &v));
    CHECK(moba_buffer_alloc(ctx, nq * es, &o));
    moba_buffer *bufs[3] = {q, k, v};
    for (int b = 0; b < 3; b++) {
        size_t n = b ? nkv : nq;
        for (size_t i = 0; i < n; i++) tmp[i] = frand();
        CHECK(moba_convert(raw, p.dtype, tmp, MOBA_F32, n));
        CHECK(moba_buffer_write(bufs[b], 0, raw, n * es));
    }
    int32_t cu[2] = {0, T};
    moba_plan *plan;
    CHECK(moba_plan_create(ctx, &p, cu, 1, &plan));

    double tg[100], ta[100];
    for (int r = 0; r < reps + 1; r++) {
        double t0 = now();
        CHECK(moba_plan_gate(plan, q, k));
        double t1 = now();
        CHECK(moba_plan_attend(plan, q, k, v, o, NULL));
        double t2 = now();
        if (r > 0) { /* the first run warms caches and pages */
            tg[r - 1] = t1 - t0;
            ta[r - 1] = t2 - t1;
        }
    }
    qsort(tg, (size_t)reps, sizeof(double), cmp_d);
    qsort(ta, (size_t)reps, sizeof(double), cmp_d);

    size_t nsel;
    CHECK(moba_plan_selection_size(plan, &nsel));
    int32_t *sel = malloc(sizeof(int32_t) * nsel);
    CHECK(moba_plan_read_selection(plan, sel, nsel));
    double keys = 0, scored = 0;
    for (int32_t t = 0; t < T; t++) {
        int32_t b = t / p.block_size;
        scored += (double)b * p.num_q_heads;
        for (int32_t h = 0; h < p.num_q_heads; h++)
            for (int32_t i = 0; i < p.top_k; i++) {
                int32_t blk = sel[((size_t)t * p.num_q_heads + h) * p.top_k + i];
                if (blk < 0) break;
                int32_t u1 = (blk + 1) * p.block_size;
                keys += blk == b ? t - blk * p.block_size + 1
                                 : (u1 < T ? u1 : T) - blk * p.block_size;
            }
    }
    double fa = keys * 4.0 * p.head_dim, fg = scored * 2.0 * p.head_dim;
    double g = tg[reps / 2], a = ta[reps / 2];
    printf("%s T=%d Hq=%d Hk=%d D=%d S=%d top_k=%d %s threads=%d: "
           "gate %.4f s (%.1f GFLOP/s)  attend %.4f s (%.1f GFLOP/s)  "
           "total %.4f s (%.1f GFLOP/s)\n",
           di.driver, T, p.num_q_heads, p.num_kv_heads, p.head_dim,
           p.block_size, p.top_k, argv[7], threads, g, fg / g * 1e-9, a,
           fa / a * 1e-9, g + a, (fa + fg) / (g + a) * 1e-9);
    free(sel);
    free(tmp);
    free(raw);
    moba_plan_destroy(plan);
    moba_buffer_free(q);
    moba_buffer_free(k);
    moba_buffer_free(v);
    moba_buffer_free(o);
    moba_context_destroy(ctx);
    return 0;
}
