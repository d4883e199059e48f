/* moba_status_string covers every code with distinct text. */
#include <stdio.h>
#include <string.h>

#include "moba/moba.h"
#include "unit.h"

void test_status_strings(void **state)
{
    (void)state;
    const char *seen[MOBA_ERR_INTERNAL + 1];
    for (int s = MOBA_OK; s <= MOBA_ERR_INTERNAL; s++) {
        const char *t = moba_status_string((moba_status)s);
        assert_non_null(t);
        assert_true(t[0] != '\0');
        assert_string_not_equal(t, "unknown status");
        for (int j = 0; j < s; j++) assert_string_not_equal(t, seen[j]);
        seen[s] = t;
    }
    assert_string_equal(moba_status_string((moba_status)(MOBA_ERR_INTERNAL + 1)),
                        "unknown status");
    assert_string_equal(moba_status_string((moba_status)-1), "unknown status");
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", MOBA_VERSION_MAJOR, MOBA_VERSION_MINOR,
             MOBA_VERSION_PATCH);
    assert_string_equal(moba_version(), v);
}
