/* relay/storeq.c: the storage thread's group commit, seen from the loop. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "jobs/jobs.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "base/diag.h"
#include "storage/storage.h"
#include "jobs/storeq.h"

#define NOW 1700000000000ull
#define CODE "storeq-test-invite-code-0123456789abcdefgh"
#define MAXJ 256

typedef struct fx {
    char dir[64], path[128];
    uv_loop_t loop;
    kl_storeq_t *q;
    kl_job_t *done[MAXJ];
    size_t n_done;
    uint64_t inbox;
} fx_t;

static void on_done(void *ud, kl_job_t *job)
{
    fx_t *f = ud;
    assert_true(f->n_done < MAXJ);
    f->done[f->n_done++] = job;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    kl_storage_t *st = NULL;
    uint8_t ik[32] = {1};
    kl_storage_user_t u;
    if (f == NULL || kl_crypto_init() != 0)
        return -1;
    kl_diag_set_level(KL_DIAG_ERROR);
    snprintf(f->dir, sizeof f->dir, "/tmp/kl-storeq-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/relay.db", f->dir);
    if (kl_storage_open(&st, f->path, KL_STORAGE_CREATE) != 0 ||
        kl_storage_invite_create(st, CODE, 1, NOW + 1000, NOW) != 0 ||
        kl_storage_register(st, "bob", ik, CODE, NOW, &u) != 0)
        return -1;
    f->inbox = u.inbox;
    uv_loop_init(&f->loop);
    if (kl_storeq_start(&f->q, &f->loop, st, on_done, f) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    if (f->q)
        kl_storeq_stop(f->q);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    for (size_t i = 0; i < f->n_done; i++)
        kl_job_free(f->done[i]);
    char p[200];
    const char *names[] = {"relay.db", "relay.db-wal", "relay.db-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", f->dir, names[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static kl_job_t *send_job(const char *to, const char *body)
{
    uint8_t *b = NULL;
    size_t len = strlen(body);
    kl_job_t *j = kl_job_new(KL_JOB_SEND, len, &b);
    assert_non_null(j);
    memcpy(b, body, len);
    snprintf(j->u.send.handle, sizeof j->u.send.handle, "%s", to);
    j->u.send.body = b;
    j->u.send.len = len;
    j->u.send.expires_ms = NOW + 100000;
    j->u.send.quota.max_entries = 1000;
    j->u.send.quota.max_bytes = 1 << 20;
    j->now_ms = NOW;
    return j;
}

static void wait_done(fx_t *f, size_t n)
{
    while (f->n_done < n)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static size_t stored_entries(fx_t *f)
{
    kl_storage_t *st = NULL;
    kl_storage_stats_t s;
    assert_int_equal(kl_storage_open(&st, f->path, KL_STORAGE_READONLY), 0);
    assert_int_equal(kl_storage_stats(st, NOW, &s), 0);
    kl_storage_close(st);
    return (size_t)s.entries;
}

static void test_jobs_complete_in_order(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < 100; i++)
        kl_storeq_submit(f->q, send_job("bob", "x"));
    assert_int_equal(kl_storeq_pending(f->q), 100);
    wait_done(f, 100);
    assert_int_equal(kl_storeq_pending(f->q), 0);
    for (size_t i = 0; i < 100; i++) {
        assert_int_equal(f->done[i]->result, 0);
        assert_int_equal(f->done[i]->u.send.seq, i + 1);
    }
    assert_int_equal(stored_entries(f), 100);
}

static void test_failing_job_does_not_spoil_batch(void **state)
{
    fx_t *f = *state;
    kl_storeq_submit(f->q, send_job("bob", "first"));
    kl_storeq_submit(f->q, send_job("nobody", "lost"));
    kl_storeq_submit(f->q, send_job("bob", "second"));
    wait_done(f, 3);
    assert_int_equal(f->done[0]->result, 0);
    assert_int_equal(f->done[1]->result, KL_ENOTFOUND);
    assert_int_equal(f->done[2]->result, 0);
    assert_int_equal(f->done[2]->u.send.seq, 2);
    assert_int_equal(stored_entries(f), 2);
}

/* Another process holds the write lock longer than the busy timeout: the
 * batch cannot even begin, every job gets KL_EIO, nothing is stored. */
static void test_failed_batch_acknowledges_nothing(void **state)
{
    fx_t *f = *state;
    kl_storage_t *other = NULL;
    assert_int_equal(kl_storage_open(&other, f->path, 0), 0);
    assert_int_equal(kl_storage_batch_begin(other), 0);
    kl_storeq_submit(f->q, send_job("bob", "never"));
    kl_storeq_submit(f->q, send_job("bob", "never either"));
    wait_done(f, 2);
    kl_storage_batch_rollback(other);
    kl_storage_close(other);
    assert_int_equal(f->done[0]->result, KL_EIO);
    assert_int_equal(f->done[1]->result, KL_EIO);
    assert_int_equal(stored_entries(f), 0);
    /* and the queue keeps working afterwards */
    kl_storeq_submit(f->q, send_job("bob", "later"));
    wait_done(f, 3);
    assert_int_equal(f->done[2]->result, 0);
    assert_int_equal(f->done[2]->u.send.seq, 1);
}

static void test_stop_drains_and_commits(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < 50; i++)
        kl_storeq_submit(f->q, send_job("bob", "y"));
    kl_storeq_stop(f->q);
    f->q = NULL;
    assert_int_equal(f->n_done, 50); /* handed back synchronously by stop */
    for (size_t i = 0; i < 50; i++)
        assert_int_equal(f->done[i]->result, 0);
    assert_int_equal(stored_entries(f), 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jobs_complete_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_job_does_not_spoil_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_batch_acknowledges_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_drains_and_commits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
