/*
 * The contract between the core and a backend.  Internal: modules are built
 * from this tree, and the registry refuses a module whose abi_version
 * differs from MOBA_BACKEND_ABI_VERSION.
 *
 * The core validates every argument (core/validate.c) before a backend sees
 * it, so a backend may assume a well-formed problem: positive sizes,
 * Hq % Hk == 0, consistent cu_seqlens, buffers large enough and owned by the
 * context.  A backend reports failures through host->set_error(), which
 * records the message for the calling thread and returns the status.
 */
#ifndef MOBA_CORE_BACKEND_H
#define MOBA_CORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "moba/moba.h"

#define MOBA_BACKEND_ABI_VERSION 2
#define MOBA_MODULE_ENTRY "moba_backend_module"

#if defined(__GNUC__)
#define MOBA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MOBA_PRINTF(a, b)
#endif

/* Services of the core that a backend module may use. */
typedef struct moba_host_api {
    int abi_version;
    /* Records a message for the calling thread; returns `status`. */
    moba_status (*set_error)(moba_status status, const char *fmt, ...)
        MOBA_PRINTF(2, 3);
    /* Environment lookup through the core (NULL if unset). */
    const char *(*getenv)(const char *name);
} moba_host_api;

/* One sequence of the packed batch. */
typedef struct moba_seq {
    int64_t start;        /* first token in the packed tensors            */
    int32_t len;          /* tokens                                        */
    int32_t nb;           /* blocks: ceil(len / S)                         */
    int64_t block_offset; /* index of its first block among all blocks     */
} moba_seq;

/* A validated, partitioned problem.  Owned by the plan; valid for the
 * plan's lifetime, and passed again to every plan operation. */
typedef struct moba_problem {
    moba_params p;          /* softmax_scale resolved (never 0)             */
    int32_t batch;
    const int32_t *cu_seqlens;  /* host copy, batch + 1 entries             */
    const moba_seq *seqs;       /* host, batch entries                      */
    int64_t total_tokens;       /* T                                        */
    int64_t total_blocks;       /* sum of nb over sequences                 */
    int32_t max_seqlen;
    int32_t max_blocks;         /* max nb                                   */
    int32_t group;              /* Hq / Hk                                  */
    size_t elem_size;           /* bytes of one dtype element               */
} moba_problem;

typedef struct moba_backend_iface {
    int abi_version;
    const char *name; /* "cpu", "cuda", "hip", "opencl" */

    /* Called once by the registry.  *num_devices may be 0; a failure makes
     * the backend unavailable, with the message as the reason. */
    moba_status (*init)(const moba_host_api *host, int *num_devices);
    moba_status (*device_info)(int device, moba_device_info *info);

    moba_status (*context_create)(int device, void **bctx);
    void (*context_destroy)(void *bctx);
    moba_status (*set_stream)(void *bctx, void *stream);
    moba_status (*synchronize)(void *bctx);
    /* Optional (NULL: MOBA_ERR_UNSUPPORTED). */
    moba_status (*set_num_threads)(void *bctx, int n);
    moba_status (*get_num_threads)(void *bctx, int *n);

    moba_status (*buffer_alloc)(void *bctx, size_t bytes, void **native);
    void (*buffer_free)(void *bctx, void *native);
    /* Optional: checks a caller's handle before it is wrapped (e.g. that a
     * cl_mem belongs to the context and holds `bytes`). */
    moba_status (*buffer_wrap_check)(void *bctx, void *native, size_t bytes);
    moba_status (*buffer_write)(void *bctx, void *native, size_t offset,
                                const void *src, size_t bytes);
    moba_status (*buffer_read)(void *bctx, void *native, size_t offset,
                               void *dst, size_t bytes);

    /* The one capability selector: the same function answers "is this
     * supported" for plan_create and for the tests.  MOBA_OK or
     * MOBA_ERR_UNSUPPORTED with a message. */
    moba_status (*supports)(void *bctx, const moba_problem *pb);

    moba_status (*plan_create)(void *bctx, const moba_problem *pb,
                               void **bplan, size_t *device_bytes);
    void (*plan_destroy)(void *bctx, void *bplan);
    /* Centroids + selection (+ the backend's schedule). */
    moba_status (*gate)(void *bctx, void *bplan, const moba_problem *pb,
                        void *q, void *k);
    /* Selection to the host, layout of moba_plan_read_selection. */
    moba_status (*read_selection)(void *bctx, void *bplan,
                                  const moba_problem *pb, int32_t *sel);
    /* lse may be NULL. */
    moba_status (*attend)(void *bctx, void *bplan, const moba_problem *pb,
                          void *q, void *k, void *v, void *out, void *lse);
    /* Optional: gate, then attend, in one call, so that a backend may run
     * the attention of some heads while it gates others; the plan then
     * holds the selection as after gate.  NULL: the core calls gate, then
     * attend. */
    moba_status (*forward)(void *bctx, void *bplan, const moba_problem *pb,
                           void *q, void *k, void *v, void *out, void *lse);
} moba_backend_iface;

/* The symbol every backend module exports (name: MOBA_MODULE_ENTRY). */
typedef const moba_backend_iface *(*moba_backend_module_fn)(void);

#if defined(__GNUC__)
#define MOBA_MODULE_EXPORT __attribute__((visibility("default")))
#else
#define MOBA_MODULE_EXPORT
#endif

#endif /* MOBA_CORE_BACKEND_H */
