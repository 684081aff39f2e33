/* relay/dispatch.c: frame rules in-process, no sockets, no database (jobs
 * are completed by hand with the results storage would give). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/dispatch.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/wire.h"
#include "kollega/x3dh.h"

#define NOW 1700000000000ull
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x
#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define INVITE "abcdefghijklmnopqrstuvwxyz0123456789_-ABCDE"

typedef struct fx {
    kl_dispatch_cfg_t cfg;
    kl_client_state_t s;
    uint8_t pk[32], sk[64];
    kl_dispatch_out_t out;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (f == NULL || kl_crypto_init() != 0)
        return -1;
    f->cfg.relay_name = "oslo.test";
    f->cfg.max_body = 100;
    f->cfg.ttl_default_s = 3600;
    f->cfg.ttl_max_s = 7200;
    f->cfg.quota.max_entries = 10;
    f->cfg.quota.max_bytes = 1000;
    f->cfg.rate = 10;
    f->cfg.burst = 20;
    kl_client_state_init(&f->s, &f->cfg, NOW);
    kl_random(f->s.hh, sizeof f->s.hh);
    kl_sign_keypair(f->pk, f->sk);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    kl_dispatch_out_free(&f->out);
    kl_job_free(f->out.job);
    free(f);
    return 0;
}

static void run(fx_t *f, kl_frame_t *fr)
{
    kl_dispatch_out_free(&f->out);
    kl_job_free(f->out.job);
    assert_int_equal(kl_dispatch_frame(&f->cfg, &f->s, fr, NOW, &f->out), 0);
}

static void complete(fx_t *f, kl_job_t *job)
{
    kl_dispatch_out_free(&f->out);
    kl_dispatch_complete(&f->cfg, &f->s, job, &f->out);
}

static void expect_error(fx_t *f, int code, int close)
{
    assert_true(f->out.has_reply);
    assert_int_equal(f->out.reply.frame.body_case, BODY(ERROR));
    assert_int_equal(f->out.reply.body.error.code, code);
    assert_int_equal(f->out.close, close);
    assert_null(f->out.job);
}

static void authenticate(fx_t *f)
{
    f->s.authed = 1;
    f->s.user_id = 5;
    f->s.inbox = 6;
    memcpy(f->s.identity_key, f->pk, 32);
    strcpy(f->s.handle, "alice");
}

/* Frame builders: each returns a frame pointing at static storage. */
static kl_frame_t frame(uint32_t id, int body_case, void *body)
{
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    fr.id = id;
    fr.body_case = (Kollega__Relay__V1__Frame__BodyCase)body_case;
    fr.ping = body; /* any member of the union */
    return fr;
}

static void sign_register(fx_t *f, const uint8_t hh[64], const char *handle, const char *code,
                          uint8_t sig[64])
{
    uint8_t msg[256];
    size_t n;
    assert_int_equal(kl_wire_register_msg(hh, handle, code, msg, sizeof msg, &n), 0);
    assert_int_equal(kl_sign(f->sk, msg, n, sig), 0);
}

static void run_register(fx_t *f, const char *handle, const char *code, const uint8_t sig[64])
{
    Kollega__Relay__V1__Register rg = KOLLEGA__RELAY__V1__REGISTER__INIT;
    rg.handle = (char *)handle;
    rg.invite_code = (char *)code;
    rg.identity_key.data = f->pk;
    rg.identity_key.len = 32;
    rg.signature.data = (uint8_t *)sig;
    rg.signature.len = 64;
    kl_frame_t fr = frame(3, BODY(REGISTER), &rg);
    run(f, &fr);
}

static void test_requests_before_auth_refused(void **state)
{
    fx_t *f = *state;
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    kl_frame_t fr = frame(7, BODY(FETCH), &fe);
    run(f, &fr);
    expect_error(f, CODE(UNAUTHENTICATED), 1);
    assert_int_equal(f->out.reply.frame.id, 7);
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = "bob@oslo.test";
    fr = frame(8, BODY(SEND), &sd);
    run(f, &fr);
    expect_error(f, CODE(UNAUTHENTICATED), 1);
    Kollega__Relay__V1__PrekeyStatus ps = KOLLEGA__RELAY__V1__PREKEY_STATUS__INIT;
    fr = frame(9, BODY(PREKEY_STATUS), &ps);
    run(f, &fr);
    expect_error(f, CODE(UNAUTHENTICATED), 1);
}

static void test_ping_any_state(void **state)
{
    fx_t *f = *state;
    Kollega__Relay__V1__Ping p = KOLLEGA__RELAY__V1__PING__INIT;
    p.nonce = 0xdeadbeefcafeull;
    kl_frame_t fr = frame(4, BODY(PING), &p);
    run(f, &fr);
    assert_int_equal(f->out.reply.frame.body_case, BODY(PONG));
    assert_int_equal(f->out.reply.frame.id, 4);
    assert_int_equal(f->out.reply.body.pong.nonce, 0xdeadbeefcafeull);
    assert_false(f->out.close);
}

static void test_relay_only_frames_and_id_zero(void **state)
{
    fx_t *f = *state;
    authenticate(f);
    int never[] = {BODY(OK), BODY(ERROR), BODY(PONG), BODY(SENT), BODY(DELIVER),
                   BODY(LOOKUP_RESULT), BODY(PREKEY_BUNDLE), BODY(PREKEY_COUNT)};
    Kollega__Relay__V1__Ok ok = KOLLEGA__RELAY__V1__OK__INIT;
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        kl_frame_t fr = frame(1, never[i], &ok);
        run(f, &fr);
        expect_error(f, CODE(BAD_REQUEST), 1);
    }
    Kollega__Relay__V1__Ping p = KOLLEGA__RELAY__V1__PING__INIT;
    kl_frame_t fr = frame(0, BODY(PING), &p);
    run(f, &fr);
    expect_error(f, CODE(BAD_REQUEST), 1);
}

static void test_register_ok(void **state)
{
    fx_t *f = *state;
    uint8_t sig[64];
    sign_register(f, f->s.hh, "alice", INVITE, sig);
    run_register(f, "alice", INVITE, sig);
    assert_false(f->out.has_reply);
    kl_job_t *job = f->out.job;
    f->out.job = NULL;
    assert_non_null(job);
    assert_int_equal(job->kind, KL_JOB_REGISTER);
    assert_int_equal(job->req_id, 3);
    assert_string_equal(job->u.reg.handle, "alice");
    assert_string_equal(job->u.reg.code, INVITE);
    assert_memory_equal(job->u.reg.identity_key, f->pk, 32);
    assert_true(f->s.auth_pending);
    job->result = 0;
    job->u.reg.user.id = 11;
    job->u.reg.user.inbox = 12;
    memcpy(job->u.reg.user.identity_key, f->pk, 32);
    complete(f, job);
    assert_int_equal(f->out.reply.frame.body_case, BODY(OK));
    assert_int_equal(f->out.reply.frame.id, 3);
    assert_true(f->s.authed);
    assert_false(f->s.auth_pending);
    assert_int_equal(f->s.user_id, 11);
    assert_int_equal(f->s.inbox, 12);
    assert_string_equal(f->s.handle, "alice");
    kl_job_free(job);
    /* a second register on the same session is a state violation */
    run_register(f, "alice", INVITE, sig);
    expect_error(f, CODE(BAD_REQUEST), 1);
}

static void test_register_wrong_handshake_hash(void **state)
{
    fx_t *f = *state;
    uint8_t other[64], sig[64];
    memcpy(other, f->s.hh, 64);
    other[0] ^= 1;
    sign_register(f, other, "alice", INVITE, sig);
    run_register(f, "alice", INVITE, sig);
    expect_error(f, CODE(UNAUTHENTICATED), 1);
    assert_false(f->s.authed);
    assert_false(f->s.auth_pending);
    /* and a signature over another handle does not carry over */
    sign_register(f, f->s.hh, "mallory", INVITE, sig);
    run_register(f, "alice", INVITE, sig);
    expect_error(f, CODE(UNAUTHENTICATED), 1);
}

static void test_register_failures_close_after_three(void **state)
{
    fx_t *f = *state;
    uint8_t sig[64];
    sign_register(f, f->s.hh, "Alice", INVITE, sig);
    run_register(f, "Alice", INVITE, sig); /* upper case: invalid handle */
    expect_error(f, CODE(BAD_REQUEST), 0);
    sign_register(f, f->s.hh, "alice", "short", sig);
    run_register(f, "alice", "short", sig);
    expect_error(f, CODE(INVITE_INVALID), 0);
    sign_register(f, f->s.hh, "alice", INVITE, sig);
    run_register(f, "alice", INVITE, sig);
    kl_job_t *job = f->out.job;
    f->out.job = NULL;
    assert_non_null(job);
    job->result = KL_EREFUSED; /* storage: invite used up */
    complete(f, job);
    expect_error(f, CODE(INVITE_INVALID), 1); /* third failure closes */
    assert_false(f->s.authed);
    kl_job_free(job);
}

static void test_register_conflict_and_storage_failure(void **state)
{
    fx_t *f = *state;
    uint8_t sig[64];
    sign_register(f, f->s.hh, "alice", INVITE, sig);
    run_register(f, "alice", INVITE, sig);
    kl_job_t *job = f->out.job;
    f->out.job = NULL;
    job->result = KL_EEXIST;
    complete(f, job);
    expect_error(f, CODE(CONFLICT), 0);
    assert_false(f->s.authed);
    job->result = KL_EIO; /* the commit failed: retryable, not an attempt */
    complete(f, job);
    expect_error(f, CODE(UNAVAILABLE), 0);
    assert_int_equal(f->s.failed_attempts, 1);
    kl_job_free(job);
}

static kl_job_t *run_auth(fx_t *f, const char *address, const uint8_t hh[64])
{
    uint8_t msg[128], sig[64];
    size_t n;
    assert_int_equal(kl_wire_auth_msg(hh, msg, sizeof msg, &n), 0);
    assert_int_equal(kl_sign(f->sk, msg, n, sig), 0);
    Kollega__Relay__V1__Auth au = KOLLEGA__RELAY__V1__AUTH__INIT;
    au.address = (char *)address;
    au.signature.data = sig;
    au.signature.len = 64;
    kl_frame_t fr = frame(2, BODY(AUTH), &au);
    run(f, &fr);
    kl_job_t *job = f->out.job;
    f->out.job = NULL;
    if (job) {
        assert_int_equal(job->kind, KL_JOB_AUTH);
        assert_string_equal(job->u.auth.handle, "alice");
        job->result = 0;
        job->u.auth.user.id = 21;
        job->u.auth.user.inbox = 22;
        memcpy(job->u.auth.user.identity_key, f->pk, 32);
    }
    return job;
}

static void test_auth_ok(void **state)
{
    fx_t *f = *state;
    kl_job_t *job = run_auth(f, "alice@oslo.test", f->s.hh);
    assert_non_null(job);
    complete(f, job);
    assert_int_equal(f->out.reply.frame.body_case, BODY(OK));
    assert_true(f->s.authed);
    assert_int_equal(f->s.inbox, 22);
    kl_job_free(job);
}

static void test_auth_wrong_handshake_hash(void **state)
{
    fx_t *f = *state;
    uint8_t other[64];
    memcpy(other, f->s.hh, 64);
    other[63] ^= 0x80;
    kl_job_t *job = run_auth(f, "alice@oslo.test", other);
    assert_non_null(job);
    complete(f, job);
    expect_error(f, CODE(UNAUTHENTICATED), 1);
    assert_false(f->s.authed);
    kl_job_free(job);
}

static void test_auth_unknown_user_or_other_relay(void **state)
{
    fx_t *f = *state;
    kl_job_t *job = run_auth(f, "alice@oslo.test", f->s.hh);
    job->result = KL_ENOTFOUND;
    complete(f, job);
    expect_error(f, CODE(UNAUTHENTICATED), 1);
    kl_job_free(job);
    f->s.auth_pending = 0;
    assert_null(run_auth(f, "alice@stockholm.test", f->s.hh));
    expect_error(f, CODE(UNAUTHENTICATED), 1);
    assert_null(run_auth(f, "not an address", f->s.hh));
    expect_error(f, CODE(UNAUTHENTICATED), 1);
}

static void run_send(fx_t *f, const char *to, size_t len, uint32_t ttl)
{
    static uint8_t body[200];
    memset(body, 'x', sizeof body);
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = (char *)to;
    sd.body.data = body;
    sd.body.len = len;
    sd.ttl_s = ttl;
    kl_frame_t fr = frame(30, BODY(SEND), &sd);
    run(f, &fr);
}

static void test_send_limits(void **state)
{
    fx_t *f = *state;
    authenticate(f);
    run_send(f, "bob@oslo.test", 101, 0);
    expect_error(f, CODE(TOO_LARGE), 0);
    run_send(f, "bob@oslo.test", 0, 0);
    expect_error(f, CODE(BAD_REQUEST), 0);
    run_send(f, "bob@stockholm.test", 10, 0);
    expect_error(f, CODE(UNAVAILABLE), 0);
    assert_string_equal(f->out.reply.body.error.message,
                        "no federation peer for stockholm.test");
    run_send(f, "bob", 10, 0);
    expect_error(f, CODE(BAD_REQUEST), 0);
    run_send(f, "bob@oslo.test", 100, 0);
    assert_non_null(f->out.job);
    assert_int_equal(f->out.job->u.send.len, 100);
    assert_string_equal(f->out.job->u.send.handle, "bob");
    assert_int_equal(f->out.job->u.send.expires_ms, NOW + 3600 * 1000ull);
    run_send(f, "bob@oslo.test", 1, 1000000);
    assert_int_equal(f->out.job->u.send.expires_ms, NOW + 7200 * 1000ull);
    run_send(f, "bob@oslo.test", 1, 60);
    assert_int_equal(f->out.job->u.send.expires_ms, NOW + 60 * 1000ull);
}

static void test_send_complete_reply_and_push(void **state)
{
    fx_t *f = *state;
    authenticate(f);
    run_send(f, "bob@oslo.test", 5, 0);
    kl_job_t *job = f->out.job;
    f->out.job = NULL;
    job->result = 0;
    job->u.send.seq = 42;
    job->u.send.recipient = 77;
    complete(f, job);
    assert_int_equal(f->out.reply.frame.body_case, BODY(SENT));
    assert_int_equal(f->out.reply.frame.id, 30);
    assert_int_equal(f->out.reply.body.sent.seq, 42);
    assert_true(f->out.has_push);
    assert_int_equal(f->out.push_user, 77);
    assert_int_equal(f->out.push.frame.id, 0);
    assert_int_equal(f->out.push.frame.body_case, BODY(DELIVER));
    assert_int_equal(f->out.push.body.deliver.n_entries, 1);
    assert_int_equal(f->out.push.body.deliver.entries[0]->seq, 42);
    assert_int_equal(f->out.push.body.deliver.entries[0]->ts, NOW);
    assert_int_equal(f->out.push.body.deliver.entries[0]->body.len, 5);
    /* quota, unknown user and a failed commit: no sent, no push */
    int results[] = {KL_ELIMIT, KL_ENOTFOUND, KL_EIO};
    int codes[] = {CODE(QUOTA_EXCEEDED), CODE(NOT_FOUND), CODE(UNAVAILABLE)};
    for (int i = 0; i < 3; i++) {
        job->result = results[i];
        complete(f, job);
        expect_error(f, codes[i], 0);
        assert_false(f->out.has_push);
    }
    kl_job_free(job);
}

static void test_fetch_limits_and_deliver(void **state)
{
    fx_t *f = *state;
    authenticate(f);
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    uint32_t limits[] = {0, 7, 100000};
    uint32_t want[] = {KL_FETCH_DEFAULT, 7, KL_FETCH_MAX};
    for (int i = 0; i < 3; i++) {
        fe.limit = limits[i];
        fe.after = 9;
        kl_frame_t fr = frame(40, BODY(FETCH), &fe);
        run(f, &fr);
        assert_int_equal(f->out.job->kind, KL_JOB_FETCH);
        assert_int_equal(f->out.job->u.fetch.limit, want[i]);
        assert_int_equal(f->out.job->u.fetch.after, 9);
        assert_int_equal(f->out.job->u.fetch.log, 6);
    }
    kl_job_t *job = f->out.job;
    f->out.job = NULL;
    job->u.fetch.entries = calloc(2, sizeof(kl_storage_entry_t));
    for (int i = 0; i < 2; i++) {
        job->u.fetch.entries[i].seq = 10 + (uint64_t)i;
        job->u.fetch.entries[i].body = malloc(3);
        memcpy(job->u.fetch.entries[i].body, "abc", 3);
        job->u.fetch.entries[i].len = 3;
    }
    job->u.fetch.n = 2;
    job->u.fetch.more = 1;
    complete(f, job);
    assert_int_equal(f->out.reply.frame.body_case, BODY(DELIVER));
    assert_int_equal(f->out.reply.frame.id, 40);
    assert_int_equal(f->out.reply.body.deliver.n_entries, 2);
    assert_int_equal(f->out.reply.body.deliver.entries[1]->seq, 11);
    assert_true(f->out.reply.body.deliver.more);
    kl_dispatch_out_free(&f->out);
    kl_job_free(job);
}

static void test_rate_limit(void **state)
{
    fx_t *f = *state;
    Kollega__Relay__V1__Ping p = KOLLEGA__RELAY__V1__PING__INIT;
    kl_frame_t fr = frame(1, BODY(PING), &p);
    for (int i = 0; i < 20; i++) {
        run(f, &fr);
        assert_int_equal(f->out.reply.frame.body_case, BODY(PONG));
    }
    run(f, &fr);
    expect_error(f, CODE(RATE_LIMITED), 0);
    /* 10 frames/s: after 100 ms one more frame is allowed, then not */
    kl_dispatch_out_free(&f->out);
    assert_int_equal(kl_dispatch_frame(&f->cfg, &f->s, &fr, NOW + 100, &f->out), 0);
    assert_int_equal(f->out.reply.frame.body_case, BODY(PONG));
    kl_dispatch_out_free(&f->out);
    assert_int_equal(kl_dispatch_frame(&f->cfg, &f->s, &fr, NOW + 100, &f->out), 0);
    assert_int_equal(f->out.reply.body.error.code, CODE(RATE_LIMITED));
}

static void test_prekey_upload_checks(void **state)
{
    fx_t *f = *state;
    authenticate(f);
    uint8_t spk[32], sig[64];
    memset(spk, 3, sizeof spk);
    assert_int_equal(kl_x3dh_spk_sign(f->sk, 9, spk, sig), 0);
    Kollega__Relay__V1__SignedPrekey sp = KOLLEGA__RELAY__V1__SIGNED_PREKEY__INIT;
    sp.id = 9;
    sp.public_key.data = spk;
    sp.public_key.len = 32;
    sp.signature.data = sig;
    sp.signature.len = 64;
    Kollega__Relay__V1__OneTimePrekey opk = KOLLEGA__RELAY__V1__ONE_TIME_PREKEY__INIT;
    Kollega__Relay__V1__OneTimePrekey *opks[KL_UPLOAD_MAX_OPKS + 1];
    opk.id = 1;
    opk.public_key.data = spk;
    opk.public_key.len = 32;
    for (int i = 0; i <= KL_UPLOAD_MAX_OPKS; i++)
        opks[i] = &opk;
    Kollega__Relay__V1__PrekeyUpload pu = KOLLEGA__RELAY__V1__PREKEY_UPLOAD__INIT;
    pu.signed_prekey = &sp;
    pu.one_time_prekeys = opks;
    pu.n_one_time_prekeys = 2;
    kl_frame_t fr = frame(50, BODY(PREKEY_UPLOAD), &pu);
    run(f, &fr);
    assert_non_null(f->out.job);
    assert_true(f->out.job->u.upload.has_spk);
    assert_int_equal(f->out.job->u.upload.n_opks, 2);
    assert_int_equal(f->out.job->u.upload.user, 5);
    sp.id = 10; /* the signature covers the id */
    run(f, &fr);
    expect_error(f, CODE(BAD_REQUEST), 0);
    sp.id = 9;
    pu.n_one_time_prekeys = KL_UPLOAD_MAX_OPKS + 1;
    run(f, &fr);
    expect_error(f, CODE(TOO_LARGE), 0);
    pu.n_one_time_prekeys = 1;
    opk.public_key.len = 31;
    run(f, &fr);
    expect_error(f, CODE(BAD_REQUEST), 0);
}

static void test_prekey_fetch_and_lookup(void **state)
{
    fx_t *f = *state;
    authenticate(f);
    Kollega__Relay__V1__PrekeyFetch pf = KOLLEGA__RELAY__V1__PREKEY_FETCH__INIT;
    pf.address = "bob@oslo.test";
    kl_frame_t fr = frame(60, BODY(PREKEY_FETCH), &pf);
    run(f, &fr);
    kl_job_t *job = f->out.job;
    f->out.job = NULL;
    assert_string_equal(job->u.pfetch.handle, "bob");
    job->result = KL_ENOTFOUND;
    complete(f, job);
    expect_error(f, CODE(NOT_FOUND), 0);
    job->result = 0;
    job->u.pfetch.bundle.spk_id = 4;
    job->u.pfetch.bundle.has_opk = 0;
    complete(f, job);
    assert_int_equal(f->out.reply.frame.body_case, BODY(PREKEY_BUNDLE));
    assert_string_equal(f->out.reply.body.prekey_bundle.address, "bob@oslo.test");
    assert_int_equal(f->out.reply.body.prekey_bundle.signed_prekey->id, 4);
    assert_null(f->out.reply.body.prekey_bundle.one_time_prekey);
    kl_job_free(job);

    Kollega__Relay__V1__Lookup lk = KOLLEGA__RELAY__V1__LOOKUP__INIT;
    lk.address = "kari@stockholm.test";
    fr = frame(61, BODY(LOOKUP), &lk);
    run(f, &fr);
    expect_error(f, CODE(UNAVAILABLE), 0);
    /* A group has no identity key or prekeys, on this relay or another. */
    lk.address = "#erfa@oslo.test";
    run(f, &fr);
    expect_error(f, CODE(BAD_REQUEST), 0);
    pf.address = "#erfa@stockholm.test";
    kl_frame_t pfr = frame(62, BODY(PREKEY_FETCH), &pf);
    run(f, &pfr);
    expect_error(f, CODE(BAD_REQUEST), 0);
    lk.address = "kari@oslo.test";
    run(f, &fr);
    job = f->out.job;
    f->out.job = NULL;
    job->result = 0;
    job->u.lookup.exists = 0;
    complete(f, job);
    assert_int_equal(f->out.reply.frame.body_case, BODY(LOOKUP_RESULT));
    assert_false(f->out.reply.body.lookup_result.exists);
    assert_int_equal(f->out.reply.body.lookup_result.identity_key.len, 0);
    kl_job_free(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_requests_before_auth_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping_any_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_only_frames_and_id_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_wrong_handshake_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_failures_close_after_three, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_conflict_and_storage_failure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_auth_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_wrong_handshake_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_unknown_user_or_other_relay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_complete_reply_and_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_limits_and_deliver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekey_upload_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekey_fetch_and_lookup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
