/* The storage-thread half of ERFA groups: each KL_JOB_GROUP_* job runs
 * here inside the storage batch (see jobs.h), so validating an op against
 * the stored log, storing it and rewriting the membership is one atomic
 * step, and a send checks membership in the same transaction that appends.
 *
 * Results (job->result), turned into replies by dispatch_group.c:
 *   KL_ENOTFOUND  no such group (for an op: any index but 0)
 *   KL_EEXIST     create of an existing group
 *   KL_ESTATE     the op's index/prev does not continue the stored log
 *   KL_EREFUSED   the rules refuse the op (u.group.verr says why), or the
 *                 caller is not a member (send, read, ack)
 *   KL_EPROTO     the op is malformed or its signature does not verify
 *   KL_ELIMIT     the group's message log is over its quota; for an op: the
 *                 group's op log is full (u.group.max_ops), or, for a
 *                 create, its actor created u.group.max_created groups
 *   KL_ESTATE     (send) a member left or was removed at or after the
 *                 sender's group_index: it must rekey first
 *   KL_EPROTO     (send) group_index is beyond the log's next index
 *   KL_EKEYCHANGED (op) an invite or request names a user of this relay
 *                 under a key that is not its registered one (u.group.verr
 *                 1), or a user this relay does not have (2)
 *   KL_EIO etc.   storage failures (also a stored log that no longer
 *                 validates: the relay refuses to build on it) */
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/group.h"
#include "group_cache.h"
#include "storage/storage_gfed.h"

/* Ops per group_log reply. */
#define FETCH_OPS_MAX 500

void kl_job_drop_group(kl_job_t *job)
{
    kl_oplog_out_free(&job->u.group.out);
    free(job->u.group.infos);
    job->u.group.infos = NULL;
    job->u.group.n_infos = 0;
}

static int state_new(void **state, const char *address)
{
    kl_group_t *g = NULL;
    int r = kl_group_new(&g, address);
    *state = g;
    return r;
}

/* The replay skips the signature checks of ops validated in full when they
 * were stored, which are nearly all of its cost (kl_group_apply_stored). */
static int replay_op(void *state, const uint8_t *op, size_t len)
{
    kl_group_verr_t why = KL_GV_OK;
    return kl_group_apply_stored(state, op, len, NULL, &why);
}

static void state_free(void *state)
{
    kl_group_free(state);
}

static uint64_t state_next_index(const void *state)
{
    return kl_group_next_index(state);
}

static void state_head(const void *state, uint8_t out[32])
{
    kl_group_head(state, out);
}

static const kl_oplog_kind_t GROUP_LOG = {
    {state_free, state_next_index, state_head}, state_new, replay_op, kl_storage_group_ops,
    kl_gcache_states,
};

/* The user of this relay behind address, when its key is key; else 0. An
 * address on another relay gets its shadow user (created, storage_gfed.h). */
static int local_user_id(kl_storage_t *st, const char *relay, const char *address,
                         const uint8_t key[32], uint64_t *id)
{
    kl_addr_t a;
    kl_storage_user_t u;
    *id = 0;
    if (strlen(address) > KL_ADDR_MAX || kl_addr_parse(address, &a) != 0 || a.is_group)
        return 0;
    if (strcmp(a.relay, relay) != 0)
        return kl_storage_shadow_user(st, address, key, 1, id);
    int r = kl_storage_user_get(st, a.handle, &u);
    if (r == KL_ENOTFOUND)
        return 0;
    if (r == 0 && kl_memcmp(u.identity_key, key, 32) == 0)
        *id = u.id;
    return r;
}

/* An invite or request that names a user of this relay must name the key
 * that user registered: the relay is the one authority on its own users'
 * keys, so nobody (a member inviting, a peer relay proxying) can attach
 * one of them to another key in a group's log. 0 when the op names no
 * user of this relay or names it rightly; KL_EKEYCHANGED with *why set
 * (1: another key, 2: no such user) otherwise. */
static int check_named_user(kl_storage_t *st, const char *relay, const kl_group_event_t *ev,
                            int *why)
{
    kl_addr_t a;
    kl_storage_user_t u;
    *why = 0;
    if (ev->kind != KL_GOP_INVITE && ev->kind != KL_GOP_REQUEST)
        return 0;
    if (kl_addr_parse(ev->target_address, &a) != 0 || a.is_group || strcmp(a.relay, relay) != 0)
        return 0;
    int r = kl_storage_user_get(st, a.handle, &u);
    if (r == KL_ENOTFOUND)
        *why = 2;
    else if (r)
        return r;
    else if (kl_memcmp(u.identity_key, ev->target, 32) != 0)
        *why = 1;
    return *why ? KL_EKEYCHANGED : 0;
}

/* Membership after the op, as storage wants it. */
static int members_of(kl_storage_t *st, const char *relay, const kl_group_t *grp,
                      kl_storage_gmember_t **out, size_t *n)
{
    size_t nm = kl_group_member_count(grp), nc = kl_group_candidate_count(grp);
    kl_storage_gmember_t *m = calloc(nm + nc + 1, sizeof *m);
    int r = m ? 0 : KL_ENOMEM;
    for (size_t i = 0; i < nm && r == 0; i++) {
        kl_group_member_t gm;
        r = kl_group_member_at(grp, i, &gm);
        if (r == 0) {
            memcpy(m[i].identity_key, gm.key, 32);
            m[i].state = KL_GSTATE_MEMBER;
            m[i].role = (int)gm.role;
            r = local_user_id(st, relay, gm.address, gm.key, &m[i].user);
        }
    }
    for (size_t i = 0; i < nc && r == 0; i++) {
        kl_group_candidate_t gc;
        r = kl_group_candidate_at(grp, i, &gc);
        if (r == 0) {
            memcpy(m[nm + i].identity_key, gc.key, 32);
            m[nm + i].state = KL_GSTATE_CANDIDATE;
            r = local_user_id(st, relay, gc.address, gc.key, &m[nm + i].user);
        }
    }
    if (r) {
        free(m);
        return r;
    }
    *out = m;
    *n = nm + nc;
    return 0;
}

/* a[0..*na) gets the users of b[0..nb) it does not hold yet (a has room). */
static void merge_users(uint64_t *a, size_t *na, const uint64_t *b, size_t nb)
{
    for (size_t i = 0; i < nb; i++) {
        size_t j = 0;
        while (j < *na && a[j] != b[i])
            j++;
        if (j == *na)
            a[(*na)++] = b[i];
    }
}

/* A kl_group_apply refusal as a job result. */
static int refusal(kl_group_verr_t why)
{
    switch (why) {
    case KL_GV_MALFORMED:
    case KL_GV_SIGNATURE:
    case KL_GV_WRONG_GROUP:
        return KL_EPROTO;
    case KL_GV_CHAIN:
        return KL_ESTATE;
    default:
        return KL_EREFUSED;
    }
}

static int run_op(kl_job_t *job, kl_storage_t *st)
{
    kl_storage_group_t *g = &job->u.group.group;
    uint64_t index = job->u.group.from; /* the op's index, decoded by dispatch */
    kl_group_t *grp = NULL;
    kl_storage_gmember_t *m = NULL;
    uint64_t *before = NULL, *after = NULL;
    size_t n = 0, nb = 0, na = 0;
    kl_group_event_t ev;
    kl_group_verr_t why = KL_GV_OK;
    uint8_t head[32];
    void *state = NULL;
    int fresh = 0;
    uint64_t max_ops = job->u.group.max_ops ? job->u.group.max_ops : KL_GROUP_MAX_OPS_DEFAULT;

    /* The cheap refusals first: no state is loaded for an op that cannot
     * continue the log (the client fetches and retries) or that the log
     * has no room for. The op's signature was checked by dispatch. */
    int r = kl_storage_group_get(st, job->u.group.address, g);
    if (r == KL_ENOTFOUND)
        memset(g, 0, sizeof *g);
    if (r == 0 || r == KL_ENOTFOUND) {
        kl_oplog_row_t row = {g->id, g->next_index, g->head};
        r = kl_oplog_op_state(st, &GROUP_LOG, job->u.group.address, r == 0, &row, index,
                              max_ops, &state, &fresh);
    }
    grp = state;
    int exists = !fresh;
    if (r)
        goto out;
    r = kl_group_apply(grp, job->u.group.data, job->u.group.len, &ev, &why);
    if (r != 0) {
        job->u.group.verr = (int)why;
        r = refusal(why);
        goto out;
    }
    if ((r = check_named_user(st, job->u.group.relay_name, &ev, &job->u.group.verr)))
        goto out;
    if (!exists) {
        uint64_t made = 0;
        r = kl_storage_groups_created(st, ev.actor, &made);
        if (r == 0 && made >= (job->u.group.max_created ? job->u.group.max_created
                                                  : KL_GROUPS_PER_USER_DEFAULT))
            r = KL_ELIMIT;
        if (r)
            goto out;
    }
    if (exists)
        r = kl_storage_group_users(st, g->id, 1, &before, &nb);
    if (r == 0)
        r = members_of(st, job->u.group.relay_name, grp, &m, &n);
    kl_group_head(grp, head);
    if (r == 0)
        r = kl_storage_group_append_op(st, job->u.group.address, ev.index, job->u.group.data,
                                       job->u.group.len, head, kl_group_retention_days(grp), m,
                                       n, g);
    if (r == 0)
        r = kl_storage_group_note_op(st, g->id, ev.index, exists ? NULL : ev.actor,
                                     ev.epoch_changed);
    if (r == 0 && ev.epoch_changed)
        g->rekey_next = ev.index + 1;
    /* A shorter retention applies to the messages already stored too. */
    if (r == 0 && ev.kind == KL_GOP_SET_RETENTION)
        r = kl_storage_group_retain(st, g->log, kl_group_retention_days(grp));
    if (r == 0)
        r = kl_storage_group_users(st, g->id, 1, &after, &na);
    /* Push to everyone concerned before or after: a removed member or a
     * refused candidate learns of it too. */
    if (r == 0 && nb > 0) {
        uint64_t *all = realloc(after, (na + nb) * sizeof *all);
        if (all == NULL) {
            r = KL_ENOMEM;
        } else {
            after = all;
            merge_users(after, &na, before, nb);
        }
    }
    if (r == 0) {
        job->u.group.admitted = ev.admitted;
        job->u.group.out.push = after;
        job->u.group.out.n_push = na;
        after = NULL;
    }
    if (r == 0 && fresh) {
        kl_oplog_keep(st, &GROUP_LOG, g->id, grp); /* the cache's now (or freed) */
        fresh = 0;
    }
out:
    free(before);
    free(after);
    free(m);
    if (fresh)
        kl_group_free(grp);
    return r;
}

/* The group and the caller's place in it. */
static int caller(kl_job_t *job, kl_storage_t *st, kl_storage_gstatus_t *gs)
{
    int r = kl_storage_group_caller(st, job->u.group.address, job->u.group.user,
                                    &job->u.group.group, gs);
    if (r == 0)
        job->u.group.state = gs->state;
    return r;
}


static int run_fetch(kl_job_t *job, kl_storage_t *st)
{
    kl_storage_gstatus_t gs;
    int r = caller(job, st, &gs);
    if (r || gs.state == KL_GSTATE_NONE)
        return r; /* a stranger learns next_index and head only */
    /* A former member (left, removed, refused candidate) reads the log up
     * to and including the op that ended its part in it, nothing later.
     * Members and candidates read it all: a candidate needs it to know
     * its approvals and to validate the state it joins. */
    uint32_t limit = FETCH_OPS_MAX;
    if (gs.state == KL_GSTATE_FORMER) {
        if (job->u.group.from > gs.exit_index)
            return 0;
        if (gs.exit_index - job->u.group.from < limit)
            limit = (uint32_t)(gs.exit_index - job->u.group.from + 1);
    }
    r = kl_storage_group_ops(st, job->u.group.group.id, job->u.group.from, limit,
                             job->u.group.max_bytes, &job->u.group.out.entries, &job->u.group.out.n,
                             &job->u.group.out.more);
    if (r == 0 && gs.state == KL_GSTATE_FORMER && job->u.group.out.n > 0 &&
        job->u.group.out.entries[job->u.group.out.n - 1].seq >= gs.exit_index)
        job->u.group.out.more = 0;
    return r;
}

/* An entry's expiry: the group's retention (0 = the relay's default TTL),
 * shortened by the sender's ttl_s when that is smaller, never beyond the
 * relay's TTL maximum. */
static uint64_t group_expiry(const kl_job_t *job)
{
    uint64_t ttl = job->u.group.group.retention_days
                       ? (uint64_t)job->u.group.group.retention_days * 86400
                       : job->u.group.ttl_default_s;
    if (job->u.group.ttl_s != 0 && job->u.group.ttl_s < ttl)
        ttl = job->u.group.ttl_s;
    if (ttl > job->u.group.ttl_max_s)
        ttl = job->u.group.ttl_max_s;
    return job->now_ms + ttl * 1000;
}

/* The remote users among the push list, for the federation notices. */
static int notify_of(kl_job_t *job, kl_storage_t *st)
{
    return kl_storage_shadow_addresses(st, job->u.group.out.push, job->u.group.out.n_push,
                                       &job->u.group.out.notify, &job->u.group.out.notify_len,
                                       &job->u.group.out.n_notify);
}

static int run_send(kl_job_t *job, kl_storage_t *st)
{
    /* The sender encrypted under its view of the log (relay.proto
     * Send.group_index): a view that misses a leave or removal means a
     * sender key the departed member may still hold. */
    if (job->u.group.group_index > job->u.group.group.next_index)
        return KL_EPROTO;
    if (job->u.group.group.rekey_next > job->u.group.group_index)
        return KL_ESTATE;
    int r = kl_storage_log_append(st, job->u.group.group.log, job->now_ms, group_expiry(job),
                                  job->u.group.data, job->u.group.len, &job->u.group.quota,
                                  &job->u.group.seq);
    if (r)
        return r;
    job->u.group.group.last_seq = job->u.group.seq;
    /* The pushes: the current members, from the cache while no op (and no
     * rollback) changed them, else from storage, then cached. */
    kl_oplog_out_t *o = &job->u.group.out;
    r = kl_gcache_members_get(st, &job->u.group.group, &o->push, &o->n_push, &o->notify,
                              &o->notify_len, &o->n_notify);
    if (r != 0)
        return r < 0 ? r : 0;
    r = kl_storage_group_users(st, job->u.group.group.id, 0, &o->push, &o->n_push);
    if (r == 0)
        r = notify_of(job, st);
    if (r == 0)
        kl_gcache_members_put(st, &job->u.group.group, o->push, o->n_push, o->notify,
                              o->notify_len, o->n_notify);
    return r;
}

/* What only members may do: send, read (entries after their admission
 * only) and ack. KL_EREFUSED for anyone else. */
static int run_member(kl_job_t *job, kl_storage_t *st)
{
    kl_storage_gstatus_t gs;
    int r = caller(job, st, &gs);
    if (r == 0 && gs.state != KL_GSTATE_MEMBER)
        r = KL_EREFUSED;
    if (r)
        return r;
    if (job->kind == KL_JOB_GROUP_SEND)
        return run_send(job, st);
    if (job->kind == KL_JOB_GROUP_ACK)
        return kl_oplog_ack(st, job->u.group.group.log, job->u.group.user, job->u.group.from);
    uint64_t after = job->u.group.from > gs.join_seq ? job->u.group.from : gs.join_seq;
    return kl_storage_log_read(st, job->u.group.group.log, after, job->now_ms,
                               job->u.group.limit, job->u.group.max_bytes,
                               &job->u.group.out.entries, &job->u.group.out.n,
                               &job->u.group.out.more);
}

int kl_job_run_group(kl_job_t *job, kl_storage_t *st)
{
    if (job->u.group.remote) {
        /* A proxied caller: its shadow user, if the group's log ever named
         * this address with this key; otherwise a stranger (user 0), who
         * is refused everything but a group op and a head-only fetch. */
        int r = kl_storage_shadow_user(st, job->u.group.remote, job->u.group.remote_key, 0,
                                       &job->u.group.user);
        if (r)
            return r;
        if (job->u.group.user == 0 && job->kind == KL_JOB_GROUP_LIST)
            return 0;
    }
    int r = 0;
    switch (job->kind) {
    case KL_JOB_GROUP_OP:
        r = run_op(job, st);
        return r ? r : notify_of(job, st);
    case KL_JOB_GROUP_FETCH:
        return run_fetch(job, st);
    case KL_JOB_GROUP_LIST:
        return kl_storage_group_list(st, job->u.group.user, &job->u.group.infos,
                                     &job->u.group.n_infos);
    case KL_JOB_GROUP_SEND:
    case KL_JOB_GROUP_READ:
    case KL_JOB_GROUP_ACK:
        return run_member(job, st);
    default:
        return KL_EINVAL;
    }
}
