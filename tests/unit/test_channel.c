/* Broadcast channels: the publisher log (owner-only changes, chain,
 * signatures, canonical bytes) and post verification (forged, altered,
 * moved between channels, removed publisher). */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/channel.h"
#include "kollega/sealed.h"
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

/* ---- members-only channels ---------------------------------------------- */

static kl_channel_t *private_channel(void)
{
    kl_channel_t *c = NULL;
    uint8_t *op = NULL;
    size_t len = 0;
    kl_channel_event_t ev;
    assert_int_equal(kl_channel_new(&c, CADDR), 0);
    assert_int_equal(kl_channel_op_build_create(c, U[0].sk, U[0].pk, U[0].addr, TS, 1, &op,
                                                &len),
                     0);
    assert_int_equal(kl_channel_apply(c, op, len, &ev, NULL), 0);
    assert_true(ev.members_only);
    assert_int_equal(ev.epoch, 1);
    free(op);
    return c;
}

static void test_members_only_rules(void **state)
{
    (void)state;
    kl_channel_t *pub = channel_of_owner(), *c = private_channel();
    /* A public channel: no member ops, epoch 1, members = publishers. */
    assert_false(kl_channel_members_only(pub));
    assert_int_equal(kl_channel_epoch(pub), 1);
    refused(pub, &U[0], KL_COP_ADD_MEMBER, &U[1], KL_CV_PUBLIC);
    refused(pub, &U[0], KL_COP_REMOVE_MEMBER, &U[1], KL_CV_PUBLIC);

    assert_true(kl_channel_members_only(c));
    assert_int_equal(kl_channel_epoch(c), 1);
    assert_true(kl_channel_is_member(c, U[0].pk));
    assert_false(kl_channel_is_member(c, U[1].pk));
    /* Only the owner manages members. */
    act(c, &U[0], KL_COP_ADD_PUBLISHER, &U[3]);
    refused(c, &U[3], KL_COP_ADD_MEMBER, &U[1], KL_CV_NOT_OWNER);
    refused(c, &U[1], KL_COP_ADD_MEMBER, &U[1], KL_CV_NOT_OWNER);
    act(c, &U[0], KL_COP_ADD_MEMBER, &U[1]);
    assert_true(kl_channel_is_member(c, U[1].pk));
    assert_false(kl_channel_is_publisher(c, U[1].pk));
    assert_int_equal(kl_channel_added_count(c), 1);
    refused(c, &U[0], KL_COP_ADD_MEMBER, &U[1], KL_CV_ALREADY_MEMBER);
    refused(c, &U[0], KL_COP_ADD_MEMBER, &U[3], KL_CV_ALREADY_MEMBER); /* a publisher */
    refused(c, &U[0], KL_COP_ADD_MEMBER, &U[0], KL_CV_ALREADY_MEMBER); /* the owner */
    refused(c, &U[3], KL_COP_REMOVE_MEMBER, &U[1], KL_CV_NOT_OWNER);
    refused(c, &U[0], KL_COP_REMOVE_MEMBER, &U[2], KL_CV_NOT_MEMBER);
    refused(c, &U[0], KL_COP_REMOVE_MEMBER, &U[3], KL_CV_NOT_MEMBER); /* publisher only */
    assert_int_equal(kl_channel_epoch(c), 1);
    /* Epoch: +1 per remove_member and remove_publisher. */
    act(c, &U[0], KL_COP_REMOVE_MEMBER, &U[1]);
    assert_int_equal(kl_channel_epoch(c), 2);
    assert_false(kl_channel_is_member(c, U[1].pk));
    act(c, &U[0], KL_COP_REMOVE_PUBLISHER, &U[3]);
    assert_int_equal(kl_channel_epoch(c), 3);
    assert_false(kl_channel_is_member(c, U[3].pk));
    /* An added member who becomes a publisher stays a member when it
     * stops publishing. */
    act(c, &U[0], KL_COP_ADD_MEMBER, &U[2]);
    act(c, &U[0], KL_COP_ADD_PUBLISHER, &U[2]);
    act(c, &U[0], KL_COP_REMOVE_PUBLISHER, &U[2]);
    assert_true(kl_channel_is_member(c, U[2].pk));
    assert_int_equal(kl_channel_epoch(c), 4);
    /* The same log gives the same state elsewhere (a relay, a client). */
    kl_channel_free(pub);
    kl_channel_free(c);
}

static void test_member_limit(void **state)
{
    (void)state;
    kl_channel_t *c = private_channel();
    uint8_t key[32], got[32];
    char addr[256];
    memset(key, 0, sizeof key);
    for (uint32_t i = 0; i < KL_CHANNEL_MAX_MEMBERS + 1; i++) {
        uint8_t *op = NULL;
        size_t len;
        kl_channel_verr_t why;
        memcpy(key, &i, sizeof i);
        key[31] = 1;
        assert_int_equal(kl_channel_op_build(c, U[0].sk, U[0].pk, U[0].addr, TS,
                                             KL_COP_ADD_MEMBER, key, "m@oslo.test", &op, &len),
                         0);
        int r = kl_channel_apply(c, op, len, NULL, &why);
        free(op);
        if (i < KL_CHANNEL_MAX_MEMBERS) {
            assert_int_equal(r, 0);
        } else {
            assert_int_equal(r, KL_ELIMIT);
            assert_int_equal(why, KL_CV_LIMIT);
        }
    }
    assert_int_equal(kl_channel_added_count(c), KL_CHANNEL_MAX_MEMBERS);
    assert_int_equal(kl_channel_added_at(c, 7, got, addr), 0);
    assert_int_equal(got[0], 7);
    assert_string_equal(addr, "m@oslo.test");
    kl_channel_free(c);
}

static void test_seal_open(void **state)
{
    (void)state;
    uint8_t key[32], other[32], id[16], id2[16];
    uint8_t *ct = NULL, *pt = NULL;
    size_t clen = 0, plen = 0;
    const char *msg = "meeting moved to room 4";
    kl_random(key, sizeof key);
    kl_random(other, sizeof other);
    kl_random(id, sizeof id);
    memcpy(id2, id, 16);
    id2[0] ^= 1;
    assert_int_equal(kl_channel_seal(key, CADDR, 3, id, (const uint8_t *)msg, strlen(msg), &ct,
                                     &clen),
                     0);
    /* Padded: the relay learns the length only to a block. */
    assert_int_equal(clen, KL_PAD_BLOCK + KL_CHANNEL_SEAL_OVERHEAD);
    assert_null(memmem(ct, clen, "room", 4));
    assert_int_equal(kl_channel_unseal(key, CADDR, 3, id, ct, clen, &pt, &plen), 0);
    assert_int_equal(plen, strlen(msg));
    assert_string_equal((char *)pt, msg);
    kl_free_wipe(pt, plen + 1);
    /* Wrong key, epoch, channel or id; a flipped bit anywhere. */
    assert_int_equal(kl_channel_unseal(other, CADDR, 3, id, ct, clen, &pt, &plen), KL_ECRYPTO);
    assert_int_equal(kl_channel_unseal(key, CADDR, 2, id, ct, clen, &pt, &plen), KL_ECRYPTO);
    assert_int_equal(kl_channel_unseal(key, CADDR, 4, id, ct, clen, &pt, &plen), KL_ECRYPTO);
    assert_int_equal(kl_channel_unseal(key, "!other@oslo.test", 3, id, ct, clen, &pt, &plen),
                     KL_ECRYPTO);
    assert_int_equal(kl_channel_unseal(key, CADDR, 3, id2, ct, clen, &pt, &plen), KL_ECRYPTO);
    for (size_t i = 0; i < clen; i += 7) {
        ct[i] ^= 0x20;
        assert_int_equal(kl_channel_unseal(key, CADDR, 3, id, ct, clen, &pt, &plen), KL_ECRYPTO);
        assert_null(pt);
        ct[i] ^= 0x20;
    }
    assert_int_equal(kl_channel_unseal(key, CADDR, 3, id, ct, KL_CHANNEL_SEAL_OVERHEAD - 1, &pt,
                                       &plen),
                     KL_EPROTO);
    /* Two seals of the same text differ (random nonce). */
    uint8_t *ct2 = NULL;
    size_t clen2 = 0;
    assert_int_equal(kl_channel_seal(key, CADDR, 3, id, (const uint8_t *)msg, strlen(msg), &ct2,
                                     &clen2),
                     0);
    assert_memory_not_equal(ct, ct2, clen);
    free(ct2);
    /* A one-byte post and one of a block minus one look the same; a full
     * block's worth takes two. */
    char lng[KL_PAD_BLOCK + 1];
    memset(lng, 'x', sizeof lng - 1);
    lng[KL_PAD_BLOCK - 1] = '\0';
    assert_int_equal(kl_channel_seal(key, CADDR, 3, id, (const uint8_t *)"k", 1, &ct2, &clen2), 0);
    assert_int_equal(clen2, clen);
    free(ct2);
    assert_int_equal(kl_channel_seal(key, CADDR, 3, id, (const uint8_t *)lng, KL_PAD_BLOCK - 1,
                                     &ct2, &clen2), 0);
    assert_int_equal(clen2, clen);
    assert_int_equal(kl_channel_unseal(key, CADDR, 3, id, ct2, clen2, &pt, &plen), 0);
    assert_int_equal(plen, KL_PAD_BLOCK - 1);
    assert_memory_equal(pt, lng, plen);
    kl_free_wipe(pt, plen + 1);
    free(ct2);
    assert_int_equal(kl_channel_seal(key, CADDR, 3, id, (const uint8_t *)lng, KL_PAD_BLOCK,
                                     &ct2, &clen2), 0);
    assert_int_equal(clen2, 2 * KL_PAD_BLOCK + KL_CHANNEL_SEAL_OVERHEAD);
    free(ct2);
    free(ct);
}

static void test_sealed_posts(void **state)
{
    (void)state;
    kl_channel_t *c = private_channel(), *pub = channel_of_owner();
    uint8_t key1[32], key2[32], id[16] = {1, 2, 3};
    uint8_t *post = NULL, *bad = NULL;
    size_t plen = 0, blen = 0;
    kl_channel_post_t p;
    kl_channel_verr_t why;
    kl_random(key1, sizeof key1);
    kl_random(key2, sizeof key2);
    act(c, &U[0], KL_COP_ADD_PUBLISHER, &U[1]);
    act(c, &U[0], KL_COP_ADD_MEMBER, &U[2]);
    /* Plain posts are refused by a members-only channel, sealed ones by a
     * public channel. */
    assert_int_equal(kl_channel_post_build(c, U[1].sk, U[1].pk, U[1].addr, id, TS, "x", &post,
                                           &plen),
                     KL_ESTATE);
    assert_int_equal(kl_channel_post_build_sealed(pub, U[0].sk, U[0].pk, U[0].addr, id, TS,
                                                  key1, 1, "x", &post, &plen),
                     KL_ESTATE);
    assert_int_equal(kl_channel_post_build_sealed(c, U[1].sk, U[1].pk, U[1].addr, id, TS, key1,
                                                  2, "x", &post, &plen),
                     KL_ESTATE); /* epoch 2 does not exist yet */
    assert_int_equal(kl_channel_post_build_sealed(c, U[2].sk, U[2].pk, U[2].addr, id, TS, key1,
                                                  1, "x", &post, &plen),
                     KL_ESTATE); /* a member, not a publisher */
    assert_int_equal(kl_channel_post_build_sealed(c, U[1].sk, U[1].pk, U[1].addr, id, TS, key1,
                                                  1, "secret plan", &post, &plen),
                     0);
    assert_null(memmem(post, plen, "secret", 6));
    /* The relay's view: valid, no text, ciphertext and epoch. */
    assert_int_equal(kl_channel_post_open(c, post, plen, &p, &why), 0);
    assert_int_equal(why, KL_CV_OK);
    assert_string_equal(p.text, "");
    assert_int_equal(p.epoch, 1);
    assert_non_null(p.ciphertext);
    assert_int_equal(kl_channel_post_unseal(CADDR, &p, key2), KL_ECRYPTO);
    assert_string_equal(p.text, "");
    assert_int_equal(kl_channel_post_unseal(CADDR, &p, key1), 0);
    assert_string_equal(p.text, "secret plan");
    assert_memory_equal(p.publisher, U[1].pk, 32);
    kl_channel_post_clear(&p);
    /* A public channel refuses a sealed post even when signed properly. */
    kl_channel_t *pub2 = NULL;
    assert_int_equal(kl_channel_new(&pub2, CADDR), 0);
    act(pub2, &U[0], KL_COP_CREATE, NULL);
    act(pub2, &U[0], KL_COP_ADD_PUBLISHER, &U[1]);
    assert_int_equal(kl_channel_post_open(pub2, post, plen, &p, &why), KL_ESTATE);
    assert_int_equal(why, KL_CV_PUBLIC);
    kl_channel_free(pub2);
    /* After a removal (epoch 2) the old epoch's posts still open; a post
     * for a future epoch is refused. */
    act(c, &U[0], KL_COP_REMOVE_MEMBER, &U[2]);
    assert_int_equal(kl_channel_post_open(c, post, plen, &p, &why), 0);
    kl_channel_post_clear(&p);
    assert_int_equal(kl_channel_post_build_sealed(c, U[1].sk, U[1].pk, U[1].addr, id, TS, key2,
                                                  2, "after", &bad, &blen),
                     0);
    assert_int_equal(kl_channel_post_open(c, bad, blen, &p, &why), 0);
    assert_int_equal(p.epoch, 2);
    assert_int_equal(kl_channel_post_unseal(CADDR, &p, key1), KL_ECRYPTO); /* old key */
    kl_channel_post_clear(&p);
    free(bad);
    kl_channel_t *early = private_channel(); /* still at epoch 1 */
    act(early, &U[0], KL_COP_ADD_PUBLISHER, &U[1]);
    assert_int_equal(kl_channel_op_build_create(early, U[0].sk, U[0].pk, U[0].addr, TS, 1, &bad,
                                                &blen),
                     0);
    free(bad);
    assert_int_equal(kl_channel_post_build_sealed(c, U[1].sk, U[1].pk, U[1].addr, id, TS, key2,
                                                  2, "later", &bad, &blen),
                     0);
    assert_int_equal(kl_channel_post_open(early, bad, blen, &p, &why), KL_ESTATE);
    assert_int_equal(why, KL_CV_EPOCH);
    free(bad);
    /* A flipped byte of the signed post is refused (signature). */
    post[plen - 70] ^= 1;
    assert_int_not_equal(kl_channel_post_open(c, post, plen, &p, &why), 0);
    assert_null(p.text);
    free(post);
    kl_channel_free(early);
    kl_channel_free(pub);
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
        cmocka_unit_test(test_members_only_rules),
        cmocka_unit_test(test_member_limit),
        cmocka_unit_test(test_seal_open),
        cmocka_unit_test(test_sealed_posts),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
