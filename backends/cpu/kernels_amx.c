/*
 * bf16 attention on AMX tiles (TDPBF16PS: 16x16 f32 results from 16x32 by
 * 32x16 bf16 operands per instruction, f32 accumulation).  Its own archive
 * compiled with -mamx-tile -mamx-bf16 -mavx512f; dispatch.c uses it only
 * after CPUID, XCR0 and the kernel's permission (arch_prctl) say the tile
 * state is usable.
 *
 * One step = up to 16 query rows (the 16 lanes of every vector below) x up
 * to MOBA_CPU_STEP_KEYS keys of one block:
 *   S^T = K Q^T   A = 16 key rows straight from K (no packing), B = the
 *                 rows' q transposed into VNNI pairs once per step; the
 *                 result has one key per row and one query per lane, so the
 *                 softmax needs no horizontal reductions;
 *   P = exp(S*scale - m)   per lane, rounded to bf16 (f32 sums), then
 *                 transposed into A tiles (query rows x 32 keys);
 *   O = P V       B = V packed once per block into VNNI pairs of keys;
 *   acc = acc*corr + O, l = l*corr + sum(P)   per row.
 * Each lane's arithmetic is independent of the other lanes and of how
 * many keys the step pads to (padding adds exact zeros), so results do not
 * depend on how rows are grouped.
 *
 * The vector code uses GCC vector extensions, not intrinsics, so that
 * MOBA_AMX_EMULATE builds (meson -Dcpu_amx_emulate=true) can run the same
 * file on any x86 CPU with the tile instructions emulated in C: that is
 * how the packing and layouts are tested where no AMX CPU is at hand.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu_kernels.h"

typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
typedef uint32_t vu __attribute__((vector_size(64)));

#define INLINE static inline __attribute__((always_inline))

/* Tiles: 0-3 results, 4 the A operand, 5 the B operand; all 16 rows x 64
 * bytes (palette 1), so one configuration serves every step. */
#ifdef MOBA_AMX_EMULATE
typedef struct etile {
    unsigned char b[16][64];
} etile;
static _Thread_local etile et[8];
static void emu_load(int t, const void *p, size_t stride)
{
    for (int r = 0; r < 16; r++) memcpy(et[t].b[r], (const char *)p + r * stride, 64);
}
static void emu_store(int t, void *p, size_t stride)
{
    for (int r = 0; r < 16; r++) memcpy((char *)p + r * stride, et[t].b[r], 64);
}
static float emu_bf(const unsigned char *p)
{
    uint32_t u = (uint32_t)(p[0] | p[1] << 8) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static void emu_dp(int c, int a, int b)
{
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float acc;
            memcpy(&acc, et[c].b[i] + 4 * j, 4);
            for (int k = 0; k < 16; k++)
                for (int e = 0; e < 2; e++)
                    acc += emu_bf(et[a].b[i] + 4 * k + 2 * e) *
                           emu_bf(et[b].b[k] + 4 * j + 2 * e);
            memcpy(et[c].b[i] + 4 * j, &acc, 4);
        }
}
#define TLOAD(t, p, stride) emu_load(t, p, stride)
#define TSTORE(t, p, stride) emu_store(t, p, stride)
#define TZERO(t) memset(&et[t], 0, sizeof et[t])
#define TDP(c, a, b) emu_dp(c, a, b)
#define TCONFIG(cfg) (void)(cfg)
#define TRELEASE() (void)0
#else
#include <immintrin.h>
#define TLOAD(t, p, stride) _tile_loadd(t, p, (long)(stride))
#define TSTORE(t, p, stride) _tile_stored(t, p, (long)(stride))
#define TZERO(t) _tile_zero(t)
#define TDP(c, a, b) _tile_dpbf16ps(c, a, b)
#define TCONFIG(cfg) _tile_loadconfig(cfg)
#define TRELEASE() _tile_release()
#endif

INLINE vf vld(const void *p)
{
    vf x;
    memcpy(&x, p, sizeof x);
    return x;
}
INLINE vi vldi(const void *p)
{
    vi x;
    memcpy(&x, p, sizeof x);
    return x;
}
INLINE void vst(void *p, vf x) { memcpy(p, &x, sizeof x); }
INLINE void vsti(void *p, vi x) { memcpy(p, &x, sizeof x); }
INLINE vf vsplat(float x) { return (vf){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }
INLINE vf vsel(vi m, vf a, vf b) { return (vf)((m & (vi)a) | (~m & (vi)b)); }
#ifdef MOBA_AMX_EMULATE
INLINE vf vfma(vf a, vf b, vf c) { return a * b + c; }
#else
INLINE vf vfma(vf a, vf b, vf c) { return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c); }
#endif

/* e^x as the avx512 variant's vexp (Cephes, 1-2 ulp); 0 below -87.3,
 * NaN stays NaN. */
INLINE vf vexp(vf x)
{
    const vf lo = vsplat(-87.33654f), hi = vsplat(88.0f);
    vi ok = ~(x < lo);
    x = vsel(x < lo, lo, x);
    x = vsel(x > hi, hi, x);
    const vf magic = vsplat(12582912.0f); /* 1.5 * 2^23: round to integer */
    vf n = vfma(x, vsplat(1.44269504088896341f), magic) - magic;
    vf r = vfma(n, vsplat(-0.693359375f), x);
    r = vfma(n, vsplat(2.12194440e-4f), r);
    vf y = vsplat(1.9875691500e-4f);
    y = vfma(y, r, vsplat(1.3981999507e-3f));
    y = vfma(y, r, vsplat(8.3334519073e-3f));
    y = vfma(y, r, vsplat(4.1665795894e-2f));
    y = vfma(y, r, vsplat(1.6666665459e-1f));
    y = vfma(y, r, vsplat(5.0000001201e-1f));
    y = vfma(y, r * r, r);
    y = y + vsplat(1.0f);
    vi e = (__builtin_convertvector(n, vi) + 127) << 23;
    return (vf)(ok & (vi)(y * (vf)e));
}

/* f32 -> bf16 (round to nearest even), in the low 16 bits of each lane;
 * NaN stays a quiet NaN. */
INLINE vi vbf16(vf x)
{
    vu u = (vu)x;
    vu r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    vi nan = x != x;
    return (vi)(((vu)nan & 0x7fc0u) | (~(vu)nan & r));
}

/* Two rows of weights as bf16 pairs: lane i = p0[i] | p1[i] << 16. */
INLINE vi vpair_bf16(vf p0, vf p1)
{
#ifdef MOBA_AMX_EMULATE
    return (vi)((vu)vbf16(p0) | ((vu)vbf16(p1) << 16));
#else
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10,
                                         25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19,
                                         3, 18, 2, 17, 1, 16, 0);
    __m512bh c = _mm512_cvtne2ps_pbh((__m512)p1, (__m512)p0); /* p0 low, p1 high */
    return (vi)_mm512_permutexvar_epi16(idx, (__m512i)c);
#endif
}

/* 16x16 transpose of 32-bit elements: four rounds, each swapping one bit
 * of the row index with the same bit of the column index. */
INLINE void transpose16(vi r[16])
{
#define ROUND(h, lo, hi)                                                     \
    do {                                                                     \
        const vi ml = lo, mh = hi;                                           \
        for (int i = 0; i < 16; i++)                                         \
            if (!(i & (h))) {                                                \
                vi a = r[i], b = r[i + (h)];                                 \
                r[i] = __builtin_shuffle(a, b, ml);                          \
                r[i + (h)] = __builtin_shuffle(a, b, mh);                    \
            }                                                                \
    } while (0)
    ROUND(8, ((vi){0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}),
          ((vi){8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}));
    ROUND(4, ((vi){0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27}),
          ((vi){4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}));
    ROUND(2, ((vi){0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29}),
          ((vi){2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}));
    ROUND(1, ((vi){0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}),
          ((vi){1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}));
#undef ROUND
}

/* 16 bf16 values widened to the low halves of 16 lanes. */
INLINE vi vwiden16(const uint16_t *p)
{
    uint16_t t[16];
    memcpy(t, p, sizeof t);
    vi x;
    for (int j = 0; j < 16; j++) x[j] = t[j];
    return x;
}

/* V rows [0, n) into VNNI pairs: tile (kp, t) = keys 32kp.. x columns
 * 16t.., row r holding (v[32kp+2r][c], v[32kp+2r+1][c]) for 16 columns c.
 * Keys past n are zero (finite: P is 0 there). */
void moba_cpu_pack_v_bf16_amx(uint16_t *dst, const uint16_t *v, size_t ldv,
                              int n, int d)
{
    const int nt = d / 16, n32 = (n + 31) / 32 * 32;
    const vi zero = {0};
    for (int u = 0; u < n32; u += 2) {
        const uint16_t *v0 = u < n ? v + (size_t)u * ldv : NULL;
        const uint16_t *v1 = u + 1 < n ? v + (size_t)(u + 1) * ldv : NULL;
        uint16_t *row = dst + ((size_t)(u / 32) * nt * 16 + (u % 32) / 2) * 32;
        for (int t = 0; t < nt; t++) {
            vi a = v0 ? vwiden16(v0 + 16 * t) : zero;
            vi b = v1 ? vwiden16(v1 + 16 * t) : zero;
            vsti(row + (size_t)t * 512, (vi)((vu)a | ((vu)b << 16)));
        }
    }
}

/* Work area layout (bytes), all 64-aligned for d a multiple of 32. */
#define W_CFG 0
#define W_QT(d) 64
#define W_KT(d) (W_QT(d) + 32 * (size_t)(d))
#define W_ST(d) (W_KT(d) + 32 * (size_t)(d))
#define W_PA(d) (W_ST(d) + 64 * (size_t)MOBA_CPU_STEP_KEYS)
#define W_O(d) (W_PA(d) + 32 * (size_t)MOBA_CPU_STEP_KEYS)
#define W_END(d) (W_O(d) + 64 * (size_t)(d))

size_t moba_cpu_step_work_bf16_amx(int d) { return W_END(d); }

/* Key group g of the step: straight from K if all 16 rows exist, else the
 * zero-padded copy of its rows below n. */
INLINE const uint16_t *key_rows(const moba_cpu_step *st, int g, uint16_t *kt,
                                size_t *ld)
{
    if (16 * g + 16 <= st->n) {
        *ld = st->ldk * 2;
        return st->k + (size_t)16 * g * st->ldk;
    }
    *ld = (size_t)st->d * 2;
    return kt;
}

void moba_cpu_step_bf16_amx(const moba_cpu_step *st)
{
    const int d = st->d, m = st->m, nd = d / 32, nt = d / 16;
    char *w = st->work;
    uint16_t *qt = (uint16_t *)(w + W_QT(d)), *kt = (uint16_t *)(w + W_KT(d));
    float *s = (float *)(w + W_ST(d)), *o = (float *)(w + W_O(d));
    uint16_t *pa = (uint16_t *)(w + W_PA(d));

    unsigned char *cfg = (unsigned char *)w + W_CFG;
    memset(cfg, 0, 64);
    cfg[0] = 1; /* palette 1 */
    for (int t = 0; t < 6; t++) {
        cfg[16 + 2 * t] = 64; /* bytes per row */
        cfg[48 + t] = 16;     /* rows */
    }
    TCONFIG(cfg);

    /* Keys this step must cover: the furthest any row sees. */
    int nk = st->n;
    vi lim;
    for (int i = 0; i < 16; i++) lim[i] = i < m ? (st->lim ? st->lim[i] : st->n) : 0;
    if (st->lim) {
        nk = 0;
        for (int i = 0; i < m; i++) nk = st->lim[i] > nk ? st->lim[i] : nk;
    }
    const int ng = (nk + 15) / 16, n32 = (nk + 31) / 32 * 32;

    /* Q^T in VNNI pairs: B row r of d-step x = dword r of each row's
     * 32-element slice x, i.e. the 16x16 dword transpose of the rows. */
    for (int x = 0; x < nd; x++) {
        vi r[16];
        for (int i = 0; i < 16; i++) r[i] = i < m ? vldi(st->q[i] + 32 * x) : (vi){0};
        transpose16(r);
        for (int i = 0; i < 16; i++) vsti(qt + (size_t)x * 512 + 32 * i, r[i]);
    }
    if (16 * ng > st->n) {
        int g = ng - 1, have = st->n - 16 * g;
        for (int u = 0; u < 16; u++)
            if (u < have)
                memcpy(kt + (size_t)u * d, st->k + (size_t)(16 * g + u) * st->ldk,
                       sizeof(uint16_t) * (size_t)d);
            else
                memset(kt + (size_t)u * d, 0, sizeof(uint16_t) * (size_t)d);
    }

    /* S^T: 64 keys (4 result tiles) at a time. */
    for (int g0 = 0; g0 < ng; g0 += 4) {
        const uint16_t *kp[4] = {0};
        size_t ld[4] = {0};
        for (int t = 0; t < 4 && g0 + t < ng; t++) kp[t] = key_rows(st, g0 + t, kt, &ld[t]);
        TZERO(0);
        TZERO(1);
        TZERO(2);
        TZERO(3);
        for (int x = 0; x < nd; x++) {
            TLOAD(5, qt + (size_t)x * 512, 64);
#define QK(t)                                                                \
    if (g0 + t < ng) {                                                       \
        TLOAD(4, kp[t] + 32 * x, ld[t]);                                     \
        TDP(t, 4, 5);                                                        \
    }
            QK(0) QK(1) QK(2) QK(3)
#undef QK
        }
        TSTORE(0, s + (size_t)(16 * g0) * 16, 64);
        if (g0 + 1 < ng) TSTORE(1, s + (size_t)(16 * g0 + 16) * 16, 64);
        if (g0 + 2 < ng) TSTORE(2, s + (size_t)(16 * g0 + 32) * 16, 64);
        if (g0 + 3 < ng) TSTORE(3, s + (size_t)(16 * g0 + 48) * 16, 64);
    }

    /* Softmax per lane over the keys it sees (u < lim). */
    const vf ninf = vsplat(-INFINITY), scale = vsplat(st->scale);
    vf mx = ninf;
    vi nan = {0};
    if (st->lim)
        for (int u = 0; u < nk; u++) {
            vi ui = {u, u, u, u, u, u, u, u, u, u, u, u, u, u, u, u};
            vf x = vsel(ui < lim, vld(s + 16 * u) * scale, ninf);
            nan |= x != x;
            mx = vsel(x > mx, x, mx);
        }
    else
        for (int u = 0; u < nk; u++) {
            vf x = vld(s + 16 * u) * scale;
            nan |= x != x;
            mx = vsel(x > mx, x, mx);
        }
    vf mold = ninf;
    for (int i = 0; i < m; i++) mold[i] = st->mx[i];
    nan |= mold != mold;
    vf mnew = vsel(mold > mx, mold, mx);
    mnew = vsel(nan, vsplat(NAN), mnew);
    const vf muse = vsel(mnew == ninf, vsplat(0.0f), mnew);
    const vf corr = vsel(mold == mnew, vsplat(1.0f), vexp(mold - mnew));

    /* P in bf16 pairs of keys, transposed into A tiles of 16 rows x 32
     * keys; the row sums use the f32 weights, as FlashAttention does. */
    vf sum = vsplat(0.0f);
    const vf zero = vsplat(0.0f);
    for (int u0 = 0; u0 < n32; u0 += 32) {
        vi r[16];
        for (int k = 0; k < 16; k++) {
            int u = u0 + 2 * k;
            vf p0 = u < nk ? vexp(vfma(vld(s + 16 * u), scale, -muse)) : zero;
            vf p1 = u + 1 < nk ? vexp(vfma(vld(s + 16 * (u + 1)), scale, -muse)) : zero;
            if (st->lim) {
                vi ui = {u, u, u, u, u, u, u, u, u, u, u, u, u, u, u, u};
                p0 = vsel(ui < lim, p0, zero);
                p1 = vsel(ui + 1 < lim, p1, zero);
            }
            sum += p0 + p1;
            r[k] = vpair_bf16(p0, p1);
        }
        transpose16(r);
        for (int i = 0; i < 16; i++) vsti(pa + (size_t)u0 * 16 + 32 * i, r[i]);
    }

    /* O = P V, 64 columns (4 result tiles) at a time. */
    for (int t0 = 0; t0 < nt; t0 += 4) {
        TZERO(0);
        TZERO(1);
        TZERO(2);
        TZERO(3);
        for (int u0 = 0; u0 < n32; u0 += 32) {
            const uint16_t *vp = st->vp + ((size_t)(u0 / 32) * nt + t0) * 512;
            TLOAD(4, pa + (size_t)u0 * 16, 64);
#define PV(t)                                                                \
    if (t0 + t < nt) {                                                       \
        TLOAD(5, vp + (size_t)(t) * 512, 64);                                \
        TDP(t, 4, 5);                                                        \
    }
            PV(0) PV(1) PV(2) PV(3)
#undef PV
        }
        const size_t ldo = sizeof(float) * (size_t)d;
        TSTORE(0, o + 16 * t0, ldo);
        if (t0 + 1 < nt) TSTORE(1, o + 16 * (t0 + 1), ldo);
        if (t0 + 2 < nt) TSTORE(2, o + 16 * (t0 + 2), ldo);
        if (t0 + 3 < nt) TSTORE(3, o + 16 * (t0 + 3), ldo);
    }
    TRELEASE();

    for (int i = 0; i < m; i++) {
        float *a = st->acc[i];
        const float *oi = o + (size_t)i * d;
        const vf c = vsplat(corr[i]);
        for (int x = 0; x < d; x += 16) vst(a + x, vld(a + x) * c + vld(oi + x));
        st->l[i] = st->l[i] * corr[i] + sum[i];
        st->mx[i] = mnew[i];
    }
}
