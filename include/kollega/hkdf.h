/* HKDF-SHA256 (RFC 5869) on libsodium's HMAC-SHA256. */
#ifndef KOLLEGA_HKDF_H
#define KOLLEGA_HKDF_H

#include <stddef.h>
#include <stdint.h>

/* HKDF-Extract: prk = HMAC-SHA256(salt, ikm). Cannot fail. */
void kl_hkdf_sha256_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                            size_t ikm_len, uint8_t prk[32]);
/* HKDF-Expand of prk and info into out_len bytes of out, and the two in
 * one (kl_hkdf_sha256). 0, or KL_EINVAL if out_len > 255 * 32. The caller
 * wipes prk and out when they are secrets. */
int kl_hkdf_sha256_expand(const uint8_t prk[32], const uint8_t *info, size_t info_len,
                          uint8_t *out, size_t out_len);
int kl_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                   const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len);

#endif
