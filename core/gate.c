#include "gate.h"

void moba_gate_write_row(int32_t *row, int32_t top_k, const int32_t *idx,
                         int32_t n, int32_t b)
{
    /* n < top_k is small: insertion sort of the chosen blocks plus b. */
    int32_t m = 0;
    for (int32_t i = 0; i <= n; i++) {
        int32_t x = i < n ? idx[i] : b;
        int32_t pos = m;
        while (pos > 0 && row[pos - 1] > x) {
            row[pos] = row[pos - 1];
            pos--;
        }
        row[pos] = x;
        m++;
    }
    for (int32_t i = m; i < top_k; i++) row[i] = -1;
}
