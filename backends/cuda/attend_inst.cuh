/*
 * One (dtype, head dim) instance of the attention per .cu file, so that
 * the instances compile in parallel.  Names: moba_gpu_attend_<dtype>_<D>.
 */
#ifndef MOBA_GPU_ATTEND_INST_CUH
#define MOBA_GPU_ATTEND_INST_CUH

#include "attend_launch.cuh"

/* mma.sync where the instance has it and the host allows it (compute
 * capability >= 8.0 and no MOBA_CUDA_KERNEL=simt), else SIMT.  Both
 * paths write the same partials and merge them in the same order. */
template <int DT, int D>
static cudaError_t moba_attend_pick(const gpu_args *a, const void *q, const void *k,
                                   const void *v, void *out, float *lse)
{
#if MOBA_GPU_HAVE_MMA
    /* 16-byte vectors of Q, K and V in, and of out (the merge's stores):
     * tensors at any element offset take the SIMT path, as do devices whose
     * CTAs may not have the shared memory of the kernels. */
    if constexpr (mma_ok<DT, D>::value)
        if (a->use_mma &&
            (((uintptr_t)q | (uintptr_t)k | (uintptr_t)v | (uintptr_t)out) & 15) == 0 &&
            mma_smem_fits<D>(a))
            return mma_attend<DT, D>(a, q, k, v, out, lse);
#endif
    return simt_attend<DT, D>(a, q, k, v, out, lse);
}

#define MOBA_GPU_ATTEND_INSTANCE(DT, D)                                          \
    extern "C" cudaError_t moba_gpu_attend_##DT##_##D(                           \
        const gpu_args *a, const void *q, const void *k, const void *v,          \
        void *out, float *lse)                                                   \
    {                                                                            \
        return moba_attend_pick<DT, D>(a, q, k, v, out, lse);                    \
    }

#endif /* MOBA_GPU_ATTEND_INST_CUH */
