/* Argument checks written once for every backend (spec §7.6). */
#include <math.h>

#include "internal.h"

moba_status moba_check_params(const moba_params *p)
{
    if (!p)
        return moba_set_error(MOBA_ERR_NULL_POINTER, "params is NULL");
    if (p->num_q_heads <= 0)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "params.num_q_heads = %d: must be >= 1",
                              (int)p->num_q_heads);
    if (p->num_kv_heads <= 0)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "params.num_kv_heads = %d: must be >= 1",
                              (int)p->num_kv_heads);
    if (p->num_q_heads % p->num_kv_heads != 0)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "params.num_q_heads = %d is not a multiple of "
                              "params.num_kv_heads = %d (GQA needs Hq %% Hk == 0)",
                              (int)p->num_q_heads, (int)p->num_kv_heads);
    if (p->head_dim <= 0)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "params.head_dim = %d: must be >= 1",
                              (int)p->head_dim);
    if (p->block_size <= 0)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "params.block_size = %d: must be >= 1",
                              (int)p->block_size);
    if (p->top_k <= 0)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "params.top_k = %d: must be >= 1 (it counts the "
                              "query's own block)",
                              (int)p->top_k);
    if (!moba_dtype_size(p->dtype))
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "params.dtype = %d: expected MOBA_F32, MOBA_F16 "
                              "or MOBA_BF16",
                              (int)p->dtype);
    if (!(isfinite(p->softmax_scale) && p->softmax_scale >= 0.0f))
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "params.softmax_scale = %g: must be finite and "
                              ">= 0 (0 selects 1/sqrt(head_dim))",
                              (double)p->softmax_scale);
    if (p->causal != 0 && p->causal != 1)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "params.causal = %d: must be 0 or 1",
                              (int)p->causal);
    return MOBA_OK;
}

moba_status moba_check_buffer(const moba_context *ctx, const moba_buffer *b,
                              const char *what, int64_t rows, int64_t cols,
                              size_t elem_size)
{
    if (!b)
        return moba_set_error(MOBA_ERR_NULL_POINTER, "buffer %s is NULL", what);
    if (b->ctx != ctx)
        return moba_set_error(MOBA_ERR_WRONG_CONTEXT,
                              "buffer %s was created on another context (%s), "
                              "not this plan's (%s)",
                              what, b->ctx->name, ctx->name);
    /* rows and cols are validated sizes; their product was range-checked
     * when the problem was built. */
    size_t need = (size_t)rows * (size_t)cols * elem_size;
    if (b->bytes < need)
        return moba_set_error(MOBA_ERR_BUFFER_TOO_SMALL,
                              "buffer %s holds %zu bytes, the problem needs "
                              "%zu (%lld x %lld elements of %zu bytes)",
                              what, b->bytes, need, (long long)rows,
                              (long long)cols, elem_size);
    return MOBA_OK;
}
