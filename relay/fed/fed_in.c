/* Requests a peer sends us on its (our inbound) link: forwards to store in
 * local inboxes, lookups and prekey fetches of local users, pings. Every
 * inbound link is rate limited (token bucket, the peer's configured rate,
 * burst twice that); a forward over the rate is answered RETRY in its
 * place in the order, anything else over it gets RATE_LIMITED.
 *
 * Forwards are stored by one deliver job at a time per link (those that
 * arrive meanwhile wait for the next), so the order of answers, and of
 * entries in every inbox, is the order of the forwards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dispatch.h"
#include "fed_int.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "base/diag.h"
#include "core/opk_limit.h"

#define FBODY(x) KOLLEGA__FEDERATION__V1__FED_FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x
#define FSTATUS(x) KOLLEGA__FEDERATION__V1__FORWARD_RESULT__STATUS__##x

static int rate_take(fed_link_t *l)
{
    uint64_t rate = l->peer->cfg.rate ? l->peer->cfg.rate : FED_RATE_DEFAULT;
    uint64_t cap = rate * 2000, now = uv_now(l->fed->cfg.loop);
    if (now > l->refill_ms) {
        uint64_t add = (now - l->refill_ms) * rate;
        l->tokens_milli = l->tokens_milli + add > cap ? cap : l->tokens_milli + add;
    }
    l->refill_ms = now;
    if (l->tokens_milli < 1000)
        return 0;
    l->tokens_milli -= 1000;
    return 1;
}

static void send_error(fed_link_t *l, uint32_t id, int code, const char *msg)
{
    kl_fedframe_t fr = KOLLEGA__FEDERATION__V1__FED_FRAME__INIT;
    Kollega__Relay__V1__Error e = KOLLEGA__RELAY__V1__ERROR__INIT;
    e.code = (Kollega__Relay__V1__ErrorCode)code;
    e.message = (char *)msg;
    fr.id = id;
    fr.body_case = FBODY(ERROR);
    fr.error = &e;
    kl_fedlink_send(l, &fr);
}

/* The handle of an address on this relay, or NULL. */
static const char *local_handle(fed_link_t *l, const char *address, kl_addr_t *a)
{
    if (strlen(address) > KL_ADDR_MAX || kl_addr_parse(address, a) != 0 || a->is_group ||
        strcmp(a->relay, l->fed->cfg.relay_name) != 0)
        return NULL;
    return a->handle;
}

static void submit_job(fed_link_t *l, kl_job_t *job)
{
    job->owner = l;
    job->now_ms = kl_fed_now_ms();
    l->jobs++;
    l->fed->cfg.submit(l->fed->cfg.ud, job);
}

void kl_fedin_send_error(fed_link_t *l, uint32_t id, int code, const char *msg)
{
    send_error(l, id, code, msg);
}

kl_job_t *kl_fedin_job(fed_link_t *l, uint32_t id, kl_fed_op_t op)
{
    kl_job_t *job = kl_fed_job_new(op, 0, NULL);
    if (job == NULL)
        send_error(l, id, CODE(UNAVAILABLE), "out of memory: retry later");
    else
        job->u.fed->link_req = id;
    return job;
}

void kl_fedin_submit(fed_link_t *l, kl_job_t *job)
{
    submit_job(l, job);
}

static void submit_deliver(fed_link_t *l)
{
    if (l->delivering || l->filling == NULL || l->closing)
        return;
    kl_job_t *job = l->filling;
    kl_fed_job_t *fj = job->u.fed;
    l->filling = NULL;
    /* After a RETRY nothing is stored until the origin restarts from it. */
    for (size_t i = 0; i < fj->n_fwd; i++) {
        if (fj->fwd[i].restart)
            l->blocked = 0;
        if (l->blocked)
            fj->fwd[i].status = KL_FED_RETRY;
    }
    l->delivering = 1;
    submit_job(l, job);
}

static void on_forward(fed_link_t *l, const kl_fedframe_t *fr)
{
    const Kollega__Federation__V1__Forward *fw = fr->forward;
    kl_fed_t *f = l->fed;
    kl_addr_t a;
    if (strcmp(fw->origin_relay, l->peer->cfg.name) != 0) {
        kl_fedlink_close(l, "forward names another origin relay");
        return;
    }
    if (l->filling == NULL) {
        l->filling = kl_fed_job_new(KL_FED_OP_IN_DELIVER, 0, NULL);
        if (l->filling == NULL) {
            kl_fedlink_close(l, "out of memory");
            return;
        }
        kl_fed_job_t *fj = l->filling->u.fed;
        snprintf(fj->address, sizeof fj->address, "%s", l->peer->cfg.name);
        fj->epoch = fw->origin_epoch;
        fj->inbox_quota = f->cfg.inbox_quota;
        fj->ttl_max_ms = (uint64_t)f->cfg.ttl_max_s * 1000;
    }
    kl_fed_job_t *fj = l->filling->u.fed;
    if (fj->n_fwd == KL_FED_BATCH || fj->epoch != fw->origin_epoch) {
        kl_fedlink_close(l, fj->n_fwd == KL_FED_BATCH ? "peer exceeded the forward window"
                                                      : "origin epoch changed on a link");
        return;
    }
    kl_fed_fwd_t *w = &fj->fwd[fj->n_fwd];
    memset(w, 0, sizeof *w);
    w->seq = fw->origin_seq;
    w->frame_id = fr->id;
    w->restart = fw->restart;
    w->expires_ms = fw->expires_ms;
    const char *h = local_handle(l, fw->to, &a);
    if (h == NULL || fw->body.len == 0 || fw->body.len > KL_MAX_BODY_LIMIT || fw->origin_seq == 0 ||
        (fw->delivery_token.len != 0 && fw->delivery_token.len != 32))
        w->status = KL_FED_REJECTED;
    else if (!rate_take(l))
        w->status = KL_FED_RETRY;
    if (w->status == 0) {
        w->body = malloc(fw->body.len);
        if (w->body == NULL) {
            kl_fedlink_close(l, "out of memory");
            return;
        }
        memcpy(w->body, fw->body.data, fw->body.len);
        w->len = fw->body.len;
        memcpy(w->handle, h, strlen(h) + 1);
        if (fw->delivery_token.len == 32) {
            w->has_token = 1;
            memcpy(w->token, fw->delivery_token.data, 32);
        }
    }
    fj->n_fwd++;
    submit_deliver(l);
}

/* May the peer's fetch of local user handle consume a one-time prekey
 * (opk_limit.h)? The requester is the user the peer names, if it is one
 * of the peer's own (a relay speaks only for its users), else the peer
 * itself ("@peer"); the peer's whole budget applies either way. */
static int prekey_take(fed_link_t *l, const char *requester, const char *handle)
{
    const kl_dispatch_cfg_t *dc = l->fed->cfg.dispatch;
    const char *peer = l->peer->cfg.name;
    char who[KL_ADDR_MAX + 1];
    kl_addr_t a;
    if (dc == NULL || dc->opk_limit == NULL)
        return 1;
    if (requester && strlen(requester) <= KL_ADDR_MAX && kl_addr_parse(requester, &a) == 0 &&
        !a.is_group && strcmp(a.relay, peer) == 0)
        snprintf(who, sizeof who, "%s", requester);
    else
        snprintf(who, sizeof who, "@%.*s", KL_RELAYNAME_MAX, peer);
    return kl_opk_limit_take(dc->opk_limit, peer, who, handle, kl_fed_now_ms());
}

static void on_request(fed_link_t *l, const kl_fedframe_t *fr, kl_fed_op_t op,
                       const char *address)
{
    kl_addr_t a;
    if (fr->id == 0) {
        kl_fedlink_close(l, "request without an id");
        return;
    }
    if (!rate_take(l)) {
        send_error(l, fr->id, CODE(RATE_LIMITED), "rate limit exceeded on this link");
        return;
    }
    const char *h = local_handle(l, address, &a);
    if (h == NULL) {
        send_error(l, fr->id, CODE(BAD_REQUEST), "not an address of this relay");
        return;
    }
    kl_job_t *job = kl_fedin_job(l, fr->id, op);
    if (job == NULL)
        return;
    snprintf(job->u.fed->address, sizeof job->u.fed->address, "%s", address);
    memcpy(job->u.fed->handle, h, strlen(h) + 1);
    if (op == KL_FED_OP_IN_PREKEY)
        job->u.fed->take_opk = prekey_take(l, fr->prekey_fetch->requester, h);
    if (op == KL_FED_OP_IN_LOOKUP && fr->lookup->delivery_token.len == 32) {
        job->u.fed->has_token = 1;
        memcpy(job->u.fed->token, fr->lookup->delivery_token.data, 32);
    }
    submit_job(l, job);
}

void kl_fedin_frame(fed_link_t *l, kl_fedframe_t *fr)
{
    switch (fr->body_case) {
    case FBODY(FORWARD):
        on_forward(l, fr);
        break;
    case FBODY(LOOKUP):
        on_request(l, fr, KL_FED_OP_IN_LOOKUP, fr->lookup->address);
        break;
    case FBODY(PREKEY_FETCH):
        on_request(l, fr, KL_FED_OP_IN_PREKEY, fr->prekey_fetch->address);
        break;
    case FBODY(GROUP_PROXY):
        if (fr->id == 0) {
            kl_fedlink_close(l, "request without an id");
        } else if (!rate_take(l)) {
            send_error(l, fr->id, CODE(RATE_LIMITED), "rate limit exceeded on this link");
        } else {
            kl_fedgroup_in_proxy(l, fr);
        }
        break;
    case FBODY(GROUP_NOTIFY):
        if (rate_take(l)) /* no answer; a notice over the rate is dropped (best effort) */
            kl_fedgroup_in_notify(l, fr);
        break;
    case FBODY(CHANNEL_NOTIFY):
        /* No answer. Over the rate it is not lost: every mirror of the
         * peer is synced at the next sweep instead. */
        if (rate_take(l))
            kl_fedchan_in_notify(l, fr);
        else
            kl_fedchan_resync_later(l->peer);
        break;
    case FBODY(PING): {
        kl_fedframe_t out = KOLLEGA__FEDERATION__V1__FED_FRAME__INIT;
        Kollega__Relay__V1__Pong pong = KOLLEGA__RELAY__V1__PONG__INIT;
        pong.nonce = fr->ping->nonce;
        out.id = fr->id;
        out.body_case = FBODY(PONG);
        out.pong = &pong;
        kl_fedlink_send(l, &out);
        break;
    }
    default:
        send_error(l, fr->id, CODE(BAD_REQUEST), "not a request");
        kl_fedlink_close(l, "unexpected frame on an inbound link");
        break;
    }
}

/* Push one stored entry to the recipient's live connections. */
static void push_entry(kl_fed_t *f, const kl_fed_fwd_t *w, uint64_t ts)
{
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Deliver d = KOLLEGA__RELAY__V1__DELIVER__INIT;
    Kollega__Relay__V1__Entry e = KOLLEGA__RELAY__V1__ENTRY__INIT;
    Kollega__Relay__V1__Entry *ep = &e;
    e.seq = w->inbox_seq;
    e.ts = ts;
    e.body.data = w->body;
    e.body.len = w->len;
    d.n_entries = 1;
    d.entries = &ep;
    fr.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_DELIVER;
    fr.deliver = &d;
    f->cfg.push(f->cfg.ud, w->recipient, &fr);
}

static void deliver_done(fed_link_t *l, kl_job_t *job)
{
    kl_fed_job_t *fj = job->u.fed;
    static const int status[] = {0, FSTATUS(STORED), FSTATUS(DUPLICATE), FSTATUS(REJECTED),
                                 FSTATUS(RETRY)};
    l->delivering = 0;
    for (size_t i = 0; i < fj->n_fwd; i++) {
        kl_fed_fwd_t *w = &fj->fwd[i];
        int st = job->result != 0 && w->status != KL_FED_REJECTED ? KL_FED_RETRY : w->status;
        if (st < KL_FED_STORED || st > KL_FED_RETRY)
            st = KL_FED_RETRY;
        if (st == KL_FED_STORED)
            push_entry(l->fed, w, job->now_ms);
        if (st == KL_FED_RETRY)
            l->blocked = 1;
        kl_fedframe_t fr = KOLLEGA__FEDERATION__V1__FED_FRAME__INIT;
        Kollega__Federation__V1__ForwardResult res =
            KOLLEGA__FEDERATION__V1__FORWARD_RESULT__INIT;
        res.origin_seq = w->seq;
        res.status = (Kollega__Federation__V1__ForwardResult__Status)status[st];
        res.message = st == KL_FED_REJECTED  ? "no such user, or a malformed forward"
                      : st == KL_FED_RETRY    ? "inbox full, rate or storage: retry later"
                                              : "";
        fr.id = w->frame_id;
        fr.body_case = FBODY(FORWARD_RESULT);
        fr.forward_result = &res;
        kl_fedlink_send(l, &fr);
    }
    kl_job_free(job);
    submit_deliver(l);
}

static void request_done(fed_link_t *l, kl_job_t *job)
{
    kl_fed_job_t *fj = job->u.fed;
    kl_fedframe_t fr = KOLLEGA__FEDERATION__V1__FED_FRAME__INIT;
    kl_reply_t rep; /* the answer a local user would get, inside the FedFrame */
    fr.id = fj->link_req;
    if (job->result == KL_ECRYPTO) {
        send_error(l, fr.id, CODE(FORBIDDEN),
                   "the delivery token was not accepted: the sender must identify itself");
    } else if (job->result == KL_ENOTFOUND) {
        send_error(l, fr.id, CODE(NOT_FOUND), "no prekey bundle for this user");
    } else if (job->result != 0) {
        send_error(l, fr.id, CODE(UNAVAILABLE), "storage unavailable: retry later");
    } else if (fj->op == KL_FED_OP_IN_LOOKUP) {
        kl_dispatch_reply_lookup(&rep, 0, fj->address, fj->exists, fj->identity_key);
        fr.body_case = FBODY(LOOKUP_RESULT);
        fr.lookup_result = &rep.body.lookup_result;
        kl_fedlink_send(l, &fr);
    } else {
        kl_dispatch_reply_bundle(&rep, 0, fj->address, &fj->bundle);
        fr.body_case = FBODY(PREKEY_BUNDLE);
        fr.prekey_bundle = &rep.body.prekey_bundle;
        kl_fedlink_send(l, &fr);
    }
    kl_job_free(job);
}

void kl_fedin_job_done(fed_link_t *l, kl_job_t *job)
{
    l->jobs--;
    if (job->u.fed->op == KL_FED_OP_IN_GROUP || job->u.fed->op == KL_FED_OP_IN_NOTIFY) {
        kl_fedgroup_in_done(l, job);
    } else if (job->u.fed->op == KL_FED_OP_IN_DELIVER) {
        /* Committed entries are pushed even if the link is gone. */
        if (l->closing || l->fed->stopping) {
            l->delivering = 0;
            for (size_t i = 0; i < job->u.fed->n_fwd; i++)
                if (job->result == 0 && job->u.fed->fwd[i].status == KL_FED_STORED &&
                    !l->fed->stopping)
                    push_entry(l->fed, &job->u.fed->fwd[i], job->now_ms);
            kl_job_free(job);
        } else {
            deliver_done(l, job);
        }
    } else if (l->closing) {
        kl_job_free(job);
    } else {
        request_done(l, job);
    }
    kl_fedlink_maybe_free(l);
}
