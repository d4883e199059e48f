/* Buffer handles over backend memory, owned or wrapped. */
#include <stdlib.h>

#include "internal.h"

static moba_status new_handle(moba_context *ctx, void *native, size_t bytes,
                              int owned, moba_buffer **buf)
{
    moba_buffer *b = calloc(1, sizeof *b);
    if (!b) return MOBA_ERR_OUT_OF_MEMORY;
    b->ctx = ctx;
    b->native = native;
    b->bytes = bytes;
    b->owned = owned;
    *buf = b;
    return MOBA_OK;
}

moba_status moba_buffer_alloc(moba_context *ctx, size_t bytes, moba_buffer **buf)
{
    if (!ctx || !buf)
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_buffer_alloc: %s is NULL", ctx ? "buf" : "ctx");
    *buf = NULL;
    if (bytes == 0)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "moba_buffer_alloc: bytes = 0");
    void *native = NULL;
    moba_status st = ctx->be->buffer_alloc(ctx->bctx, bytes, &native);
    if (st) return st;
    if (new_handle(ctx, native, bytes, 1, buf)) {
        ctx->be->buffer_free(ctx->bctx, native);
        return moba_set_error(MOBA_ERR_OUT_OF_MEMORY,
                              "moba_buffer_alloc: out of memory for the handle");
    }
    return MOBA_OK;
}

moba_status moba_buffer_wrap(moba_context *ctx, void *native, size_t bytes,
                             moba_buffer **buf)
{
    if (!ctx || !native || !buf)
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_buffer_wrap: %s is NULL",
                              !ctx ? "ctx" : !native ? "native" : "buf");
    *buf = NULL;
    if (ctx->be->buffer_wrap_check) {
        moba_status st = ctx->be->buffer_wrap_check(ctx->bctx, native, bytes);
        if (st) return st;
    }
    if (new_handle(ctx, native, bytes, 0, buf))
        return moba_set_error(MOBA_ERR_OUT_OF_MEMORY,
                              "moba_buffer_wrap: out of memory for the handle");
    return MOBA_OK;
}

void moba_buffer_free(moba_buffer *buf)
{
    if (!buf) return;
    if (buf->owned) buf->ctx->be->buffer_free(buf->ctx->bctx, buf->native);
    free(buf);
}

size_t moba_buffer_size(const moba_buffer *buf) { return buf ? buf->bytes : 0; }

void *moba_buffer_native(const moba_buffer *buf)
{
    return buf ? buf->native : NULL;
}

static moba_status check_range(const moba_buffer *buf, size_t offset,
                               const void *host, size_t bytes, const char *fn)
{
    if (!buf || (!host && bytes))
        return moba_set_error(MOBA_ERR_NULL_POINTER, "%s: %s is NULL", fn,
                              buf ? "host pointer" : "buf");
    if (offset > buf->bytes || bytes > buf->bytes - offset)
        return moba_set_error(MOBA_ERR_BUFFER_TOO_SMALL,
                              "%s: range [%zu, %zu + %zu) exceeds the buffer's "
                              "%zu bytes",
                              fn, offset, offset, bytes, buf->bytes);
    return MOBA_OK;
}

moba_status moba_buffer_write(moba_buffer *buf, size_t offset, const void *src,
                              size_t bytes)
{
    moba_status st = check_range(buf, offset, src, bytes, "moba_buffer_write");
    if (st || bytes == 0) return st;
    return buf->ctx->be->buffer_write(buf->ctx->bctx, buf->native, offset, src,
                                      bytes);
}

moba_status moba_buffer_read(const moba_buffer *buf, size_t offset, void *dst,
                             size_t bytes)
{
    moba_status st = check_range(buf, offset, dst, bytes, "moba_buffer_read");
    if (st || bytes == 0) return st;
    return buf->ctx->be->buffer_read(buf->ctx->bctx, buf->native, offset, dst,
                                     bytes);
}
