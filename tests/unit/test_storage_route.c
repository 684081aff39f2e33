/* The hot path of a 1:1 send in relay/storage.h: kl_storage_user_route (a
 * cache of handle -> id, inbox on the storage connection) and the
 * one-statement kl_storage_log_append, on real temporary sqlite files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage/storage.h"
#include "storage_fixture.h"
#include "tmpdir.h"

#define NOW 1700000000000ull

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
    if (kl_test_storage(f->dir, f->path, "/tmp/kl-route-XXXXXX", &f->st) != 0)
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

/* Register handle with a fresh one-use invite (key byte k). */
static int add_user(kl_storage_t *st, const char *handle, uint8_t k, kl_storage_user_t *u)
{
    char code[44];
    uint8_t ik[32];
    memset(code, 'a' + k % 26, 43);
    code[43] = '\0';
    memset(ik, k, sizeof ik);
    int r = kl_storage_invite_create(st, code, 1, NOW + 60000, NOW);
    return r ? r : kl_storage_register(st, handle, ik, code, NOW, u);
}

static void test_route_matches_user(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t a, b;
    assert_int_equal(add_user(f->st, "alice", 1, &a), 0);
    assert_int_equal(add_user(f->st, "bob", 2, &b), 0);
    for (int round = 0; round < 2; round++) { /* a miss, then from the cache */
        uint64_t id = 0, inbox = 0;
        assert_int_equal(kl_storage_user_route(f->st, "alice", &id, &inbox), 0);
        assert_true(id == a.id && inbox == a.inbox);
        assert_int_equal(kl_storage_user_route(f->st, "bob", &id, &inbox), 0);
        assert_true(id == b.id && inbox == b.inbox);
        assert_int_equal(kl_storage_user_route(f->st, "carol", &id, &inbox), KL_ENOTFOUND);
    }
    /* Inside a batch too, and a user registered earlier in it is found. */
    kl_storage_user_t c;
    assert_int_equal(kl_storage_batch_begin(f->st), 0);
    assert_int_equal(add_user(f->st, "carol", 3, &c), 0);
    uint64_t id = 0, inbox = 0;
    assert_int_equal(kl_storage_user_route(f->st, "carol", &id, &inbox), 0);
    assert_true(id == c.id && inbox == c.inbox);
    assert_int_equal(kl_storage_batch_commit(f->st), 0);
    assert_int_equal(kl_storage_user_route(f->st, "carol", &id, &inbox), 0);
    assert_true(id == c.id && inbox == c.inbox);
}

/* A user whose registration is rolled back must not stay routable, and
 * its id, given to the next user, must route to that user only. */
static void test_route_forgets_rolled_back_user(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t a, ghost, d;
    assert_int_equal(add_user(f->st, "alice", 1, &a), 0);
    assert_int_equal(kl_storage_batch_begin(f->st), 0);
    assert_int_equal(add_user(f->st, "ghost", 4, &ghost), 0);
    uint64_t id = 0, inbox = 0;
    assert_int_equal(kl_storage_user_route(f->st, "ghost", &id, &inbox), 0);
    assert_int_equal(id, ghost.id);
    kl_storage_batch_rollback(f->st);
    assert_int_equal(kl_storage_user_route(f->st, "ghost", &id, &inbox), KL_ENOTFOUND);
    assert_int_equal(add_user(f->st, "dave", 5, &d), 0);
    assert_int_equal(d.id, ghost.id); /* the id was reused: the case that matters */
    assert_int_equal(kl_storage_user_route(f->st, "ghost", &id, &inbox), KL_ENOTFOUND);
    assert_int_equal(kl_storage_user_route(f->st, "dave", &id, &inbox), 0);
    assert_true(id == d.id && inbox == d.inbox);
    /* The same inside a failed job of a batch that commits. */
    assert_int_equal(kl_storage_batch_begin(f->st), 0);
    assert_int_equal(kl_storage_job_begin(f->st), 0);
    assert_int_equal(add_user(f->st, "eve", 6, &ghost), 0);
    assert_int_equal(kl_storage_user_route(f->st, "eve", &id, &inbox), 0);
    assert_int_equal(kl_storage_job_end(f->st, KL_EIO), 0);
    assert_int_equal(kl_storage_batch_commit(f->st), 0);
    assert_int_equal(kl_storage_user_route(f->st, "eve", &id, &inbox), KL_ENOTFOUND);
}

/* More routes than the cache holds: every one still answers right. */
static void test_route_many_users(void **state)
{
    fixture_t *f = *state;
    enum { N = 7000 };
    static uint64_t ids[N], inboxes[N];
    assert_int_equal(kl_storage_batch_begin(f->st), 0);
    assert_int_equal(kl_storage_invite_create(f->st, "manymanymanymanymanymanymanymanymanymanyman",
                                              N, NOW + 60000, NOW),
                     0);
    for (int i = 0; i < N; i++) {
        char h[32];
        uint8_t ik[32];
        kl_storage_user_t u;
        snprintf(h, sizeof h, "u%d", i);
        memset(ik, 9, sizeof ik);
        assert_int_equal(kl_storage_register(f->st, h, ik,
                                             "manymanymanymanymanymanymanymanymanymanyman", NOW,
                                             &u),
                         0);
        ids[i] = u.id;
        inboxes[i] = u.inbox;
    }
    assert_int_equal(kl_storage_batch_commit(f->st), 0);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < N; i++) {
            char h[32];
            uint64_t id = 0, inbox = 0;
            snprintf(h, sizeof h, "u%d", i);
            assert_int_equal(kl_storage_user_route(f->st, h, &id, &inbox), 0);
            assert_true(id == ids[i] && inbox == inboxes[i]);
        }
}

/* Seqs follow each other, the quota refuses without storing, a missing
 * log is KL_ENOTFOUND, and after everything is acked and deleted the next
 * seq still continues from the last one. */
static void test_append_one_statement(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t a;
    assert_int_equal(add_user(f->st, "alice", 1, &a), 0);
    const kl_storage_quota_t q = {3, 10};
    const uint8_t body[4] = {1, 2, 3, 4};
    uint64_t seq = 0;
    assert_int_equal(kl_storage_log_append(f->st, a.inbox, NOW, NOW + 1000, body, 4, &q, &seq), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(kl_storage_log_append(f->st, a.inbox, NOW, NOW + 1000, body, 4, &q, &seq), 0);
    assert_int_equal(seq, 2);
    /* 8 + 4 bytes > 10 */
    assert_int_equal(kl_storage_log_append(f->st, a.inbox, NOW, NOW + 1000, body, 4, &q, &seq),
                     KL_ELIMIT);
    assert_int_equal(kl_storage_log_append(f->st, a.inbox, NOW, NOW + 1000, body, 2, &q, &seq), 0);
    assert_int_equal(seq, 3);
    /* 3 entries = max_entries */
    assert_int_equal(kl_storage_log_append(f->st, a.inbox, NOW, NOW + 1000, body, 1, &q, &seq),
                     KL_ELIMIT);
    assert_int_equal(
        kl_storage_log_append(f->st, a.inbox + 1000, NOW, NOW + 1000, body, 1, &q, &seq),
        KL_ENOTFOUND);
    kl_storage_entry_t *e = NULL;
    size_t n = 0;
    int more = 0;
    assert_int_equal(kl_storage_log_read(f->st, a.inbox, 0, NOW, 10, 1 << 20, &e, &n, &more), 0);
    assert_int_equal(n, 3);
    assert_true(e[0].seq == 1 && e[1].seq == 2 && e[2].seq == 3 && e[2].len == 2);
    kl_storage_entries_free(e, n);
    assert_int_equal(kl_storage_log_ack(f->st, a.inbox, a.id, 3), 0);
    kl_storage_stats_t stats;
    assert_int_equal(kl_storage_stats(f->st, NOW, &stats), 0);
    assert_int_equal(stats.entries, 0);
    assert_int_equal(stats.bytes, 0);
    assert_int_equal(kl_storage_log_append(f->st, a.inbox, NOW, NOW + 1000, body, 4, &q, &seq), 0);
    assert_int_equal(seq, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_route_matches_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_forgets_rolled_back_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_many_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_one_statement, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
