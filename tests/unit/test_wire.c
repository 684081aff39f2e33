/* wire: Frame seal/open through two real Noise transports, the failure
 * codes, the unpack allocation budget and the signed byte strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/noise.h"
#include "kollega/wire.h"
#include "relay.pb-c.h"

typedef struct pair {
    kl_noise_transport_t c; /* client (initiator) */
    kl_noise_transport_t r; /* relay (responder) */
} pair_t;

static int setup(void **state)
{
    uint8_t pub[32], priv[32], m[128], p[128];
    size_t ml, pl;
    kl_noise_hs_t *hi = NULL, *hr = NULL;
    pair_t *pr = calloc(1, sizeof *pr);
    if (pr == NULL || kl_crypto_init() != 0)
        return -1;
    kl_x_keypair(pub, priv);
    kl_noise_config_t ci = {KL_NOISE_NK, 1, 0, (const uint8_t *)"kollega/1", 9, NULL, pub,
                            NULL, NULL};
    kl_noise_config_t cr = {KL_NOISE_NK, 0, 0, (const uint8_t *)"kollega/1", 9, priv, NULL,
                            NULL, NULL};
    if (kl_noise_hs_new(&hi, &ci) || kl_noise_hs_new(&hr, &cr) ||
        kl_noise_hs_write(hi, NULL, 0, m, sizeof m, &ml) ||
        kl_noise_hs_read(hr, m, ml, p, sizeof p, &pl) ||
        kl_noise_hs_write(hr, NULL, 0, m, sizeof m, &ml) ||
        kl_noise_hs_read(hi, m, ml, p, sizeof p, &pl) || kl_noise_hs_split(hi, &pr->c) ||
        kl_noise_hs_split(hr, &pr->r))
        return -1;
    kl_noise_hs_free(hi);
    kl_noise_hs_free(hr);
    *state = pr;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void test_ping_round_trip(void **state)
{
    pair_t *pr = *state;
    uint8_t out[256];
    size_t outlen = 0;
    kl_frame_t *g = NULL;
    Kollega__Relay__V1__Ping ping = KOLLEGA__RELAY__V1__PING__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    ping.nonce = 0x1122334455667788ull;
    f.id = 7;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_PING;
    f.ping = &ping;

    assert_int_equal(kl_wire_seal(&pr->c, &f, out, sizeof out, &outlen), 0);
    size_t packed = kollega__relay__v1__frame__get_packed_size(&f);
    assert_int_equal(outlen, KL_WIRE_SIZE(packed));
    assert_int_equal(((size_t)out[0] << 8) | out[1], outlen - 2);
    assert_int_equal(kl_wire_open(&pr->r, out + 2, outlen - 2, &g), 0);
    assert_non_null(g);
    assert_int_equal(g->id, 7);
    assert_int_equal(g->body_case, KOLLEGA__RELAY__V1__FRAME__BODY_PING);
    assert_true(g->ping->nonce == 0x1122334455667788ull);
    kl_wire_free(g);
    kl_wire_free(NULL);

    /* And the other direction, with a pong. */
    Kollega__Relay__V1__Pong pong = KOLLEGA__RELAY__V1__PONG__INIT;
    pong.nonce = 5;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_PONG;
    f.pong = &pong;
    assert_int_equal(kl_wire_seal(&pr->r, &f, out, sizeof out, &outlen), 0);
    assert_int_equal(kl_wire_open(&pr->c, out + 2, outlen - 2, &g), 0);
    assert_int_equal(g->body_case, KOLLEGA__RELAY__V1__FRAME__BODY_PONG);
    assert_int_equal(g->pong->nonce, 5);
    kl_wire_free(g);
}

/* A Send whose body makes the packed frame exactly KL_WIRE_MAX_FRAME fits in
 * one 65537-byte wire message; one byte more is KL_ETOOBIG. */
static void test_max_frame_and_too_big(void **state)
{
    pair_t *pr = *state;
    uint8_t *body = calloc(1, KL_WIRE_MAX_FRAME);
    uint8_t *out = NULL;
    size_t outlen = 0, blen = KL_WIRE_MAX_FRAME - 64;
    kl_frame_t *g = NULL;
    Kollega__Relay__V1__Send send = KOLLEGA__RELAY__V1__SEND__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    assert_non_null(body);
    memset(body, 0xab, KL_WIRE_MAX_FRAME);
    send.to = "kari@oslo.example.org";
    f.id = 1;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_SEND;
    f.send = &send;
    send.body.data = body;
    for (;;) {
        send.body.len = blen;
        size_t n = kollega__relay__v1__frame__get_packed_size(&f);
        if (n == KL_WIRE_MAX_FRAME)
            break;
        assert_true(n < KL_WIRE_MAX_FRAME);
        blen++;
    }
    uint64_t n0 = pr->c.send.n;
    assert_int_equal(kl_wire_seal_alloc(&pr->c, &f, &out, &outlen), 0);
    assert_int_equal(outlen, 2 + KL_NOISE_MAX_MSG);
    assert_int_equal(kl_wire_open(&pr->r, out + 2, outlen - 2, &g), 0);
    assert_int_equal(g->send->body.len, blen);
    assert_memory_equal(g->send->body.data, body, blen);
    assert_string_equal(g->send->to, "kari@oslo.example.org");
    kl_wire_free(g);

    /* Too small a buffer for the right-sized frame. */
    assert_int_equal(kl_wire_seal(&pr->c, &f, out, outlen - 1, &outlen), KL_ETOOBIG);
    free(out);
    out = NULL;

    send.body.len = blen + 1;
    assert_int_equal(kl_wire_seal_alloc(&pr->c, &f, &out, &outlen), KL_ETOOBIG);
    assert_null(out);
    uint8_t *big = malloc(2 * KL_NOISE_MAX_MSG);
    assert_non_null(big);
    assert_int_equal(kl_wire_seal(&pr->c, &f, big, 2 * KL_NOISE_MAX_MSG, &outlen), KL_ETOOBIG);
    /* Refusals did not consume a nonce. */
    assert_true(pr->c.send.n == n0 + 1);
    /* An incoming message over 65535 bytes is refused before decryption. */
    assert_int_equal(kl_wire_open(&pr->r, big, KL_NOISE_MAX_MSG + 1, &g), KL_ETOOBIG);
    assert_null(g);
    free(big);
    free(body);
}

/* Encrypt raw plaintext bytes as the peer would, then try to open them. */
static int open_raw(pair_t *pr, const uint8_t *pt, size_t len)
{
    uint8_t ct[512];
    size_t cl;
    kl_frame_t *g = (kl_frame_t *)1;
    assert_true(len + 16 <= sizeof ct);
    assert_int_equal(kl_noise_encrypt(&pr->c, pt, len, ct, sizeof ct, &cl), 0);
    int r = kl_wire_open(&pr->r, ct, cl, &g);
    if (r != 0)
        assert_null(g);
    else
        kl_wire_free(g);
    return r;
}

static void test_undecodable_plaintext_is_eproto(void **state)
{
    pair_t *pr = *state;
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    const uint8_t truncated[] = {0x32, 0x10, 0x0a}; /* ping, length 16, 1 byte */
    const uint8_t bad_wire_type[] = {0x0f};
    assert_int_equal(open_raw(pr, garbage, sizeof garbage), KL_EPROTO);
    assert_int_equal(open_raw(pr, truncated, sizeof truncated), KL_EPROTO);
    assert_int_equal(open_raw(pr, bad_wire_type, sizeof bad_wire_type), KL_EPROTO);
}

/* A Frame that decodes but carries no body (empty, or only an id, or only
 * unknown fields) is a protocol violation too. */
static void test_frame_without_body_is_eproto(void **state)
{
    pair_t *pr = *state;
    const uint8_t id_only[] = {0x08, 0x05};
    const uint8_t unknown_only[] = {0xf8, 0x01, 0x01}; /* field 31, varint 1 */
    const uint8_t ping[] = {0x08, 0x05, 0x32, 0x00}; /* id 5, empty ping */
    assert_int_equal(open_raw(pr, NULL, 0), KL_EPROTO);
    assert_int_equal(open_raw(pr, id_only, sizeof id_only), KL_EPROTO);
    assert_int_equal(open_raw(pr, unknown_only, sizeof unknown_only), KL_EPROTO);
    /* Control: an empty Ping sub-message is a body. */
    assert_int_equal(open_raw(pr, ping, sizeof ping), 0);

    /* And seal refuses to produce one. */
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    uint8_t out[64];
    size_t outlen;
    f.id = 3;
    uint64_t n0 = pr->c.send.n;
    assert_int_equal(kl_wire_seal(&pr->c, &f, out, sizeof out, &outlen), KL_EINVAL);
    /* A body case without its sub-message, or one the schema does not know,
     * would pack as a bodiless Frame: refused as well, no nonce consumed. */
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_PING;
    f.ping = NULL;
    assert_int_equal(kl_wire_seal(&pr->c, &f, out, sizeof out, &outlen), KL_EINVAL);
    f.body_case = (Kollega__Relay__V1__Frame__BodyCase)999;
    assert_int_equal(kl_wire_seal(&pr->c, &f, out, sizeof out, &outlen), KL_EINVAL);
    assert_true(pr->c.send.n == n0);
}

static void test_tampered_is_ecrypto(void **state)
{
    pair_t *pr = *state;
    uint8_t out[256];
    size_t outlen;
    kl_frame_t *g = NULL;
    Kollega__Relay__V1__Ack ack = KOLLEGA__RELAY__V1__ACK__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    ack.seq = 99;
    f.id = 2;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_ACK;
    f.ack = &ack;
    assert_int_equal(kl_wire_seal(&pr->c, &f, out, sizeof out, &outlen), 0);
    for (size_t bit = 16; bit < outlen * 8; bit++) {
        out[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(kl_wire_open(&pr->r, out + 2, outlen - 2, &g), KL_ECRYPTO);
        assert_null(g);
        out[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(kl_wire_open(&pr->r, out + 2, 15, &g), KL_EPROTO);
    assert_int_equal(kl_wire_open(&pr->r, out + 2, outlen - 2, &g), 0);
    assert_true(g->ack->seq == 99);
    kl_wire_free(g);
    /* Replaying it is rejected. */
    assert_int_equal(kl_wire_open(&pr->r, out + 2, outlen - 2, &g), KL_ECRYPTO);
}

/* A frame of tens of thousands of empty repeated sub-messages would make
 * protobuf-c allocate megabytes; the unpack budget refuses it, while a
 * realistic prekey upload still decodes. */
static void test_unpack_allocation_is_bounded(void **state)
{
    pair_t *pr = *state;
    size_t count = 30000;
    Kollega__Relay__V1__OneTimePrekey *keys = calloc(count, sizeof *keys);
    Kollega__Relay__V1__OneTimePrekey **ptrs = calloc(count, sizeof *ptrs);
    Kollega__Relay__V1__PrekeyUpload up = KOLLEGA__RELAY__V1__PREKEY_UPLOAD__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    uint8_t *out = NULL, pk[32];
    size_t outlen;
    kl_frame_t *g = NULL;
    assert_non_null(keys);
    assert_non_null(ptrs);
    memset(pk, 0x42, sizeof pk);
    for (size_t i = 0; i < count; i++) {
        Kollega__Relay__V1__OneTimePrekey init = KOLLEGA__RELAY__V1__ONE_TIME_PREKEY__INIT;
        keys[i] = init;
        ptrs[i] = &keys[i];
    }
    f.id = 9;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_PREKEY_UPLOAD;
    f.prekey_upload = &up;
    up.one_time_prekeys = ptrs;
    up.n_one_time_prekeys = count;
    assert_true(kollega__relay__v1__frame__get_packed_size(&f) <= KL_WIRE_MAX_FRAME);
    assert_int_equal(kl_wire_seal_alloc(&pr->c, &f, &out, &outlen), 0);
    assert_int_equal(kl_wire_open(&pr->r, out + 2, outlen - 2, &g), KL_EPROTO);
    assert_null(g);
    free(out);

    /* 1000 real prekeys (about 40 KB on the wire) are fine. */
    for (size_t i = 0; i < 1000; i++) {
        keys[i].id = (uint32_t)(i + 1000);
        keys[i].public_key.data = pk;
        keys[i].public_key.len = sizeof pk;
    }
    up.n_one_time_prekeys = 1000;
    assert_int_equal(kl_wire_seal_alloc(&pr->c, &f, &out, &outlen), 0);
    assert_int_equal(kl_wire_open(&pr->r, out + 2, outlen - 2, &g), 0);
    assert_int_equal(g->prekey_upload->n_one_time_prekeys, 1000);
    assert_int_equal(g->prekey_upload->one_time_prekeys[999]->id, 1999);
    kl_wire_free(g);
    free(out);
    free(ptrs);
    free(keys);
}

static void test_signed_strings(void **state)
{
    (void)state;
    uint8_t hh[64], out[200];
    size_t outlen = 0;
    for (int i = 0; i < 64; i++)
        hh[i] = (uint8_t)i;
    assert_int_equal(kl_wire_auth_msg(hh, out, sizeof out, &outlen), 0);
    assert_int_equal(outlen, 15 + 64);
    assert_memory_equal(out, "kollega-auth-v1", 15);
    assert_memory_equal(out + 15, hh, 64);
    assert_int_equal(kl_wire_auth_msg(hh, out, 15 + 63, &outlen), KL_ETOOBIG);

    assert_int_equal(kl_wire_register_msg(hh, "kari", "c0de", out, sizeof out, &outlen), 0);
    assert_int_equal(outlen, 19 + 64 + 4 + 4);
    assert_memory_equal(out, "kollega-register-v1", 19);
    assert_memory_equal(out + 19, hh, 64);
    assert_memory_equal(out + 83, "karic0de", 8);
    assert_int_equal(kl_wire_register_msg(hh, "kari", "c0de", out, 90, &outlen), KL_ETOOBIG);
    assert_int_equal(kl_wire_register_msg(hh, NULL, "c0de", out, sizeof out, &outlen), KL_EINVAL);
}

/* The error code of an Error frame, and its name, without generated code. */
static void test_error_code_and_name(void **state)
{
    (void)state;
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Error e = KOLLEGA__RELAY__V1__ERROR__INIT;
    Kollega__Relay__V1__Ok ok = KOLLEGA__RELAY__V1__OK__INIT;
    e.code = KOLLEGA__RELAY__V1__ERROR_CODE__QUOTA_EXCEEDED;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_ERROR;
    f.error = &e;
    assert_int_equal(kl_wire_error_code(&f), KL_WIRE_ERR_QUOTA_EXCEEDED);
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_OK;
    f.ok = &ok;
    assert_int_equal(kl_wire_error_code(&f), KL_WIRE_ERR_NONE);
    assert_int_equal(kl_wire_error_code(NULL), KL_WIRE_ERR_NONE);
    assert_string_equal(kl_wire_error_name(KL_WIRE_ERR_QUOTA_EXCEEDED), "QUOTA_EXCEEDED");
    assert_string_equal(kl_wire_error_name(KL_WIRE_ERR_INVITE_INVALID), "INVITE_INVALID");
    assert_string_equal(kl_wire_error_name(99), "UNKNOWN");
}

/* A PrekeyBundle's keys, its missing signed prekey and its wrong lengths. */
static void test_prekey_bundle_get(void **state)
{
    (void)state;
    uint8_t ik[32], spk_pub[32], sig[64], opk_pub[32];
    memset(ik, 1, sizeof ik);
    memset(spk_pub, 2, sizeof spk_pub);
    memset(sig, 3, sizeof sig);
    memset(opk_pub, 4, sizeof opk_pub);
    Kollega__Relay__V1__PrekeyBundle pb = KOLLEGA__RELAY__V1__PREKEY_BUNDLE__INIT;
    Kollega__Relay__V1__SignedPrekey spk = KOLLEGA__RELAY__V1__SIGNED_PREKEY__INIT;
    Kollega__Relay__V1__OneTimePrekey opk = KOLLEGA__RELAY__V1__ONE_TIME_PREKEY__INIT;
    kl_prekey_bundle_t b;
    pb.identity_key.data = ik;
    pb.identity_key.len = 32;
    assert_int_equal(kl_wire_prekey_bundle_get(&pb, &b), KL_ENOTFOUND);
    spk.id = 7;
    spk.public_key.data = spk_pub;
    spk.public_key.len = 32;
    spk.signature.data = sig;
    spk.signature.len = 64;
    pb.signed_prekey = &spk;
    assert_int_equal(kl_wire_prekey_bundle_get(&pb, &b), 0);
    assert_memory_equal(b.identity_key, ik, 32);
    assert_int_equal(b.spk_id, 7);
    assert_memory_equal(b.spk, spk_pub, 32);
    assert_memory_equal(b.spk_sig, sig, 64);
    assert_int_equal(b.has_opk, 0);
    opk.id = 9;
    opk.public_key.data = opk_pub;
    opk.public_key.len = 32;
    pb.one_time_prekey = &opk;
    assert_int_equal(kl_wire_prekey_bundle_get(&pb, &b), 0);
    assert_int_equal(b.has_opk, 1);
    assert_int_equal(b.opk_id, 9);
    assert_memory_equal(b.opk, opk_pub, 32);
    opk.public_key.len = 31;
    assert_int_equal(kl_wire_prekey_bundle_get(&pb, &b), KL_EPROTO);
    assert_int_equal(b.has_opk, 0); /* zeroed on error */
    opk.public_key.len = 32;
    spk.signature.len = 63;
    assert_int_equal(kl_wire_prekey_bundle_get(&pb, &b), KL_EPROTO);
    spk.signature.len = 64;
    pb.identity_key.len = 33;
    assert_int_equal(kl_wire_prekey_bundle_get(&pb, &b), KL_EPROTO);
    pb.signed_prekey = NULL; /* a bad identity key is KL_EPROTO even then */
    assert_int_equal(kl_wire_prekey_bundle_get(&pb, &b), KL_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping_round_trip),
        cmocka_unit_test(test_max_frame_and_too_big),
        cmocka_unit_test(test_undecodable_plaintext_is_eproto),
        cmocka_unit_test(test_frame_without_body_is_eproto),
        cmocka_unit_test(test_tampered_is_ecrypto),
        cmocka_unit_test(test_unpack_allocation_is_bounded),
        cmocka_unit_test(test_signed_strings),
        cmocka_unit_test(test_error_code_and_name),
        cmocka_unit_test(test_prekey_bundle_get),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
