/* The CPU backend's vtable: contexts, host buffers, plans. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/gate.h"
#include "cpu_backend.h"
#include "cpu_internal.h"

#define CPU_MAX_HEAD_DIM 1024
#define CPU_ALIGN 64

const moba_host_api *moba_cpu_host;

static moba_status cpu_init(const moba_host_api *host, int *n)
{
    moba_cpu_host = host;
    *n = 1;
    return MOBA_OK;
}

static void read_cpuinfo(char *model, size_t msize, char *vendor, size_t vsize)
{
    snprintf(model, msize, "host CPU");
    snprintf(vendor, vsize, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    int got_model = 0, got_vendor = 0;
    while (fgets(line, sizeof line, f) && !(got_model && got_vendor)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *val = colon + 1;
        while (*val == ' ') val++;
        val[strcspn(val, "\n")] = '\0';
        if (!got_model && !strncmp(line, "model name", 10)) {
            snprintf(model, msize, "%s", val);
            got_model = 1;
        } else if (!got_vendor && !strncmp(line, "vendor_id", 9)) {
            snprintf(vendor, vsize, "%s", val);
            got_vendor = 1;
        }
    }
    fclose(f);
}

static int default_threads(void)
{
    const char *env = moba_cpu_host->getenv("MOBA_NUM_THREADS");
    if (env) {
        long n = strtol(env, NULL, 10);
        if (n >= 1 && n <= 4096) return (int)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 ? (int)n : 1;
}

static moba_status cpu_device_info(int device, moba_device_info *info)
{
    (void)device;
    read_cpuinfo(info->name, sizeof info->name, info->vendor,
                 sizeof info->vendor);
    const char *why;
    const moba_cpu_kernels *k = moba_cpu_kernels_get(&why);
    if (k)
        snprintf(info->driver, sizeof info->driver, "kernels: %s", k->name);
    else
        snprintf(info->driver, sizeof info->driver, "kernels: none (%.100s)", why);
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    info->memory_bytes = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    info->compute_units = n > 0 ? (int)n : 1;
    info->dtypes = MOBA_DTYPE_BIT(MOBA_F32) | MOBA_DTYPE_BIT(MOBA_F16) |
                   MOBA_DTYPE_BIT(MOBA_BF16);
    info->num_head_dims = 0;
    info->head_dim_max = CPU_MAX_HEAD_DIM;
    info->is_cpu = 1;
    return MOBA_OK;
}

static moba_status cpu_context_create(int device, void **bctx)
{
    (void)device;
    const char *why;
    const moba_cpu_kernels *k = moba_cpu_kernels_get(&why);
    if (!k) return moba_cpu_host->set_error(MOBA_ERR_UNSUPPORTED, "cpu: %s", why);
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!c) return moba_cpu_host->set_error(MOBA_ERR_OUT_OF_MEMORY, "cpu: out of memory");
    c->kern = k;
    int n = default_threads();
    c->pool = moba_pool_create(n);
    if (!c->pool) {
        free(c);
        return moba_cpu_host->set_error(MOBA_ERR_OUT_OF_MEMORY,
                                        "cpu: cannot start %d worker threads", n);
    }
    *bctx = c;
    return MOBA_OK;
}

static void cpu_context_destroy(void *bctx)
{
    cpu_ctx *c = bctx;
    if (!c) return;
    moba_pool_destroy(c->pool);
    free(c);
}

static moba_status cpu_set_stream(void *bctx, void *stream)
{
    (void)bctx;
    if (stream)
        return moba_cpu_host->set_error(MOBA_ERR_UNSUPPORTED,
                                        "cpu: the CPU backend runs synchronously "
                                        "and takes no stream (pass NULL)");
    return MOBA_OK;
}

static moba_status cpu_synchronize(void *bctx)
{
    (void)bctx;
    return MOBA_OK;
}

static moba_status cpu_set_num_threads(void *bctx, int n)
{
    cpu_ctx *c = bctx;
    if (n == 0) n = default_threads();
    if (n > 4096)
        return moba_cpu_host->set_error(MOBA_ERR_INVALID_ARGUMENT,
                                        "cpu: %d threads requested, at most 4096", n);
    if (n == moba_pool_threads(c->pool)) return MOBA_OK;
    moba_pool *p = moba_pool_create(n);
    if (!p)
        return moba_cpu_host->set_error(MOBA_ERR_OUT_OF_MEMORY,
                                        "cpu: cannot start %d worker threads", n);
    moba_pool_destroy(c->pool);
    c->pool = p;
    return MOBA_OK;
}

static moba_status cpu_get_num_threads(void *bctx, int *n)
{
    *n = moba_pool_threads(((cpu_ctx *)bctx)->pool);
    return MOBA_OK;
}

static moba_status cpu_buffer_alloc(void *bctx, size_t bytes, void **native)
{
    (void)bctx;
    size_t rounded = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    void *p = rounded >= bytes ? aligned_alloc(CPU_ALIGN, rounded) : NULL;
    if (!p)
        return moba_cpu_host->set_error(MOBA_ERR_OUT_OF_MEMORY,
                                        "cpu: cannot allocate %zu bytes", bytes);
    *native = p;
    return MOBA_OK;
}

static void cpu_buffer_free(void *bctx, void *native)
{
    (void)bctx;
    free(native);
}

static moba_status cpu_buffer_write(void *bctx, void *native, size_t off,
                                    const void *src, size_t bytes)
{
    (void)bctx;
    memmove((char *)native + off, src, bytes);
    return MOBA_OK;
}

static moba_status cpu_buffer_read(void *bctx, void *native, size_t off,
                                   void *dst, size_t bytes)
{
    (void)bctx;
    memmove(dst, (const char *)native + off, bytes);
    return MOBA_OK;
}

static moba_status cpu_supports(void *bctx, const moba_problem *pb)
{
    (void)bctx;
    if (pb->p.head_dim > CPU_MAX_HEAD_DIM)
        return moba_cpu_host->set_error(MOBA_ERR_UNSUPPORTED,
                                        "cpu: head_dim %d is unsupported (the CPU "
                                        "backend takes 1..%d)",
                                        (int)pb->p.head_dim, CPU_MAX_HEAD_DIM);
    return MOBA_OK;
}

static void cpu_plan_free(cpu_plan *pl)
{
    if (!pl) return;
    free(pl->cent);
    free(pl->sel);
    free(pl->tiles);
    for (int i = 0; i < pl->nscratch; i++) free(pl->scratch[i]);
    free(pl->scratch);
    free(pl);
}

moba_status moba_cpu_plan_scratch(cpu_plan *pl, int nthreads)
{
    if (pl->nscratch >= nthreads) return MOBA_OK;
    float **s = realloc(pl->scratch, sizeof *s * (size_t)nthreads);
    if (!s) goto oom;
    pl->scratch = s;
    for (int i = pl->nscratch; i < nthreads; i++) {
        s[i] = aligned_alloc(CPU_ALIGN, (pl->scratch_floats * sizeof(float) +
                                         CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN);
        if (!s[i]) goto oom;
        pl->nscratch = i + 1;
    }
    return MOBA_OK;
oom:
    return moba_cpu_host->set_error(MOBA_ERR_OUT_OF_MEMORY,
                                    "cpu: cannot allocate scratch for %d threads",
                                    nthreads);
}

/* Query rows per tile.  A selected block is read once per tile and serves
 * every row of the tile that chose it, so reuse grows with the tile: aim at
 * 512 rows x kv group (up to a whole block), while the tile's f32 queries
 * and accumulators (8*D bytes a row) stay within about 512 KB of L2, and
 * keep at least 64 tasks for the threads.  Depends on the problem only, not
 * on the thread count. */
static int32_t cpu_tile_rows(const moba_problem *pb)
{
    const moba_params *p = &pb->p;
    int32_t rg = 65536 / p->head_dim;
    if (rg > 512) rg = 512;
    if (rg < 16) rg = 16;
    int32_t rows = rg / pb->group;
    if (rows < 1) rows = 1;
    while (rows > 8 &&
           (pb->total_tokens / rows + pb->batch) * p->num_kv_heads < 64)
        rows /= 2;
    return rows;
}

static moba_status cpu_plan_create(void *bctx, const moba_problem *pb,
                                   void **bplan, size_t *bytes)
{
    cpu_ctx *c = bctx;
    const moba_params *p = &pb->p;
    cpu_plan *pl = calloc(1, sizeof *pl);
    if (!pl) goto oom;
    size_t ncent = (size_t)pb->total_blocks * p->num_kv_heads * p->head_dim;
    size_t nsel = (size_t)pb->total_tokens * p->num_q_heads * p->top_k;
    pl->cent = malloc(sizeof(float) * (ncent ? ncent : 1));
    pl->sel = malloc(sizeof(int32_t) * (nsel ? nsel : 1));
    if (!pl->cent || !pl->sel) goto oom;
    pl->tile_rows = cpu_tile_rows(pb);
    if (moba_schedule_tiles(pb, pl->tile_rows, &pl->tiles, &pl->ntiles)) goto oom;
    pl->scratch_floats = moba_cpu_attend_scratch(c->kern, pb, pl->tile_rows);
    moba_status st = moba_cpu_plan_scratch(pl, moba_pool_threads(c->pool));
    if (st) {
        cpu_plan_free(pl);
        return st;
    }
    *bytes = ncent * sizeof(float) + nsel * sizeof(int32_t) +
             (size_t)pl->ntiles * sizeof(moba_tile) +
             (size_t)pl->nscratch * pl->scratch_floats * sizeof(float);
    *bplan = pl;
    return MOBA_OK;
oom:
    cpu_plan_free(pl);
    return moba_cpu_host->set_error(MOBA_ERR_OUT_OF_MEMORY,
                                    "cpu: cannot allocate the plan");
}

static void cpu_plan_destroy(void *bctx, void *bplan)
{
    (void)bctx;
    cpu_plan_free(bplan);
}

static moba_status cpu_gate(void *bctx, void *bplan, const moba_problem *pb,
                            void *q, void *k)
{
    return moba_cpu_gate(bctx, bplan, pb, q, k);
}

static moba_status cpu_read_selection(void *bctx, void *bplan,
                                      const moba_problem *pb, int32_t *sel)
{
    (void)bctx;
    const cpu_plan *pl = bplan;
    memcpy(sel, pl->sel, sizeof(int32_t) * (size_t)pb->total_tokens *
                             (size_t)pb->p.num_q_heads * (size_t)pb->p.top_k);
    return MOBA_OK;
}

static moba_status cpu_attend(void *bctx, void *bplan, const moba_problem *pb,
                              void *q, void *k, void *v, void *out, void *lse)
{
    return moba_cpu_attend(bctx, bplan, pb, q, k, v, out, lse);
}

static const moba_backend_iface cpu_iface = {
    .abi_version = MOBA_BACKEND_ABI_VERSION,
    .name = "cpu",
    .init = cpu_init,
    .device_info = cpu_device_info,
    .context_create = cpu_context_create,
    .context_destroy = cpu_context_destroy,
    .set_stream = cpu_set_stream,
    .synchronize = cpu_synchronize,
    .set_num_threads = cpu_set_num_threads,
    .get_num_threads = cpu_get_num_threads,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .buffer_wrap_check = NULL,
    .buffer_write = cpu_buffer_write,
    .buffer_read = cpu_buffer_read,
    .supports = cpu_supports,
    .plan_create = cpu_plan_create,
    .plan_destroy = cpu_plan_destroy,
    .gate = cpu_gate,
    .read_selection = cpu_read_selection,
    .attend = cpu_attend,
};

const moba_backend_iface *moba_cpu_backend(void) { return &cpu_iface; }
