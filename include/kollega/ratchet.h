/* The Double Ratchet (Signal's specification) with:
 *   root KDF:  HKDF-SHA256(salt = RK, ikm = DH output, info "kollega-ratchet-v1") -> RK', CK
 *   chain KDF: MK = HMAC-SHA256(CK, 0x01), CK' = HMAC-SHA256(CK, 0x02)
 *   message:   HKDF-SHA256(salt 32 zero bytes, ikm MK, info "kollega-msg-v1") -> key 32 || nonce 24
 *              XChaCha20-Poly1305-IETF, AD = X3DH AD (IK_A || IK_B) || encoded header
 *   header:    DH public (32) || PN (u32 BE) || N (u32 BE) = 40 bytes, in the clear
 * Wire message = header || ciphertext (plaintext + 16-byte tag).
 * Skipped message keys are kept for out-of-order delivery, at most
 * KL_RATCHET_MAX_SKIP per chain step and KL_RATCHET_MAX_STORED in total
 * (oldest evicted first). */
#ifndef KOLLEGA_RATCHET_H
#define KOLLEGA_RATCHET_H

#include <stddef.h>
#include <stdint.h>

#define KL_RATCHET_HEADER 40
#define KL_RATCHET_OVERHEAD (KL_RATCHET_HEADER + 16)
#define KL_RATCHET_MAX_SKIP 1000
#define KL_RATCHET_MAX_STORED 2000

typedef struct kl_ratchet kl_ratchet_t; /* opaque, in guarded memory */

/* Initiator (after kl_x3dh_initiate): peer_ratchet_pub is the responder's SPK. */
int kl_ratchet_init_initiator(kl_ratchet_t **out, const uint8_t sk[32],
                              const uint8_t peer_ratchet_pub[32], const uint8_t ad[64]);
/* Responder: its SPK key pair is the first ratchet key pair. */
int kl_ratchet_init_responder(kl_ratchet_t **out, const uint8_t sk[32],
                              const uint8_t spk_priv[32], const uint8_t spk_pub[32],
                              const uint8_t ad[64]);
/* out needs len + KL_RATCHET_OVERHEAD bytes. */
int kl_ratchet_encrypt(kl_ratchet_t *r, const uint8_t *pt, size_t len, uint8_t *out,
                       size_t cap, size_t *outlen);
/* Decrypt; on any failure (KL_EPROTO malformed, KL_ECRYPTO tampered or
 * replayed, KL_ELIMIT too many skipped) the state is exactly as before. */
int kl_ratchet_decrypt(kl_ratchet_t *r, const uint8_t *msg, size_t len, uint8_t *out,
                       size_t cap, size_t *outlen);
/* Serialise the whole state (for the client's encrypted store). *out is
 * malloc'd; release it with kl_free_wipe(*out, *len). */
int kl_ratchet_serialize(const kl_ratchet_t *r, uint8_t **out, size_t *len);
/* KL_EPROTO on malformed input. */
int kl_ratchet_deserialize(kl_ratchet_t **out, const uint8_t *in, size_t len);
void kl_ratchet_free(kl_ratchet_t *r);

#endif
