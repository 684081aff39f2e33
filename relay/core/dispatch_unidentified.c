/* Unidentified delivery in dispatch (relay.proto Send.delivery_token,
 * DeliveryToken; the rules are in dispatch.h): sends and lookups with a
 * delivery token on connections that never authenticated, the caller's own
 * token hash, the per-recipient allowance, and what their completions do.
 * Nothing here identifies the caller, so nothing about it is recorded. */
#include <stdio.h>
#include <string.h>

#include "buckets.h"
#include "dispatch_int.h"
#include "kollega/crypto.h"
#include "kollega/err.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x

/* SHA-256(address || token): a remote recipient and token pair. */
static void ud_pair(const char *address, const uint8_t token[32], uint8_t out[32])
{
    uint8_t buf[KL_ADDR_MAX + 32];
    size_t n = strlen(address);
    if (n > KL_ADDR_MAX)
        n = KL_ADDR_MAX;
    memcpy(buf, address, n);
    memcpy(buf + n, token, 32);
    kl_sha256(buf, n + 32, out);
    kl_memzero(buf, sizeof buf);
}

static int ud_confirmed(const kl_client_state_t *s, const char *address, const uint8_t token[32])
{
    uint8_t id[32];
    int found = 0;
    ud_pair(address, token, id);
    for (uint32_t i = 0; i < KL_UD_CONFIRMED && i < s->ud_n; i++)
        found |= kl_memcmp(s->ud_ok[i], id, 32) == 0;
    return found;
}

/* The recipient's relay answered a proxied lookup with this token. */
static void ud_confirm(kl_client_state_t *s, const char *address, const uint8_t token[32])
{
    if (!ud_confirmed(s, address, token))
        ud_pair(address, token, s->ud_ok[s->ud_n++ % KL_UD_CONFIRMED]);
}

/* Charge one stored unidentified send to recipient's allowance. */
static void ud_charge(const kl_dispatch_cfg_t *cfg, const char *recipient, uint64_t now_ms)
{
    if (cfg->ud_limit == NULL)
        return;
    kl_bucket_t *b = kl_buckets_get(cfg->ud_limit, recipient, strlen(recipient), now_ms);
    if (kl_bucket_ready(b))
        kl_bucket_take(b);
}

int kl_dispatch_unidentified(const kl_dispatch_cfg_t *cfg, const kl_client_state_t *s,
                             const kl_frame_t *f, uint64_t now_ms, kl_dispatch_out_t *out)
{
    int send = f->body_case == BODY(SEND);
    const ProtobufCBinaryData *tok = send ? &f->send->delivery_token
                                          : &f->lookup->delivery_token;
    const char *to = send ? f->send->to : f->lookup->address;
    kl_addr_t a;
    if (tok->len != 32) {
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST), "a delivery token is 32 bytes", 1);
        return 0;
    }
    if (send && !kl_dispatch_body_ok(cfg, f, out))
        return 0;
    if (to[0] == '#' || to[0] == '!') {
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST),
                         "unidentified delivery reaches users only, not groups or channels: "
                         "authenticate", 1);
        return 0;
    }
    int where = kl_dispatch_local_user(cfg, to, &a, out, f->id);
    if (where < 0)
        return 0;
    /* A user of another relay: that relay checks the token, on a proxied
     * lookup first (which this connection must have made with the same
     * token before its send is taken: so nobody can fill our outbox to a
     * peer with messages the peer will refuse), and again on delivery. */
    if (where > 0 && send && !ud_confirmed(s, to, tok->data)) {
        kl_dispatch_fail(out, f->id, CODE(FORBIDDEN),
                         "look the recipient up with its delivery token on this connection "
                         "first", 1);
        return 0;
    }
    /* A recipient takes so many unidentified sends a minute (charged when
     * one is stored, so senders without its token cannot use up its
     * allowance); over it, senders identify themselves as before. */
    const char *key = where > 0 ? to : a.handle;
    if (send && cfg->ud_limit &&
        !kl_bucket_ready(kl_buckets_get(cfg->ud_limit, key, strlen(key), now_ms))) {
        kl_dispatch_fail(out, f->id, CODE(RATE_LIMITED),
                         "too many unidentified messages to this user: authenticate and send "
                         "as yourself", 0);
        return 0;
    }
    if (where > 0)
        return kl_fed_dispatch(cfg, f, &a, now_ms, out);
    int r = send ? kl_dispatch_send_job(cfg, f, &a, now_ms, out)
                 : kl_dispatch_lookup_job(f, &a, out);
    if (r == 0 && out->job && send) {
        out->job->u.send.has_token = 1;
        memcpy(out->job->u.send.token, tok->data, 32);
    } else if (r == 0 && out->job) {
        out->job->u.lookup.has_token = 1;
        memcpy(out->job->u.lookup.token, tok->data, 32);
    }
    return r;
}

int kl_dispatch_delivery_token(const kl_client_state_t *s, const kl_frame_t *f,
                               kl_dispatch_out_t *out)
{
    size_t n = f->delivery_token->token_hash.len;
    if (n != 0 && n != 32) {
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST),
                         "token_hash is SHA-256 of the token: 32 bytes", 0);
        return 0;
    }
    kl_job_t *job = kl_job_new(KL_JOB_TOKEN_SET, 0, NULL);
    if (job == NULL)
        return KL_ENOMEM;
    job->u.token_set.user = s->user_id;
    job->u.token_set.has = n == 32;
    if (n == 32)
        memcpy(job->u.token_set.hash, f->delivery_token->token_hash.data, 32);
    out->job = job;
    return 0;
}

void kl_dispatch_token_refused(const kl_job_t *job, kl_dispatch_out_t *out)
{
    kl_dispatch_fail(out, job->req_id, CODE(FORBIDDEN),
                     "the delivery token was not accepted: authenticate and send as yourself", 1);
}

void kl_dispatch_unidentified_done(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s,
                                   const kl_job_t *job)
{
    if (job->kind == KL_JOB_SEND) {
        if (job->result == 0)
            ud_charge(cfg, job->u.send.handle, job->now_ms);
        return;
    }
    const kl_fed_job_t *fj = job->u.fed;
    if (fj->op == KL_FED_OP_LOOKUP && fj->err_code == 0 && fj->exists && s)
        ud_confirm(s, fj->address, fj->token);
    if (fj->op == KL_FED_OP_SEND && job->result == 0)
        ud_charge(cfg, fj->address, job->now_ms);
}
