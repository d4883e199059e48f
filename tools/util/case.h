/* A MoBA case directory (spec §8): q.npy, k.npy, v.npy (float32 [T,H,D]),
 * cu_seqlens.npy (int32 [B+1]), meta.json, and optionally o.npy. */
#ifndef MOBA_TOOLS_CASE_H
#define MOBA_TOOLS_CASE_H

#include <stddef.h>

#include "moba/moba.h"
#include "npy.h"

typedef struct moba_case {
    moba_params params;   /* from meta.json; dtype = meta's "dtype" or f32 */
    int has_dtype;        /* meta.json named a dtype */
    int32_t batch;
    int64_t tokens;
    npy_array q, k, v, cu, o; /* o.data is NULL if o.npy is absent */
} moba_case;

/* 0 on success; else one line in err naming the file and the problem. */
int moba_case_load(const char *dir, moba_case *c, char *err, size_t errsize);
void moba_case_free(moba_case *c);

#endif
