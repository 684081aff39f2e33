/* The user's X3DH prekeys: generation (private keys sealed and committed to
 * the store BEFORE their public halves are uploaded, so a crash can never
 * leave the relay handing out a prekey we cannot use), upload, and
 * upkeep on every authenticated connection (kl_cli_connect): top up
 * one-time prekeys below KL_OPK_LOW or after they ran out, rotate the
 * signed prekey weekly, forget old ones. */
#ifndef KOLLEGA_CLIENT_PREKEYS_H
#define KOLLEGA_CLIENT_PREKEYS_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "kollega/x3dh.h"
#include "net.h"
#include "store.h"

#define KL_OPK_LOW 20
#define KL_OPK_BATCH 100
#define KL_SPK_ROTATE_MS (7ull * 24 * 3600 * 1000)
/* Keep a replaced signed prekey as long as messages to it may wait at the
 * relay (its default entry TTL is 30 days), plus a margin. */
#define KL_SPK_KEEP_MS (35ull * 24 * 3600 * 1000)

typedef struct kl_prekey_batch {
    uint32_t spk_id;
    uint8_t spk_pub[32];
    uint8_t spk_sig[64];
    size_t n;                          /* one-time prekeys in this batch */
    uint32_t ids[KL_OPK_BATCH];
    uint8_t pubs[KL_OPK_BATCH][32];
} kl_prekey_batch_t;

/* In one committed transaction (so outside the caller's: KL_ESTATE inside
 * one): make a new signed prekey if new_spk or none exists, and n_opk
 * (<= KL_OPK_BATCH, else KL_EINVAL) one-time prekeys, under ids never used
 * before (KL_ELIMIT when they run out). b receives the current signed
 * prekey (signed) and the new one-time public keys. Store errors; on
 * failure nothing is stored and b is zeroed. */
int kl_prekeys_generate(kl_store_t *st, const kl_identity_t *me, size_t n_opk, int new_spk,
                        kl_prekey_batch_t *b);
/* What one upkeep found and did. */
typedef struct kl_prekey_upkeep {
    size_t uploaded;           /* one-time prekeys uploaded */
    uint32_t ran_out;          /* fetches that found none left since the last upload */
    uint64_t ran_out_since_ms; /* the first of them (relay clock), 0 if none */
} kl_prekey_upkeep_t;

/* Upkeep on an authenticated connection: prekey_status, then generate and
 * upload when fewer than KL_OPK_LOW one-time prekeys are left, when the
 * relay says they ran out since the last upload, or when the signed
 * prekey is older than KL_SPK_ROTATE_MS; after an upload, signed prekeys
 * replaced more than KL_SPK_KEEP_MS ago are deleted. *up (may be NULL)
 * gets what the relay reported and what was uploaded (ran_out is filled
 * even when the upload then fails). Relay and connection errors as
 * kl_net_call, kl_prekeys_generate's, KL_ENOMEM, store errors (a failed
 * deletion too, after a successful upload). */
int kl_prekeys_maintain(kl_store_t *st, const kl_identity_t *me, kl_net_t *c,
                        kl_prekey_upkeep_t *up);
/* A bundle built from our own store, as a relay would serve it (tests and
 * diagnostics): the current signed prekey and, if opk_id != 0, that
 * one-time prekey. KL_ENOTFOUND when either is missing, KL_ECRYPTO, store
 * errors. */
int kl_prekeys_local_bundle(kl_store_t *st, const kl_identity_t *me, uint32_t opk_id,
                            kl_prekey_bundle_t *b);

#endif
