/* The (dtype, head dim) instances this module ships; device_info and
 * supports() report exactly these head dims. */
#include "gpu_internal.h"

#define MOBA_GPU_DECL(DT, D)                                                     \
    extern "C" cudaError_t moba_gpu_attend_##DT##_##D(                           \
        const gpu_args *, const void *, const void *, const void *, void *,      \
        float *);
#define MOBA_GPU_DIMS(X, DT) X(DT, 32) X(DT, 64) X(DT, 96) X(DT, 128) X(DT, 256)
MOBA_GPU_DIMS(MOBA_GPU_DECL, 0)
MOBA_GPU_DIMS(MOBA_GPU_DECL, 1)
MOBA_GPU_DIMS(MOBA_GPU_DECL, 2)

#define MOBA_GPU_ROW(DT)                                                         \
    {moba_gpu_attend_##DT##_32, moba_gpu_attend_##DT##_64,                        \
     moba_gpu_attend_##DT##_96, moba_gpu_attend_##DT##_128,                       \
     moba_gpu_attend_##DT##_256}

static const int head_dims[5] = {32, 64, 96, 128, 256};
static const moba_gpu_attend_fn table[3][5] = {MOBA_GPU_ROW(0), MOBA_GPU_ROW(1),
                                               MOBA_GPU_ROW(2)};

extern "C" moba_gpu_attend_fn moba_gpu_attend_get(int dtype, int head_dim)
{
    if (dtype < 0 || dtype > 2) return NULL;
    for (int i = 0; i < 5; i++)
        if (head_dims[i] == head_dim) return table[dtype][i];
    return NULL;
}

extern "C" int moba_gpu_head_dims(int *dims, int cap)
{
    int n = cap < 5 ? cap : 5;
    for (int i = 0; i < n; i++) dims[i] = head_dims[i];
    return 5;
}
