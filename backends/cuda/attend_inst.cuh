/*
 * One (dtype, head dim) instance of the attention per .cu file, so that
 * the instances compile in parallel.  Names: moba_gpu_attend_<dtype>_<D>.
 */
#ifndef MOBA_GPU_ATTEND_INST_CUH
#define MOBA_GPU_ATTEND_INST_CUH

#include "attend_simt.cuh"

#define MOBA_GPU_ATTEND_INSTANCE(DT, D)                                          \
    extern "C" cudaError_t moba_gpu_attend_##DT##_##D(                           \
        const gpu_args *a, const void *q, const void *k, const void *v,          \
        void *out, float *lse)                                                   \
    {                                                                            \
        return simt_attend<DT, D>(a, q, k, v, out, lse);                         \
    }

#endif /* MOBA_GPU_ATTEND_INST_CUH */
