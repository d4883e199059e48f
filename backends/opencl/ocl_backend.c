/*
 * The OpenCL backend's vtable: devices, contexts and queues, buffers.
 *
 * Caller queues (moba_context_set_stream): the queue must be on this
 * context's device.  If it belongs to another cl_context, the backend
 * ADOPTS that cl_context, provided nothing lives in the current one yet (no
 * buffers allocated by the library, no plans); otherwise the call fails
 * with MOBA_ERR_WRONG_CONTEXT.  Adopting lets a caller hand its own
 * context's queue to a fresh moba context and then wrap its cl_mem buffers.
 * NULL returns to the library's own queue on the current cl_context.
 */
#include <stdlib.h>
#include <string.h>

#include "ocl_internal.h"

const moba_host_api *moba_ocl_host;

static moba_status ocl_init(const moba_host_api *host, int *n)
{
    moba_ocl_host = host;
    return moba_ocl_devices_init(n);
}

static moba_status ocl_device_info(int device, moba_device_info *info)
{
    const ocl_device *d = moba_ocl_device(device);
    if (!d)
        return moba_ocl_host->set_error(MOBA_ERR_INVALID_ARGUMENT,
                                        "opencl: no device %d", device);
    moba_ocl_fill_info(d, info);
    return MOBA_OK;
}

static moba_status own_queue(ocl_ctx *c)
{
    if (!c->own_queue) {
        cl_int err;
        c->own_queue = clCreateCommandQueue(c->clctx, c->dev->id, 0, &err);
        if (!c->own_queue) return moba_ocl_fail(err, "clCreateCommandQueue");
    }
    return MOBA_OK;
}

static moba_status ocl_context_create(int device, void **bctx)
{
    const ocl_device *d = moba_ocl_device(device);
    if (!d)
        return moba_ocl_host->set_error(MOBA_ERR_BACKEND_UNAVAILABLE,
                                        "opencl: no device %d", device);
    ocl_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return moba_ocl_host->set_error(MOBA_ERR_OUT_OF_MEMORY,
                                        "opencl: out of host memory");
    c->dev = d;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                     (cl_context_properties)d->platform, 0};
    cl_int err;
    c->clctx = clCreateContext(props, 1, &d->id, NULL, NULL, &err);
    if (!c->clctx) {
        free(c);
        return moba_ocl_fail(err, "clCreateContext");
    }
    moba_status st = own_queue(c);
    if (st) {
        clReleaseContext(c->clctx);
        free(c);
        return st;
    }
    c->queue = c->own_queue;
    *bctx = c;
    return MOBA_OK;
}

static void ocl_context_destroy(void *bctx)
{
    ocl_ctx *c = bctx;
    if (!c) return;
    if (c->queue) clFinish(c->queue);
    moba_ocl_programs_release(c);
    if (c->user_queue) clReleaseCommandQueue(c->user_queue);
    if (c->own_queue) clReleaseCommandQueue(c->own_queue);
    clReleaseContext(c->clctx);
    free(c);
}

static moba_status ocl_set_stream(void *bctx, void *stream)
{
    ocl_ctx *c = bctx;
    cl_command_queue q = stream;
    if (!q) {
        moba_status st = own_queue(c);
        if (st) return st;
        if (c->user_queue) clReleaseCommandQueue(c->user_queue);
        c->user_queue = NULL;
        c->queue = c->own_queue;
        return MOBA_OK;
    }
    cl_context qctx;
    cl_device_id qdev;
    OCL_TRY(clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof qctx, &qctx, NULL),
            "clGetCommandQueueInfo(CL_QUEUE_CONTEXT)");
    OCL_TRY(clGetCommandQueueInfo(q, CL_QUEUE_DEVICE, sizeof qdev, &qdev, NULL),
            "clGetCommandQueueInfo(CL_QUEUE_DEVICE)");
    if (qdev != c->dev->id)
        return moba_ocl_host->set_error(MOBA_ERR_WRONG_CONTEXT,
                                        "opencl: the queue is on another device than "
                                        "the context's (%s)",
                                        c->dev->name);
    if (qctx != c->clctx) {
        if (c->live_objects > 0)
            return moba_ocl_host->set_error(
                MOBA_ERR_WRONG_CONTEXT,
                "opencl: the queue belongs to another cl_context, and %ld "
                "buffer(s)/plan(s) already live in the current one; set the "
                "queue before allocating",
                c->live_objects);
        OCL_TRY(clRetainContext(qctx), "clRetainContext");
        clFinish(c->queue);
        moba_ocl_programs_release(c);
        if (c->own_queue) clReleaseCommandQueue(c->own_queue);
        c->own_queue = NULL;
        clReleaseContext(c->clctx);
        c->clctx = qctx;
    }
    OCL_TRY(clRetainCommandQueue(q), "clRetainCommandQueue");
    if (c->user_queue) clReleaseCommandQueue(c->user_queue);
    c->user_queue = q;
    c->queue = q;
    return MOBA_OK;
}

static moba_status ocl_synchronize(void *bctx)
{
    OCL_TRY(clFinish(((ocl_ctx *)bctx)->queue), "clFinish");
    return MOBA_OK;
}

moba_status moba_ocl_buffer(ocl_ctx *c, size_t bytes, cl_mem *out,
                            const char *what)
{
    cl_int err;
    /* zero-sized buffers are invalid in OpenCL; empty problems get one byte */
    *out = clCreateBuffer(c->clctx, CL_MEM_READ_WRITE, bytes ? bytes : 1, NULL, &err);
    if (!*out)
        return moba_ocl_host->set_error(
            err == CL_INVALID_BUFFER_SIZE || err == CL_MEM_OBJECT_ALLOCATION_FAILURE ||
                    err == CL_OUT_OF_HOST_MEMORY || err == CL_OUT_OF_RESOURCES
                ? MOBA_ERR_OUT_OF_MEMORY
                : MOBA_ERR_DEVICE,
            "opencl: cannot allocate %zu bytes for %s on %s: %s (%d)", bytes, what,
            c->dev->name, moba_ocl_error_name(err), (int)err);
    return MOBA_OK;
}

static moba_status ocl_buffer_alloc(void *bctx, size_t bytes, void **native)
{
    ocl_ctx *c = bctx;
    cl_mem m;
    moba_status st = moba_ocl_buffer(c, bytes, &m, "a buffer");
    if (st) return st;
    c->live_objects++;
    *native = m;
    return MOBA_OK;
}

static void ocl_buffer_free(void *bctx, void *native)
{
    ocl_ctx *c = bctx;
    if (!native) return;
    clReleaseMemObject(native);
    c->live_objects--;
}

static moba_status ocl_buffer_wrap_check(void *bctx, void *native, size_t bytes)
{
    ocl_ctx *c = bctx;
    cl_mem m = native;
    size_t size;
    cl_context mctx;
    OCL_TRY(clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof size, &size, NULL),
            "clGetMemObjectInfo(CL_MEM_SIZE) on the wrapped cl_mem");
    OCL_TRY(clGetMemObjectInfo(m, CL_MEM_CONTEXT, sizeof mctx, &mctx, NULL),
            "clGetMemObjectInfo(CL_MEM_CONTEXT) on the wrapped cl_mem");
    if (mctx != c->clctx)
        return moba_ocl_host->set_error(MOBA_ERR_WRONG_CONTEXT,
                                        "opencl: the cl_mem belongs to another "
                                        "cl_context (hand the library a queue of "
                                        "that context first)");
    if (size < bytes)
        return moba_ocl_host->set_error(MOBA_ERR_BUFFER_TOO_SMALL,
                                        "opencl: the cl_mem holds %zu bytes, %zu "
                                        "wanted",
                                        size, bytes);
    return MOBA_OK;
}

static moba_status ocl_buffer_write(void *bctx, void *native, size_t off,
                                    const void *src, size_t bytes)
{
    ocl_ctx *c = bctx;
    if (!bytes) return MOBA_OK;
    OCL_TRY(clEnqueueWriteBuffer(c->queue, native, CL_TRUE, off, bytes, src, 0,
                                 NULL, NULL),
            "clEnqueueWriteBuffer");
    return MOBA_OK;
}

static moba_status ocl_buffer_read(void *bctx, void *native, size_t off,
                                   void *dst, size_t bytes)
{
    ocl_ctx *c = bctx;
    if (!bytes) return MOBA_OK;
    OCL_TRY(clEnqueueReadBuffer(c->queue, native, CL_TRUE, off, bytes, dst, 0,
                                NULL, NULL),
            "clEnqueueReadBuffer");
    return MOBA_OK;
}

static moba_status ocl_supports(void *bctx, const moba_problem *pb)
{
    (void)bctx;
    const moba_params *p = &pb->p;
    if (!moba_ocl_head_dim_ok(p->head_dim))
        return moba_ocl_host->set_error(MOBA_ERR_UNSUPPORTED,
                                        "opencl: head_dim %d is unsupported (the "
                                        "OpenCL backend takes multiples of 16 "
                                        "from 32 to 256)",
                                        (int)p->head_dim);
    /* entries are numbered in int32 per head chunk; one head must fit */
    if ((double)pb->total_tokens * p->top_k >= 2147483647.0 ||
        (double)pb->total_tokens * p->num_q_heads * p->top_k >= 9.2e18)
        return moba_ocl_host->set_error(MOBA_ERR_UNSUPPORTED,
                                        "opencl: T * top_k = %lld * %d exceeds the "
                                        "backend's int32 entry numbering",
                                        (long long)pb->total_tokens, (int)p->top_k);
    return MOBA_OK;
}

static moba_status ocl_plan_create(void *bctx, const moba_problem *pb,
                                   void **bplan, size_t *bytes)
{
    ocl_ctx *c = bctx;
    moba_status st = moba_ocl_plan_create(c, pb, bplan, bytes);
    if (!st) c->live_objects++;
    return st;
}

static void ocl_plan_destroy(void *bctx, void *bplan)
{
    ocl_ctx *c = bctx;
    if (!bplan) return;
    moba_ocl_plan_destroy(c, bplan);
    c->live_objects--;
}

static moba_status ocl_gate(void *bctx, void *bplan, const moba_problem *pb,
                            void *q, void *k)
{
    return moba_ocl_gate(bctx, bplan, pb, q, k);
}

static moba_status ocl_read_selection(void *bctx, void *bplan,
                                      const moba_problem *pb, int32_t *sel)
{
    return moba_ocl_read_selection(bctx, bplan, pb, sel);
}

static moba_status ocl_attend(void *bctx, void *bplan, const moba_problem *pb,
                              void *q, void *k, void *v, void *out, void *lse)
{
    return moba_ocl_attend(bctx, bplan, pb, q, k, v, out, lse);
}

static const moba_backend_iface ocl_iface = {
    .abi_version = MOBA_BACKEND_ABI_VERSION,
    .name = "opencl",
    .init = ocl_init,
    .device_info = ocl_device_info,
    .context_create = ocl_context_create,
    .context_destroy = ocl_context_destroy,
    .set_stream = ocl_set_stream,
    .synchronize = ocl_synchronize,
    .set_num_threads = NULL,
    .get_num_threads = NULL,
    .buffer_alloc = ocl_buffer_alloc,
    .buffer_free = ocl_buffer_free,
    .buffer_wrap_check = ocl_buffer_wrap_check,
    .buffer_write = ocl_buffer_write,
    .buffer_read = ocl_buffer_read,
    .supports = ocl_supports,
    .plan_create = ocl_plan_create,
    .plan_destroy = ocl_plan_destroy,
    .gate = ocl_gate,
    .read_selection = ocl_read_selection,
    .attend = ocl_attend,
};

MOBA_MODULE_EXPORT const moba_backend_iface *moba_backend_module(void)
{
    return &ocl_iface;
}
