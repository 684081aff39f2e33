#include <stdlib.h>

#include "kollega/err.h"
#include "base/diag.h"
#include "base/metrics.h"
#include "storeq.h"

typedef struct job_list {
    kl_job_t *head;
    kl_job_t *tail;
} job_list_t;

struct kl_storeq {
    uv_loop_t *loop;
    kl_storage_t *st;
    kl_storeq_done_cb cb;
    void *ud;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cond;
    uv_async_t async;
    job_list_t queued;   /* loop -> thread, under mu */
    job_list_t done;   /* thread -> loop, under mu */
    int stopping;      /* under mu */
    int stopped;       /* loop thread only: no more submissions run */
    size_t in_flight;  /* loop thread only */
    size_t failed_unlogged; /* storage thread only: see log_failures */
    uint64_t logged_ns;     /* storage thread only */
    /* Background maintenance (see maint_main); maint is NULL without it. */
    kl_storage_maint_t *maint;
    uv_thread_t maint_thread;
    uv_cond_t maint_cond;
    int maint_want;         /* under mu */
    kl_metrics_t *metrics;  /* under mu (kl_storeq_set_metrics); NULL: none */
    kl_metrics_t *m;        /* storage thread only: metrics of the batch running */
};

static void list_push(job_list_t *l, kl_job_t *j)
{
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static void list_append(job_list_t *l, job_list_t *m)
{
    if (m->head == NULL)
        return;
    if (l->tail)
        l->tail->next = m->head;
    else
        l->head = m->head;
    l->tail = m->tail;
    m->head = m->tail = NULL;
}

/* Take at most KL_STOREQ_MAX_BATCH jobs off queued (under mu), so one
 * transaction stays short even when the loop has queued a flood. */
static job_list_t take_batch(kl_storeq_t *q)
{
    job_list_t b = {q->queued.head, NULL};
    kl_job_t *j = q->queued.head;
    size_t n = 0;
    while (j && ++n < KL_STOREQ_MAX_BATCH)
        j = j->next;
    if (j == NULL || j->next == NULL) {
        b.tail = q->queued.tail;
        q->queued.head = q->queued.tail = NULL;
    } else {
        b.tail = j;
        q->queued.head = j->next;
        j->next = NULL;
    }
    return b;
}

/* The batch did not commit: every job fails, with no outputs. */
static void fail_all(job_list_t *b, int err)
{
    for (kl_job_t *j = b->head; j; j = j->next)
        kl_job_fail(j, err);
}

/* Storage errors are logged from this thread at most once per interval,
 * with the number of failed jobs since the last line: a full disk under
 * load fails every batch, and the log must not become the next thing to
 * fill it. */
#define LOG_INTERVAL_NS (10ull * 1000 * 1000 * 1000)

static void log_failures(kl_storeq_t *q, size_t failed, const char *what)
{
    uint64_t now = uv_hrtime();
    q->failed_unlogged += failed;
    if (q->failed_unlogged == 0 || (q->logged_ns != 0 && now - q->logged_ns < LOG_INTERVAL_NS))
        return;
    kl_diag(KL_DIAG_ERROR, "storage: %zu jobs failed since the last report: %s; clients get "
           "UNAVAILABLE and retry", q->failed_unlogged, what);
    q->failed_unlogged = 0;
    q->logged_ns = now;
}

#define BATCH_OK 0
#define BATCH_NOT_BEGUN 1   /* the transaction never started (lock held too long) */
#define BATCH_LOST 2        /* it started but did not commit */

/* One group commit over b. A job whose savepoint cannot even be opened or
 * closed means the transaction itself is broken: the whole batch is
 * abandoned. On failure every job of b has failed with KL_EIO. */
static int transaction(kl_storeq_t *q, job_list_t *b)
{
    if (kl_storage_batch_begin(q->st) != 0) {
        fail_all(b, KL_EIO);
        return BATCH_NOT_BEGUN;
    }
    for (kl_job_t *j = b->head; j; j = j->next) {
        /* A savepoint costs two statements; most 1:1 messages need none
         * (kl_job_needs_savepoint). */
        int sp = kl_job_needs_savepoint(j);
        if (sp && kl_storage_job_begin(q->st) != 0) {
            kl_storage_batch_rollback(q->st);
            fail_all(b, KL_EIO);
            return BATCH_LOST;
        }
        kl_job_run(j, q->st);
        if (!sp && j->result != 0 && !kl_storage_batch_open(q->st)) {
            fail_all(b, KL_EIO); /* sqlite ended the transaction: nothing of it stays */
            return BATCH_LOST;
        }
        if (sp && kl_storage_job_end(q->st, j->result) != 0) {
            kl_storage_batch_rollback(q->st);
            fail_all(b, KL_EIO);
            return BATCH_LOST;
        }
    }
    if (kl_storage_batch_commit(q->st) != 0) {
        fail_all(b, KL_EIO);
        return BATCH_LOST;
    }
    return BATCH_OK;
}

/* transaction(), counted in the metrics with its duration. */
static int commit_batch(kl_storeq_t *q, job_list_t *b)
{
    uint64_t t0 = uv_hrtime();
    int r = transaction(q, b);
    kl_metrics_commit(q->m, r == BATCH_OK, uv_hrtime() - t0);
    return r;
}

/* Run a batch. When its commit fails (typically the disk is full: the
 * write-ahead log cannot grow), one job that could not be stored must not
 * take the others down with it: auth, fetch and lookup write nothing, and
 * an ack may fit where a new message does not. So each job is run again in
 * a transaction of its own, in the original order, and only those that
 * fail alone fail. This costs one commit per job, and only after a failed
 * commit. When the transaction could not even begin (another process held
 * the lock past the busy timeout), retrying job by job would wait that
 * long once per job, so the batch fails as a whole. */
static void run_batch(kl_storeq_t *q, job_list_t *b)
{
    size_t failed = 0;
    int r = commit_batch(q, b);
    if (r == BATCH_LOST && b->head != b->tail) {
        int alone = BATCH_OK;
        for (kl_job_t *j = b->head; j; j = j->next) {
            kl_job_t *next = j->next;
            job_list_t one = {j, j};
            j->next = NULL;
            /* Once the lock cannot be had, the rest keep their KL_EIO. */
            if (alone != BATCH_NOT_BEGUN)
                alone = commit_batch(q, &one);
            j->next = next;
        }
    }
    /* KL_EIO: the job was not stored, whether its batch failed or one of
     * its statements hit a cap (sqlite's max_page_count). */
    for (kl_job_t *j = b->head; j; j = j->next)
        failed += j->result == KL_EIO;
    log_failures(q, failed,
                 r == BATCH_NOT_BEGUN
                     ? "another process held the database lock too long"
                     : "the database or the disk is full (free space, or raise "
                       "--max-db-bytes), or the disk is failing");
}

static void thread_main(void *arg)
{
    kl_storeq_t *q = arg;
    uv_mutex_lock(&q->mu);
    for (;;) {
        while (q->queued.head == NULL && !q->stopping)
            uv_cond_wait(&q->cond, &q->mu);
        if (q->queued.head == NULL && q->stopping)
            break;
        job_list_t b = take_batch(q);
        q->m = q->metrics;
        uv_mutex_unlock(&q->mu);
        run_batch(q, &b);
        uv_mutex_lock(&q->mu);
        list_append(&q->done, &b);
        uv_async_send(&q->async);
        if (q->maint && !q->maint_want && kl_storage_maint_due(q->st)) {
            q->maint_want = 1;
            uv_cond_signal(&q->maint_cond);
        }
    }
    uv_mutex_unlock(&q->mu);
}

/* The storage backend's maintenance (storage.h: for sqlite, copying the
 * write-ahead log back into the database) on a thread of its own, so that
 * it never delays a commit: the storage thread asks after a batch that left
 * work due, this thread does it. A failed round (full disk) is harmless:
 * nothing is lost and the next request tries again. */
static void maint_main(void *arg)
{
    kl_storeq_t *q = arg;
    uv_mutex_lock(&q->mu);
    for (;;) {
        while (!q->maint_want && !q->stopping)
            uv_cond_wait(&q->maint_cond, &q->mu);
        if (q->stopping)
            break;
        q->maint_want = 0;
        uv_mutex_unlock(&q->mu);
        kl_storage_maint_run(q->maint);
        uv_mutex_lock(&q->mu);
    }
    uv_mutex_unlock(&q->mu);
}

/* Start the maintenance thread; without it (no backend support, no second
 * connection, no thread) the backend does that work in its commits. */
static void maint_start(kl_storeq_t *q)
{
    kl_storage_maint_t *m = NULL;
    if (uv_cond_init(&q->maint_cond) != 0)
        return;
    if (kl_storage_maint_open(q->st, &m) == 0) {
        q->maint = m;
        if (uv_thread_create(&q->maint_thread, maint_main, q) == 0)
            return;
        q->maint = NULL;
        kl_storage_maint_close(m);
    }
    kl_diag(KL_DIAG_INFO, "storage: no background maintenance; commits do it themselves");
    uv_cond_destroy(&q->maint_cond);
}

static void maint_stop(kl_storeq_t *q)
{
    if (q->maint == NULL)
        return;
    uv_thread_join(&q->maint_thread);
    kl_storage_maint_close(q->maint);
    q->maint = NULL;
    uv_cond_destroy(&q->maint_cond);
}

/* Hand finished jobs to the loop. Takes the whole done list at once so
 * the lock is held for a pointer swap only. */
static void deliver(kl_storeq_t *q)
{
    uv_mutex_lock(&q->mu);
    job_list_t d = q->done;
    q->done.head = q->done.tail = NULL;
    uv_mutex_unlock(&q->mu);
    kl_job_t *j = d.head;
    while (j) {
        kl_job_t *next = j->next;
        j->next = NULL;
        q->in_flight--;
        q->cb(q->ud, j);
        j = next;
    }
}

static void on_async(uv_async_t *a)
{
    deliver(a->data);
}

int kl_storeq_start(kl_storeq_t **out, uv_loop_t *loop, kl_storage_t *st, kl_storeq_done_cb cb,
                    void *ud)
{
    *out = NULL;
    kl_storeq_t *q = calloc(1, sizeof *q);
    if (q == NULL)
        return KL_ENOMEM;
    q->loop = loop;
    q->st = st;
    q->cb = cb;
    q->ud = ud;
    int r = uv_mutex_init(&q->mu);
    if (r)
        goto fail_mu;
    r = uv_cond_init(&q->cond);
    if (r)
        goto fail_cond;
    maint_start(q);
    /* The thread starts before the async handle exists; that is safe
     * because it only signals the loop after finishing a job, and no job
     * can be submitted before this function returns. */
    r = uv_thread_create(&q->thread, thread_main, q);
    if (r)
        goto fail_thread;
    r = uv_async_init(loop, &q->async, on_async);
    if (r)
        goto fail_async;
    q->async.data = q;
    *out = q;
    return 0;
fail_async:
    uv_mutex_lock(&q->mu);
    q->stopping = 1;
    uv_cond_signal(&q->cond);
    uv_mutex_unlock(&q->mu);
    uv_thread_join(&q->thread);
fail_thread:
    if (q->maint) {
        uv_mutex_lock(&q->mu);
        q->stopping = 1;
        uv_cond_signal(&q->maint_cond);
        uv_mutex_unlock(&q->mu);
        maint_stop(q); /* the caller keeps st, which does the work itself again */
    }
    uv_cond_destroy(&q->cond);
fail_cond:
    uv_mutex_destroy(&q->mu);
fail_mu:
    free(q);
    return r;
}

void kl_storeq_submit(kl_storeq_t *q, kl_job_t *job)
{
    q->in_flight++;
    if (q->stopped) {
        /* The thread is gone: fail the job but still hand it back through
         * the callback on a later loop turn, never re-entrantly. */
        kl_job_fail(job, KL_EIO);
        uv_mutex_lock(&q->mu);
        list_push(&q->done, job);
        uv_mutex_unlock(&q->mu);
        return;
    }
    uv_mutex_lock(&q->mu);
    list_push(&q->queued, job);
    uv_cond_signal(&q->cond);
    uv_mutex_unlock(&q->mu);
}

void kl_storeq_set_metrics(kl_storeq_t *q, kl_metrics_t *m)
{
    uv_mutex_lock(&q->mu);
    q->metrics = m;
    uv_mutex_unlock(&q->mu);
}

size_t kl_storeq_pending(const kl_storeq_t *q)
{
    return q->in_flight;
}

static void on_close(uv_handle_t *h)
{
    kl_storeq_t *q = h->data;
    uv_cond_destroy(&q->cond);
    uv_mutex_destroy(&q->mu);
    free(q);
}

void kl_storeq_stop(kl_storeq_t *q)
{
    if (q == NULL || q->stopped)
        return;
    uv_mutex_lock(&q->mu);
    q->stopping = 1;
    uv_cond_signal(&q->cond);
    if (q->maint)
        uv_cond_signal(&q->maint_cond);
    uv_mutex_unlock(&q->mu);
    /* The thread commits what is queued and exits; the loop waits here
     * only at shutdown. The storage connection closes last (for sqlite its
     * close checkpoints the whole log and removes it). */
    uv_thread_join(&q->thread);
    maint_stop(q);
    q->stopped = 1;
    kl_storage_close(q->st);
    q->st = NULL;
    /* Callbacks may submit again (they see failures); loop until quiet. */
    do {
        deliver(q);
    } while (q->done.head != NULL);
    uv_close((uv_handle_t *)&q->async, on_close);
}
