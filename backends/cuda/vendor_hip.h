/* AMD: HIP spells the CUDA runtime API with a hip prefix; map the subset the
 * backend uses.  Warps are 64 lanes on CDNA (gfx90a) and 32 on RDNA
 * (gfx1030), which the kernels never assume either way. */
#ifndef MOBA_GPU_VENDOR_HIP_H
#define MOBA_GPU_VENDOR_HIP_H

#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>

#define MOBA_GPU_BACKEND_NAME "hip"
#define MOBA_GPU_VENDOR_NAME "AMD"
#define MOBA_GPU_RUNTIME_NAME "HIP"

#define cudaError_t hipError_t
#define cudaSuccess hipSuccess
#define cudaErrorNoDevice hipErrorNoDevice
#define cudaErrorMemoryAllocation hipErrorOutOfMemory
#define cudaGetErrorString hipGetErrorString
#define cudaGetLastError hipGetLastError
#define cudaGetDeviceCount hipGetDeviceCount
#define cudaSetDevice hipSetDevice
#define cudaDeviceProp hipDeviceProp_t
#define cudaGetDeviceProperties hipGetDeviceProperties
#define cudaRuntimeGetVersion hipRuntimeGetVersion
#define cudaDriverGetVersion hipDriverGetVersion
#define cudaMalloc hipMalloc
#define cudaFree hipFree
#define cudaMemcpyAsync hipMemcpyAsync
#define cudaMemsetAsync hipMemsetAsync
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaStream_t hipStream_t
#define cudaStreamCreateWithFlags hipStreamCreateWithFlags
#define cudaStreamNonBlocking hipStreamNonBlocking
#define cudaStreamDestroy hipStreamDestroy
#define cudaStreamSynchronize hipStreamSynchronize
#define cudaStreamWaitEvent hipStreamWaitEvent
#define cudaEvent_t hipEvent_t
#define cudaEventCreateWithFlags hipEventCreateWithFlags
#define cudaEventDisableTiming hipEventDisableTiming
#define cudaEventRecord hipEventRecord
#define cudaEventDestroy hipEventDestroy

#define MOBA_SHFL_XOR(v, mask, width) __shfl_xor((v), (mask), (width))

/* The mma.sync PTX path is NVIDIA-only; HIP runs the portable kernels. */
#define MOBA_GPU_HAVE_MMA 0
/* No warp matching: gate_count and k_fill take one atomic per slot.  Its
 * code also takes 32-lane warps (32-bit lane masks, threadIdx.x % 32), so
 * it must stay off where warps are 64 lanes (CDNA). */
#define MOBA_GPU_HAVE_MATCH 0
/* k_fill_span's staging needs more than the 64 KB of an AMD CU's LDS. */
#define MOBA_GPU_FILL_STAGE 0

#endif /* MOBA_GPU_VENDOR_HIP_H */
