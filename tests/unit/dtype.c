/* f16/bf16 conversion (round to nearest even, NaN stays NaN) and the
 * dtype helpers of the public API. */
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "unit.h"

/* IEEE binary16 decoded with libm only, independent of core/dtype.h. */
static float f16_decode(uint16_t h)
{
    int exp = (h >> 10) & 31, man = h & 1023;
    float v = exp == 31 ? (man ? NAN : INFINITY)
            : exp == 0  ? ldexpf((float)man, -24)
                        : ldexpf((float)(1024 + man), exp - 25);
    return (h & 0x8000) ? -v : v;
}

static int f16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

void test_f16_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h <= 0xffff; h++) {
        float f = moba_f16_to_f32((uint16_t)h), want = f16_decode((uint16_t)h);
        if (f16_is_nan((uint16_t)h)) {
            assert_true(isnan(f));
            assert_true(f16_is_nan(moba_f32_to_f16(f))); /* NaN stays NaN */
            continue;
        }
        assert_int_equal(moba_f32_to_bits(f), moba_f32_to_bits(want));
        assert_int_equal(moba_f32_to_f16(f), h); /* exact round trip */
    }
}

void test_f16_rounding(void **state)
{
    (void)state;
    /* every midpoint between neighbouring positive finite halves goes to
     * the even one; a hair off the midpoint goes to the nearer one */
    for (uint16_t h = 0; h < 0x7bff; h++) {
        float a = f16_decode(h), b = f16_decode((uint16_t)(h + 1));
        float mid = a + (b - a) * 0.5f; /* exact: 12 significant bits */
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : h;
        assert_int_equal(moba_f32_to_f16(mid), even);
        assert_int_equal(moba_f32_to_f16(nextafterf(mid, INFINITY)), h + 1);
        assert_int_equal(moba_f32_to_f16(nextafterf(mid, 0.0f)), h);
        assert_int_equal(moba_f32_to_f16(-mid), even | 0x8000);
    }
    /* overflow: 65520 (the midpoint above the largest half) is inf */
    assert_int_equal(moba_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(moba_f32_to_f16(nextafterf(65520.0f, 0.0f)), 0x7bff);
    assert_int_equal(moba_f32_to_f16(1e30f), 0x7c00);
    assert_int_equal(moba_f32_to_f16(-INFINITY), 0xfc00);
    /* below half the smallest subnormal: zero, sign kept */
    assert_int_equal(moba_f32_to_f16(ldexpf(1.0f, -26)), 0x0000);
    assert_int_equal(moba_f32_to_f16(-ldexpf(1.0f, -26)), 0x8000);
    static const uint32_t nans[] = {0x7f800001u, 0x7fc00000u, 0xffffffffu, 0x7f802000u};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++)
        assert_true(f16_is_nan(moba_f32_to_f16(moba_bits_to_f32(nans[i]))));
}

void test_bf16_rounding(void **state)
{
    (void)state;
    for (uint32_t h = 0; h <= 0xffff; h++) {
        uint32_t bits = h << 16;
        float f = moba_bits_to_f32(bits);
        if ((h & 0x7f80) == 0x7f80 && (h & 0x7f)) { /* NaN */
            assert_true(isnan(moba_bf16_to_f32((uint16_t)h)));
            uint16_t r = moba_f32_to_bf16(f);
            assert_true((r & 0x7f80) == 0x7f80 && (r & 0x7f));
            continue;
        }
        assert_int_equal(moba_f32_to_bits(moba_bf16_to_f32((uint16_t)h)), bits);
        assert_int_equal(moba_f32_to_bf16(f), h);
        if ((h & 0x7f80) == 0x7f80) continue; /* inf: no neighbour above */
        uint32_t even = (h & 1) ? h + 1 : h;
        assert_int_equal(moba_f32_to_bf16(moba_bits_to_f32(bits | 0x8000u)), even);
        assert_int_equal(moba_f32_to_bf16(moba_bits_to_f32(bits | 0x8001u)), h + 1);
        assert_int_equal(moba_f32_to_bf16(moba_bits_to_f32(bits | 0x7fffu)), h);
    }
    /* NaN payloads that truncation would turn into inf */
    static const uint32_t nans[] = {0x7f800001u, 0xff800001u, 0x7f80ffffu, 0x7fc00000u};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++)
        assert_true(isnan(moba_bf16_to_f32(moba_f32_to_bf16(moba_bits_to_f32(nans[i])))));
}

void test_convert(void **state)
{
    (void)state;
    float src[7] = {1.0f, -2.5f, 3.14159f, 1e-6f, 70000.0f, NAN, -0.0f};
    uint16_t h[7], b[7];
    float back[7];
    assert_int_equal(moba_convert(h, MOBA_F16, src, MOBA_F32, 7), MOBA_OK);
    assert_int_equal(moba_convert(b, MOBA_BF16, src, MOBA_F32, 7), MOBA_OK);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(h[i], moba_f32_to_f16(src[i]));
        assert_int_equal(b[i], moba_f32_to_bf16(src[i]));
    }
    assert_int_equal(moba_convert(back, MOBA_F32, h, MOBA_F16, 7), MOBA_OK);
    for (int i = 0; i < 7; i++)
        assert_memory_equal(&back[i], &(float){moba_f16_to_f32(h[i])}, sizeof(float));
    /* bf16 -> f16 goes through f32 */
    uint16_t hb[7];
    assert_int_equal(moba_convert(hb, MOBA_F16, b, MOBA_BF16, 7), MOBA_OK);
    for (int i = 0; i < 7; i++)
        assert_int_equal(hb[i], moba_f32_to_f16(moba_bf16_to_f32(b[i])));
    assert_int_equal(moba_convert(h, (moba_dtype)9, src, MOBA_F32, 1),
                     MOBA_ERR_INVALID_ARGUMENT);
    assert_int_equal(moba_convert(h, MOBA_F16, NULL, MOBA_F32, 1), MOBA_ERR_NULL_POINTER);
}

void test_dtype_parse(void **state)
{
    (void)state;
    static const struct { const char *s; moba_dtype d; } ok[] = {
        {"f32", MOBA_F32}, {"float32", MOBA_F32}, {"f16", MOBA_F16},
        {"float16", MOBA_F16}, {"bf16", MOBA_BF16}, {"bfloat16", MOBA_BF16},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        moba_dtype d = (moba_dtype)-1;
        assert_int_equal(moba_dtype_parse(ok[i].s, &d), MOBA_OK);
        assert_int_equal(d, ok[i].d);
    }
    static const char *bad[] = {"", "f64", "int8", "f32 ", "bf", "float"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        moba_dtype d = MOBA_BF16;
        assert_int_equal(moba_dtype_parse(bad[i], &d), MOBA_ERR_INVALID_ARGUMENT);
        assert_int_equal(d, MOBA_BF16); /* untouched */
        assert_true(moba_last_error()[0] != '\0');
    }
    assert_int_equal(moba_dtype_parse(NULL, &(moba_dtype){MOBA_F32}), MOBA_ERR_NULL_POINTER);
    assert_int_equal(moba_dtype_parse("f32", NULL), MOBA_ERR_NULL_POINTER);
    assert_int_equal(moba_dtype_size(MOBA_F32), 4);
    assert_int_equal(moba_dtype_size(MOBA_F16), 2);
    assert_int_equal(moba_dtype_size(MOBA_BF16), 2);
    assert_int_equal(moba_dtype_size((moba_dtype)3), 0);
    assert_string_equal(moba_dtype_name(MOBA_BF16), "bf16");
    assert_string_equal(moba_dtype_name(MOBA_F16), "f16");
    assert_string_equal(moba_dtype_name(MOBA_F32), "f32");
}
