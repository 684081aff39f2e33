/* The client side of federation in dispatch: requests for addresses on
 * another relay become KL_JOB_FED jobs (a send is committed to the peer's
 * outbox; a lookup or prekey fetch is proxied over the link), and their
 * completions become the replies a local request would get. */
#include <stdio.h>
#include <string.h>

#include "dispatch_int.h"
#include "federation.pb-c.h"
#include "kollega/err.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x

int kl_fed_dispatch(const kl_dispatch_cfg_t *cfg, const kl_frame_t *f, const kl_addr_t *a,
                    uint64_t now_ms, kl_dispatch_out_t *out)
{
    const kl_storage_peer_t *p = kl_dispatch_peer(cfg, a->relay);
    char m[KL_RELAYNAME_MAX + 64];
    if (p == NULL || a->is_group) {
        snprintf(m, sizeof m, "no federation peer for %s", a->relay);
        out->has_reply = 1;
        kl_dispatch_error(&out->reply, f->id, CODE(UNAVAILABLE), m);
        return 0;
    }
    kl_job_t *job = NULL;
    if (f->body_case == BODY(SEND)) {
        const Kollega__Relay__V1__Send *sd = f->send;
        Kollega__Federation__V1__Forward fw = KOLLEGA__FEDERATION__V1__FORWARD__INIT;
        fw.to = sd->to;
        fw.body = sd->body;
        if (sd->delivery_token.len == 32)
            fw.delivery_token = sd->delivery_token;
        fw.expires_ms = kl_dispatch_send_expiry(cfg, sd->ttl_s, now_ms);
        size_t n = kollega__federation__v1__forward__get_packed_size(&fw);
        uint8_t *data = NULL;
        job = kl_fed_job_new(KL_FED_OP_SEND, n, &data);
        if (job == NULL)
            return KL_ENOMEM;
        kollega__federation__v1__forward__pack(&fw, data);
        job->u.fed->data = data;
        job->u.fed->len = n;
        job->u.fed->expires_ms = fw.expires_ms;
        job->u.fed->quota = p->quota;
        snprintf(job->u.fed->address, sizeof job->u.fed->address, "%s", sd->to);
        job->u.fed->has_token = sd->delivery_token.len == 32;
    } else {
        int lookup = f->body_case == BODY(LOOKUP);
        job = kl_fed_job_new(lookup ? KL_FED_OP_LOOKUP : KL_FED_OP_PREKEY, 0, NULL);
        if (job == NULL)
            return KL_ENOMEM;
        snprintf(job->u.fed->address, sizeof job->u.fed->address, "%s",
                 lookup ? f->lookup->address : f->prekey_fetch->address);
        if (lookup && f->lookup->delivery_token.len == 32) {
            job->u.fed->has_token = 1;
            memcpy(job->u.fed->token, f->lookup->delivery_token.data, 32);
        }
    }
    job->u.fed->peer = p->id;
    job->u.fed->outbox = p->outbox;
    out->job = job;
    return 0;
}

void kl_fed_dispatch_complete(const kl_job_t *job, kl_dispatch_out_t *out)
{
    const kl_fed_job_t *fj = job->u.fed;
    kl_reply_t *r = &out->reply;
    if (fj->op == KL_FED_OP_GROUP || fj->op == KL_FED_OP_GROUP_LIST) {
        kl_dispatch_group_fed_complete(job, out);
        return;
    }
    out->has_reply = 1;
    if (fj->op == KL_FED_OP_SEND) {
        if (job->result == KL_ELIMIT) {
            kl_dispatch_error(r, job->req_id, CODE(QUOTA_EXCEEDED),
                              "the outbox to the recipient's relay is full: retry later");
            return;
        }
        if (job->result != 0) {
            kl_dispatch_error(r, job->req_id, CODE(UNAVAILABLE),
                              "the relay's storage is unavailable: retry later");
            return;
        }
        kl_dispatch_sent(out, job->req_id, fj->seq);
        return;
    }
    if (fj->err_code != 0) {
        kl_dispatch_error(r, job->req_id, fj->err_code, fj->err_msg);
        return;
    }
    if (fj->op == KL_FED_OP_CHAN_SUB) { /* subscribed at home, then mirrored here */
        if (job->result != 0) {
            out->has_reply = 0;
            kl_dispatch_storage_failed(out, job->req_id, job->result);
            return;
        }
        kl_dispatch_ok(out, job->req_id);
        return;
    }
    if (fj->op == KL_FED_OP_LOOKUP)
        kl_dispatch_reply_lookup(r, job->req_id, fj->address, fj->exists, fj->identity_key);
    else
        kl_dispatch_reply_bundle(r, job->req_id, fj->address, &fj->bundle);
}
