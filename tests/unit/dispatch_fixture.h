/* Shared fixture of the in-process dispatch tests (test_dispatch_channel.c,
 * test_dispatch_group*.c): a relay on a real sqlite file in a scratch
 * directory, users u0..u(n-1) registered on oslo.test with the keys the
 * test gives, each with an authed session, and a runner that dispatches a
 * frame, runs its job as the storage thread does (job_begin, kl_job_run,
 * job_end inside a batch) and completes it. The library
 * kl_test_dispatch_fixture (dispatch_fixture.c). One fixture at a time: F,
 * opened by dfx_open in a cmocka setup and closed by dfx_teardown. */
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

extern dfx_t *F;

/* Open F: a scratch directory from tmpl ("/tmp/kl-...-XXXXXX") holding
 * relay.db, the relay settings lim, one invite for 100 users, and n users
 * u0..u(n-1) (n <= DFX_MAX_USERS): user i's identity key is the 32 bytes
 * at keys + i * stride (an array of user structs: U[0].pk, sizeof U[0]).
 * Returns 0, or -1 (the setup fails). */
int dfx_open(const char *tmpl, dfx_limits_t lim, int n, const uint8_t *keys, size_t stride);

/* A cmocka teardown: dfx_close. */
int dfx_teardown(void **state);

/* Forget the last request: its reply, pushes and job. */
void reset_out(void);

/* Run the job dispatch left in F->out as the storage thread does (its
 * batch committed, or rolled back and the job failed with KL_EIO when
 * commit is 0) and complete it for session s (NULL: a peer's request);
 * the reply must answer request id. Without a job, the reply dispatch
 * gave. Returns the reply's body case. */
int run_out_c(kl_client_state_t *s, uint32_t id, int commit);
int run_out(kl_client_state_t *s, uint32_t id);

/* Dispatch fr from user u; run its job (committed, or rolled back when
 * commit is 0) and complete it. Returns the reply's body case. */
int req_c(int u, kl_frame_t *fr, int commit);
int req(int u, kl_frame_t *fr);

/* The last reply is an error of code whose message contains contains
 * (unless NULL), and nothing was pushed. */
void expect_error(int code, const char *contains);

/* Submit the signed group op p (len bytes) as user u, committed or not
 * (commit 0) as req_c. Returns the reply's body case. */
int req_group_op(int u, const uint8_t *p, size_t len, int commit);

/* group_fetch of group from op index from, as user u. */
int req_group_fetch(int u, const char *group, uint64_t from);

/* Whether user u is in the push list of the last request. */
int has_user(int u);

/* Entries stored on the relay now. */
uint64_t stored_entries(void);

#endif
