/* Broadcast channels: the publisher log (owner-only changes, chain,
 * signatures, canonical bytes) and post verification (forged, altered,
 * moved between channels, removed publisher). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/channel.h"
#include "kollega/crypto.h"
#include "kollega/err.h"

#define CADDR "!nordic@oslo.test"
#define TS 1700000000000ull

typedef struct user {
    uint8_t pk[32];
    uint8_t sk[64];
    char addr[64];
} user_t;

static user_t U[4];

static int setup(void **state)
{
    (void)state;
    assert_int_equal(kl_crypto_init(), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(kl_sign_keypair(U[i].pk, U[i].sk), 0);
        snprintf(U[i].addr, sizeof U[i].addr, "u%d@oslo.test", i);
    }
    return 0;
}

/* Build the next op by u and return it (caller frees). */
static uint8_t *op_by(const kl_channel_t *c, const user_t *u, kl_channel_opkind_t kind,
                      const user_t *target, size_t *len)
{
    uint8_t *op = NULL;
    assert_int_equal(kl_channel_op_build(c, u->sk, u->pk, u->addr, TS, kind,
                                         target ? target->pk : NULL, target ? target->addr : NULL,
                                         &op, len),
                     0);
    return op;
}

static void act(kl_channel_t *c, const user_t *u, kl_channel_opkind_t kind, const user_t *t)
{
    size_t len;
    kl_channel_verr_t why;
    uint8_t *op = op_by(c, u, kind, t, &len);
    assert_int_equal(kl_channel_apply(c, op, len, NULL, &why), 0);
    assert_int_equal(why, KL_CV_OK);
    free(op);
}

static void refused(kl_channel_t *c, const user_t *u, kl_channel_opkind_t kind, const user_t *t,
                    kl_channel_verr_t want)
{
    size_t len;
    kl_channel_verr_t why;
    uint8_t head[32], after[32];
    uint64_t next = kl_channel_next_index(c);
    size_t npub = kl_channel_publisher_count(c);
    kl_channel_head(c, head);
    uint8_t *op = op_by(c, u, kind, t, &len);
    assert_int_not_equal(kl_channel_apply(c, op, len, NULL, &why), 0);
    assert_int_equal(why, want);
    kl_channel_head(c, after);
    assert_memory_equal(head, after, 32);
    assert_int_equal(kl_channel_next_index(c), next);
    assert_int_equal(kl_channel_publisher_count(c), npub);
    free(op);
}

static kl_channel_t *channel_of_owner(void)
{
    kl_channel_t *c = NULL;
    assert_int_equal(kl_channel_new(&c, CADDR), 0);
    act(c, &U[0], KL_COP_CREATE, NULL);
    return c;
}

static void test_addresses(void **state)
{
    (void)state;
    kl_channel_t *c = NULL;
    assert_true(kl_channel_addr_valid("!nordic@oslo.test"));
    assert_false(kl_channel_addr_valid("nordic@oslo.test"));
    assert_false(kl_channel_addr_valid("#nordic@oslo.test"));
    assert_false(kl_channel_addr_valid("!!nordic@oslo.test"));
    assert_false(kl_channel_addr_valid("!Nordic@oslo.test"));
    assert_false(kl_channel_addr_valid("!nordic"));
    assert_false(kl_channel_addr_valid(NULL));
    assert_int_equal(kl_channel_new(&c, "#erfa@oslo.test"), KL_EINVAL);
    assert_null(c);
}

static void test_owner_manages_publishers(void **state)
{
    (void)state;
    kl_channel_t *c = NULL;
    uint8_t key[32];
    char addr[256];

    assert_int_equal(kl_channel_new(&c, CADDR), 0);
    assert_int_equal(kl_channel_owner(c, key), KL_ENOTFOUND);
    /* Index 0 must be create. */
    refused(c, &U[0], KL_COP_ADD_PUBLISHER, &U[1], KL_CV_CHAIN);
    act(c, &U[0], KL_COP_CREATE, NULL);
    assert_int_equal(kl_channel_owner(c, key), 0);
    assert_memory_equal(key, U[0].pk, 32);
    assert_true(kl_channel_is_publisher(c, U[0].pk));
    refused(c, &U[1], KL_COP_CREATE, NULL, KL_CV_CHAIN);

    act(c, &U[0], KL_COP_ADD_PUBLISHER, &U[1]);
    assert_true(kl_channel_is_publisher(c, U[1].pk));
    assert_int_equal(kl_channel_publisher_at(c, 1, key, addr), 0);
    assert_memory_equal(key, U[1].pk, 32);
    assert_string_equal(addr, U[1].addr);
    refused(c, &U[0], KL_COP_ADD_PUBLISHER, &U[1], KL_CV_ALREADY_PUBLISHER);
    /* A publisher is not the owner: it cannot add or remove. */
    refused(c, &U[1], KL_COP_ADD_PUBLISHER, &U[2], KL_CV_NOT_OWNER);
    refused(c, &U[2], KL_COP_ADD_PUBLISHER, &U[2], KL_CV_NOT_OWNER);
    refused(c, &U[1], KL_COP_REMOVE_PUBLISHER, &U[0], KL_CV_NOT_OWNER);
    refused(c, &U[0], KL_COP_REMOVE_PUBLISHER, &U[0], KL_CV_OWNER);
    refused(c, &U[0], KL_COP_REMOVE_PUBLISHER, &U[2], KL_CV_NOT_PUBLISHER);
    act(c, &U[0], KL_COP_REMOVE_PUBLISHER, &U[1]);
    assert_false(kl_channel_is_publisher(c, U[1].pk));
    assert_int_equal(kl_channel_publisher_count(c), 1);
    assert_int_equal(kl_channel_next_index(c), 3);
    kl_channel_free(c);
}

static void test_publisher_limit(void **state)
{
    (void)state;
    kl_channel_t *c = channel_of_owner();
    user_t x;
    for (int i = 1; i < KL_CHANNEL_MAX_PUBLISHERS; i++) {
        assert_int_equal(kl_sign_keypair(x.pk, x.sk), 0);
        snprintf(x.addr, sizeof x.addr, "p%d@oslo.test", i);
        act(c, &U[0], KL_COP_ADD_PUBLISHER, &x);
    }
    refused(c, &U[0], KL_COP_ADD_PUBLISHER, &U[3], KL_CV_LIMIT);
    kl_channel_free(c);
}

/* A forged signature, a flipped byte anywhere, a replay, an op of another
 * channel and an op with a stale prev are all refused. */
static void test_tamper_replay_other_channel(void **state)
{
    (void)state;
    kl_channel_t *c = channel_of_owner(), *other = NULL;
    kl_channel_verr_t why;
    size_t len;

    uint8_t *op = op_by(c, &U[0], KL_COP_ADD_PUBLISHER, &U[1], &len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            op[i] ^= (uint8_t)(1u << bit);
            assert_int_not_equal(kl_channel_apply(c, op, len, NULL, &why), 0);
            op[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(kl_channel_next_index(c), 1);
    assert_int_equal(kl_channel_apply(c, op, len, NULL, &why), 0);
    assert_int_equal(kl_channel_apply(c, op, len, NULL, &why), KL_EPROTO);
    assert_int_equal(why, KL_CV_CHAIN);
    free(op);

    /* Signed by someone else than the actor it names (the owner). */
    uint8_t *forged = NULL;
    assert_int_equal(kl_channel_op_build(c, U[1].sk, U[0].pk, U[0].addr, TS, KL_COP_ADD_PUBLISHER,
                                         U[1].pk, U[1].addr, &forged, &len),
                     0);
    assert_int_equal(kl_channel_apply(c, forged, len, NULL, &why), KL_ECRYPTO);
    assert_int_equal(why, KL_CV_SIGNATURE);
    free(forged);

    assert_int_equal(kl_channel_new(&other, "!other@oslo.test"), 0);
    kl_channel_t *fresh = NULL;
    assert_int_equal(kl_channel_new(&fresh, CADDR), 0);
    op = op_by(fresh, &U[0], KL_COP_CREATE, NULL, &len);
    assert_int_equal(kl_channel_apply(other, op, len, NULL, &why), KL_EPROTO);
    assert_int_equal(why, KL_CV_WRONG_CHANNEL);
    free(op);
    kl_channel_free(fresh);
    kl_channel_free(other);
    kl_channel_free(c);
}

static uint8_t *post_by(const kl_channel_t *c, const user_t *u, const char *text, size_t *len)
{
    uint8_t id[16], *out = NULL;
    kl_random(id, sizeof id);
    assert_int_equal(kl_channel_post_build(c, u->sk, u->pk, u->addr, id, TS, text, &out, len), 0);
    return out;
}

static void test_posts(void **state)
{
    (void)state;
    kl_channel_t *c = channel_of_owner(), *other = NULL;
    kl_channel_post_t p;
    kl_channel_verr_t why;
    size_t len;
    uint8_t id[16] = {1}, *out = NULL;

    act(c, &U[0], KL_COP_ADD_PUBLISHER, &U[1]);
    uint8_t *post = post_by(c, &U[1], "Sommerseminar 12.-14. juni i Bergen", &len);
    assert_int_equal(kl_channel_post_open(c, post, len, &p, &why), 0);
    assert_int_equal(why, KL_CV_OK);
    assert_memory_equal(p.publisher, U[1].pk, 32);
    assert_string_equal(p.publisher_address, U[1].addr);
    assert_string_equal(p.text, "Sommerseminar 12.-14. juni i Bergen");
    assert_int_equal(p.ts, TS);
    kl_channel_post_clear(&p);

    /* Every flipped bit is refused. */
    for (size_t i = 0; i < len; i++) {
        post[i] ^= 0x04;
        assert_int_not_equal(kl_channel_post_open(c, post, len, &p, &why), 0);
        assert_null(p.text);
        post[i] ^= 0x04;
    }
    /* The same post does not verify in another channel. */
    assert_int_equal(kl_channel_new(&other, "!other@oslo.test"), 0);
    act(other, &U[1], KL_COP_CREATE, NULL);
    assert_int_equal(kl_channel_post_open(other, post, len, &p, &why), KL_EPROTO);
    assert_int_equal(why, KL_CV_WRONG_CHANNEL);

    /* A non-publisher cannot build one, and a post it signs anyway (built
     * in a channel where it is a publisher, same address) is refused. */
    assert_int_equal(kl_channel_post_build(c, U[2].sk, U[2].pk, U[2].addr, id, TS, "x", &out, &len),
                     KL_ESTATE);
    kl_channel_t *fake = NULL;
    assert_int_equal(kl_channel_new(&fake, CADDR), 0);
    act(fake, &U[2], KL_COP_CREATE, NULL);
    uint8_t *forged = post_by(fake, &U[2], "forged announcement", &len);
    assert_int_equal(kl_channel_post_open(c, forged, len, &p, &why), KL_ESTATE);
    assert_int_equal(why, KL_CV_NOT_PUBLISHER);
    free(forged);
    kl_channel_free(fake);

    /* Removed publisher: its earlier post is refused from now on. */
    size_t plen;
    uint8_t *again = post_by(c, &U[1], "second", &plen);
    act(c, &U[0], KL_COP_REMOVE_PUBLISHER, &U[1]);
    assert_int_equal(kl_channel_post_open(c, again, plen, &p, &why), KL_ESTATE);
    assert_int_equal(why, KL_CV_NOT_PUBLISHER);
    free(again);
    free(post);
    kl_channel_free(other);
    kl_channel_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_owner_manages_publishers),
        cmocka_unit_test(test_publisher_limit),
        cmocka_unit_test(test_tamper_replay_other_channel),
        cmocka_unit_test(test_posts),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
