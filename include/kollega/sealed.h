/* Sealed sender (crypto_box_seal to an identity key) and padding. */
#ifndef KOLLEGA_SEALED_H
#define KOLLEGA_SEALED_H

#include <stddef.h>
#include <stdint.h>

#define KL_PAD_BLOCK 256

/* crypto_box_seal of len bytes of pt to the recipient's Ed25519 identity
 * key (converted to X25519) into out: *outlen = len + KL_SEAL_OVERHEAD.
 * KL_ETOOBIG if cap is smaller, KL_ECRYPTO if the key is not a valid
 * point. */
int kl_sealed_seal(const uint8_t recipient_ed_pk[32], const uint8_t *pt, size_t len,
                   uint8_t *out, size_t cap, size_t *outlen);
/* The inverse with the recipient's Ed25519 key pair: *outlen = len -
 * KL_SEAL_OVERHEAD bytes into out. KL_EPROTO if ct is shorter than the
 * overhead, KL_ETOOBIG if cap is smaller than the plaintext, KL_ECRYPTO on
 * any tampering or a box for someone else. The converted secret key is
 * wiped. */
int kl_sealed_open(const uint8_t my_ed_pk[32], const uint8_t my_ed_sk[64], const uint8_t *ct,
                   size_t len, uint8_t *out, size_t cap, size_t *outlen);

/* ISO/IEC 7816-4 padding (sodium_pad) in place to the next multiple of
 * KL_PAD_BLOCK strictly above len: buf holds len bytes and has cap
 * capacity; *padded_len gets the new length. KL_EINVAL if len > cap,
 * KL_ETOOBIG if the padding does not fit. */
int kl_pad(uint8_t *buf, size_t len, size_t cap, size_t *padded_len);
/* The content length of padded_len padded bytes into *len. KL_EPROTO
 * unless padded_len is a non-zero multiple of KL_PAD_BLOCK with valid
 * padding in its last block. */
int kl_unpad(const uint8_t *buf, size_t padded_len, size_t *len);

#endif
