/* Scores straight from bf16 storage with AVX512_BF16 (VDPBF16PS: 32 bf16
 * products per instruction, twice the f32 FMA rate, and no conversion of
 * q or k).  Its own archive: only CPUs with AVX512_BF16 may run it, and
 * dispatch.c adds it to the avx512 variant only on those. */
#include <immintrin.h>
#include <stdint.h>

#include "../../core/dtype.h"
#include "avx512_util.h"
#include "cpu_kernels.h"

#define INLINE static inline __attribute__((always_inline))

INLINE void tile(const int mr, const int nr, int d, const uint16_t *const *a,
                 const uint16_t *b, size_t ldb, float *s, int lds)
{
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++) acc[i][j] = _mm512_setzero_ps();
    int x = 0;
    for (; x + 32 <= d; x += 32) {
        __m512bh kv[4];
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++)
            kv[j] = (__m512bh)_mm512_loadu_si512((const void *)(b + j * ldb + x));
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) {
            __m512bh qv = (__m512bh)_mm512_loadu_si512((const void *)(a[i] + x));
#pragma GCC unroll 4
            for (int j = 0; j < nr; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], qv, kv[j]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++) {
        float r[4];
        __m512 z = _mm512_setzero_ps();
        reduce4_512(acc[i][0], nr > 1 ? acc[i][1] : z, nr > 2 ? acc[i][2] : z,
                nr > 3 ? acc[i][3] : z, r);
        for (int j = 0; j < nr; j++) {
            float t = r[j];
            for (int y = x; y < d; y++)
                t += moba_bf16_to_f32(a[i][y]) * moba_bf16_to_f32(b[j * ldb + y]);
            s[i * lds + j] = t;
        }
    }
}

#define ROWS(nr)                                                             \
    switch (mr) {                                                            \
    case 1: tile(1, nr, d, a + i, bj, ldb, si, lds); break;                  \
    case 2: tile(2, nr, d, a + i, bj, ldb, si, lds); break;                  \
    case 3: tile(3, nr, d, a + i, bj, ldb, si, lds); break;                  \
    default: tile(4, nr, d, a + i, bj, ldb, si, lds); break;                 \
    }

void moba_cpu_qk_bf16_avx512bf16(int m, int n, int d, const uint16_t *const *a,
                                 const uint16_t *b, size_t ldb, float *s, int lds)
{
    for (int j = 0; j < n; j += 4) {
        const uint16_t *bj = b + (size_t)j * ldb;
        int nr = n - j < 4 ? n - j : 4;
        for (int i = 0; i < m; i += 4) {
            int mr = m - i < 4 ? m - i : 4;
            float *si = s + (size_t)i * lds + j;
            if (nr == 4) {
                ROWS(4)
            } else if (nr == 3) {
                ROWS(3)
            } else if (nr == 2) {
                ROWS(2)
            } else {
                ROWS(1)
            }
        }
    }
}
