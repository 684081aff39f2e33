/* One-time prekey limits (relay/opk_limit.c): each bucket (pair,
 * requester, target, peer) stops OPK consumption on its own, refills over
 * the window, a refusal takes nothing, the tables stay within their cap,
 * and a clock stepping back refills nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "core/opk_limit.h"

#define T0 1000000000000ull /* an arbitrary wall clock, ms */
#define HOUR (3600ull * 1000)

static kl_opk_limit_t *make(uint32_t pair, uint32_t req, uint32_t target, uint32_t peer,
                            uint32_t tracked)
{
    kl_opk_limit_cfg_t c = {.window_s = 3600,
                            .per_pair = pair,
                            .per_requester = req,
                            .per_target = target,
                            .per_peer = peer,
                            .max_tracked = tracked};
    kl_opk_limit_t *l = NULL;
    assert_int_equal(kl_opk_limit_new(&l, &c), 0);
    return l;
}

static int setup(void **state)
{
    (void)state;
    return kl_crypto_init() == 0 ? 0 : -1;
}

static void test_defaults_and_bounds(void **state)
{
    (void)state;
    kl_opk_limit_cfg_t c = {0};
    kl_opk_limit_t *l = NULL;
    assert_int_equal(kl_opk_limit_new(&l, &c), 0);
    const kl_opk_limit_cfg_t *e = kl_opk_limit_cfg(l);
    assert_int_equal(e->window_s, KL_OPK_WINDOW_S_DEFAULT);
    assert_int_equal(e->per_pair, KL_OPK_PER_PAIR_DEFAULT);
    assert_int_equal(e->per_requester, KL_OPK_PER_REQUESTER_DEFAULT);
    assert_int_equal(e->per_target, KL_OPK_PER_TARGET_DEFAULT);
    assert_int_equal(e->per_peer, KL_OPK_PER_PEER_DEFAULT);
    assert_int_equal(e->max_tracked, KL_OPK_TRACKED_DEFAULT);
    kl_opk_limit_free(l);
    c.max_tracked = KL_OPK_TRACKED_MAX + 1;
    assert_int_equal(kl_opk_limit_new(&l, &c), KL_EINVAL);
    assert_null(l);
    c.max_tracked = 0;
    c.window_s = KL_OPK_WINDOW_S_MAX + 1;
    assert_int_equal(kl_opk_limit_cfg_check(&c), KL_EINVAL);
    c.window_s = 0;
    c.per_target = KL_OPK_PER_MAX + 1;
    assert_int_equal(kl_opk_limit_cfg_check(&c), KL_EINVAL);
    kl_opk_limit_free(NULL);
}

/* The same requester fetching the same target again in the window gets
 * no second OPK; another target, or another requester, still does. */
static void test_pair_limit(void **state)
{
    (void)state;
    kl_opk_limit_t *l = make(1, 100, 100, 100, 64);
    assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "bob", T0), 1);
    for (int i = 0; i < 50; i++)
        assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "bob", T0 + i), 0);
    assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "kari", T0), 1);
    assert_int_equal(kl_opk_limit_take(l, NULL, "ann@oslo", "bob", T0), 1);
    /* Half a window refills half a token: still no. A whole window: yes. */
    assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "bob", T0 + HOUR / 2), 0);
    assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "bob", T0 + HOUR), 1);
    assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "bob", T0 + HOUR), 0);
    kl_opk_limit_free(l);
}

/* A requester's budget across targets, refilled evenly over the window. */
static void test_requester_budget(void **state)
{
    (void)state;
    kl_opk_limit_t *l = make(1, 5, 100, 100, 256);
    char t[32];
    int got = 0;
    for (int i = 0; i < 40; i++) {
        snprintf(t, sizeof t, "user%d", i);
        got += kl_opk_limit_take(l, NULL, "eve@oslo", t, T0);
    }
    assert_int_equal(got, 5);
    /* Another requester is not affected. */
    assert_int_equal(kl_opk_limit_take(l, NULL, "ann@oslo", "user0", T0), 1);
    /* One fifth of the window brings one token back. */
    assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "fresh1", T0 + HOUR / 5), 1);
    assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "fresh2", T0 + HOUR / 5), 0);
    kl_opk_limit_free(l);
}

/* Many requesters together take at most per_target of one target. */
static void test_target_cap(void **state)
{
    (void)state;
    kl_opk_limit_t *l = make(1, 100, 7, 100, 256);
    char rq[32];
    int got = 0;
    for (int i = 0; i < 60; i++) {
        snprintf(rq, sizeof rq, "sybil%d@oslo", i);
        got += kl_opk_limit_take(l, NULL, rq, "bob", T0 + (uint64_t)i);
    }
    assert_int_equal(got, 7);
    assert_int_equal(kl_opk_limit_take(l, NULL, "sybil0@oslo", "kari", T0 + 100), 1);
    kl_opk_limit_free(l);
}

/* A peer relay that names a new user on every fetch is held by its own
 * budget; a refused fetch takes nothing from the other buckets. */
static void test_peer_budget(void **state)
{
    (void)state;
    kl_opk_limit_t *l = make(1, 100, 1000, 10, 1024);
    char rq[64], t[32];
    int got = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(rq, sizeof rq, "u%d@stockholm", i);
        snprintf(t, sizeof t, "t%d", i);
        got += kl_opk_limit_take(l, "stockholm", rq, t, T0);
    }
    assert_int_equal(got, 10);
    /* Another peer, and local users, are not held by stockholm's budget. */
    assert_int_equal(kl_opk_limit_take(l, "helsinki", "u1@helsinki", "t1", T0), 1);
    assert_int_equal(kl_opk_limit_take(l, NULL, "u1@oslo", "t1", T0), 1);
    /* u50@stockholm was refused for t50: its pair and requester buckets
     * were not charged, so once the peer has a token it gets one. */
    assert_int_equal(kl_opk_limit_take(l, "stockholm", "u50@stockholm", "t50", T0 + HOUR / 10),
                     1);
    kl_opk_limit_free(l);
}

/* With more names than max_tracked, the least recently used are evicted
 * (their buckets start full again) and nothing grows past the cap; a
 * recently used entry is kept. */
static void test_bounded_tables(void **state)
{
    (void)state;
    kl_opk_limit_t *l = make(1, 1000, 1000, 1000, 8);
    assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "bob", T0), 1);
    char t[32];
    for (int i = 0; i < 6; i++) { /* 6 more pairs: 7 of 8 slots used */
        snprintf(t, sizeof t, "x%d", i);
        assert_int_equal(kl_opk_limit_take(l, NULL, "ann@oslo", t, T0), 1);
    }
    assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "bob", T0), 0); /* kept, refreshed */
    for (int i = 6; i < 14; i++) { /* 8 new pairs: the 8th slot, then 7 evictions */
        snprintf(t, sizeof t, "x%d", i);
        assert_int_equal(kl_opk_limit_take(l, NULL, "ann@oslo", t, T0), 1);
    }
    /* eve/bob was the least recently used: gone, so it starts full. */
    assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "bob", T0), 1);
    /* x13 is recent: still there, still empty. */
    assert_int_equal(kl_opk_limit_take(l, NULL, "ann@oslo", "x13", T0), 0);
    /* Thousands of names later, the cap holds (ASan would see an overrun)
     * and the limiter still answers consistently. */
    char rq[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(t, sizeof t, "y%d", i);
        snprintf(rq, sizeof rq, "r%d@oslo", i);
        assert_int_equal(kl_opk_limit_take(l, NULL, rq, t, T0 + (uint64_t)i), 1);
    }
    assert_int_equal(kl_opk_limit_take(l, NULL, "r4999@oslo", "y4999", T0 + 5000), 0);
    assert_int_equal(kl_opk_limit_take(l, NULL, "r4999@oslo", "y4998", T0 + 5000), 1);
    kl_opk_limit_free(l);
}

static void test_clock_step_back(void **state)
{
    (void)state;
    kl_opk_limit_t *l = make(1, 100, 100, 100, 64);
    assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "bob", T0), 1);
    assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "bob", T0 - HOUR), 0);
    /* Time runs on from the stepped-back clock: a whole window later, one. */
    assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "bob", T0 - HOUR / 2), 0);
    assert_int_equal(kl_opk_limit_take(l, NULL, "eve@oslo", "bob", T0), 1);
    kl_opk_limit_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_bounds), cmocka_unit_test(test_pair_limit),
        cmocka_unit_test(test_requester_budget),    cmocka_unit_test(test_target_cap),
        cmocka_unit_test(test_peer_budget),         cmocka_unit_test(test_bounded_tables),
        cmocka_unit_test(test_clock_step_back),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
