#include "unit.h"

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rank_rule),
        cmocka_unit_test(test_topk_push),
        cmocka_unit_test(test_gate_write_row),
        cmocka_unit_test(test_gate_count),
        cmocka_unit_test(test_schedule_tiles),
        cmocka_unit_test(test_schedule_kv_lists),
        cmocka_unit_test(test_f16_exhaustive),
        cmocka_unit_test(test_f16_rounding),
        cmocka_unit_test(test_bf16_rounding),
        cmocka_unit_test(test_convert),
        cmocka_unit_test(test_dtype_parse),
        cmocka_unit_test(test_status_strings),
        cmocka_unit_test(test_reference_hand),
        cmocka_unit_test(test_reference_rejects),
        cmocka_unit_test(test_run_bounds),
        cmocka_unit_test(test_unused_slots),
    };
    return cmocka_run_group_tests_name("unit-core", tests, NULL, NULL) ? 1 : 0;
}
