/*
 * Work decomposition shared by the backends.  A query tile is a run of rows
 * of one sequence that never crosses a key-block boundary, so all its rows
 * share the same own block and the same set of eligible blocks.
 */
#ifndef MOBA_CORE_SCHEDULE_H
#define MOBA_CORE_SCHEDULE_H

#include <stdint.h>

#include "backend.h"

typedef struct moba_tile {
    int32_t seq;   /* sequence index                      */
    int32_t row0;  /* first row, relative to the sequence */
    int32_t rows;  /* 1 .. tile_rows                       */
    int32_t block; /* the rows' own block: row0 / S        */
    int64_t cost;  /* estimated key visits, for balancing  */
} moba_tile;

/* All query tiles of the problem (heads not included: a backend iterates
 * them itself), ordered by decreasing cost so that dynamic scheduling over
 * the list balances causal rows and uneven varlen batches (longest first).
 * *tiles is malloc'ed (NULL when count is 0); the caller frees it.
 * Returns MOBA_ERR_OUT_OF_MEMORY on allocation failure (no message set:
 * the caller reports it through its own channel). */
moba_status moba_schedule_tiles(const moba_problem *pb, int32_t tile_rows,
                                moba_tile **tiles, int64_t *count);

/* Keys a query at row t of block b visits: min(top_k, eligible) blocks of
 * S keys, the own block only up to t (causal).  An upper bound used for
 * cost estimates only. */
int64_t moba_schedule_row_cost(const moba_problem *pb, int32_t seq,
                               int32_t row);

#endif /* MOBA_CORE_SCHEDULE_H */

/*
 * Key-centric work lists (CSC of a selection): for every (block, kv head)
 * pair, the (token, query head, slot) triples whose selection names that
 * block, ordered by token then query head.  The query heads of one kv group
 * land in the same list, so a backend walking a list loads each K/V block
 * once per group.  `slot` is the position of the block in the query's
 * ascending selection row, which fixes the order in which partial results
 * are merged (deterministic output).  List index: (seq.block_offset + j) *
 * Hk + kv_head.  Memory: O(T * Hq * top_k).  GPU backends build the same
 * lists on the device; this host version is their specification and test
 * oracle.
 */
typedef struct moba_kv_lists {
    int64_t nlists;   /* total_blocks * Hk                         */
    int64_t *offsets; /* nlists + 1 entries                        */
    int32_t *token;   /* global token index, per entry             */
    int32_t *head;    /* query head, per entry                     */
    int32_t *slot;    /* index within the query's selection row    */
} moba_kv_lists;

/* sel: the selection in the layout of moba_plan_read_selection. */
moba_status moba_schedule_kv_lists(const moba_problem *pb, const int32_t *sel,
                                   moba_kv_lists *lists);
void moba_kv_lists_free(moba_kv_lists *lists);
