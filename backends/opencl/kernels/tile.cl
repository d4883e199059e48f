/* Local-memory tile helper shared by the gate and attention kernels. */
#define D4 (D / 4)

/* s[c] = dot(qr, rows[c]) for c < n (n a compile-time constant after
 * inlining, so s stays in registers); rows of D4 float4 each.  The d loop is
 * outermost so each q element is read once for all n rows. */
inline void dot_rows(const local float4 *qr, const local float4 *rows,
                     float *s, const int n)
{
    for (int c = 0; c < n; c++) s[c] = 0.0f;
    for (int d = 0; d < D4; d++) {
        float4 qv = qr[d];
        for (int c = 0; c < n; c++) {
            float4 rv = rows[c * D4 + d];
            s[c] = fma(qv.x, rv.x, s[c]);
            s[c] = fma(qv.y, rv.y, s[c]);
            s[c] = fma(qv.z, rv.z, s[c]);
            s[c] = fma(qv.w, rv.w, s[c]);
        }
    }
}
