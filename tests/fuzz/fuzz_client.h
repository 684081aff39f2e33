/* The client (e2e) fixture of the fuzz targets and seed generators
 * (fuzz.h for determinism): alice's store in a temporary directory and two
 * senders. The library kl_fuzz_client (fuzz_client.c). */
#ifndef KOLLEGA_FUZZ_CLIENT_H
#define KOLLEGA_FUZZ_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "identity.h"
#include "prekeys.h"
#include "store.h"

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
