/* Minimal NumPy .npy (format 1.0/2.0, little-endian, C order) reader and
 * writer for float32/float16/int32 arrays: what moba-run and the golden
 * tests exchange with NumPy. */
#ifndef MOBA_TOOLS_NPY_H
#define MOBA_TOOLS_NPY_H

#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_DIMS 8

typedef struct npy_array {
    char dtype[8];        /* "<f4", "<i4", "<f2", ... as in the header */
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    size_t count;         /* product of shape */
    size_t elem_size;
    void *data;           /* malloc'ed */
} npy_array;

/* Returns 0 on success; otherwise fills err (one line, names the file and
 * what is wrong) and returns -1. */
int npy_read(const char *path, npy_array *arr, char *err, size_t errsize);
int npy_write(const char *path, const char *dtype, int ndim,
              const int64_t *shape, const void *data, char *err,
              size_t errsize);
void npy_free(npy_array *arr);

#endif
