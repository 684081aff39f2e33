/* Broadcast channels in the relay protocol (relay.proto bodies 26-33, and
 * send, fetch and ack with a channel): the loop-thread half. Requests are
 * checked here and become KL_JOB_CHAN_* jobs (jobs_channel.c does the
 * storage work); finished jobs become replies and pushes.
 *
 * Semantics (what a client can rely on):
 *   - Every channel request names "!name@relay"; malformed: BAD_REQUEST.
 *     A channel of a relay that is not a federation peer: UNAVAILABLE
 *     ("no federation peer for R"). A channel of a peer (mirror model,
 *     proto/federation.proto "ChannelNotify"): channel_op, channel_fetch
 *     and posts are proxied to its home relay as the user
 *     (KL_FED_OP_GROUP jobs; the home relay's answer, or UNAVAILABLE when
 *     it cannot be asked); subscribe subscribes THIS relay there and then
 *     the user to the local mirror (KL_FED_OP_CHAN_SUB, fed_channel.c);
 *     fetch, ack, unsubscribe and channel_list are answered from the
 *     mirror (its own seqs).
 *   - For a peer (kl_dispatch_channel_remote, on the home relay): its
 *     user may channel_fetch, channel_op and post under the rules below
 *     (address and key as the peer vouches; BAD_REQUEST for anything
 *     else: users subscribe through their relay's mirror); the peer
 *     itself ("@peer") may subscribe, unsubscribe, channel_fetch, fetch
 *     and ack, as one subscriber whose fetch never returns entries at or
 *     below its cursor. Posts and ops name every mirroring peer in
 *     out->notify (one ChannelNotify each).
 *   - channel_op: decoded and its signature verified here, before any job
 *     (kl_channel_op_peek; BAD_REQUEST "invalid channel op: signature does
 *     not verify" or "signed_op is not a channel op"). The op's actor must
 *     be the connected user's identity key and its actor_address the
 *     connected user's address (else FORBIDDEN).
 *     Then NOT_FOUND (no such channel, any index but 0), CONFLICT (create
 *     of an existing channel, or index/prev not continuing the log: fetch
 *     and retry), FORBIDDEN (the rules refuse it: kl_channel_verr_str's
 *     text), BAD_REQUEST (malformed or bad signature), QUOTA_EXCEEDED
 *     (KL_STORAGE_CHANNEL_MAX_OPS ops). Accepted: channel_op_accepted
 *     {channel, index} to the caller and channel_log{channel, from_index =
 *     index, ops: [op], next_index, head} pushed (id 0) to every live
 *     connection of every subscriber but the caller's own.
 *   - channel_fetch: the publisher log is public to every authenticated
 *     user (subscribers need it to verify posts). NOT_FOUND otherwise.
 *   - subscribe{channel, backlog}: Ok; the cursor starts at the channel's
 *     last seq, or below the `backlog` latest retained posts. Subscribing
 *     again keeps the existing cursor. unsubscribe: Ok, or NOT_FOUND when
 *     the caller does not subscribe. channel_list: the caller's
 *     subscriptions with next_index, last_seq and cursor.
 *   - send{to: channel, body: SignedPost}: the post must name this channel
 *     (BAD_REQUEST) and be by the connected user (FORBIDDEN "not a
 *     publisher of !x@y"), who must be a publisher in the channel's current
 *     state, and its signature must verify (BAD_REQUEST): the relay checks
 *     it with kl_channel_post_open against the stored log. Stored ONCE in
 *     the channel's log whatever the number of subscribers, with the
 *     relay's TTL (send.ttl_s may shorten it); sent{seq} to the caller and
 *     deliver{channel, entries: [e]} pushed to every live connection of
 *     every subscriber but the caller's own (a dropped push is announced
 *     later with deliver{channel, more: true}).
 *   - fetch/ack with channel: subscribers only (FORBIDDEN otherwise). An
 *     entry is deleted once every subscriber has acked it, or at expiry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.pb-c.h"
#include "dispatch_int.h"
#include "kollega/channel.h"
#include "kollega/err.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x

/* Largest backlog a subscribe may ask for. */
#define BACKLOG_MAX 10000

static kl_job_t *chan_job(kl_job_kind_t kind, const kl_dispatch_caller_t *c,
                          const char *address, const uint8_t *data, size_t len)
{
    uint8_t *extra = NULL;
    kl_job_t *job = kl_job_new(kind, len, &extra);
    if (job == NULL)
        return NULL;
    snprintf(job->u.chan.address, sizeof job->u.chan.address, "%s", address);
    job->u.chan.user = c->user;
    if (c->remote)
        snprintf(job->u.chan.remote, sizeof job->u.chan.remote, "%s", c->address);
    /* Every caller's key: members-only channels check it (jobs_channel.c). */
    memcpy(job->u.chan.remote_key, c->key, 32);
    if (len > 0) {
        memcpy(extra, data, len);
        job->u.chan.data = extra;
        job->u.chan.len = len;
    }
    return job;
}

static void set_read(kl_job_t *job, uint64_t from, uint32_t limit, size_t max_bytes)
{
    job->u.chan.from = from;
    job->u.chan.limit = limit;
    job->u.chan.max_bytes = max_bytes;
}

static int parse(const char *address, kl_addr_t *a)
{
    return strlen(address) > KL_ADDR_MAX || !kl_channel_addr_valid(address) ||
           kl_addr_parse(address + 1, a) != 0;
}

static int peek(const uint8_t *op, size_t len, kl_dispatch_peek_t *out)
{
    kl_channel_peek_t pk;
    int r = kl_channel_op_peek(op, len, &pk);
    out->index = pk.index;
    memcpy(out->actor, pk.actor, 32);
    memcpy(out->actor_address, pk.actor_address, sizeof out->actor_address);
    memcpy(out->target, pk.channel, sizeof out->target);
    return r;
}

/* The chain and the rules of an op are checked against the channel's state
 * by the job (kl_dispatch_op). */
const kl_dispatch_kind_t KL_DISPATCH_CHANNEL = {
    1, "channel", '!', KL_CHANNEL_MAX_OP, parse, peek, KL_JOB_CHAN_OP,
    {KL_JOB_CHAN_FETCH, KL_JOB_CHAN_READ, KL_JOB_CHAN_ACK}, chan_job, set_read,
};

/* A post (send to a channel): decoded here to refuse the obvious early;
 * the signature and the publisher are checked against the stored log. */
static int on_post(const kl_dispatch_cfg_t *cfg, const kl_dispatch_caller_t *c,
                   const kl_frame_t *f, uint64_t now_ms, kl_dispatch_out_t *out)
{
    const Kollega__Relay__V1__Send *sd = f->send;
    Kollega__Channel__V1__SignedPost *sp = NULL;
    Kollega__Channel__V1__Post *p = NULL;
    const kl_storage_peer_t *peer = NULL;
    char m[200];
    int r = 0;
    int where = kl_dispatch_home(cfg, &KL_DISPATCH_CHANNEL, c, sd->to, out, f->id, &peer);
    if (where < 0)
        return 0;
    if (sd->body.len > KL_CHANNEL_MAX_POST) {
        kl_dispatch_fail(out, f->id, CODE(TOO_LARGE), "a channel post is at most 49152 bytes",
                         0);
        return 0;
    }
    sp = kollega__channel__v1__signed_post__unpack(NULL, sd->body.len, sd->body.data);
    if (sp)
        p = kollega__channel__v1__post__unpack(NULL, sp->post.len, sp->post.data);
    if (p == NULL || strcmp(p->channel, sd->to) != 0) {
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST),
                         "the body of a send to a channel is a SignedPost naming that channel",
                         0);
        goto out;
    }
    if (p->publisher.len != 32 || memcmp(p->publisher.data, c->key, 32) != 0 ||
        strcmp(p->publisher_address, c->address) != 0) {
        snprintf(m, sizeof m, "not a publisher of %.96s: a post must be signed by the connected "
                 "user", sd->to);
        kl_dispatch_fail(out, f->id, CODE(FORBIDDEN), m, 0);
        goto out;
    }
    if (where > 0) {
        r = kl_dispatch_proxy_job(c->address, c->key, peer->id, sd->to, f, out);
        goto out;
    }
    kl_job_t *job = chan_job(KL_JOB_CHAN_POST, c, sd->to, sd->body.data, sd->body.len);
    if (job == NULL) {
        r = KL_ENOMEM;
        goto out;
    }
    uint32_t ttl = sd->ttl_s == 0 || sd->ttl_s > cfg->ttl_default_s ? cfg->ttl_default_s
                                                                    : sd->ttl_s;
    if (ttl > cfg->ttl_max_s)
        ttl = cfg->ttl_max_s;
    job->u.chan.expires_ms = now_ms + (uint64_t)ttl * 1000;
    job->u.chan.quota = cfg->quota;
    out->job = job;
out:
    kollega__channel__v1__post__free_unpacked(p, NULL);
    kollega__channel__v1__signed_post__free_unpacked(sp, NULL);
    return r;
}

/* subscribe to a peer's channel: the relay subscribes itself there, then
 * mirrors it here (KL_FED_OP_CHAN_SUB, fed_channel.c). */
static int mirror_sub(const kl_dispatch_caller_t *c, const kl_storage_peer_t *peer,
                      const kl_frame_t *f, kl_dispatch_out_t *out)
{
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_CHAN_SUB, 0, NULL);
    if (job == NULL)
        return KL_ENOMEM;
    kl_fed_job_t *fj = job->u.fed;
    fj->peer = peer->id;
    snprintf(fj->address, sizeof fj->address, "%s", f->subscribe->channel);
    fj->user_id = c->user;
    memcpy(fj->identity_key, c->key, 32); /* the mirror checks membership */
    fj->limit = f->subscribe->backlog > BACKLOG_MAX ? BACKLOG_MAX : f->subscribe->backlog;
    out->job = job;
    return 0;
}

static int channel_request(const kl_dispatch_cfg_t *cfg, const kl_dispatch_caller_t *c,
                           const kl_frame_t *f, uint64_t now_ms, kl_dispatch_out_t *out)
{
    const kl_storage_peer_t *peer = NULL;
    kl_job_t *job = NULL;
    if (f->body_case == BODY(CHANNEL_OP))
        return kl_dispatch_op(cfg, &KL_DISPATCH_CHANNEL, c, f, &f->channel_op->signed_op, out);
    if (f->body_case == BODY(SEND)) /* body size already checked by on_send */
        return on_post(cfg, c, f, now_ms, out);
    if (f->body_case == BODY(CHANNEL_LIST)) {
        job = chan_job(KL_JOB_CHAN_LIST, c, "", NULL, 0);
        if (job == NULL)
            return KL_ENOMEM;
        out->job = job;
        return 0;
    }
    const char *address = kl_dispatch_target(&KL_DISPATCH_CHANNEL, f);
    if (address == NULL) {
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST), "unsupported request", 1);
        return 0;
    }
    int where = kl_dispatch_home(cfg, &KL_DISPATCH_CHANNEL, c, address, out, f->id, &peer);
    if (where < 0)
        return 0;
    /* A peer's channel: its publisher log is asked of its relay; a
     * subscription makes a mirror here; reads, acks and unsubscribe are
     * answered from the mirror. */
    if (where > 0 && f->body_case == BODY(CHANNEL_FETCH))
        return kl_dispatch_proxy_job(c->address, c->key, peer->id, address, f, out);
    if (where > 0 && f->body_case == BODY(SUBSCRIBE))
        return mirror_sub(c, peer, f, out);
    int r = kl_dispatch_read_job(&KL_DISPATCH_CHANNEL, c, address, f, out);
    if (r <= 0)
        return r;
    if (f->body_case != BODY(SUBSCRIBE) && f->body_case != BODY(UNSUBSCRIBE)) {
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST), "unsupported request", 1);
        return 0;
    }
    int sub = f->body_case == BODY(SUBSCRIBE);
    job = chan_job(sub ? KL_JOB_CHAN_SUB : KL_JOB_CHAN_UNSUB, c, address, NULL, 0);
    if (job == NULL)
        return KL_ENOMEM;
    if (sub)
        job->u.chan.backlog =
            f->subscribe->backlog > BACKLOG_MAX ? BACKLOG_MAX : f->subscribe->backlog;
    out->job = job;
    return 0;
}

int kl_dispatch_channel_request(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s,
                                const kl_frame_t *f, uint64_t now_ms, kl_dispatch_out_t *out)
{
    char self[KL_ADDR_MAX + 1];
    kl_dispatch_caller_t c;
    kl_dispatch_session_caller(cfg, s, self, &c);
    return channel_request(cfg, &c, f, now_ms, out);
}

int kl_dispatch_is_channel(const kl_frame_t *f)
{
    switch (f->body_case) {
    case BODY(CHANNEL_OP):
    case BODY(CHANNEL_FETCH):
    case BODY(SUBSCRIBE):
    case BODY(UNSUBSCRIBE):
    case BODY(CHANNEL_LIST):
        return 1;
    case BODY(SEND):
        return f->send->to[0] == '!';
    case BODY(FETCH):
        return f->fetch->group[0] == '\0' && f->fetch->channel[0] != '\0';
    case BODY(ACK):
        return f->ack->group[0] == '\0' && f->ack->channel[0] != '\0';
    default:
        return 0;
    }
}

int kl_dispatch_channel_remote(const kl_dispatch_cfg_t *cfg, const char *user,
                               const uint8_t key[32], const kl_frame_t *f, uint64_t now_ms,
                               kl_dispatch_out_t *out)
{
    kl_dispatch_caller_t c = {0, user, key, user};
    int relay = user[0] == '@';
    int ok;
    switch (f->body_case) {
    case BODY(CHANNEL_FETCH):
        ok = 1;
        break;
    case BODY(SUBSCRIBE):
    case BODY(UNSUBSCRIBE):
    case BODY(FETCH):
    case BODY(ACK):
        ok = relay; /* a peer's users subscribe through their relay's mirror */
        break;
    case BODY(CHANNEL_OP):
    case BODY(SEND):
        ok = !relay;
        break;
    default:
        ok = 0;
        break;
    }
    return kl_dispatch_remote(cfg, &c, f, now_ms, ok && kl_dispatch_is_channel(f),
                              relay ? "not a request a relay makes for its mirror"
                                    : "not a channel request of a peer's user (subscriptions "
                                      "go through the user's relay)",
                              channel_request, out);
}

/* ---- completion --------------------------------------------------------- */

/* A refusal as an error reply. */
static void chan_failed(const kl_job_t *job, kl_dispatch_out_t *out)
{
    char m[160];
    const char *c = job->u.chan.address;
    const char *why = kl_channel_verr_str((kl_channel_verr_t)job->u.chan.verr);
    int code = CODE(FORBIDDEN);
    switch (job->result) {
    case KL_EPROTO:
        code = CODE(BAD_REQUEST);
        snprintf(m, sizeof m, "invalid channel %s: %s",
                 job->kind == KL_JOB_CHAN_POST ? "post" : "op", why);
        break;
    case KL_EREFUSED:
        if (job->kind == KL_JOB_CHAN_OP) {
            snprintf(m, sizeof m, "%s", why);
        } else if (job->kind == KL_JOB_CHAN_POST) {
            snprintf(m, sizeof m, "not a publisher of %.96s", c);
        } else if (job->kind == KL_JOB_CHAN_UNSUB) {
            code = CODE(NOT_FOUND);
            snprintf(m, sizeof m, "you do not subscribe to %.96s", c);
        } else if (job->u.chan.verr == KL_CV_NOT_MEMBER) {
            snprintf(m, sizeof m, "members only: ask the owner of %.96s to add you", c);
        } else {
            snprintf(m, sizeof m, "not subscribed to %.96s: subscribe first", c);
        }
        break;
    case KL_ELIMIT:
        code = CODE(QUOTA_EXCEEDED);
        if (job->kind == KL_JOB_CHAN_OP)
            snprintf(m, sizeof m, "%.96s has reached its limit of %d ops", c,
                     KL_STORAGE_CHANNEL_MAX_OPS);
        else
            snprintf(m, sizeof m, "the post log of %.96s is full: retry later", c);
        break;
    default:
        kl_dispatch_log_failed(&KL_DISPATCH_CHANNEL, job->req_id, job->result, c,
                               job->u.chan.chan.next_index, out);
        return;
    }
    kl_dispatch_fail(out, job->req_id, code, m, 0);
}

/* channel_log over ops e[0..n) (or the single op `op`). */
static int build_log(kl_reply_t *r, uint32_t id, const kl_job_t *job, uint64_t from,
                     const kl_storage_entry_t *e, size_t n, const uint8_t *op, size_t oplen)
{
    kl_dispatch_reply_init(r, id);
    Kollega__Relay__V1__ChannelLog cl = KOLLEGA__RELAY__V1__CHANNEL_LOG__INIT;
    r->body.channel_log = cl;
    long count = kl_dispatch_log_ops(r, e, n, op, oplen);
    if (count < 0)
        return KL_ENOMEM;
    r->body.channel_log.channel = (char *)job->u.chan.address;
    r->body.channel_log.from_index = from;
    r->body.channel_log.ops = r->ops;
    r->body.channel_log.n_ops = (size_t)count;
    r->body.channel_log.more = !op && job->u.chan.out.more;
    r->body.channel_log.next_index = job->u.chan.chan.next_index;
    if (job->u.chan.chan.next_index > 0) {
        r->body.channel_log.head.data = (uint8_t *)job->u.chan.chan.head;
        r->body.channel_log.head.len = 32;
    }
    r->frame.body_case = BODY(CHANNEL_LOG);
    r->frame.channel_log = &r->body.channel_log;
    return 0;
}

static int build_list(kl_reply_t *r, uint32_t id, const kl_job_t *job)
{
    size_t n = job->u.chan.n_infos;
    kl_dispatch_reply_init(r, id);
    Kollega__Relay__V1__ChannelListResult cl = KOLLEGA__RELAY__V1__CHANNEL_LIST_RESULT__INIT;
    r->body.channel_list_result = cl;
    if (n > 0) {
        r->cinfos = calloc(n, sizeof *r->cinfos);
        r->cinfo_ptrs = calloc(n, sizeof *r->cinfo_ptrs);
        if (r->cinfos == NULL || r->cinfo_ptrs == NULL)
            return KL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const kl_storage_cinfo_t *c = &job->u.chan.infos[i];
        Kollega__Relay__V1__ChannelInfo ci = KOLLEGA__RELAY__V1__CHANNEL_INFO__INIT;
        r->cinfos[i] = ci;
        r->cinfos[i].channel = (char *)c->address;
        r->cinfos[i].next_index = c->next_index;
        r->cinfos[i].last_seq = c->last_seq;
        r->cinfos[i].cursor = c->cursor;
        r->cinfo_ptrs[i] = &r->cinfos[i];
    }
    r->body.channel_list_result.channels = r->cinfo_ptrs;
    r->body.channel_list_result.n_channels = n;
    r->frame.body_case = BODY(CHANNEL_LIST_RESULT);
    r->frame.channel_list_result = &r->body.channel_list_result;
    return 0;
}

void kl_dispatch_channel_complete(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s,
                                  const kl_job_t *job, kl_dispatch_out_t *out)
{
    (void)cfg;
    (void)s;
    uint32_t id = job->req_id;
    const kl_chan_job_t *j = &job->u.chan;
    if (job->result != 0) {
        chan_failed(job, out);
        return;
    }
    kl_reply_t *r = &out->reply;
    out->has_reply = 1;
    switch (job->kind) {
    case KL_JOB_CHAN_OP: {
        uint64_t index = j->chan.next_index - 1;
        kl_dispatch_reply_init(r, id);
        Kollega__Relay__V1__ChannelOpAccepted a = KOLLEGA__RELAY__V1__CHANNEL_OP_ACCEPTED__INIT;
        r->body.channel_op_accepted = a;
        r->body.channel_op_accepted.channel = (char *)j->address;
        r->body.channel_op_accepted.index = index;
        r->frame.body_case = BODY(CHANNEL_OP_ACCEPTED);
        r->frame.channel_op_accepted = &r->body.channel_op_accepted;
        kl_dispatch_take_push(out, &KL_DISPATCH_CHANNEL, &j->out, j->address,
                              build_log(&out->push, 0, job, index, NULL, 0, j->data, j->len) == 0);
        break;
    }
    case KL_JOB_CHAN_FETCH:
        if (build_log(r, id, job, j->from, j->out.entries, j->out.n, NULL, 0) != 0)
            kl_dispatch_oom(out, id);
        break;
    case KL_JOB_CHAN_LIST:
        if (build_list(r, id, job) != 0)
            kl_dispatch_oom(out, id);
        break;
    case KL_JOB_CHAN_POST:
        kl_dispatch_log_sent(out, &KL_DISPATCH_CHANNEL, job, j->seq, j->data, j->len, &j->out,
                             j->address);
        break;
    case KL_JOB_CHAN_READ:
        kl_dispatch_log_read(out, &KL_DISPATCH_CHANNEL, id, &j->out, j->address);
        break;
    case KL_JOB_CHAN_SUB:
    case KL_JOB_CHAN_UNSUB:
    case KL_JOB_CHAN_ACK:
        kl_dispatch_ok(out, id);
        break;
    default:
        kl_dispatch_fail(out, id, CODE(INTERNAL), "internal relay error", 0);
        break;
    }
}
