/* Shared fixture of the in-process dispatch tests (test_dispatch_channel.c,
 * test_dispatch_group*.c): a relay on a real sqlite file in a scratch
 * directory, users u0..u(n-1) registered on oslo.test with the keys the
 * test gives, each with an authed session, and a runner that dispatches a
 * frame, runs its job as the storage thread does (job_begin, kl_job_run,
 * job_end inside a batch) and completes it. Header-only (static inline)
 * because every non-test .c in tests/unit is linked into every unit test.
 * One fixture at a time: F, opened by dfx_open in a cmocka setup and
 * closed by dfx_teardown. */
#ifndef KOLLEGA_TEST_DISPATCH_FIXTURE_H
#define KOLLEGA_TEST_DISPATCH_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/dispatch.h"
#include "kollega/channel.h"
#include "kollega/err.h"
#include "kollega/group.h"
#include "storage/storage.h"
#include "tmpdir.h"

#define NOW 1700000000000ull
#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x
#define CODE_INV "inviteinviteinviteinvite"
#define DFX_MAX_USERS 12

/* The relay settings in which the test files differ; the rest is fixed
 * (relay oslo.test, ttl_max 30 days, 100 entries, rate and burst 1000). */
typedef struct dfx_limits {
    size_t max_body;
    uint32_t ttl_default_s;
    uint64_t max_bytes;
} dfx_limits_t;

typedef void (*dfx_complete_fn)(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s,
                                const kl_job_t *job, kl_dispatch_out_t *out);

typedef struct dfx {
    char dir[64];
    char path[128];
    kl_storage_t *st;
    kl_dispatch_cfg_t cfg;
    int n;                                 /* registered users */
    kl_client_state_t s[DFX_MAX_USERS];         /* s[i]: u<i>, authed */
    kl_storage_user_t users[DFX_MAX_USERS];
    kl_dispatch_out_t out;                 /* of the last request */
    uint32_t next_id;                      /* frame id of the next request */
    kl_job_t *job;                         /* the last job: replies point into it */
    dfx_complete_fn complete;              /* kl_dispatch_complete unless set */
    kl_group_t *mirror;                    /* the test's view of its group, or NULL */
    kl_channel_t *chan;                    /* the test's view of its channel, or NULL */
} dfx_t;

static dfx_t *F;

/* Open F: a scratch directory from tmpl ("/tmp/kl-...-XXXXXX") holding
 * relay.db, the relay settings lim, one invite for 100 users, and n users
 * u0..u(n-1) (n <= DFX_MAX_USERS): user i's identity key is the 32 bytes
 * at keys + i * stride (an array of user structs: U[0].pk, sizeof U[0]).
 * Returns 0, or -1 (the setup fails). */
static inline int dfx_open(const char *tmpl, dfx_limits_t lim, int n, const uint8_t *keys,
                           size_t stride)
{
    if (n < 0 || n > DFX_MAX_USERS)
        return -1;
    dfx_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    F = f;
    snprintf(f->dir, sizeof f->dir, "%s", tmpl);
    if (mkdtemp(f->dir) == NULL) {
        f->dir[0] = '\0'; /* nothing to remove */
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/relay.db", f->dir);
    if (kl_storage_open(&f->st, f->path, KL_STORAGE_CREATE) != 0)
        return -1;
    f->cfg.relay_name = "oslo.test";
    f->cfg.max_body = lim.max_body;
    f->cfg.ttl_default_s = lim.ttl_default_s;
    f->cfg.ttl_max_s = 30 * 86400;
    f->cfg.quota.max_entries = 100;
    f->cfg.quota.max_bytes = lim.max_bytes;
    f->cfg.rate = 1000;
    f->cfg.burst = 1000;
    f->complete = kl_dispatch_complete;
    if (kl_storage_invite_create(f->st, CODE_INV, 100, NOW + 1000000, NOW) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        char h[16];
        const uint8_t *pk = keys + (size_t)i * stride;
        snprintf(h, sizeof h, "u%d", i);
        if (kl_storage_register(f->st, h, pk, CODE_INV, NOW, &f->users[i]) != 0)
            return -1;
        kl_client_state_init(&f->s[i], &f->cfg, NOW);
        f->s[i].authed = 1;
        f->s[i].user_id = f->users[i].id;
        f->s[i].inbox = f->users[i].inbox;
        memcpy(f->s[i].identity_key, pk, 32);
        snprintf(f->s[i].handle, sizeof f->s[i].handle, "%s", h);
    }
    f->n = n;
    f->next_id = 1;
    return 0;
}

/* Free F (also after a failed dfx_open) with its mirrors, and remove its
 * directory. */
static inline void dfx_close(void)
{
    dfx_t *f = F;
    if (f == NULL)
        return;
    kl_dispatch_out_free(&f->out);
    kl_job_free(f->job);
    kl_storage_close(f->st);
    kl_group_free(f->mirror);
    kl_channel_free(f->chan);
    if (f->dir[0] != '\0')
        kl_test_rmdir(f->dir);
    free(f);
    F = NULL;
}

/* A cmocka teardown: dfx_close. */
static inline int dfx_teardown(void **state)
{
    (void)state;
    dfx_close();
    return 0;
}

/* Forget the last request: its reply, pushes and job. */
static inline void reset_out(void)
{
    kl_dispatch_out_free(&F->out);
    memset(&F->out, 0, sizeof F->out);
    kl_job_free(F->job);
    F->job = NULL;
}

/* Run the job dispatch left in F->out as the storage thread does (its
 * batch committed, or rolled back and the job failed with KL_EIO when
 * commit is 0) and complete it for session s (NULL: a peer's request);
 * the reply must answer request id. Without a job, the reply dispatch
 * gave. Returns the reply's body case. */
static inline int run_out_c(kl_client_state_t *s, uint32_t id, int commit)
{
    dfx_t *f = F;
    kl_job_t *job = f->out.job;
    if (job == NULL) {
        assert_true(f->out.has_reply);
        return f->out.reply.frame.body_case;
    }
    f->out.job = NULL;
    assert_int_equal(kl_storage_batch_begin(f->st), 0);
    assert_int_equal(kl_storage_job_begin(f->st), 0);
    kl_job_run(job, f->st);
    assert_int_equal(kl_storage_job_end(f->st, job->result), 0);
    if (commit) {
        assert_int_equal(kl_storage_batch_commit(f->st), 0);
    } else {
        kl_storage_batch_rollback(f->st);
        kl_job_fail(job, KL_EIO);
    }
    kl_dispatch_out_free(&f->out);
    f->complete(&f->cfg, s, job, &f->out);
    f->job = job; /* the reply may point into it: freed at the next request */
    assert_true(f->out.has_reply);
    assert_int_equal(f->out.reply.frame.id, id);
    return f->out.reply.frame.body_case;
}

static inline int run_out(kl_client_state_t *s, uint32_t id)
{
    return run_out_c(s, id, 1);
}

/* Dispatch fr from user u; run its job (committed, or rolled back when
 * commit is 0) and complete it. Returns the reply's body case. */
static inline int req_c(int u, kl_frame_t *fr, int commit)
{
    assert_true(u >= 0 && u < F->n);
    reset_out();
    fr->id = F->next_id++;
    assert_int_equal(kl_dispatch_frame(&F->cfg, &F->s[u], fr, NOW, &F->out), 0);
    return run_out_c(&F->s[u], fr->id, commit);
}

static inline int req(int u, kl_frame_t *fr)
{
    return req_c(u, fr, 1);
}

/* The last reply is an error of code whose message contains contains
 * (unless NULL), and nothing was pushed. */
static inline void expect_error(int code, const char *contains)
{
    assert_int_equal(F->out.reply.frame.body_case, BODY(ERROR));
    if (F->out.reply.body.error.code != (Kollega__Relay__V1__ErrorCode)code)
        fail_msg("error %d (%s), expected %d", F->out.reply.body.error.code,
                 F->out.reply.body.error.message, code);
    if (contains && strstr(F->out.reply.body.error.message, contains) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", F->out.reply.body.error.message, contains);
    assert_false(F->out.has_push);
}

/* Submit the signed group op p (len bytes) as user u, committed or not
 * (commit 0) as req_c. Returns the reply's body case. */
static inline int req_group_op(int u, const uint8_t *p, size_t len, int commit)
{
    Kollega__Relay__V1__GroupOp go = KOLLEGA__RELAY__V1__GROUP_OP__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    go.signed_op.data = (uint8_t *)p;
    go.signed_op.len = len;
    fr.body_case = BODY(GROUP_OP);
    fr.group_op = &go;
    return req_c(u, &fr, commit);
}

/* group_fetch of group from op index from, as user u. */
static inline int req_group_fetch(int u, const char *group, uint64_t from)
{
    Kollega__Relay__V1__GroupFetch gf = KOLLEGA__RELAY__V1__GROUP_FETCH__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    gf.group = (char *)group;
    gf.from_index = from;
    fr.body_case = BODY(GROUP_FETCH);
    fr.group_fetch = &gf;
    return req(u, &fr);
}

/* Whether user u is in the push list of the last request. */
static inline int has_user(int u)
{
    for (size_t i = 0; i < F->out.n_push_users; i++)
        if (F->out.push_users[i] == F->s[u].user_id)
            return 1;
    return 0;
}

/* Entries stored on the relay now. */
static inline uint64_t stored_entries(void)
{
    kl_storage_stats_t st;
    assert_int_equal(kl_storage_stats(F->st, NOW, &st), 0);
    return st.entries;
}

#endif
