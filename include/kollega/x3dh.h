/* X3DH key agreement (Signal's specification) with Ed25519 identity keys
 * used for signatures directly and in their X25519 form for DH.
 *   DH1 = DH(IK_A, SPK_B)  DH2 = DH(EK_A, IK_B)  DH3 = DH(EK_A, SPK_B)
 *   DH4 = DH(EK_A, OPK_B) when a one-time prekey was used
 *   SK  = HKDF-SHA256(salt = 32 zero bytes, ikm = 32*0xFF || DH1..DH4,
 *                     info = "kollega-x3dh-v1", 32 bytes)
 *   AD  = IK_A || IK_B (the Ed25519 public keys, initiator first)
 * The signed prekey signature is Ed25519 by IK_B over
 * "kollega-spk-v1" || spk_id (u32 BE) || SPK_B. */
#ifndef KOLLEGA_X3DH_H
#define KOLLEGA_X3DH_H

#include <stdint.h>

#define KL_X3DH_AD 64

typedef struct kl_prekey_bundle {
    uint8_t identity_key[32];  /* Ed25519 public key of the responder */
    uint32_t spk_id;
    uint8_t spk[32];           /* X25519 signed prekey */
    uint8_t spk_sig[64];
    int has_opk;
    uint32_t opk_id;
    uint8_t opk[32];           /* X25519 one-time prekey */
} kl_prekey_bundle_t;

/* Sign signed prekey spk_id with the identity key (Ed25519 secret key):
 * 0 or KL_ECRYPTO; verify such a signature by id_pk: 0 or KL_ECRYPTO. */
int kl_x3dh_spk_sign(const uint8_t id_sk[64], uint32_t spk_id, const uint8_t spk_pub[32],
                     uint8_t sig[64]);
int kl_x3dh_spk_verify(const uint8_t id_pk[32], uint32_t spk_id, const uint8_t spk_pub[32],
                       const uint8_t sig[64]);

/* Initiator side, id_sk/id_pk its identity key pair. Verifies the
 * bundle's SPK signature, makes an ephemeral key (wiped before return),
 * writes SK, EK_A public and AD into the caller's buffers (SK is a secret:
 * wipe it). KL_EINVAL if id_pk is not id_sk's public key, KL_ECRYPTO for a
 * bad signature or an invalid or low-order key; on failure sk, ek_pub and
 * ad are zeroed. */
int kl_x3dh_initiate(const uint8_t id_sk[64], const uint8_t id_pk[32],
                     const kl_prekey_bundle_t *bundle, uint8_t sk[32], uint8_t ek_pub[32],
                     uint8_t ad[KL_X3DH_AD]);
/* Same with a caller-chosen ephemeral private key (tests), same errors. */
int kl_x3dh_initiate_with(const uint8_t id_sk[64], const uint8_t id_pk[32],
                          const kl_prekey_bundle_t *bundle, const uint8_t ek_priv[32],
                          uint8_t sk[32], uint8_t ek_pub[32], uint8_t ad[KL_X3DH_AD]);
/* Responder side: mirrors the initiator's DHs with its private keys;
 * opk_priv NULL when the initiator used no one-time prekey. SK and AD into
 * the caller's buffers. KL_EINVAL if id_pk is not id_sk's public key,
 * KL_ECRYPTO for an invalid or low-order peer key; on failure sk and ad
 * are zeroed. */
int kl_x3dh_respond(const uint8_t id_sk[64], const uint8_t id_pk[32], const uint8_t spk_priv[32],
                    const uint8_t *opk_priv, const uint8_t peer_ik[32], const uint8_t peer_ek[32],
                    uint8_t sk[32], uint8_t ad[KL_X3DH_AD]);

#endif
