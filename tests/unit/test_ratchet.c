/* The Double Ratchet: conversations with DH turns, out-of-order delivery,
 * transactional rejection of replays and tampering, the skip bounds, and the
 * serialised form. "State unchanged" is checked by comparing serialisations,
 * which cover every field of the state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/hkdf.h"
#include "kollega/ratchet.h"
#include "kollega/x3dh.h"

#define MAXMSG 256
/* The fixed part of serialisation format version 1 and one skipped key. */
#define SER_FIXED 278
#define SER_SKIPPED 68

typedef struct msg {
    uint8_t b[MAXMSG + KL_RATCHET_OVERHEAD];
    size_t len;
} msg_t;

typedef struct session {
    kl_ratchet_t *a;
    kl_ratchet_t *b;
    uint8_t sk[32];
    uint8_t ad[KL_X3DH_AD];
    uint8_t spk_pub[32];
    uint8_t spk_priv[32];
} session_t;

static int setup(void **state)
{
    (void)state;
    return kl_crypto_init();
}

/* A real X3DH between fresh identities, then both ratchets. */
static void open_session(session_t *s)
{
    uint8_t apk[32], ask[64], bpk[32], bsk[64], ek[32], sk_b[32], ad_b[KL_X3DH_AD];
    kl_prekey_bundle_t bundle;

    memset(&bundle, 0, sizeof bundle);
    assert_int_equal(kl_sign_keypair(apk, ask), 0);
    assert_int_equal(kl_sign_keypair(bpk, bsk), 0);
    kl_x_keypair(s->spk_pub, s->spk_priv);
    memcpy(bundle.identity_key, bpk, 32);
    bundle.spk_id = 1;
    memcpy(bundle.spk, s->spk_pub, 32);
    assert_int_equal(kl_x3dh_spk_sign(bsk, 1, s->spk_pub, bundle.spk_sig), 0);
    assert_int_equal(kl_x3dh_initiate(ask, apk, &bundle, s->sk, ek, s->ad), 0);
    assert_int_equal(kl_x3dh_respond(bsk, bpk, s->spk_priv, NULL, apk, ek, sk_b, ad_b), 0);
    assert_memory_equal(s->sk, sk_b, 32);
    assert_int_equal(kl_ratchet_init_initiator(&s->a, s->sk, s->spk_pub, s->ad), 0);
    assert_int_equal(kl_ratchet_init_responder(&s->b, sk_b, s->spk_priv, s->spk_pub, ad_b), 0);
}

static void close_session(session_t *s)
{
    kl_ratchet_free(s->a);
    kl_ratchet_free(s->b);
}

static void enc(kl_ratchet_t *r, const char *text, msg_t *m)
{
    size_t len = strlen(text);
    assert_true(len <= MAXMSG);
    assert_int_equal(kl_ratchet_encrypt(r, (const uint8_t *)text, len, m->b, sizeof m->b, &m->len),
                     0);
    assert_int_equal(m->len, len + KL_RATCHET_OVERHEAD);
}

static void dec_ok(kl_ratchet_t *r, const msg_t *m, const char *want)
{
    uint8_t pt[MAXMSG];
    size_t n = 0;
    assert_int_equal(kl_ratchet_decrypt(r, m->b, m->len, pt, sizeof pt, &n), 0);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(pt, want, n);
}

static int dec(kl_ratchet_t *r, const msg_t *m)
{
    uint8_t pt[MAXMSG];
    size_t n = 0;
    return kl_ratchet_decrypt(r, m->b, m->len, pt, sizeof pt, &n);
}

typedef struct snap {
    uint8_t *p;
    size_t len;
} snap_t;

static snap_t snapshot(const kl_ratchet_t *r)
{
    snap_t s;
    assert_int_equal(kl_ratchet_serialize(r, &s.p, &s.len), 0);
    return s;
}

static void assert_unchanged(const kl_ratchet_t *r, snap_t *before)
{
    snap_t now = snapshot(r);
    assert_int_equal(now.len, before->len);
    assert_memory_equal(now.p, before->p, now.len);
    kl_free_wipe(now.p, now.len);
}

static void snap_free(snap_t *s)
{
    kl_free_wipe(s->p, s->len);
}

static void test_conversation_with_dh_turns(void **state)
{
    (void)state;
    session_t s;
    msg_t m;
    char text[64];
    uint8_t last_a[32] = {0}, last_b[32] = {0};

    open_session(&s);
    for (int turn = 0; turn < 6; turn++) {
        for (int i = 0; i < 3; i++) {
            snprintf(text, sizeof text, "alice turn %d msg %d", turn, i);
            enc(s.a, text, &m);
            /* Each turn brings a new ratchet key, constant within the turn. */
            if (i == 0)
                assert_memory_not_equal(m.b, last_a, 32);
            memcpy(last_a, m.b, 32);
            dec_ok(s.b, &m, text);
        }
        for (int i = 0; i < 2; i++) {
            snprintf(text, sizeof text, "bob turn %d msg %d", turn, i);
            enc(s.b, text, &m);
            if (i == 0)
                assert_memory_not_equal(m.b, last_b, 32);
            memcpy(last_b, m.b, 32);
            dec_ok(s.a, &m, text);
        }
    }
    close_session(&s);
}

static void test_responder_cannot_send_first(void **state)
{
    (void)state;
    session_t s;
    uint8_t out[64];
    size_t n;
    open_session(&s);
    assert_int_equal(kl_ratchet_encrypt(s.b, (const uint8_t *)"x", 1, out, sizeof out, &n),
                     KL_ESTATE);
    close_session(&s);
}

/* The key and AD layout of the header, recomputed by hand for Alice's first
 * message: Bob's SPK is the first receiving ratchet key. */
static void test_first_message_follows_documented_kdfs(void **state)
{
    (void)state;
    session_t s;
    msg_t m;
    uint8_t dh[32], okm[64], mk[32], keys[56], ad[KL_X3DH_AD + KL_RATCHET_HEADER], pt[16];
    static const uint8_t one = 1, zeros[32] = {0};

    open_session(&s);
    enc(s.a, "hello bob", &m);
    assert_int_equal(kl_dh(s.spk_priv, m.b, dh), 0);
    assert_int_equal(kl_hkdf_sha256(s.sk, 32, dh, 32, (const uint8_t *)"kollega-ratchet-v1", 18,
                                    okm, 64),
                     0);
    /* MK = HMAC-SHA256(CK, 0x01), computed as HKDF-extract's HMAC(salt=CK, ikm=0x01). */
    kl_hkdf_sha256_extract(okm + 32, 32, &one, 1, mk);
    assert_int_equal(
        kl_hkdf_sha256(zeros, 32, mk, 32, (const uint8_t *)"kollega-msg-v1", 14, keys, 56), 0);
    assert_memory_equal(m.b + 32, "\0\0\0\0\0\0\0\0", 8); /* PN = 0, N = 0 */
    memcpy(ad, s.ad, KL_X3DH_AD);
    memcpy(ad + KL_X3DH_AD, m.b, KL_RATCHET_HEADER);
    assert_int_equal(kl_aead_open(keys, keys + 32, ad, sizeof ad, m.b + KL_RATCHET_HEADER,
                                  m.len - KL_RATCHET_HEADER, pt),
                     0);
    assert_memory_equal(pt, "hello bob", 9);
    close_session(&s);
}

static void test_out_of_order_within_chain(void **state)
{
    (void)state;
    session_t s;
    msg_t m[5];
    static const char *texts[5] = {"m0", "m1", "m2", "m3", "m4"};
    static const int order[5] = {4, 2, 0, 3, 1};

    open_session(&s);
    for (int i = 0; i < 5; i++)
        enc(s.a, texts[i], &m[i]);
    for (int i = 0; i < 5; i++)
        dec_ok(s.b, &m[order[i]], texts[order[i]]);
    /* And the conversation continues normally. */
    enc(s.b, "reply", &m[0]);
    dec_ok(s.a, &m[0], "reply");
    close_session(&s);
}

static void test_out_of_order_across_chains(void **state)
{
    (void)state;
    session_t s;
    msg_t a[3], b0, a3, b1, a4;

    open_session(&s);
    enc(s.a, "a0", &a[0]);
    enc(s.a, "a1", &a[1]);
    enc(s.a, "a2", &a[2]);
    dec_ok(s.b, &a[0], "a0");
    enc(s.b, "b0", &b0);
    enc(s.b, "b1", &b1);
    dec_ok(s.a, &b0, "b0");
    enc(s.a, "a3", &a3); /* new chain, PN = 3 */
    assert_memory_equal(a3.b + 32, "\0\0\0\3\0\0\0\0", 8);
    /* Bob gets the new chain first: a1 and a2 are kept as skipped keys. */
    dec_ok(s.b, &a3, "a3");
    dec_ok(s.b, &a[2], "a2");
    dec_ok(s.b, &a[1], "a1");
    /* Alice gets b1 late, after her own turn. */
    enc(s.b, "b2", &b0);
    dec_ok(s.a, &b0, "b2");
    dec_ok(s.a, &b1, "b1");
    enc(s.a, "a4", &a4);
    dec_ok(s.b, &a4, "a4");
    close_session(&s);
}

static void test_replay_rejected_state_unchanged(void **state)
{
    (void)state;
    session_t s;
    msg_t m0, m1, m2;
    snap_t before;

    open_session(&s);
    enc(s.a, "m0", &m0);
    enc(s.a, "m1", &m1);
    enc(s.a, "m2", &m2);
    dec_ok(s.b, &m0, "m0");
    dec_ok(s.b, &m2, "m2"); /* m1's key is now a skipped key */

    before = snapshot(s.b);
    assert_int_equal(dec(s.b, &m0), KL_ECRYPTO);
    assert_unchanged(s.b, &before);
    assert_int_equal(dec(s.b, &m2), KL_ECRYPTO);
    assert_unchanged(s.b, &before);
    snap_free(&before);

    dec_ok(s.b, &m1, "m1");
    /* Replaying a message read through a skipped key: the key is gone. */
    before = snapshot(s.b);
    assert_int_equal(dec(s.b, &m1), KL_ECRYPTO);
    assert_unchanged(s.b, &before);
    snap_free(&before);

    /* A replay of the first message of an old chain after a DH turn. */
    enc(s.b, "b0", &m1);
    dec_ok(s.a, &m1, "b0");
    enc(s.a, "a-next", &m1);
    dec_ok(s.b, &m1, "a-next");
    before = snapshot(s.b);
    assert_int_equal(dec(s.b, &m0), KL_ECRYPTO);
    assert_unchanged(s.b, &before);
    snap_free(&before);
    close_session(&s);
}

/* Flip every bit of m (header and ciphertext): each variant is rejected, the
 * state stays identical, and the genuine message still decrypts. */
static void flip_every_bit(kl_ratchet_t *r, msg_t *m, const char *want)
{
    snap_t before = snapshot(r);
    for (size_t i = 0; i < m->len * 8; i++) {
        m->b[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_not_equal(dec(r, m), 0);
        assert_unchanged(r, &before);
        m->b[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    snap_free(&before);
    dec_ok(r, m, want);
}

static void test_every_flipped_bit_rejected(void **state)
{
    (void)state;
    session_t s;
    msg_t m0, m1, m2, b0, a3;

    open_session(&s);
    /* First message: every variant would trigger Bob's first DH step. */
    enc(s.a, "the first message", &m0);
    flip_every_bit(s.b, &m0, "the first message");

    /* Mid-chain with a gap: variants would stage skipped keys. */
    enc(s.a, "m1", &m1);
    enc(s.a, "m2 after a gap", &m2);
    flip_every_bit(s.b, &m2, "m2 after a gap");
    /* Read through the stored skipped key. */
    flip_every_bit(s.b, &m1, "m1");

    /* After a turn, a message that opens a new chain and skips keys in
     * both the old chain (via PN) and the new one. */
    enc(s.a, "old chain lost", &m2);
    enc(s.b, "b0", &b0);
    dec_ok(s.a, &b0, "b0");
    enc(s.a, "a3 lost", &m0);
    enc(s.a, "a4 lost", &m1);
    enc(s.a, "a5", &a3);
    assert_memory_equal(a3.b + 32, "\0\0\0\4\0\0\0\2", 8);
    flip_every_bit(s.b, &a3, "a5");
    dec_ok(s.b, &m1, "a4 lost");
    dec_ok(s.b, &m0, "a3 lost");
    dec_ok(s.b, &m2, "old chain lost");
    close_session(&s);
}

static void test_skip_over_bound_rejected(void **state)
{
    (void)state;
    session_t s;
    msg_t m, at_bound, over_bound, b0, c0;
    snap_t before;

    open_session(&s);
    /* N = MAX_SKIP + 1 needs MAX_SKIP + 1 skipped keys: refused. N =
     * MAX_SKIP needs exactly the bound: accepted. */
    for (uint32_t i = 0; i <= KL_RATCHET_MAX_SKIP + 1; i++) {
        enc(s.a, "x", &m);
        if (i == KL_RATCHET_MAX_SKIP)
            at_bound = m;
        if (i == KL_RATCHET_MAX_SKIP + 1)
            over_bound = m;
    }
    before = snapshot(s.b);
    assert_int_equal(dec(s.b, &over_bound), KL_ELIMIT);
    assert_unchanged(s.b, &before);
    snap_free(&before);
    dec_ok(s.b, &at_bound, "x");
    dec_ok(s.b, &over_bound, "x");

    /* The same bound on PN: Alice sends MAX_SKIP + 1 more messages Bob
     * never sees, then opens a new chain. */
    for (uint32_t i = 0; i <= KL_RATCHET_MAX_SKIP; i++)
        enc(s.a, "lost", &m);
    enc(s.b, "b0", &b0);
    dec_ok(s.a, &b0, "b0");
    enc(s.a, "c0", &c0);
    before = snapshot(s.b);
    assert_int_equal(dec(s.b, &c0), KL_ELIMIT);
    assert_unchanged(s.b, &before);
    snap_free(&before);
    /* The last lost message is exactly at the bound and still readable. */
    dec_ok(s.b, &m, "lost");
    dec_ok(s.b, &c0, "c0");
    close_session(&s);
}

static void test_stored_skipped_keys_capped(void **state)
{
    (void)state;
    session_t s;
    msg_t m, first_a0, first_a5, second_a0, reply;
    snap_t sn;

    open_session(&s);
    /* Chain 1: 1000 skipped keys. */
    for (uint32_t i = 0; i <= KL_RATCHET_MAX_SKIP; i++) {
        enc(s.a, "chain1", &m);
        if (i == 0)
            first_a0 = m;
        if (i == 5)
            first_a5 = m;
    }
    dec_ok(s.b, &m, "chain1");
    enc(s.b, "r", &reply);
    dec_ok(s.a, &reply, "r");
    /* Chain 2: 1000 more, the store is full. */
    for (uint32_t i = 0; i <= KL_RATCHET_MAX_SKIP; i++) {
        enc(s.a, "chain2", &m);
        if (i == 0)
            second_a0 = m;
    }
    dec_ok(s.b, &m, "chain2");
    sn = snapshot(s.b);
    assert_int_equal(sn.len, SER_FIXED + KL_RATCHET_MAX_STORED * SER_SKIPPED);
    snap_free(&sn);
    enc(s.b, "r", &reply);
    dec_ok(s.a, &reply, "r");
    /* Chain 3: 5 more keys evict the 5 oldest (chain 1, N = 0..4). */
    for (int i = 0; i <= 5; i++)
        enc(s.a, "chain3", &m);
    dec_ok(s.b, &m, "chain3");
    sn = snapshot(s.b);
    assert_int_equal(sn.len, SER_FIXED + KL_RATCHET_MAX_STORED * SER_SKIPPED);
    snap_free(&sn);
    assert_int_equal(dec(s.b, &first_a0), KL_ECRYPTO);
    dec_ok(s.b, &first_a5, "chain1");
    dec_ok(s.b, &second_a0, "chain2");
    sn = snapshot(s.b);
    assert_int_equal(sn.len, SER_FIXED + (KL_RATCHET_MAX_STORED - 2) * SER_SKIPPED);
    snap_free(&sn);
    close_session(&s);
}

static void reload(kl_ratchet_t **r)
{
    uint8_t *p, *p2;
    size_t len, len2;
    assert_int_equal(kl_ratchet_serialize(*r, &p, &len), 0);
    kl_ratchet_free(*r);
    *r = NULL;
    assert_int_equal(kl_ratchet_deserialize(r, p, len), 0);
    /* The encoding is canonical: re-serialising gives the same bytes. */
    assert_int_equal(kl_ratchet_serialize(*r, &p2, &len2), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(p, p2, len);
    kl_free_wipe(p, len);
    kl_free_wipe(p2, len2);
}

static void test_serialize_round_trip_mid_conversation(void **state)
{
    (void)state;
    session_t s;
    msg_t a0, a1, a2, b0, b1;

    open_session(&s);
    /* Fresh states serialise too (responder has no chains at all). */
    reload(&s.a);
    reload(&s.b);
    enc(s.a, "a0", &a0);
    enc(s.a, "a1", &a1);
    enc(s.a, "a2", &a2);
    dec_ok(s.b, &a2, "a2"); /* a0, a1 skipped */
    enc(s.b, "b0", &b0);
    enc(s.b, "b1", &b1);
    dec_ok(s.a, &b1, "b1");
    reload(&s.a);
    reload(&s.b);
    dec_ok(s.b, &a0, "a0");
    dec_ok(s.a, &b0, "b0");
    reload(&s.b);
    dec_ok(s.b, &a1, "a1");
    for (int turn = 0; turn < 3; turn++) {
        enc(s.a, "after reload a", &a0);
        dec_ok(s.b, &a0, "after reload a");
        reload(&s.a);
        enc(s.b, "after reload b", &b0);
        dec_ok(s.a, &b0, "after reload b");
        reload(&s.b);
    }
    close_session(&s);
}

static void test_deserialize_rejects_malformed(void **state)
{
    (void)state;
    session_t s;
    msg_t a0, a1, a2;
    uint8_t *p, *bad;
    size_t len;
    kl_ratchet_t *r = NULL;

    open_session(&s);
    enc(s.a, "a0", &a0);
    enc(s.a, "a1", &a1);
    enc(s.a, "a2", &a2);
    dec_ok(s.b, &a2, "a2");
    assert_int_equal(kl_ratchet_serialize(s.b, &p, &len), 0);
    assert_int_equal(len, SER_FIXED + 2 * SER_SKIPPED);
    bad = malloc(len + 1);
    assert_non_null(bad);

    /* Every truncation. */
    for (size_t n = 0; n < len; n++) {
        assert_int_equal(kl_ratchet_deserialize(&r, p, n), KL_EPROTO);
        assert_null(r);
    }
    /* A trailing byte. */
    memcpy(bad, p, len);
    bad[len] = 0;
    assert_int_equal(kl_ratchet_deserialize(&r, bad, len + 1), KL_EPROTO);
#define MUTATE(off, val)                                                                       \
    do {                                                                                       \
        memcpy(bad, p, len);                                                                   \
        bad[(off)] = (uint8_t)(val);                                                           \
        assert_int_equal(kl_ratchet_deserialize(&r, bad, len), KL_EPROTO);                     \
        assert_null(r);                                                                        \
    } while (0)
    MUTATE(0, 'X');                  /* magic */
    MUTATE(4, 2);                    /* version */
    MUTATE(4 + 1 + 64 + 96, 0x02);   /* flags: CKs without DHr */
    MUTATE(4 + 1 + 64 + 96, 0x0F);   /* unknown flag bit */
    MUTATE(4 + 1 + 64 + 64, p[4 + 1 + 64 + 64] ^ 1); /* DHs public does not match */
    MUTATE(SER_FIXED - 1, 3);        /* count says 3, two follow */
    MUTATE(SER_FIXED - 1, 1);        /* count says 1, two follow */
    MUTATE(SER_FIXED - 4, 0x80);     /* a huge count */
#undef MUTATE
    /* Absent fields must be zero: a fresh responder with a stray CKr byte. */
    {
        session_t t;
        uint8_t *q;
        size_t qlen;
        open_session(&t);
        assert_int_equal(kl_ratchet_serialize(t.b, &q, &qlen), 0);
        assert_int_equal(q[4 + 1 + 64 + 96], 0);
        q[4 + 1 + 64 + 96 + 1 + 64] = 1;
        assert_int_equal(kl_ratchet_deserialize(&r, q, qlen), KL_EPROTO);
        kl_free_wipe(q, qlen);
        close_session(&t);
    }
    /* Random garbage of assorted lengths, including the exact valid length. */
    for (size_t n = 0; n < 64; n++) {
        size_t glen = n == 0 ? len : (size_t)kl_random_u32() % (len + 1);
        kl_random(bad, glen);
        assert_int_equal(kl_ratchet_deserialize(&r, bad, glen), KL_EPROTO);
    }
    /* More than the store can hold, with a length that matches the count. */
    {
        size_t big = SER_FIXED + (KL_RATCHET_MAX_STORED + 1) * SER_SKIPPED;
        uint8_t *q = calloc(1, big);
        assert_non_null(q);
        memcpy(q, p, SER_FIXED);
        q[SER_FIXED - 4] = 0;
        q[SER_FIXED - 3] = 0;
        q[SER_FIXED - 2] = (uint8_t)((KL_RATCHET_MAX_STORED + 1) >> 8);
        q[SER_FIXED - 1] = (uint8_t)(KL_RATCHET_MAX_STORED + 1);
        assert_int_equal(kl_ratchet_deserialize(&r, q, big), KL_EPROTO);
        free(q);
    }
    /* The untouched bytes still load. */
    assert_int_equal(kl_ratchet_deserialize(&r, p, len), 0);
    dec_ok(r, &a0, "a0");
    kl_ratchet_free(r);
    free(bad);
    kl_free_wipe(p, len);
    close_session(&s);
}

static void test_short_and_malformed_messages_rejected(void **state)
{
    (void)state;
    session_t s;
    msg_t m;
    snap_t before;
    uint8_t pt[MAXMSG];
    size_t n;

    open_session(&s);
    enc(s.a, "hello", &m);
    dec_ok(s.b, &m, "hello");
    enc(s.a, "again", &m);
    before = snapshot(s.b);
    for (size_t len = 0; len < KL_RATCHET_OVERHEAD; len++) {
        assert_int_equal(kl_ratchet_decrypt(s.b, m.b, len, pt, sizeof pt, &n), KL_EPROTO);
        assert_unchanged(s.b, &before);
    }
    /* An output buffer one byte short. */
    assert_int_equal(kl_ratchet_decrypt(s.b, m.b, m.len, pt, 4, &n), KL_ETOOBIG);
    assert_unchanged(s.b, &before);
    /* N = 2^32 - 1 can never be reached. */
    {
        msg_t big = m;
        memset(big.b + 36, 0xFF, 4);
        assert_int_equal(dec(s.b, &big), KL_EPROTO);
        assert_unchanged(s.b, &before);
    }
    snap_free(&before);
    dec_ok(s.b, &m, "again");

    /* Encrypt refuses a short output buffer without advancing the chain. */
    before = snapshot(s.a);
    assert_int_equal(kl_ratchet_encrypt(s.a, (const uint8_t *)"abc", 3, m.b,
                                        3 + KL_RATCHET_OVERHEAD - 1, &n),
                     KL_ETOOBIG);
    assert_unchanged(s.a, &before);
    snap_free(&before);
    close_session(&s);
}

static void test_wrong_associated_data_rejected(void **state)
{
    (void)state;
    session_t s;
    msg_t m;
    kl_ratchet_t *mallory = NULL;
    uint8_t ad[KL_X3DH_AD];

    open_session(&s);
    /* Same SK and prekey, but a responder that thinks it talks to someone
     * else: the identities are bound into every message. */
    memcpy(ad, s.ad, sizeof ad);
    ad[0] ^= 1;
    assert_int_equal(kl_ratchet_init_responder(&mallory, s.sk, s.spk_priv, s.spk_pub, ad), 0);
    enc(s.a, "for bob", &m);
    assert_int_equal(dec(mallory, &m), KL_ECRYPTO);
    dec_ok(s.b, &m, "for bob");
    kl_ratchet_free(mallory);
    /* A responder key pair that does not match is refused up front. */
    assert_int_equal(kl_ratchet_init_responder(&mallory, s.sk, s.spk_priv, s.sk, s.ad), KL_EINVAL);
    assert_null(mallory);
    close_session(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversation_with_dh_turns),
        cmocka_unit_test(test_responder_cannot_send_first),
        cmocka_unit_test(test_first_message_follows_documented_kdfs),
        cmocka_unit_test(test_out_of_order_within_chain),
        cmocka_unit_test(test_out_of_order_across_chains),
        cmocka_unit_test(test_replay_rejected_state_unchanged),
        cmocka_unit_test(test_every_flipped_bit_rejected),
        cmocka_unit_test(test_skip_over_bound_rejected),
        cmocka_unit_test(test_stored_skipped_keys_capped),
        cmocka_unit_test(test_serialize_round_trip_mid_conversation),
        cmocka_unit_test(test_deserialize_rejects_malformed),
        cmocka_unit_test(test_short_and_malformed_messages_rejected),
        cmocka_unit_test(test_wrong_associated_data_rejected),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
