/* Declarations shared by the core's own files (not by backends). */
#ifndef MOBA_CORE_INTERNAL_H
#define MOBA_CORE_INTERNAL_H

#include <stdarg.h>

#include "backend.h"
#include "moba/moba.h"

/* error.c */
moba_status moba_set_error(moba_status status, const char *fmt, ...)
    MOBA_PRINTF(2, 3);
moba_status moba_set_error_v(moba_status status, const char *fmt, va_list ap);
void moba_clear_error(void);

/* env.c: every MOBA_* variable the library reads goes through here. */
const char *moba_env(const char *name);

/* registry.c */
typedef struct moba_backend_entry {
    const moba_backend_iface *iface; /* NULL if it failed to load          */
    char name[32];
    int num_devices;
    int available;
    char detail[512];
} moba_backend_entry;

moba_status moba_registry_get(int *count, const moba_backend_entry **entries);
/* Resolves "cpu", "cuda:1", "auto", NULL ($MOBA_BACKEND) to an entry. */
moba_status moba_registry_resolve(const char *name,
                                  const moba_backend_entry **entry,
                                  int *device);
const moba_host_api *moba_host(void);

/* Objects behind the public handles. */
struct moba_context {
    const moba_backend_iface *be;
    void *bctx;
    int device;
    char name[40];
};

struct moba_buffer {
    moba_context *ctx;
    void *native;
    size_t bytes;
    int owned; /* allocated by the library (freed with the handle) */
};

struct moba_plan {
    moba_context *ctx;
    moba_problem pb;
    int32_t *cu_seqlens; /* copies owned by the plan */
    moba_seq *seqs;
    void *bplan;
    size_t device_bytes;
    int gated; /* moba_plan_gate has succeeded since creation */
};

/* partition.c: validates params + cu_seqlens and fills pb (with its own
 * allocations in cu_copy/seqs, freed by the caller). */
moba_status moba_problem_init(moba_problem *pb, const moba_params *params,
                              const int32_t *cu_seqlens, int32_t batch,
                              int32_t **cu_copy, moba_seq **seqs);

/* validate.c */
moba_status moba_check_params(const moba_params *p);
moba_status moba_check_buffer(const moba_context *ctx, const moba_buffer *b,
                              const char *what, int64_t rows, int64_t cols,
                              size_t elem_size);

#endif /* MOBA_CORE_INTERNAL_H */
