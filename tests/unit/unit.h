/* Unit tests of the core's internals (moba_common) and of the reference. */
#ifndef MOBA_TESTS_UNIT_H
#define MOBA_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

void test_rank_rule(void **state);
void test_topk_push(void **state);
void test_gate_write_row(void **state);
void test_gate_count(void **state);
void test_schedule_tiles(void **state);
void test_schedule_kv_lists(void **state);
void test_f16_exhaustive(void **state);
void test_f16_rounding(void **state);
void test_bf16_rounding(void **state);
void test_convert(void **state);
void test_dtype_parse(void **state);
void test_status_strings(void **state);
void test_reference_hand(void **state);
void test_reference_rejects(void **state);
void test_run_bounds(void **state);
void test_unused_slots(void **state);

#endif
