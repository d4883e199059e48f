#include "case.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pointer to the value of "key" in a flat JSON object, or NULL. */
static const char *json_value(const char *js, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(js, pat);
    if (!p) return NULL;
    p = strchr(p + strlen(pat), ':');
    if (!p) return NULL;
    p++;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static int json_int(const char *js, const char *key, long *out)
{
    const char *p = json_value(js, key);
    if (!p) return -1;
    char *end;
    *out = strtol(p, &end, 10);
    return end == p ? -2 : 0;
}

static char *slurp(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}

static int need3(const npy_array *a, const char *name, int64_t T, int64_t H,
                 int64_t D, char *err, size_t n)
{
    if (strcmp(a->dtype, "<f4") != 0) {
        snprintf(err, n, "%s.npy: dtype %s, expected float32 (<f4)", name, a->dtype);
        return -1;
    }
    if (a->ndim != 3 || a->shape[0] != T || a->shape[1] != H || a->shape[2] != D) {
        snprintf(err, n, "%s.npy: shape (%lld,%lld,%lld) [ndim %d], expected "
                 "(%lld,%lld,%lld) from cu_seqlens and meta.json",
                 name, (long long)(a->ndim > 0 ? a->shape[0] : -1),
                 (long long)(a->ndim > 1 ? a->shape[1] : -1),
                 (long long)(a->ndim > 2 ? a->shape[2] : -1), a->ndim,
                 (long long)T, (long long)H, (long long)D);
        return -1;
    }
    return 0;
}

int moba_case_load(const char *dir, moba_case *c, char *err, size_t errsize)
{
    memset(c, 0, sizeof *c);
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    char *js = slurp(path, 1 << 16);
    if (!js) {
        snprintf(err, errsize, "%s: cannot read", path);
        return -1;
    }
    moba_params p = moba_params_default();
    long bs, tk, hq, hk, hd;
    int bad = 0;
    const char *missing = NULL;
    if (json_int(js, "block_size", &bs)) missing = "block_size";
    else if (json_int(js, "top_k", &tk)) missing = "top_k";
    else if (json_int(js, "num_q_heads", &hq)) missing = "num_q_heads";
    else if (json_int(js, "num_kv_heads", &hk)) missing = "num_kv_heads";
    else if (json_int(js, "head_dim", &hd)) missing = "head_dim";
    if (missing) {
        snprintf(err, errsize, "%s: missing or non-integer \"%s\"", path, missing);
        free(js);
        return -1;
    }
    p.block_size = (int32_t)bs;
    p.top_k = (int32_t)tk;
    p.num_q_heads = (int32_t)hq;
    p.num_kv_heads = (int32_t)hk;
    p.head_dim = (int32_t)hd;
    const char *sv = json_value(js, "softmax_scale");
    if (sv && strncmp(sv, "null", 4) != 0) {
        char *end;
        p.softmax_scale = strtof(sv, &end);
        if (end == sv) bad = 1;
    }
    const char *cv = json_value(js, "causal");
    if (cv) p.causal = (strncmp(cv, "true", 4) == 0 || strncmp(cv, "1", 1) == 0) ? 1
                     : (strncmp(cv, "false", 5) == 0 || strncmp(cv, "0", 1) == 0) ? 0 : -1;
    const char *dv = json_value(js, "dtype");
    if (dv && *dv == '"') {
        char name[16] = {0};
        size_t l = strcspn(dv + 1, "\"");
        if (l < sizeof name) memcpy(name, dv + 1, l);
        if (moba_dtype_parse(name, &p.dtype) != MOBA_OK) {
            snprintf(err, errsize, "%s: unknown dtype \"%s\"", path, name);
            free(js);
            return -1;
        }
        c->has_dtype = 1;
    }
    free(js);
    if (bad || p.causal < 0) {
        snprintf(err, errsize, "%s: malformed %s", path, bad ? "softmax_scale" : "causal");
        return -1;
    }
    if (bs < 1 || tk < 1 || hq < 1 || hk < 1 || hd < 1 || hq % hk) {
        snprintf(err, errsize, "%s: inconsistent meta (block_size %ld, top_k %ld, "
                 "num_q_heads %ld, num_kv_heads %ld, head_dim %ld)",
                 path, bs, tk, hq, hk, hd);
        return -1;
    }
    c->params = p;

    static const char *names[] = {"cu_seqlens", "q", "k", "v"};
    npy_array *arrs[] = {&c->cu, &c->q, &c->k, &c->v};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s.npy", dir, names[i]);
        if (npy_read(path, arrs[i], err, errsize)) goto fail;
    }
    if (strcmp(c->cu.dtype, "<i4") != 0 || c->cu.ndim != 1 || c->cu.count < 2) {
        snprintf(err, errsize, "%s/cu_seqlens.npy: expected a 1-D int32 array of "
                 "at least 2 entries (dtype %s, ndim %d)", dir, c->cu.dtype, c->cu.ndim);
        goto fail;
    }
    const int32_t *cu = c->cu.data;
    c->batch = (int32_t)(c->cu.count - 1);
    c->tokens = cu[c->batch];
    if (cu[0] != 0) {
        snprintf(err, errsize, "%s/cu_seqlens.npy: first entry %d, expected 0", dir, cu[0]);
        goto fail;
    }
    for (int32_t b = 0; b < c->batch; b++)
        if (cu[b + 1] < cu[b]) {
            snprintf(err, errsize, "%s/cu_seqlens.npy: decreases at index %d", dir, b + 1);
            goto fail;
        }
    if (need3(&c->q, "q", c->tokens, hq, hd, err, errsize) ||
        need3(&c->k, "k", c->tokens, hk, hd, err, errsize) ||
        need3(&c->v, "v", c->tokens, hk, hd, err, errsize))
        goto fail;
    snprintf(path, sizeof path, "%s/o.npy", dir);
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        if (npy_read(path, &c->o, err, errsize) ||
            need3(&c->o, "o", c->tokens, hq, hd, err, errsize))
            goto fail;
    }
    return 0;
fail:
    moba_case_free(c);
    return -1;
}

void moba_case_free(moba_case *c)
{
    npy_free(&c->q);
    npy_free(&c->k);
    npy_free(&c->v);
    npy_free(&c->cu);
    npy_free(&c->o);
}
