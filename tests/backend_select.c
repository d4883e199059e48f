/* Backend choice by name and by MOBA_BACKEND, and the discovery API.  The
 * registry reads MOBA_BACKEND at each context creation, so setenv between
 * calls is enough. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "moba/moba.h"

static void create_from_env(const char *value, moba_status want,
                            const char *want_backend)
{
    moba_context *c = NULL;
    if (value)
        setenv("MOBA_BACKEND", value, 1);
    else
        unsetenv("MOBA_BACKEND");
    moba_status st = moba_context_create(&c, NULL);
    print_message("MOBA_BACKEND=%s -> %s %s\n", value ? value : "(unset)",
                  moba_status_string(st), st ? moba_last_error() : moba_context_backend(c));
    assert_int_equal(st, want);
    if (st == MOBA_OK) {
        assert_non_null(c);
        if (want_backend) assert_string_equal(moba_context_backend(c), want_backend);
    } else {
        assert_null(c);
        assert_true(moba_last_error()[0] != '\0');
    }
    moba_context_destroy(c);
    unsetenv("MOBA_BACKEND");
}

/* Whether backend `name` is listed as available. */
static int available(const char *name)
{
    int n = 0;
    assert_int_equal(moba_backend_count(&n), MOBA_OK);
    for (int i = 0; i < n; i++) {
        moba_backend_info info;
        assert_int_equal(moba_backend_info_get(i, &info), MOBA_OK);
        if (strcmp(info.name, name) == 0) return info.available;
    }
    return 0;
}

static void test_env_cpu(void **state)
{
    (void)state;
    create_from_env("cpu", MOBA_OK, "cpu");
    create_from_env("cpu:0", MOBA_OK, "cpu");
}

static void test_env_auto(void **state)
{
    (void)state;
    moba_context *c = NULL;
    setenv("MOBA_BACKEND", "auto", 1);
    assert_int_equal(moba_context_create(&c, NULL), MOBA_OK);
    assert_true(available(moba_context_backend(c)));
    moba_context_destroy(c);
    unsetenv("MOBA_BACKEND");
    assert_int_equal(moba_context_create(&c, NULL), MOBA_OK); /* unset = auto */
    assert_true(available(moba_context_backend(c)));
    moba_context_destroy(c);
    setenv("MOBA_BACKEND", "", 1); /* empty = auto */
    assert_int_equal(moba_context_create(&c, NULL), MOBA_OK);
    moba_context_destroy(c);
    unsetenv("MOBA_BACKEND");
}

static void test_env_bogus(void **state)
{
    (void)state;
    create_from_env("bogus", MOBA_ERR_BACKEND_UNAVAILABLE, NULL);
    setenv("MOBA_BACKEND", "bogus", 1);
    moba_context *c = NULL;
    assert_int_equal(moba_context_create(&c, NULL), MOBA_ERR_BACKEND_UNAVAILABLE);
    /* the message names the culprit and lists what is available */
    assert_non_null(strstr(moba_last_error(), "bogus"));
    assert_non_null(strstr(moba_last_error(), "cpu"));
    unsetenv("MOBA_BACKEND");
    create_from_env("cpu:7", MOBA_ERR_BACKEND_UNAVAILABLE, NULL);
    create_from_env("cpu:x", MOBA_ERR_INVALID_ARGUMENT, NULL);
    create_from_env("cpu:", MOBA_ERR_INVALID_ARGUMENT, NULL);
}

static void test_by_name(void **state)
{
    (void)state;
    moba_context *c = NULL;
    assert_int_equal(moba_context_create(&c, "cpu"), MOBA_OK);
    assert_string_equal(moba_context_backend(c), "cpu");
    assert_int_equal(moba_context_device(c), 0);
    /* the name wins over the environment */
    setenv("MOBA_BACKEND", "bogus", 1);
    moba_context *d = NULL;
    assert_int_equal(moba_context_create(&d, "cpu"), MOBA_OK);
    moba_context_destroy(d);
    unsetenv("MOBA_BACKEND");
    assert_int_equal(moba_context_create(&d, "cpu:7"), MOBA_ERR_BACKEND_UNAVAILABLE);
    assert_null(d);
    assert_int_equal(moba_context_create(&d, "cpu:x"), MOBA_ERR_INVALID_ARGUMENT);
    assert_int_equal(moba_context_create(&d, "nosuch"), MOBA_ERR_BACKEND_UNAVAILABLE);
    assert_non_null(strstr(moba_last_error(), "cpu"));
    /* CPU context settings */
    int n = 0;
    assert_int_equal(moba_context_set_num_threads(c, 3), MOBA_OK);
    assert_int_equal(moba_context_get_num_threads(c, &n), MOBA_OK);
    assert_int_equal(n, 3);
    assert_int_equal(moba_context_set_num_threads(c, 0), MOBA_OK);
    assert_int_equal(moba_context_get_num_threads(c, &n), MOBA_OK);
    assert_true(n >= 1);
    assert_int_equal(moba_context_set_num_threads(c, -1), MOBA_ERR_INVALID_ARGUMENT);
    assert_int_equal(moba_context_set_stream(c, NULL), MOBA_OK);
    assert_int_equal(moba_context_set_stream(c, &n), MOBA_ERR_UNSUPPORTED);
    assert_int_equal(moba_context_synchronize(c), MOBA_OK);
    moba_context_destroy(c);
    moba_context_destroy(NULL);
}

static void test_discovery(void **state)
{
    (void)state;
    int n = 0, found_cpu = 0;
    assert_int_equal(moba_backend_count(&n), MOBA_OK);
    assert_true(n >= 4); /* cpu + the known module names */
    for (int i = 0; i < n; i++) {
        moba_backend_info info;
        assert_int_equal(moba_backend_info_get(i, &info), MOBA_OK);
        print_message("backend %s: available %d, %d device(s): %s\n", info.name,
                      info.available, info.device_count, info.detail);
        assert_true(info.name[0] != '\0');
        assert_true(info.detail[0] != '\0'); /* where from, or why not */
        for (int j = 0; j < i; j++) {
            moba_backend_info other;
            assert_int_equal(moba_backend_info_get(j, &other), MOBA_OK);
            assert_string_not_equal(info.name, other.name);
        }
        if (!info.available) continue;
        assert_true(info.device_count >= 1);
        for (int d = 0; d < info.device_count; d++) {
            moba_device_info dev;
            assert_int_equal(moba_device_info_get(info.name, d, &dev), MOBA_OK);
            assert_true(dev.name[0] != '\0');
            assert_true(dev.dtypes & MOBA_DTYPE_BIT(MOBA_F32));
            assert_in_range(dev.num_head_dims, 0, MOBA_MAX_HEAD_DIMS);
            for (int h = 1; h < dev.num_head_dims; h++)
                assert_true(dev.head_dims[h - 1] < dev.head_dims[h]);
            assert_true(dev.num_head_dims > 0 || dev.head_dim_max >= 1);
        }
        assert_int_equal(moba_device_info_get(info.name, info.device_count, &(moba_device_info){0}),
                         MOBA_ERR_INVALID_ARGUMENT);
        if (strcmp(info.name, "cpu") == 0) {
            found_cpu = 1;
            assert_int_equal(info.device_count, 1);
        }
    }
    assert_true(found_cpu);
    moba_backend_info info;
    assert_int_equal(moba_backend_info_get(-1, &info), MOBA_ERR_INVALID_ARGUMENT);
    assert_int_equal(moba_backend_info_get(n, &info), MOBA_ERR_INVALID_ARGUMENT);
    moba_device_info dev;
    assert_int_equal(moba_device_info_get("cpu", 0, &dev), MOBA_OK);
    assert_true(dev.is_cpu);
    assert_int_equal(dev.dtypes, MOBA_DTYPE_BIT(MOBA_F32) | MOBA_DTYPE_BIT(MOBA_F16) |
                                     MOBA_DTYPE_BIT(MOBA_BF16));
    assert_true(dev.num_head_dims == 0 ? dev.head_dim_max >= 256 : 1);
    assert_true(dev.compute_units >= 1);
    assert_int_equal(moba_device_info_get("cpu", -1, &dev), MOBA_ERR_INVALID_ARGUMENT);
    assert_int_equal(moba_device_info_get("nosuch", 0, &dev), MOBA_ERR_BACKEND_UNAVAILABLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_cpu),
        cmocka_unit_test(test_env_auto),
        cmocka_unit_test(test_env_bogus),
        cmocka_unit_test(test_by_name),
        cmocka_unit_test(test_discovery),
    };
    return cmocka_run_group_tests_name("backend-select", tests, NULL, NULL) ? 1 : 0;
}
