/* AVX-512 helpers shared by the avx512 and avx512bf16 kernel files (each
 * compiled with its own -m flags; this header adds none). */
#ifndef MOBA_CPU_AVX512_UTIL_H
#define MOBA_CPU_AVX512_UTIL_H

#include <immintrin.h>

static inline __m256 lo256(__m512 x) { return _mm512_castps512_ps256(x); }
static inline __m256 hi256(__m512 x)
{
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1));
}

/* Halves first (2 ops per vector), then the AVX2 hadd tree. */
static inline void reduce4_512(__m512 a, __m512 b, __m512 c, __m512 d, float *out)
{
    __m256 a2 = _mm256_add_ps(lo256(a), hi256(a));
    __m256 b2 = _mm256_add_ps(lo256(b), hi256(b));
    __m256 c2 = _mm256_add_ps(lo256(c), hi256(c));
    __m256 d2 = _mm256_add_ps(lo256(d), hi256(d));
    __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a2, b2), _mm256_hadd_ps(c2, d2));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd),
                                  _mm256_extractf128_ps(abcd, 1)));
}

#endif
