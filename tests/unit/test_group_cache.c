/* The push-list cache of group sends (relay/group_cache.h) and the
 * shadow-address lookup it caches (storage_gfed.h), on a real temporary
 * sqlite file: a hit returns copies of what was stored, and an entry is
 * dropped when the row's next index or head moved or a transaction was
 * rolled back since. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "jobs/group_cache.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage/storage.h"
#include "storage/storage_gfed.h"
#include "storage_fixture.h"
#include "tmpdir.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    kl_storage_t *st;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL || kl_crypto_init() != 0)
        return -1;
    if (kl_test_storage(f->dir, f->path, "/tmp/kl-gcache-XXXXXX", &f->st) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    kl_storage_close(f->st);
    kl_test_rmdir(f->dir);
    free(f);
    return 0;
}

static kl_storage_group_t row(uint64_t id, uint64_t next, uint8_t head_byte)
{
    kl_storage_group_t g;
    memset(&g, 0, sizeof g);
    g.id = id;
    g.next_index = next;
    memset(g.head, head_byte, 32);
    return g;
}

/* 1 on a hit whose list is want[0..n) and whose notice list is notify. */
static int hit_is(kl_storage_t *st, const kl_storage_group_t *g, const uint64_t *want, size_t n,
                  const char *notify, size_t notify_len, size_t n_notify)
{
    uint64_t *u = NULL;
    char *a = NULL;
    size_t nu = 99, al = 99, an = 99;
    int r = kl_gcache_members_get(st, g, &u, &nu, &a, &al, &an);
    int ok = r == 1 && nu == n && al == notify_len && an == n_notify &&
             (n == 0 || memcmp(u, want, n * sizeof *u) == 0) &&
             (notify_len == 0 ? a == NULL : memcmp(a, notify, notify_len) == 0);
    free(u);
    free(a);
    return ok;
}

static int miss(kl_storage_t *st, const kl_storage_group_t *g)
{
    uint64_t *u = NULL;
    char *a = NULL;
    size_t nu = 99, al = 99, an = 99;
    int r = kl_gcache_members_get(st, g, &u, &nu, &a, &al, &an);
    return r == 0 && u == NULL && a == NULL && nu == 0 && al == 0 && an == 0;
}

static void test_hit_and_invalidation(void **state)
{
    fixture_t *f = *state;
    const uint64_t users[3] = {4, 9, 2};
    const char notify[] = "ann@far.example";
    kl_storage_group_t g = row(7, 5, 0xab), other = row(8, 5, 0xab);

    assert_true(miss(f->st, &g));
    kl_gcache_members_put(f->st, &g, users, 3, notify, sizeof notify, 1);
    assert_true(hit_is(f->st, &g, users, 3, notify, sizeof notify, 1));
    assert_true(hit_is(f->st, &g, users, 3, notify, sizeof notify, 1));
    assert_true(miss(f->st, &other));

    /* An op moved the row: the entry is gone even for the old key. */
    kl_storage_group_t moved = row(7, 6, 0xcd);
    assert_true(miss(f->st, &moved));
    assert_true(miss(f->st, &g));

    /* Same index, other head (a different op at that index). */
    kl_gcache_members_put(f->st, &g, users, 2, NULL, 0, 0);
    kl_storage_group_t forked = row(7, 5, 0xac);
    assert_true(miss(f->st, &forked));

    /* A rollback invalidates what was cached before it. */
    kl_gcache_members_put(f->st, &g, users, 2, NULL, 0, 0);
    assert_true(hit_is(f->st, &g, users, 2, NULL, 0, 0));
    assert_int_equal(kl_storage_batch_begin(f->st), 0);
    kl_storage_batch_rollback(f->st);
    assert_true(miss(f->st, &g));

    /* An empty list is cached too. */
    kl_gcache_members_put(f->st, &g, NULL, 0, NULL, 0, 0);
    assert_true(hit_is(f->st, &g, NULL, 0, NULL, 0, 0));
}

static void test_many_groups(void **state)
{
    fixture_t *f = *state;
    /* More groups than slots: the least recently used go, the rest hit. */
    for (uint64_t id = 1; id <= KL_GCACHE_MAX + 10; id++) {
        kl_storage_group_t g = row(id, id, (uint8_t)id);
        kl_gcache_members_put(f->st, &g, &id, 1, NULL, 0, 0);
    }
    for (uint64_t id = 1; id <= 10; id++) {
        kl_storage_group_t g = row(id, id, (uint8_t)id);
        assert_true(miss(f->st, &g));
    }
    for (uint64_t id = 11; id <= KL_GCACHE_MAX + 10; id++) {
        kl_storage_group_t g = row(id, id, (uint8_t)id);
        assert_true(hit_is(f->st, &g, &id, 1, NULL, 0, 0));
    }
}

static void test_shadow_addresses(void **state)
{
    fixture_t *f = *state;
    uint8_t k1[32], k2[32];
    memset(k1, 1, 32);
    memset(k2, 2, 32);
    uint64_t a = 0, b = 0;
    assert_int_equal(kl_storage_shadow_user(f->st, "ann@far.example", k1, 1, &a), 0);
    assert_int_equal(kl_storage_shadow_user(f->st, "bo@near.example", k2, 1, &b), 0);
    assert_true(a != 0 && b != 0 && a != b);
    const uint64_t users[4] = {b, 12345, a, 0};
    const char want[] = "bo@near.example\0ann@far.example";
    /* Twice: the prepared statement is reset between calls. */
    for (int round = 0; round < 2; round++) {
        char *out = NULL;
        size_t len = 0, count = 0;
        assert_int_equal(kl_storage_shadow_addresses(f->st, users, 4, &out, &len, &count), 0);
        assert_int_equal(count, 2);
        assert_int_equal(len, sizeof want);
        assert_memory_equal(out, want, sizeof want);
        free(out);
    }
    char *out = (char *)1;
    size_t len = 9, count = 9;
    const uint64_t none[1] = {12345};
    assert_int_equal(kl_storage_shadow_addresses(f->st, none, 1, &out, &len, &count), 0);
    assert_null(out);
    assert_int_equal(count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hit_and_invalidation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shadow_addresses, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
