/* Sender keys for group messages (docs/DESIGN.md "Groups"): each member has, per
 * group, a hash chain and an Ed25519 signing key; the current chain state
 * is distributed to every other member over the 1:1 sessions, so a group
 * message is encrypted once and fanned out by the relay.
 *   chain:   MK_n = HMAC-SHA256(CK_n, 0x01), CK_{n+1} = HMAC-SHA256(CK_n, 0x02)
 *   message: HKDF-SHA256(salt 32 zero bytes, ikm MK_n, info "kollega-senderkey-v1")
 *            -> XChaCha20-Poly1305 key 32 || nonce 24
 *   wire:    key_id (u32 BE) || n (u32 BE) || ciphertext (pt + 16)
 *            || Ed25519 signature (64) by the chain's signing key over
 *            "kollega-senderkey-msg-v1" || ad || everything before the signature
 *   AEAD AD: the caller's ad (the group address and the sender's identity key)
 *            || key_id || n
 * A distribution record gives the receiver key_id, n, CK_n and the signing
 * public key: it can read message n and later, never earlier ones. After a
 * member leaves or is removed, every remaining member makes a new sender key
 * (new key_id, fresh CK and signing key) and distributes it to the others
 * only. Receivers keep skipped message keys for out-of-order delivery,
 * bounded by KL_SENDERKEY_MAX_SKIP; decrypt is transactional. */
#ifndef KOLLEGA_SENDERKEY_H
#define KOLLEGA_SENDERKEY_H

#include <stddef.h>
#include <stdint.h>

#define KL_SENDERKEY_OVERHEAD (4 + 4 + 16 + 64)
#define KL_SENDERKEY_DIST (4 + 4 + 32 + 32) /* key_id, n, CK_n, signing pub */
#define KL_SENDERKEY_MAX_SKIP 2000

typedef struct kl_senderkey kl_senderkey_t; /* opaque, guarded memory */

/* Own sending chain with a random CK and a fresh signing key pair, in *out
 * (the caller's: kl_senderkey_free). KL_EINVAL, KL_ENOMEM, KL_ECRYPTO. */
int kl_senderkey_new(kl_senderkey_t **out, uint32_t key_id);
/* Encrypt len bytes of pt as the own chain's next message into out (len +
 * KL_SENDERKEY_OVERHEAD bytes, not overlapping pt). KL_ESTATE for a
 * receiving state, KL_ELIMIT when the counter is exhausted, KL_ETOOBIG,
 * KL_ENOMEM, KL_EINVAL. The chain advances only on success. */
int kl_senderkey_encrypt(kl_senderkey_t *s, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                         size_t len, uint8_t *out, size_t cap, size_t *outlen);
/* The distribution record of the chain at its current position into out.
 * It holds CK: the caller wipes it once sent. KL_EINVAL for NULL. */
int kl_senderkey_export(const kl_senderkey_t *s, uint8_t out[KL_SENDERKEY_DIST]);
/* A receiving state from a distribution record, in *out (the caller's:
 * kl_senderkey_free). KL_EPROTO unless len is KL_SENDERKEY_DIST and the
 * signing key a valid point, KL_ENOMEM. */
int kl_senderkey_import(kl_senderkey_t **out, const uint8_t *dist, size_t len);
/* Read the key_id of a message without decrypting (KL_EPROTO if short). */
int kl_senderkey_msg_key_id(const uint8_t *msg, size_t len, uint32_t *key_id);
/* Decrypt with a receiving state: KL_ECRYPTO on a bad signature, tampering,
 * replay or a message older than the imported position; KL_ELIMIT for a
 * skip over the bound; KL_ENOTFOUND if key_id differs. State unchanged on
 * any failure. */
int kl_senderkey_decrypt(kl_senderkey_t *s, const uint8_t *ad, size_t adlen, const uint8_t *msg,
                         size_t len, uint8_t *out, size_t cap, size_t *outlen);
/* The state's key_id. Cannot fail. */
uint32_t kl_senderkey_id(const kl_senderkey_t *s);
/* Serialise (for the client's encrypted store); *out malloc'd and holding
 * secrets, release with kl_free_wipe(*out, *len). KL_EINVAL, KL_ENOMEM. */
int kl_senderkey_serialize(const kl_senderkey_t *s, uint8_t **out, size_t *len);
/* Restore a serialised state into *out (the caller's: kl_senderkey_free).
 * KL_EPROTO on anything but the canonical encoding, KL_ENOMEM. */
int kl_senderkey_deserialize(kl_senderkey_t **out, const uint8_t *in, size_t len);
/* Wipe and free (NULL is fine). */
void kl_senderkey_free(kl_senderkey_t *s);

#endif
