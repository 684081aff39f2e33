/* The client's local store: ONE sqlite file (HOME/kollega.db, mode 0600).
 *
 * A random 32-byte store key seals every secret (identity key, relay key,
 * prekey private keys, ratchet states, contact pins) and every message body
 * with XChaCha20-Poly1305. Each sealed value is one blob "nonce(24) ||
 * ciphertext" and its associated data is a label naming the table and row
 * ("kollega-store-v1|sessions|kari@oslo"), so a ciphertext cannot be moved
 * to another row or table without failing to open. The store key itself is
 * wrapped with Argon2id(passphrase, random 16-byte salt) under limits kept
 * beside the salt (MODERATE for new wraps), or with an all-zero key when the
 * user chose --no-passphrase. store_wrap.c describes the stored format.
 *
 * Every write happens inside a transaction; the caller brackets multi-row
 * changes with kl_store_begin/kl_store_commit so a killed client never
 * leaves half a state behind. Deleted rows are overwritten on disk
 * (secure_delete), so consumed prekeys and old ratchet states are gone.
 *
 * Only client/store*.c include sqlite3.h; everything else goes through this
 * header.
 *
 * "Store errors" below are: KL_EIO (a database failure, a lock not got
 * within 10 s), KL_ENOMEM, KL_ECRYPTO (a sealed value that does not open:
 * altered, or moved from another row), KL_EPROTO (a row of the wrong shape)
 * and KL_ETOOBIG (an address too long for a row label). One kl_store_t is
 * used by one thread at a time. */
#ifndef KOLLEGA_CLIENT_STORE_H
#define KOLLEGA_CLIENT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/addr.h"

#define KL_STORE_FILE "kollega.db"
#define KL_STORE_PASS_MAX 1024
#define KL_MSG_ID 16
/* Longest message text a user may send (bytes of UTF-8): the sealed body
 * must fit the relay's 60 KiB limit with headers, padding and addresses. */
#define KL_TEXT_MAX (56u * 1024u)

typedef struct kl_store kl_store_t;

/* Asks the user for the passphrase of an existing store: writes a
 * NUL-terminated passphrase into buf (cap bytes). Called only when the store
 * has one. Returns 0 or a kl_err, which kl_store_open passes through. */
typedef int (*kl_pass_fn)(void *ud, char *buf, size_t cap);

/* Create a new store file at path (which must not exist; created 0600).
 * pass NULL means --no-passphrase. 0 with *out (close with
 * kl_store_close), else *out = NULL and KL_EEXIST if the file exists,
 * KL_EINVAL for a path over 4096 bytes, KL_ENOMEM, KL_EIO on database
 * errors; on failure no file is left behind. */
int kl_store_create(const char *path, const char *pass, kl_store_t **out);
/* Open an existing store: 0 with *out (close with kl_store_close), else
 * *out = NULL and KL_ENOTFOUND if there is no file, KL_EPROTO if it is not a
 * Kollega store, KL_ELIMIT if its key derivation limits are beyond what we
 * run (a tampered file or a newer version; refused before pass is called),
 * KL_EPASS for a wrong passphrase or none (pass NULL for a store that has
 * one), pass's own error, KL_ENOMEM, KL_EIO (nothing is written to the file
 * before the passphrase is proven right). pass is called at most once, and
 * only for a store with a passphrase.
 * A store whose passphrase wrap is weaker than the default limits is
 * re-wrapped under them once the passphrase is proven right (one more
 * derivation); kl_store_upgraded tells how that went. */
int kl_store_open(const char *path, kl_pass_fn pass, void *ud, kl_store_t **out);
/* A flag of kl_store_open_flags. */
#define KL_STORE_OPEN_NO_UPGRADE 1u
/* kl_store_open with flags: KL_STORE_OPEN_NO_UPGRADE keeps a weak wrap as
 * it is (for a caller about to re-wrap anyway with kl_store_rekey). Same
 * errors and ownership as kl_store_open. */
int kl_store_open_flags(const char *path, kl_pass_fn pass, void *ud, unsigned flags,
                        kl_store_t **out);
/* After kl_store_open: 1 if it re-wrapped a weak wrap under the default
 * limits, 0 if there was nothing to do, a kl_err if the re-wrap failed
 * (the store is open and the old wrap still valid; the next open tries
 * again). */
int kl_store_upgraded(const kl_store_t *st);
/* 1 if the store key is wrapped under a passphrase, 0 if not. */
int kl_store_has_passphrase(const kl_store_t *st);
/* Re-wrap the store key under pass (NULL: no passphrase) with a fresh salt
 * and the default limits (or the stored ones where stronger), in one
 * transaction: afterwards only pass opens the store, and nothing else in
 * the file changes. One derivation. KL_ESTATE inside a transaction or if
 * another process re-wrapped the store since st opened it (nothing
 * written); KL_EIO on database errors (the old wrap stays valid). */
int kl_store_rekey(kl_store_t *st, const char *pass);
/* Roll back an open transaction, wipe the store key, close the database
 * and free st; NULL is fine. */
void kl_store_close(kl_store_t *st);

/* Transactions, one at a time per st (no nesting). begin takes the write
 * lock at once (BEGIN IMMEDIATE) so that a read-modify-write of a ratchet
 * state cannot interleave with another kollega process; it waits up to
 * 10 s for the lock: KL_ESTATE inside a transaction, KL_EIO if the lock is
 * not got. commit: KL_ESTATE outside one, KL_EIO if the commit fails (it is
 * rolled back then; either way the transaction is over). rollback cannot
 * fail and does nothing outside a transaction. */
int kl_store_begin(kl_store_t *st);
int kl_store_commit(kl_store_t *st);
void kl_store_rollback(kl_store_t *st);
/* End the transaction by the result r of what ran in it: 0 commits and
 * returns kl_store_commit's result; any other r rolls back and is returned
 * as it is. */
int kl_store_end(kl_store_t *st, int r);

/* Seal/open a value with the store key. label names the table and row.
 * *box (free()) and *pt (kl_free_wipe(*pt, *len)) are malloc'd, NULL on
 * failure. seal: KL_ETOOBIG, KL_ENOMEM. unseal: KL_ECRYPTO if the value was
 * altered, is too short or belongs to another row, KL_ENOMEM. */
int kl_store_seal(const kl_store_t *st, const char *label, const uint8_t *pt, size_t len,
                  uint8_t **box, size_t *boxlen);
int kl_store_unseal(const kl_store_t *st, const char *label, const uint8_t *box, size_t boxlen,
                    uint8_t **pt, size_t *len);

/* Plain settings (not secret): strings and integers by name; set inserts
 * or replaces. get: KL_ENOTFOUND if unset, KL_ETOOBIG if cap is too small
 * for the string and its NUL, KL_EPROTO for a u64 stored as no integer;
 * all: KL_EIO. */
int kl_store_get_str(kl_store_t *st, const char *key, char *out, size_t cap);
int kl_store_set_str(kl_store_t *st, const char *key, const char *v);
int kl_store_get_u64(kl_store_t *st, const char *key, uint64_t *v);
int kl_store_set_u64(kl_store_t *st, const char *key, uint64_t v);

/* Sealed named secrets of a fixed length; put inserts or replaces. get:
 * KL_ENOTFOUND, KL_ECRYPTO, KL_EPROTO if the stored length is not len (v
 * untouched then); both: store errors. */
int kl_store_secret_put(kl_store_t *st, const char *name, const uint8_t *v, size_t len);
int kl_store_secret_get(kl_store_t *st, const char *name, uint8_t *v, size_t len);

/* ---- prekeys (store_keys.c) ---- */
#define KL_PREKEY_SPK 0
#define KL_PREKEY_OPK 1

/* Store a prekey pair (private key sealed). KL_EEXIST for an id of that
 * kind that is stored; store errors. */
int kl_store_prekey_put(kl_store_t *st, uint32_t id, int kind, const uint8_t pub[32],
                        const uint8_t priv[32], uint64_t created_ms);
/* The pair of that kind and id: KL_ENOTFOUND if there is none,
 * KL_ECRYPTO if the sealed private key does not open or does not match the
 * public key stored beside it (priv zeroed then); store errors. Deleting
 * one that is not there is no error. */
int kl_store_prekey_get(kl_store_t *st, uint32_t id, int kind, uint8_t pub[32],
                        uint8_t priv[32]);
int kl_store_prekey_delete(kl_store_t *st, uint32_t id, int kind);
/* The newest signed prekey (highest id). KL_ENOTFOUND if none; store
 * errors. */
int kl_store_prekey_current_spk(kl_store_t *st, uint32_t *id, uint8_t pub[32],
                                uint64_t *created_ms);
/* Delete every signed prekey that was replaced before before_ms, i.e. that
 * is older than a newer signed prekey created before before_ms: messages
 * sent to it can arrive until the relay's TTL after its replacement. The
 * replay records of the deleted ones go too (kl_store_x3dh_used_prune).
 * Inside the caller's transaction; KL_EIO. */
int kl_store_prekey_prune_spk(kl_store_t *st, uint64_t before_ms);
/* *n = the number of stored prekeys of kind. 0 or KL_EIO. */
int kl_store_prekey_count(kl_store_t *st, int kind, uint64_t *n);

/* ---- sessions (store_keys.c): opaque sealed records per peer ---- */
/* get: *rec malloc'd (free with kl_free_wipe(*rec, *len)), NULL on
 * failure; KL_ENOTFOUND if none. put inserts or replaces; deleting a
 * missing one is no error. Store errors. */
int kl_store_session_get(kl_store_t *st, const char *peer, uint8_t **rec, size_t *len);
int kl_store_session_put(kl_store_t *st, const char *peer, const uint8_t *rec, size_t len);
int kl_store_session_delete(kl_store_t *st, const char *peer);

/* ---- contacts (store_keys.c) ---- */
typedef struct kl_contact {
    char address[KL_ADDR_MAX + 1];
    int has_key;                 /* a key is pinned */
    uint8_t key[32];             /* pinned Ed25519 identity key */
    int verified;                /* safety number confirmed by the user */
    int key_changed;             /* a different key was seen: sending refused */
    int has_pending;
    uint8_t pending[32];         /* the different key, accepted by verify --confirm */
    int has_shown;               /* `contact verify` showed the safety number of ... */
    uint8_t shown[32];           /* ... this key: the only key --confirm may accept */
    uint64_t added_at;           /* ms since the epoch */
} kl_contact_t;

/* KL_ENOTFOUND if unknown, KL_ECRYPTO if the row was tampered with,
 * KL_EPROTO for a record of an unknown version; store errors. */
int kl_store_contact_get(kl_store_t *st, const char *address, kl_contact_t *c);
/* Insert or replace (sealed, so a pin cannot be swapped in the file);
 * delete forgets the contact (no error if unknown). Store errors. */
int kl_store_contact_put(kl_store_t *st, const kl_contact_t *c);
int kl_store_contact_delete(kl_store_t *st, const char *address);
/* Calls cb for every contact in address order; a non-zero return stops
 * and is returned, as does the first store error. */
int kl_store_contact_list(kl_store_t *st, int (*cb)(void *ud, const kl_contact_t *c), void *ud);

/* ---- messages, held entries, failures (store_msg.c) ---- */
typedef struct kl_message {
    uint8_t id[KL_MSG_ID];
    char peer[KL_ADDR_MAX + 1];  /* the contact, or the group address */
    char sender[KL_ADDR_MAX + 1]; /* group messages: who wrote it; "" for 1:1 */
    int outgoing;
    uint64_t sent_at;            /* ms, sender's clock */
    uint64_t stored_at;          /* ms, our clock */
    uint64_t seq;                /* relay seq (inbox seq for incoming, sent seq for outgoing) */
    uint64_t relay_ts;           /* ms, the relay's entry ts (group retention); 0 = stored_at */
    const char *text;            /* UTF-8, not NUL-terminated in general */
    size_t text_len;
} kl_message_t;

/* Store a message (text padded and sealed). *added = 0 when a message with
 * the same id from/to that peer in that direction (and, in a group, by the
 * same sender) exists (the duplicate is dropped, not an error). KL_ETOOBIG
 * for a text over KL_TEXT_MAX; store errors. */
int kl_store_message_add(kl_store_t *st, const kl_message_t *m, int *added);
/* Calls cb for stored messages, newest first, optionally only those with
 * peer; m->text is valid only during the call (m->relay_ts is 0). A
 * message whose seal does not open ends the walk with KL_ECRYPTO; cb
 * returns non-zero to stop, which is returned; store errors. */
int kl_store_message_each(kl_store_t *st, const char *peer,
                          int (*cb)(void *ud, const kl_message_t *m), void *ud);

/* A message held back because its sender's key differs from the pinned
 * one: the raw relay body, sealed with the store key. */
typedef struct kl_held {
    uint64_t seq;
    char sender[KL_ADDR_MAX + 1];
    uint8_t sender_key[32];
    uint64_t received_at;
    const uint8_t *body;
    size_t body_len;
} kl_held_t;

/* Store h (its body sealed), replacing a held entry with the same seq.
 * Store errors. */
int kl_store_held_add(kl_store_t *st, const kl_held_t *h);
/* Held entries of sender (all when NULL) with seq > after, in seq order.
 * body is valid during cb; a non-zero return of cb stops and is returned;
 * store errors. Deleting a missing entry is no error. */
int kl_store_held_each(kl_store_t *st, const char *sender, uint64_t after,
                       int (*cb)(void *ud, const kl_held_t *h), void *ud);
int kl_store_held_delete(kl_store_t *st, uint64_t seq);
/* Delete every held entry of sender not signed with keep (32 bytes; all of
 * them when keep is NULL); *n = how many. count: *n = the held entries of
 * sender (all when NULL). Both: 0 or KL_EIO. */
int kl_store_held_drop(kl_store_t *st, const char *sender, const uint8_t *keep, uint64_t *n);
int kl_store_held_count(kl_store_t *st, const char *sender, uint64_t *n);

/* Record an inbox entry that could not be opened or decrypted (a record
 * for the same seq is replaced); count: *n = all records. 0 or KL_EIO. */
int kl_store_failure_add(kl_store_t *st, uint64_t seq, uint64_t at_ms, const char *reason);
int kl_store_failure_count(kl_store_t *st, uint64_t *n);

/* ---- delivery tokens (store_trust.c; client/delivery.h) ---- */
/* Name of the sealed secret holding our own 32-byte delivery token. */
#define KL_DELIVERY_TOKEN_SECRET "delivery_token"
/* A contact's delivery token (sealed): get KL_ENOTFOUND if none; put
 * replaces; delete forgets it. Inside the caller's transaction; store
 * errors. */
int kl_store_peer_token_get(kl_store_t *st, const char *peer, uint8_t token[32]);
int kl_store_peer_token_put(kl_store_t *st, const char *peer, const uint8_t token[32]);
int kl_store_peer_token_delete(kl_store_t *st, const char *peer);

/* ---- replay records (store_trust.c) ---- */
/* *used = 1 when the X3DH session start (signed prekey spk_id, initiator
 * ephemeral key ek) was already answered once. 0 or KL_EIO. */
int kl_store_x3dh_used_has(kl_store_t *st, uint32_t spk_id, const uint8_t ek[32], int *used);
/* Record an answered session start (inside the caller's transaction; once
 * is enough, a second record is no error). 0 or KL_EIO. */
int kl_store_x3dh_used_add(kl_store_t *st, uint32_t spk_id, const uint8_t ek[32], uint64_t now);
/* Forget the starts of signed prekeys no longer in the store. 0 or KL_EIO. */
int kl_store_x3dh_used_prune(kl_store_t *st);
/* Record the id of a key-carrying message (group sender key, channel key):
 * *added = 0 when it was applied before (a replay: apply nothing). Ids
 * recorded more than keep_ms before now are forgotten. Inside the caller's
 * transaction; 0 or KL_EIO. */
int kl_store_key_msg_add(kl_store_t *st, const uint8_t id[KL_MSG_ID], uint64_t now,
                         uint64_t keep_ms, int *added);

/* ---- signed logs of groups and channels (store_slog.c) ---- */
/* A group ('#...') and a channel ('!...') keep alike, under their address:
 * the validated ops of their signed log, and which member got which of
 * our keys. These functions serve both, by the address's sigil (KL_EINVAL
 * for any other address). */
/* Op idx of log (sealed). KL_EEXIST if that index is stored already;
 * KL_EINVAL for an empty op, KL_ETOOBIG over the kind's largest op
 * (KL_GROUP_MAX_OP, KL_CHANNEL_MAX_OP). */
int kl_store_slog_op_put(kl_store_t *st, const char *log, uint64_t idx, const uint8_t *op,
                         size_t len);
/* Ops of log in index order; op is valid during cb, whose first non-zero
 * result stops and is returned. */
int kl_store_slog_op_each(kl_store_t *st, const char *log,
                          int (*cb)(void *ud, uint64_t idx, const uint8_t *op, size_t len),
                          void *ud);
/* Our key `key` of log (a group sender key's id, a channel key's epoch)
 * went to member: record it (mark = 1; sent unused, may be NULL), or ask
 * (*sent = 1 if recorded). KL_EINVAL for another sigil; KL_EIO. */
int kl_store_slog_key_sent(kl_store_t *st, const char *log, uint64_t key, const uint8_t member[32],
                           int mark, int *sent);

/* ---- groups (store_group.c; declared in store_group.h) ---- */

/* ---- shared by store*.c only ---- */
/* "kollega-store-v1|table|row" into out; KL_ETOOBIG if it does not fit. */
int kl_store_label(char *out, size_t cap, const char *table, const char *row);
/* Create the group tables if missing (a store made before groups), then
 * migrate older group tables and the messages table (its sender and
 * relay_ts columns) in one transaction of their own; a no-op on a current
 * store. Outside a transaction; KL_EIO (nothing migrated then). */
int kl_store_group_schema(kl_store_t *st);
/* Create the replay-record tables (store_trust.c) in a store made before
 * them; a no-op on a current store. KL_EIO. */
int kl_store_trust_schema(kl_store_t *st);

#endif
