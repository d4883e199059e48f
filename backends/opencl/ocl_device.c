/*
 * Device discovery: every device of every platform, numbered in platform
 * order (opencl:N is the N-th), or only those of the platform named by
 * MOBA_OPENCL_PLATFORM (an index, or a case-insensitive substring of the
 * platform name).  Done once, at init, under the registry's once-guard.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl_internal.h"

#include <CL/cl_ext.h>

#define MAX_PLATFORMS 16
#define MAX_DEVICES 64

static ocl_device devices[MAX_DEVICES];
static int num_devices;

static void info_str(cl_device_id d, cl_device_info what, char *buf, size_t n)
{
    if (clGetDeviceInfo(d, what, n, buf, NULL) != CL_SUCCESS) snprintf(buf, n, "?");
    buf[n - 1] = '\0';
}

static void plat_str(cl_platform_id p, cl_platform_info what, char *buf, size_t n)
{
    if (clGetPlatformInfo(p, what, n, buf, NULL) != CL_SUCCESS) snprintf(buf, n, "?");
    buf[n - 1] = '\0';
}

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return 1;
    }
    return n == 0;
}

static int platform_wanted(const char *filter, cl_uint index, const char *name)
{
    if (!filter) return 1;
    char *end;
    long want = strtol(filter, &end, 10);
    if (*filter && !*end) return want == (long)index;
    return contains_nocase(name, filter);
}

static void add_device(cl_platform_id p, cl_device_id id)
{
    if (num_devices >= MAX_DEVICES) return;
    ocl_device *d = &devices[num_devices];
    memset(d, 0, sizeof *d);
    d->platform = p;
    d->id = id;
    info_str(id, CL_DEVICE_NAME, d->name, sizeof d->name);
    info_str(id, CL_DEVICE_VENDOR, d->vendor, sizeof d->vendor);
    info_str(id, CL_DRIVER_VERSION, d->driver, sizeof d->driver);
    plat_str(p, CL_PLATFORM_NAME, d->platform_name, sizeof d->platform_name);
    plat_str(p, CL_PLATFORM_VERSION, d->platform_version,
             sizeof d->platform_version);
    cl_device_type type = 0;
    if (clGetDeviceInfo(id, CL_DEVICE_TYPE, sizeof type, &type, NULL) != CL_SUCCESS ||
        clGetDeviceInfo(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof d->global_mem,
                        &d->global_mem, NULL) != CL_SUCCESS ||
        clGetDeviceInfo(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof d->max_alloc,
                        &d->max_alloc, NULL) != CL_SUCCESS ||
        clGetDeviceInfo(id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof d->local_mem,
                        &d->local_mem, NULL) != CL_SUCCESS ||
        clGetDeviceInfo(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof d->max_wg,
                        &d->max_wg, NULL) != CL_SUCCESS ||
        clGetDeviceInfo(id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof d->compute_units,
                        &d->compute_units, NULL) != CL_SUCCESS)
        return; /* a device that cannot describe itself is skipped */
    d->is_cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
    size_t n = 0;
    if (clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, 0, NULL, &n) == CL_SUCCESS && n) {
        char *ext = malloc(n);
        if (ext && clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, n, ext, NULL) == CL_SUCCESS) {
            d->has_fp16 = strstr(ext, "cl_khr_fp16") != NULL;
            d->has_nv_options = strstr(ext, "cl_nv_compiler_options") != NULL;
            /* cl_nv_device_attribute_query: the compute capability, which
             * says whether mma.sync exists (the MMA attend form) */
            cl_uint cc[2];
            if (strstr(ext, "cl_nv_device_attribute_query") &&
                clGetDeviceInfo(id, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV, sizeof cc[0],
                                &cc[0], NULL) == CL_SUCCESS &&
                clGetDeviceInfo(id, CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV, sizeof cc[1],
                                &cc[1], NULL) == CL_SUCCESS)
                d->nv_cc = (int)(cc[0] * 10 + cc[1]);
        }
        free(ext);
    }
    num_devices++;
}

moba_status moba_ocl_devices_init(int *count)
{
    cl_platform_id plats[MAX_PLATFORMS];
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(MAX_PLATFORMS, plats, &np);
    num_devices = 0;
    *count = 0;
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR: no ICD installed */ ||
        (err == CL_SUCCESS && np == 0))
        return moba_ocl_host->set_error(MOBA_ERR_BACKEND_UNAVAILABLE,
                                        "opencl: no OpenCL platform (no ICD registered)");
    if (err != CL_SUCCESS) return moba_ocl_fail(err, "clGetPlatformIDs");
    if (np > MAX_PLATFORMS) np = MAX_PLATFORMS;
    const char *filter = moba_ocl_host->getenv("MOBA_OPENCL_PLATFORM");
    char names[512] = "";
    size_t used = 0;
    int matched = 0;
    for (cl_uint i = 0; i < np; i++) {
        char name[MOBA_NAME_MAX];
        plat_str(plats[i], CL_PLATFORM_NAME, name, sizeof name);
        if (used < sizeof names)
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%u: %s",
                                     i ? ", " : "", i, name);
        if (!platform_wanted(filter, i, name)) continue;
        matched++;
        cl_device_id ids[MAX_DEVICES];
        cl_uint nd = 0;
        err = clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, MAX_DEVICES, ids, &nd);
        if (err == CL_DEVICE_NOT_FOUND) continue;
        if (err != CL_SUCCESS) return moba_ocl_fail(err, "clGetDeviceIDs");
        if (nd > MAX_DEVICES) nd = MAX_DEVICES;
        for (cl_uint j = 0; j < nd; j++) add_device(plats[i], ids[j]);
    }
    if (filter && !matched)
        return moba_ocl_host->set_error(MOBA_ERR_BACKEND_UNAVAILABLE,
                                        "opencl: MOBA_OPENCL_PLATFORM '%s' matches no "
                                        "platform (platforms: %s)",
                                        filter, names);
    *count = num_devices;
    return MOBA_OK;
}

const ocl_device *moba_ocl_device(int index)
{
    return index >= 0 && index < num_devices ? &devices[index] : NULL;
}

/* Multiples of 16 from 32 to 256: the kernels specialise on the head dim
 * at run time, so any of them costs only a compile. */
int moba_ocl_head_dim_ok(int d) { return d >= 32 && d <= 256 && d % 16 == 0; }

void moba_ocl_fill_info(const ocl_device *d, moba_device_info *info)
{
    snprintf(info->name, sizeof info->name, "%s", d->name);
    snprintf(info->vendor, sizeof info->vendor, "%s", d->vendor);
    snprintf(info->driver, sizeof info->driver, "%.60s; %.60s", d->driver,
             d->platform_name);
    info->memory_bytes = d->global_mem;
    info->compute_units = (int)d->compute_units;
    info->dtypes = MOBA_DTYPE_BIT(MOBA_F32) | MOBA_DTYPE_BIT(MOBA_F16) |
                   MOBA_DTYPE_BIT(MOBA_BF16);
    info->num_head_dims = 0;
    for (int h = 32; h <= 256 && info->num_head_dims < MOBA_MAX_HEAD_DIMS; h += 16)
        info->head_dims[info->num_head_dims++] = h;
    info->head_dim_max = 256;
    info->is_cpu = d->is_cpu;
}
