/* X3DH key agreement (Signal's specification, "The X3DH Key Agreement
 * Protocol", revision 1) for Kollega: Ed25519 identity keys sign the signed
 * prekey directly and take part in Diffie-Hellman through their X25519 form.
 * The exact derivation is documented in include/kollega/x3dh.h. */
#include <sodium.h>
#include <string.h>

#include "kollega/buf.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/hkdf.h"
#include "kollega/x3dh.h"

#define SPK_LABEL "kollega-spk-v1"
#define SPK_LABEL_LEN (sizeof SPK_LABEL - 1)
#define SPK_MSG_LEN (SPK_LABEL_LEN + 4 + 32)
#define X3DH_INFO "kollega-x3dh-v1"
#define X3DH_INFO_LEN (sizeof X3DH_INFO - 1)
/* 32 bytes of 0xFF (the curve25519 "F" of the spec) then up to four DH outputs. */
#define IKM_MAX (32 + 4 * 32)

/* The signed message: label || spk_id (u32 BE) || spk. Binding the id means
 * a relay cannot relabel an old signed prekey as a newer one. */
static void spk_message(uint32_t spk_id, const uint8_t spk_pub[32], uint8_t msg[SPK_MSG_LEN])
{
    memcpy(msg, SPK_LABEL, SPK_LABEL_LEN);
    kl_put_u32(msg + SPK_LABEL_LEN, spk_id);
    memcpy(msg + SPK_LABEL_LEN + 4, spk_pub, 32);
}

/* Sign a signed prekey with the identity key (Ed25519 secret key, 64 bytes).
 * Returns 0 or KL_ECRYPTO. */
int kl_x3dh_spk_sign(const uint8_t id_sk[64], uint32_t spk_id, const uint8_t spk_pub[32],
                     uint8_t sig[64])
{
    uint8_t msg[SPK_MSG_LEN];
    spk_message(spk_id, spk_pub, msg);
    return kl_sign(id_sk, msg, sizeof msg, sig);
}

/* Verify a signed prekey signature by id_pk. Returns 0 or KL_ECRYPTO. */
int kl_x3dh_spk_verify(const uint8_t id_pk[32], uint32_t spk_id, const uint8_t spk_pub[32],
                       const uint8_t sig[64])
{
    uint8_t msg[SPK_MSG_LEN];
    spk_message(spk_id, spk_pub, msg);
    return kl_sign_verify(id_pk, msg, sizeof msg, sig) == 0 ? 0 : KL_ECRYPTO;
}

/* SK = HKDF(salt = 32 zero bytes, ikm, info "kollega-x3dh-v1", 32 bytes). */
static int derive_sk(const uint8_t *ikm, size_t ikm_len, uint8_t sk[32])
{
    static const uint8_t zeros[32];
    return kl_hkdf_sha256(zeros, sizeof zeros, ikm, ikm_len, (const uint8_t *)X3DH_INFO,
                          X3DH_INFO_LEN, sk, 32);
}

/* An Ed25519 secret key from libsodium carries its public key in the last 32
 * bytes. A caller passing a mismatched pair would compute an AD that names a
 * key it does not hold; refuse that instead of agreeing on garbage. */
static int check_identity(const uint8_t id_sk[64], const uint8_t id_pk[32])
{
    return sodium_memcmp(id_sk + 32, id_pk, 32) == 0 ? 0 : KL_EINVAL;
}

/* The end of both sides, unless r is already an error: the DHs
 * DH(priv[i], pub[i]) for i < ndh (3, or 4 with a one-time prekey) after 32
 * bytes of 0xFF as the IKM of SK (derive_sk), and AD = IK_A || IK_B.
 * KL_ECRYPTO if a DH output is all zero (a low-order point). On any error
 * (r's or its own) sk and ad are zeroed. */
static int agree(int r, const uint8_t *const priv[4], const uint8_t *const pub[4], size_t ndh,
                 const uint8_t ik_a[32], const uint8_t ik_b[32], uint8_t sk[32],
                 uint8_t ad[KL_X3DH_AD])
{
    uint8_t ikm[IKM_MAX];
    size_t n = 32;

    memset(ikm, 0xFF, 32);
    for (size_t i = 0; r == 0 && i < ndh; i++, n += 32)
        if (kl_dh(priv[i], pub[i], ikm + n) != 0)
            r = KL_ECRYPTO;
    if (r == 0)
        r = derive_sk(ikm, n, sk);
    if (r == 0) {
        memcpy(ad, ik_a, 32);
        memcpy(ad + 32, ik_b, 32);
    } else {
        sodium_memzero(sk, 32);
        sodium_memzero(ad, KL_X3DH_AD);
    }
    sodium_memzero(ikm, sizeof ikm);
    return r;
}

/* Initiator side with a caller-chosen ephemeral private key. Verifies the
 * bundle's SPK signature (KL_ECRYPTO if bad or if any key is an invalid or
 * low-order point), then outputs SK, EK_A public and AD = IK_A || IK_B.
 * On failure sk, ek_pub and ad are zeroed. */
int kl_x3dh_initiate_with(const uint8_t id_sk[64], const uint8_t id_pk[32],
                          const kl_prekey_bundle_t *bundle, const uint8_t ek_priv[32],
                          uint8_t sk[32], uint8_t ek_pub[32], uint8_t ad[KL_X3DH_AD])
{
    uint8_t ik_a_x[32];
    uint8_t ik_b_x[32];
    /* DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B), DH3 = DH(EK_A, SPK_B),
     * DH4 = DH(EK_A, OPK_B). */
    const uint8_t *const priv[4] = {ik_a_x, ek_priv, ek_priv, ek_priv};
    const uint8_t *const pub[4] = {bundle->spk, ik_b_x, bundle->spk, bundle->opk};
    int r = check_identity(id_sk, id_pk);

    if (r == 0)
        r = kl_x3dh_spk_verify(bundle->identity_key, bundle->spk_id, bundle->spk,
                               bundle->spk_sig);
    if (r == 0 && (kl_ed_sk_to_x(id_sk, ik_a_x) != 0 ||
                   kl_ed_pk_to_x(bundle->identity_key, ik_b_x) != 0 ||
                   kl_x_public(ek_priv, ek_pub) != 0))
        r = KL_ECRYPTO;
    r = agree(r, priv, pub, bundle->has_opk ? 4 : 3, id_pk, bundle->identity_key, sk, ad);
    if (r)
        sodium_memzero(ek_pub, 32);
    sodium_memzero(ik_a_x, sizeof ik_a_x);
    sodium_memzero(ik_b_x, sizeof ik_b_x);
    return r;
}

/* Initiator side with a fresh random ephemeral key (wiped before return). */
int kl_x3dh_initiate(const uint8_t id_sk[64], const uint8_t id_pk[32],
                     const kl_prekey_bundle_t *bundle, uint8_t sk[32], uint8_t ek_pub[32],
                     uint8_t ad[KL_X3DH_AD])
{
    uint8_t ek_priv[32];
    uint8_t ek_tmp[32];
    int r;

    kl_x_keypair(ek_tmp, ek_priv);
    r = kl_x3dh_initiate_with(id_sk, id_pk, bundle, ek_priv, sk, ek_pub, ad);
    sodium_memzero(ek_priv, sizeof ek_priv);
    return r;
}

/* Responder side: mirrors the initiator's DHs with the responder's private
 * keys. opk_priv is NULL when the initiator used no one-time prekey.
 * Returns 0, KL_EINVAL for a mismatched identity pair, or KL_ECRYPTO for an
 * invalid or low-order peer key; on failure sk and ad are zeroed. */
int kl_x3dh_respond(const uint8_t id_sk[64], const uint8_t id_pk[32], const uint8_t spk_priv[32],
                    const uint8_t *opk_priv, const uint8_t peer_ik[32], const uint8_t peer_ek[32],
                    uint8_t sk[32], uint8_t ad[KL_X3DH_AD])
{
    uint8_t ik_b_x[32];
    uint8_t ik_a_x[32];
    const uint8_t *const priv[4] = {spk_priv, ik_b_x, spk_priv, opk_priv};
    const uint8_t *const pub[4] = {ik_a_x, peer_ek, peer_ek, peer_ek};
    int r = check_identity(id_sk, id_pk);

    if (r == 0 && (kl_ed_sk_to_x(id_sk, ik_b_x) != 0 || kl_ed_pk_to_x(peer_ik, ik_a_x) != 0))
        r = KL_ECRYPTO;
    r = agree(r, priv, pub, opk_priv != NULL ? 4 : 3, peer_ik, id_pk, sk, ad);
    sodium_memzero(ik_a_x, sizeof ik_a_x);
    sodium_memzero(ik_b_x, sizeof ik_b_x);
    return r;
}
