/* ERFA groups in the relay protocol (relay.proto bodies 20-25, and send,
 * fetch and ack with a group): the loop-thread half. Requests are checked
 * here and become KL_JOB_GROUP_* jobs (jobs_group.c does the storage work);
 * finished jobs become replies and pushes.
 *
 * Semantics (what a client can rely on):
 *   - group_op: decoded and its signature verified here, before any job
 *     (kl_group_op_peek; BAD_REQUEST "invalid group op: signature does not
 *     verify" or "signed_op is not a group op"). The op's group must be
 *     "#name@<this relay>" (another relay: UNAVAILABLE), its actor the
 *     connected user's identity key and its actor_address the connected
 *     user's address (else FORBIDDEN). Then: NOT_FOUND (no such group, any
 *     index but 0), CONFLICT (create of an existing group, or index/prev
 *     not continuing the log), QUOTA_EXCEEDED ("the group's log is full"
 *     past cfg group_max_ops ops, 4096 by default; "too many groups" for a
 *     create by an identity that created groups_per_user, 64 by default),
 *     FORBIDDEN (the rules refuse it: kl_group_verr_str's text),
 *     FORBIDDEN (an invite or request names a user of this relay under
 *     another key than the one it registered, or a user it does not have;
 *     also for ops proxied by peer relays),
 *     BAD_REQUEST (malformed). The storage thread applies it to its cached
 *     state of the group (group_cache.h), not to a replay. Accepted: group_op_accepted{group, index, admitted}
 *     to the caller, and group_log{group, from_index = index, ops: [op],
 *     next_index, head} pushed (id 0) to the other live connections of
 *     every local member and candidate before or after the op (so a removed
 *     member or refused candidate hears of it).
 *   - send to a group: group_index required (0: BAD_REQUEST "group_index
 *     missing ..."); members only (else FORBIDDEN "not a member of #x@y");
 *     group_index beyond the log's next index: BAD_REQUEST "group_index N
 *     is beyond the log of #x@y (next index M)"; a leave or removal applied
 *     at an index >= group_index: CONFLICT "a member left #x@y at op I,
 *     after your group_index N: fetch its ops, renew your sender key and
 *     send again". Stored once; sent{seq} to the caller, and
 *     deliver{group, entries: [e]} pushed to the other live connections of
 *     every local member (the sender's other devices included).
 *   - fetch/ack with group: members only (FORBIDDEN otherwise). A member
 *     reads only entries after its admission (its cursor starts at the
 *     log's last seq then); a member who leaves or is removed loses its
 *     cursor at once.
 *   - group_fetch: members and candidates get every op (a candidate needs
 *     the log to see its approvals); a former member (left, removed, or a
 *     refused candidate) gets the ops up to and including the one that
 *     ended its part, nothing later; anyone else gets next_index and head
 *     only. NOT_FOUND for no such group.
 *   - group_list: the groups where the caller is a member or a candidate.
 *
 * Groups of another relay (proto/federation.proto "GroupProxy"): with a
 * federation peer of that name, every request above for such a group is a
 * KL_FED_OP_GROUP job that fed_group.c forwards to the group's relay; the
 * client gets that relay's answer (or UNAVAILABLE when it cannot be asked).
 * Without such a peer: UNAVAILABLE "no federation peer for R". group_list
 * with peers configured is a KL_FED_OP_GROUP_LIST job (each peer, then the
 * local groups). The same rules run for a peer's user on this relay
 * (kl_dispatch_group_remote), with the caller's address and key as its
 * relay vouches for them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch_int.h"
#include "group.pb-c.h"
#include "kollega/err.h"
#include "kollega/group.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x

static kl_job_t *group_job(kl_job_kind_t kind, const kl_dispatch_caller_t *c,
                           const char *address, const uint8_t *data, size_t len)
{
    uint8_t *extra = NULL;
    kl_job_t *job = kl_job_new(kind, len, &extra);
    if (job == NULL)
        return NULL;
    snprintf(job->u.group.address, sizeof job->u.group.address, "%s", address);
    job->u.group.user = c->user;
    job->u.group.remote = c->remote;
    job->u.group.remote_key = c->remote ? c->key : NULL;
    if (len > 0) {
        memcpy(extra, data, len);
        job->u.group.data = extra;
        job->u.group.len = len;
    }
    return job;
}

static void set_read(kl_job_t *job, uint64_t from, uint32_t limit, size_t max_bytes)
{
    job->u.group.from = from;
    job->u.group.limit = limit;
    job->u.group.max_bytes = max_bytes;
}

static int parse(const char *address, kl_addr_t *a)
{
    return strlen(address) > KL_ADDR_MAX || kl_addr_parse(address, a) != 0 || !a->is_group;
}

static int peek(const uint8_t *op, size_t len, kl_dispatch_peek_t *out)
{
    kl_group_peek_t pk;
    int r = kl_group_op_peek(op, len, &pk);
    out->index = pk.index;
    memcpy(out->actor, pk.actor, 32);
    memcpy(out->actor_address, pk.actor_address, sizeof out->actor_address);
    memcpy(out->target, pk.group, sizeof out->target);
    return r;
}

const kl_dispatch_kind_t KL_DISPATCH_GROUP = {
    0, "group", '#', KL_GROUP_MAX_OP, parse, peek, KL_JOB_GROUP_OP,
    {KL_JOB_GROUP_FETCH, KL_JOB_GROUP_READ, KL_JOB_GROUP_ACK}, group_job, set_read,
};

/* A group op: checked and routed by kl_dispatch_op; the rules are checked
 * against the group's state by the job. */
static int on_group_op(const kl_dispatch_cfg_t *cfg, const kl_dispatch_caller_t *c,
                       const kl_frame_t *f, kl_dispatch_out_t *out)
{
    int r = kl_dispatch_op(cfg, &KL_DISPATCH_GROUP, c, f, &f->group_op->signed_op, out);
    kl_job_t *job = out->job;
    if (r == 0 && job && job->kind == KL_JOB_GROUP_OP) {
        job->u.group.relay_name = cfg->relay_name;
        job->u.group.max_ops = cfg->group_max_ops;         /* 0: the default */
        job->u.group.max_created = cfg->groups_per_user;
    }
    return r;
}

static int group_request(const kl_dispatch_cfg_t *cfg, const kl_dispatch_caller_t *c,
                         const kl_frame_t *f, uint64_t now_ms, kl_dispatch_out_t *out)
{
    const char *address = kl_dispatch_target(&KL_DISPATCH_GROUP, f);
    const kl_storage_peer_t *peer = NULL;
    kl_job_t *job = NULL;
    if (f->body_case == BODY(GROUP_OP))
        return on_group_op(cfg, c, f, out);
    if (f->body_case == BODY(GROUP_LIST)) {
        if (c->remote == NULL && kl_dispatch_peer_count(cfg) > 0) {
            job = kl_fed_job_new(KL_FED_OP_GROUP_LIST, 0, NULL);
            if (job == NULL)
                return KL_ENOMEM;
            snprintf(job->u.fed->user, sizeof job->u.fed->user, "%s", c->address);
            memcpy(job->u.fed->identity_key, c->key, 32);
            job->u.fed->user_id = c->user;
            out->job = job;
            return 0;
        }
        job = group_job(KL_JOB_GROUP_LIST, c, "", NULL, 0);
        if (job == NULL)
            return KL_ENOMEM;
        out->job = job;
        return 0;
    }
    if (address == NULL) {
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST), "unsupported request", 1);
        return 0;
    }
    (void)now_ms;
    int where = kl_dispatch_home(cfg, &KL_DISPATCH_GROUP, c, address, out, f->id, &peer);
    if (where < 0)
        return 0;
    /* A group message names the sender's view of the log (relay.proto
     * Send.group_index): without it the relay cannot tell whether it was
     * encrypted before a member left. */
    if (f->body_case == BODY(SEND) && f->send->group_index == 0) {
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST),
                         "group_index missing: a group message needs the sender's next op "
                         "index (update kollega)",
                         0);
        return 0;
    }
    if (where > 0)
        return kl_dispatch_proxy_job(c->address, c->key, peer->id, address, f, out);
    int r = kl_dispatch_read_job(&KL_DISPATCH_GROUP, c, address, f, out);
    if (r <= 0)
        return r;
    if (f->body_case != BODY(SEND)) {
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST), "unsupported request", 1);
        return 0;
    }
    /* body size already checked by on_send (or kl_dispatch_remote) */
    job = group_job(KL_JOB_GROUP_SEND, c, address, f->send->body.data, f->send->body.len);
    if (job == NULL)
        return KL_ENOMEM;
    job->u.group.ttl_s = f->send->ttl_s;
    job->u.group.ttl_default_s = cfg->ttl_default_s;
    job->u.group.ttl_max_s = cfg->ttl_max_s;
    job->u.group.quota = cfg->quota;
    job->u.group.group_index = f->send->group_index;
    out->job = job;
    return 0;
}

int kl_dispatch_group_request(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s,
                              const kl_frame_t *f, uint64_t now_ms, kl_dispatch_out_t *out)
{
    char self[KL_ADDR_MAX + 1];
    kl_dispatch_caller_t c;
    kl_dispatch_session_caller(cfg, s, self, &c);
    return group_request(cfg, &c, f, now_ms, out);
}

int kl_dispatch_group_remote(const kl_dispatch_cfg_t *cfg, const char *user,
                             const uint8_t key[32], const kl_frame_t *f, kl_dispatch_out_t *out)
{
    kl_dispatch_caller_t c = {0, user, key, user};
    int ok = f->body_case == BODY(SEND) || f->body_case == BODY(GROUP_OP) ||
             f->body_case == BODY(GROUP_FETCH) || f->body_case == BODY(GROUP_LIST) ||
             f->body_case == BODY(FETCH) || f->body_case == BODY(ACK);
    return kl_dispatch_remote(cfg, &c, f, 0, ok, "not a group request", group_request, out);
}

/* ---- completion --------------------------------------------------------- */

/* A refusal as an error reply. */
static void group_failed(const kl_job_t *job, kl_dispatch_out_t *out)
{
    char m[256];
    const char *g = job->u.group.address;
    int code = CODE(FORBIDDEN);
    switch (job->result) {
    case KL_ESTATE:
        if (job->kind != KL_JOB_GROUP_SEND)
            break;
        code = CODE(CONFLICT);
        snprintf(m, sizeof m, "a member left %.64s at op %llu, after your group_index %llu: "
                 "fetch its ops, renew your sender key and send again", g,
                 (unsigned long long)(job->u.group.group.rekey_next - 1),
                 (unsigned long long)job->u.group.group_index);
        kl_dispatch_fail(out, job->req_id, code, m, 0);
        return;
    case KL_EPROTO:
        code = CODE(BAD_REQUEST);
        if (job->kind == KL_JOB_GROUP_SEND)
            snprintf(m, sizeof m, "group_index %llu is beyond the log of %.64s (next index %llu)",
                     (unsigned long long)job->u.group.group_index, g,
                     (unsigned long long)job->u.group.group.next_index);
        else
            snprintf(m, sizeof m, "invalid group op: %s",
                     kl_group_verr_str((kl_group_verr_t)job->u.group.verr));
        kl_dispatch_fail(out, job->req_id, code, m, 0);
        return;
    case KL_EREFUSED:
        if (job->kind == KL_JOB_GROUP_OP)
            snprintf(m, sizeof m, "%s", kl_group_verr_str((kl_group_verr_t)job->u.group.verr));
        else
            snprintf(m, sizeof m, "not a member of %.96s", g);
        kl_dispatch_fail(out, job->req_id, code, m, 0);
        return;
    case KL_EKEYCHANGED:
        kl_dispatch_fail(out, job->req_id, code,
                         job->u.group.verr == 1
                             ? "the op names a user of this relay under an identity key "
                               "that is not the one they registered: look the user up "
                               "again and compare safety numbers with them"
                             : "the op names a user this relay does not have: check the "
                               "address",
                         0);
        return;
    case KL_ELIMIT:
        code = CODE(QUOTA_EXCEEDED);
        if (job->kind == KL_JOB_GROUP_OP && job->u.group.from == 0)
            snprintf(m, sizeof m, "too many groups: you have created the %u this relay allows",
                     job->u.group.max_created ? job->u.group.max_created
                                              : KL_GROUPS_PER_USER_DEFAULT);
        else if (job->kind == KL_JOB_GROUP_OP)
            snprintf(m, sizeof m, "the group's log is full: %.96s holds %u ops", g,
                     job->u.group.max_ops ? job->u.group.max_ops : KL_GROUP_MAX_OPS_DEFAULT);
        else
            snprintf(m, sizeof m, "the message log of %.96s is full: retry later", g);
        kl_dispatch_fail(out, job->req_id, code, m, 0);
        return;
    default:
        break;
    }
    kl_dispatch_log_failed(&KL_DISPATCH_GROUP, job->req_id, job->result, g,
                           job->u.group.group.next_index, out);
}

/* group_log over ops (n of them, body bytes in the job). */
static int build_group_log(kl_reply_t *r, uint32_t id, const kl_job_t *job, uint64_t from,
                           const kl_storage_entry_t *e, size_t n, const uint8_t *op,
                           size_t oplen)
{
    kl_dispatch_reply_init(r, id);
    Kollega__Relay__V1__GroupLog gl = KOLLEGA__RELAY__V1__GROUP_LOG__INIT;
    r->body.group_log = gl;
    long count = kl_dispatch_log_ops(r, e, n, op, oplen);
    if (count < 0)
        return KL_ENOMEM;
    r->body.group_log.group = (char *)job->u.group.address;
    r->body.group_log.from_index = from;
    r->body.group_log.ops = r->ops;
    r->body.group_log.n_ops = (size_t)count;
    r->body.group_log.more = !op && job->u.group.out.more;
    r->body.group_log.next_index = job->u.group.group.next_index;
    r->body.group_log.head.data = (uint8_t *)job->u.group.group.head;
    r->body.group_log.head.len = 32;
    r->frame.body_case = BODY(GROUP_LOG);
    r->frame.group_log = &r->body.group_log;
    return 0;
}

static int build_list(kl_reply_t *r, uint32_t id, const kl_storage_ginfo_t *infos, size_t n)
{
    kl_dispatch_reply_init(r, id);
    Kollega__Relay__V1__GroupListResult gl = KOLLEGA__RELAY__V1__GROUP_LIST_RESULT__INIT;
    r->body.group_list_result = gl;
    if (n > 0) {
        r->infos = calloc(n, sizeof *r->infos);
        r->info_ptrs = calloc(n, sizeof *r->info_ptrs);
        if (r->infos == NULL || r->info_ptrs == NULL)
            return KL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const kl_storage_ginfo_t *g = &infos[i];
        Kollega__Relay__V1__GroupInfo gi = KOLLEGA__RELAY__V1__GROUP_INFO__INIT;
        r->infos[i] = gi;
        r->infos[i].group = (char *)g->address;
        r->infos[i].next_index = g->next_index;
        r->infos[i].member = g->member;
        r->infos[i].last_seq = g->last_seq;
        r->info_ptrs[i] = &r->infos[i];
    }
    r->body.group_list_result.groups = r->info_ptrs;
    r->body.group_list_result.n_groups = n;
    r->frame.body_case = BODY(GROUP_LIST_RESULT);
    r->frame.group_list_result = &r->body.group_list_result;
    return 0;
}

void kl_dispatch_group_complete(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s,
                                const kl_job_t *job, kl_dispatch_out_t *out)
{
    (void)cfg;
    (void)s;
    uint32_t id = job->req_id;
    const kl_oplog_out_t *o = &job->u.group.out;
    const char *g = job->u.group.address;
    if (job->result != 0) {
        group_failed(job, out);
        return;
    }
    kl_reply_t *r = &out->reply;
    out->has_reply = 1;
    switch (job->kind) {
    case KL_JOB_GROUP_OP: {
        uint64_t index = job->u.group.group.next_index - 1;
        kl_dispatch_reply_init(r, id);
        Kollega__Relay__V1__GroupOpAccepted a = KOLLEGA__RELAY__V1__GROUP_OP_ACCEPTED__INIT;
        r->body.group_op_accepted = a;
        r->body.group_op_accepted.group = (char *)g;
        r->body.group_op_accepted.index = index;
        r->body.group_op_accepted.admitted = job->u.group.admitted > 0;
        r->frame.body_case = BODY(GROUP_OP_ACCEPTED);
        r->frame.group_op_accepted = &r->body.group_op_accepted;
        kl_dispatch_take_push(out, &KL_DISPATCH_GROUP, o, g,
                              build_group_log(&out->push, 0, job, index, NULL, 0,
                                              job->u.group.data, job->u.group.len) == 0);
        break;
    }
    case KL_JOB_GROUP_FETCH:
        if (build_group_log(r, id, job, job->u.group.from, o->entries, o->n, NULL, 0) != 0)
            kl_dispatch_oom(out, id);
        break;
    case KL_JOB_GROUP_LIST:
        if (build_list(r, id, job->u.group.infos, job->u.group.n_infos) != 0)
            kl_dispatch_oom(out, id);
        break;
    case KL_JOB_GROUP_SEND:
        kl_dispatch_log_sent(out, &KL_DISPATCH_GROUP, job, job->u.group.seq, job->u.group.data,
                             job->u.group.len, o, g);
        break;
    case KL_JOB_GROUP_READ:
        kl_dispatch_log_read(out, &KL_DISPATCH_GROUP, id, o, g);
        break;
    case KL_JOB_GROUP_ACK:
        kl_dispatch_ok(out, id);
        break;
    default:
        kl_dispatch_fail(out, id, CODE(INTERNAL), "internal relay error", 0);
        break;
    }
}

void kl_dispatch_group_fed_complete(const kl_job_t *job, kl_dispatch_out_t *out)
{
    const kl_fed_job_t *fj = job->u.fed;
    uint32_t id = job->req_id;
    if (fj->op == KL_FED_OP_GROUP_LIST) {
        if (job->result != 0) {
            kl_dispatch_storage_failed(out, id, job->result);
            return;
        }
        out->has_reply = 1;
        if (build_list(&out->reply, id, fj->infos, fj->n_infos) != 0)
            kl_dispatch_oom(out, id);
        return;
    }
    if (fj->err_code != 0 || fj->reply == NULL) {
        kl_dispatch_fail(out, id, fj->err_code ? fj->err_code : CODE(UNAVAILABLE),
                         fj->err_code ? fj->err_msg : "the group's relay did not answer", 0);
        return;
    }
    /* The home relay's answer as it would reach its own client, with our
     * request id; it points into the job's unpacked frame. The client
     * checks every op and message itself (signatures, hash chain). */
    const kl_frame_t *a = (const kl_frame_t *)fj->reply;
    out->has_reply = 1;
    kl_dispatch_reply_init(&out->reply, id);
    out->reply.frame = *a;
    out->reply.frame.id = id;
}
