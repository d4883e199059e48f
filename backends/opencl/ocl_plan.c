/*
 * Plans on OpenCL: tile sizes from the device limits, the program for the
 * problem's shape, the device buffers, and the kernel launches of gate and
 * attend (see kernels/gate.cl and kernels/attend.cl for the algorithms).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/schedule.h"
#include "ocl_internal.h"

#define TILE_INTS 5
/* The CPU attend form's defaults (cpu_kernels; docs/perf.md, OpenCL v5). */
#define ATTEND_CPU_NT 1
#define ATTEND_CPU_NCH 4
#define LOCAL_SLACK 1024 /* bytes of local memory left to the compiler */

typedef struct ocl_plan {
    ocl_program *prog;
    cl_mem cent, sel, tiles, blocks, tok_boff, cnt, offs, list, pacc, pml, dummy;
    int64_t ntiles;
    int hc; /* query heads per attend pass (bounds the partials' memory) */
    int gnt, gr, cb, scan_wg, ksel; /* moba_gate's shape (kernels/gate.cl) */
    int nt, qt, kt, txo; /* moba_block_attend's shape (kernels/attend.cl) */
    int uqk, upv, sc;    /* its unroll factors, keys per item in the scores */
    int cpuk, nch; /* the CPU forms of gate and attend; attend's work-groups per bucket */
    int mma;       /* gate's and attend's tensor-core forms: 1 inline PTX, 2 emulated */
    int mma_wgs;   /* their work-groups per SM, for the register cap */
    size_t wg1; /* work-group size of the 1-D elementwise kernels */
} ocl_plan;

#define SET(k, i, v) OCL_TRY(clSetKernelArg((k), (i), sizeof(v), &(v)), "clSetKernelArg(" #v ")")

/* Private top-k capacity: a few buckets rather than one per top_k, so
 * that most problems share one program (compiles take seconds on PoCL). */
static int ksel_cap(int ksel)
{
    int p = 8;
    while (p < ksel) p *= 4;
    return p;
}

/* moba_gate's shapes, largest first: {GNT items, GR rows, CB centroids per
 * chunk}. */
static const int gate_shapes[][3] = {
    {128, 64, 16}, {128, 32, 32}, {64, 32, 16}, {64, 16, 16}, {32, 16, 8},
    {16, 8, 4},    {8, 8, 2},     {4, 4, 2},    {1, 1, 2},
};
#define N_GATE_SHAPES (int)(sizeof gate_shapes / sizeof gate_shapes[0])

/* The first gate shape that fits the work-group cap and the local memory
 * and tiles evenly (GNT / (CB / 2) must divide GR), and equals the forced
 * one if any; -1 if none. */
static int gate_pick(int D, size_t wg, size_t lmem, const int *force)
{
    for (int i = 0; i < N_GATE_SHAPES; i++) {
        int gnt = gate_shapes[i][0], gr = gate_shapes[i][1], cb = gate_shapes[i][2];
        size_t bytes = (size_t)(gr + cb) * (D / 4 + 1) * 16 + (size_t)cb * (gr + 4) * 4;
        if (force[0] && (gnt != force[0] || gr != force[1] || cb != force[2])) continue;
        if ((size_t)gnt <= wg && bytes <= lmem && gr % (gnt / (cb / 2)) == 0) return i;
    }
    return -1;
}

/* moba_gate's shape: the default, or MOBA_OPENCL_GATE=GNT,GR,CB where it
 * is in the list and fits.  The last shape always works (one item). */
static void gate_shape(int D, size_t wg, size_t lmem, ocl_plan *pl)
{
    int f[3] = {0, 0, 0};
    const char *force = moba_ocl_host->getenv("MOBA_OPENCL_GATE");
    if (force) sscanf(force, "%d,%d,%d", &f[0], &f[1], &f[2]);
    int i = gate_pick(D, wg, lmem, f);
    if (i < 0 && f[0]) {
        f[0] = 0;
        i = gate_pick(D, wg, lmem, f);
    }
    if (i < 0) i = N_GATE_SHAPES - 1;
    pl->gnt = gate_shapes[i][0];
    pl->gr = gate_shapes[i][1];
    pl->cb = gate_shapes[i][2];
}

/* Local bytes of moba_block_attend's arrays for a shape (kernels/attend.cl). */
static size_t attend_local(int D, int nt, int qt, int kt)
{
    size_t rows = (size_t)(qt + kt) * (D / 4 + 1) * 16;
    return rows + (size_t)kt * (qt + 4) * 4 + (size_t)nt * 8 + (size_t)qt * 12;
}

/* The attend shapes, largest first: {NT, QT, KT}. */
static const int attend_shapes[][3] = {
    {128, 32, 32}, {64, 32, 32}, {128, 32, 16}, {128, 16, 16}, {64, 16, 16}, {64, 16, 8},
    {32, 8, 8},    {16, 8, 4},   {8, 8, 2},     {4, 4, 2},     {1, 1, 2},
};
#define N_ATTEND_SHAPES (int)(sizeof attend_shapes / sizeof attend_shapes[0])

/* The first attend shape with sc keys per item that fits the work-group
 * cap and the local memory and whose tilings divide evenly (the kernel's
 * SR, OR, NP and KP must be whole), and equals the forced one if any;
 * -1 if none. */
static int attend_pick(int D, size_t wg, size_t lmem, int sc, const int *force)
{
    for (int i = 0; i < N_ATTEND_SHAPES; i++) {
        int nt = attend_shapes[i][0], qt = attend_shapes[i][1], kt = attend_shapes[i][2];
        int txs = kt / sc;
        if (txs < 1 || kt % sc) continue;
        if ((size_t)nt > wg || attend_local(D, nt, qt, kt) > lmem) continue;
        if (force[0] && (nt != force[0] || qt != force[1] || kt != force[2])) continue;
        if (nt % txs || qt % (nt / txs) || nt % qt || kt % (nt / qt)) continue;
        return i;
    }
    return -1;
}

/* The attend shape, its unroll factors and keys per item (defaults, or
 * MOBA_OPENCL_ATTEND=NT,QT,KT,UQK,UPV,SC where each field may be 0 for
 * the default), then the widest output column tiling TXO that divides
 * the rows evenly, preferring one that also divides D / 4 (no idle
 * columns).  The last shape always works (one item, sc = 2). */
static void attend_shape(int D, int is_cpu, size_t wg, size_t lmem, ocl_plan *pl)
{
    /* Unrolled loops pay on NVIDIA (docs/perf.md, OpenCL v4).  On PoCL the
     * rolled ones ran ~1.1x slower, but compile in 30 % less time, which
     * is most of the conformance suite's time there. */
    const int unroll = is_cpu ? 1 : 8;
    int f[6] = {0, 0, 0, 0, 0, 0};
    const char *force = moba_ocl_host->getenv("MOBA_OPENCL_ATTEND");
    if (force) sscanf(force, "%d,%d,%d,%d,%d,%d", &f[0], &f[1], &f[2], &f[3], &f[4], &f[5]);
    pl->uqk = f[3] >= 1 && f[3] <= 64 ? f[3] : unroll;
    pl->upv = f[4] >= 1 && f[4] <= 64 ? f[4] : unroll;
    pl->sc = f[5] == 1 || f[5] == 4 ? f[5] : 2;
    int i = attend_pick(D, wg, lmem, pl->sc, f);
    if (i < 0) {
        pl->sc = 2;
        i = attend_pick(D, wg, lmem, 2, f);
    }
    if (i < 0) {
        f[0] = 0;
        i = attend_pick(D, wg, lmem, 2, f);
    }
    if (i < 0) i = N_ATTEND_SHAPES - 1;
    pl->nt = attend_shapes[i][0];
    pl->qt = attend_shapes[i][1];
    pl->kt = attend_shapes[i][2];
    int d4 = D / 4, txo = 1;
    for (int exact = 1; exact >= 0 && txo == 1; exact--)
        for (int c = 16; c > 1; c /= 2)
            if (c <= pl->nt && pl->nt % c == 0 && pl->qt % (pl->nt / c) == 0 &&
                (!exact || d4 % c == 0)) {
                txo = c;
                break;
            }
    pl->txo = txo;
}

/* CPU devices take the CPU forms of moba_gate and moba_block_attend
 * (kernels/gate.cl GATE_CPU, kernels/attend.cl ATTEND_CPU): an item per
 * gate row (GNT = GR), and nt items per attend work-group, nch
 * work-groups per bucket.  MOBA_OPENCL_CPU_KERNELS=NT,NCH sets the attend
 * shape (0: the default); MOBA_OPENCL_CPU_KERNELS=0 keeps the work-group
 * forms, which GPUs run. */
static void cpu_kernels(int is_cpu, size_t wg, ocl_plan *pl)
{
    int f[2] = {-1, 0};
    const char *force = moba_ocl_host->getenv("MOBA_OPENCL_CPU_KERNELS");
    if (force) sscanf(force, "%d,%d", &f[0], &f[1]);
    pl->cpuk = is_cpu && f[0] != 0 && (size_t)pl->gr <= wg; /* the gate's rows are its items */
    if (!pl->cpuk) return;
    pl->gnt = pl->gr;
    pl->nt = f[0] >= 1 && (size_t)f[0] <= wg ? f[0] : ATTEND_CPU_NT <= wg ? ATTEND_CPU_NT : 1;
    pl->nch = f[1] >= 1 && f[1] <= 256 ? f[1] : ATTEND_CPU_NCH;
}

/* The MMA forms of gate and attend (ATTEND_MMA in kernels/gate.cl and
 * kernels/attend.cl, kernels/mma.cl): 128 items; attend takes 64 entries
 * and KT keys a step, the gate 64-row tiles and 64 centroids a chunk; for
 * 16-bit storage and D <= 128 (the output fragments of D = 256 would not
 * fit the registers).  By default on NVIDIA devices of compute capability
 * 8.0 and later, the only ones whose mma.sync they reach.
 * MOBA_OPENCL_MMA=0 keeps the f32 SIMT forms there; MOBA_OPENCL_MMA=emulate
 * takes the emulated forms on any device (slow: for tests of the kernels'
 * fragment bookkeeping);
 * MOBA_OPENCL_MMA=KT,WGS sets the keys a step (32 or 64) and the
 * work-groups per SM that the register cap allows (1-8). */
static void mma_form(const ocl_device *dev, int D, moba_dtype dt, size_t wg, size_t lmem,
                     ocl_plan *pl)
{
    const char *force = moba_ocl_host->getenv("MOBA_OPENCL_MMA");
    int want = dev->nv_cc >= 80 ? 1 : 0, f[2] = {0, 0};
    if (force && !strcmp(force, "0")) want = 0;
    if (force && !strcmp(force, "emulate")) want = 2;
    if (force) sscanf(force, "%d,%d", &f[0], &f[1]);
    const int nt = 128, qt = 64, kt = f[0] == 32 ? 32 : 64;
    pl->mma_wgs = f[1] >= 1 && f[1] <= 8 ? f[1] : 3;
    /* local arrays: attend's keys, transposed values and entries; the
     * gate's 64 centroid rows and 64 x 68 scores; the emulation's scratch */
    size_t att = (size_t)kt * (D + 8) * 2 + (size_t)D * (kt + 8) * 2 + (size_t)qt * 8;
    size_t gate = (size_t)64 * (D + 8) * 2 + (size_t)64 * 68 * 4;
    size_t bytes = (att > gate ? att : gate) + (want == 2 ? 4 * 32 * 6 * 4 : 4);
    pl->mma = want && dt != MOBA_F32 && D <= 128 && (size_t)nt <= wg && bytes <= lmem
                  ? want
                  : 0;
    if (!pl->mma) return;
    pl->cpuk = 0; /* gate and attend both take their MMA forms */
    pl->nt = nt;
    pl->qt = qt;
    pl->kt = kt;
    /* rows per gate tile: 64, or 32 with MOBA_OPENCL_GATE_PARTS=4 (four
     * items rank each row) */
    const char *parts = moba_ocl_host->getenv("MOBA_OPENCL_GATE_PARTS");
    pl->gnt = 128;
    pl->gr = parts && !strcmp(parts, "4") ? 32 : 64;
    pl->cb = 64;
}

/* Items per row in the MMA gate's ranking (kernels/gate.cl): GNT / GR,
 * where the other items' lists (a count, KSEL_CAP indices and scores per
 * row) fit the scores' array (CB x (GR + 4) floats), else one.  An
 * environment override MOBA_OPENCL_GATE_PARTS=1 keeps one (measurements). */
static int gate_parts(const ocl_plan *pl)
{
    const char *force = moba_ocl_host->getenv("MOBA_OPENCL_GATE_PARTS");
    if (!pl->mma || (force && !strcmp(force, "1"))) return 1;
    int parts = pl->gnt / pl->gr;
    size_t need = (size_t)parts * pl->gr * (1 + 2 * (size_t)ksel_cap(pl->ksel)) * 4;
    return parts >= 2 && need <= (size_t)pl->cb * (pl->gr + 4) * 4 ? parts : 1;
}

/* Work-group shapes that fit the device's local memory and work-group
 * limits (cap: a kernel's own CL_KERNEL_WORK_GROUP_SIZE, once known). */
static void choose_sizes(const ocl_device *dev, int D, moba_dtype dt, size_t cap,
                         ocl_plan *pl)
{
    size_t lmem = dev->local_mem > 2 * LOCAL_SLACK ? dev->local_mem - LOCAL_SLACK
                                                   : dev->local_mem / 2;
    size_t wg = dev->max_wg < cap ? dev->max_wg : cap;
    gate_shape(D, wg, lmem, pl);
    attend_shape(D, dev->is_cpu, wg, lmem, pl);
    cpu_kernels(dev->is_cpu, wg, pl);
    mma_form(dev, D, dt, wg, lmem, pl);
    pl->scan_wg = wg >= 256 ? 256 : (int)wg;
}

static moba_status kernel_wg(ocl_ctx *c, cl_kernel k, size_t *wg)
{
    OCL_TRY(clGetKernelWorkGroupInfo(k, c->dev->id, CL_KERNEL_WORK_GROUP_SIZE,
                                     sizeof *wg, wg, NULL),
            "clGetKernelWorkGroupInfo");
    return MOBA_OK;
}

/* Builds (or finds) the program; shrinks the work-groups when a compiled
 * kernel allows fewer items than chosen (register pressure). */
static moba_status get_program(ocl_ctx *c, const moba_problem *pb, ocl_plan *pl)
{
    const moba_params *p = &pb->p;
    size_t cap = (size_t)-1;
    int ksel = p->top_k - 1 < pb->max_blocks - 1 ? p->top_k - 1 : pb->max_blocks - 1;
    pl->ksel = ksel > 0 ? ksel : 0; /* 0: top_k = 1, nothing to rank */
    for (int attempt = 0; attempt < 4; attempt++) {
        choose_sizes(c->dev, p->head_dim, p->dtype, cap, pl);
        /* MOBA_OPENCL_BUILD_OPTIONS: appended as given (e.g.
         * -cl-nv-maxrregcount=128 on NVIDIA); part of the cache key. */
        const char *extra = moba_ocl_host->getenv("MOBA_OPENCL_BUILD_OPTIONS");
        char opt[1024];
        int len = snprintf(opt, sizeof opt,
                 "-cl-std=CL1.2 -DD=%d -DDTYPE=%d -DHAS_FP16=%d -DCAUSAL=%d "
                 "-DGNT=%d -DGR=%d -DCB=%d -DKSEL_CAP=%d -DNT=%d -DQT=%d -DKT=%d -DTXO=%d "
                 "-DUQK=%d -DUPV=%d -DSC=%d -DSCAN_WG=%d -DATTEND_CPU=%d -DGATE_CPU=%d "
                 "-DATTEND_MMA=%d -DGRP=%d",
                 (int)p->head_dim, (int)p->dtype, c->dev->has_fp16,
                 p->causal ? 1 : 0, pl->gnt, pl->gr, pl->cb, ksel_cap(pl->ksel), pl->nt,
                 pl->qt, pl->kt, pl->txo, pl->uqk, pl->upv, pl->sc, pl->scan_wg, pl->cpuk,
                 pl->cpuk, pl->mma, gate_parts(pl));
        /* NVIDIA: a register cap that lets five attend work-groups share
         * an SM (their local memory allows it; unbounded, the kernel takes
         * 136 registers and three fit).  For 128 items that is 96, with 4
         * bytes spilled.  On an H200 a cap of 128 (four fit) gave 1.07x
         * f32 / 1.01x bf16 over none, and 96 another 1.01x / 1.05x
         * (docs/perf.md OpenCL v4).  The MMA form holds its fragments in
         * registers: three work-groups (docs/perf.md OpenCL v6). */
        if (c->dev->has_nv_options && len > 0 && (size_t)len < sizeof opt) {
            int cap_regs = 65536 / ((pl->mma ? pl->mma_wgs : 5) * pl->nt) / 8 * 8;
            len += snprintf(opt + len, sizeof opt - (size_t)len, " -cl-nv-maxrregcount=%d",
                            cap_regs < 255 ? cap_regs : 255);
        }
        if (extra && *extra && len > 0 && (size_t)len < sizeof opt &&
            snprintf(opt + len, sizeof opt - (size_t)len, " %s", extra) >= (int)(sizeof opt - (size_t)len))
            return moba_ocl_host->set_error(MOBA_ERR_INVALID_ARGUMENT,
                                            "opencl: MOBA_OPENCL_BUILD_OPTIONS is too long "
                                            "(%zu characters)",
                                            strlen(extra));
        moba_status st = moba_ocl_program_get(c, opt, &pl->prog);
        if (st) return st;
        size_t wg_gate, wg_att, wg_scan, wg_el;
        if ((st = kernel_wg(c, pl->prog->gate, &wg_gate)) ||
            (st = kernel_wg(c, pl->prog->block_attend, &wg_att)) ||
            (st = kernel_wg(c, pl->prog->scan, &wg_scan)) ||
            (st = kernel_wg(c, pl->prog->merge, &wg_el)))
            return st;
        pl->wg1 = wg_el < 64 ? wg_el : 64;
        if (wg_gate >= (size_t)pl->gnt && wg_att >= (size_t)pl->nt &&
            wg_scan >= (size_t)pl->scan_wg)
            return MOBA_OK;
        cap = wg_gate < wg_att ? wg_gate : wg_att;
        if (wg_scan < cap) cap = wg_scan;
    }
    return moba_ocl_host->set_error(MOBA_ERR_DEVICE,
                                    "opencl: no work-group size fits the kernels "
                                    "on %s",
                                    c->dev->name);
}

static void plan_free(ocl_plan *pl)
{
    if (!pl) return;
    cl_mem *ms[] = {&pl->cent, &pl->sel, &pl->tiles, &pl->blocks, &pl->tok_boff,
                    &pl->cnt, &pl->offs, &pl->list, &pl->pacc, &pl->pml, &pl->dummy};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        if (*ms[i]) clReleaseMemObject(*ms[i]);
    free(pl);
}

/* Host tables: gate tiles, per-block key ranges, per-token block offsets. */
static moba_status upload_tables(ocl_ctx *c, const moba_problem *pb,
                                 ocl_plan *pl, size_t *bytes)
{
    moba_tile *tiles = NULL;
    if (moba_schedule_tiles(pb, pl->gr, &tiles, &pl->ntiles))
        return moba_ocl_host->set_error(MOBA_ERR_OUT_OF_MEMORY,
                                        "opencl: out of host memory (schedule)");
    size_t nt = (size_t)pl->ntiles, nb = (size_t)pb->total_blocks;
    size_t T = (size_t)pb->total_tokens;
    cl_int *tt = malloc(sizeof(cl_int) * TILE_INTS * (nt ? nt : 1));
    cl_int *bk = malloc(sizeof(cl_int) * 2 * (nb ? nb : 1));
    cl_int *tb = malloc(sizeof(cl_int) * (T ? T : 1));
    moba_status st = MOBA_OK;
    if (!tt || !bk || !tb) {
        st = moba_ocl_host->set_error(MOBA_ERR_OUT_OF_MEMORY,
                                      "opencl: out of host memory (plan tables)");
        goto done;
    }
    for (size_t i = 0; i < nt; i++) {
        const moba_seq *sq = &pb->seqs[tiles[i].seq];
        cl_int *r = tt + i * TILE_INTS;
        r[0] = (cl_int)(sq->start + tiles[i].row0);
        r[1] = tiles[i].rows;
        r[2] = tiles[i].block;
        r[3] = sq->nb;
        r[4] = (cl_int)sq->block_offset;
    }
    const int32_t S = pb->p.block_size;
    for (int32_t s = 0; s < pb->batch; s++) {
        const moba_seq *sq = &pb->seqs[s];
        for (int32_t j = 0; j < sq->nb; j++) {
            cl_int *r = bk + 2 * (size_t)(sq->block_offset + j);
            r[0] = (cl_int)(sq->start + (int64_t)j * S);
            r[1] = sq->len - j * S < S ? sq->len - j * S : S;
        }
        for (int32_t t = 0; t < sq->len; t++)
            tb[sq->start + t] = (cl_int)sq->block_offset;
    }
    struct { cl_mem *m; const void *src; size_t n; const char *what; } up[] = {
        {&pl->tiles, tt, sizeof(cl_int) * TILE_INTS * nt, "gate tiles"},
        {&pl->blocks, bk, sizeof(cl_int) * 2 * nb, "block ranges"},
        {&pl->tok_boff, tb, sizeof(cl_int) * T, "token block offsets"},
    };
    for (size_t i = 0; i < sizeof up / sizeof up[0] && !st; i++) {
        st = moba_ocl_buffer(c, up[i].n, up[i].m, up[i].what);
        if (!st && up[i].n) {
            cl_int err = clEnqueueWriteBuffer(c->queue, *up[i].m, CL_TRUE, 0, up[i].n,
                                              up[i].src, 0, NULL, NULL);
            if (err != CL_SUCCESS) st = moba_ocl_fail(err, "clEnqueueWriteBuffer");
        }
        *bytes += up[i].n;
    }
done:
    free(tiles);
    free(tt);
    free(bk);
    free(tb);
    return st;
}

moba_status moba_ocl_plan_create(ocl_ctx *c, const moba_problem *pb,
                                 void **bplan, size_t *bytes)
{
    const moba_params *p = &pb->p;
    ocl_plan *pl = calloc(1, sizeof *pl);
    if (!pl)
        return moba_ocl_host->set_error(MOBA_ERR_OUT_OF_MEMORY,
                                        "opencl: out of host memory");
    moba_status st = get_program(c, pb, pl);
    size_t T = (size_t)pb->total_tokens, K = (size_t)p->top_k;
    size_t D = (size_t)p->head_dim, Hq = (size_t)p->num_q_heads;
    *bytes = 0;
    if (!st) st = upload_tables(c, pb, pl, bytes);
    /* Heads per attend pass: the partial results (D elements of the
     * storage type per entry, kernels/attend.cl moba_merge) of one pass
     * must fit one allocation and a quarter of the memory. */
    size_t per_head = T * K * (D * pb->elem_size);
    cl_ulong budget = c->dev->max_alloc < c->dev->global_mem / 4
                          ? c->dev->max_alloc
                          : c->dev->global_mem / 4;
    if (!st && per_head > budget)
        st = moba_ocl_host->set_error(MOBA_ERR_OUT_OF_MEMORY,
                                      "opencl: %zu bytes of partial results per "
                                      "head exceed the device's budget of %llu",
                                      per_head, (unsigned long long)budget);
    if (!st) {
        size_t hc = per_head ? (size_t)(budget / per_head) : Hq;
        if (hc > Hq) hc = Hq;
        while (hc > 1 && (double)T * hc * K >= 2147483647.0) hc--;
        pl->hc = hc > 0 ? (int)hc : 1;
    }
    size_t hc = (size_t)pl->hc, nbk = (size_t)pb->total_blocks * hc + 1;
    struct { cl_mem *m; size_t n; const char *what; } al[] = {
        {&pl->cent, (size_t)pb->total_blocks * p->num_kv_heads * D * pb->elem_size,
         "centroids"},
        {&pl->sel, T * Hq * K * sizeof(cl_int), "the selection"},
        {&pl->cnt, nbk * sizeof(cl_int), "bucket counts"},
        {&pl->offs, nbk * sizeof(cl_int), "bucket offsets"},
        {&pl->list, T * hc * K * sizeof(cl_int), "entry lists"},
        {&pl->pacc, T * hc * K * D * pb->elem_size, "partial outputs"},
        {&pl->pml, T * hc * K * 2 * sizeof(float), "partial softmax stats"},
        {&pl->dummy, sizeof(float), "a placeholder"},
    };
    for (size_t i = 0; i < sizeof al / sizeof al[0] && !st; i++) {
        st = moba_ocl_buffer(c, al[i].n, al[i].m, al[i].what);
        *bytes += al[i].n;
    }
    if (st) {
        plan_free(pl);
        return st;
    }
    *bplan = pl;
    return MOBA_OK;
}

void moba_ocl_plan_destroy(ocl_ctx *c, void *bplan)
{
    clFinish(c->queue);
    plan_free(bplan);
}

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

static moba_status launch(ocl_ctx *c, cl_kernel k, cl_uint dims,
                          const size_t *global, const size_t *local,
                          const char *what)
{
    OCL_TRY(clEnqueueNDRangeKernel(c->queue, k, dims, NULL, global, local, 0, NULL,
                                   NULL),
            what);
    return MOBA_OK;
}

moba_status moba_ocl_gate(ocl_ctx *c, void *bplan, const moba_problem *pb,
                          cl_mem q, cl_mem k)
{
    ocl_plan *pl = bplan;
    const moba_params *p = &pb->p;
    cl_kernel kc = pl->prog->centroids, kg = pl->prog->gate;
    cl_long total = pb->total_blocks * p->num_kv_heads * p->head_dim;
    cl_int hkd = p->num_kv_heads * p->head_dim;
    SET(kc, 0, k);
    SET(kc, 1, pl->cent);
    SET(kc, 2, pl->blocks);
    SET(kc, 3, total);
    SET(kc, 4, hkd);
    size_t g1 = round_up((size_t)total, pl->wg1);
    moba_status st = launch(c, kc, 1, &g1, &pl->wg1, "enqueue moba_centroids");
    if (st) return st;
    cl_int hq = p->num_q_heads, hk = p->num_kv_heads, group = pb->group;
    cl_int top_k = p->top_k, ksel = pl->ksel;
    SET(kg, 0, q);
    SET(kg, 1, pl->cent);
    SET(kg, 2, pl->tiles);
    SET(kg, 3, pl->sel);
    SET(kg, 4, hq);
    SET(kg, 5, hk);
    SET(kg, 6, group);
    SET(kg, 7, top_k);
    SET(kg, 8, ksel);
    size_t gg[2] = {(size_t)pl->ntiles * pl->gnt, (size_t)hq};
    size_t lg[2] = {(size_t)pl->gnt, 1};
    return launch(c, kg, 2, gg, lg, "enqueue moba_gate");
}

moba_status moba_ocl_read_selection(ocl_ctx *c, void *bplan,
                                    const moba_problem *pb, int32_t *sel)
{
    ocl_plan *pl = bplan;
    size_t n = (size_t)pb->total_tokens * pb->p.num_q_heads * pb->p.top_k;
    OCL_TRY(clEnqueueReadBuffer(c->queue, pl->sel, CL_TRUE, 0, n * sizeof(cl_int),
                                sel, 0, NULL, NULL),
            "clEnqueueReadBuffer(selection)");
    return MOBA_OK;
}

/* One pass over query heads [h0, h0 + hc): bucket the entries by (key
 * block, head), attend per bucket, merge per row. */
static moba_status attend_pass(ocl_ctx *c, ocl_plan *pl, const moba_problem *pb,
                               cl_mem q, cl_mem k, cl_mem v, cl_mem out,
                               cl_mem lse, cl_int h0, cl_int hc)
{
    const moba_params *p = &pb->p;
    const ocl_program *pr = pl->prog;
    cl_int hq = p->num_q_heads, hk = p->num_kv_heads, group = pb->group;
    cl_int top_k = p->top_k, fill = 0, want_lse = lse != NULL;
    cl_float scale = p->softmax_scale;
    cl_long nbuckets = pb->total_blocks * hc;
    cl_long entries = pb->total_tokens * hc * top_k;
    cl_long outs = pb->total_tokens * hc * p->head_dim;
    cl_int zero = 0;
    moba_status st;
    OCL_TRY(clEnqueueFillBuffer(c->queue, pl->cnt, &zero, sizeof zero, 0,
                                (size_t)nbuckets * sizeof(cl_int), 0, NULL, NULL),
            "clEnqueueFillBuffer");
    SET(pr->bucket, 0, pl->sel);
    SET(pr->bucket, 1, pl->tok_boff);
    SET(pr->bucket, 2, pl->cnt);
    SET(pr->bucket, 3, pl->list);
    SET(pr->bucket, 4, entries);
    SET(pr->bucket, 5, hq);
    SET(pr->bucket, 6, hc);
    SET(pr->bucket, 7, h0);
    SET(pr->bucket, 8, top_k);
    SET(pr->bucket, 9, fill);
    size_t ge = round_up((size_t)entries, pl->wg1);
    if ((st = launch(c, pr->bucket, 1, &ge, &pl->wg1, "enqueue moba_bucket")))
        return st;
    /* counts -> offsets; the counts become each bucket's fill cursor */
    SET(pr->scan, 0, pl->cnt);
    SET(pr->scan, 1, pl->offs);
    SET(pr->scan, 2, pl->cnt);
    SET(pr->scan, 3, nbuckets);
    size_t gs = (size_t)pl->scan_wg;
    if ((st = launch(c, pr->scan, 1, &gs, &gs, "enqueue moba_scan"))) return st;
    fill = 1;
    SET(pr->bucket, 9, fill);
    if ((st = launch(c, pr->bucket, 1, &ge, &pl->wg1, "enqueue moba_bucket(fill)")))
        return st;
    cl_kernel ka = pr->block_attend;
    SET(ka, 0, q);
    SET(ka, 1, k);
    SET(ka, 2, v);
    SET(ka, 3, pl->blocks);
    SET(ka, 4, pl->offs);
    SET(ka, 5, pl->list);
    SET(ka, 6, pl->pacc);
    SET(ka, 7, pl->pml);
    SET(ka, 8, hq);
    SET(ka, 9, hk);
    SET(ka, 10, group);
    SET(ka, 11, hc);
    SET(ka, 12, h0);
    SET(ka, 13, top_k);
    SET(ka, 14, scale);
    size_t ga[2] = {(size_t)nbuckets * pl->nt, pl->cpuk ? (size_t)pl->nch : 1};
    size_t la[2] = {(size_t)pl->nt, 1};
    if ((st = launch(c, ka, 2, ga, la, "enqueue moba_block_attend"))) return st;
    cl_kernel km = pr->merge;
    cl_mem lse_mem = lse ? lse : pl->dummy;
    SET(km, 0, pl->sel);
    SET(km, 1, pl->pacc);
    SET(km, 2, pl->pml);
    SET(km, 3, out);
    SET(km, 4, lse_mem);
    SET(km, 5, want_lse);
    SET(km, 6, outs);
    SET(km, 7, hq);
    SET(km, 8, hc);
    SET(km, 9, h0);
    SET(km, 10, top_k);
    /* the CPU form takes a row per item, the other a dim */
    size_t gm = round_up((size_t)(pl->cpuk ? outs / p->head_dim : outs), pl->wg1);
    return launch(c, km, 1, &gm, &pl->wg1, "enqueue moba_merge");
}

moba_status moba_ocl_attend(ocl_ctx *c, void *bplan, const moba_problem *pb,
                            cl_mem q, cl_mem k, cl_mem v, cl_mem out, cl_mem lse)
{
    ocl_plan *pl = bplan;
    const cl_int Hq = pb->p.num_q_heads;
    for (cl_int h0 = 0; h0 < Hq; h0 += pl->hc) {
        cl_int hc = Hq - h0 < pl->hc ? Hq - h0 : pl->hc;
        moba_status st = attend_pass(c, pl, pb, q, k, v, out, lse, h0, hc);
        if (st) return st;
    }
    return MOBA_OK;
}
