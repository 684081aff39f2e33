/* Federation storage jobs (relay/fed_jobs.c, storage_sqlite_fed.c) on a
 * real temporary database: peers, the outbox as a log with quota and
 * cursor, and the receiver's exactly-once, in-order deliver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fed/fed.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage/storage_fed.h"

#define NOW 1700000000000ull
#define CODE "cccccccccccccccccccccccccccccccccccccccccccc"

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
    snprintf(f->dir, sizeof f->dir, "/tmp/kl-fed-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/relay.db", f->dir);
    if (kl_storage_open(&f->st, f->path, KL_STORAGE_CREATE) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char p[200];
    kl_storage_close(f->st);
    static const char *const files[] = {"relay.db", "relay.db-wal", "relay.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", f->dir, files[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static int run(kl_storage_t *st, kl_job_t *job)
{
    job->now_ms = NOW;
    assert_int_equal(kl_storage_batch_begin(st), 0);
    assert_int_equal(kl_storage_job_begin(st), 0);
    kl_job_run(job, st);
    assert_int_equal(kl_storage_job_end(st, job->result), 0);
    assert_int_equal(kl_storage_batch_commit(st), 0);
    return job->result;
}

static kl_storage_user_t add_user(kl_storage_t *st, const char *handle)
{
    kl_storage_user_t u;
    uint8_t ik[32];
    char code[64];
    snprintf(code, sizeof code, "%s%s", handle, CODE);
    kl_random(ik, sizeof ik);
    assert_int_equal(kl_storage_invite_create(st, code, 1, NOW + 1000, NOW), 0);
    assert_int_equal(kl_storage_register(st, handle, ik, code, NOW, &u), 0);
    return u;
}

static void add_fwd(kl_job_t *job, uint64_t seq, const char *handle, const char *body)
{
    kl_fed_job_t *fj = job->u.fed;
    kl_fed_fwd_t *w = &fj->fwd[fj->n_fwd++];
    memset(w, 0, sizeof *w);
    w->seq = seq;
    snprintf(w->handle, sizeof w->handle, "%s", handle);
    w->len = strlen(body);
    w->body = malloc(w->len);
    memcpy(w->body, body, w->len);
}

static kl_job_t *deliver_job(uint64_t epoch, uint64_t max_entries)
{
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_IN_DELIVER, 0, NULL);
    assert_non_null(job);
    snprintf(job->u.fed->address, sizeof job->u.fed->address, "oslo.test");
    job->u.fed->epoch = epoch;
    job->u.fed->inbox_quota.max_entries = max_entries;
    job->u.fed->inbox_quota.max_bytes = 1 << 20;
    job->u.fed->ttl_max_ms = 86400000;
    return job;
}

static size_t inbox_count(kl_storage_t *st, uint64_t inbox)
{
    kl_storage_entry_t *e = NULL;
    size_t n = 0;
    int more = 0;
    assert_int_equal(kl_storage_log_read(st, inbox, 0, NOW, 100, 1 << 20, &e, &n, &more), 0);
    kl_storage_entries_free(e, n);
    return n;
}

/* A retried forward is never stored twice; a new origin epoch starts over;
 * an unknown recipient is rejected (and counts as done). */
static void test_deliver_exactly_once(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t bob = add_user(f->st, "bob");
    kl_job_t *job = deliver_job(7, 100);
    add_fwd(job, 1, "bob", "one");
    add_fwd(job, 2, "nobody", "lost");
    add_fwd(job, 3, "bob", "three");
    assert_int_equal(run(f->st, job), 0);
    assert_int_equal(job->u.fed->fwd[0].status, KL_FED_STORED);
    assert_int_equal(job->u.fed->fwd[1].status, KL_FED_REJECTED);
    assert_int_equal(job->u.fed->fwd[2].status, KL_FED_STORED);
    assert_int_equal(job->u.fed->fwd[0].recipient, bob.id);
    kl_job_free(job);
    assert_int_equal(inbox_count(f->st, bob.inbox), 2);
    /* The same forwards again (the ack was lost): duplicates, nothing stored. */
    job = deliver_job(7, 100);
    add_fwd(job, 1, "bob", "one");
    add_fwd(job, 3, "bob", "three");
    add_fwd(job, 4, "bob", "four");
    assert_int_equal(run(f->st, job), 0);
    assert_int_equal(job->u.fed->fwd[0].status, KL_FED_DUPLICATE);
    assert_int_equal(job->u.fed->fwd[1].status, KL_FED_DUPLICATE);
    assert_int_equal(job->u.fed->fwd[2].status, KL_FED_STORED);
    kl_job_free(job);
    assert_int_equal(inbox_count(f->st, bob.inbox), 3);
    uint64_t epoch = 0, seq = 0;
    assert_int_equal(kl_storage_fed_in_get(f->st, "oslo.test", &epoch, &seq), 0);
    assert_int_equal(epoch, 7);
    assert_int_equal(seq, 4);
    /* A new outbox at the origin (another epoch) starts from seq 1 again. */
    job = deliver_job(8, 100);
    add_fwd(job, 1, "bob", "new epoch");
    assert_int_equal(run(f->st, job), 0);
    assert_int_equal(job->u.fed->fwd[0].status, KL_FED_STORED);
    kl_job_free(job);
    assert_int_equal(inbox_count(f->st, bob.inbox), 4);
}

/* A full inbox answers RETRY and nothing after it in the batch is stored,
 * even for another recipient: the order per pair must hold on retry. */
static void test_deliver_retry_blocks_rest(void **state)
{
    fixture_t *f = *state;
    kl_storage_user_t bob = add_user(f->st, "bob");
    kl_storage_user_t kari = add_user(f->st, "kari");
    kl_job_t *job = deliver_job(1, 1);
    add_fwd(job, 1, "bob", "fits");
    add_fwd(job, 2, "bob", "inbox full");
    add_fwd(job, 3, "kari", "behind it");
    assert_int_equal(run(f->st, job), 0);
    assert_int_equal(job->u.fed->fwd[0].status, KL_FED_STORED);
    assert_int_equal(job->u.fed->fwd[1].status, KL_FED_RETRY);
    assert_int_equal(job->u.fed->fwd[2].status, KL_FED_RETRY);
    kl_job_free(job);
    assert_int_equal(inbox_count(f->st, kari.inbox), 0);
    uint64_t epoch = 0, seq = 0;
    assert_int_equal(kl_storage_fed_in_get(f->st, "oslo.test", &epoch, &seq), 0);
    assert_int_equal(seq, 1);
    /* A failed job (its batch did not commit) reports RETRY for all. */
    job = deliver_job(1, 100);
    add_fwd(job, 2, "bob", "x");
    kl_job_fail(job, KL_EIO);
    assert_int_equal(job->u.fed->fwd[0].status, KL_FED_RETRY);
    kl_job_free(job);
    (void)bob;
}

/* Peers: add, list with outbox depth, the outbox quota, cursor acks that
 * delete entries, remove. */
static void test_peers_and_outbox(void **state)
{
    fixture_t *f = *state;
    kl_storage_peer_t p, *v = NULL;
    size_t n = 0;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "stockholm.test");
    snprintf(p.addr, sizeof p.addr, "127.0.0.1:7448");
    memset(p.key, 0x42, 32);
    p.quota.max_entries = 2;
    p.quota.max_bytes = 1 << 20;
    p.rate = 10;
    assert_int_equal(kl_storage_fed_peer_add(f->st, &p), 0);
    assert_int_not_equal(p.epoch, 0);
    assert_int_equal(kl_storage_fed_peer_add(f->st, &p), KL_EEXIST);
    for (int i = 0; i < 3; i++) {
        uint8_t *data = NULL;
        kl_job_t *job = kl_fed_job_new(KL_FED_OP_SEND, 4, &data);
        memcpy(data, "abcd", 4);
        job->u.fed->data = data;
        job->u.fed->len = 4;
        job->u.fed->outbox = p.outbox;
        job->u.fed->expires_ms = NOW + 1000;
        job->u.fed->quota = p.quota;
        assert_int_equal(run(f->st, job), i < 2 ? 0 : KL_ELIMIT);
        if (i < 2)
            assert_int_equal(job->u.fed->seq, (uint64_t)i + 1);
        kl_job_free(job);
    }
    assert_int_equal(kl_storage_fed_peer_list(f->st, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].name, "stockholm.test");
    assert_int_equal(v[0].depth, 2);
    assert_int_equal(v[0].rate, 10);
    assert_memory_equal(v[0].key, p.key, 32);
    free(v);
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_OUT_READ, 0, NULL);
    job->u.fed->outbox = p.outbox;
    job->u.fed->after = 0;
    job->u.fed->limit = 10;
    assert_int_equal(run(f->st, job), 0);
    assert_int_equal(job->u.fed->n, 2);
    kl_job_free(job);
    job = kl_fed_job_new(KL_FED_OP_OUT_ACK, 0, NULL);
    job->u.fed->outbox = p.outbox;
    job->u.fed->seq = 1;
    assert_int_equal(run(f->st, job), 0);
    kl_job_free(job);
    job = kl_fed_job_new(KL_FED_OP_STATE, 0, NULL);
    job->u.fed->peer = p.id;
    snprintf(job->u.fed->state, sizeof job->u.fed->state, "up");
    assert_int_equal(run(f->st, job), 0);
    kl_job_free(job);
    assert_int_equal(kl_storage_fed_peer_list(f->st, &v, &n), 0);
    assert_int_equal(v[0].depth, 1);
    assert_string_equal(v[0].state, "up");
    free(v);
    assert_int_equal(kl_storage_fed_peer_remove(f->st, "stockholm.test"), 0);
    assert_int_equal(kl_storage_fed_peer_remove(f->st, "stockholm.test"), KL_ENOTFOUND);
    assert_int_equal(kl_storage_fed_peer_list(f->st, &v, &n), 0);
    assert_int_equal(n, 0);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deliver_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deliver_retry_blocks_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peers_and_outbox, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
