/*
 * The conformance program of spec §7: one binary, run once per backend
 * (argv[1]), through the public API only, so the same checks hold every
 * backend to the double-precision reference.
 */
#ifndef MOBA_TESTS_CONFORMANCE_H
#define MOBA_TESTS_CONFORMANCE_H

#include <stddef.h>
#include <stdint.h>

#include "moba/moba.h"
#include "moba/reference.h"

/* ---- globals set by main.c ---- */
extern const char *g_backend;        /* "cpu", "cuda", ...             */
extern moba_context *g_ctx;          /* a context on that backend      */
extern moba_device_info g_dev;       /* its device                     */
extern double g_scale;               /* size scale of the larger cases */
extern const char *g_vectors_dir;    /* tests/vectors in the source    */

/* Features a backend declined with MOBA_ERR_UNSUPPORTED where the spec
 * allows it; listed in the summary, not counted as failures. */
void conf_note_unsupported(const char *what, const char *why);

/* Scales a length of a larger case by g_scale, keeping it >= lo. */
int32_t conf_scaled(int32_t n, int32_t lo);

/* ---- data.c: seeded random data, device buffers with guard regions ---- */
typedef struct conf_rng {
    uint64_t s;
} conf_rng;

uint64_t conf_rng_next(conf_rng *r);
/* Uniform in [-1, -0.05] U [0.05, 1]: never zero. */
float conf_rng_value(conf_rng *r);
/* n values in [lo, hi] (lo, hi of one sign, never zero). */
void conf_rng_fill(conf_rng *r, float *x, size_t n, float lo, float hi);

/* f32 array -> malloc'ed storage-dtype bytes. */
void *conf_to_storage(const float *x, size_t n, moba_dtype dt);

/* A device buffer whose first `need` bytes are the tensor and whose tail
 * is a guard region filled with a byte pattern that must survive. */
typedef struct conf_buf {
    moba_buffer *buf;
    moba_buffer *outer; /* the allocation buf wraps at an offset, or NULL */
    size_t need, total;
    unsigned char *host; /* total bytes, last read back */
} conf_buf;

#define CONF_GUARD_BYTES 256

/* Allocates need + guard bytes and uploads `data` (need bytes). */
int conf_buf_input(conf_buf *b, moba_context *ctx, const void *data,
                   size_t need);
/* Allocates need + guard and fills the tensor with NaN of `dt` (elements of
 * moba_dtype_size(dt) bytes). */
int conf_buf_output(conf_buf *b, moba_context *ctx, size_t need,
                    moba_dtype dt);
/* The same, the tensor `off` bytes past the start of a buffer of the
 * library's (a wrap of its native address + off: backends whose native
 * handle is an address, not OpenCL's cl_mem). */
int conf_buf_input_at(conf_buf *b, moba_context *ctx, const void *data,
                      size_t need, size_t off);
int conf_buf_output_at(conf_buf *b, moba_context *ctx, size_t need,
                       moba_dtype dt, size_t off);
/* Reads everything back; returns the number of guard bytes changed. */
int conf_buf_fetch(conf_buf *b);
/* Reads back and compares the tensor part with `data` byte for byte;
 * returns 0 if equal. */
int conf_buf_unchanged(conf_buf *b, const void *data);
void conf_buf_free(conf_buf *b);

/* ---- check.c: the comparisons of spec §7 ---- */
void conf_tolerance(moba_dtype dt, double *atol, double *rtol);

/* Each returns the number of failures found (0 = pass), printing the first
 * few with the case name.  Selections are in the moba_plan_read_selection
 * layout. */
int conf_check_selection_valid(const char *name, const moba_params *p,
                               const int32_t *cu, int32_t batch,
                               const int32_t *sel);
/* strict: no near-tie exemption (exact ties must follow the rule). */
int conf_check_selection_ref(const char *name, const moba_params *p,
                             const int32_t *cu, int32_t batch,
                             const int32_t *sel, const int32_t *ref,
                             const double *margin, const double *mscale,
                             int strict);
/* Elements of a storage-dtype tensor that are NaN (never written). */
int conf_check_written(const char *name, const char *what, const void *x,
                       size_t n, moba_dtype dt);
/* max|got - ref| <= atol + rtol*|ref|; on failure prints the worst element
 * as (token, head, dim).  got in storage dtype `dt`, rows x heads x dim. */
int conf_compare(const char *name, const char *what, const void *got,
                 moba_dtype dt, const double *ref, int64_t rows, int32_t heads,
                 int32_t dim, double atol, double rtol);

/* ---- cases.c: one case through the whole pipeline ---- */
enum {
    CASE_DENSE = 1 << 0,     /* top_k >= nb: also check dense attention   */
    CASE_REPEAT = 1 << 1,    /* run twice, outputs bitwise equal           */
    CASE_SELECT_ONLY = 1 << 2, /* gate + selection checks, no attention    */
    CASE_STRICT_SELECT = 1 << 3, /* selection equals the reference exactly */
    CASE_ALLOW_UNSUPPORTED = 1 << 4, /* UNSUPPORTED is a finding, not a fail */
    /* q, k and v one element past an aligned address; out one element
     * and lse 4 bytes past one (conf_buf_input_at) */
    CASE_OFFSET_IN = 1 << 5,
    CASE_OFFSET_OUT = 1 << 6
};

typedef struct conf_case conf_case;
struct conf_case {
    const char *name;
    moba_params p;
    int32_t batch;
    const int32_t *cu; /* batch + 1 entries */
    uint64_t seed;
    unsigned flags;
    /* Optional: shapes the random f32 data (ties, NaN) before it is
     * rounded to the storage dtype. */
    void (*prepare)(const conf_case *c, float *q, float *k, float *v);
    /* Optional: extra selection checks; returns failures. */
    int (*check_sel)(const conf_case *c, const int32_t *sel);
    const void *user;
};

typedef enum conf_result {
    CONF_PASS = 0,
    CONF_FAIL = 1,
    CONF_UNSUPPORTED = 2
} conf_result;

/* Runs and checks one case on g_ctx. */
conf_result conf_run_case(const conf_case *c);
/* conf_run_case, judged against the device info: a dtype or head dim the
 * device does not list must be refused with MOBA_ERR_UNSUPPORTED, one it
 * lists must run.  Returns the number of failures (0 or 1). */
int conf_run(const conf_case *c);

/* The parameters most cases start from. */
moba_params conf_params(int32_t hq, int32_t hk, int32_t d, int32_t s,
                        int32_t top_k, moba_dtype dt);

/* ---- cmocka tests, one group per file ---- */
void test_shapes_short(void **state);
void test_shapes_unaligned(void **state);
void test_shapes_block1(void **state);
void test_shapes_topk1(void **state);
void test_shapes_dense(void **state);
void test_shapes_empty_seqs(void **state);
void test_shapes_many_seqs(void **state);
void test_shapes_head_dims(void **state);
void test_shapes_head_dims_16bit(void **state);
void test_shapes_gqa(void **state);
void test_shapes_dtypes(void **state);
void test_shapes_noncausal(void **state);
void test_shapes_long_selection(void **state);
void test_shapes_long_blocks(void **state);
void test_shapes_many_tiles(void **state);
void test_shapes_offset(void **state);
void test_selection_random(void **state);
void test_selection_ties(void **state);
void test_selection_skewed(void **state);
void test_selection_nan(void **state);
void test_plan_reuse(void **state);
void test_deterministic(void **state);
void test_bad_null(void **state);
void test_bad_params(void **state);
void test_bad_seqlens(void **state);
void test_bad_overflow(void **state);
void test_bad_unsupported(void **state);
void test_bad_buffers(void **state);
void test_bad_wrong_context(void **state);
void test_bad_order(void **state);
void test_bad_backend(void **state);
void test_golden(void **state);

#endif
