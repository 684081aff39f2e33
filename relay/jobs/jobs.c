#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage/storage_admin.h"

/* Jobs are allocated with their size recorded just before them so that
 * kl_job_free can wipe the whole allocation, send body included. */
typedef struct job_alloc {
    size_t size;
    kl_job_t job;
} job_alloc_t;

kl_job_t *kl_job_new(kl_job_kind_t kind, size_t extra_len, uint8_t **extra)
{
    if (extra_len > SIZE_MAX - sizeof(job_alloc_t))
        return NULL;
    size_t size = sizeof(job_alloc_t) + extra_len;
    job_alloc_t *a = calloc(1, size);
    if (a == NULL)
        return NULL;
    a->size = size;
    a->job.kind = kind;
    if (extra)
        *extra = (uint8_t *)(a + 1);
    return &a->job;
}

static job_alloc_t *alloc_of(kl_job_t *job)
{
    return (job_alloc_t *)((char *)job - offsetof(job_alloc_t, job));
}

static void drop_outputs(kl_job_t *job)
{
    switch (job->kind) {
    case KL_JOB_FETCH:
        kl_storage_entries_free(job->u.fetch.entries, job->u.fetch.n);
        job->u.fetch.entries = NULL;
        job->u.fetch.n = 0;
        job->u.fetch.more = 0;
        break;
    case KL_JOB_PREKEY_FETCH:
        memset(&job->u.pfetch.bundle, 0, sizeof job->u.pfetch.bundle);
        break;
    case KL_JOB_LOOKUP:
        job->u.lookup.exists = 0;
        break;
    case KL_JOB_PEER_LIST:
        free(job->u.peers.list);
        job->u.peers.list = NULL;
        job->u.peers.n = 0;
        break;
    case KL_JOB_STATS:
        free(job->u.stats.peers);
        memset(&job->u.stats, 0, sizeof job->u.stats);
        break;
    case KL_JOB_EXPIRE:
        job->u.expire.deleted = 0;
        job->u.expire.more = 0;
        break;
    case KL_JOB_FED:
        kl_fed_job_drop(job);
        break;
    default:
        if (KL_JOB_IS_GROUP(job->kind))
            kl_job_drop_group(job);
        else if (KL_JOB_IS_CHAN(job->kind))
            kl_job_drop_channel(job);
        break;
    }
}

void kl_job_fail(kl_job_t *job, int err)
{
    drop_outputs(job);
    job->result = err;
}

int kl_job_needs_savepoint(const kl_job_t *job)
{
    switch (job->kind) {
    case KL_JOB_SEND:    /* kl_storage_user_route, then one kl_storage_log_append */
    case KL_JOB_AUTH:    /* reads only */
    case KL_JOB_LOOKUP:
    case KL_JOB_FETCH:
    case KL_JOB_PREKEY_STATUS:
    case KL_JOB_STATS:
        return 0;
    default:
        return 1;
    }
}

/* An unidentified request (has_token): handle's delivery token is the only
 * authority, and a wrong token and an unknown user look the same
 * (KL_ECRYPTO). 0 for identified requests. */
static int token_gate(kl_storage_t *st, int has_token, const char *handle,
                      const uint8_t token[32])
{
    int ok = 0;
    if (!has_token)
        return 0;
    int r = kl_storage_token_check(st, handle, token, &ok);
    return r ? r : ok ? 0 : KL_ECRYPTO;
}

void kl_job_run(kl_job_t *job, kl_storage_t *st)
{
    int r = KL_EINVAL;
    switch (job->kind) {
    case KL_JOB_REGISTER:
        r = kl_storage_register(st, job->u.reg.handle, job->u.reg.identity_key, job->u.reg.code,
                                job->now_ms, &job->u.reg.user);
        break;
    case KL_JOB_AUTH:
        r = kl_storage_user_get(st, job->u.auth.handle, &job->u.auth.user);
        break;
    case KL_JOB_LOOKUP: {
        kl_storage_user_t u;
        if ((r = token_gate(st, job->u.lookup.has_token, job->u.lookup.handle,
                            job->u.lookup.token)))
            break;
        r = kl_storage_user_get(st, job->u.lookup.handle, &u);
        if (r == 0) {
            job->u.lookup.exists = 1;
            memcpy(job->u.lookup.identity_key, u.identity_key, 32);
        } else if (r == KL_ENOTFOUND) {
            r = 0; /* "does not exist" is an answer, not a failure */
        }
        break;
    }
    case KL_JOB_PREKEY_UPLOAD:
        r = 0;
        if (job->u.upload.has_spk)
            r = kl_storage_prekey_set_signed(st, job->u.upload.user, job->u.upload.spk_id,
                                             job->u.upload.spk, job->u.upload.spk_sig);
        if (r == 0 && job->u.upload.n_opks > 0)
            r = kl_storage_prekey_add_onetime(st, job->u.upload.user, job->u.upload.opks,
                                              job->u.upload.n_opks);
        break;
    case KL_JOB_PREKEY_FETCH:
        r = kl_storage_prekey_fetch(st, job->u.pfetch.handle, job->u.pfetch.take_opk,
                                    job->now_ms, &job->u.pfetch.bundle);
        break;
    case KL_JOB_PREKEY_STATUS:
        r = kl_storage_prekey_status(st, job->u.pstatus.user, &job->u.pstatus.status);
        break;
    case KL_JOB_SEND: {
        uint64_t id = 0, inbox = 0;
        if ((r = token_gate(st, job->u.send.has_token, job->u.send.handle, job->u.send.token)))
            break;
        r = kl_storage_user_route(st, job->u.send.handle, &id, &inbox);
        if (r == 0)
            r = kl_storage_log_append(st, inbox, job->now_ms, job->u.send.expires_ms,
                                      job->u.send.body, job->u.send.len, &job->u.send.quota,
                                      &job->u.send.seq);
        if (r == 0)
            job->u.send.recipient = id;
        break;
    }
    case KL_JOB_FETCH:
        r = kl_storage_log_read(st, job->u.fetch.log, job->u.fetch.after, job->now_ms,
                                job->u.fetch.limit, job->u.fetch.max_bytes, &job->u.fetch.entries,
                                &job->u.fetch.n, &job->u.fetch.more);
        break;
    case KL_JOB_ACK:
        r = kl_storage_log_ack(st, job->u.ack.log, job->u.ack.reader, job->u.ack.seq);
        break;
    case KL_JOB_TOKEN_SET:
        r = kl_storage_token_set(st, job->u.token_set.user,
                                 job->u.token_set.has ? job->u.token_set.hash : NULL);
        break;
    case KL_JOB_USER_REMOVE:
        r = kl_storage_user_remove(st, job->u.remove.handle, job->now_ms, &job->u.remove.user);
        break;
    case KL_JOB_MAX_BYTES:
        r = kl_storage_set_max_bytes(st, job->u.max_bytes.max, &job->u.max_bytes.effective);
        break;
    case KL_JOB_PEER_LIST:
        r = kl_storage_fed_peer_list(st, &job->u.peers.list, &job->u.peers.n);
        break;
    case KL_JOB_EXPIRE:
        r = kl_storage_expire(st, job->now_ms, job->u.expire.max, &job->u.expire.deleted,
                              &job->u.expire.more);
        break;
    case KL_JOB_STATS:
        r = kl_storage_stats(st, job->now_ms, &job->u.stats.stats);
        if (r == 0)
            r = kl_storage_fed_peer_list(st, &job->u.stats.peers, &job->u.stats.n_peers);
        break;
    case KL_JOB_FED:
        r = kl_fed_job_run(job, st);
        break;
    default:
        if (KL_JOB_IS_GROUP(job->kind))
            r = kl_job_run_group(job, st);
        else if (KL_JOB_IS_CHAN(job->kind))
            r = kl_job_run_channel(job, st);
        break;
    }
    if (r != 0)
        drop_outputs(job);
    job->result = r;
}

void kl_job_free(kl_job_t *job)
{
    if (job == NULL)
        return;
    drop_outputs(job);
    if (job->kind == KL_JOB_PREKEY_UPLOAD)
        free(job->u.upload.opks);
    if (job->kind == KL_JOB_FED)
        kl_fed_job_free_part(job);
    job_alloc_t *a = alloc_of(job);
    kl_free_wipe(a, a->size);
}
