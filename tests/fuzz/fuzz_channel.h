/* Fixture of the broadcast-channel fuzz target (fuzz_channel.c) and of its
 * seed generator (gen_corpus_channel.c): users u0..u3 with keys from
 * fuzz.h's deterministic generator; the channel FC_ADDR created by u0 (the
 * owner) with u1 added as a publisher. Header-only (static inline). */
#ifndef KOLLEGA_FUZZ_CHANNEL_H
#define KOLLEGA_FUZZ_CHANNEL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kollega/channel.h"
#include "kollega/crypto.h"

#define FC_ADDR "!nordic@oslo.test"
#define FC_NUSERS 4
#define FC_SEED 0x6368616e6e656cull
#define FC_TS 1700000000000ull

typedef struct fc_user {
    uint8_t pk[32];
    uint8_t sk[64];
    char addr[32];
} fc_user_t;

typedef struct fc_fx {
    fc_user_t u[FC_NUSERS];
    uint8_t *prefix[2]; /* create by u0, add_publisher u1 by u0 */
    size_t prefix_len[2];
} fc_fx_t;

/* A fresh state with the prefix applied. */
static inline kl_channel_t *fc_state(const fc_fx_t *fx)
{
    kl_channel_t *c = NULL;
    FUZZ_CHECK(kl_channel_new(&c, FC_ADDR) == 0);
    for (int i = 0; i < 2; i++)
        FUZZ_CHECK(kl_channel_apply(c, fx->prefix[i], fx->prefix_len[i], NULL, NULL) == 0);
    return c;
}

static inline void fc_fixture(fc_fx_t *fx)
{
    kl_channel_t *c = NULL;
    fuzz_init();
    fuzz_rng_reset(FC_SEED);
    for (int i = 0; i < FC_NUSERS; i++) {
        FUZZ_CHECK(kl_sign_keypair(fx->u[i].pk, fx->u[i].sk) == 0);
        snprintf(fx->u[i].addr, sizeof fx->u[i].addr, "u%d@oslo.test", i);
    }
    FUZZ_CHECK(kl_channel_new(&c, FC_ADDR) == 0);
    FUZZ_CHECK(kl_channel_op_build(c, fx->u[0].sk, fx->u[0].pk, fx->u[0].addr, FC_TS,
                                   KL_COP_CREATE, NULL, NULL, &fx->prefix[0],
                                   &fx->prefix_len[0]) == 0);
    FUZZ_CHECK(kl_channel_apply(c, fx->prefix[0], fx->prefix_len[0], NULL, NULL) == 0);
    FUZZ_CHECK(kl_channel_op_build(c, fx->u[0].sk, fx->u[0].pk, fx->u[0].addr, FC_TS,
                                   KL_COP_ADD_PUBLISHER, fx->u[1].pk, fx->u[1].addr,
                                   &fx->prefix[1], &fx->prefix_len[1]) == 0);
    kl_channel_free(c);
}

#endif
