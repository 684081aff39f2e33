/* Noise Protocol Framework (revision 34) with 25519, ChaChaPoly and BLAKE2b.
 * Kollega uses NK (client -> relay, prologue "kollega/1") and KK (relay <->
 * relay, prologue "kollega-federation/1"); NN, IK, XX and the psk0 variants
 * exist so the implementation is checked against every published vector. */
#ifndef KOLLEGA_NOISE_H
#define KOLLEGA_NOISE_H

#include <stddef.h>
#include <stdint.h>

#define KL_NOISE_KEY 32
#define KL_NOISE_HASH 64
#define KL_NOISE_TAG 16
#define KL_NOISE_MAX_MSG 65535u
/* Largest plaintext of one transport message (65535 - tag). */
#define KL_NOISE_MAX_PT (KL_NOISE_MAX_MSG - KL_NOISE_TAG)

#define KL_PROLOGUE_CLIENT "kollega/1"
#define KL_PROLOGUE_FEDERATION "kollega-federation/1"

typedef enum kl_noise_pattern {
    KL_NOISE_NN,
    KL_NOISE_NK,
    KL_NOISE_KK,
    KL_NOISE_IK,
    KL_NOISE_XX,
} kl_noise_pattern_t;

typedef struct kl_noise_config {
    kl_noise_pattern_t pattern;
    int initiator;                 /* 1 initiator, 0 responder */
    int psk0;                      /* 1: the "psk0" modifier, psk required */
    const uint8_t *prologue;
    size_t prologue_len;
    const uint8_t *s;              /* local static private X25519 key, or NULL */
    const uint8_t *rs;             /* remote static public key if pre-known, or NULL */
    const uint8_t *e;              /* fixed ephemeral private key (tests only); NULL = random */
    const uint8_t *psk;            /* 32 bytes when psk0 */
} kl_noise_config_t;

/* One direction of a transport: key and 64-bit nonce counter. */
typedef struct kl_noise_cipher {
    uint8_t k[KL_NOISE_KEY];
    uint64_t n;
} kl_noise_cipher_t;

/* The result of a finished handshake: two ciphers and the handshake hash,
 * which register/auth signatures bind to. */
typedef struct kl_noise_transport {
    kl_noise_cipher_t send;
    kl_noise_cipher_t recv;
    uint8_t hh[KL_NOISE_HASH];
} kl_noise_transport_t;

typedef struct kl_noise_hs kl_noise_hs_t; /* opaque, secrets in guarded memory */

/* Start a handshake: *out (the caller's, freed with kl_noise_hs_free).
 * Returns 0, KL_EINVAL (unknown pattern, or a missing key the pattern
 * needs), KL_ECRYPTO (libsodium did not start, or a bad static key),
 * KL_ENOMEM. The config's pointers need only live for the call. */
int kl_noise_hs_new(kl_noise_hs_t **out, const kl_noise_config_t *cfg);
/* Write the next handshake message carrying payload into out (cap bytes).
 * KL_ESTATE if it is not our turn or the handshake is done or dead,
 * KL_EINVAL for a NULL payload with plen > 0, KL_ETOOBIG if the message
 * would exceed 65535 bytes or cap, KL_ECRYPTO if a DH fails (the handshake
 * is then dead). */
int kl_noise_hs_write(kl_noise_hs_t *hs, const uint8_t *payload, size_t plen,
                      uint8_t *out, size_t cap, size_t *outlen);
/* Read the peer's next handshake message; its payload goes to payload (cap).
 * KL_EPROTO for a wrong length, KL_ECRYPTO for failed authentication; after
 * any failure the handshake is dead (every later call is KL_ESTATE). */
int kl_noise_hs_read(kl_noise_hs_t *hs, const uint8_t *msg, size_t len,
                     uint8_t *payload, size_t cap, size_t *plen);
/* 1 once every handshake message has been written/read, else 0; 1 if the
 * next step is a write by us, else 0 (both 0 for NULL or a dead one). */
int kl_noise_hs_done(const kl_noise_hs_t *hs);
int kl_noise_hs_my_turn(const kl_noise_hs_t *hs);
/* Remote static public key once known (KL_ESTATE before). */
int kl_noise_hs_remote_static(const kl_noise_hs_t *hs, uint8_t rs[32]);
/* After completion: derive the transport into *t (initiator sends with
 * k1; the caller wipes it with kl_noise_transport_wipe). Allowed once:
 * the handshake's keys are wiped then. KL_ESTATE if not finished, dead or
 * split already. */
int kl_noise_hs_split(kl_noise_hs_t *hs, kl_noise_transport_t *t);
/* Wipe and free; NULL is fine. */
void kl_noise_hs_free(kl_noise_hs_t *hs);

/* Transport messages with the next nonce: out gets len + 16 bytes
 * (encrypt) or len - 16 (decrypt). KL_EINVAL for NULL arguments,
 * KL_ELIMIT once the nonce space is exhausted (the session must end).
 * encrypt: KL_ETOOBIG if len > KL_NOISE_MAX_PT or cap is too small.
 * decrypt: KL_EPROTO if len < 16, KL_ETOOBIG if len > 65535 or cap is
 * too small, KL_ECRYPTO on failed authentication. The nonce advances only
 * on success. */
int kl_noise_encrypt(kl_noise_transport_t *t, const uint8_t *pt, size_t len,
                     uint8_t *out, size_t cap, size_t *outlen);
int kl_noise_decrypt(kl_noise_transport_t *t, const uint8_t *ct, size_t len,
                     uint8_t *out, size_t cap, size_t *outlen);
/* Wipe the transport's keys (NULL is fine). */
void kl_noise_transport_wipe(kl_noise_transport_t *t);

#endif
