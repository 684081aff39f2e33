/* The storage-thread half of broadcast channels: each KL_JOB_CHAN_* job
 * runs here inside the storage batch (see jobs.h), so validating an op or
 * a post against the stored publisher log and storing it is one atomic
 * step.
 *
 * Results (job->result), turned into replies by dispatch_channel.c:
 *   KL_ENOTFOUND  no such channel (for an op: any index but 0)
 *   KL_EEXIST     create of an existing channel
 *   KL_ESTATE     the op's index/prev does not continue the stored log
 *   KL_EREFUSED   the rules refuse the op or the post (u.chan.verr says
 *                 why), or the caller does not subscribe (read, ack,
 *                 unsubscribe)
 *   KL_EPROTO     the op or post is malformed or its signature does not
 *                 verify (u.chan.verr)
 *   KL_ELIMIT     the channel's post log is over its quota, or the
 *                 channel has KL_STORAGE_CHANNEL_MAX_OPS ops
 *   KL_EIO etc.   storage failures (also a stored log that no longer
 *                 validates: the relay refuses to build on it) */
#include <stdlib.h>
#include <string.h>

#include "chan_cache.h"
#include "jobs.h"
#include "storage/storage_cmirror.h"
#include "storage/storage_gfed.h"
#include "kollega/channel.h"
#include "kollega/crypto.h"
#include "kollega/err.h"

/* Ops per channel_log reply. */
#define FETCH_OPS_MAX 500

void kl_job_drop_channel(kl_job_t *job)
{
    kl_oplog_out_free(&job->u.chan.out);
    free(job->u.chan.infos);
    job->u.chan.infos = NULL;
    job->u.chan.n_infos = 0;
}

/* Subscribers to push an op or post to, and the peers that mirror it. */
static int audience(kl_storage_t *st, kl_chan_job_t *j)
{
    kl_oplog_out_t *o = &j->out;
    int r = kl_storage_channel_subscribers(st, j->chan.id, &o->push, &o->n_push);
    if (r == 0 && o->n_push > 0)
        r = kl_storage_channel_relays(st, j->chan.id, &o->notify, &o->notify_len, &o->n_notify);
    return r;
}

/* A federation peer's caller as a user id (storage_gfed.h shadow users):
 * created for a subscribe, else 0 when it has none (it then subscribes to
 * nothing and owns nothing). */
static int resolve(kl_job_t *job, kl_storage_t *st)
{
    kl_chan_job_t *j = &job->u.chan;
    if (j->remote[0] == '\0')
        return 0;
    return kl_storage_shadow_user(st, j->remote, j->remote_key, job->kind == KL_JOB_CHAN_SUB,
                                  &j->user);
}

static int state_new(void **state, const char *address)
{
    kl_channel_t *c = NULL;
    int r = kl_channel_new(&c, address);
    *state = c;
    return r;
}

static int replay_op(void *state, const uint8_t *op, size_t len)
{
    kl_channel_verr_t why = KL_CV_OK;
    return kl_channel_apply(state, op, len, NULL, &why);
}

static void state_free(void *state)
{
    kl_channel_free(state);
}

static uint64_t state_next_index(const void *state)
{
    return kl_channel_next_index(state);
}

static void state_head(const void *state, uint8_t out[32])
{
    kl_channel_head(state, out);
}

static const kl_oplog_kind_t CHANNEL_LOG = {
    {state_free, state_next_index, state_head}, state_new, replay_op, kl_storage_channel_ops,
    kl_ccache_states,
};

int kl_job_channel_state(kl_storage_t *st, const char *address, const kl_storage_channel_t *c,
                         kl_channel_t **out)
{
    void *state = NULL;
    kl_oplog_row_t row = {c->id, c->next_index, c->head};
    *out = NULL;
    if (c->next_index > KL_STORAGE_CHANNEL_MAX_OPS)
        return KL_EIO; /* more than storage ever takes: the database was edited */
    int r = kl_oplog_state(st, &CHANNEL_LOG, address, &row, &state);
    *out = state;
    return r;
}

int kl_job_channel_drop_member(kl_storage_t *st, const kl_storage_channel_t *c,
                               const uint8_t key[32], const char *address)
{
    kl_addr_t a;
    kl_storage_user_t u;
    if (kl_addr_parse(address, &a) != 0 || a.is_group)
        return 0;
    int r = kl_storage_user_get(st, a.handle, &u);
    if (r == KL_ENOTFOUND || (r == 0 && memcmp(u.identity_key, key, 32) != 0))
        return 0;
    if (r == 0)
        r = kl_storage_channel_unsubscribe(st, c, u.id);
    return r == KL_ENOTFOUND ? 0 : r;
}

/* 1 if the member list of ch (publishers, then added members) has an
 * entry that match() accepts. */
static int any_member(const kl_channel_t *ch, int (*match)(const uint8_t *, const char *,
                                                          const kl_chan_job_t *),
                      const kl_chan_job_t *j)
{
    uint8_t key[32];
    char address[256];
    for (size_t i = 0; i < kl_channel_publisher_count(ch); i++)
        if (kl_channel_publisher_at(ch, i, key, address) == 0 && match(key, address, j))
            return 1;
    for (size_t i = 0; i < kl_channel_added_count(ch); i++)
        if (kl_channel_added_at(ch, i, key, address) == 0 && match(key, address, j))
            return 1;
    return 0;
}

/* A member with the caller's key and, for a peer's user, its address. */
static int is_caller(const uint8_t *key, const char *address, const kl_chan_job_t *j)
{
    return kl_memcmp(key, j->remote_key, 32) == 0 && strcmp(address, j->remote) == 0;
}

/* A member on the relay that "@relay" (j->remote) names. */
static int on_relay(const uint8_t *key, const char *address, const kl_chan_job_t *j)
{
    (void)key;
    const char *at = strrchr(address, '@');
    return at && strcmp(at + 1, j->remote + 1) == 0;
}

/* Members-only channels (channel.h): only a member subscribes, reads or
 * sees the log, checked against the validated state: a local user by its
 * identity key; a peer's user by key AND address (its relay vouches for
 * both: a key alone, which is public, would let a peer invent a user); a
 * peer relay ("@peer", mirroring ciphertext for its users) only while a
 * member lives on it, or while it is subscribed already (it must still
 * read on to learn of a removal). KL_EREFUSED with verr KL_CV_NOT_MEMBER. */
static int member_only_check(kl_storage_t *st, kl_chan_job_t *j)
{
    kl_channel_t *ch = NULL;
    if (j->chan.next_index == 0)
        return 0;
    int r = kl_job_channel_state(st, j->address, &j->chan, &ch);
    if (r || !kl_channel_members_only(ch))
        return r;
    int ok = j->remote[0] == '\0'  ? kl_channel_is_member(ch, j->remote_key)
             : j->remote[0] != '@' ? any_member(ch, is_caller, j)
                                   : j->subscribed || any_member(ch, on_relay, j);
    if (!ok) {
        j->verr = (int)KL_CV_NOT_MEMBER;
        return KL_EREFUSED;
    }
    return 0;
}

/* A kl_channel_apply / kl_channel_post_open refusal as a job result. */
static int refusal(kl_channel_verr_t why)
{
    switch (why) {
    case KL_CV_MALFORMED:
    case KL_CV_SIGNATURE:
    case KL_CV_WRONG_CHANNEL:
        return KL_EPROTO;
    case KL_CV_CHAIN:
        return KL_ESTATE;
    default:
        return KL_EREFUSED;
    }
}

int kl_job_channel_op(kl_storage_t *st, const char *address, int found,
                      kl_storage_channel_t *c, uint64_t index, const uint8_t *op, size_t len,
                      int *verr)
{
    kl_channel_event_t ev;
    kl_channel_verr_t why = KL_CV_OK;
    kl_oplog_row_t row = {c->id, c->next_index, c->head};
    uint8_t head[32];
    void *state = NULL;
    int fresh = 0;
    *verr = 0;
    int r = kl_oplog_op_state(st, &CHANNEL_LOG, address, found, &row, index,
                              KL_STORAGE_CHANNEL_MAX_OPS, &state, &fresh);
    kl_channel_t *ch = state;
    if (r)
        goto out;
    r = kl_channel_apply(ch, op, len, &ev, &why);
    if (r != 0) {
        *verr = (int)why;
        r = refusal(why);
        goto out;
    }
    kl_channel_head(ch, head);
    r = kl_storage_channel_append_op(st, address, ev.index, op, len, head, c);
    /* A removed member loses its subscription in the same step. */
    if (r == 0 && ev.members_only &&
        (ev.kind == KL_COP_REMOVE_MEMBER || ev.kind == KL_COP_REMOVE_PUBLISHER) &&
        !kl_channel_is_member(ch, ev.target))
        r = kl_job_channel_drop_member(st, c, ev.target, ev.target_address);
    if (r == 0 && fresh) {
        kl_oplog_keep(st, &CHANNEL_LOG, c->id, ch); /* the cache's now (or freed) */
        fresh = 0;
    }
out:
    if (fresh)
        kl_channel_free(ch);
    return r;
}

static int run_op(kl_job_t *job, kl_storage_t *st)
{
    kl_chan_job_t *j = &job->u.chan;
    /* The cheap refusals first: no replay for an op that cannot continue
     * the log (the client fetches and retries). */
    int r = kl_storage_channel_get(st, j->address, &j->chan);
    if (r == 0 || r == KL_ENOTFOUND)
        r = kl_job_channel_op(st, j->address, r == 0, &j->chan, j->from, j->data, j->len,
                              &j->verr);
    return r ? r : audience(st, j);
}

static int caller(kl_job_t *job, kl_storage_t *st)
{
    kl_chan_job_t *j = &job->u.chan;
    return kl_storage_channel_caller(st, j->address, j->user, &j->chan, &j->subscribed,
                                     &j->cursor);
}

static int run_post(kl_job_t *job, kl_storage_t *st)
{
    kl_chan_job_t *j = &job->u.chan;
    kl_channel_t *ch = NULL;
    kl_channel_post_t post;
    kl_channel_verr_t why = KL_CV_OK;
    memset(&post, 0, sizeof post);
    int r = caller(job, st);
    if (r == 0)
        r = kl_job_channel_state(st, j->address, &j->chan, &ch);
    if (r)
        goto out;
    /* Against the CURRENT state: a removed publisher's post is refused. */
    if (kl_channel_post_open(ch, j->data, j->len, &post, &why) != 0) {
        j->verr = (int)why;
        r = refusal(why);
        goto out;
    }
    r = kl_storage_log_append(st, j->chan.log, job->now_ms, j->expires_ms, j->data, j->len,
                              &j->quota, &j->seq);
    if (r == 0) {
        j->chan.last_seq = j->seq;
        r = audience(st, j);
    }
out:
    kl_channel_post_clear(&post);
    return r;
}

int kl_job_run_channel(kl_job_t *job, kl_storage_t *st)
{
    kl_chan_job_t *j = &job->u.chan;
    int r = resolve(job, st);
    if (r)
        return r;
    switch (job->kind) {
    case KL_JOB_CHAN_OP:
        return run_op(job, st);
    case KL_JOB_CHAN_FETCH:
        r = caller(job, st);
        if (r == 0) /* a members-only channel's log (who is in it) is for members */
            r = member_only_check(st, j);
        if (r == 0 && j->from < j->chan.next_index)
            r = kl_storage_channel_ops(st, j->chan.id, j->from, FETCH_OPS_MAX, j->max_bytes,
                                       &j->out.entries, &j->out.n, &j->out.more);
        return r;
    case KL_JOB_CHAN_SUB:
        r = caller(job, st);
        if (r == 0)
            r = member_only_check(st, j);
        if (r == 0)
            r = kl_storage_channel_subscribe(st, &j->chan, j->user, j->backlog, job->now_ms,
                                             &j->cursor);
        return r;
    case KL_JOB_CHAN_UNSUB:
        r = kl_storage_channel_get(st, j->address, &j->chan);
        if (r == 0)
            r = kl_storage_channel_unsubscribe(st, &j->chan, j->user);
        return r == KL_ENOTFOUND && j->chan.id != 0 ? KL_EREFUSED : r;
    case KL_JOB_CHAN_LIST:
        return kl_storage_channel_list(st, j->user, &j->infos, &j->n_infos);
    case KL_JOB_CHAN_POST:
        return run_post(job, st);
    case KL_JOB_CHAN_READ:
    case KL_JOB_CHAN_ACK:
        r = caller(job, st);
        if (r == 0 && !j->subscribed)
            r = KL_EREFUSED;
        if (r || job->kind == KL_JOB_CHAN_ACK)
            return r ? r : kl_oplog_ack(st, j->chan.log, j->user, j->from);
        r = member_only_check(st, j);
        /* A mirroring peer never gets again what it has acked. */
        if (r == 0 && j->remote[0] == '@' && j->from < j->cursor)
            j->from = j->cursor;
        if (r == 0)
            r = kl_storage_log_read(st, j->chan.log, j->from, job->now_ms, j->limit,
                                    j->max_bytes, &j->out.entries, &j->out.n, &j->out.more);
        return r;
    default:
        return KL_EINVAL;
    }
}
