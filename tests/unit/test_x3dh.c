/* X3DH: both sides agree, the derivation is the documented one, and a bad
 * signed prekey or the wrong keys never yield the same secret. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/hkdf.h"
#include "kollega/x3dh.h"

typedef struct party {
    uint8_t id_pk[32];
    uint8_t id_sk[64];
    uint8_t spk_pub[32];
    uint8_t spk_priv[32];
    uint8_t opk_pub[32];
    uint8_t opk_priv[32];
} party_t;

static void make_party(party_t *p)
{
    assert_int_equal(kl_sign_keypair(p->id_pk, p->id_sk), 0);
    kl_x_keypair(p->spk_pub, p->spk_priv);
    kl_x_keypair(p->opk_pub, p->opk_priv);
}

static void make_bundle(const party_t *b, uint32_t spk_id, int with_opk, kl_prekey_bundle_t *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->identity_key, b->id_pk, 32);
    out->spk_id = spk_id;
    memcpy(out->spk, b->spk_pub, 32);
    assert_int_equal(kl_x3dh_spk_sign(b->id_sk, spk_id, b->spk_pub, out->spk_sig), 0);
    out->has_opk = with_opk;
    out->opk_id = 7;
    if (with_opk)
        memcpy(out->opk, b->opk_pub, 32);
}

static int setup(void **state)
{
    (void)state;
    return kl_crypto_init();
}

static void agree(int with_opk)
{
    party_t a, b;
    kl_prekey_bundle_t bundle;
    uint8_t sk_a[32], sk_b[32], ek[32], ad_a[KL_X3DH_AD], ad_b[KL_X3DH_AD];

    make_party(&a);
    make_party(&b);
    make_bundle(&b, 42, with_opk, &bundle);
    assert_int_equal(kl_x3dh_initiate(a.id_sk, a.id_pk, &bundle, sk_a, ek, ad_a), 0);
    assert_int_equal(kl_x3dh_respond(b.id_sk, b.id_pk, b.spk_priv, with_opk ? b.opk_priv : NULL,
                                     a.id_pk, ek, sk_b, ad_b),
                     0);
    assert_memory_equal(sk_a, sk_b, 32);
    assert_memory_equal(ad_a, ad_b, KL_X3DH_AD);
    assert_memory_equal(ad_a, a.id_pk, 32);
    assert_memory_equal(ad_a + 32, b.id_pk, 32);
    assert_false(kl_is_zero(sk_a, 32));
}

static void test_agree_with_one_time_prekey(void **state)
{
    (void)state;
    agree(1);
}

static void test_agree_without_one_time_prekey(void **state)
{
    (void)state;
    agree(0);
}

/* Recompute SK from the header's formula with the primitives directly, so
 * the DH order, the 0xFF prefix, salt and info are pinned down. */
static void test_sk_follows_documented_formula(void **state)
{
    (void)state;
    party_t a, b;
    kl_prekey_bundle_t bundle;
    uint8_t ek_priv[32], ek_pub[32], ek_out[32], sk[32], ad[KL_X3DH_AD], want[32];
    uint8_t ika[32], ikb[32], ikm[160], zeros[32] = {0};

    make_party(&a);
    make_party(&b);
    make_bundle(&b, 1, 1, &bundle);
    kl_x_keypair(ek_pub, ek_priv);
    assert_int_equal(kl_x3dh_initiate_with(a.id_sk, a.id_pk, &bundle, ek_priv, sk, ek_out, ad), 0);
    assert_memory_equal(ek_out, ek_pub, 32);

    assert_int_equal(kl_ed_sk_to_x(a.id_sk, ika), 0);
    assert_int_equal(kl_ed_pk_to_x(b.id_pk, ikb), 0);
    memset(ikm, 0xFF, 32);
    assert_int_equal(kl_dh(ika, b.spk_pub, ikm + 32), 0);
    assert_int_equal(kl_dh(ek_priv, ikb, ikm + 64), 0);
    assert_int_equal(kl_dh(ek_priv, b.spk_pub, ikm + 96), 0);
    assert_int_equal(kl_dh(ek_priv, b.opk_pub, ikm + 128), 0);
    assert_int_equal(kl_hkdf_sha256(zeros, 32, ikm, 160, (const uint8_t *)"kollega-x3dh-v1", 15,
                                    want, 32),
                     0);
    assert_memory_equal(sk, want, 32);

    /* Without the one-time prekey the IKM simply stops after DH3. */
    bundle.has_opk = 0;
    assert_int_equal(kl_x3dh_initiate_with(a.id_sk, a.id_pk, &bundle, ek_priv, sk, ek_out, ad), 0);
    assert_int_equal(kl_hkdf_sha256(zeros, 32, ikm, 128, (const uint8_t *)"kollega-x3dh-v1", 15,
                                    want, 32),
                     0);
    assert_memory_equal(sk, want, 32);
}

static void test_bad_spk_signature_rejected(void **state)
{
    (void)state;
    party_t a, b, eve;
    kl_prekey_bundle_t bundle, bad;
    uint8_t sk[32], ek[32], ad[KL_X3DH_AD];

    make_party(&a);
    make_party(&b);
    make_party(&eve);
    make_bundle(&b, 9, 1, &bundle);

    /* Every flipped bit of the signature. */
    for (size_t i = 0; i < 64 * 8; i++) {
        bad = bundle;
        bad.spk_sig[i / 8] ^= (uint8_t)(1u << (i % 8));
        memset(sk, 0xAA, sizeof sk);
        assert_int_equal(kl_x3dh_initiate(a.id_sk, a.id_pk, &bad, sk, ek, ad), KL_ECRYPTO);
        assert_true(kl_is_zero(sk, 32));
    }
    /* A different signed prekey under the genuine signature. */
    bad = bundle;
    bad.spk[0] ^= 1;
    assert_int_equal(kl_x3dh_initiate(a.id_sk, a.id_pk, &bad, sk, ek, ad), KL_ECRYPTO);
    /* The genuine prekey relabelled with another id. */
    bad = bundle;
    bad.spk_id = 10;
    assert_int_equal(kl_x3dh_initiate(a.id_sk, a.id_pk, &bad, sk, ek, ad), KL_ECRYPTO);
    /* Signed by someone else than the bundle's identity. */
    bad = bundle;
    assert_int_equal(kl_x3dh_spk_sign(eve.id_sk, 9, b.spk_pub, bad.spk_sig), 0);
    assert_int_equal(kl_x3dh_initiate(a.id_sk, a.id_pk, &bad, sk, ek, ad), KL_ECRYPTO);
    assert_int_equal(kl_x3dh_spk_verify(b.id_pk, 9, b.spk_pub, bad.spk_sig), KL_ECRYPTO);
    assert_int_equal(kl_x3dh_spk_verify(b.id_pk, 9, b.spk_pub, bundle.spk_sig), 0);
}

static void test_different_keys_give_different_sk(void **state)
{
    (void)state;
    party_t a, b, eve;
    kl_prekey_bundle_t bundle;
    uint8_t ek_priv[32], ek_pub[32], ek2_priv[32], ek2_pub[32];
    uint8_t sk[32], sk2[32], ek_out[32], ad[KL_X3DH_AD], ad2[KL_X3DH_AD];

    make_party(&a);
    make_party(&b);
    make_party(&eve);
    make_bundle(&b, 1, 1, &bundle);
    kl_x_keypair(ek_pub, ek_priv);
    kl_x_keypair(ek2_pub, ek2_priv);
    assert_int_equal(kl_x3dh_initiate_with(a.id_sk, a.id_pk, &bundle, ek_priv, sk, ek_out, ad), 0);

    /* Same inputs, same output: the function is deterministic. */
    assert_int_equal(kl_x3dh_initiate_with(a.id_sk, a.id_pk, &bundle, ek_priv, sk2, ek_out, ad2),
                     0);
    assert_memory_equal(sk, sk2, 32);
    /* Another ephemeral key. */
    assert_int_equal(kl_x3dh_initiate_with(a.id_sk, a.id_pk, &bundle, ek2_priv, sk2, ek_out, ad2),
                     0);
    assert_memory_not_equal(sk, sk2, 32);
    /* Another initiator identity. */
    assert_int_equal(
        kl_x3dh_initiate_with(eve.id_sk, eve.id_pk, &bundle, ek_priv, sk2, ek_out, ad2), 0);
    assert_memory_not_equal(sk, sk2, 32);
    assert_memory_not_equal(ad, ad2, KL_X3DH_AD);
    /* With versus without the one-time prekey. */
    bundle.has_opk = 0;
    assert_int_equal(kl_x3dh_initiate_with(a.id_sk, a.id_pk, &bundle, ek_priv, sk2, ek_out, ad2),
                     0);
    assert_memory_not_equal(sk, sk2, 32);
    bundle.has_opk = 1;

    /* The responder believing the message came from Eve, or using the wrong
     * one-time prekey, derives something else. */
    assert_int_equal(kl_x3dh_respond(b.id_sk, b.id_pk, b.spk_priv, b.opk_priv, eve.id_pk, ek_pub,
                                     sk2, ad2),
                     0);
    assert_memory_not_equal(sk, sk2, 32);
    assert_int_equal(kl_x3dh_respond(b.id_sk, b.id_pk, b.spk_priv, eve.opk_priv, a.id_pk, ek_pub,
                                     sk2, ad2),
                     0);
    assert_memory_not_equal(sk, sk2, 32);
    assert_int_equal(kl_x3dh_respond(b.id_sk, b.id_pk, b.spk_priv, b.opk_priv, a.id_pk, ek_pub,
                                     sk2, ad2),
                     0);
    assert_memory_equal(sk, sk2, 32);
}

static void test_low_order_prekey_rejected(void **state)
{
    (void)state;
    party_t a, b;
    kl_prekey_bundle_t bundle;
    uint8_t sk[32], ek[32], ad[KL_X3DH_AD], zero[32] = {0};

    make_party(&a);
    make_party(&b);
    memset(b.spk_pub, 0, 32);
    make_bundle(&b, 1, 0, &bundle);
    assert_int_equal(kl_x3dh_initiate(a.id_sk, a.id_pk, &bundle, sk, ek, ad), KL_ECRYPTO);
    make_party(&b);
    assert_int_equal(kl_x3dh_respond(b.id_sk, b.id_pk, b.spk_priv, NULL, a.id_pk, zero, sk, ad),
                     KL_ECRYPTO);
    assert_true(kl_is_zero(sk, 32));
}

static void test_mismatched_identity_pair_rejected(void **state)
{
    (void)state;
    party_t a, b, eve;
    kl_prekey_bundle_t bundle;
    uint8_t sk[32], ek[32], ad[KL_X3DH_AD];

    make_party(&a);
    make_party(&b);
    make_party(&eve);
    make_bundle(&b, 1, 0, &bundle);
    assert_int_equal(kl_x3dh_initiate(a.id_sk, eve.id_pk, &bundle, sk, ek, ad), KL_EINVAL);
    assert_int_equal(kl_x3dh_respond(b.id_sk, eve.id_pk, b.spk_priv, NULL, a.id_pk, b.spk_pub, sk,
                                     ad),
                     KL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agree_with_one_time_prekey),
        cmocka_unit_test(test_agree_without_one_time_prekey),
        cmocka_unit_test(test_sk_follows_documented_formula),
        cmocka_unit_test(test_bad_spk_signature_rejected),
        cmocka_unit_test(test_different_keys_give_different_sk),
        cmocka_unit_test(test_low_order_prekey_rejected),
        cmocka_unit_test(test_mismatched_identity_pair_rejected),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
