/* State shared by the CPU backend's files. */
#ifndef MOBA_CPU_INTERNAL_H
#define MOBA_CPU_INTERNAL_H

#include "../../core/backend.h"
#include "../../core/schedule.h"
#include "cpu_kernels.h"
#include "threadpool.h"

extern const moba_host_api *moba_cpu_host;

typedef struct cpu_ctx {
    moba_pool *pool;
    const moba_cpu_kernels *kern;
} cpu_ctx;

/* Per-thread scratch of one plan, sized at plan creation for the pool's
 * thread count and regrown if the count changes. */
typedef struct cpu_plan {
    float *cent;      /* [total_blocks, Hk, D] centroids (storage-rounded) */
    int32_t *sel;     /* [T, Hq, top_k]                                    */
    moba_tile *tiles; /* query tiles, longest first                        */
    int64_t ntiles;
    int32_t tile_rows;
    int nscratch;     /* threads the scratch is sized for */
    float **scratch;  /* one region per thread */
    size_t scratch_floats;
} cpu_plan;

moba_status moba_cpu_gate(cpu_ctx *c, cpu_plan *pl, const moba_problem *pb,
                          const void *q, const void *k);
moba_status moba_cpu_attend(cpu_ctx *c, cpu_plan *pl, const moba_problem *pb,
                            const void *q, const void *k, const void *v,
                            void *out, float *lse);
/* Floats of per-thread scratch the attention needs. */
size_t moba_cpu_attend_scratch(const moba_cpu_kernels *kern, const moba_problem *pb,
                               int32_t tile_rows);
moba_status moba_cpu_plan_scratch(cpu_plan *pl, int nthreads);

#endif
