/* Public dtype helpers (libmoba only). */
#include <string.h>

#include "dtype.h"
#include "internal.h"

size_t moba_dtype_size(moba_dtype dtype)
{
    switch (dtype) {
    case MOBA_F32: return 4;
    case MOBA_F16:
    case MOBA_BF16: return 2;
    }
    return 0;
}

const char *moba_dtype_name(moba_dtype dtype)
{
    switch (dtype) {
    case MOBA_F32: return "f32";
    case MOBA_F16: return "f16";
    case MOBA_BF16: return "bf16";
    }
    return "invalid";
}

moba_status moba_dtype_parse(const char *name, moba_dtype *out)
{
    static const struct { const char *s; moba_dtype d; } names[] = {
        {"f32", MOBA_F32},  {"float32", MOBA_F32}, {"fp32", MOBA_F32},
        {"f16", MOBA_F16},  {"float16", MOBA_F16}, {"fp16", MOBA_F16},
        {"bf16", MOBA_BF16}, {"bfloat16", MOBA_BF16},
    };
    if (!name || !out)
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_dtype_parse: %s is NULL",
                              name ? "out" : "name");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].s) == 0) {
            *out = names[i].d;
            return MOBA_OK;
        }
    return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                          "unknown dtype '%s' (expected f32, f16 or bf16)",
                          name);
}

moba_status moba_convert(void *dst, moba_dtype dst_dtype, const void *src,
                         moba_dtype src_dtype, size_t n)
{
    if (!dst || !src)
        return moba_set_error(MOBA_ERR_NULL_POINTER, "moba_convert: %s is NULL",
                              dst ? "src" : "dst");
    if (!moba_dtype_size(dst_dtype) || !moba_dtype_size(src_dtype))
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "moba_convert: invalid dtype %d",
                              moba_dtype_size(dst_dtype) ? (int)src_dtype
                                                         : (int)dst_dtype);
    if (dst_dtype == src_dtype) {
        if (dst != src) memmove(dst, src, n * moba_dtype_size(dst_dtype));
        return MOBA_OK;
    }
    for (size_t i = 0; i < n; i++)
        moba_store_f32(dst, dst_dtype, i, moba_load_f32(src, src_dtype, i));
    return MOBA_OK;
}
