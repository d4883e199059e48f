/* Plans: the validated problem plus the backend's gating/attention state. */
#include <stdlib.h>

#include "internal.h"

moba_params moba_params_default(void)
{
    moba_params p;
    p.num_q_heads = 1;
    p.num_kv_heads = 1;
    p.head_dim = 128;
    p.block_size = 512;
    p.top_k = 3;
    p.softmax_scale = 0.0f;
    p.dtype = MOBA_F32;
    p.causal = 1;
    return p;
}

static void plan_free(moba_plan *pl)
{
    free(pl->cu_seqlens);
    free(pl->seqs);
    free(pl);
}

moba_status moba_plan_create(moba_context *ctx, const moba_params *params,
                             const int32_t *cu_seqlens, int32_t batch,
                             moba_plan **plan)
{
    if (!ctx || !plan)
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_plan_create: %s is NULL", ctx ? "plan" : "ctx");
    *plan = NULL;
    moba_plan *pl = calloc(1, sizeof *pl);
    if (!pl)
        return moba_set_error(MOBA_ERR_OUT_OF_MEMORY, "moba_plan_create: out of memory");
    pl->ctx = ctx;
    moba_status st = moba_problem_init(&pl->pb, params, cu_seqlens, batch,
                                       &pl->cu_seqlens, &pl->seqs);
    if (!st) st = ctx->be->supports(ctx->bctx, &pl->pb);
    if (!st)
        st = ctx->be->plan_create(ctx->bctx, &pl->pb, &pl->bplan,
                                  &pl->device_bytes);
    if (st) {
        plan_free(pl);
        return st;
    }
    *plan = pl;
    return MOBA_OK;
}

void moba_plan_destroy(moba_plan *plan)
{
    if (!plan) return;
    plan->ctx->be->plan_destroy(plan->ctx->bctx, plan->bplan);
    plan_free(plan);
}

moba_status moba_plan_tokens(const moba_plan *plan, int64_t *tokens)
{
    if (!plan || !tokens)
        return moba_set_error(MOBA_ERR_NULL_POINTER, "moba_plan_tokens: %s is NULL",
                              plan ? "tokens" : "plan");
    *tokens = plan->pb.total_tokens;
    return MOBA_OK;
}

moba_status moba_plan_selection_size(const moba_plan *plan, size_t *entries)
{
    if (!plan || !entries)
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_plan_selection_size: %s is NULL",
                              plan ? "entries" : "plan");
    *entries = (size_t)plan->pb.total_tokens * (size_t)plan->pb.p.num_q_heads *
               (size_t)plan->pb.p.top_k;
    return MOBA_OK;
}

moba_status moba_plan_device_bytes(const moba_plan *plan, size_t *bytes)
{
    if (!plan || !bytes)
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_plan_device_bytes: %s is NULL",
                              plan ? "bytes" : "plan");
    *bytes = plan->device_bytes;
    return MOBA_OK;
}

moba_status moba_plan_gate(moba_plan *plan, const moba_buffer *q,
                           const moba_buffer *k)
{
    if (!plan)
        return moba_set_error(MOBA_ERR_NULL_POINTER, "moba_plan_gate: plan is NULL");
    const moba_problem *pb = &plan->pb;
    int64_t T = pb->total_tokens;
    moba_status st;
    if ((st = moba_check_buffer(plan->ctx, q, "q", T * pb->p.num_q_heads,
                                pb->p.head_dim, pb->elem_size)) ||
        (st = moba_check_buffer(plan->ctx, k, "k", T * pb->p.num_kv_heads,
                                pb->p.head_dim, pb->elem_size)))
        return st;
    plan->gated = 0;
    if (T == 0) {
        plan->gated = 1;
        return MOBA_OK;
    }
    st = plan->ctx->be->gate(plan->ctx->bctx, plan->bplan, pb, q->native,
                             k->native);
    plan->gated = st == MOBA_OK;
    return st;
}

moba_status moba_plan_read_selection(const moba_plan *plan, int32_t *sel,
                                     size_t entries)
{
    if (!plan || !sel)
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_plan_read_selection: %s is NULL",
                              plan ? "sel" : "plan");
    size_t need;
    moba_plan_selection_size(plan, &need);
    if (entries < need)
        return moba_set_error(MOBA_ERR_BUFFER_TOO_SMALL,
                              "moba_plan_read_selection: %zu entries given, "
                              "T * Hq * top_k = %zu needed",
                              entries, need);
    if (!plan->gated)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "moba_plan_read_selection: the plan has no "
                              "selection yet (call moba_plan_gate first)");
    if (need == 0) return MOBA_OK;
    return plan->ctx->be->read_selection(plan->ctx->bctx, plan->bplan,
                                         &plan->pb, sel);
}

/* The attention's buffers against the plan's problem. */
static moba_status check_attend_buffers(const moba_plan *plan, const moba_buffer *q,
                                        const moba_buffer *k, const moba_buffer *v,
                                        const moba_buffer *out, const moba_buffer *lse)
{
    const moba_problem *pb = &plan->pb;
    const int64_t T = pb->total_tokens;
    const int32_t Hq = pb->p.num_q_heads, Hk = pb->p.num_kv_heads;
    const int32_t D = pb->p.head_dim;
    moba_status st;
    if ((st = moba_check_buffer(plan->ctx, q, "q", T * Hq, D, pb->elem_size)) ||
        (st = moba_check_buffer(plan->ctx, k, "k", T * Hk, D, pb->elem_size)) ||
        (st = moba_check_buffer(plan->ctx, v, "v", T * Hk, D, pb->elem_size)) ||
        (st = moba_check_buffer(plan->ctx, out, "out", T * Hq, D, pb->elem_size)) ||
        (lse && (st = moba_check_buffer(plan->ctx, lse, "lse", T, Hq, sizeof(float)))))
        return st;
    return MOBA_OK;
}

moba_status moba_plan_attend(moba_plan *plan, const moba_buffer *q,
                             const moba_buffer *k, const moba_buffer *v,
                             moba_buffer *out, moba_buffer *lse)
{
    if (!plan)
        return moba_set_error(MOBA_ERR_NULL_POINTER, "moba_plan_attend: plan is NULL");
    const moba_problem *pb = &plan->pb;
    const int64_t T = pb->total_tokens;
    moba_status st = check_attend_buffers(plan, q, k, v, out, lse);
    if (st) return st;
    if (!plan->gated)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "moba_plan_attend: the plan has no selection yet "
                              "(call moba_plan_gate first)");
    if (T == 0) return MOBA_OK;
    return plan->ctx->be->attend(plan->ctx->bctx, plan->bplan, pb, q->native,
                                 k->native, v->native, out->native,
                                 lse ? lse->native : NULL);
}

moba_status moba_plan_forward(moba_plan *plan, const moba_buffer *q,
                              const moba_buffer *k, const moba_buffer *v,
                              moba_buffer *out, moba_buffer *lse)
{
    if (!plan)
        return moba_set_error(MOBA_ERR_NULL_POINTER, "moba_plan_forward: plan is NULL");
    const moba_problem *pb = &plan->pb;
    moba_status st = check_attend_buffers(plan, q, k, v, out, lse);
    if (st) return st;
    const moba_backend_iface *be = plan->ctx->be;
    if (!be->forward) {
        st = moba_plan_gate(plan, q, k);
        return st ? st : moba_plan_attend(plan, q, k, v, out, lse);
    }
    plan->gated = 0;
    if (pb->total_tokens == 0) {
        plan->gated = 1;
        return MOBA_OK;
    }
    st = be->forward(plan->ctx->bctx, plan->bplan, pb, q->native, k->native, v->native,
                     out->native, lse ? lse->native : NULL);
    plan->gated = st == MOBA_OK;
    return st;
}

moba_status moba_forward(moba_context *ctx, const moba_params *params,
                         const int32_t *cu_seqlens, int32_t batch,
                         const moba_buffer *q, const moba_buffer *k,
                         const moba_buffer *v, moba_buffer *out,
                         moba_buffer *lse)
{
    moba_plan *plan;
    moba_status st = moba_plan_create(ctx, params, cu_seqlens, batch, &plan);
    if (st) return st;
    st = moba_plan_forward(plan, q, k, v, out, lse);
    moba_plan_destroy(plan);
    return st;
}
