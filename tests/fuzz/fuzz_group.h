/* Fixture of the group-governance fuzz target (fuzz_group.c) and of its
 * seed generator (gen_corpus_group.c): fixed users and a valid log prefix,
 * built the same way in both from fuzz.h's deterministic random generator.
 * Header-only (static inline) so each program carries its own copy.
 *
 * The prefix, applied in order to a fresh state for FG_ADDR:
 *   0 create  by u0, policy MAJORITY, retention 7 days
 *   1 invite  u1 by u0        (1 of 1: admitted)
 *   2 invite  u2 by u0        (1 of 2: waits)
 *   3 approve u2 by u1        (2 of 2: admitted)
 *   4 request by u3           (candidate, no approvals)
 * so afterwards: members u0 (facilitator), u1, u2; candidate u3. */
#ifndef KOLLEGA_FUZZ_GROUP_H
#define KOLLEGA_FUZZ_GROUP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kollega/crypto.h"
#include "kollega/group.h"

#define FG_ADDR "#erfa@oslo.test"
#define FG_NUSERS 7 /* u0..u5 and "relay", who is never a member */
#define FG_PREFIX 5
#define FG_SEED 0x67726f7570ull
#define FG_TS 1700000000000ull

typedef struct fg_user {
    uint8_t pk[32];
    uint8_t sk[64];
    char addr[32];
} fg_user_t;

typedef struct fg_fx {
    fg_user_t u[FG_NUSERS];
    uint8_t *prefix[FG_PREFIX];
    size_t prefix_len[FG_PREFIX];
} fg_fx_t;

static inline kl_group_opdesc_t fg_desc(kl_group_opkind_t kind, const fg_user_t *t)
{
    kl_group_opdesc_t d;
    memset(&d, 0, sizeof d);
    d.kind = kind;
    if (t != NULL) {
        memcpy(d.target, t->pk, 32);
        d.has_target = 1;
        memcpy(d.target_address, t->addr, sizeof t->addr);
    }
    return d;
}

/* Build op d by u on g and apply it; both must succeed (fixture only). */
static inline void fg_must(kl_group_t *g, const fg_user_t *u, kl_group_opdesc_t d,
                           uint8_t **op, size_t *len)
{
    FUZZ_CHECK(kl_group_op_build(g, u->sk, u->pk, u->addr, FG_TS, &d, op, len) == 0);
    FUZZ_CHECK(kl_group_apply(g, *op, *len, NULL, NULL) == 0);
}

/* Built once per process; fuzz_init() must have run. */
static inline fg_fx_t *fg_get(void)
{
    static fg_fx_t fx;
    static int done;
    if (done)
        return &fx;
    done = 1;
    fuzz_rng_reset(FG_SEED);
    for (int i = 0; i < FG_NUSERS; i++) {
        FUZZ_CHECK(kl_sign_keypair(fx.u[i].pk, fx.u[i].sk) == 0);
        if (i < FG_NUSERS - 1)
            snprintf(fx.u[i].addr, sizeof fx.u[i].addr, "u%d@oslo.test", i);
        else
            snprintf(fx.u[i].addr, sizeof fx.u[i].addr, "relay@oslo.test");
    }
    kl_group_t *g = NULL;
    FUZZ_CHECK(kl_group_new(&g, FG_ADDR) == 0);
    kl_group_opdesc_t d = fg_desc(KL_GOP_CREATE, NULL);
    d.policy = KL_POLICY_MAJORITY;
    d.days = 7;
    fg_must(g, &fx.u[0], d, &fx.prefix[0], &fx.prefix_len[0]);
    fg_must(g, &fx.u[0], fg_desc(KL_GOP_INVITE, &fx.u[1]), &fx.prefix[1], &fx.prefix_len[1]);
    fg_must(g, &fx.u[0], fg_desc(KL_GOP_INVITE, &fx.u[2]), &fx.prefix[2], &fx.prefix_len[2]);
    fg_must(g, &fx.u[1], fg_desc(KL_GOP_APPROVE, &fx.u[2]), &fx.prefix[3], &fx.prefix_len[3]);
    fg_must(g, &fx.u[3], fg_desc(KL_GOP_REQUEST, NULL), &fx.prefix[4], &fx.prefix_len[4]);
    FUZZ_CHECK(kl_group_member_count(g) == 3 && kl_group_candidate_count(g) == 1);
    kl_group_free(g);
    return &fx;
}

/* A fresh state, with the prefix applied if `with_prefix`. */
static inline kl_group_t *fg_state(const fg_fx_t *fx, int with_prefix)
{
    kl_group_t *g = NULL;
    FUZZ_CHECK(kl_group_new(&g, FG_ADDR) == 0);
    for (int i = 0; with_prefix && i < FG_PREFIX; i++)
        FUZZ_CHECK(kl_group_apply(g, fx->prefix[i], fx->prefix_len[i], NULL, NULL) == 0);
    return g;
}

/* One step of mode 2 (see fuzz_group.c): 4 input bytes -> an op built by
 * a fixture user, or 0 if the builder refuses the description. *op is
 * malloc'd. */
static inline int fg_step_op(const kl_group_t *g, const fg_fx_t *fx, const uint8_t b[4],
                             uint8_t **op, size_t *len)
{
    const fg_user_t *actor = &fx->u[b[0] % FG_NUSERS];
    const fg_user_t *target = &fx->u[b[2] % FG_NUSERS];
    kl_group_opdesc_t d = fg_desc((kl_group_opkind_t)(KL_GOP_CREATE + b[1] % 9), target);
    d.policy = (kl_group_policy_t)(1 + b[3] % 3);
    d.role = (kl_group_role_t)(1 + (b[3] >> 2) % 2);
    d.days = b[3];
    if (d.kind == KL_GOP_LEAVE)
        d.has_target = (b[3] & 0x40) != 0;
    /* An invite naming the target's key under the next user's address:
     * the address-once rule (group.h) gets exercised. */
    if (d.kind == KL_GOP_INVITE && (b[3] & 0x80))
        memcpy(d.target_address, fx->u[(b[2] + 1) % FG_NUSERS].addr, sizeof target->addr);
    return kl_group_op_build(g, actor->sk, actor->pk, actor->addr, FG_TS, &d, op, len) == 0;
}

#endif
