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
