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
    kl_chan_job_t *j = &job->u.chan;
    kl_storage_entries_free(j->entries, j->n);
    j->entries = NULL;
    j->n = 0;
    j->more = 0;
    free(j->infos);
    j->infos = NULL;
    j->n_infos = 0;
    free(j->push);
    j->push = NULL;
    j->n_push = 0;
    free(j->relays);
    j->relays = NULL;
    j->relays_len = j->n_relays = 0;
}

/* Subscribers to push an op or post to, and the peers that mirror it. */
static int audience(kl_storage_t *st, kl_chan_job_t *j)
{
    int r = kl_storage_channel_subscribers(st, j->chan.id, &j->push, &j->n_push);
    if (r == 0 && j->n_push > 0)
        r = kl_storage_channel_relays(st, j->chan.id, &j->relays, &j->relays_len,
                                      &j->n_relays);
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

/* Rebuild the validated state of a stored channel from its ops. Every
 * stored op was validated when it arrived, so one that fails now means the
 * database was edited: KL_EIO, and nothing is built on it. */
static int replay(kl_storage_t *st, const char *address, const kl_storage_channel_t *c,
                  kl_channel_t **out)
{
    kl_channel_t *ch = NULL;
    int r = kl_channel_new(&ch, address);
    if (r == 0 && c->next_index > KL_STORAGE_CHANNEL_MAX_OPS)
        r = KL_EIO;
    kl_storage_entry_t *e = NULL;
    size_t n = 0;
    int more = 0;
    if (r == 0 && c->next_index > 0)
        r = kl_storage_channel_ops(st, c->id, 0, KL_STORAGE_CHANNEL_MAX_OPS, SIZE_MAX, &e, &n,
                                   &more);
    if (r == 0 && (n != c->next_index || more))
        r = KL_EIO;
    for (size_t i = 0; i < n && r == 0; i++) {
        kl_channel_verr_t why = KL_CV_OK;
        if (e[i].seq != i || kl_channel_apply(ch, e[i].body, e[i].len, NULL, &why) != 0)
            r = KL_EIO;
    }
    kl_storage_entries_free(e, n);
    if (r) {
        kl_channel_free(ch);
        return r;
    }
    *out = ch;
    return 0;
}

/* The validated state of stored channel c: the cached one (chan_cache.h),
 * or a replay of its log, which is then cached. The state is the cache's
 * (the caller must not free it); *out is NULL only on error. */
int kl_job_channel_state(kl_storage_t *st, const char *address, const kl_storage_channel_t *c,
                         kl_channel_t **out)
{
    *out = kl_ccache_find(st, c);
    if (*out != NULL)
        return 0;
    int r = replay(st, address, c, out);
    if (r == 0) {
        *out = kl_ccache_keep(st, c->id, *out);
        if (*out == NULL)
            r = KL_ENOMEM;
    }
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

static int run_op(kl_job_t *job, kl_storage_t *st)
{
    kl_chan_job_t *j = &job->u.chan;
    kl_channel_t *ch = NULL, *fresh = NULL; /* fresh: a new channel's state, ours */
    kl_channel_event_t ev;
    kl_channel_verr_t why = KL_CV_OK;
    uint8_t head[32];
    /* The cheap refusals first: no replay for an op that cannot continue
     * the log (the client fetches and retries). */
    int r = kl_storage_channel_get(st, j->address, &j->chan);
    if (r == KL_ENOTFOUND) {
        memset(&j->chan, 0, sizeof j->chan);
        r = j->from != 0 ? KL_ENOTFOUND : kl_channel_new(&fresh, j->address);
        ch = fresh;
    } else if (r == 0) {
        if (j->from == 0)
            r = KL_EEXIST;
        else if (j->from != j->chan.next_index)
            r = KL_ESTATE;
        else if (j->from >= KL_STORAGE_CHANNEL_MAX_OPS)
            r = KL_ELIMIT;
        else
            r = kl_job_channel_state(st, j->address, &j->chan, &ch);
    }
    if (r)
        goto out;
    r = kl_channel_apply(ch, j->data, j->len, &ev, &why);
    if (r != 0) {
        j->verr = (int)why;
        r = refusal(why);
        goto out;
    }
    kl_channel_head(ch, head);
    r = kl_storage_channel_append_op(st, j->address, ev.index, j->data, j->len, head, &j->chan);
    /* A removed member loses its subscription in the same step. */
    if (r == 0 && ev.members_only &&
        (ev.kind == KL_COP_REMOVE_MEMBER || ev.kind == KL_COP_REMOVE_PUBLISHER) &&
        !kl_channel_is_member(ch, ev.target))
        r = kl_job_channel_drop_member(st, &j->chan, ev.target, ev.target_address);
    if (r == 0 && fresh != NULL) {
        kl_ccache_keep(st, j->chan.id, fresh); /* the cache's now (or freed) */
        fresh = NULL;
    }
    if (r == 0)
        r = audience(st, j);
out:
    kl_channel_free(fresh);
    return r;
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
                                       &j->entries, &j->n, &j->more);
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
        r = caller(job, st);
        if (r == 0 && !j->subscribed)
            r = KL_EREFUSED;
        if (r == 0)
            r = member_only_check(st, j);
        /* A mirroring peer never gets again what it has acked. */
        if (r == 0 && j->remote[0] == '@' && j->from < j->cursor)
            j->from = j->cursor;
        if (r == 0)
            r = kl_storage_log_read(st, j->chan.log, j->from, job->now_ms, j->limit,
                                    j->max_bytes, &j->entries, &j->n, &j->more);
        return r;
    case KL_JOB_CHAN_ACK:
        r = caller(job, st);
        if (r == 0 && !j->subscribed)
            r = KL_EREFUSED;
        if (r == 0)
            r = kl_storage_log_ack(st, j->chan.log, j->user, j->from);
        return r == KL_ENOTFOUND && j->chan.id != 0 ? KL_EREFUSED : r;
    default:
        return KL_EINVAL;
    }
}
