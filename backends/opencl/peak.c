/*
 * moba-ocl-peak: what f32 arithmetic an OpenCL device sustains, as the
 * ceiling against which the backend's kernels are read (docs/perf.md):
 *   moba-ocl-peak [PLATFORM_SUBSTRING] [GEMM_N]
 * 1. "fma": independent FMA chains in registers, no memory traffic: the
 *    device's f32 peak as its OpenCL compiler reaches it;
 * 2. "sgemm": CLBlast's SGEMM (N x N x N, row-major, tuned or default
 *    parameters, whatever the installed CLBlast has), when built with it:
 *    a mature SIMT GEMM through the same driver, the practical ceiling for
 *    the scores and P V products.
 * FMA times are the median of 5 runs after one warm-up, by event
 * profiling; SGEMM times are wall-clock over 5 calls and a clFinish after
 * a warm-up (CLBlast may run several kernels per call, and its event is
 * the last one's).  Not installed.
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef MOBA_HAVE_CLBLAST
#include <clblast_c.h>
#endif

#define CHAINS 16
#define ITERS 4096

static const char *fma_src =
    "kernel void fma_peak(global float *out, float a, float b)\n"
    "{\n"
    "    float x[16];\n"
    "    for (int c = 0; c < 16; c++) x[c] = get_global_id(0) + c;\n"
    "    for (int i = 0; i < 4096; i++)\n"
    "        for (int c = 0; c < 16; c++) x[c] = fma(x[c], a, b);\n"
    "    float s = 0.0f;\n"
    "    for (int c = 0; c < 16; c++) s += x[c];\n"
    "    out[get_global_id(0)] = s;\n"
    "}\n";

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double event_ms(cl_event e)
{
    cl_ulong t0 = 0, t1 = 0;
    clWaitForEvents(1, &e);
    clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
    clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
    clReleaseEvent(e);
    return (double)(t1 - t0) * 1e-6;
}

static int die(const char *what, cl_int err)
{
    fprintf(stderr, "moba-ocl-peak: %s failed (%d)\n", what, (int)err);
    return 1;
}

int main(int argc, char **argv)
{
    const char *want = argc > 1 ? argv[1] : "";
    size_t n = argc > 2 ? (size_t)atol(argv[2]) : 4096;
    cl_platform_id plats[16];
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(16, plats, &np);
    if (err != CL_SUCCESS || np == 0) return die("clGetPlatformIDs", err);
    cl_platform_id plat = NULL;
    char pname[256] = "";
    for (cl_uint i = 0; i < np && !plat; i++) {
        clGetPlatformInfo(plats[i], CL_PLATFORM_NAME, sizeof pname, pname, NULL);
        if (strstr(pname, want)) plat = plats[i];
    }
    if (!plat) return die("finding the platform", CL_INVALID_PLATFORM);
    cl_device_id dev;
    if ((err = clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, NULL)))
        return die("clGetDeviceIDs", err);
    char dname[256] = "";
    cl_uint cus = 0;
    clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof dname, dname, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus, NULL);
    printf("platform %s, device %s, %u compute units\n", pname, dname, cus);
    cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    if (err) return die("clCreateContext", err);
    cl_command_queue qu = clCreateCommandQueue(ctx, dev, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err) return die("clCreateCommandQueue", err);

    cl_program prog = clCreateProgramWithSource(ctx, 1, &fma_src, NULL, &err);
    if (err || (err = clBuildProgram(prog, 1, &dev, "", NULL, NULL)))
        return die("building fma_peak", err);
    cl_kernel k = clCreateKernel(prog, "fma_peak", &err);
    if (err) return die("clCreateKernel", err);
    size_t items = (size_t)cus * 2048 * 4, wg = 256;
    cl_mem out = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, items * sizeof(float), NULL, &err);
    if (err) return die("clCreateBuffer", err);
    float a = 0.999f, b = 1e-3f;
    clSetKernelArg(k, 0, sizeof out, &out);
    clSetKernelArg(k, 1, sizeof a, &a);
    clSetKernelArg(k, 2, sizeof b, &b);
    double ms[6];
    for (int r = 0; r < 6; r++) {
        cl_event e;
        if ((err = clEnqueueNDRangeKernel(qu, k, 1, NULL, &items, &wg, 0, NULL, &e)))
            return die("enqueue fma_peak", err);
        ms[r] = event_ms(e);
    }
    qsort(ms + 1, 5, sizeof ms[0], cmp_d);
    double flop = 2.0 * items * CHAINS * ITERS;
    printf("fma: %.2f TFLOP/s (%zu items, %.3f ms)\n", flop / ms[3] * 1e-9, items, ms[3]);

#ifdef MOBA_HAVE_CLBLAST
    size_t bytes = n * n * sizeof(float);
    float *h = malloc(bytes);
    if (!h) return die("malloc", 0);
    for (size_t i = 0; i < n * n; i++) h[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    cl_mem A = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, h, &err);
    cl_mem B = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, h, &err);
    cl_mem C = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    free(h);
    if (err) return die("clCreateBuffer (sgemm)", err);
    double t0 = 0.0;
    for (int r = 0; r < 6; r++) {
        if (r == 1) {
            clFinish(qu);
            struct timespec ts;
            timespec_get(&ts, TIME_UTC);
            t0 = ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
        }
        CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                                           CLBlastTransposeNo, n, n, n, 1.0f, A, 0, n, B, 0, n,
                                           0.0f, C, 0, n, &qu, NULL);
        if (s != CLBlastSuccess) return die("CLBlastSgemm", s);
    }
    clFinish(qu);
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    ms[3] = (ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6 - t0) / 5.0;
    printf("sgemm %zu^3 (CLBlast): %.2f TFLOP/s (%.3f ms)\n", n,
           2.0 * n * n * n / ms[3] * 1e-9, ms[3]);
    clReleaseMemObject(A);
    clReleaseMemObject(B);
    clReleaseMemObject(C);
#else
    (void)n;
    printf("sgemm: not built (no CLBlast)\n");
#endif
    clReleaseMemObject(out);
    clReleaseKernel(k);
    clReleaseProgram(prog);
    clReleaseCommandQueue(qu);
    clReleaseContext(ctx);
    return 0;
}
