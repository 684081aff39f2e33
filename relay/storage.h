/* The relay's one narrow storage interface (DESIGN.md "Storage model").
 *
 * Everything the relay keeps lives behind these functions: metadata, users,
 * invites, prekeys, and append-only logs with per-reader cursors. Nothing
 * outside relay/storage* knows which database engine implements them, so a
 * second backend only has to provide this file's functions.
 *
 * What is stored, and what deliberately is not:
 *   - users: handle, Ed25519 identity public key, creation time;
 *   - invites: only the SHA-256 of the code, uses left, expiry;
 *   - prekeys: public keys and signatures only;
 *   - log entries: (log, seq, ts, expires, body) where body is the opaque
 *     sealed envelope; NO sender of a 1:1 message is stored anywhere.
 *
 * Error conventions (every function returns 0 or one of these):
 *   KL_EINVAL    bad argument (caller bug or unvalidated input)
 *   KL_ENOTFOUND no such user / meta key / signed prekey / database
 *   KL_EEXIST    handle already taken (register)
 *   KL_EREFUSED  invite missing, used up, expired or wrong (register)
 *   KL_ELIMIT    a quota was reached (log entries/bytes, one-time prekeys)
 *   KL_EIO       the database failed (disk full, I/O error, busy too long)
 *   KL_ENOMEM    allocation failed
 *
 * Atomicity: every function is atomic on its own. Inside a batch
 * (kl_storage_batch_begin) nothing is durable until kl_storage_batch_commit
 * returns 0; kl_storage_job_begin/end bracket one job so that a failed job is
 * rolled back without spoiling the rest of the batch (group commit).
 *
 * Threads: a kl_storage_t is used by one thread at a time. Several processes
 * may open the same database (the admin CLI while `serve` runs); writers wait
 * for each other up to a few seconds before KL_EIO. */
#ifndef KOLLEGA_RELAY_STORAGE_H
#define KOLLEGA_RELAY_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/x3dh.h"

typedef struct kl_storage kl_storage_t;

/* Open flags. */
#define KL_STORAGE_CREATE 0x1   /* create the database if missing */
#define KL_STORAGE_READONLY 0x2 /* never write (status) */
#define KL_STORAGE_SYNC_NORMAL 0x4 /* durable at checkpoints, not at every commit */

/* At most this many one-time prekeys are stored per user. */
#define KL_STORAGE_MAX_OPKS 200
/* Longest meta value. */
#define KL_STORAGE_META_MAX 512

typedef struct kl_storage_user {
    uint64_t id;
    uint64_t inbox;          /* log id of the user's inbox */
    uint8_t identity_key[32];
} kl_storage_user_t;

typedef struct kl_storage_entry {
    uint64_t seq;
    uint64_t ts_ms;
    uint8_t *body;           /* malloc'd, owned by the array (kl_storage_entries_free) */
    size_t len;
} kl_storage_entry_t;

typedef struct kl_storage_quota {
    uint64_t max_entries;    /* per log */
    uint64_t max_bytes;      /* sum of body lengths per log */
} kl_storage_quota_t;

typedef struct kl_storage_opk {
    uint32_t id;
    uint8_t public_key[32];
} kl_storage_opk_t;

typedef struct kl_storage_stats {
    uint64_t users;
    uint64_t entries;        /* stored log entries, all logs */
    uint64_t bytes;          /* their body bytes */
    uint64_t active_invites; /* uses left and not expired */
} kl_storage_stats_t;

/* Open (and with KL_STORAGE_CREATE create and migrate) the database at
 * path. Without CREATE a missing file is KL_ENOTFOUND. The caller's umask
 * decides the file mode: the relay runs with 077. */
int kl_storage_open(kl_storage_t **out, const char *path, int flags);
/* Close; NULL is fine. Any open batch is rolled back. */
void kl_storage_close(kl_storage_t *st);

/* Cap the database at max_bytes (rounded down to whole pages) for the rest
 * of this connection's life: a write that would grow it further fails with
 * KL_EIO and changes nothing, while writes that free space (acks, expiry)
 * and reuse of freed space go on. A database already larger keeps its size
 * as the cap. *effective (may be NULL) gets the cap in force. */
int kl_storage_set_max_bytes(kl_storage_t *st, uint64_t max_bytes, uint64_t *effective);

/* Group commit. begin opens a write transaction; commit makes every job of
 * the batch durable at once (0) or fails (KL_EIO) with nothing applied;
 * rollback abandons the batch. */
int kl_storage_batch_begin(kl_storage_t *st);
int kl_storage_batch_commit(kl_storage_t *st);
void kl_storage_batch_rollback(kl_storage_t *st);
/* Bracket one job of a batch; end(st, 0) keeps its changes, end(st, err)
 * with err != 0 undoes them and leaves the batch usable. */
int kl_storage_job_begin(kl_storage_t *st);
int kl_storage_job_end(kl_storage_t *st, int err);

/* Meta key/value strings (relay name, listen address, public key).
 * get: KL_ENOTFOUND if unset, KL_ETOOBIG if cap cannot hold it. */
int kl_storage_meta_get(kl_storage_t *st, const char *key, char *out, size_t cap);
int kl_storage_meta_set(kl_storage_t *st, const char *key, const char *value);

/* Users. register consumes one use of the invite whose code is given and
 * creates the user with an empty inbox, atomically: KL_EREFUSED when the
 * invite is unknown, used up or expired; KL_EEXIST when the handle is taken
 * (the invite is then NOT consumed). The invite is checked first, so a peer
 * without a valid invite learns nothing about which handles exist. */
int kl_storage_register(kl_storage_t *st, const char *handle, const uint8_t identity_key[32],
                        const char *code, uint64_t now_ms, kl_storage_user_t *out);
/* KL_ENOTFOUND if no such handle. */
int kl_storage_user_get(kl_storage_t *st, const char *handle, kl_storage_user_t *out);
int kl_storage_user_count(kl_storage_t *st, uint64_t *n);

/* Invites. Only SHA-256(code) is stored. uses >= 1. */
int kl_storage_invite_create(kl_storage_t *st, const char *code, uint32_t uses,
                             uint64_t expires_ms, uint64_t now_ms);

/* Prekeys. set_signed replaces the user's signed prekey. add_onetime adds
 * (or replaces, same id) n keys; KL_ELIMIT, with nothing added, when the
 * user would then hold more than KL_STORAGE_MAX_OPKS. */
int kl_storage_prekey_set_signed(kl_storage_t *st, uint64_t user, uint32_t id,
                                 const uint8_t public_key[32], const uint8_t signature[64]);
int kl_storage_prekey_add_onetime(kl_storage_t *st, uint64_t user, const kl_storage_opk_t *keys,
                                  size_t n);
/* Fill out for handle (identity key, signed prekey) and consume exactly one
 * one-time prekey, the oldest (has_opk 0 when none is left). KL_ENOTFOUND
 * when the user or its signed prekey is missing. */
int kl_storage_prekey_fetch(kl_storage_t *st, const char *handle, kl_prekey_bundle_t *out);
int kl_storage_prekey_count(kl_storage_t *st, uint64_t user, uint32_t *n);

/* Logs. append stores body as entry last_seq + 1 of log and returns its
 * seq; KL_ELIMIT if the log would exceed q (entries or bytes). */
int kl_storage_log_append(kl_storage_t *st, uint64_t log, uint64_t now_ms, uint64_t expires_ms,
                          const uint8_t *body, size_t len, const kl_storage_quota_t *q,
                          uint64_t *seq);
/* Entries of log with seq > after that have not expired at now_ms, in
 * order: at most limit, and stopping before the encoded size
 * (sum of len + KL_STORAGE_ENTRY_OVERHEAD) would exceed max_bytes, except
 * that the first entry is always returned. *more is 1 when further entries
 * remain. *out (NULL when *n is 0) is freed with kl_storage_entries_free. */
#define KL_STORAGE_ENTRY_OVERHEAD 48
int kl_storage_log_read(kl_storage_t *st, uint64_t log, uint64_t after, uint64_t now_ms,
                        uint32_t limit, size_t max_bytes, kl_storage_entry_t **out, size_t *n,
                        int *more);
void kl_storage_entries_free(kl_storage_entry_t *e, size_t n);
/* Advance reader's cursor on log to seq (never backwards, never past the
 * last appended seq) and delete the entries every reader has acked. */
int kl_storage_log_ack(kl_storage_t *st, uint64_t log, uint64_t reader, uint64_t seq);

/* Delete at most max entries whose expiry is <= now_ms, and every used-up
 * or expired invite. *deleted gets the number of entries deleted; *more is 1
 * when expired entries remain (call again). */
int kl_storage_expire(kl_storage_t *st, uint64_t now_ms, uint32_t max, uint64_t *deleted,
                      int *more);

int kl_storage_stats(kl_storage_t *st, uint64_t now_ms, kl_storage_stats_t *out);

#endif
