/* Who a connection is and the keys to reach people (docs/PROTOCOL.md
 * "Register and auth", "Prekeys"): register and auth (the signature over
 * the handshake hash, three failed attempts close the connection), prekey
 * upload and fetch, and the completions of their storage jobs. The frame
 * router and the rest of 1:1 messaging are dispatch.c. */
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

/* A register/auth attempt that failed without closing: the third one
 * closes the session, so a peer cannot guess invite codes on one
 * connection. */
static void attempt_failed(kl_client_state_t *s, kl_dispatch_out_t *out)
{
    if (++s->failed_attempts >= KL_DISPATCH_MAX_ATTEMPTS)
        out->close = 1;
}

static int code_valid(const char *code)
{
    size_t n = strlen(code);
    if (n < KL_CODE_MIN || n > KL_CODE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = code[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int kl_dispatch_register(kl_client_state_t *s, const kl_frame_t *f, kl_dispatch_out_t *out)
{
    const Kollega__Relay__V1__Register *rg = f->register_;
    uint8_t msg[256], x[32];
    size_t mlen = 0;
    int r = 0;
    if (rg->identity_key.len != 32 || rg->signature.len != 64) {
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST),
                         "identity_key must be 32 bytes, signature 64", 0);
        attempt_failed(s, out);
        goto out;
    }
    if (strlen(rg->handle) > KL_HANDLE_MAX || !kl_handle_valid(rg->handle)) {
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST),
            "invalid handle: 1-32 characters of a-z 0-9 . _ -, starting with a-z or 0-9", 0);
        attempt_failed(s, out);
        goto out;
    }
    if (!code_valid(rg->invite_code)) {
        kl_dispatch_fail(out, f->id, CODE(INVITE_INVALID), "invite code is malformed", 0);
        attempt_failed(s, out);
        goto out;
    }
    /* The key must also work as an X25519 key: sealed-sender envelopes to
     * this user are encrypted to its converted form. */
    if (kl_ed_pk_to_x(rg->identity_key.data, x) != 0) {
        kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST),
                         "identity_key is not a valid Ed25519 public key", 0);
        attempt_failed(s, out);
        goto out;
    }
    if (kl_wire_register_msg(s->hh, rg->handle, rg->invite_code, msg, sizeof msg, &mlen) != 0 ||
        kl_sign_verify(rg->identity_key.data, msg, mlen, rg->signature.data) != 0) {
        kl_dispatch_fail(out, f->id, CODE(UNAUTHENTICATED),
                         "register signature does not verify", 1);
        goto out;
    }
    kl_job_t *job = kl_job_new(KL_JOB_REGISTER, 0, NULL);
    if (job == NULL) {
        r = KL_ENOMEM;
        goto out;
    }
    memcpy(job->u.reg.handle, rg->handle, strlen(rg->handle) + 1);
    memcpy(job->u.reg.identity_key, rg->identity_key.data, 32);
    memcpy(job->u.reg.code, rg->invite_code, strlen(rg->invite_code) + 1);
    s->auth_pending = 1;
    out->job = job;
out:
    kl_memzero(msg, sizeof msg); /* holds the invite code */
    return r;
}

int kl_dispatch_auth(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s, const kl_frame_t *f,
                   kl_dispatch_out_t *out)
{
    const Kollega__Relay__V1__Auth *au = f->auth;
    kl_addr_t a;
    /* One answer for every failure, so auth cannot be used to probe which
     * handles exist. */
    if (strlen(au->address) > KL_ADDR_MAX || kl_addr_parse(au->address, &a) != 0 ||
        a.is_group || strcmp(a.relay, cfg->relay_name) != 0 || au->signature.len != 64) {
        kl_dispatch_fail(out, f->id, CODE(UNAUTHENTICATED), "authentication failed", 1);
        return 0;
    }
    kl_job_t *job = kl_job_new(KL_JOB_AUTH, 0, NULL);
    if (job == NULL)
        return KL_ENOMEM;
    memcpy(job->u.auth.handle, a.handle, sizeof a.handle);
    memcpy(job->u.auth.signature, au->signature.data, 64);
    s->auth_pending = 1;
    out->job = job;
    return 0;
}

int kl_dispatch_prekey_upload(kl_client_state_t *s, const kl_frame_t *f, kl_dispatch_out_t *out)
{
    const Kollega__Relay__V1__PrekeyUpload *pu = f->prekey_upload;
    const Kollega__Relay__V1__SignedPrekey *spk = pu->signed_prekey;
    size_t n = pu->n_one_time_prekeys;
    if (n > KL_UPLOAD_MAX_OPKS) {
        kl_dispatch_fail(out, f->id, CODE(TOO_LARGE), "at most 200 one-time prekeys per upload", 0);
        return 0;
    }
    if (spk) {
        if (spk->public_key.len != 32 || spk->signature.len != 64) {
            kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST),
                             "signed prekey: public_key must be 32 bytes, signature 64", 0);
            return 0;
        }
        if (kl_x3dh_spk_verify(s->identity_key, spk->id, spk->public_key.data,
                               spk->signature.data) != 0) {
            kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST),
                             "signed prekey signature does not verify with your identity key", 0);
            return 0;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (pu->one_time_prekeys[i] == NULL || pu->one_time_prekeys[i]->public_key.len != 32) {
            kl_dispatch_fail(out, f->id, CODE(BAD_REQUEST),
                             "one-time prekey public_key must be 32 bytes", 0);
            return 0;
        }
    }
    kl_job_t *job = kl_job_new(KL_JOB_PREKEY_UPLOAD, 0, NULL);
    if (job == NULL)
        return KL_ENOMEM;
    if (n > 0) {
        job->u.upload.opks = calloc(n, sizeof *job->u.upload.opks);
        if (job->u.upload.opks == NULL) {
            kl_job_free(job);
            return KL_ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        job->u.upload.opks[i].id = pu->one_time_prekeys[i]->id;
        memcpy(job->u.upload.opks[i].public_key, pu->one_time_prekeys[i]->public_key.data, 32);
    }
    job->u.upload.n_opks = n;
    job->u.upload.user = s->user_id;
    if (spk) {
        job->u.upload.has_spk = 1;
        job->u.upload.spk_id = spk->id;
        memcpy(job->u.upload.spk, spk->public_key.data, 32);
        memcpy(job->u.upload.spk_sig, spk->signature.data, 64);
    }
    out->job = job;
    return 0;
}

/* A prekey fetch. For a user of another relay, the proxied fetch names
 * the requester, so that relay's limits can hold it (requester field);
 * for a local user, the limits (opk_limit.h) decide here whether the fetch
 * may consume a one-time prekey. The client's own requester field is
 * ignored: we know who it is. */
int kl_dispatch_prekey_fetch(const kl_dispatch_cfg_t *cfg, const kl_client_state_t *s,
                           const kl_frame_t *f, uint64_t now_ms, kl_dispatch_out_t *out)
{
    kl_addr_t a;
    char me[KL_ADDR_MAX + 1];
    snprintf(me, sizeof me, "%s@%s", s->handle, cfg->relay_name);
    int where = kl_dispatch_local_user(cfg, f->prekey_fetch->address, &a, out, f->id);
    if (where < 0)
        return 0;
    if (where > 0) {
        int r = kl_fed_dispatch(cfg, f, &a, now_ms, out);
        if (r == 0 && out->job)
            snprintf(out->job->u.fed->user, sizeof out->job->u.fed->user, "%s", me);
        return r;
    }
    kl_job_t *job = kl_job_new(KL_JOB_PREKEY_FETCH, 0, NULL);
    if (job == NULL)
        return KL_ENOMEM;
    snprintf(job->u.pfetch.address, sizeof job->u.pfetch.address, "%s",
             f->prekey_fetch->address);
    memcpy(job->u.pfetch.handle, a.handle, sizeof a.handle);
    job->u.pfetch.take_opk =
        cfg->opk_limit == NULL || kl_opk_limit_take(cfg->opk_limit, NULL, me, a.handle, now_ms);
    out->job = job;
    return 0;
}

static void become_user(kl_client_state_t *s, const char *handle, const kl_storage_user_t *u)
{
    s->authed = 1;
    s->user_id = u->id;
    s->inbox = u->inbox;
    memcpy(s->identity_key, u->identity_key, 32);
    snprintf(s->handle, sizeof s->handle, "%s", handle);
}

void kl_dispatch_complete_register(kl_client_state_t *s, const kl_job_t *job,
                                   kl_dispatch_out_t *out)
{
    s->auth_pending = 0;
    switch (job->result) {
    case 0:
        become_user(s, job->u.reg.handle, &job->u.reg.user);
        kl_dispatch_ok(out, job->req_id);
        out->event = "registered";
        return;
    case KL_EEXIST:
        kl_dispatch_fail(out, job->req_id, CODE(CONFLICT), "handle is taken: choose another", 0);
        attempt_failed(s, out);
        return;
    case KL_EREFUSED:
        kl_dispatch_fail(out, job->req_id, CODE(INVITE_INVALID),
            "invite is unknown, used up or expired: ask the relay operator for a new one", 0);
        attempt_failed(s, out);
        out->event = "invite refused";
        return;
    default:
        kl_dispatch_storage_failed(out, job->req_id, job->result);
    }
}

static int auth_sig_ok(const uint8_t hh[64], const kl_job_t *job)
{
    uint8_t msg[128];
    size_t mlen = 0;
    return kl_wire_auth_msg(hh, msg, sizeof msg, &mlen) == 0 &&
           kl_sign_verify(job->u.auth.user.identity_key, msg, mlen, job->u.auth.signature) == 0;
}

void kl_dispatch_auth_verify(const uint8_t hh[64], kl_job_t *job)
{
    if (job->kind == KL_JOB_AUTH && job->result == 0)
        job->u.auth.verified = auth_sig_ok(hh, job) ? 1 : -1;
}

void kl_dispatch_complete_auth(kl_client_state_t *s, const kl_job_t *job, kl_dispatch_out_t *out)
{
    s->auth_pending = 0;
    if (job->result != 0 && job->result != KL_ENOTFOUND) {
        kl_dispatch_storage_failed(out, job->req_id, job->result);
        return;
    }
    int ok = job->result == 0 &&
             (job->u.auth.verified != 0 ? job->u.auth.verified > 0 : auth_sig_ok(s->hh, job));
    if (!ok) {
        kl_dispatch_fail(out, job->req_id, CODE(UNAUTHENTICATED), "authentication failed", 1);
        out->event = "authentication failed";
        return;
    }
    become_user(s, job->u.auth.handle, &job->u.auth.user);
    kl_dispatch_ok(out, job->req_id);
    out->event = "authenticated";
}

void kl_dispatch_reply_bundle(kl_reply_t *r, uint32_t id, const char *address,
                              const kl_prekey_bundle_t *b)
{
    kl_dispatch_reply_init(r, id);
    Kollega__Relay__V1__PrekeyBundle pb = KOLLEGA__RELAY__V1__PREKEY_BUNDLE__INIT;
    Kollega__Relay__V1__SignedPrekey spk = KOLLEGA__RELAY__V1__SIGNED_PREKEY__INIT;
    Kollega__Relay__V1__OneTimePrekey opk = KOLLEGA__RELAY__V1__ONE_TIME_PREKEY__INIT;
    r->body.prekey_bundle = pb;
    r->spk = spk;
    r->opk = opk;
    r->body.prekey_bundle.address = (char *)address;
    r->body.prekey_bundle.identity_key.data = (uint8_t *)b->identity_key;
    r->body.prekey_bundle.identity_key.len = 32;
    r->spk.id = b->spk_id;
    r->spk.public_key.data = (uint8_t *)b->spk;
    r->spk.public_key.len = 32;
    r->spk.signature.data = (uint8_t *)b->spk_sig;
    r->spk.signature.len = 64;
    r->body.prekey_bundle.signed_prekey = &r->spk;
    if (b->has_opk) {
        r->opk.id = b->opk_id;
        r->opk.public_key.data = (uint8_t *)b->opk;
        r->opk.public_key.len = 32;
        r->body.prekey_bundle.one_time_prekey = &r->opk;
    }
    r->frame.body_case = BODY(PREKEY_BUNDLE);
    r->frame.prekey_bundle = &r->body.prekey_bundle;
}

void kl_dispatch_complete_prekey_fetch(const kl_job_t *job, kl_dispatch_out_t *out)
{
    if (job->result == KL_ENOTFOUND) {
        kl_dispatch_fail(out, job->req_id, CODE(NOT_FOUND),
            "no prekey bundle: the user does not exist or has not published a signed prekey",
                         0);
        return;
    }
    if (job->result != 0) {
        kl_dispatch_storage_failed(out, job->req_id, job->result);
        return;
    }
    out->has_reply = 1;
    kl_dispatch_reply_bundle(&out->reply, job->req_id, job->u.pfetch.address,
                             &job->u.pfetch.bundle);
}
