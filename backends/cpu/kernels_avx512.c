/* AVX-512F kernels (x86-64, Skylake-SP, Ice Lake, Sapphire Rapids, Zen 4).
 * The only file of the backend compiled with -mavx512f; dispatch.c calls it
 * only after CPUID and XGETBV say the CPU and the OS (opmask and ZMM state)
 * support it. */
#include <immintrin.h>

#include "avx512_util.h"

#define V __m512
#define VL 16
#define vzero() _mm512_setzero_ps()
#define vset1(x) _mm512_set1_ps(x)
#define vload(p) _mm512_loadu_ps(p)
#define vstore(p, x) _mm512_storeu_ps(p, x)
#define vbcast(p) _mm512_set1_ps(*(p))
#define vfma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define vmul(a, b) _mm512_mul_ps(a, b)
#define vadd(a, b) _mm512_add_ps(a, b)
#define vsub(a, b) _mm512_sub_ps(a, b)
#define vmax(m, x) _mm512_max_ps(m, x)
#define vload_f16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define vload_bf16(p)                                                        \
    _mm512_castsi512_ps(_mm512_slli_epi32(                                   \
        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))

static inline float vhsum(__m512 x)
{
    __m256 t = _mm256_add_ps(lo256(x), hi256(x));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float vhmax(__m512 x)
{
    __m256 t = _mm256_max_ps(lo256(x), hi256(x));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define vreduce4 reduce4_512

/* The expf of kernels_avx2.c, 16 lanes. */
static inline __m512 vexp(__m512 x)
{
    const __m512 lo = _mm512_set1_ps(-87.33654f);
    __mmask16 ok = _mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ);
    x = _mm512_min_ps(_mm512_set1_ps(88.0f), _mm512_max_ps(lo, x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), r);
    y = _mm512_add_ps(y, _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps(ok, y, _mm512_castsi512_ps(e));
}

/* 32 zmm registers: 4 x 4 scores = 16 accumulators + 4 + 1 loads;
 * 12 x 32 values = 24 accumulators + 2 + 1. */
#define QK_MR 4
#define QK_NR 4
#define PV_MR 12
#define PV_NV 2
#define PV_MORE_ROWS(nv)                                                     \
    case 6: pv_tile(6, nv, n, pi, ldp, v, ldv, acc + i, c); break;           \
    case 7: pv_tile(7, nv, n, pi, ldp, v, ldv, acc + i, c); break;           \
    case 8: pv_tile(8, nv, n, pi, ldp, v, ldv, acc + i, c); break;           \
    case 9: pv_tile(9, nv, n, pi, ldp, v, ldv, acc + i, c); break;           \
    case 10: pv_tile(10, nv, n, pi, ldp, v, ldv, acc + i, c); break;         \
    case 11: pv_tile(11, nv, n, pi, ldp, v, ldv, acc + i, c); break;
#define KERNEL_NAME "avx512"
#define KERNEL_TABLE moba_cpu_kernels_avx512

#include "kernels_simd.h"
