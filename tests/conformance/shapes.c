/* Spec §7.5: the shapes every backend must get right. */
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

static int run1(const char *name, moba_params p, int32_t batch,
                const int32_t *cu, uint64_t seed, unsigned flags)
{
    conf_case c = {0};
    c.name = name;
    c.p = p;
    c.batch = batch;
    c.cu = cu;
    c.seed = seed;
    c.flags = flags;
    return conf_run(&c);
}

/* cu_seqlens from lengths. */
static void cumulate(const int32_t *len, int32_t batch, int32_t *cu)
{
    cu[0] = 0;
    for (int32_t i = 0; i < batch; i++) cu[i + 1] = cu[i] + len[i];
}

void test_shapes_short(void **state)
{
    (void)state;
    /* every sequence shorter than one block */
    int32_t len[3] = {1, 5, 63}, cu[4];
    cumulate(len, 3, cu);
    int bad = run1("short f32", conf_params(2, 1, 32, 64, 3, MOBA_F32), 3, cu, 11, 0);
    bad += run1("short bf16", conf_params(2, 2, 64, 64, 2, MOBA_BF16), 3, cu, 12, 0);
    int32_t one[2] = {0, 1};
    bad += run1("single token", conf_params(1, 1, 32, 4, 3, MOBA_F32), 1, one, 13, 0);
    assert_int_equal(bad, 0);
}

void test_shapes_unaligned(void **state)
{
    (void)state;
    /* lengths that are not multiples of S, and an S that is no power of 2 */
    int32_t len[3] = {100, 37, 129}, cu[4];
    cumulate(len, 3, cu);
    int bad = run1("unaligned S=16", conf_params(2, 2, 64, 16, 3, MOBA_F32), 3, cu, 21, 0);
    bad += run1("unaligned S=13", conf_params(2, 1, 32, 13, 4, MOBA_F16), 3, cu, 22, 0);
    assert_int_equal(bad, 0);
}

void test_shapes_block1(void **state)
{
    (void)state;
    int32_t len[2] = {40, 7}, cu[3];
    cumulate(len, 2, cu);
    int bad = run1("S=1", conf_params(2, 1, 32, 1, 4, MOBA_F32), 2, cu, 31, 0);
    bad += run1("S=1 top_k=1", conf_params(1, 1, 32, 1, 1, MOBA_F32), 2, cu, 32, 0);
    assert_int_equal(bad, 0);
}

void test_shapes_topk1(void **state)
{
    (void)state;
    int32_t len[2] = {100, 20}, cu[3];
    cumulate(len, 2, cu);
    int bad = run1("top_k=1 f32", conf_params(2, 1, 64, 8, 1, MOBA_F32), 2, cu, 41, 0);
    bad += run1("top_k=1 f16", conf_params(2, 2, 32, 16, 1, MOBA_F16), 2, cu, 42, 0);
    assert_int_equal(bad, 0);
}

void test_shapes_dense(void **state)
{
    (void)state;
    /* top_k >= nb: exactly dense causal attention */
    int32_t len[2] = {100, 50}, cu[3];
    cumulate(len, 2, cu);
    int bad = run1("top_k=nb", conf_params(2, 1, 32, 16, 7, MOBA_F32), 2, cu, 51, CASE_DENSE);
    bad += run1("top_k>nb", conf_params(2, 2, 64, 16, 20, MOBA_F32), 2, cu, 52, CASE_DENSE);
    bad += run1("top_k>nb bf16", conf_params(4, 1, 32, 8, 64, MOBA_BF16), 2, cu, 53, CASE_DENSE);
    assert_int_equal(bad, 0);
}

void test_shapes_empty_seqs(void **state)
{
    (void)state;
    /* empty sequences first, in the middle (several in a row) and last */
    int32_t cu[7] = {0, 0, 30, 30, 30, 95, 95};
    int bad = run1("empty sequences", conf_params(2, 1, 32, 8, 3, MOBA_F32), 6, cu, 61, 0);
    int32_t none[3] = {0, 0, 0};
    bad += run1("all sequences empty", conf_params(2, 1, 32, 8, 3, MOBA_F32), 2, none, 62, 0);
    assert_int_equal(bad, 0);
}

void test_shapes_many_seqs(void **state)
{
    (void)state;
    int32_t batch = conf_scaled(2000, 300);
    int32_t *len = malloc(sizeof *len * (size_t)batch);
    int32_t *cu = malloc(sizeof *cu * ((size_t)batch + 1));
    assert_non_null(len);
    assert_non_null(cu);
    conf_rng r = {71};
    for (int32_t i = 0; i < batch; i++) len[i] = (int32_t)(conf_rng_next(&r) % 25);
    cumulate(len, batch, cu);
    char name[64];
    snprintf(name, sizeof name, "B=%d short sequences", (int)batch);
    int bad = run1(name, conf_params(2, 1, 32, 4, 3, MOBA_F32), batch, cu, 72,
                   CASE_REPEAT);
    free(len);
    free(cu);
    assert_int_equal(bad, 0);
}

void test_shapes_head_dims(void **state)
{
    (void)state;
    /* The spec's list, plus odd sizes that exercise vector tails (a backend
     * that does not list them must refuse them cleanly). */
    static const int32_t dims[] = {32, 64, 96, 128, 256, 8, 40, 67};
    static const moba_dtype dts[] = {MOBA_F32, MOBA_BF16};
    int32_t len[2] = {conf_scaled(200, 48), conf_scaled(77, 20)}, cu[3];
    cumulate(len, 2, cu);
    int bad = 0;
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        for (size_t j = 0; j < sizeof dts / sizeof dts[0]; j++) {
            char name[64];
            snprintf(name, sizeof name, "head_dim %d %s", (int)dims[i],
                     moba_dtype_name(dts[j]));
            bad += run1(name, conf_params(2, 1, dims[i], 32, 3, dts[j]), 2, cu,
                        80 + i * 2 + j, 0);
        }
    assert_int_equal(bad, 0);
}

/* The 16-bit dtypes at D = 32, 96 and 256 beside 64 / 128: the head dims
 * whose rows are not whole 128-byte lines (CUDA's tensor-core kernels
 * swizzle their merge slots by row), and the largest.  Top-12 of 16-key blocks: rows with more
 * partials than the first eight the merge keeps in registers and than
 * its slots hold at once; then blocks of 4096 keys (CUDA's 32-rows-per-warp
 * kernel, which D = 96 takes without wgmma). */
void test_shapes_head_dims_16bit(void **state)
{
    (void)state;
    static const int32_t dims[] = {32, 96};
    int32_t len[2] = {conf_scaled(300, 64), 77}, cu[3];
    cumulate(len, 2, cu);
    int bad = 0;
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "head_dim %d top-12 f16", (int)dims[i]);
        bad += run1(name, conf_params(2, 1, dims[i], 16, 12, MOBA_F16), 2, cu, 180 + (int)i, 0);
        snprintf(name, sizeof name, "head_dim %d top-12 bf16", (int)dims[i]);
        bad += run1(name, conf_params(1, 1, dims[i], 16, 12, MOBA_BF16), 2, cu, 182 + (int)i, 0);
    }
    int32_t wlen[2] = {4096 + 512, 64}, wcu[3];
    cumulate(wlen, 2, wcu);
    bad += run1("long blocks S=4096 D=96 bf16", conf_params(1, 1, 96, 4096, 2, MOBA_BF16), 2, wcu,
                184, 0);
    /* D = 256, where CUDA's tensor cores take every block size on the
     * 16-rows-per-warp key-centric kernel with 32-key chunks, and merge a
     * row's partials in four passes of 64 columns: more partials than its
     * slots, a block that is not whole chunks, a block of four chunks with
     * GQA; the tensor-core gate's pass lengths 8 (passes), 7, 4 and 2. */
    bad += run1("head_dim 256 top-12 f16", conf_params(2, 1, 256, 16, 12, MOBA_F16), 2, cu, 185, 0);
    bad += run1("head_dim 256 top-8 bf16", conf_params(1, 1, 256, 16, 8, MOBA_BF16), 2, cu, 186, 0);
    bad += run1("head_dim 256 block 40 top-5 bf16", conf_params(2, 1, 256, 40, 5, MOBA_BF16), 2, cu,
                187, 0);
    bad += run1("head_dim 256 block 128 GQA f16", conf_params(4, 2, 256, 128, 3, MOBA_F16), 2, cu,
                188, 0);
    /* The tensor-core gate's other pass lengths at D = 32 and 96, whose
     * centroid tiles leave half of a 64-column box unused. */
    bad += run1("head_dim 96 top-8 GQA f16", conf_params(4, 2, 96, 16, 8, MOBA_F16), 2, cu, 189, 0);
    bad += run1("head_dim 32 block 24 top-5 bf16", conf_params(2, 1, 32, 24, 5, MOBA_BF16), 2, cu,
                190, 0);
    assert_int_equal(bad, 0);
}

void test_shapes_gqa(void **state)
{
    (void)state;
    static const int32_t heads[][2] = {{2, 2}, {4, 2}, {8, 2}, {16, 2}, {4, 1}, {8, 1}};
    int32_t len[2] = {conf_scaled(150, 40), 33}, cu[3];
    cumulate(len, 2, cu);
    int bad = 0;
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "GQA Hq=%d Hk=%d%s", (int)heads[i][0],
                 (int)heads[i][1], heads[i][1] == 1 ? " (MQA)" : "");
        bad += run1(name, conf_params(heads[i][0], heads[i][1], 64, 16, 3, MOBA_F32),
                    2, cu, 90 + i, 0);
    }
    bad += run1("GQA Hq=8 Hk=2 f16", conf_params(8, 2, 32, 16, 3, MOBA_F16), 2, cu, 99, 0);
    assert_int_equal(bad, 0);
}

void test_shapes_dtypes(void **state)
{
    (void)state;
    static const moba_dtype dts[] = {MOBA_F32, MOBA_F16, MOBA_BF16};
    int32_t len[2] = {conf_scaled(300, 64), conf_scaled(130, 30)}, cu[3];
    cumulate(len, 2, cu);
    int bad = 0;
    for (size_t i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof name, "dtype %s", moba_dtype_name(dts[i]));
        bad += run1(name, conf_params(4, 2, 64, 32, 4, dts[i]), 2, cu, 100 + i, 0);
    }
    assert_int_equal(bad, 0);
}

void test_shapes_noncausal(void **state)
{
    (void)state;
    int32_t len[2] = {70, 33}, cu[3];
    cumulate(len, 2, cu);
    moba_params p = conf_params(2, 1, 32, 16, 3, MOBA_F32);
    p.causal = 0;
    int bad = run1("non-causal f32", p, 2, cu, 111, CASE_ALLOW_UNSUPPORTED);
    p.dtype = MOBA_F16;
    bad += run1("non-causal f16", p, 2, cu, 112, CASE_ALLOW_UNSUPPORTED);
    p.dtype = MOBA_F32;
    p.top_k = 5; /* nb = 5 and 3: every block, no mask */
    bad += run1("non-causal top_k>=nb", p, 2, cu, 113,
                CASE_ALLOW_UNSUPPORTED | CASE_DENSE);
    assert_int_equal(bad, 0);
}

void test_deterministic(void **state)
{
    (void)state;
    int32_t len[3] = {conf_scaled(257, 64), 3, conf_scaled(120, 30)}, cu[4];
    cumulate(len, 3, cu);
    int bad = run1("repeat f32", conf_params(4, 1, 64, 16, 4, MOBA_F32), 3, cu, 121,
                   CASE_REPEAT);
    bad += run1("repeat bf16", conf_params(4, 2, 128, 32, 3, MOBA_BF16), 3, cu, 122,
                CASE_REPEAT);
    assert_int_equal(bad, 0);
}

void test_shapes_long_selection(void **state)
{
    (void)state;
    /* Selections longer than a GPU gate pass (8 past blocks) and than the
     * 16-entry register sort, in 16-bit dtypes at D = 64 / 128 (the
     * tensor-core gate's shapes), with query tiles that span many small
     * blocks, GQA, and a batch whose lengths end tiles midway. */
    int32_t len[3] = {conf_scaled(700, 260), 45, conf_scaled(301, 150)}, cu[4];
    cumulate(len, 3, cu);
    static const struct {
        int32_t d, s, k;
        moba_dtype dt;
    } c[] = {{64, 8, 12, MOBA_BF16}, {128, 8, 20, MOBA_F16}, {128, 16, 9, MOBA_BF16},
             {64, 4, 30, MOBA_F16}};
    int bad = 0;
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char name[80];
        snprintf(name, sizeof name, "long selection D=%d S=%d top_k=%d %s", (int)c[i].d,
                 (int)c[i].s, (int)c[i].k, moba_dtype_name(c[i].dt));
        bad += run1(name, conf_params(4, 2, c[i].d, c[i].s, c[i].k, c[i].dt), 3, cu,
                    130 + i, 0);
    }
    moba_params p = conf_params(2, 2, 128, 8, 11, MOBA_BF16);
    p.causal = 0;
    bad += run1("long selection non-causal bf16", p, 3, cu, 140, CASE_ALLOW_UNSUPPORTED);
    assert_int_equal(bad, 0);
}

/* Scores that rise along every block: each 256-key step of a block adds
 * 2 to its keys' elements, and a query row whose elements were made all
 * positive sees its best score jump by ~12 (scaled, at D = 128) at every
 * step, more than the 8 ln 2 by which a lazily rescaling kernel
 * lets a row's running max lag, so O is rescaled after much of a block
 * was accumulated; rows made all negative see falling scores and never
 * move.  The signs follow a hash of (token, head), so the two kinds share
 * warps and quads. */
static void rising_prepare(const conf_case *c, float *q, float *k, float *v)
{
    (void)v;
    const moba_params *p = &c->p;
    const int32_t D = p->head_dim, Hq = p->num_q_heads, Hk = p->num_kv_heads;
    for (int32_t b = 0; b < c->batch; b++)
        for (int32_t t = c->cu[b]; t < c->cu[b + 1]; t++) {
            const float step = 2.0f * (float)(((t - c->cu[b]) % p->block_size) / 256);
            for (int32_t h = 0; h < Hq; h++) {
                const uint32_t hash = ((uint32_t)t * 2654435761u + (uint32_t)h) >> 13;
                float *row = q + ((size_t)t * Hq + h) * D;
                for (int32_t d = 0; d < D; d++)
                    row[d] = (hash & 1) ? fabsf(row[d]) : -fabsf(row[d]);
            }
            for (int32_t i = 0; i < Hk * D; i++) k[(size_t)t * Hk * D + i] += step;
        }
}

void test_shapes_long_blocks(void **state)
{
    (void)state;
    /* Blocks longer than a GPU kernel keeps resident: 128 keys (resident,
     * two chunks), 200 (streamed, the last chunk masked; on compute 9.0
     * CUDA's warp-specialized wgmma kernel from 129 keys), and blocks of
     * 4096+ keys, where CUDA switches to its 32-rows-per-warp kernel
     * (MMA_WIDE_MIN), or on compute 9.0 to wgmma: whole 64- and 128-key
     * chunks only (4096) and with a masked chunk (4100), a pair of 64-row
     * tiles and a lone one (300 rows), causal and not.  16-bit dtypes at D = 64 / 128: the
     * tensor-core shapes. */
    int32_t len[2] = {1000, 300}, cu[3];
    cumulate(len, 2, cu);
    int bad = run1("long blocks S=128 bf16", conf_params(2, 1, 128, 128, 3, MOBA_BF16), 2, cu,
                   150, 0);
    bad += run1("long blocks S=200 f16", conf_params(2, 2, 64, 200, 3, MOBA_F16), 2, cu, 151, 0);
    /* The long blocks' rows are few (the cost is each first block's own,
     * causal, attention), but more than a pair of 64-row tiles. */
    int32_t wlen[2] = {4096 + 512, 64}, wcu[3];
    cumulate(wlen, 2, wcu);
    bad += run1("long blocks S=4096 bf16", conf_params(1, 1, 128, 4096, 2, MOBA_BF16), 2, wcu,
                152, 0);
    /* Two kv heads, query heads in pairs: a long block's copies name a kv
     * head that is not always the first (CUDA's TMA boxes take it as a
     * coordinate of the whole tensor).  Top-3 of two blocks and top-6:
     * selections that end early (-1 slots), in the CUDA own-block kernel's
     * merge for small top-k and for the rest. */
    bad += run1("long blocks S=4096 GQA 4/2 top-3 bf16", conf_params(4, 2, 64, 4096, 3, MOBA_BF16),
                2, wcu, 156, 0);
    bad += run1("long blocks S=4096 top-6 f16", conf_params(1, 1, 128, 4096, 6, MOBA_F16), 2, wcu,
                157, 0);
    int32_t mlen[1] = {4100 + 300}, mcu[2];
    cumulate(mlen, 1, mcu);
    bad += run1("long blocks S=4100 f16", conf_params(1, 1, 64, 4100, 2, MOBA_F16), 1, mcu, 153,
                0);
    /* Non-causal: every row attends its whole own block. */
    moba_params nc = conf_params(1, 1, 64, 4100, 2, MOBA_F16);
    nc.causal = 0;
    bad += run1("long blocks S=4100 non-causal f16", nc, 1, mcu, 154, CASE_ALLOW_UNSUPPORTED);
    /* A past block of 4096 keys (the last 256 rows of the first
     * sequence) and own blocks of 4096 and 2048 keys, all with rising
     * scores. */
    int32_t rlen[2] = {4096 + 256, 2048}, rcu[3];
    cumulate(rlen, 2, rcu);
    conf_case rc = {0};
    rc.name = "long blocks S=4096 rising scores bf16";
    rc.p = conf_params(1, 1, 128, 4096, 2, MOBA_BF16);
    rc.batch = 2;
    rc.cu = rcu;
    rc.seed = 155;
    rc.prepare = rising_prepare;
    bad += conf_run(&rc);
    assert_int_equal(bad, 0);
}

void test_shapes_many_tiles(void **state)
{
    (void)state;
    /* More 64-row key-centric tiles than a GPU has SMs (~850 and ~380
     * here), so that a persistent kernel's CTA runs several steps of its
     * run, prefetching the next step's rows and block while it computes
     * and changing block between steps: whole 128-key blocks at D = 128,
     * and 64-key ones (a masked chunk of the 128-key kernels) at D = 64. */
    int32_t len[2] = {6000, 3000}, cu[3];
    cumulate(len, 2, cu);
    int bad = run1("many tiles S=128 bf16", conf_params(2, 1, 128, 128, 4, MOBA_BF16), 2, cu,
                   160, 0);
    int32_t len2[2] = {4000, 2000}, cu2[3];
    cumulate(len2, 2, cu2);
    bad += run1("many tiles S=64 f16", conf_params(2, 2, 64, 64, 3, MOBA_F16), 2, cu2, 161, 0);
    /* Blocks of more than 128 keys (on compute 9.0, CUDA's warp-specialized
     * kernel: pairs of tiles dealt round-robin, each CTA finding its next
     * pair's list from its last one): ~300 tiles in 128 lists of two or
     * three, so that a CTA's next pair (past 264 tiles on a GPU of 132
     * SMs) is ~100 lists on, several 32-list reads; each block's last 8
     * keys are a masked chunk. */
    int32_t len3[2] = {3000, 1100}, cu3[3];
    cumulate(len3, 2, cu3);
    bad += run1("many tiles S=136 f16", conf_params(4, 4, 64, 136, 2, MOBA_F16), 2, cu3, 162, 0);
    assert_int_equal(bad, 0);
}

void test_shapes_offset(void **state)
{
    (void)state;
    /* Tensors one element past an aligned address, as a slice of a larger
     * tensor is: every backend's aligned fast paths must step aside, for
     * the inputs and for the outputs alone (GPU kernels store 16-byte
     * vectors of out).  OpenCL's buffers are cl_mem handles, which cannot
     * be offset through moba_buffer_wrap. */
    if (strncmp(g_backend, "opencl", 6) == 0) skip();
    int32_t len[2] = {200, 130}, cu[3];
    cumulate(len, 2, cu);
    const unsigned both = CASE_OFFSET_IN | CASE_OFFSET_OUT;
    int bad = run1("offset q/k/v/out bf16", conf_params(4, 2, 128, 64, 3, MOBA_BF16), 2, cu, 171,
                   both);
    bad += run1("offset out bf16", conf_params(4, 2, 128, 64, 3, MOBA_BF16), 2, cu, 172,
                CASE_OFFSET_OUT);
    bad += run1("offset out f16 D=64", conf_params(2, 2, 64, 128, 2, MOBA_F16), 2, cu, 173,
                CASE_OFFSET_OUT);
    bad += run1("offset q/k/v f32 D=96", conf_params(2, 1, 96, 64, 3, MOBA_F32), 2, cu, 174,
                CASE_OFFSET_IN);
    assert_int_equal(bad, 0);
}
