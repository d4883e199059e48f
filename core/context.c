/* Contexts: a backend device plus the backend's per-context state. */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "moba_config.h"

const char *moba_version(void) { return MOBA_VERSION; }

moba_status moba_context_create(moba_context **ctx, const char *name)
{
    if (!ctx)
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_context_create: ctx is NULL");
    *ctx = NULL;
    const moba_backend_entry *e;
    int dev;
    moba_status st = moba_registry_resolve(name, &e, &dev);
    if (st) return st;
    moba_context *c = calloc(1, sizeof *c);
    if (!c)
        return moba_set_error(MOBA_ERR_OUT_OF_MEMORY,
                              "moba_context_create: out of memory");
    c->be = e->iface;
    c->device = dev;
    snprintf(c->name, sizeof c->name, "%s:%d", e->name, dev);
    st = c->be->context_create(dev, &c->bctx);
    if (st) {
        free(c);
        return st;
    }
    *ctx = c;
    return MOBA_OK;
}

void moba_context_destroy(moba_context *ctx)
{
    if (!ctx) return;
    ctx->be->context_destroy(ctx->bctx);
    free(ctx);
}

const char *moba_context_backend(const moba_context *ctx)
{
    return ctx ? ctx->be->name : NULL;
}

int moba_context_device(const moba_context *ctx)
{
    return ctx ? ctx->device : -1;
}

moba_status moba_context_set_stream(moba_context *ctx, void *stream)
{
    if (!ctx)
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_context_set_stream: ctx is NULL");
    return ctx->be->set_stream(ctx->bctx, stream);
}

moba_status moba_context_synchronize(moba_context *ctx)
{
    if (!ctx)
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_context_synchronize: ctx is NULL");
    return ctx->be->synchronize(ctx->bctx);
}

moba_status moba_context_set_num_threads(moba_context *ctx, int n)
{
    if (!ctx)
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_context_set_num_threads: ctx is NULL");
    if (n < 0)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "moba_context_set_num_threads: n = %d, expected "
                              ">= 0 (0 = default)", n);
    if (!ctx->be->set_num_threads)
        return moba_set_error(MOBA_ERR_UNSUPPORTED,
                              "backend %s has no thread count setting",
                              ctx->be->name);
    return ctx->be->set_num_threads(ctx->bctx, n);
}

moba_status moba_context_get_num_threads(const moba_context *ctx, int *n)
{
    if (!ctx || !n)
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_context_get_num_threads: %s is NULL",
                              ctx ? "n" : "ctx");
    if (!ctx->be->get_num_threads)
        return moba_set_error(MOBA_ERR_UNSUPPORTED,
                              "backend %s has no thread count setting",
                              ctx->be->name);
    return ctx->be->get_num_threads(ctx->bctx, n);
}
