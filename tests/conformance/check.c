/* The comparisons of spec §7: selection validity and agreement, outputs
 * within tolerance, every element written. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

#define MAX_REPORTS 5

void conf_tolerance(moba_dtype dt, double *atol, double *rtol)
{
    switch (dt) {
    case MOBA_F16: *atol = *rtol = 2e-3; break;
    case MOBA_BF16: *atol = *rtol = 1.6e-2; break;
    default: *atol = *rtol = 1e-5; break;
    }
}

static void print_row(const int32_t *row, int32_t k)
{
    fprintf(stderr, "[");
    for (int32_t i = 0; i < k; i++)
        fprintf(stderr, "%s%d", i ? " " : "", (int)row[i]);
    fprintf(stderr, "]");
}

static int32_t nblocks(int32_t len, int32_t S)
{
    return (int32_t)(((int64_t)len + S - 1) / S);
}

/* Why a row is invalid, or NULL. */
static const char *row_problem(const moba_params *p, const int32_t *row,
                               int32_t b, int32_t nb)
{
    int32_t elig = p->causal ? b + 1 : nb;
    int32_t want = p->top_k < elig ? p->top_k : elig;
    int own = 0;
    for (int32_t i = 0; i < p->top_k; i++) {
        int32_t j = row[i];
        if (i >= want) {
            if (j != -1) return "entries past min(top_k, eligible) must be -1";
            continue;
        }
        if (j < 0) return "fewer than min(top_k, eligible) blocks";
        if (j >= nb) return "block beyond the sequence";
        if (p->causal && j > b) return "future block";
        if (i > 0 && row[i - 1] >= j) return "not strictly ascending (or duplicate)";
        own |= j == b;
    }
    return own ? NULL : "own block missing";
}

int conf_check_selection_valid(const char *name, const moba_params *p,
                               const int32_t *cu, int32_t batch,
                               const int32_t *sel)
{
    const int32_t Hq = p->num_q_heads, K = p->top_k, S = p->block_size;
    int bad = 0;
    for (int32_t s = 0; s < batch; s++) {
        int32_t len = cu[s + 1] - cu[s], nb = nblocks(len, S);
        for (int32_t t = 0; t < len; t++)
            for (int32_t h = 0; h < Hq; h++) {
                int64_t tok = (int64_t)cu[s] + t;
                const int32_t *row = sel + ((size_t)tok * Hq + h) * K;
                const char *why = row_problem(p, row, t / S, nb);
                if (!why) continue;
                if (bad++ < MAX_REPORTS) {
                    fprintf(stderr, "  [%s] invalid selection at token %lld "
                            "(seq %d pos %d, block %d of %d) head %d: %s: ",
                            name, (long long)tok, (int)s, (int)t, (int)(t / S),
                            (int)nb, (int)h, why);
                    print_row(row, K);
                    fprintf(stderr, "\n");
                }
            }
    }
    if (bad) fprintf(stderr, "  [%s] %d invalid selection rows\n", name, bad);
    return bad;
}

int conf_check_selection_ref(const char *name, const moba_params *p,
                             const int32_t *cu, int32_t batch,
                             const int32_t *sel, const int32_t *ref,
                             const double *margin, const double *mscale,
                             int strict)
{
    const int32_t Hq = p->num_q_heads, K = p->top_k;
    int64_t T = cu[batch];
    int bad = 0, ties = 0;
    for (int64_t tok = 0; tok < T; tok++)
        for (int32_t h = 0; h < Hq; h++) {
            size_t r = (size_t)tok * Hq + h;
            if (memcmp(sel + r * K, ref + r * K, sizeof(int32_t) * (size_t)K) == 0)
                continue;
            /* spec §7.1: a near-tie at the cut lets either block in */
            if (!strict && margin[r] < 1e-5 * (mscale[r] + 1.0)) {
                ties++;
                continue;
            }
            if (bad++ < MAX_REPORTS) {
                fprintf(stderr, "  [%s] selection of token %lld head %d: got ",
                        name, (long long)tok, (int)h);
                print_row(sel + r * K, K);
                fprintf(stderr, ", reference ");
                print_row(ref + r * K, K);
                fprintf(stderr, " (reference margin %.3g at |s| %.3g)\n",
                        margin[r], mscale[r]);
            }
        }
    if (bad)
        fprintf(stderr, "  [%s] %d rows differ from the reference selection "
                "(%d near-tie rows accepted)\n", name, bad, ties);
    return bad;
}

static double load(const void *x, moba_dtype dt, size_t i)
{
    float f;
    moba_convert(&f, MOBA_F32, (const char *)x + i * moba_dtype_size(dt), dt, 1);
    return (double)f;
}

int conf_check_written(const char *name, const char *what, const void *x,
                       size_t n, moba_dtype dt)
{
    int bad = 0;
    size_t first = 0;
    for (size_t i = 0; i < n; i++)
        if (isnan(load(x, dt, i)) && bad++ == 0) first = i;
    if (bad)
        fprintf(stderr, "  [%s] %s: %d of %zu elements still NaN (not written), "
                "first at element %zu\n", name, what, bad, n, first);
    return bad;
}

int conf_compare(const char *name, const char *what, const void *got,
                 moba_dtype dt, const double *ref, int64_t rows, int32_t heads,
                 int32_t dim, double atol, double rtol)
{
    size_t n = (size_t)rows * (size_t)heads * (size_t)dim;
    int bad = 0;
    double worst = -1.0, worst_ratio = 0.0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double g = load(got, dt, i), e = fabs(g - ref[i]);
        double bound = atol + rtol * fabs(ref[i]);
        if (!(e <= bound)) bad++; /* NaN fails too */
        double ratio = isnan(e) ? INFINITY : e / bound;
        if (worst < 0.0 || ratio > worst_ratio) {
            worst_ratio = ratio;
            worst = e;
            wi = i;
        }
    }
    if (bad) {
        size_t dd = wi % (size_t)dim, hh = (wi / (size_t)dim) % (size_t)heads;
        size_t tt = wi / ((size_t)dim * (size_t)heads);
        fprintf(stderr, "  [%s] %s: %d of %zu elements out of tolerance "
                "(atol %g, rtol %g); worst at token %zu head %zu dim %zu: "
                "got %.9g, reference %.9g, |err| %.3g\n",
                name, what, bad, n, atol, rtol, tt, hh, dd, load(got, dt, wi),
                ref[wi], worst);
    }
    return bad;
}
