/* relay/storage.h on real temporary sqlite files. */
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
#include "storage/sqlite/sqlite_wal.h"
#include "storage/storage.h"
#include "storage_fixture.h"
#include "tmpdir.h"

#define NOW 1700000000000ull
#define CODE_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define CODE_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

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
    if (kl_test_storage(f->dir, f->path, "/tmp/kl-storage-XXXXXX", &f->st) != 0)
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

static void add_user(kl_storage_t *st, const char *handle, const char *code,
                     kl_storage_user_t *u)
{
    uint8_t ik[32];
    memset(ik, handle[0], sizeof ik);
    assert_int_equal(kl_storage_invite_create(st, code, 1, NOW + 60000, NOW), 0);
    assert_int_equal(kl_storage_register(st, handle, ik, code, NOW, u), 0);
}

static const kl_storage_quota_t BIG = {1000000, 1ull << 40};

static void append(kl_storage_t *st, uint64_t log, const char *body, uint64_t expires,
                   uint64_t *seq)
{
    assert_int_equal(kl_storage_log_append(st, log, NOW, expires, (const uint8_t *)body,
                                           strlen(body), &BIG, seq),
                     0);
}

static void test_append_read_ack(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t u;
    add_user(f->st, "bob", CODE_A, &u);
    uint64_t seq;
    const char *bodies[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        append(f->st, u.inbox, bodies[i], NOW + 100000, &seq);
        assert_int_equal(seq, (uint64_t)i + 1);
    }
    kl_storage_entry_t *e = NULL;
    size_t n = 0;
    int more = 1;
    assert_int_equal(kl_storage_log_read(f->st, u.inbox, 1, NOW, 10, 65000, &e, &n, &more), 0);
    assert_int_equal(n, 2);
    assert_int_equal(more, 0);
    assert_int_equal(e[0].seq, 2);
    assert_int_equal(e[0].ts_ms, NOW);
    assert_memory_equal(e[0].body, "two", 3);
    assert_memory_equal(e[1].body, "three", 5);
    kl_storage_entries_free(e, n);
    /* limit 1 -> more */
    assert_int_equal(kl_storage_log_read(f->st, u.inbox, 0, NOW, 1, 65000, &e, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_int_equal(more, 1);
    kl_storage_entries_free(e, n);
    /* ack 2 deletes 1 and 2 */
    assert_int_equal(kl_storage_log_ack(f->st, u.inbox, u.id, 2), 0);
    assert_int_equal(kl_storage_log_read(f->st, u.inbox, 0, NOW, 10, 65000, &e, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_int_equal(e[0].seq, 3);
    kl_storage_entries_free(e, n);
    kl_storage_stats_t s;
    assert_int_equal(kl_storage_stats(f->st, NOW, &s), 0);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.bytes, 5);
    /* seqs keep growing after deletions */
    append(f->st, u.inbox, "four", NOW + 100000, &seq);
    assert_int_equal(seq, 4);
}

static void test_ack_never_backwards_nor_past_last(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t u;
    add_user(f->st, "bob", CODE_A, &u);
    uint64_t seq;
    append(f->st, u.inbox, "one", NOW + 100000, &seq);
    /* acking the future must not swallow entries that arrive later */
    assert_int_equal(kl_storage_log_ack(f->st, u.inbox, u.id, UINT64_MAX), 0);
    append(f->st, u.inbox, "two", NOW + 100000, &seq);
    assert_int_equal(kl_storage_log_ack(f->st, u.inbox, u.id, 0), 0);
    kl_storage_entry_t *e = NULL;
    size_t n = 0;
    int more;
    assert_int_equal(kl_storage_log_read(f->st, u.inbox, 0, NOW, 10, 65000, &e, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_int_equal(e[0].seq, 2);
    kl_storage_entries_free(e, n);
    assert_int_equal(kl_storage_log_ack(f->st, u.inbox, u.id + 99, 1), KL_ENOTFOUND);
}

static void test_read_byte_budget_returns_at_least_one(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t u;
    add_user(f->st, "bob", CODE_A, &u);
    uint8_t big[3000];
    memset(big, 7, sizeof big);
    uint64_t seq;
    for (int i = 0; i < 3; i++)
        assert_int_equal(kl_storage_log_append(f->st, u.inbox, NOW, NOW + 1000, big, sizeof big,
                                               &BIG, &seq),
                         0);
    kl_storage_entry_t *e = NULL;
    size_t n = 0;
    int more;
    assert_int_equal(kl_storage_log_read(f->st, u.inbox, 0, NOW, 10, 100, &e, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_int_equal(more, 1);
    kl_storage_entries_free(e, n);
    assert_int_equal(kl_storage_log_read(f->st, u.inbox, 0, NOW, 10,
                                         2 * (3000 + KL_STORAGE_ENTRY_OVERHEAD), &e, &n, &more),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(more, 1);
    kl_storage_entries_free(e, n);
}

static void test_quota_entries_and_bytes(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t u;
    add_user(f->st, "bob", CODE_A, &u);
    kl_storage_quota_t q = {2, 10};
    uint64_t seq;
    const uint8_t *b = (const uint8_t *)"abcd";
    assert_int_equal(kl_storage_log_append(f->st, u.inbox, NOW, NOW + 1000, b, 4, &q, &seq), 0);
    assert_int_equal(kl_storage_log_append(f->st, u.inbox, NOW, NOW + 1000, b, 4, &q, &seq), 0);
    assert_int_equal(kl_storage_log_append(f->st, u.inbox, NOW, NOW + 1000, b, 1, &q, &seq),
                     KL_ELIMIT);
    /* bytes: 8 stored, 3 more would exceed 10 */
    q.max_entries = 100;
    assert_int_equal(kl_storage_log_append(f->st, u.inbox, NOW, NOW + 1000, b, 3, &q, &seq),
                     KL_ELIMIT);
    assert_int_equal(kl_storage_log_append(f->st, u.inbox, NOW, NOW + 1000, b, 2, &q, &seq), 0);
    assert_int_equal(seq, 3); /* a refused append consumes no seq */
    /* acking frees quota */
    assert_int_equal(kl_storage_log_ack(f->st, u.inbox, u.id, 3), 0);
    assert_int_equal(kl_storage_log_append(f->st, u.inbox, NOW, NOW + 1000, b, 4, &q, &seq), 0);
    assert_int_equal(kl_storage_log_append(f->st, 9999, NOW, NOW + 1000, b, 4, &q, &seq),
                     KL_ENOTFOUND);
}

static void test_ttl_expiry(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t u;
    add_user(f->st, "bob", CODE_A, &u);
    uint64_t seq, deleted;
    int more;
    append(f->st, u.inbox, "short", NOW + 1000, &seq);
    append(f->st, u.inbox, "long", NOW + 100000, &seq);
    kl_storage_entry_t *e = NULL;
    size_t n = 0;
    /* past the first expiry, before any sweep: never returned */
    assert_int_equal(kl_storage_log_read(f->st, u.inbox, 0, NOW + 1000, 10, 65000, &e, &n, &more),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(e[0].seq, 2);
    kl_storage_entries_free(e, n);
    assert_int_equal(kl_storage_expire(f->st, NOW + 1000, 100, &deleted, &more), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(more, 0);
    kl_storage_stats_t s;
    assert_int_equal(kl_storage_stats(f->st, NOW, &s), 0);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.bytes, 4);
    /* bounded sweeps report that more remain */
    for (int i = 0; i < 5; i++)
        append(f->st, u.inbox, "x", NOW + 2000, &seq);
    assert_int_equal(kl_storage_expire(f->st, NOW + 5000, 3, &deleted, &more), 0);
    assert_int_equal(deleted, 3);
    assert_int_equal(more, 1);
    assert_int_equal(kl_storage_expire(f->st, NOW + 5000, 3, &deleted, &more), 0);
    assert_int_equal(deleted, 2);
    assert_int_equal(more, 0);
}

static void test_invite_single_use(void **state)
{
    fixture_t *f = *state;
    uint8_t ik[32] = {1};
    kl_storage_user_t u;
    assert_int_equal(kl_storage_invite_create(f->st, CODE_A, 1, NOW + 1000, NOW), 0);
    assert_int_equal(kl_storage_register(f->st, "alice", ik, CODE_A, NOW, &u), 0);
    assert_int_equal(kl_storage_register(f->st, "bob", ik, CODE_A, NOW, &u), KL_EREFUSED);
    assert_int_equal(kl_storage_user_get(f->st, "bob", &u), KL_ENOTFOUND);
    assert_int_equal(kl_storage_user_get(f->st, "alice", &u), 0);
    assert_memory_equal(u.identity_key, ik, 32);
}

static void test_invite_n_uses(void **state)
{
    fixture_t *f = *state;
    uint8_t ik[32] = {1};
    kl_storage_user_t u;
    assert_int_equal(kl_storage_invite_create(f->st, CODE_A, 2, NOW + 1000, NOW), 0);
    assert_int_equal(kl_storage_register(f->st, "a1", ik, CODE_A, NOW, &u), 0);
    assert_int_equal(kl_storage_register(f->st, "a2", ik, CODE_A, NOW, &u), 0);
    assert_int_equal(kl_storage_register(f->st, "a3", ik, CODE_A, NOW, &u), KL_EREFUSED);
    uint64_t n;
    assert_int_equal(kl_storage_user_count(f->st, &n), 0);
    assert_int_equal(n, 2);
}

static void test_invite_expired_and_wrong_code(void **state)
{
    fixture_t *f = *state;
    uint8_t ik[32] = {1};
    kl_storage_user_t u;
    assert_int_equal(kl_storage_invite_create(f->st, CODE_A, 5, NOW + 1000, NOW), 0);
    assert_int_equal(kl_storage_register(f->st, "late", ik, CODE_A, NOW + 1000, &u),
                     KL_EREFUSED);
    assert_int_equal(kl_storage_register(f->st, "wrong", ik, CODE_B, NOW, &u), KL_EREFUSED);
    assert_int_equal(kl_storage_register(f->st, "early", ik, CODE_A, NOW + 999, &u), 0);
    kl_storage_stats_t s;
    assert_int_equal(kl_storage_stats(f->st, NOW, &s), 0);
    assert_int_equal(s.active_invites, 1);
    /* the sweep removes expired invites */
    uint64_t d;
    int more;
    assert_int_equal(kl_storage_expire(f->st, NOW + 1000, 10, &d, &more), 0);
    assert_int_equal(kl_storage_stats(f->st, NOW, &s), 0);
    assert_int_equal(s.active_invites, 0);
}

static void test_taken_handle_keeps_invite(void **state)
{
    fixture_t *f = *state;
    uint8_t ik[32] = {1};
    kl_storage_user_t u;
    add_user(f->st, "alice", CODE_A, &u);
    assert_int_equal(kl_storage_invite_create(f->st, CODE_B, 1, NOW + 1000, NOW), 0);
    assert_int_equal(kl_storage_register(f->st, "alice", ik, CODE_B, NOW, &u), KL_EEXIST);
    /* the invite still works for a free handle */
    assert_int_equal(kl_storage_register(f->st, "alice2", ik, CODE_B, NOW, &u), 0);
}

static void fill_opks(kl_storage_opk_t *k, size_t n, uint32_t first)
{
    for (size_t i = 0; i < n; i++) {
        k[i].id = first + (uint32_t)i;
        memset(k[i].public_key, (int)(first + i), 32);
    }
}

/* Signed prekey 77: public key of 9s, signature of 8s. */
static void set_spk(kl_storage_t *st, uint64_t user)
{
    uint8_t spk[32], sig[64];
    memset(spk, 9, sizeof spk);
    memset(sig, 8, sizeof sig);
    assert_int_equal(kl_storage_prekey_set_signed(st, user, 77, spk, sig), 0);
}

static void test_prekeys_consumed_once(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t u;
    kl_prekey_bundle_t b;
    add_user(f->st, "bob", CODE_A, &u);
    assert_int_equal(kl_storage_prekey_fetch(f->st, "bob", 1, 1000, &b), KL_ENOTFOUND); /* no SPK */
    uint8_t spk[32], sig[64];
    set_spk(f->st, u.id);
    memset(spk, 9, sizeof spk);
    memset(sig, 8, sizeof sig);
    kl_storage_opk_t k[2];
    fill_opks(k, 2, 10);
    assert_int_equal(kl_storage_prekey_add_onetime(f->st, u.id, k, 2), 0);
    uint32_t n;
    assert_int_equal(kl_storage_prekey_count(f->st, u.id, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(kl_storage_prekey_fetch(f->st, "bob", 1, 1000, &b), 0);
    assert_int_equal(b.spk_id, 77);
    assert_memory_equal(b.spk, spk, 32);
    assert_memory_equal(b.spk_sig, sig, 64);
    assert_memory_equal(b.identity_key, u.identity_key, 32);
    assert_true(b.has_opk);
    assert_int_equal(b.opk_id, 10);
    assert_int_equal(kl_storage_prekey_fetch(f->st, "bob", 1, 1000, &b), 0);
    assert_true(b.has_opk);
    assert_int_equal(b.opk_id, 11);
    assert_int_equal(kl_storage_prekey_fetch(f->st, "bob", 1, 1000, &b), 0);
    assert_false(b.has_opk);
    assert_int_equal(b.spk_id, 77);
    assert_int_equal(kl_storage_prekey_count(f->st, u.id, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(kl_storage_prekey_fetch(f->st, "nobody", 1, 1000, &b), KL_ENOTFOUND);
}

/* A fetch over the requester's limits (take_opk 0) leaves the one-time
 * prekeys alone and records nothing; one that finds none left is counted
 * (from its time) until the next upload of one-time prekeys clears it. */
static void test_prekey_runout_record(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t u;
    kl_prekey_bundle_t b;
    kl_storage_prekey_status_t ps;
    add_user(f->st, "bob", CODE_A, &u);
    set_spk(f->st, u.id);
    kl_storage_opk_t k[1];
    fill_opks(k, 1, 10);
    assert_int_equal(kl_storage_prekey_add_onetime(f->st, u.id, k, 1), 0);
    assert_int_equal(kl_storage_prekey_fetch(f->st, "bob", 0, 1000, &b), 0);
    assert_false(b.has_opk);
    assert_int_equal(b.spk_id, 77);
    assert_int_equal(kl_storage_prekey_status(f->st, u.id, &ps), 0);
    assert_int_equal(ps.count, 1);
    assert_int_equal(ps.ran_out, 0);
    assert_int_equal(kl_storage_prekey_fetch(f->st, "bob", 1, 2000, &b), 0);
    assert_true(b.has_opk);
    assert_int_equal(kl_storage_prekey_fetch(f->st, "bob", 0, 3000, &b), 0); /* limited */
    assert_int_equal(kl_storage_prekey_fetch(f->st, "bob", 1, 4000, &b), 0); /* ran out */
    assert_false(b.has_opk);
    assert_int_equal(kl_storage_prekey_fetch(f->st, "bob", 1, 5000, &b), 0);
    assert_int_equal(kl_storage_prekey_status(f->st, u.id, &ps), 0);
    assert_int_equal(ps.count, 0);
    assert_int_equal(ps.ran_out, 2);
    assert_int_equal(ps.ran_out_since_ms, 4000);
    /* A signed-prekey-only upload does not clear it; one-time prekeys do. */
    assert_int_equal(kl_storage_prekey_add_onetime(f->st, u.id, k, 0), 0);
    assert_int_equal(kl_storage_prekey_status(f->st, u.id, &ps), 0);
    assert_int_equal(ps.ran_out, 2);
    fill_opks(k, 1, 11);
    assert_int_equal(kl_storage_prekey_add_onetime(f->st, u.id, k, 1), 0);
    assert_int_equal(kl_storage_prekey_status(f->st, u.id, &ps), 0);
    assert_int_equal(ps.count, 1);
    assert_int_equal(ps.ran_out, 0);
    assert_int_equal(ps.ran_out_since_ms, 0);
}

static void test_prekey_cap(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t u;
    add_user(f->st, "bob", CODE_A, &u);
    kl_storage_opk_t k[KL_STORAGE_MAX_OPKS];
    fill_opks(k, 150, 1);
    assert_int_equal(kl_storage_prekey_add_onetime(f->st, u.id, k, 150), 0);
    /* re-uploading the same ids does not count twice */
    assert_int_equal(kl_storage_prekey_add_onetime(f->st, u.id, k, 150), 0);
    fill_opks(k, 51, 1000);
    assert_int_equal(kl_storage_prekey_add_onetime(f->st, u.id, k, 51), KL_ELIMIT);
    uint32_t n;
    assert_int_equal(kl_storage_prekey_count(f->st, u.id, &n), 0);
    assert_int_equal(n, 150); /* nothing of the refused upload was kept */
    assert_int_equal(kl_storage_prekey_add_onetime(f->st, u.id, k, 50), 0);
    assert_int_equal(kl_storage_prekey_count(f->st, u.id, &n), 0);
    assert_int_equal(n, 200);
}

static void test_batch_job_rollback_and_commit(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t u;
    add_user(f->st, "bob", CODE_A, &u);
    uint64_t seq;
    assert_int_equal(kl_storage_batch_begin(f->st), 0);
    assert_int_equal(kl_storage_job_begin(f->st), 0);
    append(f->st, u.inbox, "kept", NOW + 1000, &seq);
    assert_int_equal(kl_storage_job_end(f->st, 0), 0);
    assert_int_equal(kl_storage_job_begin(f->st), 0);
    append(f->st, u.inbox, "undone", NOW + 1000, &seq);
    assert_int_equal(kl_storage_job_end(f->st, KL_ELIMIT), 0);
    assert_int_equal(kl_storage_batch_commit(f->st), 0);
    /* a whole batch rolled back leaves nothing */
    assert_int_equal(kl_storage_batch_begin(f->st), 0);
    append(f->st, u.inbox, "abandoned", NOW + 1000, &seq);
    kl_storage_batch_rollback(f->st);
    kl_storage_close(f->st);
    assert_int_equal(kl_storage_open(&f->st, f->path, 0), 0);
    kl_storage_entry_t *e = NULL;
    size_t n = 0;
    int more;
    assert_int_equal(kl_storage_log_read(f->st, u.inbox, 0, NOW, 10, 65000, &e, &n, &more), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(e[0].body, "kept", 4);
    assert_int_equal(e[0].seq, 1);
    kl_storage_entries_free(e, n);
}

static void test_meta_and_open_modes(void **state)
{
    fixture_t *f = *state;
    char v[64];
    assert_int_equal(kl_storage_meta_get(f->st, "name", v, sizeof v), KL_ENOTFOUND);
    assert_int_equal(kl_storage_meta_set(f->st, "name", "oslo.test"), 0);
    assert_int_equal(kl_storage_meta_set(f->st, "name", "oslo.example"), 0);
    assert_int_equal(kl_storage_meta_get(f->st, "name", v, sizeof v), 0);
    assert_string_equal(v, "oslo.example");
    assert_int_equal(kl_storage_meta_get(f->st, "name", v, 4), KL_ETOOBIG);
    kl_storage_t *ro = NULL;
    assert_int_equal(kl_storage_open(&ro, f->path, KL_STORAGE_READONLY), 0);
    assert_int_equal(kl_storage_meta_get(ro, "name", v, sizeof v), 0);
    kl_storage_close(ro);
    char missing[200];
    snprintf(missing, sizeof missing, "%s/none.db", f->dir);
    assert_int_equal(kl_storage_open(&ro, missing, 0), KL_ENOTFOUND);
    assert_int_equal(kl_storage_open(&ro, missing, KL_STORAGE_READONLY), KL_ENOTFOUND);
}

static int contains(const uint8_t *hay, size_t n, const char *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

/* The database (and its WAL) must not contain an invite code in clear,
 * only its hash; and no body is stored with a sender. */
static void test_no_invite_code_in_file(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t u;
    add_user(f->st, "alice", CODE_A, &u);
    assert_int_equal(kl_storage_invite_create(f->st, CODE_B, 3, NOW + 1000, NOW), 0);
    const char *suffix[] = {"", "-wal"};
    int seen_handle = 0;
    for (int i = 0; i < 2; i++) {
        char p[200];
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        FILE *fp = fopen(p, "rb");
        if (fp == NULL)
            continue;
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        assert_true(n > 0 || i == 1);
        assert_false(contains(buf, n, CODE_A, strlen(CODE_A)));
        assert_false(contains(buf, n, CODE_B, 16));
        seen_handle |= contains(buf, n, "alice", 5);
    }
    assert_true(seen_handle); /* the scan does see what is stored in clear */
}

/* The sqlite backend's checkpoints (storage/sqlite/sqlite_wal.h): by
 * default a commit that leaves the write-ahead log at KL_SQLITE_WAL_SOFT
 * pages checkpoints it, so the log restarts and stays short. With
 * background maintenance the writer leaves that to it (up to
 * KL_SQLITE_WAL_HARD): the log grows past SOFT, maintenance is due, and
 * once it has run the log restarts at the next commit. */
static void test_wal_checkpoints(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t u;
    add_user(f->st, "bob", CODE_A, &u);
    uint8_t big[3000];
    memset(big, 7, sizeof big);
    uint64_t seq;
    int max = 0, restarted = 0, prev = 0;
    for (int i = 0; i < 500; i++) {
        assert_int_equal(kl_storage_log_append(f->st, u.inbox, NOW, NOW + 1000, big, sizeof big,
                                               &BIG, &seq),
                         0);
        int n = kl_sqlite_wal_frames(f->st);
        max = n > max ? n : max;
        restarted |= n < prev;
        prev = n;
    }
    assert_true(restarted);
    assert_true(max < KL_SQLITE_WAL_SOFT + 50);

    kl_storage_maint_t *maint = NULL;
    assert_int_equal(kl_storage_maint_open(f->st, &maint), 0);
    int n = 0, rounds = 0;
    while (n < KL_SQLITE_WAL_SOFT + 200) {
        assert_true(++rounds < 5000);
        assert_int_equal(kl_storage_log_append(f->st, u.inbox, NOW, NOW + 1000, big, sizeof big,
                                               &BIG, &seq),
                         0);
        int m = kl_sqlite_wal_frames(f->st);
        if (rounds > 1)
            assert_true(m > n); /* the writer no longer checkpoints at SOFT */
        n = m;
    }
    assert_true(kl_storage_maint_due(f->st));
    assert_int_equal(kl_storage_maint_run(maint), 0);
    assert_int_equal(kl_storage_log_append(f->st, u.inbox, NOW, NOW + 1000, big, sizeof big,
                                           &BIG, &seq),
                     0);
    assert_true(kl_sqlite_wal_frames(f->st) < 50); /* copied, so the log restarted */
    kl_storage_maint_close(maint);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_read_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_never_backwards_nor_past_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_byte_budget_returns_at_least_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_quota_entries_and_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invite_single_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invite_n_uses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invite_expired_and_wrong_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_taken_handle_keeps_invite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekeys_consumed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekey_runout_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekey_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_job_rollback_and_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_and_open_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_invite_code_in_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_checkpoints, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
