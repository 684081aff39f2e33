/* Sender keys (include/kollega/senderkey.h): round trips, the documented
 * KDFs and wire layout, what a member who joined late or was removed can
 * read, out-of-order delivery and its bound, replays, tampering, and the
 * serialised form. "State unchanged" is checked by comparing
 * serialisations, which cover every field of the state. */
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
#include "kollega/senderkey.h"

#define MAXPT 256
#define AD "#erfa@oslo.test|0123456789abcdef0123456789abcdef"
#define ADLEN (sizeof AD - 1)
/* Serialised: fixed part and one skipped key. */
#define SER_FIXED 146
#define SER_SKIPPED 36

typedef struct msg {
    uint8_t b[MAXPT + KL_SENDERKEY_OVERHEAD];
    size_t len;
} msg_t;

static int setup(void **state)
{
    (void)state;
    return kl_crypto_init();
}

static void enc(kl_senderkey_t *s, const char *text, msg_t *m)
{
    size_t len = strlen(text);
    assert_true(len <= MAXPT);
    assert_int_equal(kl_senderkey_encrypt(s, (const uint8_t *)AD, ADLEN, (const uint8_t *)text,
                                          len, m->b, sizeof m->b, &m->len),
                     0);
    assert_int_equal(m->len, len + KL_SENDERKEY_OVERHEAD);
}

static int dec_ad(kl_senderkey_t *s, const uint8_t *ad, size_t adlen, const msg_t *m, char *out)
{
    uint8_t pt[MAXPT + 1];
    size_t n = 0;
    int r = kl_senderkey_decrypt(s, ad, adlen, m->b, m->len, pt, sizeof pt - 1, &n);
    if (r == 0 && out != NULL) {
        memcpy(out, pt, n);
        out[n] = '\0';
    }
    return r;
}

static int dec(kl_senderkey_t *s, const msg_t *m)
{
    return dec_ad(s, (const uint8_t *)AD, ADLEN, m, NULL);
}

static void dec_ok(kl_senderkey_t *s, const msg_t *m, const char *want)
{
    char got[MAXPT + 1];
    assert_int_equal(dec_ad(s, (const uint8_t *)AD, ADLEN, m, got), 0);
    assert_string_equal(got, want);
}

static kl_senderkey_t *receiver_of(const kl_senderkey_t *sender)
{
    uint8_t dist[KL_SENDERKEY_DIST];
    kl_senderkey_t *r = NULL;
    assert_int_equal(kl_senderkey_export(sender, dist), 0);
    assert_int_equal(kl_senderkey_import(&r, dist, sizeof dist), 0);
    kl_memzero(dist, sizeof dist);
    return r;
}

typedef struct snap {
    uint8_t *p;
    size_t len;
} snap_t;

static snap_t snapshot(const kl_senderkey_t *s)
{
    snap_t n;
    assert_int_equal(kl_senderkey_serialize(s, &n.p, &n.len), 0);
    return n;
}

static void assert_unchanged(const kl_senderkey_t *s, const snap_t *before)
{
    snap_t now = snapshot(s);
    assert_int_equal(now.len, before->len);
    assert_memory_equal(now.p, before->p, now.len);
    kl_free_wipe(now.p, now.len);
}

static void test_round_trip(void **state)
{
    (void)state;
    kl_senderkey_t *s = NULL, *r;
    msg_t m;
    char text[64];
    uint32_t id = 0;

    assert_int_equal(kl_senderkey_new(&s, 0xA1B2C3D4u), 0);
    assert_int_equal(kl_senderkey_id(s), 0xA1B2C3D4u);
    r = receiver_of(s);
    assert_int_equal(kl_senderkey_id(r), 0xA1B2C3D4u);
    for (int i = 0; i < 20; i++) {
        snprintf(text, sizeof text, "message %d to the group", i);
        enc(s, text, &m);
        assert_int_equal(kl_senderkey_msg_key_id(m.b, m.len, &id), 0);
        assert_int_equal(id, 0xA1B2C3D4u);
        dec_ok(r, &m, text);
    }
    enc(s, "", &m); /* empty plaintexts work too */
    dec_ok(r, &m, "");
    /* The sender's own state does not decrypt; a receiver does not send. */
    assert_int_equal(dec(s, &m), KL_ESTATE);
    assert_int_equal(kl_senderkey_encrypt(r, NULL, 0, (const uint8_t *)"x", 1, m.b, sizeof m.b,
                                          &m.len),
                     KL_ESTATE);
    /* Too small an output buffer. */
    assert_int_equal(kl_senderkey_encrypt(s, NULL, 0, (const uint8_t *)"xy", 2, m.b,
                                          2 + KL_SENDERKEY_OVERHEAD - 1, &m.len),
                     KL_ETOOBIG);
    kl_senderkey_free(s);
    kl_senderkey_free(r);
    kl_senderkey_free(NULL);
}

/* Message 0 recomputed from the distribution record by the documented
 * KDFs, AD and signature input. */
static void test_follows_documented_construction(void **state)
{
    (void)state;
    kl_senderkey_t *s = NULL;
    uint8_t dist[KL_SENDERKEY_DIST], mk[32], keys[56], ad[ADLEN + 8], pt[16];
    uint8_t sigmsg[24 + ADLEN + 8 + 5 + 16];
    static const uint8_t one = 1, zeros[32] = {0};
    msg_t m;

    assert_int_equal(kl_senderkey_new(&s, 7), 0);
    assert_int_equal(kl_senderkey_export(s, dist), 0);
    assert_memory_equal(dist, "\0\0\0\x07\0\0\0\0", 8);
    enc(s, "hello", &m);
    assert_memory_equal(m.b, "\0\0\0\x07\0\0\0\0", 8); /* key_id 7, n 0 */
    /* MK = HMAC-SHA256(CK, 0x01) = HKDF-extract(salt = CK, ikm = 0x01). */
    kl_hkdf_sha256_extract(dist + 8, 32, &one, 1, mk);
    assert_int_equal(kl_hkdf_sha256(zeros, 32, mk, 32, (const uint8_t *)"kollega-senderkey-v1",
                                    20, keys, 56),
                     0);
    memcpy(ad, AD, ADLEN);
    memcpy(ad + ADLEN, m.b, 8);
    assert_int_equal(kl_aead_open(keys, keys + 32, ad, sizeof ad, m.b + 8, 5 + 16, pt), 0);
    assert_memory_equal(pt, "hello", 5);
    memcpy(sigmsg, "kollega-senderkey-msg-v1", 24);
    memcpy(sigmsg + 24, AD, ADLEN);
    memcpy(sigmsg + 24 + ADLEN, m.b, 8 + 5 + 16);
    assert_int_equal(kl_sign_verify(dist + 40, sigmsg, sizeof sigmsg, m.b + 8 + 5 + 16), 0);
    /* After one message the record moves on: n = 1. */
    assert_int_equal(kl_senderkey_export(s, dist), 0);
    assert_memory_equal(dist + 4, "\0\0\0\x01", 4);
    kl_senderkey_free(s);
}

/* A receiver imported at position n (a new member) cannot read earlier
 * messages, only n and later. */
static void test_new_member_cannot_read_earlier(void **state)
{
    (void)state;
    kl_senderkey_t *s = NULL, *old, *late;
    msg_t before[3], after;
    char text[32];

    assert_int_equal(kl_senderkey_new(&s, 1), 0);
    old = receiver_of(s);
    for (int i = 0; i < 3; i++) {
        snprintf(text, sizeof text, "before %d", i);
        enc(s, text, &before[i]);
        dec_ok(old, &before[i], text);
    }
    late = receiver_of(s);
    snap_t sn = snapshot(late);
    for (int i = 0; i < 3; i++)
        assert_int_equal(dec(late, &before[i]), KL_ECRYPTO);
    assert_unchanged(late, &sn);
    kl_free_wipe(sn.p, sn.len);
    enc(s, "after", &after);
    dec_ok(late, &after, "after");
    dec_ok(old, &after, "after");
    kl_senderkey_free(s);
    kl_senderkey_free(old);
    kl_senderkey_free(late);
}

/* After a removal the sender makes a new key and gives it to the others
 * only: the removed member's state reads nothing new, whether the new key
 * has a new key_id or (a careless client) the same one. */
static void test_removed_member_cannot_read_after_rotation(void **state)
{
    (void)state;
    kl_senderkey_t *s1 = NULL, *s2 = NULL, *s3 = NULL, *removed, *stays, *stays2;
    msg_t m;
    uint32_t id;

    assert_int_equal(kl_senderkey_new(&s1, 10), 0);
    removed = receiver_of(s1);
    stays = receiver_of(s1);
    enc(s1, "all of us", &m);
    dec_ok(removed, &m, "all of us");
    dec_ok(stays, &m, "all of us");

    assert_int_equal(kl_senderkey_new(&s2, 11), 0);
    stays2 = receiver_of(s2);
    enc(s2, "without you", &m);
    assert_int_equal(kl_senderkey_msg_key_id(m.b, m.len, &id), 0);
    assert_int_equal(id, 11);
    snap_t sn = snapshot(removed);
    assert_int_equal(dec(removed, &m), KL_ENOTFOUND);
    assert_int_equal(dec(stays, &m), KL_ENOTFOUND);
    dec_ok(stays2, &m, "without you");
    /* The same key_id does not help: another chain, another signing key. */
    assert_int_equal(kl_senderkey_new(&s3, 10), 0);
    enc(s3, "still without you", &m);
    assert_int_equal(dec(removed, &m), KL_ECRYPTO);
    assert_unchanged(removed, &sn);
    kl_free_wipe(sn.p, sn.len);
    kl_senderkey_free(s1);
    kl_senderkey_free(s2);
    kl_senderkey_free(s3);
    kl_senderkey_free(removed);
    kl_senderkey_free(stays);
    kl_senderkey_free(stays2);
}

static void test_out_of_order_and_replay(void **state)
{
    (void)state;
    kl_senderkey_t *s = NULL, *r;
    msg_t m[6];
    char text[16];

    assert_int_equal(kl_senderkey_new(&s, 2), 0);
    r = receiver_of(s);
    for (int i = 0; i < 6; i++) {
        snprintf(text, sizeof text, "m%d", i);
        enc(s, text, &m[i]);
    }
    dec_ok(r, &m[4], "m4");
    dec_ok(r, &m[1], "m1");
    dec_ok(r, &m[5], "m5");
    dec_ok(r, &m[0], "m0");
    /* Replays, from the skipped store and from the chain, change nothing. */
    snap_t sn = snapshot(r);
    assert_int_equal(dec(r, &m[4]), KL_ECRYPTO);
    assert_int_equal(dec(r, &m[1]), KL_ECRYPTO);
    assert_int_equal(dec(r, &m[5]), KL_ECRYPTO);
    assert_unchanged(r, &sn);
    kl_free_wipe(sn.p, sn.len);
    dec_ok(r, &m[3], "m3");
    dec_ok(r, &m[2], "m2");
    assert_int_equal(dec(r, &m[2]), KL_ECRYPTO);
    kl_senderkey_free(s);
    kl_senderkey_free(r);
}

static void test_skip_bound(void **state)
{
    (void)state;
    kl_senderkey_t *s = NULL, *r, *r2;
    msg_t first, second, far, farther, farthest;
    uint8_t *ser;
    size_t len;

    assert_int_equal(kl_senderkey_new(&s, 3), 0);
    r = receiver_of(s);
    r2 = receiver_of(s);
    enc(s, "first", &first);
    enc(s, "second", &second);
    for (int i = 2; i <= KL_SENDERKEY_MAX_SKIP; i++)
        enc(s, "x", &far); /* ends as message MAX_SKIP */
    enc(s, "y", &farther);  /* MAX_SKIP + 1 */
    enc(s, "z", &farthest); /* MAX_SKIP + 2 */

    /* Skipping MAX_SKIP + 1 keys is refused, MAX_SKIP is fine. */
    snap_t sn = snapshot(r);
    assert_int_equal(dec(r, &farther), KL_ELIMIT);
    assert_unchanged(r, &sn);
    kl_free_wipe(sn.p, sn.len);
    dec_ok(r, &far, "x");
    dec_ok(r, &first, "first"); /* kept among the skipped keys */
    dec_ok(r, &farther, "y");

    /* The store holds at most MAX_SKIP keys: one more skip evicts the
     * oldest (message 0). */
    dec_ok(r2, &far, "x");
    dec_ok(r2, &farthest, "z");
    assert_int_equal(kl_senderkey_serialize(r2, &ser, &len), 0);
    assert_int_equal(len, SER_FIXED + KL_SENDERKEY_MAX_SKIP * SER_SKIPPED);
    kl_free_wipe(ser, len);
    assert_int_equal(dec(r2, &first), KL_ECRYPTO);
    dec_ok(r2, &second, "second");
    dec_ok(r2, &farther, "y");
    kl_senderkey_free(r);
    kl_senderkey_free(r2);
    kl_senderkey_free(s);
}

/* Every flipped bit of a message is refused: the signature covers all of
 * it. The AEAD is checked separately by re-signing a tampered body with
 * the sender's key, which only this test can do (through serialisation). */
static void test_every_flipped_bit_rejected(void **state)
{
    (void)state;
    kl_senderkey_t *s = NULL, *r;
    msg_t m;

    assert_int_equal(kl_senderkey_new(&s, 4), 0);
    r = receiver_of(s);
    enc(s, "flip me if you can", &m);
    snap_t sn = snapshot(r);
    for (size_t bit = 0; bit < m.len * 8; bit++) {
        m.b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = dec(r, &m);
        /* Flips in key_id fail the key_id lookup; all others authenticate. */
        assert_int_equal(rc, bit < 32 ? KL_ENOTFOUND : KL_ECRYPTO);
        m.b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_unchanged(r, &sn);
    kl_free_wipe(sn.p, sn.len);

    /* A validly signed message whose ciphertext or counter was changed
     * before signing: the AEAD (key and AD) must refuse it. The sender's
     * serialised state carries its signing secret (seed || pk at 78). */
    uint8_t *ser;
    size_t len;
    assert_int_equal(kl_senderkey_serialize(s, &ser, &len), 0);
    sn = snapshot(r);
    const uint8_t *sign_sk = ser + 4 + 1 + 1 + 4 + 4 + 32 + 32;
    for (int which = 0; which < 3; which++) {
        msg_t t = m;
        size_t body = t.len - 64;
        uint8_t sigmsg[24 + ADLEN + sizeof t.b];
        if (which == 0)
            t.b[8] ^= 1;  /* ciphertext */
        else if (which == 1)
            t.b[body - 1] ^= 1; /* tag */
        else
            t.b[7] ^= 1;  /* n: another message key, another AD */
        memcpy(sigmsg, "kollega-senderkey-msg-v1", 24);
        memcpy(sigmsg + 24, AD, ADLEN);
        memcpy(sigmsg + 24 + ADLEN, t.b, body);
        assert_int_equal(kl_sign(sign_sk, sigmsg, 24 + ADLEN + body, t.b + body), 0);
        assert_int_equal(dec(r, &t), KL_ECRYPTO);
    }
    assert_unchanged(r, &sn);
    kl_free_wipe(sn.p, sn.len);
    kl_free_wipe(ser, len);
    dec_ok(r, &m, "flip me if you can");
    kl_senderkey_free(s);
    kl_senderkey_free(r);
}

static void test_wrong_ad_and_short_messages(void **state)
{
    (void)state;
    kl_senderkey_t *s = NULL, *r;
    msg_t m;
    uint32_t id;
    static const char other[] = "#other@oslo.test|0123456789abcdef0123456789abcdef";

    assert_int_equal(kl_senderkey_new(&s, 5), 0);
    r = receiver_of(s);
    enc(s, "for erfa only", &m);
    assert_int_equal(dec_ad(r, (const uint8_t *)other, sizeof other - 1, &m, NULL), KL_ECRYPTO);
    assert_int_equal(dec_ad(r, NULL, 0, &m, NULL), KL_ECRYPTO);
    assert_int_equal(dec_ad(r, (const uint8_t *)AD, ADLEN - 1, &m, NULL), KL_ECRYPTO);
    for (size_t n = 0; n < KL_SENDERKEY_OVERHEAD; n++) {
        msg_t t = m;
        t.len = n;
        assert_int_equal(dec(r, &t), KL_EPROTO);
        assert_int_equal(kl_senderkey_msg_key_id(m.b, n, &id), KL_EPROTO);
    }
    msg_t t = m;
    t.len = m.len - 1;
    assert_int_equal(dec(r, &t), KL_ECRYPTO);
    /* An output buffer too small. */
    uint8_t small[4];
    size_t n;
    assert_int_equal(kl_senderkey_decrypt(r, (const uint8_t *)AD, ADLEN, m.b, m.len, small,
                                          sizeof small, &n),
                     KL_ETOOBIG);
    dec_ok(r, &m, "for erfa only");
    kl_senderkey_free(s);
    kl_senderkey_free(r);
}

static void test_serialize_round_trip(void **state)
{
    (void)state;
    kl_senderkey_t *s = NULL, *r, *s2 = NULL, *r2 = NULL;
    msg_t m[4];
    uint8_t *p;
    size_t len;

    assert_int_equal(kl_senderkey_new(&s, 6), 0);
    r = receiver_of(s);
    for (int i = 0; i < 4; i++)
        enc(s, "hi", &m[i]);
    dec_ok(r, &m[3], "hi"); /* m0..m2 skipped and kept */
    assert_int_equal(kl_senderkey_serialize(r, &p, &len), 0);
    assert_int_equal(len, SER_FIXED + 3 * SER_SKIPPED);
    assert_int_equal(kl_senderkey_deserialize(&r2, p, len), 0);
    kl_free_wipe(p, len);
    assert_int_equal(kl_senderkey_serialize(s, &p, &len), 0);
    assert_int_equal(len, SER_FIXED);
    assert_int_equal(kl_senderkey_deserialize(&s2, p, len), 0);
    kl_free_wipe(p, len);
    /* The restored receiver reads the skipped ones and what comes next
     * from the restored sender; the original reads the same. */
    dec_ok(r2, &m[1], "hi");
    msg_t next;
    enc(s2, "from the restored sender", &next);
    dec_ok(r2, &next, "from the restored sender");
    dec_ok(r, &next, "from the restored sender");
    assert_int_equal(kl_senderkey_id(s2), 6);
    kl_senderkey_free(s);
    kl_senderkey_free(s2);
    kl_senderkey_free(r);
    kl_senderkey_free(r2);
}

static void test_deserialize_and_import_reject_garbage(void **state)
{
    (void)state;
    kl_senderkey_t *s = NULL, *r, *x = NULL;
    msg_t m[3];
    uint8_t *own, *recv, *buf, dist[KL_SENDERKEY_DIST];
    size_t own_len, recv_len;

    assert_int_equal(kl_senderkey_new(&s, 8), 0);
    r = receiver_of(s);
    for (int i = 0; i < 3; i++)
        enc(s, "m", &m[i]);
    dec_ok(r, &m[2], "m");
    assert_int_equal(kl_senderkey_serialize(s, &own, &own_len), 0);
    assert_int_equal(kl_senderkey_serialize(r, &recv, &recv_len), 0);
    buf = malloc(recv_len + 64);
    assert_non_null(buf);

#define REJECT(src, n, edit)                                                                 \
    do {                                                                                     \
        memcpy(buf, src, n);                                                                 \
        size_t len_ = n;                                                                     \
        edit;                                                                                \
        assert_int_equal(kl_senderkey_deserialize(&x, buf, len_), KL_EPROTO);                \
        assert_null(x);                                                                      \
    } while (0)
    /* Every truncation, and one byte too many. */
    for (size_t n = 0; n < recv_len; n++)
        REJECT(recv, n, (void)0);
    REJECT(recv, recv_len, (buf[recv_len] = 0, len_++));
    REJECT(own, own_len, buf[0] ^= 1);         /* magic */
    REJECT(own, own_len, buf[4] = 2);          /* version */
    REJECT(own, own_len, buf[5] = 0x03);       /* unknown flag */
    REJECT(own, own_len, buf[5] = 0x00);       /* own secret in a receiver */
    REJECT(own, own_len, buf[14 + 32] ^= 1);   /* public key != secret's */
    REJECT(own, own_len, buf[78 + 63] ^= 1);   /* secret's pk half */
    REJECT(own, own_len, buf[78] ^= 1);        /* seed: another key pair */
    REJECT(recv, recv_len, buf[5] = 0x01);     /* receiver claims own */
    REJECT(recv, recv_len, buf[78] = 1);       /* receiver with a secret */
    REJECT(recv, recv_len, memset(buf + 46, 0, 32)); /* invalid signing point */
    /* The receiver skipped messages 0 and 1: count 2, n 3. */
    assert_int_equal(recv_len, SER_FIXED + 2 * SER_SKIPPED);
    REJECT(recv, recv_len, buf[145] = 3);      /* count != remaining */
    REJECT(recv, recv_len, buf[145] = 1);
    REJECT(recv, recv_len, memset(buf + 142, 0xff, 4));
    /* Skipped keys must be increasing and below n. */
    REJECT(recv, recv_len, buf[146 + 3] = 5);
    REJECT(recv, recv_len, buf[146 + SER_SKIPPED + 3] = 0);
    REJECT(recv, recv_len, buf[146 + SER_SKIPPED + 3] = 3);
    REJECT(recv, recv_len, buf[13] = 1);       /* n below the skipped keys */
    /* An own state holding skipped keys. */
    memcpy(buf, own, own_len);
    buf[145] = 1;
    memset(buf + own_len, 0, SER_SKIPPED);
    assert_int_equal(kl_senderkey_deserialize(&x, buf, own_len + SER_SKIPPED), KL_EPROTO);
#undef REJECT
    /* The unedited forms load. */
    assert_int_equal(kl_senderkey_deserialize(&x, recv, recv_len), 0);
    kl_senderkey_free(x);
    x = NULL;

    /* Import: exact length, valid signing point. */
    assert_int_equal(kl_senderkey_export(s, dist), 0);
    assert_int_equal(kl_senderkey_import(&x, dist, sizeof dist - 1), KL_EPROTO);
    assert_int_equal(kl_senderkey_import(&x, dist, sizeof dist), 0);
    kl_senderkey_free(x);
    x = NULL;
    memset(dist + 40, 0, 32);
    assert_int_equal(kl_senderkey_import(&x, dist, sizeof dist), KL_EPROTO);
    dist[40] = 1; /* the identity point: small order */
    assert_int_equal(kl_senderkey_import(&x, dist, sizeof dist), KL_EPROTO);
    assert_null(x);

    kl_free_wipe(own, own_len);
    kl_free_wipe(recv, recv_len);
    kl_free_wipe(buf, recv_len + 64);
    kl_senderkey_free(s);
    kl_senderkey_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_follows_documented_construction),
        cmocka_unit_test(test_new_member_cannot_read_earlier),
        cmocka_unit_test(test_removed_member_cannot_read_after_rotation),
        cmocka_unit_test(test_out_of_order_and_replay),
        cmocka_unit_test(test_skip_bound),
        cmocka_unit_test(test_every_flipped_bit_rejected),
        cmocka_unit_test(test_wrong_ad_and_short_messages),
        cmocka_unit_test(test_serialize_round_trip),
        cmocka_unit_test(test_deserialize_and_import_reject_garbage),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
