/* The receive engine: fetch inbox entries after the local cursor, open,
 * check the sender, decrypt, and store each one in ONE transaction with the
 * updated ratchet state and the new cursor; ack only after that commit.
 * An entry that cannot be opened or decrypted is recorded as a failure and
 * still advances the cursor, so one bad entry never blocks the inbox.
 *
 * The sender an envelope names is a claim (contacts.h "Proof before
 * trust"): from a contact pinned to the claimed key, decryption decides;
 * otherwise the entry must first decrypt (a read-only trial) and the
 * claimed address's relay must vouch for the key, and only then is an
 * unknown sender pinned, or a known one flagged with the new key pending
 * and the message held (sealed in the store) until the user confirms it.
 * Claims that fail are recorded as failures naming nobody. */
#ifndef KOLLEGA_CLIENT_SYNC_H
#define KOLLEGA_CLIENT_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "net.h"
#include "store.h"

typedef struct kl_sync {
    kl_store_t *st;
    const kl_identity_t *me;
    kl_net_t *conn;             /* NULL when offline (releasing held messages) */
    /* Called for each message newly stored (not for duplicates). */
    int (*on_message)(void *ud, const kl_message_t *m);
    void *ud;
    int quiet;                   /* no warnings on stderr */
    /* Asks whether address's relay vouches for key (contacts.h
     * kl_contacts_vouch); NULL: ask the relay on conn. */
    int (*vouch)(void *ud, const char *address, const uint8_t key[32], int *vouched);
    void *vouch_ud;
    size_t stored, duplicates, held, failed;
    size_t unproven;             /* claims that did not decrypt (in failed) */
    size_t forged;               /* decrypted, but the relay does not vouch (in failed) */
    size_t replays;              /* replayed session starts ignored (in failed) */
    size_t waiting;              /* held until the claimed sender's relay can vouch */
    size_t keys;                 /* group sender keys received */
    int store_error;             /* set when the local store (not the relay) failed */
    int conn_error;              /* set when a lookup on the connection failed */
} kl_sync_t;

/* Process one inbox entry. Entries at or below the cursor are skipped
 * (already processed). Returns 0 unless the store (or memory) or the
 * connection (for the sender lookup; conn_error set) failed: then the
 * entry must not be acked. Undecryptable entries are counted, not
 * errors. */
int kl_sync_entry(kl_sync_t *s, uint64_t seq, uint64_t ts, const uint8_t *body, size_t len);
/* fetch{after: cursor} until more is false (or three rounds brought
 * nothing new), processing entries in seq order, acking each batch after
 * its commits, then kl_sync_retry_held. Returns the first error: relay
 * refusals and connection errors of fetch, ack and sender lookups (the
 * latter set s->conn_error), store errors (s->store_error = the error). */
int kl_sync_fetch_all(kl_sync_t *s);
/* Judge again (at most 128 per call, from the oldest held entry on) the
 * held entries that wait for nobody's decision: those whose sender's relay
 * could not be asked (now pinned and shown, flagged and held for the user,
 * or dropped), and those whose key became the pinned one. kl_sync_fetch_all
 * ends with it. Store errors, KL_ENOMEM, sender lookup errors
 * (s->conn_error set). */
int kl_sync_retry_held(kl_sync_t *s);
/* After `contact verify X --confirm`: decrypt and store the messages held
 * from sender whose key is now the pinned one (one that cannot be read is
 * dropped and counted as a failure); *released counts those stored. 0 with
 * nothing done while the contact is flagged; KL_ENOTFOUND if sender is no
 * contact; store errors, KL_ENOMEM. */
int kl_sync_release_held(kl_sync_t *s, const char *sender, size_t *released);

#endif
