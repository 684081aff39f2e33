/* relay/buckets.c: bounded token buckets by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/buckets.h"
#include "kollega/crypto.h"
#include "kollega/err.h"

#define NOW 1700000000000ull

static void test_buckets_bounded_and_refilled(void **state)
{
    (void)state;
    assert_int_equal(kl_crypto_init(), 0);
    kl_buckets_t *t = NULL;
    assert_int_equal(kl_buckets_new(&t, 0, 1, 1000), KL_EINVAL);
    assert_int_equal(kl_buckets_new(&t, 2, 2, 1000), 0);
    assert_int_equal(kl_buckets_take(t, "a", 1, NOW), 1);
    assert_int_equal(kl_buckets_take(t, "a", 1, NOW), 1);
    assert_int_equal(kl_buckets_take(t, "a", 1, NOW), 0);
    /* Half a window gives back one token of two. */
    assert_int_equal(kl_buckets_take(t, "a", 1, NOW + 500), 1);
    assert_int_equal(kl_buckets_take(t, "a", 1, NOW + 500), 0);
    /* A clock stepping back refills nothing. */
    assert_int_equal(kl_buckets_take(t, "a", 1, NOW), 0);
    /* Two more names evict "a", the least recently used: it starts full. */
    assert_int_equal(kl_buckets_take(t, "b", 1, NOW), 1);
    assert_int_equal(kl_buckets_take(t, "c", 1, NOW), 1);
    assert_int_equal(kl_buckets_take(t, "a", 1, NOW), 1);
    assert_int_equal(kl_buckets_take(t, "a", 1, NOW), 1);
    kl_buckets_free(t);
}

/* A reload lowers the rate: a bucket holding more than the new per keeps
 * only per, and refills at the new rate; raising it refills to the new
 * per. */
static void test_buckets_new_rate(void **state)
{
    (void)state;
    assert_int_equal(kl_crypto_init(), 0);
    kl_buckets_t *t = NULL;
    assert_int_equal(kl_buckets_new(&t, 4, 10, 1000), 0);
    assert_int_equal(kl_buckets_take(t, "a", 1, NOW), 1); /* 9 left */
    assert_int_equal(kl_buckets_set_rate(t, 0, 1000), KL_EINVAL);
    assert_int_equal(kl_buckets_set_rate(t, 2, 1000), 0);
    assert_int_equal(kl_buckets_take(t, "a", 1, NOW), 1);
    assert_int_equal(kl_buckets_take(t, "a", 1, NOW), 1);
    assert_int_equal(kl_buckets_take(t, "a", 1, NOW), 0);
    /* Half a window at 2 per window: one token. */
    assert_int_equal(kl_buckets_take(t, "a", 1, NOW + 500), 1);
    assert_int_equal(kl_buckets_take(t, "a", 1, NOW + 500), 0);
    assert_int_equal(kl_buckets_set_rate(t, 6, 1000), 0);
    int n = 0;
    while (kl_buckets_take(t, "a", 1, NOW + 5000))
        n++;
    assert_int_equal(n, 6);
    kl_buckets_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_bounded_and_refilled),
        cmocka_unit_test(test_buckets_new_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
