/*
 * Which partial slots no forward of a plan writes.  Plain C, so that the
 * unit tests check it against the reference selection on the host
 * (tests/unit/unused_slots.c); gpu_plan_create zeroes those slots once.
 *
 * A row has a partial slot for each of its top_k - 1 picks besides its own
 * block, but a row with fewer picks (fewer eligible blocks than top_k) has
 * fewer partials, and its last slots are never written.  The own blocks'
 * merge loads all of a row's slots at once, before it knows how many it
 * uses (every load in flight together; docs/perf.md CUDA v39), and drops
 * what it does not use: defined behaviour, but reads of memory nothing
 * wrote, which compute-sanitizer's initcheck reports (CUDA v62).
 */
#ifndef MOBA_GPU_UNUSED_SLOTS_H
#define MOBA_GPU_UNUSED_SLOTS_H

#include <stdint.h>

/* How many of a sequence's first tokens (len tokens, blocks of S, top_k
 * K) have fewer than K - 1 partials: causal, a row of block b picks
 * min(K, b + 1) blocks, so the first (K - 1) S tokens; without the mask
 * every row picks min(K, nb), so all of them when nb < K, else none. */
static inline int64_t gpu_unused_rows(int64_t len, int64_t S, int K, int causal)
{
    const int64_t km1 = (int64_t)K - 1;
    if (causal) return len < km1 * S ? len : km1 * S;
    return (len + S - 1) / S < K ? len : 0;
}

#endif /* MOBA_GPU_UNUSED_SLOTS_H */
