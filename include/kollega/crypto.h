/* The narrow face of libsodium for the relay and client, so only proto/
 * crypto files include sodium.h. Sizes are fixed by the primitives:
 * Ed25519 public 32 / secret 64 / signature 64, X25519 32, SHA-256 32. */
#ifndef KOLLEGA_CRYPTO_H
#define KOLLEGA_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define KL_ED_PK 32
#define KL_ED_SK 64
#define KL_SIG 64
#define KL_X_KEY 32
#define KL_AEAD_KEY 32
#define KL_AEAD_NONCE 24
#define KL_AEAD_TAG 16
/* Sealed-box overhead of crypto_box_seal (ephemeral key + MAC). */
#define KL_SEAL_OVERHEAD 48

/* Initialise libsodium; call once per process before anything else here
 * (later calls are harmless). 0 or KL_ECRYPTO. */
int kl_crypto_init(void);

/* len random bytes into buf; a uniformly random u32. Cannot fail. */
void kl_random(void *buf, size_t len);
uint32_t kl_random_u32(void);

/* kl_memzero wipes len bytes (not optimised away). kl_memcmp compares in
 * constant time: 0 if equal, 1 if not (never an order). kl_is_zero: 1 if
 * all len bytes are zero, else 0, in constant time. None can fail. */
void kl_memzero(void *p, size_t len);
int kl_memcmp(const void *a, const void *b, size_t len);
int kl_is_zero(const uint8_t *p, size_t len);

/* Guarded allocation for long-lived secrets (sodium_malloc: guard pages,
 * mlocked where allowed): NULL when out of memory; the caller owns the
 * block and releases it with kl_secure_free, which wipes it (NULL is
 * fine). kl_free_wipe wipes len bytes of a malloc'd buffer, then frees it
 * (NULL is fine). */
void *kl_secure_alloc(size_t len);
void kl_secure_free(void *p);
void kl_free_wipe(void *p, size_t len);

/* Ed25519 identity keys: a new key pair into the caller's buffers (sk is a
 * secret: wipe it), and the detached signature of len bytes of msg.
 * 0 or KL_ECRYPTO. */
int kl_sign_keypair(uint8_t pk[KL_ED_PK], uint8_t sk[KL_ED_SK]);
int kl_sign(const uint8_t sk[KL_ED_SK], const uint8_t *msg, size_t len, uint8_t sig[KL_SIG]);
/* 0 if sig is pk's signature of msg, KL_ECRYPTO otherwise. */
int kl_sign_verify(const uint8_t pk[KL_ED_PK], const uint8_t *msg, size_t len, const uint8_t sig[KL_SIG]);
/* Ed25519 -> X25519 conversions (KL_ECRYPTO for invalid points). */
int kl_ed_pk_to_x(const uint8_t ed_pk[KL_ED_PK], uint8_t x_pk[KL_X_KEY]);
int kl_ed_sk_to_x(const uint8_t ed_sk[KL_ED_SK], uint8_t x_sk[KL_X_KEY]);

/* X25519: a new key pair (cannot fail); the public key of sk; and the
 * shared secret of sk and pk. kl_x_public and kl_dh return 0 or
 * KL_ECRYPTO (kl_dh also for an all-zero result: a low-order point). */
void kl_x_keypair(uint8_t pk[KL_X_KEY], uint8_t sk[KL_X_KEY]);
int kl_x_public(const uint8_t sk[KL_X_KEY], uint8_t pk[KL_X_KEY]);
int kl_dh(const uint8_t sk[KL_X_KEY], const uint8_t pk[KL_X_KEY], uint8_t out[KL_X_KEY]);

/* XChaCha20-Poly1305-IETF into the caller's out, which holds len +
 * KL_AEAD_TAG bytes (seal) or len - KL_AEAD_TAG (open). 0, or KL_ECRYPTO
 * (open: any tampering); open also KL_EPROTO if len < KL_AEAD_TAG. */
int kl_aead_seal(const uint8_t key[KL_AEAD_KEY], const uint8_t nonce[KL_AEAD_NONCE],
                 const uint8_t *ad, size_t adlen, const uint8_t *pt, size_t len, uint8_t *out);
int kl_aead_open(const uint8_t key[KL_AEAD_KEY], const uint8_t nonce[KL_AEAD_NONCE],
                 const uint8_t *ad, size_t adlen, const uint8_t *ct, size_t len, uint8_t *out);

/* SHA-256 digest of len bytes of in. Cannot fail. */
void kl_sha256(const uint8_t *in, size_t len, uint8_t out[32]);
/* Keyed BLAKE2b (crypto_generichash) of in into outlen bytes: a MAC, or a
 * hash an outsider cannot steer. keylen 16..64, outlen 16..64, else
 * KL_EINVAL. 0 or KL_ECRYPTO. */
int kl_blake2b_keyed(const uint8_t *key, size_t keylen, const uint8_t *in, size_t len,
                     uint8_t *out, size_t outlen);

/* Argon2id passphrase keys (crypto_pwhash). The limits travel with what
 * they protect (the client store keeps them beside the salt), so a later
 * change of defaults never locks anyone out. The numbers are libsodium's
 * (proto/crypto.c checks that they agree with sodium.h). */
#define KL_PWHASH_SALT 16
#define KL_PWHASH_ALG_ARGON2ID13 2                 /* crypto_pwhash_ALG_ARGON2ID13 */
#define KL_PWHASH_OPS_INTERACTIVE 2ull             /* crypto_pwhash_OPSLIMIT_INTERACTIVE */
#define KL_PWHASH_MEM_INTERACTIVE (64ull << 20)    /* crypto_pwhash_MEMLIMIT_INTERACTIVE */
#define KL_PWHASH_OPS_MODERATE 3ull                /* crypto_pwhash_OPSLIMIT_MODERATE */
#define KL_PWHASH_MEM_MODERATE (256ull << 20)      /* crypto_pwhash_MEMLIMIT_MODERATE */
/* What we accept from a file: sodium's minimums, and at most 1 GiB (SENSITIVE's
 * memory) and 16 passes (four times SENSITIVE's), so a tampered file cannot
 * make us allocate many GiB or spin for minutes. */
#define KL_PWHASH_OPS_MIN 1ull                     /* crypto_pwhash_OPSLIMIT_MIN */
#define KL_PWHASH_OPS_MAX 16ull
#define KL_PWHASH_MEM_MIN 8192ull                  /* crypto_pwhash_MEMLIMIT_MIN */
#define KL_PWHASH_MEM_MAX (1ull << 30)

typedef struct kl_pwhash_params {
    int alg;           /* KL_PWHASH_ALG_ARGON2ID13, the only one accepted */
    uint64_t opslimit; /* passes over memory */
    uint64_t memlimit; /* bytes */
} kl_pwhash_params_t;

/* The limits new wraps use: Argon2id, MODERATE (3 passes, 256 MiB), into
 * *p. Cannot fail. */
void kl_pwhash_params_default(kl_pwhash_params_t *p);
/* 0 if p is a derivation we are willing to run; KL_EPROTO for an unknown
 * algorithm or limits below libsodium's minimums, KL_ELIMIT for limits
 * above KL_PWHASH_OPS_MAX / KL_PWHASH_MEM_MAX. Allocates nothing. */
int kl_pwhash_params_check(const kl_pwhash_params_t *p);
/* key = Argon2id(pass, salt) under the limits p (checked first with
 * kl_pwhash_params_check, whose errors it returns without deriving).
 * KL_ENOMEM if libsodium could not get the memory. */
int kl_pwhash(uint8_t key[32], const char *pass, size_t passlen,
              const uint8_t salt[KL_PWHASH_SALT], const kl_pwhash_params_t *p);

/* base64url without padding (sodium's URLSAFE_NO_PADDING).
 * kl_b64_len: the buffer n bytes encode into, NUL included.
 * kl_b64_encode writes a NUL-terminated string into out: KL_ETOOBIG if cap
 * is below kl_b64_len(n). kl_b64_decode reads the NUL-terminated in into
 * out (cap bytes), *outlen its length: KL_EINVAL for anything but canonical
 * unpadded base64url, or if it does not fit. */
size_t kl_b64_len(size_t n);
int kl_b64_encode(const uint8_t *in, size_t n, char *out, size_t cap);
int kl_b64_decode(const char *in, uint8_t *out, size_t cap, size_t *outlen);

/* n bytes as lower-case hex, NUL-terminated, into out: KL_ETOOBIG if cap
 * is below 2n+1. */
int kl_hex_encode(const uint8_t *in, size_t n, char *out, size_t cap);

#endif
