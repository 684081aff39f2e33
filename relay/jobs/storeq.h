/* The storage thread. It owns the relay's write connection to storage; the
 * loop submits jobs and gets them back, finished, on the loop thread.
 *
 * Group commit: the thread takes every pending job (up to
 * KL_STOREQ_MAX_BATCH), runs them inside ONE transaction, each job in its own
 * savepoint so a failing job does not spoil the others, and commits once.
 * Only then are the jobs handed back (uv_async_send). If the commit fails,
 * each job is run again in a transaction of its own (so that reads and
 * acks are not refused because a new message did not fit on a full disk);
 * a job that fails alone too comes back with result KL_EIO and no outputs:
 * a reply is never sent for something that is not durable. If the
 * transaction cannot even begin, every job fails at once.
 *
 * A second thread runs the backend's background maintenance (storage.h,
 * kl_storage_maint_*; for sqlite the write-ahead log's checkpoints), so it
 * does not delay commits. */
#ifndef KOLLEGA_RELAY_STOREQ_H
#define KOLLEGA_RELAY_STOREQ_H

#include <uv.h>

#include "jobs.h"
#include "base/metrics.h"
#include "storage/storage.h"

#define KL_STOREQ_MAX_BATCH 4096

typedef struct kl_storeq kl_storeq_t;

/* Called on the loop thread for each finished job, in submission order.
 * The callback owns the job (kl_job_free it). */
typedef void (*kl_storeq_done_cb)(void *ud, kl_job_t *job);

/* Start the thread (before uv_run or from a loop callback). On success st
 * is owned by the queue (closed by kl_storeq_stop); on failure the caller
 * keeps it. 0, KL_ENOMEM, or a libuv error. */
int kl_storeq_start(kl_storeq_t **out, uv_loop_t *loop, kl_storage_t *st, kl_storeq_done_cb cb,
                    void *ud);
/* Queue a job (loop thread). From a callback that kl_storeq_stop is
 * running, the job is failed with KL_EIO and handed back like any other. */
void kl_storeq_submit(kl_storeq_t *q, kl_job_t *job);
/* Count every transaction's commit (or failure) and duration in m from
 * the next batch on (loop thread; m outlives the queue, NULL: stop). */
void kl_storeq_set_metrics(kl_storeq_t *q, kl_metrics_t *m);
/* Number of jobs submitted and not yet handed back. */
size_t kl_storeq_pending(const kl_storeq_t *q);
/* Drain: run and commit everything queued, join the thread, hand every
 * job back through the callback, close the storage and the async handle,
 * and free the queue once libuv has released the handle. Loop thread; q
 * must not be used once this returns. */
void kl_storeq_stop(kl_storeq_t *q);

#endif
