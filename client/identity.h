/* The user's own identity: address and Ed25519 key pair, kept in the store
 * (the secret half sealed), plus the relay it is registered with. */
#ifndef KOLLEGA_CLIENT_IDENTITY_H
#define KOLLEGA_CLIENT_IDENTITY_H

#include <stdint.h>

#include "kollega/addr.h"
#include "store.h"

typedef struct kl_identity {
    char address[KL_ADDR_MAX + 1];
    uint8_t pk[32];
    uint8_t *sk;                 /* 64 bytes in guarded memory */
} kl_identity_t;

/* Where the relay is and the key pinned from the invite. */
typedef struct kl_relay_info {
    char name[KL_RELAYNAME_MAX + 1];
    char host[KL_HOST_MAX + 1];
    uint16_t port;
    uint8_t key[32];
} kl_relay_info_t;

/* A fresh key pair for address, canonicalised; id->sk is guarded memory
 * (release with kl_identity_wipe). KL_EINVAL if address is not a user
 * address, KL_ENOMEM, KL_ECRYPTO (id wiped then). */
int kl_identity_generate(kl_identity_t *id, const char *address);
/* Save identity (the key pair sealed) and relay (its key sealed) to the
 * store, replacing what is there (caller's transaction). Store errors
 * (store.h). */
int kl_identity_save(kl_store_t *st, const kl_identity_t *id, const kl_relay_info_t *relay);
/* Load them; id->sk is guarded memory (release with kl_identity_wipe).
 * KL_ENOTFOUND if the store holds no identity (or only part of one). The
 * secret key must match the public key, else KL_ECRYPTO; KL_EPROTO for a
 * stored port out of range; KL_ENOMEM; store errors. On failure id is
 * wiped. relay may be NULL. */
int kl_identity_load(kl_store_t *st, kl_identity_t *id, kl_relay_info_t *relay);
/* Wipe and free the secret key (id->sk NULL after; safe to call
 * twice). */
void kl_identity_wipe(kl_identity_t *id);

#endif
