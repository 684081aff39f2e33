/* What the group and channel requests share (dispatch_int.h): both are
 * about a signed-op log "#name@relay" or "!name@relay" that lives on one
 * relay, change it with signed ops checked here before any job, and answer
 * with the same kinds of replies and pushes. The rules of each stay in
 * dispatch_group.c and dispatch_channel.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch_int.h"
#include "kollega/err.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x

const char *kl_dispatch_target(const kl_dispatch_kind_t *k, const kl_frame_t *f)
{
    switch (f->body_case) {
    case BODY(SEND):
        return f->send->to;
    case BODY(FETCH):
        return k->channel ? f->fetch->channel : f->fetch->group;
    case BODY(ACK):
        return k->channel ? f->ack->channel : f->ack->group;
    case BODY(GROUP_FETCH):
        return k->channel ? NULL : f->group_fetch->group;
    case BODY(CHANNEL_FETCH):
        return k->channel ? f->channel_fetch->channel : NULL;
    case BODY(SUBSCRIBE):
        return k->channel ? f->subscribe->channel : NULL;
    case BODY(UNSUBSCRIBE):
        return k->channel ? f->unsubscribe->channel : NULL;
    default:
        return NULL;
    }
}

void kl_dispatch_session_caller(const kl_dispatch_cfg_t *cfg, const kl_client_state_t *s,
                                char self[KL_ADDR_MAX + 1], kl_dispatch_caller_t *c)
{
    snprintf(self, KL_ADDR_MAX + 1, "%s@%s", s->handle, cfg->relay_name);
    c->user = s->user_id;
    c->address = self;
    c->key = s->identity_key;
    c->remote = NULL;
}

int kl_dispatch_home(const kl_dispatch_cfg_t *cfg, const kl_dispatch_kind_t *k,
                     const kl_dispatch_caller_t *c, const char *address, kl_dispatch_out_t *out,
                     uint32_t id, const kl_storage_peer_t **peer)
{
    kl_addr_t a;
    char m[KL_ADDR_MAX + 64];
    if (k->parse(address, &a) != 0) {
        snprintf(m, sizeof m, "malformed %s address: expected %cname@relay", k->noun, k->sigil);
        kl_dispatch_fail(out, id, CODE(BAD_REQUEST), m, 0);
        return -1;
    }
    if (strcmp(a.relay, cfg->relay_name) == 0)
        return 0;
    *peer = c->remote ? NULL : kl_dispatch_peer(cfg, a.relay);
    if (*peer)
        return 1;
    if (c->remote)
        snprintf(m, sizeof m, "%s is not a %s of this relay", address, k->noun);
    else
        snprintf(m, sizeof m, "no federation peer for %s", a.relay);
    kl_dispatch_fail(out, id, c->remote ? CODE(BAD_REQUEST) : CODE(UNAVAILABLE), m, 0);
    return -1;
}

int kl_dispatch_op(const kl_dispatch_cfg_t *cfg, const kl_dispatch_kind_t *k,
                   const kl_dispatch_caller_t *c, const kl_frame_t *f,
                   const ProtobufCBinaryData *b, kl_dispatch_out_t *out)
{
    const kl_storage_peer_t *peer = NULL;
    kl_dispatch_peek_t pk;
    char m[96];
    if (b->len == 0 || b->len > k->max_op) {
        if (b->len)
            snprintf(m, sizeof m, "%s op over %zu bytes", k->noun, k->max_op);
        else
            snprintf(m, sizeof m, "%s_op needs a signed_op", k->noun);
        kl_dispatch_fail(out, f->id, b->len ? CODE(TOO_LARGE) : CODE(BAD_REQUEST), m, 0);
        return 0;
    }
    int r = k->peek(b->data, b->len, &pk);
    if (r == KL_ENOMEM)
        return r;
    if (r != 0) {
        if (r == KL_ECRYPTO)
            snprintf(m, sizeof m, "invalid %s op: signature does not verify", k->noun);
        else
            snprintf(m, sizeof m, "signed_op is not a %s op", k->noun);
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST), m, 0);
        return 0;
    }
    int where = kl_dispatch_home(cfg, k, c, pk.target, out, f->id, &peer);
    if (where < 0)
        return 0;
    if (memcmp(pk.actor, c->key, 32) != 0 || strcmp(pk.actor_address, c->address) != 0) {
        snprintf(m, sizeof m, "a %s op must be made by the connected user (actor and "
                 "actor_address)", k->noun);
        kl_dispatch_fail(out, f->id, CODE(FORBIDDEN), m, 0);
        return 0;
    }
    if (where > 0)
        return kl_dispatch_proxy_job(c->address, c->key, peer->id, pk.target, f, out);
    out->job = k->new_job(k->op_job, c, pk.target, b->data, b->len);
    if (out->job == NULL)
        return KL_ENOMEM;
    k->set_read(out->job, pk.index, 0, 0);
    return 0;
}

int kl_dispatch_read_job(const kl_dispatch_kind_t *k, const kl_dispatch_caller_t *c,
                         const char *address, const kl_frame_t *f, kl_dispatch_out_t *out)
{
    uint64_t from = 0;
    uint32_t limit = 0;
    size_t max_bytes = 0;
    int read = kl_dispatch_read_args(f, &from, &limit, &max_bytes);
    if (read < 0)
        return 1;
    out->job = k->new_job(k->read_job[read], c, address, NULL, 0);
    if (out->job == NULL)
        return KL_ENOMEM;
    k->set_read(out->job, from, limit, max_bytes);
    return 0;
}

int kl_dispatch_remote(const kl_dispatch_cfg_t *cfg, const kl_dispatch_caller_t *c,
                       const kl_frame_t *f, uint64_t now_ms, int allowed, const char *refused,
                       int (*handle)(const kl_dispatch_cfg_t *, const kl_dispatch_caller_t *,
                                     const kl_frame_t *, uint64_t, kl_dispatch_out_t *),
                       kl_dispatch_out_t *out)
{
    memset(out, 0, sizeof *out);
    if (!allowed) {
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST), refused, 0);
        return 0;
    }
    if (f->body_case == BODY(SEND) && !kl_dispatch_body_ok(cfg, f, out))
        return 0;
    int r = handle(cfg, c, f, now_ms, out);
    if (r) {
        kl_dispatch_out_free(out);
        memset(out, 0, sizeof *out);
    }
    return r;
}

long kl_dispatch_log_ops(kl_reply_t *r, const kl_storage_entry_t *e, size_t n,
                         const uint8_t *op, size_t oplen)
{
    size_t count = op ? 1 : n;
    if (count > 0) {
        r->ops = calloc(count, sizeof *r->ops);
        if (r->ops == NULL)
            return -1;
    }
    if (op) {
        r->ops[0].data = (uint8_t *)op;
        r->ops[0].len = oplen;
    }
    for (size_t i = 0; !op && i < n; i++) {
        r->ops[i].data = e[i].body;
        r->ops[i].len = e[i].len;
    }
    return (long)count;
}

void kl_dispatch_take_push(kl_dispatch_out_t *out, const kl_dispatch_kind_t *k,
                           const kl_oplog_out_t *o, const char *address, int built)
{
    if (!built || o->n_push == 0)
        return;
    uint64_t *u = malloc(o->n_push * sizeof *u);
    if (u == NULL)
        return;
    memcpy(u, o->push, o->n_push * sizeof *u);
    out->has_push = 1;
    out->push_users = u;
    out->n_push_users = o->n_push;
    out->push_group = address;
    /* Federation peers hear of it: each gets one GroupNotify for its users,
     * or for a channel one ChannelNotify. */
    out->notify = o->notify;
    out->n_notify = o->n_notify;
    out->notify_channel = k->channel;
}

/* Name the group or channel a deliver frame is of. */
static void deliver_of(Kollega__Relay__V1__Deliver *d, const kl_dispatch_kind_t *k,
                       const char *address)
{
    if (k->channel)
        d->channel = (char *)address;
    else
        d->group = (char *)address;
}

void kl_dispatch_log_sent(kl_dispatch_out_t *out, const kl_dispatch_kind_t *k, const kl_job_t *job,
                          uint64_t seq, const uint8_t *body, size_t len, const kl_oplog_out_t *o,
                          const char *address)
{
    int built = kl_dispatch_sent_push(out, job, seq, body, len);
    if (built)
        deliver_of(&out->push.body.deliver, k, address);
    kl_dispatch_take_push(out, k, o, address, built);
}

void kl_dispatch_log_read(kl_dispatch_out_t *out, const kl_dispatch_kind_t *k, uint32_t id,
                          const kl_oplog_out_t *o, const char *address)
{
    out->has_reply = 1;
    if (kl_dispatch_build_deliver(&out->reply, id, o->entries, o->n, o->more) != 0)
        kl_dispatch_oom(out, id);
    else
        deliver_of(&out->reply.body.deliver, k, address);
}

void kl_dispatch_announce(kl_reply_t *r, const char *address, int ops)
{
    Kollega__Relay__V1__Deliver d = KOLLEGA__RELAY__V1__DELIVER__INIT;
    Kollega__Relay__V1__GroupLog gl = KOLLEGA__RELAY__V1__GROUP_LOG__INIT;
    Kollega__Relay__V1__ChannelLog cl = KOLLEGA__RELAY__V1__CHANNEL_LOG__INIT;
    const kl_dispatch_kind_t *k = address[0] == '!' ? &KL_DISPATCH_CHANNEL : &KL_DISPATCH_GROUP;
    kl_dispatch_reply_init(r, 0);
    if (ops && k->channel) {
        r->body.channel_log = cl;
        r->body.channel_log.channel = (char *)address;
        r->body.channel_log.more = 1;
        r->frame.body_case = BODY(CHANNEL_LOG);
        r->frame.channel_log = &r->body.channel_log;
    } else if (ops) {
        r->body.group_log = gl;
        r->body.group_log.group = (char *)address;
        r->body.group_log.more = 1;
        r->frame.body_case = BODY(GROUP_LOG);
        r->frame.group_log = &r->body.group_log;
    } else {
        r->body.deliver = d;
        deliver_of(&r->body.deliver, k, address);
        r->body.deliver.more = 1;
        r->frame.body_case = BODY(DELIVER);
        r->frame.deliver = &r->body.deliver;
    }
}

void kl_dispatch_log_failed(const kl_dispatch_kind_t *k, uint32_t id, int result,
                            const char *address, uint64_t next_index, kl_dispatch_out_t *out)
{
    char m[160];
    switch (result) {
    case KL_ENOTFOUND:
        snprintf(m, sizeof m, "no such %s %.96s", k->noun, address);
        kl_dispatch_fail(out, id, CODE(NOT_FOUND), m, 0);
        return;
    case KL_EEXIST:
        snprintf(m, sizeof m, "%.96s already exists", address);
        kl_dispatch_fail(out, id, CODE(CONFLICT), m, 0);
        return;
    case KL_ESTATE:
        snprintf(m, sizeof m, "the op does not continue the log of %.64s (next index %llu): "
                 "fetch and retry", address, (unsigned long long)next_index);
        kl_dispatch_fail(out, id, CODE(CONFLICT), m, 0);
        return;
    default:
        kl_dispatch_storage_failed(out, id, result);
        return;
    }
}

int kl_dispatch_proxy_job(const char *user, const uint8_t key[32], uint64_t peer,
                          const char *target, const kl_frame_t *f, kl_dispatch_out_t *out)
{
    size_t n = kollega__relay__v1__frame__get_packed_size(f);
    uint8_t *data = NULL;
    /* It travels inside a GroupProxy (user address, key) in a FedFrame. */
    if (n + KL_ADDR_MAX + 128 > KL_WIRE_MAX_FRAME) {
        kl_dispatch_fail(out, f->id, CODE(TOO_LARGE),
                         "too large for a group or channel on another relay: make it smaller",
                         0);
        return 0;
    }
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_GROUP, n, &data);
    if (job == NULL)
        return KL_ENOMEM;
    kollega__relay__v1__frame__pack(f, data);
    kl_fed_job_t *fj = job->u.fed;
    fj->data = data;
    fj->len = n;
    fj->peer = peer;
    snprintf(fj->address, sizeof fj->address, "%s", target);
    snprintf(fj->user, sizeof fj->user, "%s", user);
    memcpy(fj->identity_key, key, 32);
    fj->req_body = f->body_case;
    out->job = job;
    return 0;
}

/* Answers the group's (or channel's) relay may give to a proxied request
 * of this kind: an error, or the one answer a request of that body has. */
int kl_dispatch_group_answer_ok(int req, int ans)
{
    static const struct {
        int req, ans;
    } ANSWER[] = {
        {BODY(GROUP_OP), BODY(GROUP_OP_ACCEPTED)},
        {BODY(GROUP_FETCH), BODY(GROUP_LOG)},
        {BODY(SEND), BODY(SENT)},
        {BODY(FETCH), BODY(DELIVER)},
        {BODY(ACK), BODY(OK)},
        {BODY(SUBSCRIBE), BODY(OK)},
        {BODY(UNSUBSCRIBE), BODY(OK)},
        {BODY(CHANNEL_OP), BODY(CHANNEL_OP_ACCEPTED)},
        {BODY(CHANNEL_FETCH), BODY(CHANNEL_LOG)},
    };
    if (ans == BODY(ERROR))
        return 1;
    for (size_t i = 0; i < sizeof ANSWER / sizeof ANSWER[0]; i++)
        if (ANSWER[i].req == req)
            return ans == ANSWER[i].ans;
    return 0;
}
