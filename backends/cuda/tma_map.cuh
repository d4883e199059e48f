/*
 * Host side of the tensor memory accelerator: the tensor maps that the
 * warp-specialized kernels' copies read (attend_launch.cuh's K and V,
 * gate.cu's centroids).  The encoder is the driver's, reached through the
 * runtime (the module links no libcuda); it only fills a 128-byte
 * descriptor on the host.
 */
#ifndef MOBA_GPU_TMA_MAP_CUH
#define MOBA_GPU_TMA_MAP_CUH

#include "vendor.h"

#if MOBA_GPU_HAVE_MMA

#include <cuda.h>
#include <cudaTypedefs.h> /* PFN_cuTensorMapEncodeTiled */

/* A map of a [rows, Hk, D] 16-bit tensor at base, as boxes of 64 columns
 * x 1 head x box_rows rows, 128-byte swizzled (wg_sw128_off's layout, box
 * for box).  Returns 0 where the driver has no encoder or refuses the map
 * (the caller then copies with cp.async). */
static int gpu_tma_encode_rows(CUtensorMap *m, const void *base, int D, int64_t Hk, int64_t rows,
                               int box_rows)
{
    void *fn = NULL;
    cudaDriverEntryPointQueryResult qr;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault,
                                         &qr) != cudaSuccess ||
        qr != cudaDriverEntryPointSuccess || !fn) {
        (void)cudaGetLastError();
        return 0;
    }
    const PFN_cuTensorMapEncodeTiled_v12000 enc = (PFN_cuTensorMapEncodeTiled_v12000)fn;
    const cuuint64_t dims[3] = {(cuuint64_t)D, (cuuint64_t)Hk, (cuuint64_t)rows};
    const cuuint64_t strides[2] = {(cuuint64_t)D * 2, (cuuint64_t)Hk * D * 2};
    const cuuint32_t box[3] = {64, 1, (cuuint32_t)box_rows}, unit[3] = {1, 1, 1};
    return enc(m, CU_TENSOR_MAP_DATA_TYPE_UINT16, 3, (void *)base, dims, strides, box, unit,
               CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
               CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) ==
           CUDA_SUCCESS;
}

#endif /* MOBA_GPU_HAVE_MMA */

#endif /* MOBA_GPU_TMA_MAP_CUH */
