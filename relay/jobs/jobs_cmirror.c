/* The storage-thread half of channel mirrors (storage_cmirror.h,
 * fed_channel.c): a client's subscribe to a peer's channel, reading a
 * mirror's row, and storing what a sync round fetched from the home relay.
 *
 * Storing (kl_job_mirror_store) is one step inside the storage batch: the
 * fetched ops are applied with kl_channel_apply to the mirror's validated
 * state and stored, then each fetched post after the watermark is checked
 * with kl_channel_post_open against that state; a valid one is appended to
 * the mirror's log ONCE (for every local subscriber), an invalid one is
 * refused and counted; the watermark moves past both, in the same
 * transaction. A post the mirror's log has no room for (quota) stops the
 * round there, watermark before it: it is taken at a later round. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan_cache.h"
#include "jobs.h"
#include "kollega/channel.h"
#include "kollega/err.h"
#include "relay.pb-c.h"
#include "storage/storage_cmirror.h"

static int store_ops(kl_storage_t *st, kl_fed_job_t *fj, kl_storage_channel_t *c);

int kl_job_mirror_sub(kl_storage_t *st, kl_fed_job_t *fj, uint64_t now_ms)
{
    kl_storage_channel_t c;
    uint64_t cursor = 0;
    kl_channel_t *ch = NULL;
    int r = kl_storage_cmirror_ensure(st, fj->address, &c);
    /* The home relay's log, fetched right after it said Ok, validated and
     * stored first, page by page (m_more: the loop thread fetches the next
     * one from m_next_index): a members-only channel's membership is
     * checked against the whole of it. */
    if (r == 0)
        r = store_ops(st, fj, &c);
    if (r == 0 && fj->m_partial && !fj->m_stalled && fj->m_pages < KL_MIRROR_SUB_PAGES) {
        fj->m_next_index = c.next_index;
        fj->m_more = 1;
        return 0;
    }
    fj->m_more = 0;
    if (r == 0 && c.next_index > 0)
        r = kl_job_channel_state(st, fj->address, &c, &ch);
    if (r == 0 && ch != NULL && kl_channel_members_only(ch) &&
        !kl_channel_is_member(ch, fj->identity_key)) {
        fj->err_code = KOLLEGA__RELAY__V1__ERROR_CODE__FORBIDDEN;
        snprintf(fj->err_msg, sizeof fj->err_msg, "members only: ask the owner of %.96s to add you",
                 fj->address);
        return 0;
    }
    if (r == 0)
        r = kl_storage_channel_subscribe(st, &c, fj->user_id, fj->limit, now_ms, &cursor);
    return r;
}

int kl_job_mirror_read(kl_storage_t *st, kl_fed_job_t *fj)
{
    kl_storage_cmirror_t m;
    int r = kl_storage_cmirror_get(st, fj->address, &m);
    fj->m_exists = r == 0;
    if (r == KL_ENOTFOUND)
        return 0;
    if (r)
        return r;
    fj->m_home_seq = m.home_seq;
    fj->m_next_index = m.chan.next_index;
    fj->m_active = m.active;
    fj->m_subs = m.n_subs;
    return 0;
}

int kl_job_mirror_deactivate(kl_storage_t *st, kl_fed_job_t *fj)
{
    kl_storage_cmirror_t m;
    int r = kl_storage_cmirror_get(st, fj->address, &m);
    if (r == 0 && m.n_subs == 0) /* nobody subscribed meanwhile */
        r = kl_storage_cmirror_set(st, m.chan.id, m.home_seq, 0);
    return r == KL_ENOTFOUND ? 0 : r;
}

/* Apply and store the fetched ops that continue the mirror's log. A
 * refused op stops there (a home relay that serves a broken log gets
 * nothing further built on it: m_stalled, reported in fj->err_msg). When
 * the mirror's log is not the home relay's whole log afterwards (a page
 * of a longer log, or a refused op), m_partial: posts wait, since they may
 * need the ops still missing. */
static int store_ops(kl_storage_t *st, kl_fed_job_t *fj, kl_storage_channel_t *c)
{
    const Kollega__Relay__V1__Frame *fr = (const Kollega__Relay__V1__Frame *)fj->reply2;
    fj->m_partial = 1;
    if (fr == NULL || fr->body_case != KOLLEGA__RELAY__V1__FRAME__BODY_CHANNEL_LOG)
        return 0;
    const Kollega__Relay__V1__ChannelLog *cl = fr->channel_log;
    uint64_t before = c->next_index;
    for (size_t i = 0; i < cl->n_ops; i++) {
        uint64_t index = cl->from_index + i;
        if (index < c->next_index)
            continue;
        if (index > c->next_index)
            break;
        int verr = 0;
        int r = kl_job_channel_op(st, fj->address, 1, c, index, cl->ops[i].data, cl->ops[i].len,
                                  &verr);
        if (r != 0 && verr != 0) {
            snprintf(fj->err_msg, sizeof fj->err_msg, "refused op %llu: %s",
                     (unsigned long long)index, kl_channel_verr_str((kl_channel_verr_t)verr));
            fj->m_stalled = 1;
            fj->m_progress = fj->m_progress || c->next_index > before;
            return 0;
        }
        if (r)
            return r;
    }
    fj->m_progress = fj->m_progress || c->next_index > before;
    fj->m_partial = cl->more || c->next_index < cl->next_index;
    fj->m_more = fj->m_more || fj->m_partial;
    return 0;
}

/* Take the fetched posts after the watermark, in order, each checked
 * against the mirror's current state (as every subscriber's client checks
 * it: a post by a publisher removed since is refused everywhere). */
static int store_posts(kl_storage_t *st, kl_fed_job_t *fj, kl_storage_channel_t *c,
                       uint64_t now_ms)
{
    const Kollega__Relay__V1__Frame *fr = (const Kollega__Relay__V1__Frame *)fj->reply;
    if (fr == NULL || fr->body_case != KOLLEGA__RELAY__V1__FRAME__BODY_DELIVER)
        return 0;
    const Kollega__Relay__V1__Deliver *d = fr->deliver;
    kl_channel_t *ch = NULL;
    if (c->next_index > 0) {
        int r = kl_job_channel_state(st, fj->address, c, &ch);
        if (r)
            return r;
    }
    for (size_t i = 0; i < d->n_entries; i++) {
        const Kollega__Relay__V1__Entry *e = d->entries[i];
        kl_channel_post_t post;
        kl_channel_verr_t why = KL_CV_MALFORMED;
        uint64_t seq = 0;
        if (e->seq <= fj->m_home_seq)
            continue; /* taken already: exactly once */
        memset(&post, 0, sizeof post);
        int ok = ch != NULL && e->body.len <= KL_CHANNEL_MAX_POST &&
                 kl_channel_post_open(ch, e->body.data, e->body.len, &post, &why) == 0;
        kl_channel_post_clear(&post);
        if (ok) {
            int r = kl_storage_log_append(st, c->log, now_ms, fj->expires_ms, e->body.data,
                                          e->body.len, &fj->quota, &seq);
            if (r == KL_ELIMIT) {
                fj->m_full = 1; /* no room: a later round takes it */
                return 0;
            }
            if (r)
                return r;
            fj->m_acked++;
        } else {
            if (fj->m_refused++ == 0)
                snprintf(fj->err_msg, sizeof fj->err_msg, "refused a post (home seq %llu): %s",
                         (unsigned long long)e->seq, kl_channel_verr_str(why));
        }
        fj->m_home_seq = e->seq;
        fj->m_progress = 1;
    }
    fj->m_more = fj->m_more || d->more;
    return 0;
}

int kl_job_mirror_store(kl_storage_t *st, kl_fed_job_t *fj, uint64_t now_ms)
{
    kl_storage_cmirror_t m;
    int r = kl_storage_cmirror_get(st, fj->address, &m);
    if (r)
        return r;
    fj->m_home_seq = m.home_seq;
    fj->expires_ms = now_ms + fj->ttl_max_ms; /* the relay's TTL, from now */
    fj->m_acked = fj->m_refused = 0;
    fj->m_more = fj->m_full = fj->m_stalled = fj->m_progress = 0;
    fj->err_msg[0] = '\0';
    r = store_ops(st, fj, &m.chan);
    if (r == 0 && !fj->m_partial)
        r = store_posts(st, fj, &m.chan, now_ms);
    if (r == 0)
        r = kl_storage_cmirror_set(st, m.chan.id, fj->m_home_seq, m.active);
    if (r == 0 && fj->m_acked > 0)
        r = kl_storage_channel_subscribers(st, m.chan.id, &fj->ids, &fj->n_names);
    return r;
}
