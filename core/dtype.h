/*
 * 16-bit float storage <-> f32, round to nearest even.  Inline because the
 * CPU kernels convert in their inner loops; kept free of ISA intrinsics so
 * every backend and tool shares one definition.
 */
#ifndef MOBA_CORE_DTYPE_H
#define MOBA_CORE_DTYPE_H

#include <stdint.h>
#include <string.h>

#include "moba/moba.h"

static inline float moba_bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t moba_f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float moba_bf16_to_f32(uint16_t h)
{
    return moba_bits_to_f32((uint32_t)h << 16);
}

static inline uint16_t moba_f32_to_bf16(float f)
{
    uint32_t u = moba_f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a quiet NaN */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float moba_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1fu) /* inf / NaN */
        return moba_bits_to_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0)
            return moba_bits_to_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return moba_bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

static inline uint16_t moba_f32_to_f16(float f)
{
    uint32_t u = moba_f32_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) /* rounds to >= 65520: inf */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) { /* below 2^-14: subnormal or zero */
        /* Scale so the f16 subnormal unit (2^-24) becomes 1.0, then let the
         * float adder round to nearest even. */
        float v = moba_bits_to_f32(a) * 16777216.0f;
        uint32_t m = (uint32_t)v;
        float r = v - (float)m;
        if (r > 0.5f || (r == 0.5f && (m & 1u)))
            m++;
        return (uint16_t)(sign | m);
    }
    /* normal: rebias exponent, round mantissa 23 -> 10 bits */
    uint32_t base = a - 0x38000000u; /* exponent - 112 */
    uint32_t round = 0xfffu + ((base >> 13) & 1u);
    return (uint16_t)(sign | ((base + round) >> 13));
}

/* Loads element i of a tensor of the given dtype as f32. */
static inline float moba_load_f32(const void *p, moba_dtype dt, size_t i)
{
    switch (dt) {
    case MOBA_F16: return moba_f16_to_f32(((const uint16_t *)p)[i]);
    case MOBA_BF16: return moba_bf16_to_f32(((const uint16_t *)p)[i]);
    default: return ((const float *)p)[i];
    }
}

static inline void moba_store_f32(void *p, moba_dtype dt, size_t i, float x)
{
    switch (dt) {
    case MOBA_F16: ((uint16_t *)p)[i] = moba_f32_to_f16(x); break;
    case MOBA_BF16: ((uint16_t *)p)[i] = moba_f32_to_bf16(x); break;
    default: ((float *)p)[i] = x; break;
    }
}

/* Rounds an f32 value to the storage dtype and back. */
static inline float moba_round_to(moba_dtype dt, float x)
{
    switch (dt) {
    case MOBA_F16: return moba_f16_to_f32(moba_f32_to_f16(x));
    case MOBA_BF16: return moba_bf16_to_f32(moba_f32_to_bf16(x));
    default: return x;
    }
}

/* n elements of dtype `dt` at p[off..] to f32. */
void moba_to_f32(float *dst, const void *src, moba_dtype dt, size_t off,
                 size_t n);

#endif /* MOBA_CORE_DTYPE_H */
