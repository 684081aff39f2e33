/* The storage side of federation jobs (run on the storage thread inside a
 * group commit, like every other job; see fed_job.h for the operations). */
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/wire.h"
#include "relay.pb-c.h"
#include "storage/storage_cmirror.h"
#include "storage/storage_fed.h"

kl_job_t *kl_fed_job_new(kl_fed_op_t op, size_t extra_len, uint8_t **extra)
{
    kl_job_t *job = kl_job_new(KL_JOB_FED, extra_len, extra);
    if (job == NULL)
        return NULL;
    job->u.fed = calloc(1, sizeof *job->u.fed);
    if (job->u.fed == NULL) {
        kl_job_free(job); /* u.fed NULL: nothing of it to free */
        return NULL;
    }
    job->u.fed->op = op;
    if (op == KL_FED_OP_IN_DELIVER) {
        job->u.fed->fwd = calloc(KL_FED_BATCH, sizeof *job->u.fed->fwd);
        if (job->u.fed->fwd == NULL) {
            kl_job_free(job);
            return NULL;
        }
    }
    return job;
}

/* Store a batch of forwards from origin relay fj->address, in order,
 * against the origin's watermark (see proto/federation.proto). Returns a
 * storage error only for a failure that must undo the whole job. */
static int in_deliver(kl_fed_job_t *fj, uint64_t now_ms, kl_storage_t *st)
{
    uint64_t epoch = 0, wm = 0;
    int r = kl_storage_fed_in_get(st, fj->address, &epoch, &wm);
    if (r)
        return r;
    if (epoch != fj->epoch)
        wm = 0; /* a new outbox at the origin: its seqs start afresh */
    int blocked = 0;
    for (size_t i = 0; i < fj->n_fwd; i++) {
        kl_fed_fwd_t *w = &fj->fwd[i];
        if (blocked || w->status == KL_FED_RETRY) {
            w->status = KL_FED_RETRY;
            blocked = 1;
            continue;
        }
        if (w->status == KL_FED_REJECTED) {
            if (w->seq > wm)
                wm = w->seq;
            continue;
        }
        if (w->seq <= wm) {
            w->status = KL_FED_DUPLICATE;
            continue;
        }
        kl_storage_user_t u;
        int ok = 1;
        r = w->has_token ? kl_storage_token_check(st, w->handle, w->token, &ok) : 0;
        if (r == 0)
            r = kl_storage_user_get(st, w->handle, &u);
        if (r == KL_ENOTFOUND || (r == 0 && !ok)) {
            /* No such user, or an unidentified forward whose token is not
             * (any longer) the recipient's: refused for good. */
            w->status = KL_FED_REJECTED;
            wm = w->seq;
            continue;
        }
        if (r)
            return r;
        uint64_t cap = now_ms + fj->ttl_max_ms;
        uint64_t exp = w->expires_ms == 0 || w->expires_ms > cap ? cap : w->expires_ms;
        r = kl_storage_log_append(st, u.inbox, now_ms, exp, w->body, w->len, &fj->inbox_quota,
                                  &w->inbox_seq);
        if (r == KL_ELIMIT) {
            w->status = KL_FED_RETRY;
            blocked = 1;
            continue;
        }
        if (r)
            return r;
        w->status = KL_FED_STORED;
        w->recipient = u.id;
        wm = w->seq;
    }
    return kl_storage_fed_in_set(st, fj->address, fj->epoch, wm);
}

/* The local groups of the user after the remote ones (GROUP_LIST). */
static int list_local(kl_fed_job_t *fj, kl_storage_t *st)
{
    kl_storage_ginfo_t *g = NULL;
    size_t n = 0;
    int r = kl_storage_group_list(st, fj->user_id, &g, &n);
    if (r || n == 0)
        return r;
    if (fj->n_infos + n > KL_STORAGE_MAX_GROUPS_LISTED)
        n = KL_STORAGE_MAX_GROUPS_LISTED - fj->n_infos;
    kl_storage_ginfo_t *all = realloc(fj->infos, (fj->n_infos + n + 1) * sizeof *all);
    if (all == NULL) {
        free(g);
        return KL_ENOMEM;
    }
    memcpy(all + fj->n_infos, g, n * sizeof *g);
    fj->infos = all;
    fj->n_infos += n;
    free(g);
    return 0;
}

/* The users behind a peer's notice (IN_NOTIFY). */
static int notify_ids(kl_fed_job_t *fj, kl_storage_t *st)
{
    kl_storage_user_t u;
    const char *h = fj->names;
    fj->ids = calloc(fj->n_names + 1, sizeof *fj->ids);
    if (fj->ids == NULL)
        return KL_ENOMEM;
    for (size_t i = 0; i < fj->n_names; i++, h += strlen(h) + 1) {
        int r = kl_storage_user_get(st, h, &u);
        if (r == 0)
            fj->ids[i] = u.id;
        else if (r != KL_ENOTFOUND)
            return r;
    }
    return 0;
}

int kl_fed_job_run(kl_job_t *job, kl_storage_t *st)
{
    kl_fed_job_t *fj = job->u.fed;
    kl_storage_user_t u;
    int r = KL_EINVAL;
    switch (fj->op) {
    case KL_FED_OP_SEND:
        r = kl_storage_log_append(st, fj->outbox, job->now_ms, fj->expires_ms, fj->data, fj->len,
                                  &fj->quota, &fj->seq);
        break;
    case KL_FED_OP_OUT_READ:
        r = kl_storage_log_read(st, fj->outbox, fj->after, job->now_ms, fj->limit,
                                KL_WIRE_MAX_FRAME, &fj->entries, &fj->n, &fj->more);
        break;
    case KL_FED_OP_OUT_ACK:
        r = kl_storage_log_ack(st, fj->outbox, 0, fj->seq);
        break;
    case KL_FED_OP_IN_DELIVER:
        r = in_deliver(fj, job->now_ms, st);
        break;
    case KL_FED_OP_IN_LOOKUP:
        if (fj->has_token) {
            int ok = 0;
            if ((r = kl_storage_token_check(st, fj->handle, fj->token, &ok)) || !ok) {
                r = r ? r : KL_ECRYPTO;
                break;
            }
        }
        r = kl_storage_user_get(st, fj->handle, &u);
        if (r == 0) {
            fj->exists = 1;
            memcpy(fj->identity_key, u.identity_key, 32);
        } else if (r == KL_ENOTFOUND) {
            r = 0;
        }
        break;
    case KL_FED_OP_IN_PREKEY:
        r = kl_storage_prekey_fetch(st, fj->handle, fj->take_opk, job->now_ms, &fj->bundle);
        break;
    case KL_FED_OP_STATE:
        r = kl_storage_fed_set_state(st, fj->peer, fj->state, job->now_ms);
        break;
    case KL_FED_OP_GROUP_LIST:
        r = list_local(fj, st);
        break;
    case KL_FED_OP_IN_GROUP:
        fj->inner->now_ms = job->now_ms;
        r = KL_JOB_IS_CHAN(fj->inner->kind) ? kl_job_run_channel(fj->inner, st)
                                            : kl_job_run_group(fj->inner, st);
        fj->inner->result = r;
        break;
    case KL_FED_OP_CHAN_SUB:
        r = kl_job_mirror_sub(st, fj, job->now_ms);
        break;
    case KL_FED_OP_MIRROR:
        r = fj->step == KL_MIRROR_READ    ? kl_job_mirror_read(st, fj)
            : fj->step == KL_MIRROR_DEACT ? kl_job_mirror_deactivate(st, fj)
            : fj->step == KL_MIRROR_STORE ? kl_job_mirror_store(st, fj, job->now_ms)
                                          : KL_EINVAL;
        break;
    case KL_FED_OP_MIRROR_LIST: {
        size_t len = 0;
        r = kl_storage_cmirror_list(st, fj->address, &fj->names, &len, &fj->n_names);
        break;
    }
    case KL_FED_OP_IN_NOTIFY:
        r = notify_ids(fj, st);
        break;
    case KL_FED_OP_LOOKUP:
    case KL_FED_OP_PREKEY:
    case KL_FED_OP_GROUP:
        break; /* network ops never reach storage */
    }
    return r;
}

void kl_fed_job_drop(kl_job_t *job)
{
    kl_fed_job_t *fj = job->u.fed;
    if (fj == NULL)
        return;
    kl_storage_entries_free(fj->entries, fj->n);
    fj->entries = NULL;
    fj->n = 0;
    fj->more = 0;
    fj->exists = 0;
    memset(&fj->bundle, 0, sizeof fj->bundle);
    if (fj->inner) {
        /* Nothing uncommitted is reported: not the inner job's outputs. */
        if (KL_JOB_IS_CHAN(fj->inner->kind))
            kl_job_drop_channel(fj->inner);
        else
            kl_job_drop_group(fj->inner);
        if (fj->inner->result == 0)
            fj->inner->result = KL_EIO;
    }
    free(fj->ids);
    fj->ids = NULL;
    if (fj->op == KL_FED_OP_IN_DELIVER)
        for (size_t i = 0; i < fj->n_fwd; i++)
            if (fj->fwd[i].status != KL_FED_REJECTED)
                fj->fwd[i].status = KL_FED_RETRY;
}

void kl_fed_job_free_part(kl_job_t *job)
{
    kl_fed_job_t *fj = job->u.fed;
    if (fj == NULL)
        return;
    for (size_t i = 0; fj->fwd && i < fj->n_fwd && i < KL_FED_BATCH; i++)
        kl_free_wipe(fj->fwd[i].body, fj->fwd[i].len);
    if (fj->fwd)
        kl_free_wipe(fj->fwd, KL_FED_BATCH * sizeof *fj->fwd); /* tokens */
    if (fj->reply)
        protobuf_c_message_free_unpacked(fj->reply, NULL);
    if (fj->reply2)
        protobuf_c_message_free_unpacked(fj->reply2, NULL);
    free(fj->infos);
    kl_job_free(fj->inner);
    free(fj->names);
    free(fj->ids);
    kl_free_wipe(fj, sizeof *fj);
    job->u.fed = NULL;
}
