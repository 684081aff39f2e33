/* kollega-bench's latency histogram: quantiles within the bucket precision
 * (1/64), exact maximum, no overflow at the ends of the uint64 range.
 * The histogram is part of the tool, not of a library the unit tests link,
 * so its one source file is compiled in here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hist.h"

static kb_hist_t h;

static void assert_near(uint64_t got, double want)
{
    /* A reported value is the top of its bucket: never below the true
     * value, at most one bucket width (1/64 of it) above. */
    assert_true((double)got >= want * (1 - 1e-9));
    assert_true((double)got <= want * (1 + 1.0 / 64) + 1);
}

static void test_empty(void **state)
{
    (void)state;
    kb_hist_init(&h);
    assert_int_equal(kb_hist_quantile(&h, 0.5), 0);
    assert_int_equal(kb_hist_quantile(&h, 1.0), 0);
}

static void test_uniform(void **state)
{
    (void)state;
    kb_hist_init(&h);
    for (uint64_t v = 1; v <= 100000; v++)
        kb_hist_record(&h, v * 1000);
    assert_int_equal(h.count, 100000);
    assert_int_equal(h.max, 100000000);
    assert_int_equal(h.min, 1000);
    assert_near(kb_hist_quantile(&h, 0.50), 50000000);
    assert_near(kb_hist_quantile(&h, 0.90), 90000000);
    assert_near(kb_hist_quantile(&h, 0.99), 99000000);
    assert_int_equal(kb_hist_quantile(&h, 1.0), 100000000);
}

/* Small values are exact; the p99 of 99 fast samples and one slow one is
 * the fast value, and the slow one is the maximum. */
static void test_small_and_outlier(void **state)
{
    (void)state;
    kb_hist_init(&h);
    for (int i = 0; i < 99; i++)
        kb_hist_record(&h, 100);
    kb_hist_record(&h, 5000000000ull);
    assert_int_equal(kb_hist_quantile(&h, 0.50), 100);
    assert_int_equal(kb_hist_quantile(&h, 0.99), 100);
    assert_int_equal(kb_hist_quantile(&h, 0.999), 5000000000ull);
    assert_int_equal(h.max, 5000000000ull);
}

static void test_bucket_edges(void **state)
{
    (void)state;
    /* Every bucket index is in range and bucket tops never decrease. */
    uint64_t vals[] = {0, 1, 127, 128, 129, 255, 256, 1000, 1ull << 40, UINT64_MAX - 1,
                       UINT64_MAX};
    unsigned prev = 0;
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        unsigned b = kb_hist_bucket_of(vals[i]);
        assert_true(b < KB_HIST_BUCKETS);
        assert_true(b >= prev);
        assert_true(kb_hist_bucket_top(b) >= vals[i]);
        prev = b;
    }
    for (unsigned b = 1; b < KB_HIST_BUCKETS; b++)
        assert_true(kb_hist_bucket_top(b) > kb_hist_bucket_top(b - 1));
    kb_hist_init(&h);
    kb_hist_record(&h, UINT64_MAX);
    assert_int_equal(kb_hist_quantile(&h, 0.5), UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_small_and_outlier),
        cmocka_unit_test(test_bucket_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
