/* Spec §3 / §7.1: top-k selection against the reference, exact ties
 * (larger block index wins, no tolerance) and NaN scores (never preferred
 * to a number). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conformance.h"

void test_selection_random(void **state)
{
    (void)state;
    /* many blocks per sequence, so the top-k has real competition */
    static const moba_dtype dts[] = {MOBA_F32, MOBA_F16, MOBA_BF16};
    int32_t cu[3] = {0, conf_scaled(400, 120), 0};
    cu[2] = cu[1] + conf_scaled(161, 50);
    int bad = 0;
    /* D = 128 reaches the GPU's tensor-core gate for f16/bf16. */
    for (int32_t d = 32; d <= 128; d += 96)
        for (size_t i = 0; i < 3; i++) {
            char name[64];
            snprintf(name, sizeof name, "selection S=4 top_k=8 D=%d %s", (int)d,
                     moba_dtype_name(dts[i]));
            conf_case c = {0};
            c.name = name;
            c.p = conf_params(4, 2, d, 4, 8, dts[i]);
            c.batch = 2;
            c.cu = cu;
            c.seed = 200 + i + (uint64_t)d;
            bad += conf_run(&c);
        }
    assert_int_equal(bad, 0);
}

/* ---- exact ties ---- */

/* One sequence of nb full blocks; the blocks flagged in tied get bitwise
 * equal keys (so equal centroids and scores), above every other block. */
typedef struct tie_set {
    int32_t nb;
    const unsigned char *tied;
} tie_set;

#define TIE_NB 12
static const unsigned char tied12[TIE_NB] = {0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0};

static void ties_prepare(const conf_case *c, float *q, float *k, float *v)
{
    (void)v;
    const tie_set *ts = c->user;
    const moba_params *p = &c->p;
    const int32_t S = p->block_size, row = p->num_kv_heads * p->head_dim;
    const int32_t T = c->cu[c->batch];
    conf_rng r = {c->seed ^ 0xabcdefu};
    int32_t first = 0;
    while (!ts->tied[first]) first++;
    /* positive queries, positive tied keys, negative other keys */
    conf_rng_fill(&r, q, (size_t)T * p->num_q_heads * p->head_dim, 0.5f, 1.0f);
    conf_rng_fill(&r, k, (size_t)T * row, -1.0f, -0.5f);
    conf_rng_fill(&r, k + (size_t)first * S * row, (size_t)S * row, 0.5f, 1.0f);
    for (int32_t j = first + 1; j < ts->nb; j++)
        if (ts->tied[j])
            memcpy(k + (size_t)j * S * row, k + (size_t)first * S * row,
                   sizeof *k * (size_t)S * row);
}

static int ties_check(const conf_case *c, const int32_t *sel)
{
    const tie_set *ts = c->user;
    const moba_params *p = &c->p;
    const int32_t S = p->block_size, K = p->top_k, Hq = p->num_q_heads;
    int bad = 0;
    for (int32_t t = 0; t < c->cu[1]; t++) {
        int32_t b = t / S;
        for (int32_t h = 0; h < Hq; h++) {
            const int32_t *row = sel + ((size_t)t * Hq + h) * K;
            /* the K-1 largest tied past blocks must be in, larger first */
            int32_t need = K - 1;
            for (int32_t j = b - 1; j >= 0 && need > 0; j--) {
                if (!ts->tied[j]) continue;
                need--;
                int found = 0;
                for (int32_t i = 0; i < K; i++) found |= row[i] == j;
                if (!found && bad++ < 5)
                    fprintf(stderr, "  [%s] token %d head %d: tied block %d "
                            "(a larger index among equal scores) not selected\n",
                            c->name, (int)t, (int)h, (int)j);
            }
        }
    }
    return bad;
}

/* One sequence of T tokens in blocks of S, Hq = 4, Hk = 2, whose
 * selection must equal the reference's exactly (CASE_STRICT_SELECT). */
static int strict_run(const char *what, int32_t d, int32_t S, int32_t T, moba_dtype dt,
                      int32_t top_k, uint64_t seed,
                      void (*prepare)(const conf_case *, float *, float *, float *),
                      int (*check_sel)(const conf_case *, const int32_t *), const void *user)
{
    char name[80];
    snprintf(name, sizeof name, "%s top_k=%d D=%d %s", what, (int)top_k, (int)d,
             moba_dtype_name(dt));
    int32_t cu[2] = {0, T};
    conf_case c = {0};
    c.name = name;
    c.p = conf_params(4, 2, d, S, top_k, dt);
    c.batch = 1;
    c.cu = cu;
    c.seed = seed;
    c.flags = CASE_STRICT_SELECT;
    c.prepare = prepare;
    c.check_sel = check_sel;
    c.user = user;
    return conf_run(&c);
}

/* Ties in nb blocks of 8. */
static int ties_run(const char *what, const tie_set *ts, int32_t d, moba_dtype dt,
                    int32_t top_k, uint64_t seed)
{
    return strict_run(what, d, 8, ts->nb * 8, dt, top_k, seed, ties_prepare, ties_check, ts);
}

void test_selection_ties(void **state)
{
    (void)state;
    static const moba_dtype dts[] = {MOBA_F32, MOBA_F16, MOBA_BF16};
    static const int32_t topk[] = {2, 3, 5};
    const tie_set few = {TIE_NB, tied12};
    int bad = 0;
    /* D = 64 reaches the GPU's tensor-core gate for f16/bf16; D = 32 the
     * SIMT one. */
    for (int32_t d = 32; d <= 64; d += 32)
        for (size_t i = 0; i < 3; i++)
            for (size_t j = 0; j < 3; j++)
                bad += ties_run("exact ties", &few, d, dts[i], topk[j],
                                300 + 3 * i + j + (uint64_t)d);
    /* Ties that decide evictions: two of every three of 160 blocks tied,
     * so each of the tensor-core gate's lanes (32 columns of a 64-block
     * tile) sees more tied candidates than its list holds, across three
     * tiles, and 11 past blocks take two selection passes of 8, the second
     * bounded by the first's worst entry, itself tied. */
    enum { MANY = 160 };
    unsigned char tied_many[MANY];
    for (int32_t j = 0; j < MANY; j++) tied_many[j] = j % 3 != 2;
    const tie_set many = {MANY, tied_many};
    for (size_t i = 0; i < 3; i++)
        bad += ties_run("many ties", &many, 64, dts[i], 12, 400 + i);
    assert_int_equal(bad, 0);
}

/* ---- scores skewed between a row's ranking lanes ---- */

/* Blocks of one token whose key has a_j in element 0, and every query is
 * e_0, so score j is a_j exactly (small integers: exact in f16 and bf16).
 * The CUDA tensor-core gate ranks a row on two lanes, columns 0-31 and
 * 32-63 of each 64-block tile, each with its own list, and filters
 * candidates by floors certified from both lanes' lists (docs/perf.md,
 * CUDA v29); these scores put a row's whole top-7 in one lane's half of
 * the first tile, so a floor taken from the wrong lane (the better H-th
 * best instead of the worse) drops winners.  Then a block of tile 1 beats
 * them all, and tiles 2-3 tie the first tile's 5th best, so the larger
 * blocks must win those ties. */
static float skew_score(int32_t j)
{
    if (j < 32) return (float)(100 + j);
    if (j < 64) return (float)(j - 48);
    if (j < 128) return j == 100 ? 200.0f : 50.0f;
    return 127.0f;
}

static void skew_prepare(const conf_case *c, float *q, float *k, float *v)
{
    (void)v;
    const moba_params *p = &c->p;
    const int32_t D = p->head_dim, Hk = p->num_kv_heads, Hq = p->num_q_heads;
    const int32_t T = c->cu[c->batch];
    memset(q, 0, sizeof *q * (size_t)T * Hq * D);
    for (int32_t t = 0; t < T; t++) {
        for (int32_t h = 0; h < Hq; h++) q[((size_t)t * Hq + h) * D] = 1.0f;
        for (int32_t h = 0; h < Hk; h++) k[((size_t)t * Hk + h) * D] = skew_score(t);
    }
}

/* 200 blocks of S = 1: four tiles of 64. */
static int skew_run(int32_t d, moba_dtype dt, int32_t top_k, uint64_t seed)
{
    return strict_run("skewed scores", d, 1, 200, dt, top_k, seed, skew_prepare, NULL, NULL);
}

void test_selection_skewed(void **state)
{
    (void)state;
    static const moba_dtype dts[] = {MOBA_F16, MOBA_BF16};
    static const int32_t topk[] = {3, 8, 12}; /* lists of 2, 7, 8 (two passes) */
    /* D = 64 and 128 reach the GPU's tensor-core gate for f16/bf16. */
    int bad = skew_run(64, MOBA_F32, 8, 500);
    for (int32_t d = 64; d <= 128; d += 64)
        for (size_t i = 0; i < 2; i++)
            for (size_t j = 0; j < 3; j++) bad += skew_run(d, dts[i], topk[j], 501 + 3 * i + j);
    assert_int_equal(bad, 0);
}

/* ---- NaN scores ---- */

#define NAN_NB 10
static const unsigned char nan_block[NAN_NB] = {1, 0, 1, 0, 0, 1, 0, 1, 1, 0};

/* A NaN in one key of a block makes that block's centroid, hence every
 * score against it, NaN (kv head 0 only; kv head 1 stays finite). */
static void nan_prepare(const conf_case *c, float *q, float *k, float *v)
{
    (void)q;
    (void)v;
    const moba_params *p = &c->p;
    const int32_t S = p->block_size, D = p->head_dim, Hk = p->num_kv_heads;
    for (int32_t j = 0; j < NAN_NB; j++)
        if (nan_block[j])
            k[((size_t)(j * S + j % S) * Hk + 0) * D + (size_t)j % D] = NAN;
}

static int nan_check(const conf_case *c, const int32_t *sel)
{
    const moba_params *p = &c->p;
    const int32_t S = p->block_size, K = p->top_k, Hq = p->num_q_heads;
    const int32_t group = Hq / p->num_kv_heads;
    int bad = 0;
    for (int32_t t = 0; t < c->cu[1]; t++) {
        int32_t b = t / S, finite = 0;
        for (int32_t j = 0; j < b; j++) finite += !nan_block[j];
        int32_t past = K - 1 < b ? K - 1 : b;
        int32_t want = past < finite ? past : finite;
        for (int32_t h = 0; h < group; h++) { /* kv head 0 */
            const int32_t *row = sel + ((size_t)t * Hq + h) * K;
            int32_t got = 0;
            for (int32_t i = 0; i < K; i++)
                got += row[i] >= 0 && row[i] != b && !nan_block[row[i]];
            if (got != want && bad++ < 5)
                fprintf(stderr, "  [%s] token %d head %d: %d finite-score past "
                        "blocks selected, %d expected (NaN was preferred to a "
                        "number)\n", c->name, (int)t, (int)h, (int)got, (int)want);
        }
    }
    return bad;
}

void test_selection_nan(void **state)
{
    (void)state;
    static const moba_dtype dts[] = {MOBA_F32, MOBA_F16, MOBA_BF16};
    int32_t cu[2] = {0, NAN_NB * 8 - 3};
    int bad = 0;
    for (int32_t d = 32; d <= 64; d += 32) { /* SIMT and tensor-core gates */
        for (size_t i = 0; i < 3; i++) {
            char name[64];
            snprintf(name, sizeof name, "NaN scores D=%d %s", (int)d, moba_dtype_name(dts[i]));
            conf_case c = {0};
            c.name = name;
            c.p = conf_params(4, 2, d, 8, 4, dts[i]);
            c.batch = 1;
            c.cu = cu;
            c.seed = 400 + i + (uint64_t)d;
            c.flags = CASE_SELECT_ONLY;
            c.prepare = nan_prepare;
            c.check_sel = nan_check;
            bad += conf_run(&c);
        }
    }
    assert_int_equal(bad, 0);
}
