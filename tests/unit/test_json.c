/* The JSON writer behind every --json output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cmdline/json.h"

static void test_object_with_members(void **state)
{
    (void)state;
    kl_json_t j;
    kl_json_init(&j);
    kl_json_obj_begin(&j, NULL);
    kl_json_str(&j, "address", "kari@oslo.example.org");
    kl_json_int(&j, "n", -3);
    kl_json_uint(&j, "seq", 18446744073709551615ULL);
    kl_json_bool(&j, "verified", 0);
    kl_json_str(&j, "missing", NULL);
    kl_json_arr_begin(&j, "list");
    kl_json_int(&j, NULL, 1);
    kl_json_int(&j, NULL, 2);
    kl_json_obj_begin(&j, NULL);
    kl_json_obj_end(&j);
    kl_json_arr_end(&j);
    kl_json_obj_end(&j);
    assert_string_equal(kl_json_cstr(&j),
                        "{\"address\":\"kari@oslo.example.org\",\"n\":-3,"
                        "\"seq\":18446744073709551615,\"verified\":false,\"missing\":null,"
                        "\"list\":[1,2,{}]}");
    kl_json_free(&j);
}

static void test_escapes_control_and_quotes(void **state)
{
    (void)state;
    kl_json_t j;
    kl_json_init(&j);
    kl_json_str(&j, NULL, "a\"b\\c\nd\te\x01\x7f æøå");
    assert_string_equal(kl_json_cstr(&j), "\"a\\\"b\\\\c\\nd\\te\\u0001\\u007f æøå\"");
    kl_json_free(&j);
}

static void test_strn_keeps_embedded_nul_out(void **state)
{
    (void)state;
    kl_json_t j;
    kl_json_init(&j);
    kl_json_strn(&j, NULL, "ab\0cd", 5);
    assert_string_equal(kl_json_cstr(&j), "\"ab\\u0000cd\"");
    kl_json_free(&j);
}

static void test_depth_limit_fails_cleanly(void **state)
{
    (void)state;
    kl_json_t j;
    kl_json_init(&j);
    for (int i = 0; i < KL_JSON_DEPTH + 2; i++)
        kl_json_arr_begin(&j, NULL);
    assert_null(kl_json_cstr(&j));
    kl_json_free(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_object_with_members),
        cmocka_unit_test(test_escapes_control_and_quotes),
        cmocka_unit_test(test_strn_keeps_embedded_nul_out),
        cmocka_unit_test(test_depth_limit_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
