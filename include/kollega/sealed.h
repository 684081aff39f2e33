/* Sealed sender and padding.
 * kl_sealed_seal: crypto_box_seal of pt to the recipient's Ed25519 identity
 * key (converted to X25519); out gets len + KL_SEAL_OVERHEAD bytes.
 * kl_sealed_open: the inverse with the recipient's key pair; KL_ECRYPTO on
 * any tampering, KL_EPROTO if shorter than the overhead. */
#ifndef KOLLEGA_SEALED_H
#define KOLLEGA_SEALED_H

#include <stddef.h>
#include <stdint.h>

#define KL_PAD_BLOCK 256

int kl_sealed_seal(const uint8_t recipient_ed_pk[32], const uint8_t *pt, size_t len,
                   uint8_t *out, size_t cap, size_t *outlen);
int kl_sealed_open(const uint8_t my_ed_pk[32], const uint8_t my_ed_sk[64], const uint8_t *ct,
                   size_t len, uint8_t *out, size_t cap, size_t *outlen);

/* ISO/IEC 7816-4 padding to a multiple of KL_PAD_BLOCK (sodium_pad): buf
 * holds len bytes and has cap capacity; *padded_len gets the new length. */
int kl_pad(uint8_t *buf, size_t len, size_t cap, size_t *padded_len);
int kl_unpad(const uint8_t *buf, size_t padded_len, size_t *len);

#endif
