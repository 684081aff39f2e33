/* The federation link hint (proto/federation.proto "Transport"): the
 * initiator of a relay-to-relay link puts 16 bytes in front of Noise_KK
 * message 1 that tell the responder, for the price of a keyed hash per
 * configured peer and no Diffie-Hellman, which peer key to try. Only a
 * relay holding one side of the pair's static-static DH can make a hint
 * that matches, so an unauthenticated connection costs the responder at
 * most one handshake try instead of one per configured peer.
 *
 *   hint_key = BLAKE2b-256(key = X25519(our static sk, peer static pk),
 *                          message = "kollega-federation/1 hint")
 *   hint     = BLAKE2b-128(key = hint_key, message = the initiator's
 *                          ephemeral public key, i.e. message 1's first
 *                          32 bytes)
 *
 * The static-static DH is the same from both ends, so both relays of a
 * pair derive the same hint_key once at start. */
#ifndef KOLLEGA_FEDHINT_H
#define KOLLEGA_FEDHINT_H

#include <stddef.h>
#include <stdint.h>

#define KL_FEDHINT_KEY 32
#define KL_FEDHINT_LEN 16
#define KL_FEDHINT_LABEL "kollega-federation/1 hint"

/* The pair's hint key from our static private key and the peer's static
 * public key. 0, or KL_ECRYPTO (the DH is all zero: a bad peer key). key
 * is a secret: keep it in guarded memory and wipe it. */
int kl_fedhint_key(const uint8_t sk[32], const uint8_t peer_pk[32],
                   uint8_t key[KL_FEDHINT_KEY]);
/* The hint for a Noise_KK message 1 of msg1_len bytes (at least the 32
 * bytes of the ephemeral key, else KL_EINVAL). 0 or a kl_err. */
int kl_fedhint_make(const uint8_t key[KL_FEDHINT_KEY], const uint8_t *msg1, size_t msg1_len,
                    uint8_t hint[KL_FEDHINT_LEN]);
/* Index (0..n-1) of the key among keys[n] (KL_FEDHINT_KEY bytes each)
 * whose hint for msg1 equals hint, or -1. Every key is tried and compared
 * in constant time whichever matches, so the time says nothing about
 * which peer (if any) a hint names. */
long kl_fedhint_find(const uint8_t *keys, size_t n, const uint8_t hint[KL_FEDHINT_LEN],
                     const uint8_t *msg1, size_t msg1_len);

#endif
