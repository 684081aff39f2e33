/* ERFA groups in the client store (client/store_group.c): the validated
 * part of each group's operation log, per-group state (message cursor,
 * notices shown), sender keys (own and received, sealed), which member got
 * which of our sender keys, and group log entries that no key decrypts yet
 * (the raw body, sealed). Group messages themselves live in the messages
 * table with peer = the group address and sender = their author.
 * Every secret and every body is sealed with a label naming its table and
 * row, like the rest of the store (store.h). "Store errors" are store.h's. */
#ifndef KOLLEGA_CLIENT_STORE_GROUP_H
#define KOLLEGA_CLIENT_STORE_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Notices shown once per group (kl_store_group_t.notified bits). */
#define KL_GNOTE_INVITED 0x01
#define KL_GNOTE_ADMITTED 0x02
#define KL_GNOTE_LEFT 0x04

typedef struct kl_store_group {
    char address[KL_ADDR_MAX + 1];
    uint64_t cursor;          /* highest group-log seq processed */
    uint32_t notified;        /* KL_GNOTE_* */
    /* Set when the relay proved a fork (group.h): 1 + the log index at
     * which it delivered two different validly signed ops (0 = none).
     * fork_author is unused (zero); older stores set it for a fork seen
     * in a message, which is no proof, and such marks were cleared. */
    uint64_t fork_index;
    uint8_t fork_author[32];
} kl_store_group_t;

/* Bounds of the client store per group: pending (undecryptable) entries,
 * and sender keys kept per (group, owner), the newest ones. */
#define KL_GPENDING_MAX 1000
#define KL_SK_KEEP 8

/* Group row: get (KL_ENOTFOUND if none), put (insert or replace), add (a
 * fresh row, cursor 0 and nothing noted, unless grp has one). Store
 * errors. */
int kl_store_group_get(kl_store_t *st, const char *grp, kl_store_group_t *g);
int kl_store_group_put(kl_store_t *st, const kl_store_group_t *g);
int kl_store_group_add(kl_store_t *st, const char *grp);
/* kl_store_group_get, or a fresh row (cursor 0, not stored) when grp has
 * none yet: store errors only. */
int kl_store_group_row(kl_store_t *st, const char *grp, kl_store_group_t *g);
/* Every group row, in address order; a non-zero cb return stops and is
 * returned; store errors. */
int kl_store_group_each(kl_store_t *st, int (*cb)(void *ud, const kl_store_group_t *g), void *ud);

/* The group's ops and who got which of our sender keys (by key id): store.h
 * kl_store_slog_*. */

/* A serialized sender key (kl_senderkey_serialize) of owner in grp.
 * own = 1 for our own sending chain. put replaces an existing row only when
 * replace is set (received keys are kept as first seen; a replaced row
 * keeps its place in the order and its gone mark). Older keys of the same
 * (grp, owner, own) beyond the newest KL_SK_KEEP are deleted. KL_ETOOBIG
 * for an empty record or one over 256 KiB; store errors. */
int kl_store_senderkey_put(kl_store_t *st, const char *grp, const uint8_t owner[32],
                           uint32_t key_id, uint64_t epoch, int own, int replace,
                           const uint8_t *ser, size_t len);
/* Our newest own sender key of grp: *ser malloc'd (kl_free_wipe(*ser,
 * *len)), NULL on failure. KL_ENOTFOUND if there is none; store errors. */
int kl_store_senderkey_own(kl_store_t *st, const char *grp, const uint8_t me[32],
                           uint32_t *key_id, uint64_t *epoch, uint8_t **ser, size_t *len);
/* *own = 1 if key_id is one of our own keys of grp, else 0. 0 or KL_EIO. */
int kl_store_senderkey_is_own(kl_store_t *st, const char *grp, const uint8_t me[32],
                              uint32_t key_id, int *own);
/* Received (not own) keys of grp with key_id, oldest first, with the
 * epoch their distribution record named; ser valid during cb, whose first
 * non-zero result stops and is returned; store errors. */
int kl_store_senderkey_each(kl_store_t *st, const char *grp, uint32_t key_id,
                            int (*cb)(void *ud, const uint8_t owner[32], uint64_t epoch,
                                      const uint8_t *ser, size_t len),
                            void *ud);
/* Received keys of members who left or were removed (messages they wrote
 * before stay readable): gone marks owner's keys of grp as of now_ms
 * (once); prune deletes the received keys of grp whose owner keep() says
 * is no longer needed (keep returns 0; at most 256 owners are asked per
 * call), and those marked before before_ms. Inside the caller's
 * transaction; KL_ENOMEM, KL_EIO. */
int kl_store_senderkey_gone(kl_store_t *st, const char *grp, const uint8_t owner[32],
                            uint64_t now_ms);
int kl_store_senderkey_prune(kl_store_t *st, const char *grp, uint64_t before_ms,
                             int (*keep)(void *ud, const uint8_t owner[32]), void *ud);

/* Group log entries kept until a sender key for them arrives (body sealed;
 * an entry already kept is left as it is). Beyond KL_GPENDING_MAX per
 * group the oldest are deleted; *dropped counts them. Store errors. */
int kl_store_gpending_add(kl_store_t *st, const char *grp, uint64_t seq, uint64_t ts,
                          const uint8_t *body, size_t len, uint64_t *dropped);
/* Pending entries of grp with a seq above after, in seq order, at most
 * limit (the oldest of them; after 0 starts at the first): one page, the
 * next one starts after its last seq. body valid during cb, whose first
 * non-zero result stops and is returned; store errors. */
int kl_store_gpending_each(kl_store_t *st, const char *grp, uint64_t after, size_t limit,
                           int (*cb)(void *ud, uint64_t seq, uint64_t ts, const uint8_t *body,
                                     size_t len),
                           void *ud);
/* Delete one pending entry (a missing one is no error); count: *n = the
 * pending entries of grp. 0 or KL_EIO. */
int kl_store_gpending_delete(kl_store_t *st, const char *grp, uint64_t seq);
int kl_store_gpending_count(kl_store_t *st, const char *grp, uint64_t *n);

/* Retention: delete grp's messages and pending entries the relay received
 * (relay_ts / ts) before before_ms; *n counts deleted messages. 0 or
 * KL_EIO. */
int kl_store_group_purge(kl_store_t *st, const char *grp, uint64_t before_ms, uint64_t *n);

/* Authors whose message claimed another history than ours (group.h,
 * view check): one row per (grp, author) with the index where the claim
 * differs. get sets *has (1 if there is a row); put inserts or replaces;
 * delete drops it (the author agreed again, left or was removed; no error
 * if there is none). 0 or KL_EIO. */
int kl_store_group_dispute_get(kl_store_t *st, const char *grp, const uint8_t author[32],
                               int *has);
int kl_store_group_dispute_put(kl_store_t *st, const char *grp, const uint8_t author[32],
                               uint64_t idx);
int kl_store_group_dispute_delete(kl_store_t *st, const char *grp, const uint8_t author[32]);

/* After we left or were removed: delete grp's sender keys (own and
 * received), the record of who got ours, its pending entries and its
 * disputes. The ops, the group row and the history stay. Inside the
 * caller's transaction; 0 or KL_EIO. */
int kl_store_group_forget(kl_store_t *st, const char *grp);

#endif
