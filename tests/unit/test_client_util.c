/* client/util.c: reading a message text from a stream (send -, channel
 * post -). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/err.h"
#include "util.h"

#define MAX 10

/* kl_read_text over the len bytes of in. */
static int read_from(const char *in, size_t len, char **out, size_t *n)
{
    FILE *f = fmemopen((void *)in, len, "r");
    assert_non_null(f);
    int r = kl_read_text(f, MAX, out, n);
    fclose(f);
    return r;
}

static void test_read_text_drops_one_line_ending(void **state)
{
    (void)state;
    char *t = NULL;
    size_t n = 0;
    assert_int_equal(read_from("hei\n", 4, &t, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(t, "hei"); /* NUL-terminated */
    free(t);
    assert_int_equal(read_from("hei\r\n", 5, &t, &n), 0);
    assert_string_equal(t, "hei");
    free(t);
    assert_int_equal(read_from("to\n\nlinjer\n\n", 12, &t, &n), 0);
    assert_string_equal(t, "to\n\nlinjer\n");
    free(t);
    assert_int_equal(read_from("", 0, &t, &n), 0);
    assert_int_equal(n, 0);
    assert_string_equal(t, "");
    free(t);
}

static void test_read_text_too_long_is_over_max(void **state)
{
    (void)state;
    char *t = NULL;
    size_t n = 0;
    /* Exactly max, with a line ending: fits. */
    assert_int_equal(read_from("0123456789\r\n", 12, &t, &n), 0);
    assert_int_equal(n, MAX);
    free(t);
    /* max + 1: over. */
    assert_int_equal(read_from("0123456789a", 11, &t, &n), 0);
    assert_true(n > MAX);
    free(t);
    /* max, a line ending, and more: over, although dropping the ending of
     * what was read could have made it fit. */
    assert_int_equal(read_from("0123456789\r\nmore", 16, &t, &n), 0);
    assert_true(n > MAX);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_text_drops_one_line_ending),
        cmocka_unit_test(test_read_text_too_long_is_over_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
