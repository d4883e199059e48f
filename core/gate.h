/*
 * The selection rule of spec §3, written once for every host-side user (the
 * CPU backend, the reference, the tests).  GPU kernels implement the same
 * ordering; tests compare them against this.
 *
 * Ranking of a candidate block (score s, index j), best first:
 *   any number above NaN; larger s above smaller; on equal s (or both NaN)
 *   the larger index j above the smaller.
 */
#ifndef MOBA_CORE_GATE_H
#define MOBA_CORE_GATE_H

#include <math.h>
#include <stdint.h>

#include "backend.h"

/* Nonzero if (sa, ia) ranks strictly above (sb, ib). */
static inline int moba_gate_better(double sa, int32_t ia, double sb,
                                   int32_t ib)
{
    int na = !isnan(sa), nb = !isnan(sb);
    if (na != nb) return na > nb;
    if (na && sa != sb) return sa > sb;
    return ia > ib;
}

/* Streaming top-`cap` of candidates, kept best-first in idx/val[0..*n).
 * O(cap) per push in the worst case, O(1) for a candidate that does not
 * enter. */
static inline void moba_topk_push(int32_t *idx, double *val, int32_t *n,
                                  int32_t cap, int32_t j, double s)
{
    if (cap <= 0) return;
    int32_t m = *n;
    if (m == cap) {
        if (!moba_gate_better(s, j, val[m - 1], idx[m - 1])) return;
        m--; /* drop the worst */
    }
    int32_t pos = m;
    while (pos > 0 && moba_gate_better(s, j, val[pos - 1], idx[pos - 1])) {
        idx[pos] = idx[pos - 1];
        val[pos] = val[pos - 1];
        pos--;
    }
    idx[pos] = j;
    val[pos] = s;
    *n = m + 1;
}

/* Number of blocks a query in block b of a sequence of nb blocks selects. */
static inline int32_t moba_gate_count(const moba_params *p, int32_t b,
                                      int32_t nb)
{
    int32_t eligible = p->causal ? b + 1 : nb;
    return p->top_k < eligible ? p->top_k : eligible;
}

/* Writes one query's selection row (top_k entries): the chosen past/other
 * blocks idx[0..n) plus the own block b, ascending, then -1 padding. */
void moba_gate_write_row(int32_t *row, int32_t top_k, const int32_t *idx,
                         int32_t n, int32_t b);

#endif /* MOBA_CORE_GATE_H */
