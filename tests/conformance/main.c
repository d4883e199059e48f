/*
 * conformance BACKEND [VECTORS_DIR]
 *
 * Exit status: 0 all passed, 1 a failure, 77 (meson's "skipped") when the
 * backend is absent here or refuses the requested variant (e.g. MOBA_CPU_ISA
 * names an ISA this CPU lacks).  An absent backend never passes.
 *
 * MOBA_TEST_SCALE (default 1, or 0.25 for OpenCL on a CPU device such as
 * PoCL) shrinks the larger cases.  MOBA_TEST_FILTER / MOBA_TEST_SKIP (cmocka
 * patterns with * and ?, e.g. "test_bad_*") run or skip some tests only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conformance.h"

const char *g_backend;
moba_context *g_ctx;
moba_device_info g_dev;
double g_scale = 1.0;
const char *g_vectors_dir;

#define MAX_NOTES 64
static char notes[MAX_NOTES][320];
static int num_notes;

void conf_note_unsupported(const char *what, const char *why)
{
    if (num_notes < MAX_NOTES)
        snprintf(notes[num_notes++], sizeof notes[0], "%s: %s", what, why);
}

int32_t conf_scaled(int32_t n, int32_t lo)
{
    int32_t s = (int32_t)(n * g_scale + 0.5);
    return s > lo ? s : lo;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s BACKEND [VECTORS_DIR]\n", argv[0]);
        return 1;
    }
    g_backend = argv[1];
    g_vectors_dir = argc > 2 ? argv[2] : getenv("MOBA_TEST_VECTORS");
    moba_status st = moba_context_create(&g_ctx, g_backend);
    if (st == MOBA_ERR_BACKEND_UNAVAILABLE || st == MOBA_ERR_UNSUPPORTED) {
        printf("SKIP: backend %s: %s: %s\n", g_backend, moba_status_string(st),
               moba_last_error());
        return 77;
    }
    if (st) {
        fprintf(stderr, "moba_context_create(%s): %s: %s\n", g_backend,
                moba_status_string(st), moba_last_error());
        return 1;
    }
    const char *be = moba_context_backend(g_ctx);
    if (!be || strncmp(be, g_backend, strcspn(g_backend, ":")) != 0) {
        fprintf(stderr, "asked for %s, got a context on %s\n", g_backend,
                be ? be : "(null)");
        moba_context_destroy(g_ctx);
        return 1;
    }
    st = moba_device_info_get(be, moba_context_device(g_ctx), &g_dev);
    if (st) {
        fprintf(stderr, "moba_device_info_get: %s\n", moba_last_error());
        moba_context_destroy(g_ctx);
        return 1;
    }
    const char *scale = getenv("MOBA_TEST_SCALE");
    if (scale && *scale)
        g_scale = strtod(scale, NULL);
    else if (strcmp(be, "opencl") == 0 && g_dev.is_cpu)
        g_scale = 0.25;
    if (!(g_scale > 0.0 && g_scale <= 16.0)) g_scale = 1.0;
    printf("backend %s device %d: %s (%s; %s), scale %.2f\n", be,
           moba_context_device(g_ctx), g_dev.name, g_dev.vendor, g_dev.driver,
           g_scale);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_short),
        cmocka_unit_test(test_shapes_unaligned),
        cmocka_unit_test(test_shapes_block1),
        cmocka_unit_test(test_shapes_topk1),
        cmocka_unit_test(test_shapes_dense),
        cmocka_unit_test(test_shapes_empty_seqs),
        cmocka_unit_test(test_shapes_many_seqs),
        cmocka_unit_test(test_shapes_head_dims),
        cmocka_unit_test(test_shapes_head_dims_16bit),
        cmocka_unit_test(test_shapes_gqa),
        cmocka_unit_test(test_shapes_dtypes),
        cmocka_unit_test(test_shapes_noncausal),
        cmocka_unit_test(test_shapes_long_selection),
        cmocka_unit_test(test_shapes_long_blocks),
        cmocka_unit_test(test_shapes_many_tiles),
        cmocka_unit_test(test_shapes_offset),
        cmocka_unit_test(test_selection_random),
        cmocka_unit_test(test_selection_ties),
        cmocka_unit_test(test_selection_skewed),
        cmocka_unit_test(test_selection_nan),
        cmocka_unit_test(test_plan_reuse),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bad_null),
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_bad_seqlens),
        cmocka_unit_test(test_bad_overflow),
        cmocka_unit_test(test_bad_unsupported),
        cmocka_unit_test(test_bad_buffers),
        cmocka_unit_test(test_bad_wrong_context),
        cmocka_unit_test(test_bad_order),
        cmocka_unit_test(test_bad_backend),
        cmocka_unit_test(test_golden),
    };
    const char *filter = getenv("MOBA_TEST_FILTER"), *skip = getenv("MOBA_TEST_SKIP");
    if (filter && *filter) cmocka_set_test_filter(filter);
    if (skip && *skip) cmocka_set_skip_filter(skip);
    int failed = cmocka_run_group_tests_name(g_backend, tests, NULL, NULL);
    printf("summary for %s: %d failed test(s); %d feature(s) unsupported%s\n",
           g_backend, failed, num_notes, num_notes ? ":" : "");
    for (int i = 0; i < num_notes; i++) printf("  unsupported: %s\n", notes[i]);
    moba_context_destroy(g_ctx);
    return failed ? 1 : 0;
}
