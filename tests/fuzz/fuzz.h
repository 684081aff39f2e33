/* Shared fixtures of the libFuzzer targets (tests/fuzz/fuzz_<target>.c) and
 * of the seed-corpus generator (gen_corpus.c).
 *
 * Determinism: a fuzz input must do the same thing every time it runs, or a
 * crash cannot be reproduced and the generator's seeds would not match the
 * targets' state. So fuzz_init() installs a deterministic random generator
 * into libsodium (every key pair, ephemeral key, nonce and sealed box of
 * libkollega draws from it), each fixture resets it to its own seed before
 * it is built, and every target resets it before each input.
 *
 * Fixtures are built once per process and live until exit; their temporary
 * directories (under $TMPDIR, else /tmp) are removed at exit. These, of
 * libkollega alone, are the library kl_fuzz_common (fuzz_common.c); the
 * relay's dispatch fixture is in fuzz_relay.h, the client's in
 * fuzz_client.h. */
#ifndef KOLLEGA_FUZZ_H
#define KOLLEGA_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/noise.h"

/* libFuzzer's entry points (also called by replay.c). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Once per process: deterministic RNG, then kl_crypto_init. Aborts on
 * failure (a fixture that cannot be built makes every result meaningless). */
void fuzz_init(void);
/* Restart the deterministic RNG at seed. */
void fuzz_rng_reset(uint64_t seed);
/* abort() with a message when cond is false: the targets' oracles. */
#define FUZZ_CHECK(cond) ((cond) ? (void)0 : fuzz_fail(#cond, __FILE__, __LINE__))
void fuzz_fail(const char *what, const char *file, int line) __attribute__((noreturn));

/* A bounded reader over the fuzz input, for the targets that take
 * structured input; every read past the end yields zeros / empty. */
typedef struct fuzz_in {
    const uint8_t *p;
    size_t left;
} fuzz_in_t;
uint8_t fuzz_u8(fuzz_in_t *in);
uint16_t fuzz_u16(fuzz_in_t *in);
/* Up to n bytes (fewer at the end of input); *len gets the count. */
const uint8_t *fuzz_bytes(fuzz_in_t *in, size_t n, size_t *len);

/* A fresh private directory for this process, removed (with the files in
 * it) at exit. path gets it; cap >= 64. */
void fuzz_tmpdir(char *path, size_t cap);

/* The relay every fixture is on, and the time every fixture lives at. */
#define FUZZ_RELAY_NAME "oslo.test"
#define FUZZ_NOW_MS 1700000000000ull

/* fuzz_sealed's identities: two kl_sign_keypair right after
 * fuzz_rng_reset(FUZZ_SEALED_SEED); the first opens the boxes. */
#define FUZZ_SEALED_SEED 0x5345414c4544ull

/* ---- Noise: fixed keys --------------------------------------------- */
/* The relay's static X25519 key pair, the client's fixed ephemeral key,
 * and a second relay for KK (federation). */
extern const uint8_t FUZZ_RELAY_SK[32];
extern const uint8_t FUZZ_CLIENT_E[32];
extern const uint8_t FUZZ_PEER_SK[32];
extern const uint8_t FUZZ_RELAY_E[32];
void fuzz_relay_pub(uint8_t pk[32]);
void fuzz_peer_pub(uint8_t pk[32]);
/* A handshake with the fixed keys: NK (client -> relay, the client with
 * FUZZ_CLIENT_E, the relay with FUZZ_RELAY_E) or KK (FUZZ_PEER_SK's relay
 * initiating to FUZZ_RELAY_SK's). */
kl_noise_hs_t *fuzz_hs_make(kl_noise_pattern_t p, int initiator);
/* The client -> relay transport of an NK handshake with the fixed keys:
 * client->send pairs with relay->recv and the reverse. */
void fuzz_transport_pair(kl_noise_transport_t *client, kl_noise_transport_t *relay);

/* ---- Double Ratchet fixture ------------------------------------------ */
/* Two sessions after a short exchange: A (initiator) sent m0..m4 in its
 * first chain; B received m0 and m3 (so it holds skipped keys for m1 and
 * m2) and replied; A received the reply and sent m5 in a new chain, which B
 * has not seen. held[] are m1, m2 and m5, still decryptable by b. */
typedef struct fuzz_ratchet_fx {
    uint8_t *a, *b;          /* serialized states */
    size_t a_len, b_len;
    uint8_t *held[3];
    size_t held_len[3];
} fuzz_ratchet_fx_t;

fuzz_ratchet_fx_t *fuzz_ratchet_get(void);

#endif
