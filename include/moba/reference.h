/*
 * libmoba reference: the function of docs/spec.md computed on the host in
 * double precision, written for clarity, not speed.  It is what the
 * conformance suite checks every backend against; it is not a backend.
 *
 * Inputs are host arrays in params->dtype storage (the same layout as
 * moba.h).  Thread-safe: no state.
 */
#ifndef MOBA_REFERENCE_H
#define MOBA_REFERENCE_H

#include "moba.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Selection of spec §3.  sel has T * Hq * top_k entries in the layout of
 * moba_plan_read_selection.  If margin is not NULL, margin[t * Hq + h]
 * receives the near-tie margin of that query: the score gap between the
 * worst selected past block and the best unselected eligible block
 * (+infinity when every eligible block was selected), and margin_scale the
 * magnitude |s| of the worst selected score, so that a caller can apply the
 * spec's 1e-5 * (|s| + 1) rule.  Cost: O(T * Hq * D * nb). */
MOBA_API moba_status moba_reference_select(const moba_params *params,
                                           const int32_t *cu_seqlens,
                                           int32_t batch, const void *q,
                                           const void *k, int32_t *sel,
                                           double *margin,
                                           double *margin_scale);

/* Attention of spec §4 over a given selection (the reference's own or a
 * backend's).  out [T, Hq, D] and lse [T, Hq] (may be NULL) in double.
 * The selection is validated: MOBA_ERR_INVALID_ARGUMENT if an entry names a
 * block outside the sequence, a future block (causal), a duplicate, or if the
 * query's own block is missing. */
MOBA_API moba_status moba_reference_attend(const moba_params *params,
                                           const int32_t *cu_seqlens,
                                           int32_t batch, const void *q,
                                           const void *k, const void *v,
                                           const int32_t *sel, double *out,
                                           double *lse);

#ifdef __cplusplus
}
#endif

#endif /* MOBA_REFERENCE_H */
