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

/* A new state in *out (the caller's: kl_ratchet_free) from X3DH's SK and
 * AD; the caller still owns and wipes sk. Initiator (after
 * kl_x3dh_initiate): peer_ratchet_pub is the responder's SPK, and the
 * state can send at once; KL_ECRYPTO if that key is a low-order point.
 * Responder: its SPK key pair is the first ratchet key pair, and it can
 * send only once the first message arrived; KL_EINVAL if spk_pub is not
 * spk_priv's public key. Both: KL_ENOMEM; *out NULL on failure. */
int kl_ratchet_init_initiator(kl_ratchet_t **out, const uint8_t sk[32],
                              const uint8_t peer_ratchet_pub[32], const uint8_t ad[64]);
int kl_ratchet_init_responder(kl_ratchet_t **out, const uint8_t sk[32],
                              const uint8_t spk_priv[32], const uint8_t spk_pub[32],
                              const uint8_t ad[64]);
/* Encrypt len bytes of pt into out = header || ciphertext (len +
 * KL_RATCHET_OVERHEAD bytes, not overlapping pt). KL_ETOOBIG if cap is
 * smaller, KL_ESTATE before a responder can send, KL_ELIMIT when the
 * chain's counter is exhausted. The sending chain advances only on
 * success. */
int kl_ratchet_encrypt(kl_ratchet_t *r, const uint8_t *pt, size_t len, uint8_t *out,
                       size_t cap, size_t *outlen);
/* Decrypt msg into out (len - KL_RATCHET_OVERHEAD bytes, not overlapping
 * msg; KL_ETOOBIG if cap is smaller). On any failure (KL_EPROTO malformed,
 * KL_ECRYPTO tampered or replayed, KL_ELIMIT too many skipped, KL_ENOMEM)
 * the state is exactly as before. */
int kl_ratchet_decrypt(kl_ratchet_t *r, const uint8_t *msg, size_t len, uint8_t *out,
                       size_t cap, size_t *outlen);
/* Serialise the whole state (for the client's encrypted store). *out is
 * malloc'd and holds secrets; release it with kl_free_wipe(*out, *len).
 * KL_ENOMEM. */
int kl_ratchet_serialize(const kl_ratchet_t *r, uint8_t **out, size_t *len);
/* Restore a serialised state into *out (the caller's: kl_ratchet_free).
 * KL_EPROTO on anything but the canonical encoding, KL_ENOMEM. */
int kl_ratchet_deserialize(kl_ratchet_t **out, const uint8_t *in, size_t len);
/* Wipe and free the state (NULL is fine). */
void kl_ratchet_free(kl_ratchet_t *r);

#endif
