/* HKDF-SHA256 (RFC 5869) over libsodium's multi-part HMAC-SHA256. Used by
 * X3DH, the Double Ratchet and anything else in libkollega that needs to
 * stretch one secret into several keys. */
#include <sodium.h>
#include <string.h>

#include "kollega/err.h"
#include "kollega/hkdf.h"

#define HASH_LEN crypto_auth_hmacsha256_BYTES

/* PRK = HMAC-SHA256(salt, IKM). RFC 5869 says an absent salt is HashLen zero
 * bytes; HMAC pads any key shorter than the block with zeros anyway, so an
 * empty salt and a 32-byte zero salt give the same PRK. We still pass the
 * zeros explicitly so the code reads like the RFC. */
void kl_hkdf_sha256_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                            size_t ikm_len, uint8_t prk[32])
{
    static const uint8_t zeros[HASH_LEN];
    crypto_auth_hmacsha256_state st;

    if (salt == NULL || salt_len == 0) {
        salt = zeros;
        salt_len = sizeof zeros;
    }
    crypto_auth_hmacsha256_init(&st, salt, salt_len);
    crypto_auth_hmacsha256_update(&st, ikm, ikm_len);
    crypto_auth_hmacsha256_final(&st, prk);
    sodium_memzero(&st, sizeof st);
}

/* OKM = T(1) || T(2) || ... truncated to out_len, where
 * T(i) = HMAC-SHA256(PRK, T(i-1) || info || i) and T(0) is empty.
 * Returns 0, or KL_EINVAL if out_len > 255 * 32 (the counter is one byte).
 * out may be NULL only when out_len is 0. */
int kl_hkdf_sha256_expand(const uint8_t prk[32], const uint8_t *info, size_t info_len,
                          uint8_t *out, size_t out_len)
{
    crypto_auth_hmacsha256_state st;
    uint8_t t[HASH_LEN];
    size_t done = 0;
    uint8_t ctr = 1;

    if (out_len > 255u * HASH_LEN)
        return KL_EINVAL;
    if (info == NULL)
        info_len = 0;
    while (done < out_len) {
        crypto_auth_hmacsha256_init(&st, prk, HASH_LEN);
        if (done > 0)
            crypto_auth_hmacsha256_update(&st, t, sizeof t);
        if (info_len > 0)
            crypto_auth_hmacsha256_update(&st, info, info_len);
        crypto_auth_hmacsha256_update(&st, &ctr, 1);
        crypto_auth_hmacsha256_final(&st, t);
        size_t take = out_len - done < HASH_LEN ? out_len - done : HASH_LEN;
        memcpy(out + done, t, take);
        done += take;
        ctr++;
    }
    sodium_memzero(&st, sizeof st);
    sodium_memzero(t, sizeof t);
    return 0;
}

/* Extract then expand; the PRK never leaves this function. */
int kl_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                   const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    uint8_t prk[HASH_LEN];
    int r;

    if (out_len > 255u * HASH_LEN)
        return KL_EINVAL;
    kl_hkdf_sha256_extract(salt, salt_len, ikm, ikm_len, prk);
    r = kl_hkdf_sha256_expand(prk, info, info_len, out, out_len);
    sodium_memzero(prk, sizeof prk);
    return r;
}
