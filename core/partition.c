/* cu_seqlens -> per-sequence block table, with every size overflow-checked
 * so that no backend ever computes a byte count that wraps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Largest element count any tensor of the problem may have such that its
 * byte count, and the int64 index arithmetic of every backend, fit. */
#define MOBA_MAX_ELEMS ((int64_t)1 << 56)

static int mul_ok(int64_t a, int64_t b, int64_t limit)
{
    return a == 0 || b <= limit / a;
}

moba_status moba_problem_init(moba_problem *pb, const moba_params *params,
                              const int32_t *cu_seqlens, int32_t batch,
                              int32_t **cu_copy, moba_seq **seqs_out)
{
    moba_status st = moba_check_params(params);
    if (st) return st;
    if (!cu_seqlens)
        return moba_set_error(MOBA_ERR_NULL_POINTER, "cu_seqlens is NULL");
    if (batch <= 0)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "batch = %d: must be >= 1 (cu_seqlens has "
                              "batch + 1 entries)",
                              (int)batch);
    if (cu_seqlens[0] != 0)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "cu_seqlens[0] = %d: must be 0",
                              (int)cu_seqlens[0]);
    for (int32_t b = 0; b < batch; b++)
        if (cu_seqlens[b + 1] < cu_seqlens[b])
            return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                                  "cu_seqlens decreases at index %d "
                                  "(%d then %d): it must be non-decreasing",
                                  (int)b + 1, (int)cu_seqlens[b],
                                  (int)cu_seqlens[b + 1]);

    const moba_params *p = params;
    int64_t T = cu_seqlens[batch];
    int64_t hmax = p->num_q_heads > p->num_kv_heads ? p->num_q_heads
                                                    : p->num_kv_heads;
    if (!mul_ok(T, hmax, MOBA_MAX_ELEMS) ||
        !mul_ok(T * hmax, p->head_dim, MOBA_MAX_ELEMS) ||
        !mul_ok(T * p->num_q_heads, p->top_k, MOBA_MAX_ELEMS))
        return moba_set_error(MOBA_ERR_OVERFLOW,
                              "problem too large: T=%lld tokens x %lld heads x "
                              "D=%d (or x top_k=%d) exceeds 2^56 elements",
                              (long long)T, (long long)hmax, (int)p->head_dim,
                              (int)p->top_k);

    int32_t *cu = malloc(sizeof *cu * ((size_t)batch + 1));
    moba_seq *seqs = malloc(sizeof *seqs * (size_t)batch);
    if (!cu || !seqs) {
        free(cu);
        free(seqs);
        return moba_set_error(MOBA_ERR_OUT_OF_MEMORY,
                              "cannot allocate the table of %d sequences",
                              (int)batch);
    }
    memcpy(cu, cu_seqlens, sizeof *cu * ((size_t)batch + 1));

    int64_t nblocks = 0;
    int32_t max_len = 0, max_nb = 0;
    for (int32_t b = 0; b < batch; b++) {
        int32_t len = cu[b + 1] - cu[b];
        int32_t nb = (int32_t)((len + (int64_t)p->block_size - 1) /
                               p->block_size);
        seqs[b].start = cu[b];
        seqs[b].len = len;
        seqs[b].nb = nb;
        seqs[b].block_offset = nblocks;
        nblocks += nb;
        if (len > max_len) max_len = len;
        if (nb > max_nb) max_nb = nb;
    }

    memset(pb, 0, sizeof *pb);
    pb->p = *p;
    if (pb->p.softmax_scale == 0.0f)
        pb->p.softmax_scale = (float)(1.0 / sqrt((double)p->head_dim));
    pb->batch = batch;
    pb->cu_seqlens = cu;
    pb->seqs = seqs;
    pb->total_tokens = T;
    pb->total_blocks = nblocks;
    pb->max_seqlen = max_len;
    pb->max_blocks = max_nb;
    pb->group = p->num_q_heads / p->num_kv_heads;
    pb->elem_size = moba_dtype_size(p->dtype);
    *cu_copy = cu;
    *seqs_out = seqs;
    return MOBA_OK;
}
