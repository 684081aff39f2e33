#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch_int.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/x3dh.h"
#include "opk_limit.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x

int kl_dispatch_is_request(int body_case)
{
    switch (body_case) {
    case BODY(REGISTER):
    case BODY(AUTH):
    case BODY(PING):
    case BODY(LOOKUP):
    case BODY(PREKEY_UPLOAD):
    case BODY(PREKEY_FETCH):
    case BODY(PREKEY_STATUS):
    case BODY(SEND):
    case BODY(FETCH):
    case BODY(ACK):
    case BODY(GROUP_OP):
    case BODY(GROUP_FETCH):
    case BODY(GROUP_LIST):
    case BODY(CHANNEL_OP):
    case BODY(CHANNEL_FETCH):
    case BODY(SUBSCRIBE):
    case BODY(UNSUBSCRIBE):
    case BODY(CHANNEL_LIST):
    case BODY(DELIVERY_TOKEN):
        return 1;
    default:
        return 0;
    }
}

void kl_client_state_init(kl_client_state_t *s, const kl_dispatch_cfg_t *cfg, uint64_t now_ms)
{
    memset(s, 0, sizeof *s);
    s->tokens_milli = (uint64_t)cfg->burst * 1000;
    s->refill_ms = now_ms;
}

/* Token bucket: rate tokens per second, at most burst. Kept in thousandths
 * of a token so that a rate of 1/s still refills every millisecond without
 * floating point. */
static int rate_take(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s, uint64_t now_ms)
{
    uint64_t cap = (uint64_t)cfg->burst * 1000;
    if (now_ms > s->refill_ms) {
        uint64_t elapsed = now_ms - s->refill_ms;
        uint64_t add = cfg->rate == 0 || elapsed > cap / cfg->rate + 1 ? cap
                                                                      : elapsed * cfg->rate;
        s->tokens_milli = s->tokens_milli + add > cap ? cap : s->tokens_milli + add;
    }
    s->refill_ms = now_ms; /* a clock stepping back refills nothing */
    if (s->tokens_milli < 1000)
        return 0;
    s->tokens_milli -= 1000;
    return 1;
}

static void reply_init(kl_reply_t *r, uint32_t id)
{
    memset(r, 0, sizeof *r);
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    r->frame = f;
    r->frame.id = id;
}

void kl_dispatch_error(kl_reply_t *r, uint32_t id, int code, const char *message)
{
    reply_init(r, id);
    Kollega__Relay__V1__Error e = KOLLEGA__RELAY__V1__ERROR__INIT;
    r->body.error = e;
    r->body.error.code = (Kollega__Relay__V1__ErrorCode)code;
    snprintf(r->msg, sizeof r->msg, "%s", message);
    r->body.error.message = r->msg;
    r->frame.body_case = BODY(ERROR);
    r->frame.error = &r->body.error;
}

static void fail(kl_dispatch_out_t *out, uint32_t id, int code, const char *message, int close)
{
    out->has_reply = 1;
    kl_dispatch_error(&out->reply, id, code, message);
    out->close = out->close || close;
}

void kl_dispatch_fail(kl_dispatch_out_t *out, uint32_t id, int code, const char *message,
                      int close)
{
    fail(out, id, code, message, close);
}

void kl_dispatch_reply_init(kl_reply_t *r, uint32_t id)
{
    reply_init(r, id);
}

void kl_dispatch_ok(kl_dispatch_out_t *out, uint32_t id)
{
    out->has_reply = 1;
    reply_init(&out->reply, id);
    Kollega__Relay__V1__Ok ok = KOLLEGA__RELAY__V1__OK__INIT;
    out->reply.body.ok = ok;
    out->reply.frame.body_case = BODY(OK);
    out->reply.frame.ok = &out->reply.body.ok;
}

void kl_dispatch_sent(kl_dispatch_out_t *out, uint32_t id, uint64_t seq)
{
    out->has_reply = 1;
    reply_init(&out->reply, id);
    Kollega__Relay__V1__Sent sent = KOLLEGA__RELAY__V1__SENT__INIT;
    out->reply.body.sent = sent;
    out->reply.body.sent.seq = seq;
    out->reply.frame.body_case = BODY(SENT);
    out->reply.frame.sent = &out->reply.body.sent;
}

int kl_dispatch_read_args(const kl_frame_t *f, uint64_t *from, uint32_t *limit,
                          size_t *max_bytes)
{
    switch (f->body_case) {
    case BODY(GROUP_FETCH):
    case BODY(CHANNEL_FETCH):
        *from = f->body_case == BODY(GROUP_FETCH) ? f->group_fetch->from_index
                                                  : f->channel_fetch->from_index;
        *max_bytes = KL_DELIVER_BUDGET;
        return KL_DISPATCH_READ_OPS;
    case BODY(FETCH):
        *from = f->fetch->after;
        *limit = f->fetch->limit == 0            ? KL_FETCH_DEFAULT
                 : f->fetch->limit > KL_FETCH_MAX ? KL_FETCH_MAX
                                                  : f->fetch->limit;
        *max_bytes = KL_DELIVER_BUDGET;
        return KL_DISPATCH_READ_ENTRIES;
    case BODY(ACK):
        *from = f->ack->seq;
        return KL_DISPATCH_READ_ACK;
    default:
        return -1;
    }
}

int kl_dispatch_local_user(const kl_dispatch_cfg_t *cfg, const char *address, kl_addr_t *a,
                      kl_dispatch_out_t *out, uint32_t id)
{
    if (strlen(address) > KL_ADDR_MAX || kl_addr_parse(address, a) != 0) {
        fail(out, id, CODE(BAD_REQUEST), "malformed address: expected handle@relay", 0);
        return -1;
    }
    /* Group messages are routed before this (send); a lookup or prekey
     * fetch names a person, never a group. */
    if (a->is_group) {
        fail(out, id, CODE(BAD_REQUEST),
             "a group address has no identity key or prekeys: name a user (handle@relay)", 0);
        return -1;
    }
    return strcmp(a->relay, cfg->relay_name) != 0 ? 1 : 0;
}

int kl_dispatch_lookup_job(const kl_frame_t *f, const kl_addr_t *a, kl_dispatch_out_t *out)
{
    kl_job_t *job = kl_job_new(KL_JOB_LOOKUP, 0, NULL);
    if (job == NULL)
        return KL_ENOMEM;
    snprintf(job->u.lookup.address, sizeof job->u.lookup.address, "%s", f->lookup->address);
    memcpy(job->u.lookup.handle, a->handle, sizeof a->handle);
    out->job = job;
    return 0;
}

static int on_lookup(const kl_dispatch_cfg_t *cfg, const kl_frame_t *f, kl_dispatch_out_t *out)
{
    kl_addr_t a;
    int where = kl_dispatch_local_user(cfg, f->lookup->address, &a, out, f->id);
    if (where != 0)
        return where > 0 ? kl_fed_dispatch(cfg, f, &a, 0, out) : 0;
    return kl_dispatch_lookup_job(f, &a, out);
}

int kl_dispatch_body_ok(const kl_dispatch_cfg_t *cfg, const kl_frame_t *f, kl_dispatch_out_t *out)
{
    const Kollega__Relay__V1__Send *sd = f->send;
    if (sd->body.len == 0) {
        fail(out, f->id, CODE(BAD_REQUEST), "send needs a non-empty body", 0);
        return 0;
    }
    if (sd->body.len > cfg->max_body) {
        char m[96];
        snprintf(m, sizeof m, "body of %zu bytes is over this relay's limit of %zu",
                 sd->body.len, cfg->max_body);
        fail(out, f->id, CODE(TOO_LARGE), m, 0);
        return 0;
    }
    return 1;
}

static int on_send(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s, const kl_frame_t *f,
                   uint64_t now_ms, kl_dispatch_out_t *out)
{
    const Kollega__Relay__V1__Send *sd = f->send;
    kl_addr_t a;
    if (!kl_dispatch_body_ok(cfg, f, out))
        return 0;
    if (kl_dispatch_is_channel(f))
        return kl_dispatch_channel_request(cfg, s, f, now_ms, out);
    if (sd->to[0] == '#')
        return kl_dispatch_group_request(cfg, s, f, now_ms, out);
    int where = kl_dispatch_local_user(cfg, sd->to, &a, out, f->id);
    if (where != 0)
        return where > 0 ? kl_fed_dispatch(cfg, f, &a, now_ms, out) : 0;
    return kl_dispatch_send_job(cfg, f, &a, now_ms, out);
}

uint64_t kl_dispatch_send_expiry(const kl_dispatch_cfg_t *cfg, uint32_t ttl_s, uint64_t now_ms)
{
    uint32_t ttl = ttl_s == 0 ? cfg->ttl_default_s : ttl_s;
    if (ttl > cfg->ttl_max_s)
        ttl = cfg->ttl_max_s;
    return now_ms + (uint64_t)ttl * 1000;
}

int kl_dispatch_send_job(const kl_dispatch_cfg_t *cfg, const kl_frame_t *f, const kl_addr_t *a,
                    uint64_t now_ms, kl_dispatch_out_t *out)
{
    const Kollega__Relay__V1__Send *sd = f->send;
    uint8_t *body = NULL;
    kl_job_t *job = kl_job_new(KL_JOB_SEND, sd->body.len, &body);
    if (job == NULL)
        return KL_ENOMEM;
    memcpy(body, sd->body.data, sd->body.len);
    memcpy(job->u.send.handle, a->handle, sizeof a->handle);
    job->u.send.body = body;
    job->u.send.len = sd->body.len;
    job->u.send.expires_ms = kl_dispatch_send_expiry(cfg, sd->ttl_s, now_ms);
    job->u.send.quota = cfg->quota;
    out->job = job;
    return 0;
}

static int dispatch(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s, const kl_frame_t *f,
                    uint64_t now_ms, kl_dispatch_out_t *out)
{
    int bc = f->body_case;
    if (!kl_dispatch_is_request(bc)) {
        fail(out, f->id, CODE(BAD_REQUEST), "this frame type is never sent to a relay", 1);
        return 0;
    }
    if (f->id == 0) {
        fail(out, 0, CODE(BAD_REQUEST), "requests need a non-zero id", 1);
        return 0;
    }
    if (!rate_take(cfg, s, now_ms)) {
        fail(out, f->id, CODE(RATE_LIMITED), "rate limit exceeded: slow down and retry", 0);
        return 0;
    }
    if (bc == BODY(PING)) {
        out->has_reply = 1;
        reply_init(&out->reply, f->id);
        Kollega__Relay__V1__Pong p = KOLLEGA__RELAY__V1__PONG__INIT;
        out->reply.body.pong = p;
        out->reply.body.pong.nonce = f->ping->nonce;
        out->reply.frame.body_case = BODY(PONG);
        out->reply.frame.pong = &out->reply.body.pong;
        return 0;
    }
    if (bc == BODY(REGISTER) || bc == BODY(AUTH)) {
        if (s->authed || s->auth_pending) {
            fail(out, f->id, CODE(BAD_REQUEST), "this connection is already authenticated", 1);
            return 0;
        }
        return bc == BODY(REGISTER) ? kl_dispatch_register(s, f, out) : kl_dispatch_auth(cfg, s, f, out);
    }
    if (!s->authed && !s->auth_pending &&
        ((bc == BODY(SEND) && f->send->delivery_token.len) ||
         (bc == BODY(LOOKUP) && f->lookup->delivery_token.len)))
        return kl_dispatch_unidentified(cfg, s, f, now_ms, out);
    if (!s->authed) {
        fail(out, f->id, CODE(UNAUTHENTICATED), "authenticate first (register or auth)", 1);
        return 0;
    }
    /* A fetch or ack names a channel or a group, or else means the inbox. */
    if ((bc == BODY(FETCH) || bc == BODY(ACK)) && kl_dispatch_is_channel(f))
        return kl_dispatch_channel_request(cfg, s, f, now_ms, out);
    if ((bc == BODY(FETCH) && f->fetch->group[0] != '\0') ||
        (bc == BODY(ACK) && f->ack->group[0] != '\0'))
        return kl_dispatch_group_request(cfg, s, f, now_ms, out);
    kl_job_t *job = NULL;
    switch (bc) {
    case BODY(LOOKUP):
        return on_lookup(cfg, f, out);
    case BODY(PREKEY_UPLOAD):
        return kl_dispatch_prekey_upload(s, f, out);
    case BODY(PREKEY_FETCH):
        return kl_dispatch_prekey_fetch(cfg, s, f, now_ms, out);
    case BODY(SEND):
        return on_send(cfg, s, f, now_ms, out);
    case BODY(DELIVERY_TOKEN):
        return kl_dispatch_delivery_token(s, f, out);
    case BODY(PREKEY_STATUS):
        job = kl_job_new(KL_JOB_PREKEY_STATUS, 0, NULL);
        if (job)
            job->u.pstatus.user = s->user_id;
        break;
    case BODY(GROUP_OP):
    case BODY(GROUP_FETCH):
    case BODY(GROUP_LIST):
        return kl_dispatch_group_request(cfg, s, f, now_ms, out);
    case BODY(CHANNEL_OP):
    case BODY(CHANNEL_FETCH):
    case BODY(SUBSCRIBE):
    case BODY(UNSUBSCRIBE):
    case BODY(CHANNEL_LIST):
        return kl_dispatch_channel_request(cfg, s, f, now_ms, out);
    case BODY(FETCH): /* of the inbox: with a group or channel it was routed above */
        job = kl_job_new(KL_JOB_FETCH, 0, NULL);
        if (job) {
            job->u.fetch.log = s->inbox;
            kl_dispatch_read_args(f, &job->u.fetch.after, &job->u.fetch.limit,
                                  &job->u.fetch.max_bytes);
        }
        break;
    case BODY(ACK):
        job = kl_job_new(KL_JOB_ACK, 0, NULL);
        if (job) {
            job->u.ack.log = s->inbox;
            job->u.ack.reader = s->user_id;
            job->u.ack.seq = f->ack->seq;
        }
        break;
    default:
        fail(out, f->id, CODE(BAD_REQUEST), "unsupported request", 1);
        return 0;
    }
    if (job == NULL)
        return KL_ENOMEM;
    out->job = job;
    return 0;
}

int kl_dispatch_frame(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s, const kl_frame_t *f,
                      uint64_t now_ms, kl_dispatch_out_t *out)
{
    memset(out, 0, sizeof *out);
    int r = dispatch(cfg, s, f, now_ms, out);
    if (r != 0) {
        kl_dispatch_out_free(out);
        memset(out, 0, sizeof *out);
        return r;
    }
    if (out->job) {
        out->job->req_id = f->id;
        out->job->now_ms = now_ms;
    }
    return 0;
}

/* Storage failures the client can retry (the database was busy or the
 * commit failed) are UNAVAILABLE; anything else is a relay bug. */
static void storage_failed(kl_dispatch_out_t *out, uint32_t id, int err)
{
    if (err == KL_EIO || err == KL_ENOMEM)
        fail(out, id, CODE(UNAVAILABLE), "the relay's storage is unavailable: retry later", 0);
    else
        fail(out, id, CODE(INTERNAL), "internal relay error", 0);
}

void kl_dispatch_storage_failed(kl_dispatch_out_t *out, uint32_t id, int err)
{
    storage_failed(out, id, err);
}

void kl_dispatch_reply_lookup(kl_reply_t *r, uint32_t id, const char *address, int exists,
                              const uint8_t key[32])
{
    reply_init(r, id);
    Kollega__Relay__V1__LookupResult lr = KOLLEGA__RELAY__V1__LOOKUP_RESULT__INIT;
    r->body.lookup_result = lr;
    r->body.lookup_result.address = (char *)address;
    r->body.lookup_result.exists = exists;
    if (exists) {
        r->body.lookup_result.identity_key.data = (uint8_t *)key;
        r->body.lookup_result.identity_key.len = 32;
    }
    r->frame.body_case = BODY(LOOKUP_RESULT);
    r->frame.lookup_result = &r->body.lookup_result;
}

/* A deliver frame over n entries. The entry structs are allocated; their
 * bodies point into the job. Returns 0 or KL_ENOMEM. */
static int build_deliver(kl_reply_t *r, uint32_t id, const kl_storage_entry_t *e, size_t n,
                         int more)
{
    reply_init(r, id);
    Kollega__Relay__V1__Deliver d = KOLLEGA__RELAY__V1__DELIVER__INIT;
    r->body.deliver = d;
    if (n > 0) {
        r->entries = calloc(n, sizeof *r->entries);
        r->entry_ptrs = calloc(n, sizeof *r->entry_ptrs);
        if (r->entries == NULL || r->entry_ptrs == NULL)
            return KL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        Kollega__Relay__V1__Entry en = KOLLEGA__RELAY__V1__ENTRY__INIT;
        r->entries[i] = en;
        r->entries[i].seq = e[i].seq;
        r->entries[i].ts = e[i].ts_ms;
        r->entries[i].body.data = e[i].body;
        r->entries[i].body.len = e[i].len;
        r->entry_ptrs[i] = &r->entries[i];
    }
    r->body.deliver.n_entries = n;
    r->body.deliver.entries = r->entry_ptrs;
    r->body.deliver.more = more;
    r->frame.body_case = BODY(DELIVER);
    r->frame.deliver = &r->body.deliver;
    return 0;
}

int kl_dispatch_build_deliver(kl_reply_t *r, uint32_t id, const kl_storage_entry_t *e,
                              size_t n, int more)
{
    return build_deliver(r, id, e, n, more);
}

static void reply_free(kl_reply_t *r)
{
    free(r->entries);
    free(r->entry_ptrs);
    free(r->ops);
    free(r->infos);
    free(r->info_ptrs);
    free(r->cinfos);
    free(r->cinfo_ptrs);
    r->entries = NULL;
    r->entry_ptrs = NULL;
    r->ops = NULL;
    r->infos = NULL;
    r->info_ptrs = NULL;
    r->cinfos = NULL;
    r->cinfo_ptrs = NULL;
}

static void complete_send(const kl_dispatch_cfg_t *cfg, const kl_job_t *job,
                          kl_dispatch_out_t *out)
{
    switch (job->result) {
    case 0:
        break;
    case KL_ECRYPTO:
        kl_dispatch_token_refused(job, out);
        return;
    case KL_ENOTFOUND:
        fail(out, job->req_id, CODE(NOT_FOUND), "no such user on this relay", 0);
        return;
    case KL_ELIMIT:
        fail(out, job->req_id, CODE(QUOTA_EXCEEDED),
             "the recipient's inbox is full: retry later", 0);
        return;
    default:
        storage_failed(out, job->req_id, job->result);
        return;
    }
    if (job->u.send.has_token)
        kl_dispatch_unidentified_done(cfg, NULL, job);
    if (kl_dispatch_sent_push(out, job, job->u.send.seq, job->u.send.body, job->u.send.len)) {
        out->has_push = 1;
        out->push_user = job->u.send.recipient;
    }
}

int kl_dispatch_sent_push(kl_dispatch_out_t *out, const kl_job_t *job, uint64_t seq,
                          const uint8_t *body, size_t len)
{
    kl_dispatch_sent(out, job->req_id, seq);
    /* The push is best effort (the entry is durable and will be fetched),
     * so failing to build it only loses the push. */
    kl_storage_entry_t e = {seq, job->now_ms, (uint8_t *)body, len};
    if (build_deliver(&out->push, 0, &e, 1, 0) == 0)
        return 1;
    reply_free(&out->push);
    return 0;
}

void kl_dispatch_oom(kl_dispatch_out_t *out, uint32_t id)
{
    kl_dispatch_out_free(out);
    fail(out, id, CODE(UNAVAILABLE), "the relay is out of memory: retry later", 0);
}

void kl_dispatch_complete(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s, const kl_job_t *job,
                          kl_dispatch_out_t *out)
{
    memset(out, 0, sizeof *out);
    if (KL_JOB_IS_CHAN(job->kind)) {
        kl_dispatch_channel_complete(cfg, s, job, out);
        return;
    }
    if (KL_JOB_IS_GROUP(job->kind)) {
        kl_dispatch_group_complete(cfg, s, job, out);
        return;
    }
    switch (job->kind) {
    case KL_JOB_REGISTER:
        kl_dispatch_complete_register(s, job, out);
        return;
    case KL_JOB_AUTH:
        kl_dispatch_complete_auth(s, job, out);
        return;
    case KL_JOB_PREKEY_FETCH:
        kl_dispatch_complete_prekey_fetch(job, out);
        return;
    case KL_JOB_SEND:
        complete_send(cfg, job, out);
        return;
    case KL_JOB_FED:
        if (job->u.fed->has_token && !s->authed)
            kl_dispatch_unidentified_done(cfg, s, job);
        kl_fed_dispatch_complete(job, out);
        return;
    default:
        break;
    }
    if (job->result != 0) {
        if (job->kind == KL_JOB_LOOKUP && job->result == KL_ECRYPTO)
            kl_dispatch_token_refused(job, out);
        else if (job->kind == KL_JOB_PREKEY_UPLOAD && job->result == KL_ELIMIT)
            fail(out, job->req_id, CODE(QUOTA_EXCEEDED),
                 "at most 200 one-time prekeys are stored per user: check prekey_status", 0);
        else
            storage_failed(out, job->req_id, job->result);
        return;
    }
    switch (job->kind) {
    case KL_JOB_LOOKUP:
        out->has_reply = 1;
        kl_dispatch_reply_lookup(&out->reply, job->req_id, job->u.lookup.address,
                                 job->u.lookup.exists, job->u.lookup.identity_key);
        break;
    case KL_JOB_PREKEY_STATUS:
        out->has_reply = 1;
        reply_init(&out->reply, job->req_id);
        Kollega__Relay__V1__PrekeyCount pc = KOLLEGA__RELAY__V1__PREKEY_COUNT__INIT;
        out->reply.body.prekey_count = pc;
        out->reply.body.prekey_count.one_time_prekeys = job->u.pstatus.status.count;
        out->reply.body.prekey_count.ran_out = job->u.pstatus.status.ran_out;
        out->reply.body.prekey_count.ran_out_since_ms = job->u.pstatus.status.ran_out_since_ms;
        out->reply.frame.body_case = BODY(PREKEY_COUNT);
        out->reply.frame.prekey_count = &out->reply.body.prekey_count;
        break;
    case KL_JOB_FETCH:
        out->has_reply = 1;
        if (build_deliver(&out->reply, job->req_id, job->u.fetch.entries, job->u.fetch.n,
                          job->u.fetch.more) != 0)
            kl_dispatch_oom(out, job->req_id);
        break;
    case KL_JOB_PREKEY_UPLOAD:
    case KL_JOB_ACK:
    case KL_JOB_TOKEN_SET:
        kl_dispatch_ok(out, job->req_id);
        break;
    default:
        fail(out, job->req_id, CODE(INTERNAL), "internal relay error", 0);
        break;
    }
}

void kl_dispatch_out_free(kl_dispatch_out_t *out)
{
    reply_free(&out->reply);
    reply_free(&out->push);
    free(out->push_users);
    out->push_users = NULL;
    out->n_push_users = 0;
    out->has_reply = 0;
    out->has_push = 0;
}

const kl_storage_peer_t *kl_dispatch_peer(const kl_dispatch_cfg_t *cfg, const char *relay)
{
    return cfg->peers.find ? cfg->peers.find(cfg->peers.ctx, relay) : NULL;
}

size_t kl_dispatch_peer_count(const kl_dispatch_cfg_t *cfg)
{
    return cfg->peers.count ? cfg->peers.count(cfg->peers.ctx) : 0;
}
