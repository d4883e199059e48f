/* Bulk conversion used by every backend (part of moba_common: no calls
 * into libmoba-only functions such as moba_set_error). */
#include <string.h>

#include "dtype.h"

void moba_to_f32(float *dst, const void *src, moba_dtype dt, size_t off,
                 size_t n)
{
    if (dt == MOBA_F32) {
        memcpy(dst, (const float *)src + off, n * sizeof(float));
        return;
    }
    const uint16_t *h = (const uint16_t *)src + off;
    if (dt == MOBA_BF16)
        for (size_t i = 0; i < n; i++) dst[i] = moba_bf16_to_f32(h[i]);
    else
        for (size_t i = 0; i < n; i++) dst[i] = moba_f16_to_f32(h[i]);
}

