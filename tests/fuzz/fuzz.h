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
 * directories (under $TMPDIR, else /tmp) are removed at exit. */
#ifndef KOLLEGA_FUZZ_H
#define KOLLEGA_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "core/dispatch.h"
#include "identity.h"
#include "kollega/noise.h"
#include "prekeys.h"
#include "storage/storage.h"
#include "store.h"

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

/* ---- relay dispatch fixture ------------------------------------------ */
#define FUZZ_RELAY_NAME "oslo.test"
#define FUZZ_INVITE "fuzzinvitecode0123456789_-ABCDEF"
#define FUZZ_NOW_MS 1700000000000ull

typedef struct fuzz_user {
    char handle[KL_HANDLE_MAX + 1];
    uint8_t pk[32];
    uint8_t sk[64];
    kl_storage_user_t u;     /* id/inbox once registered */
} fuzz_user_t;

typedef struct fuzz_relay {
    kl_storage_t *st;        /* the real sqlite backend, in a temp dir */
    kl_dispatch_cfg_t cfg;
    uint8_t hh[64];          /* the handshake hash every session uses */
    fuzz_user_t alice;       /* registered, 3 entries in her inbox */
    fuzz_user_t bob;         /* registered, signed prekey + 5 one-time prekeys */
    fuzz_user_t carol;       /* not registered: her keys sign register seeds */
} fuzz_relay_t;

/* Built on first use. */
fuzz_relay_t *fuzz_relay_get(void);

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

/* ---- client (e2e) fixture -------------------------------------------- */
#define FUZZ_ALICE "alice@oslo.test"
#define FUZZ_BOB "bob@oslo.test"
#define FUZZ_CAROL "carol@oslo.test"

/* A sender: its identity and its Double Ratchet state towards alice,
 * serialized, plus the X3DH parameters its envelopes repeat. */
typedef struct fuzz_sender {
    const char *address;
    uint8_t pk[32];
    uint8_t sk[64];
    uint8_t ek[32];
    uint32_t spk_id;
    int has_opk;
    uint32_t opk_id;
    uint8_t *ratchet;        /* kl_ratchet_serialize output */
    size_t ratchet_len;
} fuzz_sender_t;

typedef struct fuzz_client {
    kl_store_t *st;          /* alice's store, in a temp dir */
    kl_identity_t alice;
    kl_prekey_batch_t batch;
    fuzz_sender_t bob;       /* no session at alice: his messages start X3DH */
    fuzz_sender_t carol;     /* alice already holds a session with her */
} fuzz_client_t;

fuzz_client_t *fuzz_client_get(void);

/* The body a sender would put in send.body: ratchet-encrypt pt (len bytes,
 * used as is: the caller pads or not) with the sender's state as built,
 * wrap it in Envelope and Sealed, seal it to alice. *body is malloc'd. */
int fuzz_e2e_body(const fuzz_client_t *c, const fuzz_sender_t *s, const uint8_t *pt,
                  size_t len, uint8_t **body, size_t *body_len);
/* Seal an arbitrary Sealed plaintext to alice. *body is malloc'd. */
int fuzz_e2e_seal(const fuzz_client_t *c, const uint8_t *pt, size_t len, uint8_t **body,
                  size_t *body_len);
/* A padded e2e Content as the client packs it (session.c content_pack):
 * 16-byte id of 0x42, sent_at FUZZ_NOW_MS. *out malloc'd. */
void fuzz_content(const char *text, const char *to, uint8_t **out, size_t *len);
/* The Sealed plaintext fuzz_e2e_body seals (for seeds). *out malloc'd. */
int fuzz_e2e_sealed_pt(const fuzz_sender_t *s, const uint8_t *pt, size_t len, uint8_t **out,
                       size_t *out_len);

#endif
