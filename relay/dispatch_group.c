/* ERFA groups in the relay protocol (relay.proto bodies 20-25, and send,
 * fetch and ack with a group): the loop-thread half. Requests are checked
 * here and become KL_JOB_GROUP_* jobs (jobs_group.c does the storage work);
 * finished jobs become replies and pushes.
 *
 * Semantics (what a client can rely on):
 *   - group_op: the op's group must be "#name@<this relay>" (another relay:
 *     UNAVAILABLE), its actor the connected user's identity key and its
 *     actor_address the connected user's address (else FORBIDDEN). Then:
 *     NOT_FOUND (no such group, any index but 0), CONFLICT (create of an
 *     existing group, or index/prev not continuing the log), FORBIDDEN (the
 *     rules refuse it: kl_group_verr_str's text), BAD_REQUEST (malformed or
 *     bad signature). Accepted: group_op_accepted{group, index, admitted}
 *     to the caller, and group_log{group, from_index = index, ops: [op],
 *     next_index, head} pushed (id 0) to the other live connections of
 *     every local member and candidate before or after the op (so a removed
 *     member or refused candidate hears of it).
 *   - send to a group: members only (else FORBIDDEN "not a member of
 *     #x@y"); stored once; sent{seq} to the caller, and deliver{group,
 *     entries: [e]} pushed to the other live connections of every local
 *     member (the sender's other devices included).
 *   - fetch/ack with group: members only (FORBIDDEN otherwise). A member
 *     reads only entries after its admission (its cursor starts at the
 *     log's last seq then); a member who leaves or is removed loses its
 *     cursor at once.
 *   - group_fetch: members, candidates and anyone the log ever named get
 *     the ops; anyone else gets next_index and head only. NOT_FOUND for no
 *     such group.
 *   - group_list: the groups where the caller is a member or a candidate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "group.pb-c.h"
#include "kollega/err.h"
#include "kollega/group.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x

/* Parse a group address of this relay. 0, or an error reply and -1. */
static int group_addr(const kl_dispatch_cfg_t *cfg, const char *address, kl_dispatch_out_t *out,
                      uint32_t id)
{
    kl_addr_t a;
    if (strlen(address) > KL_ADDR_MAX || kl_addr_parse(address, &a) != 0 || !a.is_group) {
        kl_dispatch_fail(out, id, CODE(BAD_REQUEST), "malformed group address: expected #name@relay",
                         0);
        return -1;
    }
    if (strcmp(a.relay, cfg->relay_name) != 0) {
        kl_dispatch_fail(out, id, CODE(UNAVAILABLE),
                         "federation is not available on this relay yet: the group is on another "
                         "relay",
                         0);
        return -1;
    }
    return 0;
}

static kl_job_t *group_job(kl_job_kind_t kind, const kl_session_t *s, const char *address,
                           const uint8_t *data, size_t len)
{
    uint8_t *extra = NULL;
    kl_job_t *job = kl_job_new(kind, len, &extra);
    if (job == NULL)
        return NULL;
    snprintf(job->u.group.address, sizeof job->u.group.address, "%s", address);
    job->u.group.user = s->user_id;
    if (len > 0) {
        memcpy(extra, data, len);
        job->u.group.data = extra;
        job->u.group.len = len;
    }
    return job;
}

/* Decode a SignedOp far enough to route it and check who signed it; the
 * signature and the rules are checked against the stored log by the job. */
static int on_group_op(const kl_dispatch_cfg_t *cfg, kl_session_t *s, const kl_frame_t *f,
                       kl_dispatch_out_t *out)
{
    const ProtobufCBinaryData *b = &f->group_op->signed_op;
    Kollega__Group__V1__SignedOp *so = NULL;
    Kollega__Group__V1__Op *op = NULL;
    char self[KL_ADDR_MAX + 1];
    int r = 0;
    if (b->len == 0 || b->len > KL_GROUP_MAX_OP) {
        kl_dispatch_fail(out, f->id, b->len ? CODE(TOO_LARGE) : CODE(BAD_REQUEST),
                         b->len ? "group op over 2048 bytes" : "group_op needs a signed_op", 0);
        return 0;
    }
    so = kollega__group__v1__signed_op__unpack(NULL, b->len, b->data);
    if (so)
        op = kollega__group__v1__op__unpack(NULL, so->op.len, so->op.data);
    if (op == NULL || op->body_case == KOLLEGA__GROUP__V1__OP__BODY__NOT_SET) {
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST), "signed_op is not a group op", 0);
        goto out;
    }
    if (group_addr(cfg, op->group, out, f->id) != 0)
        goto out;
    snprintf(self, sizeof self, "%s@%s", s->handle, cfg->relay_name);
    if (op->actor.len != 32 || memcmp(op->actor.data, s->identity_key, 32) != 0 ||
        strcmp(op->actor_address, self) != 0) {
        kl_dispatch_fail(out, f->id, CODE(FORBIDDEN),
                         "a group op must be made by the connected user (actor and "
                         "actor_address)",
                         0);
        goto out;
    }
    kl_job_t *job = group_job(KL_JOB_GROUP_OP, s, op->group, b->data, b->len);
    if (job == NULL) {
        r = KL_ENOMEM;
        goto out;
    }
    job->u.group.relay_name = cfg->relay_name;
    job->u.group.from = op->index;
    out->job = job;
out:
    kollega__group__v1__op__free_unpacked(op, NULL);
    kollega__group__v1__signed_op__free_unpacked(so, NULL);
    return r;
}

int kl_dispatch_group_request(const kl_dispatch_cfg_t *cfg, kl_session_t *s,
                              const kl_frame_t *f, uint64_t now_ms, kl_dispatch_out_t *out)
{
    (void)now_ms;
    const char *address = NULL;
    kl_job_t *job = NULL;
    switch (f->body_case) {
    case BODY(GROUP_OP):
        return on_group_op(cfg, s, f, out);
    case BODY(GROUP_LIST):
        job = group_job(KL_JOB_GROUP_LIST, s, "", NULL, 0);
        break;
    case BODY(GROUP_FETCH):
        address = f->group_fetch->group;
        if (group_addr(cfg, address, out, f->id) != 0)
            return 0;
        job = group_job(KL_JOB_GROUP_FETCH, s, address, NULL, 0);
        if (job) {
            job->u.group.from = f->group_fetch->from_index;
            job->u.group.max_bytes = KL_DELIVER_BUDGET;
        }
        break;
    case BODY(SEND): /* body size already checked by on_send */
        address = f->send->to;
        if (group_addr(cfg, address, out, f->id) != 0)
            return 0;
        job = group_job(KL_JOB_GROUP_SEND, s, address, f->send->body.data, f->send->body.len);
        if (job) {
            job->u.group.ttl_s = f->send->ttl_s;
            job->u.group.ttl_default_s = cfg->ttl_default_s;
            job->u.group.ttl_max_s = cfg->ttl_max_s;
            job->u.group.quota = cfg->quota;
        }
        break;
    case BODY(FETCH): {
        address = f->fetch->group;
        if (group_addr(cfg, address, out, f->id) != 0)
            return 0;
        uint32_t limit = f->fetch->limit;
        limit = limit == 0 ? KL_FETCH_DEFAULT : limit > KL_FETCH_MAX ? KL_FETCH_MAX : limit;
        job = group_job(KL_JOB_GROUP_READ, s, address, NULL, 0);
        if (job) {
            job->u.group.from = f->fetch->after;
            job->u.group.limit = limit;
            job->u.group.max_bytes = KL_DELIVER_BUDGET;
        }
        break;
    }
    case BODY(ACK):
        address = f->ack->group;
        if (group_addr(cfg, address, out, f->id) != 0)
            return 0;
        job = group_job(KL_JOB_GROUP_ACK, s, address, NULL, 0);
        if (job)
            job->u.group.from = f->ack->seq;
        break;
    default:
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST), "unsupported request", 1);
        return 0;
    }
    if (job == NULL)
        return KL_ENOMEM;
    out->job = job;
    return 0;
}

/* ---- completion --------------------------------------------------------- */

/* A refusal as an error reply. */
static void group_failed(const kl_job_t *job, kl_dispatch_out_t *out)
{
    char m[160];
    const char *g = job->u.group.address;
    int code = CODE(FORBIDDEN);
    switch (job->result) {
    case KL_ENOTFOUND:
        code = CODE(NOT_FOUND);
        snprintf(m, sizeof m, "no such group %.96s", g);
        break;
    case KL_EEXIST:
        code = CODE(CONFLICT);
        snprintf(m, sizeof m, "%.96s already exists", g);
        break;
    case KL_ESTATE:
        code = CODE(CONFLICT);
        snprintf(m, sizeof m, "the op does not continue the log of %.64s (next index %llu): fetch "
                 "and retry", g, (unsigned long long)job->u.group.group.next_index);
        break;
    case KL_EPROTO:
        code = CODE(BAD_REQUEST);
        snprintf(m, sizeof m, "invalid group op: %s",
                 kl_group_verr_str((kl_group_verr_t)job->u.group.verr));
        break;
    case KL_EREFUSED:
        if (job->kind == KL_JOB_GROUP_OP)
            snprintf(m, sizeof m, "%s", kl_group_verr_str((kl_group_verr_t)job->u.group.verr));
        else
            snprintf(m, sizeof m, "not a member of %.96s", g);
        break;
    case KL_ELIMIT:
        code = CODE(QUOTA_EXCEEDED);
        snprintf(m, sizeof m, "the message log of %.96s is full: retry later", g);
        break;
    default:
        kl_dispatch_storage_failed(out, job->req_id, job->result);
        return;
    }
    kl_dispatch_fail(out, job->req_id, code, m, 0);
}

/* group_log over ops (n of them, body bytes in the job). */
static int build_group_log(kl_reply_t *r, uint32_t id, const kl_job_t *job, uint64_t from,
                           const kl_storage_entry_t *e, size_t n, const uint8_t *op,
                           size_t oplen)
{
    kl_dispatch_reply_init(r, id);
    Kollega__Relay__V1__GroupLog gl = KOLLEGA__RELAY__V1__GROUP_LOG__INIT;
    r->body.group_log = gl;
    size_t count = op ? 1 : n;
    if (count > 0) {
        r->ops = calloc(count, sizeof *r->ops);
        if (r->ops == NULL)
            return KL_ENOMEM;
    }
    if (op) {
        r->ops[0].data = (uint8_t *)op;
        r->ops[0].len = oplen;
    }
    for (size_t i = 0; !op && i < n; i++) {
        r->ops[i].data = e[i].body;
        r->ops[i].len = e[i].len;
    }
    r->body.group_log.group = (char *)job->u.group.address;
    r->body.group_log.from_index = from;
    r->body.group_log.ops = r->ops;
    r->body.group_log.n_ops = count;
    r->body.group_log.more = !op && job->u.group.more;
    r->body.group_log.next_index = job->u.group.group.next_index;
    r->body.group_log.head.data = (uint8_t *)job->u.group.group.head;
    r->body.group_log.head.len = 32;
    r->frame.body_case = BODY(GROUP_LOG);
    r->frame.group_log = &r->body.group_log;
    return 0;
}

static int build_list(kl_reply_t *r, uint32_t id, const kl_job_t *job)
{
    size_t n = job->u.group.n_infos;
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
        const kl_storage_ginfo_t *g = &job->u.group.infos[i];
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

/* Hand the job's push list to out (best effort: a push that cannot be
 * built is lost, the data is durable and will be fetched). */
static void take_push(const kl_job_t *job, kl_dispatch_out_t *out, int built)
{
    if (!built || job->u.group.n_push == 0)
        return;
    uint64_t *u = malloc(job->u.group.n_push * sizeof *u);
    if (u == NULL)
        return;
    memcpy(u, job->u.group.push, job->u.group.n_push * sizeof *u);
    out->has_push = 1;
    out->push_users = u;
    out->n_push_users = job->u.group.n_push;
    out->push_group = job->u.group.address;
}

static void oom(kl_dispatch_out_t *out, uint32_t id)
{
    kl_dispatch_out_free(out);
    kl_dispatch_fail(out, id, CODE(UNAVAILABLE), "the relay is out of memory: retry later", 0);
}

void kl_dispatch_group_complete(const kl_dispatch_cfg_t *cfg, kl_session_t *s,
                                const kl_job_t *job, kl_dispatch_out_t *out)
{
    (void)cfg;
    (void)s;
    uint32_t id = job->req_id;
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
        r->body.group_op_accepted.group = (char *)job->u.group.address;
        r->body.group_op_accepted.index = index;
        r->body.group_op_accepted.admitted = job->u.group.admitted > 0;
        r->frame.body_case = BODY(GROUP_OP_ACCEPTED);
        r->frame.group_op_accepted = &r->body.group_op_accepted;
        take_push(job, out,
                  build_group_log(&out->push, 0, job, index, NULL, 0, job->u.group.data,
                                  job->u.group.len) == 0);
        break;
    }
    case KL_JOB_GROUP_FETCH:
        if (build_group_log(r, id, job, job->u.group.from, job->u.group.entries, job->u.group.n,
                            NULL, 0) != 0)
            oom(out, id);
        break;
    case KL_JOB_GROUP_LIST:
        if (build_list(r, id, job) != 0)
            oom(out, id);
        break;
    case KL_JOB_GROUP_SEND: {
        kl_dispatch_reply_init(r, id);
        Kollega__Relay__V1__Sent sent = KOLLEGA__RELAY__V1__SENT__INIT;
        r->body.sent = sent;
        r->body.sent.seq = job->u.group.seq;
        r->frame.body_case = BODY(SENT);
        r->frame.sent = &r->body.sent;
        kl_storage_entry_t e = {job->u.group.seq, job->now_ms, (uint8_t *)job->u.group.data,
                                job->u.group.len};
        int built = kl_dispatch_build_deliver(&out->push, 0, &e, 1, 0) == 0;
        if (built)
            out->push.body.deliver.group = (char *)job->u.group.address;
        take_push(job, out, built);
        break;
    }
    case KL_JOB_GROUP_READ:
        if (kl_dispatch_build_deliver(r, id, job->u.group.entries, job->u.group.n,
                                      job->u.group.more) != 0)
            oom(out, id);
        else
            r->body.deliver.group = (char *)job->u.group.address;
        break;
    case KL_JOB_GROUP_ACK: {
        kl_dispatch_reply_init(r, id);
        Kollega__Relay__V1__Ok ok = KOLLEGA__RELAY__V1__OK__INIT;
        r->body.ok = ok;
        r->frame.body_case = BODY(OK);
        r->frame.ok = &r->body.ok;
        break;
    }
    default:
        kl_dispatch_fail(out, id, CODE(INTERNAL), "internal relay error", 0);
        break;
    }
}
