/* The one place the relay and client reach libsodium through. */
#include <sodium.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"

int kl_crypto_init(void)
{
    return sodium_init() < 0 ? KL_ECRYPTO : 0;
}

void kl_random(void *buf, size_t len)
{
    randombytes_buf(buf, len);
}

uint32_t kl_random_u32(void)
{
    return randombytes_random();
}

void kl_memzero(void *p, size_t len)
{
    sodium_memzero(p, len);
}

int kl_memcmp(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0 ? 0 : 1;
}

int kl_is_zero(const uint8_t *p, size_t len)
{
    return sodium_is_zero(p, len);
}

void *kl_secure_alloc(size_t len)
{
    return sodium_malloc(len);
}

void kl_secure_free(void *p)
{
    sodium_free(p); /* wipes before unmapping */
}

void kl_free_wipe(void *p, size_t len)
{
    if (p == NULL)
        return;
    sodium_memzero(p, len);
    free(p);
}

int kl_sign_keypair(uint8_t pk[KL_ED_PK], uint8_t sk[KL_ED_SK])
{
    return crypto_sign_keypair(pk, sk) == 0 ? 0 : KL_ECRYPTO;
}

int kl_sign(const uint8_t sk[KL_ED_SK], const uint8_t *msg, size_t len, uint8_t sig[KL_SIG])
{
    return crypto_sign_detached(sig, NULL, msg, len, sk) == 0 ? 0 : KL_ECRYPTO;
}

int kl_sign_verify(const uint8_t pk[KL_ED_PK], const uint8_t *msg, size_t len,
                   const uint8_t sig[KL_SIG])
{
    return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? 0 : KL_ECRYPTO;
}

int kl_ed_pk_to_x(const uint8_t ed_pk[KL_ED_PK], uint8_t x_pk[KL_X_KEY])
{
    return crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk) == 0 ? 0 : KL_ECRYPTO;
}

int kl_ed_sk_to_x(const uint8_t ed_sk[KL_ED_SK], uint8_t x_sk[KL_X_KEY])
{
    return crypto_sign_ed25519_sk_to_curve25519(x_sk, ed_sk) == 0 ? 0 : KL_ECRYPTO;
}

void kl_x_keypair(uint8_t pk[KL_X_KEY], uint8_t sk[KL_X_KEY])
{
    crypto_box_keypair(pk, sk);
}

int kl_x_public(const uint8_t sk[KL_X_KEY], uint8_t pk[KL_X_KEY])
{
    return crypto_scalarmult_base(pk, sk) == 0 ? 0 : KL_ECRYPTO;
}

int kl_dh(const uint8_t sk[KL_X_KEY], const uint8_t pk[KL_X_KEY], uint8_t out[KL_X_KEY])
{
    /* crypto_scalarmult fails on an all-zero output (low-order point). */
    return crypto_scalarmult(out, sk, pk) == 0 ? 0 : KL_ECRYPTO;
}

int kl_aead_seal(const uint8_t key[KL_AEAD_KEY], const uint8_t nonce[KL_AEAD_NONCE],
                 const uint8_t *ad, size_t adlen, const uint8_t *pt, size_t len, uint8_t *out)
{
    unsigned long long clen;
    return crypto_aead_xchacha20poly1305_ietf_encrypt(out, &clen, pt, len, ad, adlen, NULL,
                                                      nonce, key) == 0
               ? 0
               : KL_ECRYPTO;
}

int kl_aead_open(const uint8_t key[KL_AEAD_KEY], const uint8_t nonce[KL_AEAD_NONCE],
                 const uint8_t *ad, size_t adlen, const uint8_t *ct, size_t len, uint8_t *out)
{
    unsigned long long plen;
    if (len < KL_AEAD_TAG)
        return KL_EPROTO;
    return crypto_aead_xchacha20poly1305_ietf_decrypt(out, &plen, NULL, ct, len, ad, adlen,
                                                      nonce, key) == 0
               ? 0
               : KL_ECRYPTO;
}

void kl_sha256(const uint8_t *in, size_t len, uint8_t out[32])
{
    crypto_hash_sha256(out, in, len);
}

int kl_blake2b_keyed(const uint8_t *key, size_t keylen, const uint8_t *in, size_t len,
                     uint8_t *out, size_t outlen)
{
    if (keylen < crypto_generichash_KEYBYTES_MIN || keylen > crypto_generichash_KEYBYTES_MAX ||
        outlen < crypto_generichash_BYTES_MIN || outlen > crypto_generichash_BYTES_MAX)
        return KL_EINVAL;
    return crypto_generichash(out, outlen, in, len, key, keylen) == 0 ? 0 : KL_ECRYPTO;
}

_Static_assert(KL_PWHASH_SALT == crypto_pwhash_SALTBYTES, "salt size");
_Static_assert(KL_PWHASH_ALG_ARGON2ID13 == crypto_pwhash_ALG_ARGON2ID13, "argon2id13");
_Static_assert(KL_PWHASH_OPS_INTERACTIVE == crypto_pwhash_OPSLIMIT_INTERACTIVE, "ops");
_Static_assert(KL_PWHASH_MEM_INTERACTIVE == crypto_pwhash_MEMLIMIT_INTERACTIVE, "mem");
_Static_assert(KL_PWHASH_OPS_MODERATE == crypto_pwhash_OPSLIMIT_MODERATE, "ops");
_Static_assert(KL_PWHASH_MEM_MODERATE == crypto_pwhash_MEMLIMIT_MODERATE, "mem");
_Static_assert(KL_PWHASH_OPS_MIN == crypto_pwhash_argon2id_OPSLIMIT_MIN, "ops min");
_Static_assert(KL_PWHASH_MEM_MIN == crypto_pwhash_argon2id_MEMLIMIT_MIN, "mem min");

void kl_pwhash_params_default(kl_pwhash_params_t *p)
{
    p->alg = KL_PWHASH_ALG_ARGON2ID13;
    p->opslimit = KL_PWHASH_OPS_MODERATE;
    p->memlimit = KL_PWHASH_MEM_MODERATE;
}

int kl_pwhash_params_check(const kl_pwhash_params_t *p)
{
    if (p->alg != KL_PWHASH_ALG_ARGON2ID13 || p->opslimit < KL_PWHASH_OPS_MIN ||
        p->memlimit < KL_PWHASH_MEM_MIN)
        return KL_EPROTO;
    if (p->opslimit > KL_PWHASH_OPS_MAX || p->memlimit > KL_PWHASH_MEM_MAX)
        return KL_ELIMIT;
    return 0;
}

int kl_pwhash(uint8_t key[32], const char *pass, size_t passlen,
              const uint8_t salt[KL_PWHASH_SALT], const kl_pwhash_params_t *p)
{
    int r = kl_pwhash_params_check(p);
    if (r)
        return r;
    if (crypto_pwhash(key, 32, pass, passlen, salt, p->opslimit, (size_t)p->memlimit,
                      p->alg) != 0)
        return KL_ENOMEM;
    return 0;
}

size_t kl_b64_len(size_t n)
{
    return sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int kl_b64_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    if (cap < kl_b64_len(n))
        return KL_ETOOBIG;
    sodium_bin2base64(out, cap, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return 0;
}

int kl_b64_decode(const char *in, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t n = 0;
    const char *end = NULL;
    size_t inlen = strlen(in);
    if (sodium_base642bin(out, cap, in, inlen, NULL, &n, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return KL_EINVAL;
    if (end != in + inlen)
        return KL_EINVAL;
    *outlen = n;
    return 0;
}

int kl_hex_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    if (cap < 2 * n + 1)
        return KL_ETOOBIG;
    sodium_bin2hex(out, cap, in, n);
    return 0;
}

