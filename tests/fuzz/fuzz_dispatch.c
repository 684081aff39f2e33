/* The relay's request handling in-process, without sockets: decoded frames
 * go through kl_dispatch_frame into a session, the storage jobs it makes
 * run against the real sqlite backend (relay/storage_sqlite*.c) exactly as
 * the storage thread runs them (relay/storeq.c: job_begin, kl_job_run,
 * job_end inside a batch), and kl_dispatch_complete turns them into
 * replies. Every reply and push is sealed as relay/conn.c would send it.
 *
 * The database (fuzz.h: alice and bob registered, bob's prekeys, three
 * entries in alice's inbox) is built once per process; each input runs in
 * one batch that is rolled back at the end, so every input starts from the
 * same state and a crash reproduces.
 *
 * Input: u8 state | records of  u8 dt | u16 len | len bytes (a Frame's
 * protobuf plaintext; the last record may be short). state % 3: 0 a fresh
 * session, 1 authenticated as alice, 2 as bob. dt advances the clock by
 * dt * 10 ms before the record (the rate limiter refills). Every record is
 * encrypted with the client's transport and opened with kl_wire_open, as
 * the relay reads it. Processing stops where the relay would close.
 * Oracles: no crash or leak; a reply or a job, never both; only a completed
 * register/auth authenticates; a session that is not authenticated gets
 * jobs only for register/auth and for token-carrying sends and lookups. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dispatch.h"
#include "fuzz.h"
#include "fuzz_relay.h"
#include "jobs/jobs.h"
#include "kollega/err.h"
#include "kollega/wire.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x

static uint8_t ct[KL_NOISE_MAX_MSG + KL_NOISE_TAG];

/* Seal a reply as kl_conn_send would; it must always be sealable. With
 * KL_FUZZ_TRACE set, print it (to check what a seed reaches). */
static void send_reply(kl_noise_transport_t *t, const kl_reply_t *r)
{
    uint8_t *wire = NULL;
    size_t len = 0;
    if (getenv("KL_FUZZ_TRACE") != NULL)
        fprintf(stderr, "reply id %u body %d%s%s\n", r->frame.id, (int)r->frame.body_case,
                r->frame.body_case == BODY(ERROR) ? ": " : "",
                r->frame.body_case == BODY(ERROR) ? r->body.error.message : "");
    FUZZ_CHECK(kl_wire_seal_alloc(t, &r->frame, &wire, &len) == 0);
    free(wire);
}

static void become(kl_client_state_t *s, const fuzz_user_t *u)
{
    s->authed = 1;
    s->user_id = u->u.id;
    s->inbox = u->u.inbox;
    memcpy(s->identity_key, u->pk, 32);
    snprintf(s->handle, sizeof s->handle, "%s", u->handle);
}

/* Run a job as the storage thread does, then complete it. Returns 1 when
 * the connection must close. */
static int run_job(fuzz_relay_t *R, kl_client_state_t *s, kl_job_t *job, kl_noise_transport_t *t)
{
    kl_dispatch_out_t out;
    FUZZ_CHECK(kl_storage_job_begin(R->st) == 0);
    kl_job_run(job, R->st);
    FUZZ_CHECK(kl_storage_job_end(R->st, job->result) == 0);
    kl_dispatch_complete(&R->cfg, s, job, &out);
    FUZZ_CHECK(!s->auth_pending);
    FUZZ_CHECK(out.has_reply && out.job == NULL);
    FUZZ_CHECK(out.reply.frame.id == job->req_id);
    send_reply(t, &out.reply);
    if (out.has_push) {
        FUZZ_CHECK(job->kind == KL_JOB_SEND || job->kind == KL_JOB_GROUP_SEND ||
                   job->kind == KL_JOB_GROUP_OP);
        FUZZ_CHECK(out.push.frame.id == 0);
        /* a group push goes to a list that always holds the caller */
        if (job->kind != KL_JOB_SEND) {
            int self = 0;
            for (size_t i = 0; i < out.n_push_users; i++)
                self |= out.push_users[i] == s->user_id;
            FUZZ_CHECK(self && out.push_group != NULL);
        }
        send_reply(t, &out.push);
    }
    /* A storage failure is never the client's fault. */
    if (out.reply.frame.body_case == BODY(ERROR))
        FUZZ_CHECK(out.reply.body.error.code != CODE(INTERNAL));
    int close = out.close;
    kl_dispatch_out_free(&out);
    kl_job_free(job);
    return close;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    fuzz_relay_t *R = fuzz_relay_get();
    kl_noise_transport_t c, r;
    kl_client_state_t s;
    uint64_t now = FUZZ_NOW_MS;
    fuzz_rng_reset(size);
    fuzz_transport_pair(&c, &r);
    kl_client_state_init(&s, &R->cfg, now);
    memcpy(s.hh, R->hh, sizeof s.hh);
    switch (fuzz_u8(&in) % 3) {
    case 1:
        become(&s, &R->alice);
        break;
    case 2:
        become(&s, &R->bob);
        break;
    default:
        break;
    }
    FUZZ_CHECK(kl_storage_batch_begin(R->st) == 0);
    while (in.left > 0) {
        size_t n = 0, clen = 0;
        now += (uint64_t)fuzz_u8(&in) * 10;
        size_t want = fuzz_u16(&in);
        const uint8_t *pt = fuzz_bytes(&in, want, &n);
        kl_frame_t *f = NULL;
        if (n > KL_WIRE_MAX_FRAME)
            n = KL_WIRE_MAX_FRAME;
        FUZZ_CHECK(kl_noise_encrypt(&c, pt, n, ct, sizeof ct, &clen) == 0);
        int rc = kl_wire_open(&r, ct, clen, &f);
        if (rc != 0) {
            FUZZ_CHECK(rc == KL_EPROTO); /* the relay answers BAD_REQUEST and closes */
            break;
        }
        kl_dispatch_out_t out;
        int was_authed = s.authed;
        rc = kl_dispatch_frame(&R->cfg, &s, f, now, &out);
        kl_wire_free(f); /* the relay frees the frame here: replies must not need it */
        FUZZ_CHECK(rc == 0);
        FUZZ_CHECK(out.has_reply != (out.job != NULL));
        FUZZ_CHECK(!out.has_push);
        if (!was_authed && out.has_reply)
            FUZZ_CHECK(!s.authed); /* only a completed register/auth authenticates */
        if (out.has_reply)
            send_reply(&r, &out.reply);
        int close = out.close;
        kl_job_t *job = out.job;
        out.job = NULL;
        kl_dispatch_out_free(&out);
        if (job != NULL) {
            FUZZ_CHECK(!close);
            if (job->kind == KL_JOB_REGISTER || job->kind == KL_JOB_AUTH)
                FUZZ_CHECK(s.auth_pending && !s.authed);
            else if (!s.authed)
                /* Unidentified delivery: a send or lookup that the storage
                 * job admits only with the recipient's token. */
                FUZZ_CHECK((job->kind == KL_JOB_SEND && job->u.send.has_token) ||
                           (job->kind == KL_JOB_LOOKUP && job->u.lookup.has_token));
            close = run_job(R, &s, job, &r);
        }
        if (close)
            break;
    }
    kl_storage_batch_rollback(R->st);
    return 0;
}
