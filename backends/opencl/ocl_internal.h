/* Shared declarations of the OpenCL backend module. */
#ifndef MOBA_OCL_INTERNAL_H
#define MOBA_OCL_INTERNAL_H

#include <CL/cl.h>
#include <stddef.h>
#include <stdint.h>

#include "core/backend.h"

extern const moba_host_api *moba_ocl_host;

/* One OpenCL device, as found at init (all platforms, or the one chosen by
 * MOBA_OPENCL_PLATFORM). */
typedef struct ocl_device {
    cl_platform_id platform;
    cl_device_id id;
    char name[MOBA_NAME_MAX];
    char vendor[MOBA_NAME_MAX];
    char driver[MOBA_NAME_MAX];
    char platform_name[MOBA_NAME_MAX];
    char platform_version[MOBA_NAME_MAX];
    cl_ulong global_mem, max_alloc, local_mem;
    size_t max_wg;
    cl_uint compute_units;
    int is_cpu;
    int has_fp16;
    int has_nv_options; /* cl_nv_compiler_options: -cl-nv-maxrregcount */
    int nv_cc;          /* NVIDIA compute capability x 10 (80: sm_80), else 0 */
} ocl_device;

moba_status moba_ocl_devices_init(int *count);
const ocl_device *moba_ocl_device(int index);
void moba_ocl_fill_info(const ocl_device *dev, moba_device_info *info);

/* Head dims the kernels are built for (device_info and supports agree). */
int moba_ocl_head_dim_ok(int d);

/* "CL_OUT_OF_RESOURCES" etc. */
const char *moba_ocl_error_name(cl_int err);
/* Reports a failed OpenCL call `what` through the host; returns the status
 * (MOBA_ERR_OUT_OF_MEMORY for allocation failures, else MOBA_ERR_DEVICE). */
moba_status moba_ocl_fail(cl_int err, const char *what);

#define OCL_TRY(call, what)                                   \
    do {                                                      \
        cl_int ocl_err_ = (call);                             \
        if (ocl_err_ != CL_SUCCESS) return moba_ocl_fail(ocl_err_, what); \
    } while (0)

/* A built program with its kernels, cached per context by options. */
typedef struct ocl_program {
    char options[512];
    cl_program prog;
    cl_kernel centroids, gate, bucket, scan, block_attend, merge;
    struct ocl_program *next;
} ocl_program;

typedef struct ocl_ctx {
    const ocl_device *dev;
    cl_context clctx;
    cl_command_queue own_queue;  /* the library's queue on clctx, lazily */
    cl_command_queue user_queue; /* retained, or NULL                    */
    cl_command_queue queue;      /* the one work goes to                 */
    long live_objects;           /* owned buffers + plans on clctx       */
    ocl_program *programs;
} ocl_ctx;

/* The program for `options` on the context: from the in-process cache, the
 * on-disk binary cache, or compiled from the embedded source. */
moba_status moba_ocl_program_get(ocl_ctx *c, const char *options,
                                 ocl_program **out);
void moba_ocl_programs_release(ocl_ctx *c);

moba_status moba_ocl_buffer(ocl_ctx *c, size_t bytes, cl_mem *out,
                            const char *what);

moba_status moba_ocl_plan_create(ocl_ctx *c, const moba_problem *pb,
                                 void **bplan, size_t *bytes);
void moba_ocl_plan_destroy(ocl_ctx *c, void *bplan);
moba_status moba_ocl_gate(ocl_ctx *c, void *bplan, const moba_problem *pb,
                          cl_mem q, cl_mem k);
moba_status moba_ocl_read_selection(ocl_ctx *c, void *bplan,
                                    const moba_problem *pb, int32_t *sel);
moba_status moba_ocl_attend(ocl_ctx *c, void *bplan, const moba_problem *pb,
                            cl_mem q, cl_mem k, cl_mem v, cl_mem out,
                            cl_mem lse);

#endif /* MOBA_OCL_INTERNAL_H */
