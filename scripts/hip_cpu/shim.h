/* scripts/hip_cpu/check.sh force-includes this (-include) ahead of every
 * kernel source when it builds the HIP backend against ROCm's HIP-CPU
 * runtime: device intrinsics that real HIP (amd_device_functions.h) has and
 * HIP-CPU lacks.  Workarounds for HIP-CPU only; nothing libmoba-specific. */
#pragma once
#include <hip/hip_runtime.h>
#include <cstdint>
#include <cstring>

__device__ inline float __uint_as_float(unsigned x) noexcept
{ float f; std::memcpy(&f, &x, sizeof f); return f; }
__device__ inline unsigned __float_as_uint(float f) noexcept
{ unsigned x; std::memcpy(&x, &f, sizeof x); return x; }
__device__ inline float __int_as_float(int x) noexcept
{ float f; std::memcpy(&f, &x, sizeof f); return f; }
__device__ inline int __float_as_int(float f) noexcept
{ int x; std::memcpy(&x, &f, sizeof x); return x; }
/* HIP's global integer min/max (real HIP: amd_device_functions.h). */
__device__ inline int min(int a, int b) noexcept { return a < b ? a : b; }
__device__ inline int max(int a, int b) noexcept { return a > b ? a : b; }
__device__ inline unsigned min(unsigned a, unsigned b) noexcept { return a < b ? a : b; }
__device__ inline unsigned max(unsigned a, unsigned b) noexcept { return a > b ? a : b; }
__device__ inline long long min(long long a, long long b) noexcept { return a < b ? a : b; }
__device__ inline long long max(long long a, long long b) noexcept { return a > b ? a : b; }
/* HIP-CPU defines __forceinline__ as nothing unless NDEBUG is set
 * (hip_defines.h), so header-defined __device__ __forceinline__ helpers
 * become non-inline and collide at link time.  CUDA and HIP make it imply
 * inline: do the same.  __device__ is GCC's __attribute__((simd)) there,
 * which only adds vector clones (slow compiles, "unsupported argument
 * type" warnings): drop it. */
#undef __forceinline__
#define __forceinline__ __attribute__((always_inline)) inline
#undef __device__
#define __device__
/* HIP-CPU has no __expf / __logf (HIP's fast-math intrinsics).  glibc's
 * <math.h> declares internal __expf / __logf, so the code compiles, but
 * libm does not export them: the module fails to dlopen ("undefined
 * symbol: __logf").  Map them to the accurate functions. */
#include <cmath>
#define __expf(x) expf(x)
#define __logf(x) logf(x)

#ifdef HIPCPU_TRACE
/* Optional (-DHIPCPU_TRACE): count launches per kernel and print them at
 * exit, to show which kernels ran.  Same body as HIP-CPU's
 * hipLaunchKernelGGL (hip_api.h) plus the counter. */
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
struct hipcpu_trace_t {
    std::mutex mu;
    std::map<std::string, long> n;
    std::map<std::string, std::string> dims;
    ~hipcpu_trace_t() {
        for (auto &kv : n)
            std::fprintf(stderr, "HIPCPU_TRACE %-24s launches %6ld  first %s\n",
                         kv.first.c_str(), kv.second, dims[kv.first].c_str());
    }
};
inline hipcpu_trace_t hipcpu_trace_tab;
inline void hipcpu_trace(const char *k, dim3 g, dim3 b)
{
    std::lock_guard<std::mutex> l(hipcpu_trace_tab.mu);
    if (hipcpu_trace_tab.n[k]++ == 0) {
        char s[96];
        std::snprintf(s, sizeof s, "grid (%u,%u,%u) block (%u,%u,%u)", g.x, g.y, g.z, b.x, b.y, b.z);
        hipcpu_trace_tab.dims[k] = s;
    }
}
#undef hipLaunchKernelGGL
#define hipLaunchKernelGGL(kernel_name, num_blocks, dim_blocks, group_mem_bytes, stream, ...) \
    if (true) {                                                                          \
        hipcpu_trace(#kernel_name, dim3(num_blocks), dim3(dim_blocks));                  \
        ::hip::detail::launch(num_blocks, dim_blocks, group_mem_bytes, stream,           \
            [=](auto &&...xs) noexcept { kernel_name(std::forward<decltype(xs)>(xs)...); }, \
            std::make_tuple(__VA_ARGS__));                                               \
    } else ((void)0)
#endif
