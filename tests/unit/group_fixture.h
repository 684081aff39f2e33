/* Shared helpers of the group tests (test_group*.c, test_dispatch_group*.c):
 * test users, op building, apply-and-check, and a snapshot of every query so
 * a refused op can be shown to leave the state exactly as it was. The
 * library kl_test_group_fixture (group_fixture.c). */
#ifndef KOLLEGA_TEST_GROUP_FIXTURE_H
#define KOLLEGA_TEST_GROUP_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "group.pb-c.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/group.h"

#define GADDR "#erfa@oslo.test"
#define TS 1700000000000ull
#define NU 12

typedef struct user {
    uint8_t pk[32];
    uint8_t sk[64];
    char addr[64];
} user_t;

/* U[0..NU): u0@oslo.test ... made by fixture_setup. */
extern user_t U[NU];

void make_user(user_t *u, const char *handle);
int fixture_setup(void **state);
kl_group_t *group_new(const char *addr);

/* ---- op descriptions ------------------------------------------------- */

kl_group_opdesc_t d_kind(kl_group_opkind_t kind);
kl_group_opdesc_t d_create(kl_group_policy_t policy, uint32_t days);

/* invite / approve / remove / leave (successor) / set_role target. */
kl_group_opdesc_t d_on(kl_group_opkind_t kind, const user_t *t);
kl_group_opdesc_t d_role(const user_t *t, kl_group_role_t role);
kl_group_opdesc_t d_policy(kl_group_policy_t p);
kl_group_opdesc_t d_retention(uint32_t days);

/* ---- snapshot of every query ------------------------------------------ */

char *snapshot(const kl_group_t *g);

/* ---- building and applying -------------------------------------------- */

typedef struct opbuf {
    uint8_t *p;
    size_t len;
} opbuf_t;

opbuf_t build(const kl_group_t *g, const user_t *u, kl_group_opdesc_t d);

/* Apply, expecting success: the index advances, the head becomes the
 * SHA-256 of exactly these bytes, the event names the op. */
kl_group_event_t apply_ok(kl_group_t *g, const opbuf_t *o);

/* Apply, expecting refusal for `want`, with the matching error code and
 * every query answering exactly as before. */
void apply_refused_x(kl_group_t *g, const uint8_t *p, size_t len,
                     kl_group_verr_t want, const user_t *extra, size_t nx);
void apply_refused(kl_group_t *g, const opbuf_t *o, kl_group_verr_t want);

/* Build by u and apply: success / refusal. */
kl_group_event_t act(kl_group_t *g, const user_t *u, kl_group_opdesc_t d);
void act_refused(kl_group_t *g, const user_t *u, kl_group_opdesc_t d, kl_group_verr_t want);

/* A group made by U[0] under FACILITATORS with U[1..n) invited (each
 * admitted at its invite), then switched to `policy`. */
kl_group_t *group_of(size_t n, kl_group_policy_t policy);

/* The candidate entry for key (fails the test if absent). */
kl_group_candidate_t cand_of(const kl_group_t *g, const uint8_t key[32]);

/* ---- hand-made ops ---------------------------------------------------- */

/* protobuf-c allocations of an unpacked op, released together, so a test
 * may point fields at its own buffers without free_unpacked freeing them. */
typedef struct arena {
    void *p[1024];
    size_t n;
} arena_t;

void arena_release(arena_t *a);

/* The Op inside a SignedOp, unpacked into the arena. */
Kollega__Group__V1__Op *op_of(const opbuf_t *o, arena_t *a);

/* Build by u, then unpack the Op for editing. */
Kollega__Group__V1__Op *draft(const kl_group_t *g, const user_t *u,
                              kl_group_opdesc_t d, arena_t *a);

/* SignedOp{op bytes, sig} packed as protobuf-c does. */
opbuf_t wrap(const uint8_t *op, size_t oplen, const uint8_t *sig, size_t siglen);

/* Sign raw Op bytes with signer's key ("kollega-group-op-v1" || op). */
void sign_raw(const user_t *signer, const uint8_t *op, size_t oplen, uint8_t sig[64]);

/* Pack an (edited) Op, sign it with signer's key, wrap it. */
opbuf_t seal(const Kollega__Group__V1__Op *op, const user_t *signer);

#endif
