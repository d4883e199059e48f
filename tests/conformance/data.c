/* Seeded random data and device buffers with guard regions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

uint64_t conf_rng_next(conf_rng *r)
{
    /* splitmix64: any seed, including 0, gives a good stream */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float unit(conf_rng *r)
{
    return (float)(conf_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

float conf_rng_value(conf_rng *r)
{
    float m = 0.05f + 0.95f * unit(r);
    return (conf_rng_next(r) & 1) ? m : -m;
}

void conf_rng_fill(conf_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * unit(r);
}

void *conf_to_storage(const float *x, size_t n, moba_dtype dt)
{
    size_t es = moba_dtype_size(dt);
    void *out = malloc(n * es + 1);
    if (out && moba_convert(out, dt, x, MOBA_F32, n) != MOBA_OK) {
        free(out);
        return NULL;
    }
    return out;
}

static unsigned char guard_byte(size_t i)
{
    return (unsigned char)(0x5a + 37 * i);
}

/* off > 0: the tensor starts off bytes into a buffer of the library's,
 * through a wrap of its native address (backends whose handle is one). */
static int alloc_guarded(conf_buf *b, moba_context *ctx, size_t need, size_t off)
{
    memset(b, 0, sizeof *b);
    b->need = need;
    b->total = need + CONF_GUARD_BYTES;
    b->host = malloc(b->total);
    if (!b->host) return -1;
    for (size_t i = 0; i < CONF_GUARD_BYTES; i++)
        b->host[need + i] = guard_byte(i);
    const char *call = "moba_buffer_alloc";
    moba_status st = moba_buffer_alloc(ctx, b->total + off, off ? &b->outer : &b->buf);
    if (!st && off) {
        call = "moba_buffer_wrap";
        st = moba_buffer_wrap(ctx, (char *)moba_buffer_native(b->outer) + off, b->total,
                              &b->buf);
    }
    if (st) {
        fprintf(stderr, "  %s(%zu bytes at offset %zu): %s: %s\n", call, b->total, off,
                moba_status_string(st), moba_last_error());
        return -1;
    }
    return 0;
}

static int upload(conf_buf *b)
{
    moba_status st = moba_buffer_write(b->buf, 0, b->host, b->total);
    if (st) {
        fprintf(stderr, "  moba_buffer_write: %s: %s\n", moba_status_string(st),
                moba_last_error());
        return -1;
    }
    return 0;
}

int conf_buf_input_at(conf_buf *b, moba_context *ctx, const void *data,
                      size_t need, size_t off)
{
    if (alloc_guarded(b, ctx, need, off)) return -1;
    if (need) memcpy(b->host, data, need);
    return upload(b);
}

int conf_buf_input(conf_buf *b, moba_context *ctx, const void *data,
                   size_t need)
{
    return conf_buf_input_at(b, ctx, data, need, 0);
}

int conf_buf_output_at(conf_buf *b, moba_context *ctx, size_t need, moba_dtype dt,
                       size_t off)
{
    if (alloc_guarded(b, ctx, need, off)) return -1;
    size_t es = moba_dtype_size(dt);
    const uint32_t nan32 = 0x7fc00000u;
    const uint16_t nan16 = dt == MOBA_BF16 ? 0x7fc0u : 0x7e00u;
    for (size_t i = 0; i + es <= need; i += es)
        memcpy(b->host + i, es == 4 ? (const void *)&nan32 : (const void *)&nan16,
               es);
    return upload(b);
}

int conf_buf_output(conf_buf *b, moba_context *ctx, size_t need, moba_dtype dt)
{
    return conf_buf_output_at(b, ctx, need, dt, 0);
}

int conf_buf_fetch(conf_buf *b)
{
    moba_status st = moba_buffer_read(b->buf, 0, b->host, b->total);
    if (st) {
        fprintf(stderr, "  moba_buffer_read: %s: %s\n", moba_status_string(st),
                moba_last_error());
        return CONF_GUARD_BYTES;
    }
    int bad = 0;
    for (size_t i = 0; i < CONF_GUARD_BYTES; i++)
        bad += b->host[b->need + i] != guard_byte(i);
    return bad;
}

int conf_buf_unchanged(conf_buf *b, const void *data)
{
    if (conf_buf_fetch(b)) return -1;
    return b->need && memcmp(b->host, data, b->need) != 0;
}

void conf_buf_free(conf_buf *b)
{
    moba_buffer_free(b->buf);
    moba_buffer_free(b->outer);
    free(b->host);
    memset(b, 0, sizeof *b);
}
