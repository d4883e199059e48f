/*
 * The CUDA / HIP backend's vtable: devices, contexts with a stream, device
 * buffers, plans.  Host code only; the kernels are in gate.cu and the
 * attend_*.cu instances.  Every runtime call is checked and turned into
 * MOBA_ERR_DEVICE with the runtime's text; nothing here aborts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_internal.h"
#include "unused_slots.h"

#define NAME MOBA_GPU_BACKEND_NAME

static const moba_host_api *host;

typedef struct gpu_ctx {
    int device;
    int sm_count;
    int64_t l2_bytes;
    int cc_major;        /* compute capability: mma.sync needs 8+, */
    int cc_minor;        /* wgmma exactly 9.0                      */
    int smem_optin;      /* shared memory a CTA may opt in to, bytes */
    cudaStream_t own;    /* the library's stream                  */
    cudaStream_t stream; /* own, or the caller's                   */
    cudaStream_t aux;    /* gpu_forward's attention, forked from stream */
} gpu_ctx;

/* Most kv-head groups a forward splits into (gpu_forward). */
#define GPU_MAX_GROUPS 16

typedef struct gpu_plan {
    gpu_args a;
    void *allocs[16];
    int nallocs;
    size_t bytes;
    int groups;          /* the head groups the lists were built for */
    cudaEvent_t ev[GPU_MAX_GROUPS + 1];
    int nev;
} gpu_plan;

#define CU(call, what)                                                             \
    do {                                                                           \
        cudaError_t e_ = (call);                                                   \
        if (e_ != cudaSuccess)                                                     \
            return host->set_error(MOBA_ERR_DEVICE, NAME ": %s failed: %s", what,  \
                                   cudaGetErrorString(e_));                        \
    } while (0)

static moba_status gpu_init(const moba_host_api *h, int *n)
{
    host = h;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count <= 0) {
        *n = 0;
        return host->set_error(MOBA_ERR_BACKEND_UNAVAILABLE,
                               NAME ": no usable " MOBA_GPU_RUNTIME_NAME
                                    " device (%s)",
                               e != cudaSuccess ? cudaGetErrorString(e)
                                                : "the runtime reports 0 devices");
    }
    *n = count;
    return MOBA_OK;
}

static moba_status gpu_device_info(int device, moba_device_info *info)
{
    cudaDeviceProp prop;
    CU(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    int rt = 0, drv = 0;
    CU(cudaRuntimeGetVersion(&rt), "cudaRuntimeGetVersion");
    CU(cudaDriverGetVersion(&drv), "cudaDriverGetVersion");
    snprintf(info->name, sizeof info->name, "%.127s", prop.name);
    snprintf(info->vendor, sizeof info->vendor, MOBA_GPU_VENDOR_NAME);
    snprintf(info->driver, sizeof info->driver,
             MOBA_GPU_RUNTIME_NAME " runtime %d, driver %d, compute %d.%d", rt,
             drv, prop.major, prop.minor);
    info->memory_bytes = prop.totalGlobalMem;
    info->compute_units = prop.multiProcessorCount;
    info->dtypes = MOBA_DTYPE_BIT(MOBA_F32) | MOBA_DTYPE_BIT(MOBA_F16) |
                   MOBA_DTYPE_BIT(MOBA_BF16);
    info->num_head_dims = moba_gpu_head_dims(info->head_dims, MOBA_MAX_HEAD_DIMS);
    info->head_dim_max = info->head_dims[info->num_head_dims - 1];
    info->is_cpu = 0;
    return MOBA_OK;
}

static moba_status gpu_context_create(int device, void **bctx)
{
    gpu_ctx *c = (gpu_ctx *)calloc(1, sizeof *c);
    if (!c) return host->set_error(MOBA_ERR_OUT_OF_MEMORY, NAME ": out of memory");
    c->device = device;
    cudaDeviceProp prop;
    cudaError_t e = cudaSetDevice(device);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, device);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&c->own, cudaStreamNonBlocking);
    if (e == cudaSuccess) {
        e = cudaStreamCreateWithFlags(&c->aux, cudaStreamNonBlocking);
        if (e != cudaSuccess) (void)cudaStreamDestroy(c->own);
    }
    if (e != cudaSuccess) {
        free(c);
        return host->set_error(MOBA_ERR_DEVICE, NAME ": cannot open device %d: %s",
                               device, cudaGetErrorString(e));
    }
    c->sm_count = prop.multiProcessorCount;
    c->l2_bytes = prop.l2CacheSize;
    c->cc_major = prop.major;
    c->cc_minor = prop.minor;
#if MOBA_GPU_FILL_STAGE
    c->smem_optin = (int)prop.sharedMemPerBlockOptin;
#endif
    c->stream = c->own;
    *bctx = c;
    return MOBA_OK;
}

static void gpu_context_destroy(void *bctx)
{
    gpu_ctx *c = (gpu_ctx *)bctx;
    if (!c) return;
    (void)cudaSetDevice(c->device);
    (void)cudaStreamSynchronize(c->stream);
    (void)cudaStreamDestroy(c->aux);
    (void)cudaStreamDestroy(c->own);
    free(c);
}

static moba_status gpu_set_stream(void *bctx, void *stream)
{
    gpu_ctx *c = (gpu_ctx *)bctx;
    c->stream = stream ? (cudaStream_t)stream : c->own;
    return MOBA_OK;
}

static moba_status gpu_synchronize(void *bctx)
{
    gpu_ctx *c = (gpu_ctx *)bctx;
    CU(cudaSetDevice(c->device), "cudaSetDevice");
    CU(cudaStreamSynchronize(c->stream), "cudaStreamSynchronize");
    return MOBA_OK;
}

static moba_status gpu_buffer_alloc(void *bctx, size_t bytes, void **native)
{
    gpu_ctx *c = (gpu_ctx *)bctx;
    CU(cudaSetDevice(c->device), "cudaSetDevice");
    cudaError_t e = cudaMalloc(native, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky-free error state */
        return host->set_error(MOBA_ERR_OUT_OF_MEMORY,
                               NAME ": cannot allocate %zu bytes on device %d: %s",
                               bytes, c->device, cudaGetErrorString(e));
    }
    return MOBA_OK;
}

static void gpu_buffer_free(void *bctx, void *native)
{
    gpu_ctx *c = (gpu_ctx *)bctx;
    (void)cudaSetDevice(c->device);
    (void)cudaFree(native);
}

static moba_status gpu_buffer_write(void *bctx, void *native, size_t off,
                                    const void *src, size_t bytes)
{
    gpu_ctx *c = (gpu_ctx *)bctx;
    CU(cudaSetDevice(c->device), "cudaSetDevice");
    CU(cudaMemcpyAsync((char *)native + off, src, bytes, cudaMemcpyHostToDevice,
                       c->stream),
       "cudaMemcpyAsync (host to device)");
    CU(cudaStreamSynchronize(c->stream), "cudaStreamSynchronize");
    return MOBA_OK;
}

static moba_status gpu_buffer_read(void *bctx, void *native, size_t off,
                                   void *dst, size_t bytes)
{
    gpu_ctx *c = (gpu_ctx *)bctx;
    CU(cudaSetDevice(c->device), "cudaSetDevice");
    CU(cudaMemcpyAsync(dst, (const char *)native + off, bytes,
                       cudaMemcpyDeviceToHost, c->stream),
       "cudaMemcpyAsync (device to host)");
    CU(cudaStreamSynchronize(c->stream), "cudaStreamSynchronize");
    return MOBA_OK;
}

static moba_status gpu_supports(void *bctx, const moba_problem *pb)
{
    (void)bctx;
    const moba_params *p = &pb->p;
    if (!moba_gpu_attend_get((int)p->dtype, p->head_dim)) {
        int dims[MOBA_MAX_HEAD_DIMS];
        int n = moba_gpu_head_dims(dims, MOBA_MAX_HEAD_DIMS);
        char list[96] = "";
        size_t used = 0;
        for (int i = 0; i < n && used < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%d",
                                     i ? ", " : "", dims[i]);
        return host->set_error(MOBA_ERR_UNSUPPORTED,
                               NAME ": head_dim %d is unsupported (built for %s)",
                               (int)p->head_dim, list);
    }
    /* Entries and partials are indexed with int32. */
    if ((double)pb->total_tokens * p->num_q_heads * p->top_k >= 2147483647.0 ||
        (double)pb->total_blocks * p->num_kv_heads >= 2147483647.0)
        return host->set_error(MOBA_ERR_UNSUPPORTED,
                               NAME ": T * Hq * top_k = %.0f must stay below 2^31",
                               (double)pb->total_tokens * p->num_q_heads * p->top_k);
    return MOBA_OK;
}

static void plan_free(gpu_plan *pl)
{
    for (int i = 0; i < pl->nallocs; i++) (void)cudaFree(pl->allocs[i]);
    for (int i = 0; i < pl->nev; i++) (void)cudaEventDestroy(pl->ev[i]);
    free(pl);
}

static cudaError_t plan_alloc(gpu_plan *pl, void **p, size_t bytes)
{
    bytes = bytes ? bytes : 16;
    cudaError_t e = cudaMalloc(p, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return e;
    }
    pl->allocs[pl->nallocs++] = *p;
    pl->bytes += bytes;
    return cudaSuccess;
}

/* Zeroes, once, what the own blocks' merge reads though no forward writes
 * it (unused_slots.h): the partial slots of each sequence's first rows, a
 * run of neighbouring sequences' in one memset; entry 0's lse, where a
 * row's entry indices point past its last (every other entry's lse is
 * written by each forward, entry 0's only where the plan has partials);
 * and the entry indices, of which k_fill writes K - 1 of a row's
 * gpu_ent_pitch.  At 128K tokens x 2 (blocks of 128, top-8) that is 51 MB
 * of the 7.5 GB of partials. */
static cudaError_t plan_zero_unused(const gpu_plan *pl, const moba_problem *pb, cudaStream_t st)
{
    const gpu_args *a = &pl->a;
    const size_t Km1 = (size_t)(a->K - 1);
    const size_t tok = pb->elem_size * (size_t)a->Hq * Km1 * (size_t)a->D; /* bytes a token */
    cudaError_t e = cudaSuccess;
    int64_t lo = 0, hi = 0; /* the run of tokens gathered so far */
    for (int32_t s = 0; s < pb->batch && !e; s++) {
        const moba_seq *sq = &pb->seqs[s];
        const int64_t n = gpu_unused_rows(sq->len, a->S, a->K, a->causal);
        if (!n) continue;
        if (sq->start != hi) {
            if (hi > lo)
                e = cudaMemsetAsync((char *)a->part_o + (size_t)lo * tok, 0,
                                    (size_t)(hi - lo) * tok, st);
            lo = sq->start;
        }
        hi = sq->start + n;
    }
    if (!e && hi > lo)
        e = cudaMemsetAsync((char *)a->part_o + (size_t)lo * tok, 0, (size_t)(hi - lo) * tok, st);
    const size_t rows = (size_t)a->T * (size_t)a->Hq;
    if (!e && Km1) e = cudaMemsetAsync(a->part_lse, 0, sizeof(float), st);
    if (!e)
        e = cudaMemsetAsync(a->part_ent, 0, sizeof(int32_t) * rows * (size_t)gpu_ent_pitch(a->K),
                            st);
    return e;
}

static moba_status gpu_plan_create(void *bctx, const moba_problem *pb,
                                   void **bplan, size_t *device_bytes)
{
    gpu_ctx *c = (gpu_ctx *)bctx;
    const moba_params *p = &pb->p;
    CU(cudaSetDevice(c->device), "cudaSetDevice");
    gpu_plan *pl = (gpu_plan *)calloc(1, sizeof *pl);
    if (!pl) return host->set_error(MOBA_ERR_OUT_OF_MEMORY, NAME ": out of memory");
    gpu_args *a = &pl->a;
    a->Hq = p->num_q_heads;
    a->Hk = p->num_kv_heads;
    a->D = p->head_dim;
    a->S = p->block_size;
    a->K = p->top_k;
    if (a->K > 1) {
        /* gpu_entry_row: p / (K - 1) = (p km1_mul) >> km1_shift. */
        const uint64_t d = (uint64_t)a->K - 1;
        int l = 0;
        while (((uint64_t)1 << l) < d) l++;
        a->km1_shift = 32 + l;
        a->km1_mul = (((uint64_t)1 << a->km1_shift) + d - 1) / d;
    }
    a->group = pb->group;
    a->causal = p->causal;
    a->dtype = (int)p->dtype;
    a->scale = p->softmax_scale;
    a->scale_log2 = (float)((double)p->softmax_scale * 1.4426950408889634);
    a->T = pb->total_tokens;
    a->nblocks = pb->total_blocks;
    a->nlists = pb->total_blocks * p->num_kv_heads;
    a->h0 = a->kh0 = 0;
    a->nheads = a->Hq;
    a->Hkl = a->Hk;
    pl->groups = 1;
    a->nseqs = pb->batch;
    a->sm_count = c->sm_count;
    a->l2_bytes = c->l2_bytes;
    a->max_seqlen = pb->max_seqlen;
    a->smem_optin = c->smem_optin;

    /* Per-plan metadata, built on the host once and uploaded here: blocks,
     * then the query tiles of GPU_TILE_ROWS rows and of GPU_GATE_ROWS rows
     * in one array (qtiles, gtiles). */
    int64_t ntiles = 0, ngtiles = 0;
    for (int32_t s = 0; s < pb->batch; s++) {
        ntiles += (pb->seqs[s].len + GPU_TILE_ROWS - 1) / GPU_TILE_ROWS;
        ngtiles += (pb->seqs[s].len + GPU_GATE_ROWS - 1) / GPU_GATE_ROWS;
    }
    a->ntiles = ntiles;
    a->ngtiles = ngtiles;
    gpu_block *hb = (gpu_block *)malloc(sizeof *hb * (size_t)(a->nblocks + 1));
    gpu_qtile *ht = (gpu_qtile *)malloc(sizeof *ht * (size_t)(ntiles + ngtiles + 1));
    moba_status st = MOBA_OK;
    cudaError_t e = cudaSuccess;
    const char *what = "cudaMalloc";
    if (!hb || !ht) {
        st = host->set_error(MOBA_ERR_OUT_OF_MEMORY, NAME ": out of memory");
        goto done;
    }
    {
        int64_t nt = 0;
        for (int32_t s = 0; s < pb->batch; s++) {
            const moba_seq *sq = &pb->seqs[s];
            for (int32_t j = 0; j < sq->nb; j++) {
                gpu_block *b = &hb[sq->block_offset + j];
                b->start = sq->start + (int64_t)j * p->block_size;
                b->len = sq->len - j * p->block_size < p->block_size
                             ? sq->len - j * p->block_size
                             : p->block_size;
                b->seq = s;
                for (int32_t x = b->len; x;) { /* len_gcd = gcd(len_gcd, len) */
                    const int32_t y = a->len_gcd % x;
                    a->len_gcd = x;
                    x = y;
                }
            }
        }
        const int32_t rows[2] = {GPU_TILE_ROWS, GPU_GATE_ROWS};
        for (int w = 0; w < 2; w++)
            for (int32_t s = 0; s < pb->batch; s++) {
                const moba_seq *sq = &pb->seqs[s];
                for (int32_t r = 0; r < sq->len; r += rows[w]) {
                    ht[nt].seq = s;
                    ht[nt].row0 = r;
                    ht[nt].rows = sq->len - r < rows[w] ? sq->len - r : rows[w];
                    ht[nt].start = (int32_t)sq->start;
                    nt++;
                }
            }
    }
    {
        const size_t T = (size_t)a->T, Hq = (size_t)a->Hq, Km1 = (size_t)(a->K - 1);
        const size_t nl = (size_t)a->nlists;
        void *ptr;
        if ((e = plan_alloc(pl, &ptr, sizeof(moba_seq) * (size_t)pb->batch))) goto done;
        a->seqs = (const moba_seq *)ptr;
        e = cudaMemcpyAsync(ptr, pb->seqs, sizeof(moba_seq) * (size_t)pb->batch,
                            cudaMemcpyHostToDevice, c->stream);
        what = "cudaMemcpyAsync";
        if (e) goto done;
        what = "cudaMalloc";
        if ((e = plan_alloc(pl, &ptr, sizeof(gpu_block) * (size_t)a->nblocks))) goto done;
        a->blocks = (const gpu_block *)ptr;
        what = "cudaMemcpyAsync";
        if ((e = cudaMemcpyAsync(ptr, hb, sizeof(gpu_block) * (size_t)a->nblocks,
                                 cudaMemcpyHostToDevice, c->stream)))
            goto done;
        what = "cudaMalloc";
        if ((e = plan_alloc(pl, &ptr, sizeof(gpu_qtile) * (size_t)(ntiles + ngtiles))))
            goto done;
        a->qtiles = (const gpu_qtile *)ptr;
        a->gtiles = a->qtiles + ntiles;
        what = "cudaMemcpyAsync";
        if ((e = cudaMemcpyAsync(ptr, ht, sizeof(gpu_qtile) * (size_t)(ntiles + ngtiles),
                                 cudaMemcpyHostToDevice, c->stream)))
            goto done;
        what = "cudaMalloc";
        if ((e = plan_alloc(pl, (void **)&a->cent,
                            sizeof(float) * (size_t)a->nblocks * a->Hk * a->D)) ||
            (e = (pb->elem_size == 2
                      ? plan_alloc(pl, (void **)&a->cent16,
                                   2 * (size_t)a->nblocks * a->Hk * a->D)
                      : cudaSuccess)) ||
            (e = plan_alloc(pl, (void **)&a->sel, sizeof(int32_t) * T * Hq * a->K)) ||
            (e = plan_alloc(pl, (void **)&a->counts, sizeof(int32_t) * nl)) ||
            /* gpu_head_group: a list count more per group. */
            (e = plan_alloc(pl, (void **)&a->list_off, sizeof(int32_t) * (nl + a->Hk))) ||
            (e = plan_alloc(pl, (void **)&a->tile_off, sizeof(int32_t) * (nl + a->Hk))) ||
            (e = plan_alloc(pl, (void **)&a->cursor, sizeof(int32_t) * nl)) ||
            (e = plan_alloc(pl, (void **)&a->runs,
                            2 * sizeof(int32_t) * (size_t)gpu_runs_cap(a))) ||
            (e = plan_alloc(pl, (void **)&a->sched, sizeof(int32_t) * GPU_MAX_GROUPS)) ||
            (e = plan_alloc(pl, (void **)&a->entries, sizeof(int32_t) * T * Hq * Km1)) ||
            (e = plan_alloc(pl, &a->part_o, pb->elem_size * T * Hq * Km1 * a->D)) ||
            (e = plan_alloc(pl, (void **)&a->part_lse, sizeof(float) * T * Hq * Km1)) ||
            (e = plan_alloc(pl, (void **)&a->part_ent,
                            sizeof(int32_t) * T * Hq * (size_t)gpu_ent_pitch(a->K))))
            goto done;
        what = "cudaMemsetAsync";
        if ((e = plan_zero_unused(pl, pb, c->stream))) goto done;
        what = "cudaEventCreateWithFlags";
        const int nev = 1 + (a->Hk < GPU_MAX_GROUPS ? a->Hk : GPU_MAX_GROUPS);
        for (; pl->nev < nev; pl->nev++)
            if ((e = cudaEventCreateWithFlags(&pl->ev[pl->nev], cudaEventDisableTiming)))
                goto done;
        what = "cudaStreamSynchronize";
        e = cudaStreamSynchronize(c->stream);
    }
done:
    free(hb);
    free(ht);
    if (!st && e != cudaSuccess)
        st = host->set_error(e == cudaErrorMemoryAllocation ? MOBA_ERR_OUT_OF_MEMORY
                                                            : MOBA_ERR_DEVICE,
                             NAME ": plan_create: %s failed: %s (plan needs "
                             "about %zu bytes so far)",
                             what, cudaGetErrorString(e), pl->bytes);
    if (st) {
        plan_free(pl);
        return st;
    }
    *bplan = pl;
    *device_bytes = pl->bytes;
    return MOBA_OK;
}

static void gpu_plan_destroy(void *bctx, void *bplan)
{
    gpu_ctx *c = (gpu_ctx *)bctx;
    (void)cudaSetDevice(c->device);
    (void)cudaStreamSynchronize(c->stream);
    plan_free((gpu_plan *)bplan);
}

/* Tensor-core kernels (gating scores, attention) need compute 8.0+.  On
 * compute 9.0 with sm_90a code (gpu_archs with 90a: MOBA_CUDA_SM90A) the
 * attention runs on wgmma: k_wgmma_kv_short for blocks of at most 128
 * keys (1.2x the mma.sync kernel, docs/perf.md CUDA v14), k_wgmma_kv_ws
 * for longer blocks (1.9x at 16384 keys, v22; 1.4-2.1x end to end at 256
 * to 2048, v57), and the gate of up to top-8 on k_gate_ws
 * (1.25x at 512K, v35).  MOBA_CUDA_KERNEL picks for A/B
 * comparisons: simt the portable kernels, mma the mma.sync kernels only,
 * wgmma (or unset) the wgmma kernels where they run. */
static int use_mma(const gpu_ctx *c)
{
    const char *kern = host->getenv("MOBA_CUDA_KERNEL");
    if (!MOBA_GPU_HAVE_MMA || c->cc_major < 8 || (kern && strcmp(kern, "simt") == 0))
        return GPU_MMA_NONE;
#ifdef MOBA_CUDA_SM90A
    if (c->cc_major == 9 && c->cc_minor == 0 && !(kern && strcmp(kern, "mma") == 0))
        return GPU_MMA_WGMMA;
#endif
    return GPU_MMA_SYNC;
}

/* *out = the integer in environment variable name, or dflt where it is
 * unset or empty; a value that is not an integer in [lo, hi] is an error. */
static moba_status env_int(const char *name, long lo, long hi, int dflt, int *out)
{
    const char *env = host->getenv(name);
    *out = dflt;
    if (!env || !*env) return MOBA_OK;
    char *end;
    const long x = strtol(env, &end, 10);
    if (*end || x < lo || x > hi)
        return host->set_error(MOBA_ERR_INVALID_ARGUMENT,
                               NAME ": %s=%s is not an integer in [%ld, %ld]", name, env, lo,
                               hi);
    *out = (int)x;
    return MOBA_OK;
}

/* What every launching call sets first: the device, the stream and the
 * kernel choices from the environment. */
static moba_status call_setup(const gpu_ctx *c, gpu_plan *pl)
{
    CU(cudaSetDevice(c->device), "cudaSetDevice");
    pl->a.stream = c->stream;
    pl->a.use_mma = use_mma(c);
    moba_status st = env_int("MOBA_CUDA_GRID", 0, 1L << 20, 0, &pl->a.grid_cap);
    if (st) return st;
    st = env_int("MOBA_CUDA_TMA", 0, 1, 1, &pl->a.tma);
    if (st) return st;
    st = env_int("MOBA_CUDA_FILL_SPAN", 0, 4096, -1, &pl->a.fill_span);
    if (st) return st;
    st = env_int("MOBA_CUDA_FILL_CAP", 0, GPU_FILL_CAP, GPU_FILL_CAP, &pl->a.fill_cap);
    if (st) return st;
    st = env_int("MOBA_CUDA_OWN_WS", -1, 1, -1, &pl->a.own_ws);
    if (st) return st;
    st = env_int("MOBA_CUDA_WS_MIN", 1, 1L << 30, GPU_WS_MIN, &pl->a.ws_min);
    if (st) return st;
    st = env_int("MOBA_CUDA_FILL_STAGE", 0, 1, 1, &pl->a.fill_stage);
    if (st) return st;
    st = env_int("MOBA_CUDA_OWN_EARLY", 0, 1, 1, &pl->a.own_early);
    if (st) return st;
    st = env_int("MOBA_CUDA_TILE_ORDER", 0, 1, 1, &pl->a.tile_order);
    if (st) return st;
    st = env_int("MOBA_CUDA_KV_PREFETCH", 0, 1, 1, &pl->a.kv_prefetch);
    if (st) return st;
    /* -1: the launch chooses (wg_short_chunk). */
    return env_int("MOBA_CUDA_SCHED_CHUNK", 0, 1L << 20, -1, &pl->a.chunk);
}

static moba_status gpu_gate(void *bctx, void *bplan, const moba_problem *pb,
                            void *q, void *k)
{
    (void)pb;
    gpu_ctx *c = (gpu_ctx *)bctx;
    gpu_plan *pl = (gpu_plan *)bplan;
    const moba_status st = call_setup(c, pl);
    if (st) return st;
    pl->groups = 1;
    CU(moba_gpu_centroids(&pl->a, k), "centroid kernel");
    CU(moba_gpu_select(&pl->a, q), "gating kernels");
    return MOBA_OK;
}

static moba_status gpu_read_selection(void *bctx, void *bplan,
                                      const moba_problem *pb, int32_t *sel)
{
    gpu_ctx *c = (gpu_ctx *)bctx;
    gpu_plan *pl = (gpu_plan *)bplan;
    CU(cudaSetDevice(c->device), "cudaSetDevice");
    CU(cudaMemcpyAsync(sel, pl->a.sel,
                       sizeof(int32_t) * (size_t)pb->total_tokens *
                           (size_t)pb->p.num_q_heads * (size_t)pb->p.top_k,
                       cudaMemcpyDeviceToHost, c->stream),
       "cudaMemcpyAsync (selection)");
    CU(cudaStreamSynchronize(c->stream), "cudaStreamSynchronize");
    return MOBA_OK;
}

static moba_status gpu_attend(void *bctx, void *bplan, const moba_problem *pb,
                              void *q, void *k, void *v, void *out, void *lse)
{
    gpu_ctx *c = (gpu_ctx *)bctx;
    gpu_plan *pl = (gpu_plan *)bplan;
    moba_gpu_attend_fn fn = moba_gpu_attend_get((int)pb->p.dtype, pb->p.head_dim);
    if (!fn) return gpu_supports(bctx, pb);
    const moba_status st = call_setup(c, pl);
    if (st) return st;
    /* The lists are laid out for the groups of the last gating. */
    for (int g = 0; g < pl->groups; g++) {
        const gpu_args ag = gpu_head_group(&pl->a, pl->groups, g);
        CU(fn(&ag, q, k, v, out, (float *)lse), "attention kernels");
    }
    return MOBA_OK;
}

/* Kv-head groups for gpu_forward: MOBA_CUDA_HEAD_GROUPS if set (at most
 * Hk and GPU_MAX_GROUPS), else 1.  On an H200 (docs/perf.md, CUDA v17)
 * 8 groups gave 1.07x at 128K and 512K tokens (blk128/top8) while each
 * CTA of the short-block attention kernel had one fixed run of tiles: the
 * next group's gating filled the SMs that the slowest runs left idle.
 * With the runs taken in chunks (wg_short_chunk) that idle time went, and
 * the groups came to 0.96-1.04x depending on the shape, within the spread
 * between calls; so one group by default, and the groups for
 * measurements. */
static moba_status forward_groups(const gpu_plan *pl, int *groups)
{
    const gpu_args *a = &pl->a;
    const int most = a->Hk < GPU_MAX_GROUPS ? a->Hk : GPU_MAX_GROUPS;
    const moba_status st = env_int("MOBA_CUDA_HEAD_GROUPS", 1, 1L << 20, 1, groups);
    if (a->K == 1) *groups = 1; /* no lists: nothing to overlap */
    if (*groups > most) *groups = most;
    return st;
}

/* Gate + attend with the heads in G groups: group g's gating runs on the
 * context's stream, and its attention on the aux stream once that gating
 * is done, so the attention of group g overlaps the gating of g + 1.  The
 * gate is bound by its ALU pipe and the attention by latency and memory,
 * and an SM runs CTAs of both (forward_groups has what it gained).  Every
 * row's arithmetic is the same as with one group, so the outputs are
 * bitwise those of gate + attend.  The aux stream forks from the
 * context's stream after group 0's gating (so it sees every earlier write
 * on that stream) and joins it at the end. */
static moba_status gpu_forward(void *bctx, void *bplan, const moba_problem *pb,
                               void *q, void *k, void *v, void *out, void *lse)
{
    gpu_ctx *c = (gpu_ctx *)bctx;
    gpu_plan *pl = (gpu_plan *)bplan;
    moba_gpu_attend_fn fn = moba_gpu_attend_get((int)pb->p.dtype, pb->p.head_dim);
    if (!fn) return gpu_supports(bctx, pb);
    int G = 1;
    moba_status st = forward_groups(pl, &G);
    if (!st) st = call_setup(c, pl);
    if (st) return st;
    pl->groups = G;
    CU(moba_gpu_centroids(&pl->a, k), "centroid kernel");
    for (int g = 0; g < G; g++) {
        gpu_args ag = gpu_head_group(&pl->a, G, g);
        CU(moba_gpu_select(&ag, q), "gating kernels");
        if (G > 1) {
            CU(cudaEventRecord(pl->ev[g], c->stream), "cudaEventRecord");
            CU(cudaStreamWaitEvent(c->aux, pl->ev[g], 0), "cudaStreamWaitEvent");
            ag.stream = c->aux;
        }
        CU(fn(&ag, q, k, v, out, (float *)lse), "attention kernels");
    }
    if (G > 1) {
        CU(cudaEventRecord(pl->ev[G], c->aux), "cudaEventRecord");
        CU(cudaStreamWaitEvent(c->stream, pl->ev[G], 0), "cudaStreamWaitEvent");
    }
    return MOBA_OK;
}

static const moba_backend_iface gpu_iface = {
    MOBA_BACKEND_ABI_VERSION,
    NAME,
    gpu_init,
    gpu_device_info,
    gpu_context_create,
    gpu_context_destroy,
    gpu_set_stream,
    gpu_synchronize,
    NULL, /* set_num_threads */
    NULL, /* get_num_threads */
    gpu_buffer_alloc,
    gpu_buffer_free,
    NULL, /* buffer_wrap_check */
    gpu_buffer_write,
    gpu_buffer_read,
    gpu_supports,
    gpu_plan_create,
    gpu_plan_destroy,
    gpu_gate,
    gpu_read_selection,
    gpu_attend,
    gpu_forward,
};

extern "C" MOBA_MODULE_EXPORT const moba_backend_iface *moba_backend_module(void)
{
    return &gpu_iface;
}
