/* NVIDIA: the CUDA runtime is the reference spelling; only the warp-level
 * primitives and capability switches need a definition here. */
#ifndef MOBA_GPU_VENDOR_CUDA_H
#define MOBA_GPU_VENDOR_CUDA_H

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define MOBA_GPU_BACKEND_NAME "cuda"
#define MOBA_GPU_VENDOR_NAME "NVIDIA"
#define MOBA_GPU_RUNTIME_NAME "CUDA"

/* Shuffle among `width` lanes; all lanes of the warp take part. */
#define MOBA_SHFL_XOR(v, mask, width) \
    __shfl_xor_sync(0xffffffffu, (v), (mask), (width))

/* Tensor-core (mma.sync) kernels exist for 16-bit dtypes on sm_80+. */
#define MOBA_GPU_HAVE_MMA 1
/* __match_any_sync (gate_count and k_fill: one atomic per block and warp). */
#define MOBA_GPU_HAVE_MATCH 1
/* k_fill_span stages a span's entries in 160 KB of shared memory. */
#define MOBA_GPU_FILL_STAGE 1

#endif /* MOBA_GPU_VENDOR_CUDA_H */
