/*
 * The one place where the CUDA and HIP builds of the kernels differ: the
 * runtime API names, the half type and warp-level primitives.  Every .cu
 * file of backends/cuda includes this instead of a vendor header, so the
 * same source compiles with nvcc (CUDA) and with hipcc -DMOBA_USE_HIP.
 *
 * Rule for kernel code: no warp width is assumed.  Shuffles always pass an
 * explicit width that divides every vendor's warp (4 or 8 lanes), and
 * block-wide reductions go through shared memory.
 */
#ifndef MOBA_GPU_VENDOR_H
#define MOBA_GPU_VENDOR_H

#if defined(MOBA_USE_HIP)
#include "vendor_hip.h"
#else
#include "vendor_cuda.h"
#endif

#endif /* MOBA_GPU_VENDOR_H */
