/* Helpers shared by the gate and attention kernels. */
#define D4 (D / 4)
#define D16 (D / 16) /* head dims are multiples of 16 */

/* UNROLL(n): "#pragma unroll n" where n may be a macro.  NVIDIA's compiler
 * keeps the kernels' long loops rolled without it, and each trip then
 * waits on its own local-memory loads. */
#define PRAGMA(x) _Pragma(#x)
#define UNROLL(n) PRAGMA(unroll n)

/* float4 stride of the rows the kernels keep in local memory: one float4
 * of padding puts rows read together in different banks. */
#define LS (D4 + 1)

/* rows rows of D elements into dst (stride LS), row r from token or block
 * first + r of head `head` of `heads` in src, zero rows from n on; the nt
 * items of the work-group share the copy. */
inline void local_rows(local float4 *dst, const global store_t *src, int first, int n,
                       const int rows, int heads, int head, int lid, const int nt)
{
    for (int i = lid; i < rows * D4; i += nt) {
        int r = i / D4, d = i - r * D4;
        float4 x = (float4)(0.0f);
        if (r < n) x = LD4(src, ((long)(first + r) * heads + head) * D + 4 * d);
        dst[r * LS + d] = x;
    }
}

/* Horizontal max and sum of a float16 (the CPU forms). */
inline float hmax16(float16 x)
{
    float8 a = fmax(x.lo, x.hi);
    float4 b = fmax(a.lo, a.hi);
    float2 c = fmax(b.lo, b.hi);
    return fmax(c.x, c.y);
}
inline float hsum16(float16 x)
{
    float8 a = x.lo + x.hi;
    float4 b = a.lo + a.hi;
    float2 c = b.lo + b.hi;
    return c.x + c.y;
}

/* The dot products of the private row qq (D16 float16) with the D-long
 * rows p, p + stride, p + 2 stride, p + 3 stride of global memory (the
 * CPU forms: four independent FMA chains, the row loads 16-wide). */
inline float4 dot4x16(const float16 *qq, const global store_t *p, long stride)
{
    float16 a0 = (float16)(0.0f), a1 = a0, a2 = a0, a3 = a0;
#pragma unroll
    for (int d = 0; d < D16; d++) {
        a0 = fma(qq[d], LD16(p, 16 * d), a0);
        a1 = fma(qq[d], LD16(p, stride + 16 * d), a1);
        a2 = fma(qq[d], LD16(p, 2 * stride + 16 * d), a2);
        a3 = fma(qq[d], LD16(p, 3 * stride + 16 * d), a3);
    }
    return (float4)(hsum16(a0), hsum16(a1), hsum16(a2), hsum16(a3));
}

/* One such dot product. */
inline float dot16(const float16 *qq, const global store_t *p)
{
    float16 a0 = (float16)(0.0f);
#pragma unroll
    for (int d = 0; d < D16; d++) a0 = fma(qq[d], LD16(p, 16 * d), a0);
    return hsum16(a0);
}
