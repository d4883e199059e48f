/*
 * libmoba — Mixture of Block Attention, portable C11 API.
 *
 * The function computed is specified in docs/spec.md (MoBA, Lu et al. 2025):
 * keys are split into blocks of `block_size`; each query scores the mean key
 * of every past block, keeps its own block plus the `top_k - 1` best past
 * blocks, and attends causally over the keys of the selected blocks.
 *
 * Conventions
 *  - Every function returns a moba_status; MOBA_OK is 0.  On failure a
 *    message for the calling thread is available from moba_last_error().
 *  - The library never aborts, exits or prints.
 *  - Objects are opaque handles, created by the _create and _alloc calls and
 *    released by the matching _destroy and _free calls, which accept NULL.
 *
 * Thread-safety
 *  - The backend registry initialises itself once on first use and is safe
 *    to use from several threads at once (moba_backend_count/info,
 *    moba_device_info, moba_context_create).
 *  - A moba_context, and the buffers and plans created on it, must not be
 *    used from two threads at the same time.  Use one context per thread;
 *    contexts are independent of each other.
 *  - moba_last_error() is per thread.
 */
#ifndef MOBA_MOBA_H
#define MOBA_MOBA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define MOBA_API __declspec(dllexport)
#elif defined(__GNUC__)
#define MOBA_API __attribute__((visibility("default")))
#else
#define MOBA_API
#endif

#define MOBA_VERSION_MAJOR 0
#define MOBA_VERSION_MINOR 1
#define MOBA_VERSION_PATCH 0

/* ------------------------------------------------------------------ */
/* Status codes                                                        */
/* ------------------------------------------------------------------ */

typedef enum moba_status {
    MOBA_OK = 0,
    MOBA_ERR_INVALID_ARGUMENT = 1, /* a value is out of its documented range   */
    MOBA_ERR_NULL_POINTER = 2,     /* a required pointer is NULL               */
    MOBA_ERR_OVERFLOW = 3,         /* a size or byte count does not fit        */
    MOBA_ERR_BUFFER_TOO_SMALL = 4, /* a buffer is smaller than the call needs  */
    MOBA_ERR_UNSUPPORTED = 5,      /* valid, but this backend cannot do it     */
    MOBA_ERR_BACKEND_UNAVAILABLE = 6, /* unknown backend, or none of its devices */
    MOBA_ERR_OUT_OF_MEMORY = 7,
    MOBA_ERR_DEVICE = 8,           /* the device runtime reported a failure     */
    MOBA_ERR_WRONG_CONTEXT = 9,    /* an object belongs to another context      */
    MOBA_ERR_INTERNAL = 10
} moba_status;

/* Constant English text for a status code ("unknown status" if invalid). */
MOBA_API const char *moba_status_string(moba_status status);

/* The message of the last failed call made by this thread: which argument,
 * which value and what was expected.  Empty string if no call failed yet.
 * Valid until the next failing call on this thread. */
MOBA_API const char *moba_last_error(void);

/* Library version as "MAJOR.MINOR.PATCH". */
MOBA_API const char *moba_version(void);

/* ------------------------------------------------------------------ */
/* Data types                                                          */
/* ------------------------------------------------------------------ */

typedef enum moba_dtype {
    MOBA_F32 = 0,
    MOBA_F16 = 1,  /* IEEE binary16 */
    MOBA_BF16 = 2  /* bfloat16 */
} moba_dtype;

#define MOBA_DTYPE_BIT(dt) (1u << (unsigned)(dt))

MOBA_API size_t moba_dtype_size(moba_dtype dtype);      /* 0 if invalid */
MOBA_API const char *moba_dtype_name(moba_dtype dtype); /* "f32", ...   */
/* Parses "f32", "f16", "bf16" (also "float32", "float16", "bfloat16"). */
MOBA_API moba_status moba_dtype_parse(const char *name, moba_dtype *out);

/* Converts n elements between storage types on the host, rounding to
 * nearest even.  dst and src must not overlap unless they are equal and the
 * dtypes match. */
MOBA_API moba_status moba_convert(void *dst, moba_dtype dst_dtype,
                                  const void *src, moba_dtype src_dtype,
                                  size_t n);

/* ------------------------------------------------------------------ */
/* Backends and devices                                                */
/* ------------------------------------------------------------------ */

#define MOBA_NAME_MAX 128
#define MOBA_MAX_HEAD_DIMS 16

typedef struct moba_backend_info {
    char name[32];           /* "cpu", "cuda", "hip", "opencl"             */
    int available;           /* 1 if it loaded and sees at least one device */
    int device_count;
    char detail[512];        /* where it came from, or why it is unavailable */
} moba_backend_info;

typedef struct moba_device_info {
    char name[MOBA_NAME_MAX];
    char vendor[MOBA_NAME_MAX];
    char driver[MOBA_NAME_MAX];   /* runtime / driver version text        */
    uint64_t memory_bytes;        /* global memory, 0 if unknown          */
    int compute_units;
    unsigned dtypes;              /* MOBA_DTYPE_BIT() set                  */
    int num_head_dims;            /* 0: any head dim in [1, head_dim_max] */
    int head_dims[MOBA_MAX_HEAD_DIMS]; /* supported head dims, ascending    */
    int head_dim_max;
    int is_cpu;                   /* the device is a host CPU             */
} moba_device_info;

/* Number of backends the library knows of (built in or found as modules,
 * available or not).  Loads modules on first call. */
MOBA_API moba_status moba_backend_count(int *count);
MOBA_API moba_status moba_backend_info_get(int index, moba_backend_info *info);
/* Device `device` of backend `backend` ("cpu", "cuda", ...). */
MOBA_API moba_status moba_device_info_get(const char *backend, int device,
                                          moba_device_info *info);

/* ------------------------------------------------------------------ */
/* Contexts                                                            */
/* ------------------------------------------------------------------ */

typedef struct moba_context moba_context;

/* name: "cpu", "cuda", "hip", "opencl", optionally ":N" for device N
 * (default 0), or "auto".  NULL means the environment variable MOBA_BACKEND,
 * and an unset or empty MOBA_BACKEND means "auto": the first available of
 * cuda, hip, opencl (GPU or accelerator devices only), cpu.
 * An unknown or unavailable backend fails with MOBA_ERR_BACKEND_UNAVAILABLE
 * and a message that lists the available ones. */
MOBA_API moba_status moba_context_create(moba_context **ctx, const char *name);
MOBA_API void moba_context_destroy(moba_context *ctx);

/* "cpu", "cuda", ... and the device index of the context. */
MOBA_API const char *moba_context_backend(const moba_context *ctx);
MOBA_API int moba_context_device(const moba_context *ctx);

/* Hands the context the caller's stream / queue: a cudaStream_t (cuda),
 * hipStream_t (hip) or cl_command_queue (opencl; it must belong to the
 * context's cl_context).  All later work on this context is ordered on it and
 * the library does not synchronise it unless a call says so (buffer reads and
 * writes to host memory, moba_context_synchronize).  (moba_plan_forward on
 * cuda / hip also runs part of its work on a second stream of the context,
 * forked from this one after the work before it and joined back before the
 * work after it, so the order holds.)  NULL restores the library's own
 * stream.  The CPU backend accepts only NULL. */
MOBA_API moba_status moba_context_set_stream(moba_context *ctx, void *stream);

/* Waits for all work submitted on the context. */
MOBA_API moba_status moba_context_synchronize(moba_context *ctx);

/* CPU backend: number of worker threads (0 = MOBA_NUM_THREADS, else the
 * number of online processors).  Other backends: MOBA_ERR_UNSUPPORTED. */
MOBA_API moba_status moba_context_set_num_threads(moba_context *ctx, int n);
MOBA_API moba_status moba_context_get_num_threads(const moba_context *ctx,
                                                  int *n);

/* ------------------------------------------------------------------ */
/* Buffers (memory on the context's device)                            */
/* ------------------------------------------------------------------ */

typedef struct moba_buffer moba_buffer;

MOBA_API moba_status moba_buffer_alloc(moba_context *ctx, size_t bytes,
                                       moba_buffer **buf);
/* Wraps the caller's memory without copying: a host pointer (cpu), a device
 * pointer (cuda, hip) or a cl_mem (opencl).  The caller keeps ownership;
 * moba_buffer_free releases only the handle.  `bytes` is what the library
 * may touch. */
MOBA_API moba_status moba_buffer_wrap(moba_context *ctx, void *native,
                                      size_t bytes, moba_buffer **buf);
MOBA_API void moba_buffer_free(moba_buffer *buf);
MOBA_API size_t moba_buffer_size(const moba_buffer *buf);
/* The native handle: host pointer, device pointer or cl_mem. */
MOBA_API void *moba_buffer_native(const moba_buffer *buf);
/* Copies between host memory and a buffer; both wait until the copy is done. */
MOBA_API moba_status moba_buffer_write(moba_buffer *buf, size_t offset,
                                       const void *src, size_t bytes);
MOBA_API moba_status moba_buffer_read(const moba_buffer *buf, size_t offset,
                                      void *dst, size_t bytes);

/* ------------------------------------------------------------------ */
/* Problem description                                                 */
/* ------------------------------------------------------------------ */

typedef struct moba_params {
    int32_t num_q_heads;   /* Hq >= 1                                      */
    int32_t num_kv_heads;  /* Hk >= 1, Hq % Hk == 0 (GQA / MQA)            */
    int32_t head_dim;      /* D >= 1; each backend lists what it supports  */
    int32_t block_size;    /* S >= 1, any integer                          */
    int32_t top_k;         /* >= 1, counts the query's own block           */
    float softmax_scale;   /* 0 means 1/sqrt(D)                            */
    moba_dtype dtype;      /* storage type of q, k, v and out              */
    int32_t causal;        /* 1 (default): MoBA over past blocks, causal   */
} moba_params;

/* Hq=Hk=1, D=128, S=512, top_k=3, scale 0, f32, causal. */
MOBA_API moba_params moba_params_default(void);

/* ------------------------------------------------------------------ */
/* Plans: gating (centroids, top-k selection, schedule) and attention  */
/* ------------------------------------------------------------------ */

/*
 * Tensors (row-major, contiguous, dtype = params.dtype):
 *   q [T, Hq, D], k [T, Hk, D], v [T, Hk, D], out [T, Hq, D],
 *   lse [T, Hq] float32 (natural log of the softmax denominator of the
 *   scaled logits), optional.
 * cu_seqlens[batch + 1] int32 on the host: cu_seqlens[0] == 0, non-decreasing,
 * T = cu_seqlens[batch].  Zero-length sequences are allowed.
 */

typedef struct moba_plan moba_plan;

/* Validates the problem and allocates everything the plan needs on the
 * device: centroids [B, Hk, nb_max..] (sum over sequences of nb * Hk * D
 * elements), the selection [T, Hq, top_k] int32 and the backend's schedule,
 * O(T * Hq * top_k) in all.  cu_seqlens is copied; the caller may free it.
 * Cost: O(batch) on the host plus the allocations. */
MOBA_API moba_status moba_plan_create(moba_context *ctx,
                                      const moba_params *params,
                                      const int32_t *cu_seqlens, int32_t batch,
                                      moba_plan **plan);
MOBA_API void moba_plan_destroy(moba_plan *plan);

/* Total tokens T and the number of int32 entries of the selection
 * (T * Hq * top_k). */
MOBA_API moba_status moba_plan_tokens(const moba_plan *plan, int64_t *tokens);
MOBA_API moba_status moba_plan_selection_size(const moba_plan *plan,
                                              size_t *entries);
/* Bytes of device memory the plan holds. */
MOBA_API moba_status moba_plan_device_bytes(const moba_plan *plan,
                                            size_t *bytes);

/* Gating: computes the block centroids of k and each query's selection.
 * Cost: O(T * Hk * D) for the centroids plus O(T * Hq * D * nb) for the
 * scores of past blocks.  May be called again with new q/k of the same
 * shapes: the plan is then reused. */
MOBA_API moba_status moba_plan_gate(moba_plan *plan, const moba_buffer *q,
                                    const moba_buffer *k);

/* Copies the selection to the host.  Layout: sel[(t * Hq + h) * top_k + i]
 * for global token t and query head h; the selected block indices (within
 * the token's sequence) in ascending order, then -1 for the unused slots.
 * Exactly min(top_k, nb_eligible) entries are valid.  `entries` must be at
 * least moba_plan_selection_size(). */
MOBA_API moba_status moba_plan_read_selection(const moba_plan *plan,
                                              int32_t *sel, size_t entries);

/* Attention over the plan's selection (moba_plan_gate must have run).
 * Cost: O(T * Hq * D * top_k * block_size).  lse may be NULL. */
MOBA_API moba_status moba_plan_attend(moba_plan *plan, const moba_buffer *q,
                                      const moba_buffer *k,
                                      const moba_buffer *v, moba_buffer *out,
                                      moba_buffer *lse);

/* moba_plan_gate, then moba_plan_attend, in one call: the same results,
 * bit for bit, and afterwards the plan holds the selection as after
 * moba_plan_gate.  A backend may overlap the two phases across heads (the
 * CUDA backend can gate one group of heads while it attends to the last,
 * docs/gpu.md), so this is the call to use when the selection is not
 * needed in between. */
MOBA_API moba_status moba_plan_forward(moba_plan *plan, const moba_buffer *q,
                                       const moba_buffer *k,
                                       const moba_buffer *v, moba_buffer *out,
                                       moba_buffer *lse);

/* One call: plan_create + plan_forward + plan_destroy. */
MOBA_API moba_status moba_forward(moba_context *ctx, const moba_params *params,
                                  const int32_t *cu_seqlens, int32_t batch,
                                  const moba_buffer *q, const moba_buffer *k,
                                  const moba_buffer *v, moba_buffer *out,
                                  moba_buffer *lse);

#ifdef __cplusplus
}
#endif

#endif /* MOBA_MOBA_H */
