/* Sealed sender and padding. The relay learns who receives a 1:1 message
 * (it must, to store it) but never who sent it: the sender's address and
 * identity travel inside a crypto_box_seal to the recipient's identity key,
 * whose X25519 form is derived from the published Ed25519 key. Plaintexts
 * are padded to 256-byte blocks first so that lengths leak little. */
#include <sodium.h>
#include <stdint.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/sealed.h"

_Static_assert(KL_SEAL_OVERHEAD == crypto_box_SEALBYTES, "sealed-box overhead mismatch");

/* Seal pt (len bytes) to the holder of recipient_ed_pk. out must have room
 * for len + KL_SEAL_OVERHEAD bytes (KL_ETOOBIG otherwise); KL_ECRYPTO if the
 * recipient key is not a valid Ed25519 point. */
int kl_sealed_seal(const uint8_t recipient_ed_pk[32], const uint8_t *pt, size_t len,
                   uint8_t *out, size_t cap, size_t *outlen)
{
    uint8_t xpk[32];

    if (len > SIZE_MAX - KL_SEAL_OVERHEAD || cap < len + KL_SEAL_OVERHEAD)
        return KL_ETOOBIG;
    if (kl_ed_pk_to_x(recipient_ed_pk, xpk) != 0)
        return KL_ECRYPTO;
    if (crypto_box_seal(out, pt, len, xpk) != 0)
        return KL_ECRYPTO;
    *outlen = len + KL_SEAL_OVERHEAD;
    return 0;
}

/* Open a sealed box with the recipient's Ed25519 key pair. KL_EPROTO if ct
 * is shorter than the overhead, KL_ETOOBIG if cap < len - KL_SEAL_OVERHEAD,
 * KL_ECRYPTO on any tampering or a box for someone else. The converted
 * X25519 secret key is wiped on every path. */
int kl_sealed_open(const uint8_t my_ed_pk[32], const uint8_t my_ed_sk[64], const uint8_t *ct,
                   size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    int r = KL_EPROTO;
    uint8_t xpk[32];
    uint8_t xsk[32];

    if (len < KL_SEAL_OVERHEAD)
        goto out;
    r = KL_ETOOBIG;
    if (cap < len - KL_SEAL_OVERHEAD)
        goto out;
    r = KL_ECRYPTO;
    if (kl_ed_pk_to_x(my_ed_pk, xpk) != 0 || kl_ed_sk_to_x(my_ed_sk, xsk) != 0)
        goto out;
    if (crypto_box_seal_open(out, ct, len, xpk, xsk) != 0)
        goto out;
    *outlen = len - KL_SEAL_OVERHEAD;
    r = 0;
out:
    sodium_memzero(xsk, sizeof xsk);
    return r;
}

/* Pad buf (len bytes of content, cap bytes of room) in place to the next
 * multiple of KL_PAD_BLOCK strictly greater than len (ISO/IEC 7816-4: one
 * 0x80 byte then zeros, so a full block of content gains a whole block).
 * KL_ETOOBIG if cap is too small. */
int kl_pad(uint8_t *buf, size_t len, size_t cap, size_t *padded_len)
{
    size_t n = 0;

    if (len > cap)
        return KL_EINVAL;
    if (sodium_pad(&n, buf, len, KL_PAD_BLOCK, cap) != 0)
        return KL_ETOOBIG;
    *padded_len = n;
    return 0;
}

/* The content length of a padded buffer. KL_EPROTO unless padded_len is a
 * non-zero multiple of KL_PAD_BLOCK with valid padding in its last block. */
int kl_unpad(const uint8_t *buf, size_t padded_len, size_t *len)
{
    size_t n = 0;

    if (padded_len == 0 || padded_len % KL_PAD_BLOCK != 0)
        return KL_EPROTO;
    if (sodium_unpad(&n, buf, padded_len, KL_PAD_BLOCK) != 0)
        return KL_EPROTO;
    *len = n;
    return 0;
}
