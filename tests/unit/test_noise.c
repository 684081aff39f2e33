/* Noise: every vector of noise-vectors.json byte for byte, then the failure
 * behaviour (tampering, replay, wrong keys, out-of-turn calls, lengths). */
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
#include "kollega/noise.h"
#include "vectors.h"

#define BUF 1024

/* Keys of one side of a vector, decoded. */
typedef struct side {
    uint8_t prologue[256];
    size_t prologue_len;
    uint8_t s[32], rs[32], e[32], psk[32];
    int has_s, has_rs, has_psk;
} side_t;

typedef struct vcase {
    kl_noise_pattern_t pattern;
    int psk0;
    side_t init, resp;
    uint8_t hh[64];
} vcase_t;

static int setup(void **state)
{
    kl_vec_t *doc = kl_vec_load("noise-vectors.json");
    if (doc == NULL || kl_vec_len(kl_vec_get(doc, "vectors")) == 0 || kl_crypto_init() != 0) {
        kl_vec_free(doc);
        return -1;
    }
    *state = doc;
    return 0;
}

static int teardown(void **state)
{
    kl_vec_free(*state);
    return 0;
}

static void parse_name(const char *name, kl_noise_pattern_t *p, int *psk0)
{
    static const struct {
        const char *pfx;
        kl_noise_pattern_t p;
    } map[] = {{"NN", KL_NOISE_NN}, {"NK", KL_NOISE_NK}, {"KK", KL_NOISE_KK},
               {"IK", KL_NOISE_IK}, {"XX", KL_NOISE_XX}};
    const char *tail = NULL;
    assert_non_null(name);
    assert_int_equal(strncmp(name, "Noise_", 6), 0);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strncmp(name + 6, map[i].pfx, 2) == 0) {
            *p = map[i].p;
            tail = name + 8;
        }
    }
    assert_non_null(tail);
    *psk0 = strncmp(tail, "psk0", 4) == 0;
    if (*psk0)
        tail += 4;
    assert_string_equal(tail, "_25519_ChaChaPoly_BLAKE2b");
}

static void load_side(const kl_vec_t *v, const char *who, side_t *sd)
{
    char key[64];
    size_t n = 0;
    uint8_t *b;

    memset(sd, 0, sizeof *sd);
    snprintf(key, sizeof key, "%s_prologue", who);
    b = kl_vec_hex(v, key, &n);
    assert_non_null(b);
    assert_true(n <= sizeof sd->prologue);
    memcpy(sd->prologue, b, n);
    sd->prologue_len = n;
    free(b);
    snprintf(key, sizeof key, "%s_ephemeral", who);
    assert_int_equal(kl_vec_hex_exact(v, key, sd->e, 32), 0);
    snprintf(key, sizeof key, "%s_static", who);
    if (kl_vec_get(v, key)) {
        assert_int_equal(kl_vec_hex_exact(v, key, sd->s, 32), 0);
        sd->has_s = 1;
    }
    snprintf(key, sizeof key, "%s_remote_static", who);
    if (kl_vec_get(v, key)) {
        assert_int_equal(kl_vec_hex_exact(v, key, sd->rs, 32), 0);
        sd->has_rs = 1;
    }
    snprintf(key, sizeof key, "%s_psks", who);
    const kl_vec_t *psks = kl_vec_get(v, key);
    if (psks) {
        size_t pl = 0;
        assert_int_equal(kl_vec_len(psks), 1);
        b = kl_vec_hexval(kl_vec_at(psks, 0), &pl);
        assert_non_null(b);
        assert_int_equal(pl, 32);
        memcpy(sd->psk, b, 32);
        free(b);
        sd->has_psk = 1;
    }
}

static void load_case(const kl_vec_t *v, vcase_t *c)
{
    memset(c, 0, sizeof *c);
    parse_name(kl_vec_str(v, "protocol_name"), &c->pattern, &c->psk0);
    load_side(v, "init", &c->init);
    load_side(v, "resp", &c->resp);
    assert_int_equal(c->init.has_psk, c->psk0);
    assert_int_equal(c->resp.has_psk, c->psk0);
    assert_int_equal(kl_vec_hex_exact(v, "handshake_hash", c->hh, 64), 0);
}

static kl_noise_hs_t *make_hs(const vcase_t *c, int initiator, int fixed_e)
{
    const side_t *sd = initiator ? &c->init : &c->resp;
    kl_noise_config_t cfg = {
        .pattern = c->pattern,
        .initiator = initiator,
        .psk0 = c->psk0,
        .prologue = sd->prologue,
        .prologue_len = sd->prologue_len,
        .s = sd->has_s ? sd->s : NULL,
        .rs = sd->has_rs ? sd->rs : NULL,
        .e = fixed_e ? sd->e : NULL,
        .psk = sd->has_psk ? sd->psk : NULL,
    };
    kl_noise_hs_t *hs = NULL;
    assert_int_equal(kl_noise_hs_new(&hs, &cfg), 0);
    assert_non_null(hs);
    return hs;
}

static uint8_t *msg_hex(const kl_vec_t *v, size_t i, const char *key, size_t *n)
{
    uint8_t *b = kl_vec_hex(kl_vec_at(kl_vec_get(v, "messages"), i), key, n);
    assert_non_null(b);
    return b;
}

/* Run one vector: handshake messages until both sides are done, then the
 * remaining messages as transport messages, alternating initiator first
 * (cacophony's convention). Every ciphertext must equal the vector's. */
static void run_vector(const kl_vec_t *v)
{
    vcase_t c;
    kl_noise_transport_t ti, tr;
    uint8_t out[BUF], pt[BUF], rs[32], pub[32];
    size_t outlen, ptlen, nmsg = kl_vec_len(kl_vec_get(v, "messages"));

    load_case(v, &c);
    kl_noise_hs_t *hi = make_hs(&c, 1, 1), *hr = make_hs(&c, 0, 1);
    size_t i = 0;
    for (; !kl_noise_hs_done(hi); i++) {
        assert_true(i < nmsg);
        int init_sends = i % 2 == 0;
        kl_noise_hs_t *snd = init_sends ? hi : hr, *rcv = init_sends ? hr : hi;
        size_t pl, cl;
        uint8_t *p = msg_hex(v, i, "payload", &pl), *ct = msg_hex(v, i, "ciphertext", &cl);
        assert_true(kl_noise_hs_my_turn(snd));
        assert_false(kl_noise_hs_my_turn(rcv));
        assert_int_equal(kl_noise_hs_write(snd, p, pl, out, sizeof out, &outlen), 0);
        assert_int_equal(outlen, cl);
        assert_memory_equal(out, ct, cl);
        assert_int_equal(kl_noise_hs_read(rcv, out, outlen, pt, sizeof pt, &ptlen), 0);
        assert_int_equal(ptlen, pl);
        if (pl > 0)
            assert_memory_equal(pt, p, pl);
        free(p);
        free(ct);
    }
    assert_true(kl_noise_hs_done(hr));
    assert_false(kl_noise_hs_my_turn(hi));
    assert_false(kl_noise_hs_my_turn(hr));

    /* Each side knows the other's static key, if the other has one. */
    if (c.resp.has_s) {
        assert_int_equal(kl_noise_hs_remote_static(hi, rs), 0);
        assert_int_equal(kl_x_public(c.resp.s, pub), 0);
        assert_memory_equal(rs, pub, 32);
    }
    if (c.init.has_s) {
        assert_int_equal(kl_noise_hs_remote_static(hr, rs), 0);
        assert_int_equal(kl_x_public(c.init.s, pub), 0);
        assert_memory_equal(rs, pub, 32);
    } else {
        assert_int_equal(kl_noise_hs_remote_static(hr, rs), KL_ESTATE);
    }

    assert_int_equal(kl_noise_hs_split(hi, &ti), 0);
    assert_int_equal(kl_noise_hs_split(hr, &tr), 0);
    assert_memory_equal(ti.hh, c.hh, 64);
    assert_memory_equal(tr.hh, c.hh, 64);
    assert_memory_equal(ti.send.k, tr.recv.k, 32);
    assert_memory_equal(ti.recv.k, tr.send.k, 32);

    for (; i < nmsg; i++) {
        int init_sends = i % 2 == 0;
        kl_noise_transport_t *snd = init_sends ? &ti : &tr, *rcv = init_sends ? &tr : &ti;
        size_t pl, cl;
        uint8_t *p = msg_hex(v, i, "payload", &pl), *ct = msg_hex(v, i, "ciphertext", &cl);
        assert_int_equal(kl_noise_encrypt(snd, p, pl, out, sizeof out, &outlen), 0);
        assert_int_equal(outlen, cl);
        assert_memory_equal(out, ct, cl);
        assert_int_equal(kl_noise_decrypt(rcv, out, outlen, pt, sizeof pt, &ptlen), 0);
        assert_int_equal(ptlen, pl);
        assert_memory_equal(pt, p, pl);
        free(p);
        free(ct);
    }
    kl_noise_hs_free(hi);
    kl_noise_hs_free(hr);
    kl_noise_transport_wipe(&ti);
    kl_noise_transport_wipe(&tr);
}

static void test_all_vectors(void **state)
{
    const kl_vec_t *vs = kl_vec_get(*state, "vectors");
    size_t n = kl_vec_len(vs);
    assert_true(n >= 7);
    for (size_t k = 0; k < n; k++)
        run_vector(kl_vec_at(vs, k));
}

/* The vectors cover exactly the patterns Kollega advertises. */
static void test_vectors_cover_every_pattern(void **state)
{
    const kl_vec_t *vs = kl_vec_get(*state, "vectors");
    int seen[5][2] = {{0}};
    for (size_t k = 0; k < kl_vec_len(vs); k++) {
        kl_noise_pattern_t p;
        int psk0;
        parse_name(kl_vec_str(kl_vec_at(vs, k), "protocol_name"), &p, &psk0);
        seen[p][psk0] = 1;
    }
    for (int p = 0; p < 5; p++)
        assert_true(seen[p][0]);
    assert_true(seen[KL_NOISE_NK][1]);
    assert_true(seen[KL_NOISE_KK][1]);
}

/* Handshake with message `bad` bit-flipped at `bit`, fixed keys of the
 * vector, empty payloads otherwise as in the vector. Returns 1 if some read
 * (handshake or the first transport message in each direction) failed, and
 * sets *immediate if the read of the tampered message itself failed. */
static int tampered_run(const vcase_t *c, const kl_vec_t *v, size_t bad, size_t bit,
                        int *immediate)
{
    uint8_t out[BUF], pt[BUF];
    size_t outlen, ptlen;
    int failed = 0;
    kl_noise_hs_t *hi = make_hs(c, 1, 1), *hr = make_hs(c, 0, 1);
    kl_noise_transport_t ti, tr;

    *immediate = 0;
    for (size_t i = 0; !kl_noise_hs_done(hi) || !kl_noise_hs_done(hr); i++) {
        int init_sends = i % 2 == 0;
        kl_noise_hs_t *snd = init_sends ? hi : hr, *rcv = init_sends ? hr : hi;
        size_t pl;
        uint8_t *p = msg_hex(v, i, "payload", &pl);
        int r = kl_noise_hs_write(snd, p, pl, out, sizeof out, &outlen);
        free(p);
        if (r != 0) {
            /* only possible on a side a failed read already killed */
            assert_int_equal(r, KL_ESTATE);
            failed = 1;
            break;
        }
        if (i == bad) {
            assert_true(bit < outlen * 8);
            out[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        r = kl_noise_hs_read(rcv, out, outlen, pt, sizeof pt, &ptlen);
        if (r != 0) {
            assert_true(r == KL_ECRYPTO);
            assert_int_equal(kl_noise_hs_done(rcv), 0);
            assert_int_equal(kl_noise_hs_my_turn(rcv), 0);
            assert_int_equal(kl_noise_hs_write(rcv, NULL, 0, out, sizeof out, &outlen),
                             KL_ESTATE);
            *immediate = i == bad;
            failed = 1;
            break;
        }
    }
    if (!failed) {
        assert_int_equal(kl_noise_hs_split(hi, &ti), 0);
        assert_int_equal(kl_noise_hs_split(hr, &tr), 0);
        assert_int_equal(kl_noise_encrypt(&ti, (const uint8_t *)"x", 1, out, sizeof out, &outlen), 0);
        if (kl_noise_decrypt(&tr, out, outlen, pt, sizeof pt, &ptlen) != 0)
            failed = 1;
        assert_int_equal(kl_noise_encrypt(&tr, (const uint8_t *)"y", 1, out, sizeof out, &outlen), 0);
        if (kl_noise_decrypt(&ti, out, outlen, pt, sizeof pt, &ptlen) != 0)
            failed = 1;
    }
    kl_noise_hs_free(hi);
    kl_noise_hs_free(hr);
    return failed;
}

/* Flip every bit of every handshake message of every vector. A message sent
 * before any key exists (the first of NN and XX) is only caught at the next
 * authenticated step; every other message must fail right where it is read. */
static void test_tampered_handshake_rejected(void **state)
{
    const kl_vec_t *vs = kl_vec_get(*state, "vectors");
    size_t nhs[] = {[KL_NOISE_NN] = 2, [KL_NOISE_NK] = 2, [KL_NOISE_KK] = 2,
                    [KL_NOISE_IK] = 2, [KL_NOISE_XX] = 3};
    for (size_t k = 0; k < kl_vec_len(vs); k++) {
        const kl_vec_t *v = kl_vec_at(vs, k);
        vcase_t c;
        load_case(v, &c);
        for (size_t m = 0; m < nhs[c.pattern]; m++) {
            size_t pl, cl;
            uint8_t *p = msg_hex(v, m, "payload", &pl), *ct = msg_hex(v, m, "ciphertext", &cl);
            int unauthenticated = cl == pl + 32;
            free(p);
            free(ct);
            for (size_t bit = 0; bit < cl * 8; bit++) {
                int immediate;
                assert_true(tampered_run(&c, v, m, bit, &immediate));
                if (!unauthenticated)
                    assert_true(immediate);
            }
        }
    }
}

/* A fresh NK session with random ephemerals and the Kollega prologue. */
static void nk_session(kl_noise_transport_t *ti, kl_noise_transport_t *tr)
{
    uint8_t rs_pub[32], rs_priv[32], out[BUF], pt[BUF];
    size_t outlen, ptlen;
    kl_noise_hs_t *hi = NULL, *hr = NULL;
    kl_x_keypair(rs_pub, rs_priv);
    kl_noise_config_t ci = {KL_NOISE_NK, 1, 0, (const uint8_t *)KL_PROLOGUE_CLIENT,
                            strlen(KL_PROLOGUE_CLIENT), NULL, rs_pub, NULL, NULL};
    kl_noise_config_t cr = {KL_NOISE_NK, 0, 0, (const uint8_t *)KL_PROLOGUE_CLIENT,
                            strlen(KL_PROLOGUE_CLIENT), rs_priv, NULL, NULL, NULL};
    assert_int_equal(kl_noise_hs_new(&hi, &ci), 0);
    assert_int_equal(kl_noise_hs_new(&hr, &cr), 0);
    assert_int_equal(kl_noise_hs_write(hi, NULL, 0, out, sizeof out, &outlen), 0);
    assert_int_equal(outlen, 48);
    assert_int_equal(kl_noise_hs_read(hr, out, outlen, pt, sizeof pt, &ptlen), 0);
    assert_int_equal(ptlen, 0);
    assert_int_equal(kl_noise_hs_write(hr, NULL, 0, out, sizeof out, &outlen), 0);
    assert_int_equal(outlen, 48);
    assert_int_equal(kl_noise_hs_read(hi, out, outlen, pt, sizeof pt, &ptlen), 0);
    assert_int_equal(kl_noise_hs_split(hi, ti), 0);
    assert_int_equal(kl_noise_hs_split(hr, tr), 0);
    assert_memory_equal(ti->hh, tr->hh, 64);
    kl_noise_hs_free(hi);
    kl_noise_hs_free(hr);
    kl_memzero(rs_priv, sizeof rs_priv);
}

static void test_nk_random_ephemerals(void **state)
{
    (void)state;
    kl_noise_transport_t a1, b1, a2, b2;
    nk_session(&a1, &b1);
    nk_session(&a2, &b2);
    assert_memory_not_equal(a1.hh, a2.hh, 64);
    assert_memory_not_equal(a1.send.k, a2.send.k, 32);
}

static void test_tampered_transport_rejected(void **state)
{
    (void)state;
    kl_noise_transport_t ti, tr;
    uint8_t out[64], pt[64];
    size_t outlen, ptlen;
    const char *msg = "hello relay";
    nk_session(&ti, &tr);
    assert_int_equal(kl_noise_encrypt(&ti, (const uint8_t *)msg, strlen(msg), out, sizeof out,
                                      &outlen),
                     0);
    for (size_t bit = 0; bit < outlen * 8; bit++) {
        out[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(kl_noise_decrypt(&tr, out, outlen, pt, sizeof pt, &ptlen), KL_ECRYPTO);
        out[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(tr.recv.n, 0);
    }
    /* Truncations fail too. */
    for (size_t n = 16; n < outlen; n++)
        assert_int_equal(kl_noise_decrypt(&tr, out, n, pt, sizeof pt, &ptlen), KL_ECRYPTO);
    /* The nonce did not move, so the genuine message still decrypts. */
    assert_int_equal(kl_noise_decrypt(&tr, out, outlen, pt, sizeof pt, &ptlen), 0);
    assert_int_equal(ptlen, strlen(msg));
    assert_memory_equal(pt, msg, ptlen);
}

static void test_transport_replay_rejected(void **state)
{
    (void)state;
    kl_noise_transport_t ti, tr;
    uint8_t m1[64], m2[64], pt[64];
    size_t l1, l2, ptlen;
    nk_session(&ti, &tr);
    assert_int_equal(kl_noise_encrypt(&ti, (const uint8_t *)"one", 3, m1, sizeof m1, &l1), 0);
    assert_int_equal(kl_noise_encrypt(&ti, (const uint8_t *)"two", 3, m2, sizeof m2, &l2), 0);
    assert_int_equal(kl_noise_decrypt(&tr, m1, l1, pt, sizeof pt, &ptlen), 0);
    assert_int_equal(kl_noise_decrypt(&tr, m1, l1, pt, sizeof pt, &ptlen), KL_ECRYPTO);
    assert_int_equal(kl_noise_decrypt(&tr, m2, l2, pt, sizeof pt, &ptlen), 0);
    assert_memory_equal(pt, "two", 3);
    /* Reordering is rejected as well, and a message can't be reflected. */
    assert_int_equal(kl_noise_encrypt(&ti, (const uint8_t *)"3", 1, m1, sizeof m1, &l1), 0);
    assert_int_equal(kl_noise_encrypt(&ti, (const uint8_t *)"4", 1, m2, sizeof m2, &l2), 0);
    assert_int_equal(kl_noise_decrypt(&tr, m2, l2, pt, sizeof pt, &ptlen), KL_ECRYPTO);
    assert_int_equal(kl_noise_decrypt(&ti, m1, l1, pt, sizeof pt, &ptlen), KL_ECRYPTO);
}

static void test_nk_wrong_remote_static_fails(void **state)
{
    (void)state;
    uint8_t pub[32], priv[32], other_pub[32], other_priv[32], out[BUF], pt[BUF];
    size_t outlen, ptlen;
    kl_noise_hs_t *hi = NULL, *hr = NULL;
    kl_x_keypair(pub, priv);
    kl_x_keypair(other_pub, other_priv);
    kl_noise_config_t ci = {KL_NOISE_NK, 1, 0, (const uint8_t *)"kollega/1", 9, NULL,
                            other_pub, NULL, NULL};
    kl_noise_config_t cr = {KL_NOISE_NK, 0, 0, (const uint8_t *)"kollega/1", 9, priv, NULL,
                            NULL, NULL};
    assert_int_equal(kl_noise_hs_new(&hi, &ci), 0);
    assert_int_equal(kl_noise_hs_new(&hr, &cr), 0);
    assert_int_equal(kl_noise_hs_write(hi, NULL, 0, out, sizeof out, &outlen), 0);
    assert_int_equal(kl_noise_hs_read(hr, out, outlen, pt, sizeof pt, &ptlen), KL_ECRYPTO);
    /* Dead for good. */
    assert_int_equal(kl_noise_hs_write(hr, NULL, 0, out, sizeof out, &outlen), KL_ESTATE);
    assert_int_equal(kl_noise_hs_read(hr, out, outlen, pt, sizeof pt, &ptlen), KL_ESTATE);
    kl_noise_hs_free(hi);
    kl_noise_hs_free(hr);
}

static void test_prologue_mismatch_fails(void **state)
{
    (void)state;
    uint8_t pub[32], priv[32], out[BUF], pt[BUF];
    size_t outlen, ptlen;
    kl_noise_hs_t *hi = NULL, *hr = NULL;
    kl_x_keypair(pub, priv);
    kl_noise_config_t ci = {KL_NOISE_NK, 1, 0, (const uint8_t *)"kollega/1", 9, NULL, pub,
                            NULL, NULL};
    kl_noise_config_t cr = {KL_NOISE_NK, 0, 0, (const uint8_t *)"kollega/2", 9, priv, NULL,
                            NULL, NULL};
    assert_int_equal(kl_noise_hs_new(&hi, &ci), 0);
    assert_int_equal(kl_noise_hs_new(&hr, &cr), 0);
    assert_int_equal(kl_noise_hs_write(hi, NULL, 0, out, sizeof out, &outlen), 0);
    assert_int_equal(kl_noise_hs_read(hr, out, outlen, pt, sizeof pt, &ptlen), KL_ECRYPTO);
    kl_noise_hs_free(hi);
    kl_noise_hs_free(hr);
}

/* KK with a responder that expects a different initiator key fails. */
static void test_kk_unknown_initiator_fails(void **state)
{
    (void)state;
    uint8_t ip[32], is[32], rp[32], rsk[32], xp[32], xs[32], out[BUF], pt[BUF];
    size_t outlen, ptlen;
    kl_noise_hs_t *hi = NULL, *hr = NULL;
    kl_x_keypair(ip, is);
    kl_x_keypair(rp, rsk);
    kl_x_keypair(xp, xs);
    const uint8_t *pro = (const uint8_t *)KL_PROLOGUE_FEDERATION;
    size_t pl = strlen(KL_PROLOGUE_FEDERATION);
    kl_noise_config_t ci = {KL_NOISE_KK, 1, 0, pro, pl, is, rp, NULL, NULL};
    kl_noise_config_t cr = {KL_NOISE_KK, 0, 0, pro, pl, rsk, xp, NULL, NULL};
    assert_int_equal(kl_noise_hs_new(&hi, &ci), 0);
    assert_int_equal(kl_noise_hs_new(&hr, &cr), 0);
    assert_int_equal(kl_noise_hs_write(hi, NULL, 0, out, sizeof out, &outlen), 0);
    assert_int_equal(kl_noise_hs_read(hr, out, outlen, pt, sizeof pt, &ptlen), KL_ECRYPTO);
    kl_noise_hs_free(hi);
    kl_noise_hs_free(hr);
}

static void test_out_of_turn_is_estate(void **state)
{
    (void)state;
    uint8_t pub[32], priv[32], out[BUF], pt[BUF], rs[32];
    size_t outlen, ptlen;
    kl_noise_transport_t t;
    kl_noise_hs_t *hi = NULL, *hr = NULL;
    kl_x_keypair(pub, priv);
    kl_noise_config_t ci = {KL_NOISE_NK, 1, 0, NULL, 0, NULL, pub, NULL, NULL};
    kl_noise_config_t cr = {KL_NOISE_NK, 0, 0, NULL, 0, priv, NULL, NULL, NULL};
    assert_int_equal(kl_noise_hs_new(&hi, &ci), 0);
    assert_int_equal(kl_noise_hs_new(&hr, &cr), 0);

    assert_true(kl_noise_hs_my_turn(hi));
    assert_false(kl_noise_hs_my_turn(hr));
    assert_int_equal(kl_noise_hs_write(hr, NULL, 0, out, sizeof out, &outlen), KL_ESTATE);
    assert_int_equal(kl_noise_hs_read(hi, out, 48, pt, sizeof pt, &ptlen), KL_ESTATE);
    assert_int_equal(kl_noise_hs_split(hi, &t), KL_ESTATE);
    assert_int_equal(kl_noise_hs_remote_static(hr, rs), KL_ESTATE);
    /* Out-of-turn calls do not kill: the handshake still completes. */
    assert_int_equal(kl_noise_hs_write(hi, NULL, 0, out, sizeof out, &outlen), 0);
    assert_int_equal(kl_noise_hs_write(hi, NULL, 0, out, sizeof out, &outlen), KL_ESTATE);
    assert_int_equal(kl_noise_hs_read(hr, out, 48, pt, sizeof pt, &ptlen), 0);
    assert_int_equal(kl_noise_hs_write(hr, NULL, 0, out, sizeof out, &outlen), 0);
    assert_int_equal(kl_noise_hs_read(hi, out, outlen, pt, sizeof pt, &ptlen), 0);
    assert_true(kl_noise_hs_done(hi) && kl_noise_hs_done(hr));
    assert_int_equal(kl_noise_hs_write(hi, NULL, 0, out, sizeof out, &outlen), KL_ESTATE);
    assert_int_equal(kl_noise_hs_read(hi, out, outlen, pt, sizeof pt, &ptlen), KL_ESTATE);
    assert_int_equal(kl_noise_hs_split(hi, &t), 0);
    assert_int_equal(kl_noise_hs_split(hi, &t), KL_ESTATE);
    kl_noise_transport_wipe(&t);
    assert_true(kl_is_zero((const uint8_t *)&t, sizeof t));
    kl_noise_hs_free(hi);
    kl_noise_hs_free(hr);
    kl_noise_hs_free(NULL);
}

/* Messages shorter than the pattern's tokens plus tag, or over 65535 bytes,
 * are KL_EPROTO and kill the handshake; a payload over the caller's buffer
 * is KL_ETOOBIG. */
static void test_short_handshake_message_is_eproto(void **state)
{
    (void)state;
    uint8_t pub[32], priv[32], out[BUF], pt[BUF];
    size_t outlen, ptlen;
    kl_x_keypair(pub, priv);
    kl_noise_config_t ci = {KL_NOISE_NK, 1, 0, NULL, 0, NULL, pub, NULL, NULL};
    kl_noise_config_t cr = {KL_NOISE_NK, 0, 0, NULL, 0, priv, NULL, NULL, NULL};
    kl_noise_hs_t *hi = NULL;
    assert_int_equal(kl_noise_hs_new(&hi, &ci), 0);
    assert_int_equal(kl_noise_hs_write(hi, NULL, 0, out, sizeof out, &outlen), 0);
    assert_int_equal(outlen, 48);
    kl_noise_hs_free(hi);
    for (size_t n = 0; n < 48; n++) {
        kl_noise_hs_t *hr = NULL;
        assert_int_equal(kl_noise_hs_new(&hr, &cr), 0);
        assert_int_equal(kl_noise_hs_read(hr, n ? out : NULL, n, pt, sizeof pt, &ptlen),
                         KL_EPROTO);
        assert_int_equal(kl_noise_hs_read(hr, out, 48, pt, sizeof pt, &ptlen), KL_ESTATE);
        kl_noise_hs_free(hr);
    }
    kl_noise_hs_t *hr = NULL;
    uint8_t *big = calloc(1, KL_NOISE_MAX_MSG + 1);
    assert_non_null(big);
    assert_int_equal(kl_noise_hs_new(&hr, &cr), 0);
    assert_int_equal(kl_noise_hs_read(hr, big, KL_NOISE_MAX_MSG + 1, pt, sizeof pt, &ptlen),
                     KL_EPROTO);
    kl_noise_hs_free(hr);
    /* A payload larger than the caller's buffer: refused, not overflowed. */
    assert_int_equal(kl_noise_hs_new(&hi, &ci), 0);
    assert_int_equal(kl_noise_hs_write(hi, pt, 100, out, sizeof out, &outlen), 0);
    assert_int_equal(kl_noise_hs_new(&hr, &cr), 0);
    assert_int_equal(kl_noise_hs_read(hr, out, outlen, pt, 99, &ptlen), KL_ETOOBIG);
    kl_noise_hs_free(hi);
    kl_noise_hs_free(hr);
    free(big);
}

/* A too-small output buffer for write is refused before any state changes. */
static void test_write_small_buffer_keeps_state(void **state)
{
    (void)state;
    uint8_t pub[32], priv[32], out[BUF], pt[BUF];
    size_t outlen = 0, ptlen;
    kl_x_keypair(pub, priv);
    kl_noise_config_t ci = {KL_NOISE_NK, 1, 0, NULL, 0, NULL, pub, NULL, NULL};
    kl_noise_config_t cr = {KL_NOISE_NK, 0, 0, NULL, 0, priv, NULL, NULL, NULL};
    kl_noise_hs_t *hi = NULL, *hr = NULL;
    assert_int_equal(kl_noise_hs_new(&hi, &ci), 0);
    assert_int_equal(kl_noise_hs_new(&hr, &cr), 0);
    assert_int_equal(kl_noise_hs_write(hi, (const uint8_t *)"abc", 3, out, 50, &outlen),
                     KL_ETOOBIG);
    assert_int_equal(kl_noise_hs_write(hi, (const uint8_t *)"abc", 3, out, 51, &outlen), 0);
    assert_int_equal(outlen, 51);
    assert_int_equal(kl_noise_hs_read(hr, out, outlen, pt, sizeof pt, &ptlen), 0);
    assert_int_equal(ptlen, 3);
    assert_memory_equal(pt, "abc", 3);
    kl_noise_hs_free(hi);
    kl_noise_hs_free(hr);
}

/* A low-order ephemeral (here all zeros) makes every DH with it zero. In NN
 * the first message carries only e, so the responder reads it fine; its own
 * "ee" must then fail with KL_ECRYPTO and kill the handshake rather than mix
 * a predictable secret into the key and answer. */
static void test_low_order_ephemeral_rejected(void **state)
{
    (void)state;
    uint8_t out[BUF], pt[BUF];
    size_t outlen = 0, ptlen;
    kl_noise_hs_t *hi = NULL, *hr = NULL;
    kl_noise_config_t ci = {KL_NOISE_NN, 1, 0, NULL, 0, NULL, NULL, NULL, NULL};
    kl_noise_config_t cr = {KL_NOISE_NN, 0, 0, NULL, 0, NULL, NULL, NULL, NULL};
    assert_int_equal(kl_noise_hs_new(&hi, &ci), 0);
    assert_int_equal(kl_noise_hs_new(&hr, &cr), 0);
    assert_int_equal(kl_noise_hs_write(hi, NULL, 0, out, sizeof out, &outlen), 0);
    assert_int_equal(outlen, 32);
    memset(out, 0, 32);
    assert_int_equal(kl_noise_hs_read(hr, out, outlen, pt, sizeof pt, &ptlen), 0);
    assert_int_equal(kl_noise_hs_write(hr, NULL, 0, out, sizeof out, &outlen), KL_ECRYPTO);
    assert_true(kl_is_zero(out, sizeof out));
    assert_int_equal(kl_noise_hs_write(hr, NULL, 0, out, sizeof out, &outlen), KL_ESTATE);
    assert_false(kl_noise_hs_done(hr));
    kl_noise_hs_free(hi);
    kl_noise_hs_free(hr);
}

static void test_missing_keys_einval(void **state)
{
    (void)state;
    uint8_t k[32] = {9};
    kl_noise_hs_t *hs = (kl_noise_hs_t *)1;
    kl_noise_config_t c = {KL_NOISE_NK, 1, 0, NULL, 0, NULL, NULL, NULL, NULL};
    assert_int_equal(kl_noise_hs_new(&hs, &c), KL_EINVAL); /* NK initiator needs rs */
    assert_null(hs);
    c.initiator = 0;
    assert_int_equal(kl_noise_hs_new(&hs, &c), KL_EINVAL); /* NK responder needs s */
    c.pattern = KL_NOISE_KK;
    c.s = k;
    assert_int_equal(kl_noise_hs_new(&hs, &c), KL_EINVAL); /* KK needs rs */
    c.pattern = KL_NOISE_XX;
    c.s = NULL;
    assert_int_equal(kl_noise_hs_new(&hs, &c), KL_EINVAL); /* XX needs s */
    c.pattern = KL_NOISE_NN;
    c.psk0 = 1;
    assert_int_equal(kl_noise_hs_new(&hs, &c), KL_EINVAL); /* psk0 needs psk */
    c.psk = k;
    assert_int_equal(kl_noise_hs_new(&hs, &c), 0);
    kl_noise_hs_free(hs);
    c.pattern = (kl_noise_pattern_t)99;
    assert_int_equal(kl_noise_hs_new(&hs, &c), KL_EINVAL);
}

static void test_transport_lengths(void **state)
{
    (void)state;
    kl_noise_transport_t ti, tr;
    uint8_t *big = calloc(1, KL_NOISE_MAX_MSG + 16);
    uint8_t *out = calloc(1, KL_NOISE_MAX_MSG + 16);
    size_t outlen, ptlen;
    assert_non_null(big);
    assert_non_null(out);
    nk_session(&ti, &tr);
    /* Largest plaintext fits exactly into one 65535-byte message. */
    assert_int_equal(kl_noise_encrypt(&ti, big, KL_NOISE_MAX_PT + 1, out, KL_NOISE_MAX_MSG + 16,
                                      &outlen),
                     KL_ETOOBIG);
    assert_int_equal(kl_noise_encrypt(&ti, big, KL_NOISE_MAX_PT, out, KL_NOISE_MAX_MSG - 1,
                                      &outlen),
                     KL_ETOOBIG);
    assert_int_equal(ti.send.n, 0);
    assert_int_equal(kl_noise_encrypt(&ti, big, KL_NOISE_MAX_PT, out, KL_NOISE_MAX_MSG, &outlen),
                     0);
    assert_int_equal(outlen, KL_NOISE_MAX_MSG);
    assert_int_equal(kl_noise_decrypt(&tr, out, outlen, big, KL_NOISE_MAX_PT - 1, &ptlen),
                     KL_ETOOBIG);
    assert_int_equal(kl_noise_decrypt(&tr, out, outlen, big, KL_NOISE_MAX_PT, &ptlen), 0);
    assert_int_equal(ptlen, KL_NOISE_MAX_PT);
    /* Empty plaintext is a bare tag; under a tag is EPROTO; over 65535 TOOBIG. */
    assert_int_equal(kl_noise_encrypt(&ti, NULL, 0, out, 16, &outlen), 0);
    assert_int_equal(outlen, 16);
    assert_int_equal(kl_noise_decrypt(&tr, out, 15, big, 100, &ptlen), KL_EPROTO);
    assert_int_equal(kl_noise_decrypt(&tr, out, KL_NOISE_MAX_MSG + 1, big, KL_NOISE_MAX_MSG + 16,
                                      &ptlen),
                     KL_ETOOBIG);
    assert_int_equal(kl_noise_decrypt(&tr, out, 16, NULL, 0, &ptlen), 0);
    assert_int_equal(ptlen, 0);
    free(big);
    free(out);
}

static void test_nonce_exhaustion_refused(void **state)
{
    (void)state;
    kl_noise_transport_t ti, tr;
    uint8_t out[64], pt[64];
    size_t outlen, ptlen;
    nk_session(&ti, &tr);
    ti.send.n = UINT64_MAX - 1;
    tr.recv.n = UINT64_MAX - 1;
    assert_int_equal(kl_noise_encrypt(&ti, (const uint8_t *)"a", 1, out, sizeof out, &outlen), 0);
    assert_int_equal(kl_noise_decrypt(&tr, out, outlen, pt, sizeof pt, &ptlen), 0);
    assert_int_equal(ti.send.n, UINT64_MAX);
    assert_int_equal(kl_noise_encrypt(&ti, (const uint8_t *)"a", 1, out, sizeof out, &outlen),
                     KL_ELIMIT);
    assert_int_equal(kl_noise_decrypt(&tr, out, 17, pt, sizeof pt, &ptlen), KL_ELIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_vectors),
        cmocka_unit_test(test_vectors_cover_every_pattern),
        cmocka_unit_test(test_tampered_handshake_rejected),
        cmocka_unit_test(test_nk_random_ephemerals),
        cmocka_unit_test(test_tampered_transport_rejected),
        cmocka_unit_test(test_transport_replay_rejected),
        cmocka_unit_test(test_nk_wrong_remote_static_fails),
        cmocka_unit_test(test_prologue_mismatch_fails),
        cmocka_unit_test(test_kk_unknown_initiator_fails),
        cmocka_unit_test(test_out_of_turn_is_estate),
        cmocka_unit_test(test_short_handshake_message_is_eproto),
        cmocka_unit_test(test_write_small_buffer_keeps_state),
        cmocka_unit_test(test_low_order_ephemeral_rejected),
        cmocka_unit_test(test_missing_keys_einval),
        cmocka_unit_test(test_transport_lengths),
        cmocka_unit_test(test_nonce_exhaustion_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
