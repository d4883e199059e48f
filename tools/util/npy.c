#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t n, const char *path, const char *what)
{
    snprintf(err, n, "%s: %s", path, what);
    return -1;
}

/* Finds 'key': <value> in the header dict and returns a pointer to value. */
static const char *dict_value(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p) return NULL;
    p = strchr(p + strlen(pat), ':');
    if (!p) return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

int npy_read(const char *path, npy_array *arr, char *err, size_t errsize)
{
    memset(arr, 0, sizeof *arr);
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errsize, path, "cannot open file");
    unsigned char pre[12];
    int rc = -1;
    char *hdr = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        fail(err, errsize, path, "not a .npy file (bad magic)");
        goto out;
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | ((size_t)pre[9] << 8);
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            fail(err, errsize, path, "truncated header");
            goto out;
        }
        hlen = (size_t)pre[8] | ((size_t)pre[9] << 8) | ((size_t)pre[10] << 16) |
               ((size_t)pre[11] << 24);
    } else {
        fail(err, errsize, path, "unsupported .npy version");
        goto out;
    }
    if (hlen > (1u << 20)) {
        fail(err, errsize, path, "header too large");
        goto out;
    }
    hdr = malloc(hlen + 1);
    if (!hdr || fread(hdr, 1, hlen, f) != hlen) {
        fail(err, errsize, path, "truncated header");
        goto out;
    }
    hdr[hlen] = '\0';
    const char *descr = dict_value(hdr, "descr");
    const char *fo = dict_value(hdr, "fortran_order");
    const char *shape = dict_value(hdr, "shape");
    if (!descr || !fo || !shape || *descr != '\'' || *shape != '(') {
        fail(err, errsize, path, "malformed header");
        goto out;
    }
    if (strncmp(fo, "False", 5) != 0) {
        fail(err, errsize, path, "Fortran-order arrays are not supported");
        goto out;
    }
    size_t dl = strcspn(descr + 1, "'");
    if (dl == 0 || dl >= sizeof arr->dtype) {
        fail(err, errsize, path, "unsupported dtype");
        goto out;
    }
    memcpy(arr->dtype, descr + 1, dl);
    arr->dtype[dl] = '\0';
    if (!strcmp(arr->dtype, "<f4") || !strcmp(arr->dtype, "<i4"))
        arr->elem_size = 4;
    else if (!strcmp(arr->dtype, "<f2") || !strcmp(arr->dtype, "<i2") ||
             !strcmp(arr->dtype, "<u2"))
        arr->elem_size = 2;
    else if (!strcmp(arr->dtype, "<f8") || !strcmp(arr->dtype, "<i8"))
        arr->elem_size = 8;
    else {
        char msg[64];
        snprintf(msg, sizeof msg, "unsupported dtype '%s'", arr->dtype);
        fail(err, errsize, path, msg);
        goto out;
    }
    const char *p = shape + 1;
    arr->count = 1;
    while (*p && *p != ')') {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || arr->ndim >= NPY_MAX_DIMS) {
            fail(err, errsize, path, "malformed shape");
            goto out;
        }
        arr->shape[arr->ndim++] = v;
        if (v && arr->count > ((size_t)1 << 40) / (size_t)v) {
            fail(err, errsize, path, "array too large");
            goto out;
        }
        arr->count *= (size_t)v;
        p = end;
    }
    size_t bytes = arr->count * arr->elem_size;
    arr->data = malloc(bytes ? bytes : 1);
    if (!arr->data) {
        fail(err, errsize, path, "out of memory");
        goto out;
    }
    if (fread(arr->data, 1, bytes, f) != bytes) {
        fail(err, errsize, path, "file shorter than its shape says");
        goto out;
    }
    rc = 0;
out:
    free(hdr);
    fclose(f);
    if (rc) npy_free(arr);
    return rc;
}

int npy_write(const char *path, const char *dtype, int ndim,
              const int64_t *shape, const void *data, char *err,
              size_t errsize)
{
    size_t es = dtype[2] == '2' ? 2 : dtype[2] == '8' ? 8 : 4;
    char dict[256];
    int n = snprintf(dict, sizeof dict,
                     "{'descr': '%s', 'fortran_order': False, 'shape': (", dtype);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld%s",
                      (long long)shape[i], ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
        count *= (size_t)shape[i];
    }
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    /* pad so that magic(6)+ver(2)+len(2)+header is a multiple of 64 */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return fail(err, errsize, path, "cannot create file");
    size_t hlen = (size_t)n + pad + 1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)n, f) == (size_t)n;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && fwrite(data, es, count, f) == count;
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : fail(err, errsize, path, "write failed");
}

void npy_free(npy_array *arr)
{
    free(arr->data);
    arr->data = NULL;
}
