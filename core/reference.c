/*
 * Double-precision reference of spec §3-§4, written for clarity.  The tests
 * and tools check every backend against it; no backend calls it.
 */
#include <math.h>
#include <stdlib.h>

#include "dtype.h"
#include "gate.h"
#include "internal.h"
#include "moba/reference.h"

static double ld(const void *base, moba_dtype dt, size_t i)
{
    return (double)moba_load_f32(base, dt, i);
}

/* Centroids of one sequence: c[(j * Hk + kh) * D + d], the block mean
 * rounded to the storage dtype (through f32, as a backend rounds it). */
static void seq_centroids(const moba_problem *pb, int32_t s, const void *k,
                          double *c)
{
    const moba_params *p = &pb->p;
    const int32_t Hk = p->num_kv_heads, D = p->head_dim, S = p->block_size;
    const moba_seq *sq = &pb->seqs[s];
    for (int32_t j = 0; j < sq->nb; j++) {
        int32_t u0 = j * S, u1 = u0 + S < sq->len ? u0 + S : sq->len;
        for (int32_t kh = 0; kh < Hk; kh++)
            for (int32_t d = 0; d < D; d++) {
                double sum = 0.0;
                for (int32_t u = u0; u < u1; u++)
                    sum += ld(k, p->dtype,
                              ((size_t)(sq->start + u) * Hk + kh) * D + d);
                float mean = (float)(sum / (u1 - u0));
                c[((size_t)j * Hk + kh) * D + d] =
                    (double)moba_round_to(p->dtype, mean);
            }
    }
}

moba_status moba_reference_select(const moba_params *params,
                                  const int32_t *cu_seqlens, int32_t batch,
                                  const void *q, const void *k, int32_t *sel,
                                  double *margin, double *margin_scale)
{
    moba_problem pb;
    int32_t *cu = NULL;
    moba_seq *seqs = NULL;
    moba_status st = moba_problem_init(&pb, params, cu_seqlens, batch, &cu, &seqs);
    if (st) return st;
    if (!q || !k || !sel) {
        free(cu);
        free(seqs);
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_reference_select: %s is NULL",
                              !q ? "q" : !k ? "k" : "sel");
    }
    const moba_params *p = &pb.p;
    const int32_t Hq = p->num_q_heads, Hk = p->num_kv_heads, D = p->head_dim;
    const int32_t K = p->top_k;
    double *c = malloc(sizeof *c * (size_t)pb.max_blocks * Hk * D + 1);
    double *score = malloc(sizeof *score * (size_t)pb.max_blocks + 1);
    int32_t *idx = malloc(sizeof *idx * (size_t)K);
    double *val = malloc(sizeof *val * (size_t)K);
    char *chosen = malloc((size_t)pb.max_blocks + 1);
    if (!c || !score || !idx || !val || !chosen) {
        st = moba_set_error(MOBA_ERR_OUT_OF_MEMORY,
                            "moba_reference_select: out of memory");
        goto done;
    }
    for (int32_t s = 0; s < pb.batch; s++) {
        const moba_seq *sq = &pb.seqs[s];
        seq_centroids(&pb, s, k, c);
        for (int32_t t = 0; t < sq->len; t++) {
            int32_t b = t / p->block_size;
            int32_t nelig = p->causal ? b : sq->nb; /* candidates j < nelig, j != b */
            size_t tok = (size_t)(sq->start + t);
            for (int32_t h = 0; h < Hq; h++) {
                int32_t kh = h / pb.group;
                int32_t n = 0;
                for (int32_t j = 0; j < nelig; j++) {
                    chosen[j] = 0;
                    if (j == b) continue;
                    double sc = 0.0;
                    for (int32_t d = 0; d < D; d++)
                        sc += ld(q, p->dtype, (tok * Hq + h) * D + d) *
                              c[((size_t)j * Hk + kh) * D + d];
                    score[j] = sc;
                    moba_topk_push(idx, val, &n, K - 1, j, sc);
                }
                moba_gate_write_row(sel + (tok * Hq + h) * K, K, idx, n, b);
                if (margin) {
                    double m = INFINITY, mag = 0.0;
                    for (int32_t i = 0; i < n; i++) chosen[idx[i]] = 1;
                    int32_t best = -1;
                    for (int32_t j = 0; j < nelig; j++)
                        if (j != b && !chosen[j] &&
                            (best < 0 ||
                             moba_gate_better(score[j], j, score[best], best)))
                            best = j;
                    if (n > 0) mag = fabs(val[n - 1]);
                    if (best >= 0 && n > 0 && !isnan(score[best]) &&
                        !isnan(val[n - 1]))
                        m = val[n - 1] - score[best];
                    margin[tok * Hq + h] = m;
                    if (margin_scale) margin_scale[tok * Hq + h] = mag;
                }
            }
        }
    }
done:
    free(c);
    free(score);
    free(idx);
    free(val);
    free(chosen);
    free(cu);
    free(seqs);
    return st;
}

static moba_status check_row(const moba_problem *pb, const int32_t *row,
                             int32_t nb, int32_t b, int64_t tok, int32_t h)
{
    const moba_params *p = &pb->p;
    int32_t want = moba_gate_count(p, b, nb), have = 0, own = 0;
    for (int32_t i = 0; i < p->top_k; i++) {
        int32_t j = row[i];
        /* any bad entry, including one past `want`, rejects the row */
        if (j < 0) {
            if (j != -1 || i < want) {
                have = -1;
                break;
            }
            continue;
        }
        if (i >= want || j >= nb || (p->causal && j > b) ||
            (i > 0 && row[i - 1] >= j)) {
            have = -1;
            break;
        }
        own |= j == b;
        have++;
    }
    if (have == want && own) return MOBA_OK;
    return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                          "selection of token %lld head %d is invalid: it must "
                          "hold %d ascending distinct blocks of [0, %d) "
                          "including its own block %d%s, then -1",
                          (long long)tok, (int)h, (int)want,
                          (int)(p->causal ? b + 1 : nb), (int)b,
                          p->causal ? " and no future block" : "");
}

moba_status moba_reference_attend(const moba_params *params,
                                  const int32_t *cu_seqlens, int32_t batch,
                                  const void *q, const void *k, const void *v,
                                  const int32_t *sel, double *out, double *lse)
{
    moba_problem pb;
    int32_t *cu = NULL;
    moba_seq *seqs = NULL;
    moba_status st = moba_problem_init(&pb, params, cu_seqlens, batch, &cu, &seqs);
    if (st) return st;
    if (!q || !k || !v || !sel || !out) {
        free(cu);
        free(seqs);
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_reference_attend: %s is NULL",
                              !q ? "q" : !k ? "k" : !v ? "v" : !sel ? "sel" : "out");
    }
    const moba_params *p = &pb.p;
    const int32_t Hq = p->num_q_heads, Hk = p->num_kv_heads, D = p->head_dim;
    const int32_t S = p->block_size, K = p->top_k;
    const double scale = (double)p->softmax_scale;
    double *logit = malloc(sizeof *logit * ((size_t)pb.max_seqlen + 1));
    double *acc = malloc(sizeof *acc * (size_t)D);
    if (!logit || !acc) {
        st = moba_set_error(MOBA_ERR_OUT_OF_MEMORY,
                            "moba_reference_attend: out of memory");
        goto done;
    }
    for (int32_t s = 0; s < pb.batch && !st; s++) {
        const moba_seq *sq = &pb.seqs[s];
        for (int32_t t = 0; t < sq->len && !st; t++) {
            int32_t b = t / S;
            size_t tok = (size_t)(sq->start + t);
            for (int32_t h = 0; h < Hq; h++) {
                const int32_t *row = sel + (tok * Hq + h) * K;
                st = check_row(&pb, row, sq->nb, b, (int64_t)tok, h);
                if (st) break;
                int32_t kh = h / pb.group;
                /* Pass 1: logits of the attended keys and their maximum. */
                double mx = -INFINITY;
                int32_t n = 0;
                for (int32_t i = 0; i < K && row[i] >= 0; i++) {
                    int32_t u0 = row[i] * S;
                    int32_t u1 = u0 + S < sq->len ? u0 + S : sq->len;
                    if (p->causal && u1 > t + 1) u1 = t + 1;
                    for (int32_t u = u0; u < u1; u++) {
                        double dot = 0.0;
                        size_t ku = ((size_t)(sq->start + u) * Hk + kh) * D;
                        for (int32_t d = 0; d < D; d++)
                            dot += ld(q, p->dtype, (tok * Hq + h) * D + d) *
                                   ld(k, p->dtype, ku + d);
                        logit[n] = scale * dot;
                        if (logit[n] > mx) mx = logit[n];
                        n++;
                    }
                }
                /* Pass 2: softmax-weighted sum of values, same key order. */
                double l = 0.0;
                for (int32_t d = 0; d < D; d++) acc[d] = 0.0;
                n = 0;
                for (int32_t i = 0; i < K && row[i] >= 0; i++) {
                    int32_t u0 = row[i] * S;
                    int32_t u1 = u0 + S < sq->len ? u0 + S : sq->len;
                    if (p->causal && u1 > t + 1) u1 = t + 1;
                    for (int32_t u = u0; u < u1; u++) {
                        double w = exp(logit[n++] - mx);
                        size_t vu = ((size_t)(sq->start + u) * Hk + kh) * D;
                        l += w;
                        for (int32_t d = 0; d < D; d++)
                            acc[d] += w * ld(v, p->dtype, vu + d);
                    }
                }
                for (int32_t d = 0; d < D; d++)
                    out[(tok * Hq + h) * D + d] = acc[d] / l;
                if (lse) lse[tok * Hq + h] = mx + log(l);
            }
        }
    }
done:
    free(logit);
    free(acc);
    free(cu);
    free(seqs);
    return st;
}
