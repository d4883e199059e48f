/*
 * moba-bench: times MoBA (gate + attend through one plan) against the same
 * backend's dense causal attention, over a sweep of problem shapes.
 * `moba-bench --help` lists the flags.
 *
 * Dense is measured through the very same code path with top_k = the number
 * of blocks of the sequence (the spec makes that exact dense causal
 * attention), so the ratio isolates what block selection saves on this
 * backend rather than comparing two unrelated kernels.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "moba/moba.h"
#include "util/json.h"

#define MAX_LIST 32

typedef struct int_list {
    int n;
    long v[MAX_LIST];
} int_list;

typedef struct options {
    const char *backend;
    int_list seqlen, batch, q_heads, kv_heads, head_dim, block_size, top_k;
    int n_dtypes;
    moba_dtype dtypes[MAX_LIST];
    int warmup, iters, threads, no_dense, no_gate_ms, csv, json, quiet;
} options;

typedef struct point {
    int32_t seqlen, batch, hq, hk, d, block, top_k;
    moba_dtype dtype;
} point;

enum { RUN_OK, RUN_UNSUPPORTED, RUN_SKIPPED };

typedef struct result {
    int moba_state, dense_state;
    double setup_ms, moba_ms, gate_ms, dense_ms, flops;
    size_t plan_bytes;
} result;

/* ------------------------------------------------------------------ */
/* Command line                                                        */
/* ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: moba-bench [options]\n"
        "Times MoBA (gate + attend through one plan, median of --iters runs) and the\n"
        "same backend's dense causal attention (the same path with top_k = number of\n"
        "blocks). Every point runs batch sequences of length seqlen. Options marked\n"
        "LIST take comma-separated values; all combinations are run.\n"
        "\n"
        "  --backend NAME     cpu, cuda, hip, opencl (\":N\" for device N) or auto;\n"
        "                     default: MOBA_BACKEND, else auto\n"
        "  --seqlen LIST      tokens per sequence (suffix k = x1024)  [4096,8192,16384]\n"
        "  --batch LIST       sequences per call                      [1]\n"
        "  --q-heads LIST     query heads Hq                          [4]\n"
        "  --kv-heads LIST    key/value heads Hk, must divide Hq      [= q-heads]\n"
        "  --head-dim LIST    head dimension D                        [128]\n"
        "  --block-size LIST  MoBA block size                         [512]\n"
        "  --top-k LIST       blocks per query, own block included    [3]\n"
        "  --dtype LIST       f32, bf16, f16                          [f32]\n"
        "  --warmup N         untimed runs before timing              [1]\n"
        "  --iters N          timed runs; the median is reported      [5]\n"
        "  --threads N        worker threads (CPU backend); an error if the backend\n"
        "                     cannot set it                           [backend default]\n"
        "  --no-dense         skip the dense baseline\n"
        "  --no-gate-ms       skip the gate-alone runs (gate_ms), e.g. under a profiler,\n"
        "                     where they would add a second gate to the counts\n"
        "  --csv              CSV on stdout instead of the table\n"
        "  --json             JSON on stdout instead of the table\n"
        "  --quiet            no progress lines on stderr\n"
        "  -h, --help         this text\n"
        "\n"
        "Columns: moba_ms / dense_ms are medians (gate + attend, synchronized);\n"
        "gate_ms is the median of the gate alone, timed in separate synchronized runs;\n"
        "speedup = dense_ms / moba_ms; moba_GFLOP/s counts 4*D FLOPs per attended\n"
        "(query, head, key) plus 2*D per (query, head, past block) for gating;\n"
        "plan_MiB = moba_plan_device_bytes of the MoBA plan; setup_ms = moba_plan_create.\n"
        "Exit status: 0 ok, 1 a library call failed, 2 bad usage.\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s) return -1;
    if (*end == 'k' || *end == 'K') {
        v *= 1024;
        end++;
    }
    if (*end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_list(const char *flag, const char *s, long lo, long hi, int_list *l)
{
    l->n = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (l->n == MAX_LIST || parse_long(tok, lo, hi, &l->v[l->n])) {
            fprintf(stderr, "moba-bench: %s: bad value '%s' (integers in [%ld, %ld], "
                            "at most %d)\n", flag, tok, lo, hi, MAX_LIST);
            return -1;
        }
        l->n++;
    }
    if (!l->n) {
        fprintf(stderr, "moba-bench: %s: empty list\n", flag);
        return -1;
    }
    return 0;
}

static int parse_dtypes(const char *s, options *o)
{
    o->n_dtypes = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (o->n_dtypes == MAX_LIST || moba_dtype_parse(tok, &o->dtypes[o->n_dtypes])) {
            fprintf(stderr, "moba-bench: --dtype: bad value '%s' (f32, bf16, f16)\n", tok);
            return -1;
        }
        o->n_dtypes++;
    }
    return o->n_dtypes ? 0 : -1;
}

static void set_single(int_list *l, long v)
{
    l->n = 1;
    l->v[0] = v;
}

/* 0 ok, 1 --help given, -1 bad usage (already reported). */
static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->seqlen = (int_list){3, {4096, 8192, 16384}};
    set_single(&o->batch, 1);
    set_single(&o->q_heads, 4);
    set_single(&o->head_dim, 128);
    set_single(&o->block_size, 512);
    set_single(&o->top_k, 3);
    o->n_dtypes = 1;
    o->dtypes[0] = MOBA_F32;
    o->warmup = 1;
    o->iters = 5;
    const long big = 1L << 30;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int *flag = !strcmp(a, "--no-dense")     ? &o->no_dense
                    : !strcmp(a, "--no-gate-ms") ? &o->no_gate_ms
                    : !strcmp(a, "--csv")    ? &o->csv
                    : !strcmp(a, "--json")   ? &o->json
                    : !strcmp(a, "--quiet")  ? &o->quiet
                                             : NULL;
        if (flag) {
            *flag = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 1;
        static const char *const valued[] = {
            "--backend", "--seqlen", "--batch", "--q-heads", "--kv-heads", "--head-dim",
            "--block-size", "--top-k", "--dtype", "--warmup", "--iters", "--threads"};
        int known = 0;
        for (size_t j = 0; j < sizeof valued / sizeof valued[0]; j++) known |= !strcmp(a, valued[j]);
        if (!known || i + 1 >= argc) {
            fprintf(stderr, "moba-bench: %s: %s\n", a, known ? "needs a value" : "unknown option");
            return -1;
        }
        const char *v = argv[++i];
        long n;
        int bad = 0;
        if (!strcmp(a, "--backend")) o->backend = v;
        else if (!strcmp(a, "--seqlen")) bad = parse_list(a, v, 1, big, &o->seqlen);
        else if (!strcmp(a, "--batch")) bad = parse_list(a, v, 1, 1L << 20, &o->batch);
        else if (!strcmp(a, "--q-heads")) bad = parse_list(a, v, 1, 4096, &o->q_heads);
        else if (!strcmp(a, "--kv-heads")) bad = parse_list(a, v, 1, 4096, &o->kv_heads);
        else if (!strcmp(a, "--head-dim")) bad = parse_list(a, v, 1, 65536, &o->head_dim);
        else if (!strcmp(a, "--block-size")) bad = parse_list(a, v, 1, big, &o->block_size);
        else if (!strcmp(a, "--top-k")) bad = parse_list(a, v, 1, big, &o->top_k);
        else if (!strcmp(a, "--dtype")) bad = parse_dtypes(v, o);
        else if (!strcmp(a, "--warmup") || !strcmp(a, "--iters") || !strcmp(a, "--threads")) {
            int iters = !strcmp(a, "--iters");
            bad = parse_long(v, iters ? 1 : 0, 100000, &n);
            if (bad) fprintf(stderr, "moba-bench: %s: bad value '%s'\n", a, v);
            else *(iters ? &o->iters : !strcmp(a, "--warmup") ? &o->warmup : &o->threads) = (int)n;
        }
        if (bad) return -1;
    }
    if (o->csv && o->json) {
        fprintf(stderr, "moba-bench: --csv and --json exclude each other\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Measurements                                                        */
/* ------------------------------------------------------------------ */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int64_t blocks_of(int64_t len, int64_t block) { return (len + block - 1) / block; }

/* Exact FLOPs of one MoBA forward: a query at offset p of block b attends the
 * p + 1 keys of its own block and min(top_k, b + 1) - 1 full past blocks
 * (4*D per key: QK^T and PV), and gates against all b past centroids (2*D). */
static double moba_flops(const point *pt)
{
    double keys = 0, past = 0;
    const int64_t L = pt->seqlen, S = pt->block, nb = blocks_of(L, S);
    for (int64_t b = 0; b < nb; b++) {
        int64_t len = L - b * S < S ? L - b * S : S;
        int64_t sel_past = (pt->top_k < b + 1 ? pt->top_k : b + 1) - 1;
        keys += (double)len * (double)(len + 1) / 2 + (double)len * (double)(sel_past * S);
        past += (double)len * (double)b;
    }
    return (double)pt->batch * pt->hq * pt->d * (4 * keys + 2 * past);
}

typedef struct bufs {
    moba_buffer *q, *k, *v, *out;
} bufs;

static void bufs_free(bufs *b)
{
    moba_buffer_free(b->q);
    moba_buffer_free(b->k);
    moba_buffer_free(b->v);
    moba_buffer_free(b->out);
    memset(b, 0, sizeof *b);
}

/* Roughly standard normal (Irwin-Hall with 4 terms, 4 xorshift64 steps),
 * from a fixed seed so runs are comparable; exact zeros are replaced
 * because all-zero-ish inputs would let a backend take shortcuts real data
 * never allows. */
static uint64_t xorshift(uint64_t s)
{
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

static float next_normal(uint64_t *s)
{
    float sum = 0;
    for (int i = 0; i < 4; i++) {
        *s = xorshift(*s);
        sum += (float)(*s >> 40) * (1.0f / 16777216.0f);
    }
    float x = (sum - 2.0f) * 1.7320508f;
    return x != 0.0f ? x : 0.5f;
}

/* xorshift64 is linear over GF(2), so k steps are a 64 x 64 bit matrix,
 * kept as its columns (col[j] = the image of bit j).  Threads jump to
 * their chunk's state with it, and the data stay those of one sequential
 * stream: the same inputs as the single-threaded generator this replaced
 * (which took ~90 s for the three tensors of a 1M-token point). */
typedef struct gf2 {
    uint64_t col[64];
} gf2;

static uint64_t gf2_apply(const gf2 *m, uint64_t x)
{
    uint64_t y = 0;
    for (int j = 0; x; j++, x >>= 1)
        if (x & 1) y ^= m->col[j];
    return y;
}

static gf2 gf2_mul(const gf2 *a, const gf2 *b) /* a after b */
{
    gf2 r;
    for (int j = 0; j < 64; j++) r.col[j] = gf2_apply(a, b->col[j]);
    return r;
}

/* The matrix of k xorshift steps. */
static gf2 gf2_steps(uint64_t k)
{
    gf2 p, r;
    for (int j = 0; j < 64; j++) {
        p.col[j] = xorshift(1ull << j);
        r.col[j] = 1ull << j;
    }
    for (; k; k >>= 1) {
        if (k & 1) r = gf2_mul(&p, &r);
        p = gf2_mul(&p, &p);
    }
    return r;
}

#define FILL_CHUNK ((size_t)1 << 20) /* elements per chunk */

typedef struct fill_job {
    void *dst;
    moba_dtype dt;
    size_t n, next; /* next: the next chunk to take (atomic) */
    const uint64_t *state; /* each chunk's first state */
    moba_status st;
} fill_job;

static void *fill_worker(void *arg)
{
    fill_job *j = arg;
    float *f = malloc(FILL_CHUNK * sizeof *f);
    if (!f) {
        __atomic_store_n(&j->st, MOBA_ERR_OUT_OF_MEMORY, __ATOMIC_RELAXED);
        return NULL;
    }
    for (;;) {
        const size_t c = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        const size_t i0 = c * FILL_CHUNK;
        if (i0 >= j->n) break;
        const size_t m = j->n - i0 < FILL_CHUNK ? j->n - i0 : FILL_CHUNK;
        uint64_t s = j->state[c];
        for (size_t i = 0; i < m; i++) f[i] = next_normal(&s);
        const moba_status st = moba_convert((char *)j->dst + i0 * moba_dtype_size(j->dt), j->dt,
                                            f, MOBA_F32, m);
        if (st) __atomic_store_n(&j->st, st, __ATOMIC_RELAXED); /* any one failure */
    }
    free(f);
    return NULL;
}

/* n values of the stream seeded by seed into dst in dtype dt, with one
 * thread per online CPU (up to 64). */
static moba_status fill_normal(void *dst, moba_dtype dt, size_t n, uint64_t seed)
{
    const size_t nch = (n + FILL_CHUNK - 1) / FILL_CHUNK;
    uint64_t *state = malloc((nch ? nch : 1) * sizeof *state);
    if (!state) return MOBA_ERR_OUT_OF_MEMORY;
    const gf2 jump = gf2_steps(4 * (uint64_t)FILL_CHUNK); /* 4 steps per value */
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t c = 0; c < nch; c++, s = gf2_apply(&jump, s)) state[c] = s;
    fill_job job = {dst, dt, n, 0, state, MOBA_OK};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (int)ncpu;
    if ((size_t)nt > nch) nt = nch ? (int)nch : 1;
    pthread_t tid[64];
    int started = 0;
    for (; started < nt - 1; started++)
        if (pthread_create(&tid[started], NULL, fill_worker, &job)) break;
    fill_worker(&job); /* this thread too; it alone if no thread started */
    for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
    free(state);
    return job.st;
}

static moba_status upload_random(moba_context *ctx, size_t n, moba_dtype dt,
                                 uint64_t seed, moba_buffer **buf)
{
    const size_t bytes = n * moba_dtype_size(dt);
    void *conv = malloc(bytes);
    moba_status st = MOBA_ERR_OUT_OF_MEMORY;
    if (conv) {
        st = fill_normal(conv, dt, n, seed);
        if (!st) st = moba_buffer_alloc(ctx, bytes, buf);
        if (!st) st = moba_buffer_write(*buf, 0, conv, bytes);
    }
    free(conv);
    return st;
}

static const char *failed_call;

#define CALL(name, expr)                      \
    do {                                      \
        if ((st = (expr)) != MOBA_OK) {       \
            failed_call = name;               \
            goto done;                        \
        }                                     \
    } while (0)

static double median_of(double *times, int n)
{
    qsort(times, (size_t)n, sizeof *times, cmp_double);
    return n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
}

/* Creates a plan (timed separately as setup), then times moba_plan_forward.
 * Returns the first failing status; *median_ms is the median of iters.
 * With gate_ms, the gate alone is timed again after that, iters times,
 * each synchronized, so that a backend's two phases can be told apart. */
static moba_status time_plan(moba_context *ctx, const moba_params *p, const int32_t *cu,
                             int32_t batch, const bufs *b, const options *o,
                             double *setup_ms, double *median_ms, double *gate_ms,
                             size_t *plan_bytes)
{
    moba_plan *plan = NULL;
    double *times = malloc((size_t)o->iters * sizeof *times);
    moba_status st = MOBA_ERR_OUT_OF_MEMORY;
    failed_call = "malloc";
    if (!times) return st;
    double t0 = now_ms();
    CALL("moba_plan_create", moba_plan_create(ctx, p, cu, batch, &plan));
    CALL("moba_context_synchronize", moba_context_synchronize(ctx));
    if (setup_ms) *setup_ms = now_ms() - t0;
    if (plan_bytes) CALL("moba_plan_device_bytes", moba_plan_device_bytes(plan, plan_bytes));
    for (int i = 0; i < o->warmup + o->iters; i++) {
        t0 = now_ms();
        CALL("moba_plan_forward", moba_plan_forward(plan, b->q, b->k, b->v, b->out, NULL));
        CALL("moba_context_synchronize", moba_context_synchronize(ctx));
        if (i >= o->warmup) times[i - o->warmup] = now_ms() - t0;
    }
    *median_ms = median_of(times, o->iters);
    if (gate_ms) {
        for (int i = 0; i < o->iters; i++) {
            t0 = now_ms();
            CALL("moba_plan_gate", moba_plan_gate(plan, b->q, b->k));
            CALL("moba_context_synchronize", moba_context_synchronize(ctx));
            times[i] = now_ms() - t0;
        }
        *gate_ms = median_of(times, o->iters);
    }
done:
    moba_plan_destroy(plan);
    free(times);
    return st;
}

/* Runs one point. MOBA_ERR_UNSUPPORTED becomes a result state; any other
 * failure is returned for the caller to report. */
static moba_status run_point(moba_context *ctx, const point *pt, const options *o,
                             result *r)
{
    memset(r, 0, sizeof *r);
    r->dense_state = o->no_dense ? RUN_SKIPPED : RUN_OK;
    r->flops = moba_flops(pt);
    const size_t T = (size_t)pt->seqlen * (size_t)pt->batch;
    const size_t nq = T * (size_t)pt->hq * (size_t)pt->d, nkv = T * (size_t)pt->hk * (size_t)pt->d;
    bufs b = {0};
    moba_status st = MOBA_ERR_OUT_OF_MEMORY;
    int32_t *cu = malloc(((size_t)pt->batch + 1) * sizeof *cu);
    failed_call = "malloc";
    if (!cu) return st;
    for (int32_t i = 0; i <= pt->batch; i++) cu[i] = i * pt->seqlen;

    failed_call = "upload (moba_buffer_alloc/write)";
    if ((st = upload_random(ctx, nq, pt->dtype, 1, &b.q)) ||
        (st = upload_random(ctx, nkv, pt->dtype, 2, &b.k)) ||
        (st = upload_random(ctx, nkv, pt->dtype, 3, &b.v)))
        goto done;
    CALL("moba_buffer_alloc", moba_buffer_alloc(ctx, nq * moba_dtype_size(pt->dtype), &b.out));

    moba_params p = moba_params_default();
    p.num_q_heads = pt->hq;
    p.num_kv_heads = pt->hk;
    p.head_dim = pt->d;
    p.block_size = pt->block;
    p.top_k = pt->top_k;
    p.dtype = pt->dtype;
    st = time_plan(ctx, &p, cu, pt->batch, &b, o, &r->setup_ms, &r->moba_ms,
                   o->no_gate_ms ? NULL : &r->gate_ms,
                   &r->plan_bytes);
    if (st == MOBA_ERR_UNSUPPORTED) {
        r->moba_state = RUN_UNSUPPORTED;
        r->dense_state = RUN_SKIPPED;
        st = MOBA_OK;
        goto done;
    }
    if (st || o->no_dense) goto done;
    p.top_k = (int32_t)blocks_of(pt->seqlen, pt->block);
    st = time_plan(ctx, &p, cu, pt->batch, &b, o, NULL, &r->dense_ms, NULL, NULL);
    if (st == MOBA_ERR_UNSUPPORTED) {
        r->dense_state = RUN_UNSUPPORTED;
        st = MOBA_OK;
    }
done:
    bufs_free(&b);
    free(cu);
    return st;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static void csv_quoted(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"') putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static void print_header(const options *o, const char *backend, int dev,
                         const moba_device_info *di, int threads)
{
    if (o->csv) {
        printf("backend,device,seqlen,batch,q_heads,kv_heads,head_dim,block_size,top_k,"
               "dtype,status,setup_ms,moba_ms,gate_ms,dense_ms,speedup,moba_gflops,plan_bytes\n");
    } else if (o->json) {
        printf("{\n  \"version\": \"%s\",\n  \"backend\": \"%s\",\n  \"device_index\": %d,\n"
               "  \"device\": ", moba_version(), backend, dev);
        json_write_string(stdout, di->name);
        printf(",\n  \"threads\": ");
        if (threads > 0) printf("%d", threads);
        else printf("null");
        printf(",\n  \"warmup\": %d,\n  \"iters\": %d,\n  \"points\": [", o->warmup, o->iters);
    } else {
        printf("libmoba %s, backend %s:%d, device: %s (%s)", moba_version(), backend, dev,
               di->name, di->driver);
        if (threads > 0) printf(", %d threads", threads);
        printf("\nmedian of %d iters after %d warmup; moba = gate + attend "
               "(moba_plan_forward); dense = same path with top_k = blocks\n\n",
               o->iters, o->warmup);
        printf("%7s %5s %7s %4s %5s %5s %5s %10s %9s %10s %8s %12s %9s %9s\n", "seqlen",
               "batch", "heads", "D", "block", "top_k", "dtype", "moba_ms", "gate_ms", "dense_ms",
               "speedup", "moba_GFLOP/s", "plan_MiB", "setup_ms");
    }
}

static void print_row(const options *o, const char *backend, const moba_device_info *di,
                      const point *pt, const result *r, int index)
{
    const int ok = r->moba_state == RUN_OK, dense = ok && r->dense_state == RUN_OK;
    const double speedup = dense ? r->dense_ms / r->moba_ms : 0;
    const double gflops = ok ? r->flops / (r->moba_ms * 1e6) : 0;
    const char *dt = moba_dtype_name(pt->dtype);
    const char *dense_word = r->dense_state == RUN_UNSUPPORTED ? "unsupported" : "skipped";
    if (o->csv) {
        printf("%s,", backend);
        csv_quoted(di->name);
        printf(",%d,%d,%d,%d,%d,%d,%d,%s,%s,", pt->seqlen, pt->batch, pt->hq, pt->hk, pt->d,
               pt->block, pt->top_k, dt, ok ? "ok" : "unsupported");
        if (ok) printf("%.4f,%.4f,", r->setup_ms, r->moba_ms);
        else printf(",,");
        if (ok && !o->no_gate_ms) printf("%.4f,", r->gate_ms);
        else printf(",");
        if (dense) printf("%.4f,%.4f,", r->dense_ms, speedup);
        else printf(",,");
        if (ok) printf("%.3f,%zu\n", gflops, r->plan_bytes);
        else printf(",\n");
    } else if (o->json) {
        printf("%s\n    {\"seqlen\": %d, \"batch\": %d, \"q_heads\": %d, \"kv_heads\": %d, "
               "\"head_dim\": %d, \"block_size\": %d, \"top_k\": %d, \"dtype\": \"%s\", "
               "\"status\": \"%s\", ", index ? "," : "", pt->seqlen, pt->batch, pt->hq, pt->hk,
               pt->d, pt->block, pt->top_k, dt, ok ? "ok" : "unsupported");
        if (ok)
        {
            printf("\"setup_ms\": %.4f, \"moba_ms\": %.4f, ", r->setup_ms, r->moba_ms);
            if (o->no_gate_ms) printf("\"gate_ms\": null, ");
            else printf("\"gate_ms\": %.4f, ", r->gate_ms);
            printf("\"moba_gflops\": %.3f, \"moba_flops\": %.0f, \"plan_bytes\": %zu, ", gflops,
                   r->flops, r->plan_bytes);
        }
        if (dense) printf("\"dense_ms\": %.4f, \"speedup\": %.4f}", r->dense_ms, speedup);
        else printf("\"dense\": \"%s\"}", dense_word);
    } else {
        char heads[32];
        if (pt->hq == pt->hk) snprintf(heads, sizeof heads, "%d", pt->hq);
        else snprintf(heads, sizeof heads, "%d/%d", pt->hq, pt->hk);
        printf("%7d %5d %7s %4d %5d %5d %5s ", pt->seqlen, pt->batch, heads, pt->d, pt->block,
               pt->top_k, dt);
        if (!ok) {
            printf("%10s\n", "unsupported");
            return;
        }
        printf("%10.2f ", r->moba_ms);
        if (o->no_gate_ms) printf("%9s ", "-");
        else printf("%9.2f ", r->gate_ms);
        if (dense) printf("%10.2f %7.2fx ", r->dense_ms, speedup);
        else printf("%10s %8s ", dense_word, "-");
        printf("%12.2f %9.2f %9.2f\n", gflops, (double)r->plan_bytes / (1024.0 * 1024.0),
               r->setup_ms);
    }
    fflush(stdout);
}

/* ------------------------------------------------------------------ */

static int fail(const char *call, moba_status st)
{
    fprintf(stderr, "moba-bench: %s failed: %s: %s\n", call, moba_status_string(st),
            moba_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    options o;
    int pa = parse_args(argc, argv, &o);
    if (pa) {
        usage(pa > 0 ? stdout : stderr);
        return pa > 0 ? 0 : 2;
    }
    moba_context *ctx = NULL;
    moba_status st = moba_context_create(&ctx, o.backend);
    if (st) return fail("moba_context_create", st);
    int rc = 1;
    const char *backend = moba_context_backend(ctx);
    const int dev = moba_context_device(ctx);
    moba_device_info di;
    if ((st = moba_device_info_get(backend, dev, &di))) {
        fail("moba_device_info_get", st);
        goto out;
    }
    if (o.threads && (st = moba_context_set_num_threads(ctx, o.threads))) {
        fprintf(stderr, "moba-bench: --threads %d: backend %s cannot set the thread count: "
                        "%s: %s\n", o.threads, backend, moba_status_string(st), moba_last_error());
        goto out;
    }
    int threads = 0;
    if (moba_context_get_num_threads(ctx, &threads)) threads = 0;

    const int_list *kv = o.kv_heads.n ? &o.kv_heads : NULL;
    const int n_kv = kv ? kv->n : 1;
    const int total = o.seqlen.n * o.batch.n * o.q_heads.n * n_kv * o.head_dim.n *
                      o.block_size.n * o.top_k.n * o.n_dtypes;
    print_header(&o, backend, dev, &di, threads);
    int index = 0;
    /* Sequence length varies slowest so a table reads as a scaling curve. */
    for (int a = 0; a < o.seqlen.n; a++)
    for (int bb = 0; bb < o.batch.n; bb++)
    for (int c = 0; c < o.q_heads.n; c++)
    for (int e = 0; e < n_kv; e++)
    for (int f = 0; f < o.head_dim.n; f++)
    for (int g = 0; g < o.block_size.n; g++)
    for (int h = 0; h < o.top_k.n; h++)
    for (int i = 0; i < o.n_dtypes; i++) {
        point pt = {(int32_t)o.seqlen.v[a], (int32_t)o.batch.v[bb], (int32_t)o.q_heads.v[c],
                    (int32_t)(kv ? kv->v[e] : o.q_heads.v[c]), (int32_t)o.head_dim.v[f],
                    (int32_t)o.block_size.v[g], (int32_t)o.top_k.v[h], o.dtypes[i]};
        if (!o.quiet) {
            fprintf(stderr, "[%d/%d] seqlen=%d batch=%d heads=%d/%d D=%d block=%d top_k=%d "
                            "dtype=%s ...\n", index + 1, total, pt.seqlen, pt.batch, pt.hq,
                    pt.hk, pt.d, pt.block, pt.top_k, moba_dtype_name(pt.dtype));
        }
        if ((int64_t)pt.seqlen * pt.batch > INT32_MAX) {
            fprintf(stderr, "moba-bench: seqlen * batch = %lld does not fit cu_seqlens (int32)\n",
                    (long long)pt.seqlen * pt.batch);
            goto out;
        }
        result r;
        if ((st = run_point(ctx, &pt, &o, &r))) {
            if (o.json) printf("\n  ]\n}\n");
            fail(failed_call, st);
            goto out;
        }
        print_row(&o, backend, &di, &pt, &r, index++);
    }
    if (o.json) printf("\n  ]\n}\n");
    rc = 0;
out:
    moba_context_destroy(ctx);
    return rc;
}
