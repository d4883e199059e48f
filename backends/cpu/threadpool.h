/*
 * A persistent pool of worker threads: created once per context, woken for
 * each parallel region, so no thread is created on the hot path.  Tasks are
 * handed out through an atomic counter (dynamic scheduling), which balances
 * uneven tasks when they come longest first.
 */
#ifndef MOBA_CPU_THREADPOOL_H
#define MOBA_CPU_THREADPOOL_H

#include <stdint.h>

typedef struct moba_pool moba_pool;

/* fn(arg, task, thread) for task in [0, ntasks); thread in [0, nthreads). */
typedef void (*moba_pool_fn)(void *arg, int64_t task, int thread);

/* nthreads >= 1 (the calling thread is worker 0).  NULL on failure. */
moba_pool *moba_pool_create(int nthreads);
void moba_pool_destroy(moba_pool *pool);
int moba_pool_threads(const moba_pool *pool);
/* Runs all tasks and returns when they are done.  Not reentrant: one
 * region at a time per pool (a context is single-threaded by contract). */
void moba_pool_run(moba_pool *pool, int64_t ntasks, moba_pool_fn fn, void *arg);

#endif
