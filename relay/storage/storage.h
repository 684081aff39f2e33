/* The relay's one narrow storage interface (docs/DESIGN.md "Storage model").
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
#define KL_STORAGE_SYNC_NORMAL 0x4 /* durable at the backend's next sync point, not at every commit */

/* Longest group address ("#" + handle + "@" + relay name). */
#define KL_STORAGE_GROUP_ADDR_MAX 287
/* At most this many one-time prekeys are stored per user. */
#define KL_STORAGE_MAX_OPKS 200
/* Longest meta value. */
#define KL_STORAGE_META_MAX 512

typedef struct kl_storage_user {
    uint64_t id;
    uint64_t inbox;          /* log id of the user's inbox */
    uint8_t identity_key[32];
    int rekeyed;             /* register: a reset invite gave this existing user a new
                              * key (storage_admin.h) */
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

/* Open the database at path; with KL_STORAGE_CREATE create it if missing
 * (without, a missing file is KL_ENOTFOUND). Every writable open brings the
 * schema up to date in one transaction and refuses a database written by a
 * newer relay (KL_ESTATE). A writable open makes the file mode 0600 (any
 * companion files of the backend take its mode), whatever the caller's
 * umask. */
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
/* Bracket one job of a batch (a savepoint); end(st, 0) keeps its changes,
 * end(st, err) with err != 0 undoes them and leaves the batch usable. Both
 * return 0 or a storage error (KL_EIO, KL_ENOMEM): end's is releasing the
 * savepoint's, whatever err was. */
int kl_storage_job_begin(kl_storage_t *st);
int kl_storage_job_end(kl_storage_t *st, int err);
/* 1 while the batch's transaction is still open: after some failures (an
 * I/O error, out of memory) the backend rolls the whole transaction back
 * by itself, and a job run without its own savepoint must notice. */
int kl_storage_batch_open(const kl_storage_t *st);

/* Background maintenance: work a backend does off the commit path, on a
 * thread of the caller's (jobs/storeq.c) with a connection of its own, so
 * that it never delays a commit (for sqlite: copying the write-ahead log
 * back into the database and fsyncing it; the policy is the backend's,
 * storage/sqlite/sqlite_wal.h). Without it the backend does that work in
 * its commits, as it must.
 *   open:  start maintenance for st (from now on st leaves that work to
 *          it); KL_ENOTSUP if the backend has none, else 0, KL_EIO
 *          (sqlite: also for a read-only or in-memory database) or
 *          KL_ENOMEM. *out (NULL on failure) is the caller's, freed by
 *          close. Close it before st.
 *   due:   1 if st's last commit left work for maintenance (storage
 *          thread, after a batch).
 *   run:   do the work due (maintenance thread); 0, or KL_EIO when it
 *          failed (e.g. the disk is full: nothing is lost, the next round
 *          tries again).
 *   close: stop; st does the work in its commits again. NULL is fine. */
typedef struct kl_storage_maint kl_storage_maint_t;
/* open, due, run, close: errors, threads and ownership as said above. */
int kl_storage_maint_open(kl_storage_t *st, kl_storage_maint_t **out);
int kl_storage_maint_due(const kl_storage_t *st);
int kl_storage_maint_run(kl_storage_maint_t *m);
void kl_storage_maint_close(kl_storage_maint_t *m);

/* Meta key/value strings (relay name, listen address, public key).
 * get: KL_ENOTFOUND if unset, KL_ETOOBIG if cap cannot hold it. */
int kl_storage_meta_get(kl_storage_t *st, const char *key, char *out, size_t cap);
int kl_storage_meta_set(kl_storage_t *st, const char *key, const char *value);

/* Users. register consumes one use of the invite whose code is given and
 * creates the user with an empty inbox, atomically: KL_EREFUSED when the
 * invite is unknown, used up or expired (or bound to another handle);
 * KL_EEXIST when the handle is taken or retired (the invite is then NOT
 * consumed). An invite bound to this handle (storage_admin.h) replaces the
 * existing user's key instead (out->rekeyed). The invite is checked first, so a peer
 * without a valid invite learns nothing about which handles exist. */
int kl_storage_register(kl_storage_t *st, const char *handle, const uint8_t identity_key[32],
                        const char *code, uint64_t now_ms, kl_storage_user_t *out);
/* KL_ENOTFOUND if no such handle. */
int kl_storage_user_get(kl_storage_t *st, const char *handle, kl_storage_user_t *out);
/* Only the user's id and inbox (what a send needs), from a cache kept on
 * st where possible. KL_ENOTFOUND if no such
 * handle. */
int kl_storage_user_route(kl_storage_t *st, const char *handle, uint64_t *id, uint64_t *inbox);
int kl_storage_user_count(kl_storage_t *st, uint64_t *n);
/* Unidentified delivery (relay.proto DeliveryToken): set user's token hash
 * (32 bytes), or clear it with hash NULL (none is fine). 0 or a storage
 * error. */
int kl_storage_token_set(kl_storage_t *st, uint64_t user, const uint8_t *hash);
/* *ok = 1 when handle is a user whose token hash is SHA-256(token),
 * compared in constant time; 0 for no such user or no token (and on
 * error). Returns 0 or a storage error, never KL_ENOTFOUND. */
int kl_storage_token_check(kl_storage_t *st, const char *handle, const uint8_t token[32],
                           int *ok);

/* Invites. Only SHA-256(code) is stored. uses >= 1. KL_EINVAL for uses 0,
 * an empty code or a code already stored; else 0 or a storage error. */
int kl_storage_invite_create(kl_storage_t *st, const char *code, uint32_t uses,
                             uint64_t expires_ms, uint64_t now_ms);

/* Prekeys. set_signed replaces the user's signed prekey. add_onetime adds
 * (or replaces, same id) n keys; KL_ELIMIT, with nothing added, when the
 * user would then hold more than KL_STORAGE_MAX_OPKS. */
int kl_storage_prekey_set_signed(kl_storage_t *st, uint64_t user, uint32_t id,
                                 const uint8_t public_key[32], const uint8_t signature[64]);
int kl_storage_prekey_add_onetime(kl_storage_t *st, uint64_t user, const kl_storage_opk_t *keys,
                                  size_t n);
/* Fill out for handle (identity key, signed prekey). With take_opk, also
 * consume exactly one one-time prekey, the oldest; when none is left
 * (has_opk 0) record that the user ran out at now_ms (see prekey_status).
 * Without take_opk (the requester is over its limits) no one-time prekey
 * is read or consumed and nothing is recorded. KL_ENOTFOUND when the user
 * or its signed prekey is missing. An upload of one-time prekeys
 * (add_onetime, n > 0) clears the ran-out record. */
int kl_storage_prekey_fetch(kl_storage_t *st, const char *handle, int take_opk,
                            uint64_t now_ms, kl_prekey_bundle_t *out);
int kl_storage_prekey_count(kl_storage_t *st, uint64_t user, uint32_t *n);

typedef struct kl_storage_prekey_status {
    uint32_t count;            /* one-time prekeys stored */
    uint32_t ran_out;          /* fetches that found none since the last upload */
    uint64_t ran_out_since_ms; /* the first of them, 0 if none */
} kl_storage_prekey_status_t;
/* The user's one-time prekey count and ran-out record. */
int kl_storage_prekey_status(kl_storage_t *st, uint64_t user, kl_storage_prekey_status_t *out);

/* Logs. append stores body as entry last_seq + 1 of log and returns its
 * seq; KL_ELIMIT if the log would exceed q (entries or bytes), KL_ENOTFOUND
 * if there is no such log. Its only write is one statement, so a failed
 * append has written nothing. Inside a job (kl_storage_job_begin) ack uses the
 * job's savepoint instead of one of its own: KL_ENOTFOUND comes before it
 * writes anything, but after any other failure the job must fail
 * (kl_storage_job_end with the error) to undo a partial write. */
int kl_storage_log_append(kl_storage_t *st, uint64_t log, uint64_t now_ms, uint64_t expires_ms,
                          const uint8_t *body, size_t len, const kl_storage_quota_t *q,
                          uint64_t *seq);
/* Entries of log with seq > after that have not expired at now_ms, in
 * order: at most limit, and stopping before the encoded size
 * (sum of len + KL_STORAGE_ENTRY_OVERHEAD) would exceed max_bytes, except
 * that the first entry is always returned. *more is 1 when further entries
 * remain. *out (NULL when *n is 0) is freed with kl_storage_entries_free. */
#define KL_STORAGE_ENTRY_OVERHEAD 48
/* Each entry's body is malloc'd. 0, KL_EINVAL for limit 0, KL_ENOMEM or a
 * storage error (then *out NULL, *n 0, *more 0); free: NULL is fine. */
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

/* Counts into *out (zeroed first): users, log entries and their body bytes
 * (all logs, expired or not), invites with uses left unexpired at now_ms.
 * 0 or a storage error. */
int kl_storage_stats(kl_storage_t *st, uint64_t now_ms, kl_storage_stats_t *out);

/* ---- ERFA groups -------------------------------------------------------
 * A group is a row (address "#name@relay", its message log, retention,
 * next op index, head hash), its ops (index, SignedOp bytes, validated by
 * the caller with libkollega before they get here) and a membership table
 * derived from the ops, rewritten in the same transaction as each op. A
 * group message is ONE entry of the group's log; every current member that
 * is a user of this relay has a cursor on it, created at the log's last seq
 * when it becomes a member (older entries are not its to read) and deleted
 * when it stops being one. Entries go when every current member has acked
 * them (kl_storage_log_ack) or when they expire. */

/* Membership states. FORMER: named in the log once (left, removed,
 * refused candidate) and nothing now. */
#define KL_GSTATE_NONE 0
#define KL_GSTATE_MEMBER 1
#define KL_GSTATE_CANDIDATE 2
#define KL_GSTATE_FORMER 3

/* Largest number of groups one group_list answers with. */
#define KL_STORAGE_MAX_GROUPS_LISTED 256

typedef struct kl_storage_group {
    uint64_t id;
    uint64_t log;            /* the group's message log */
    uint32_t retention_days; /* 0 = the relay's default TTL */
    uint64_t next_index;     /* index the next op must have */
    uint8_t head[32];        /* SHA-256 of the last op */
    uint64_t last_seq;       /* last seq of the message log */
    uint64_t rekey_next;     /* 1 + index of the last op at which a member left or was
                              * removed (the epoch changed); 0 = none */
} kl_storage_group_t;

/* One identity named by the group's log, as the current state sees it. */
typedef struct kl_storage_gmember {
    uint8_t identity_key[32];
    uint64_t user;           /* id of the user of this relay with this key, 0 if none */
    int state;               /* KL_GSTATE_MEMBER or KL_GSTATE_CANDIDATE */
    int role;                /* kl_group_role_t of a member, 0 for candidates */
} kl_storage_gmember_t;

/* A caller's place in a group (by user id). */
typedef struct kl_storage_gstatus {
    int state;               /* KL_GSTATE_*; NONE if never named */
    uint64_t join_seq;       /* log seq at admission: entries <= it are not readable */
    uint64_t exit_index;     /* FORMER: index of the op at which it stopped being named */
} kl_storage_gstatus_t;

typedef struct kl_storage_ginfo {
    char address[KL_STORAGE_GROUP_ADDR_MAX + 1];
    uint64_t next_index;
    int member;              /* 0: candidate */
    uint64_t last_seq;
} kl_storage_ginfo_t;

/* KL_ENOTFOUND if no group has this address. */
int kl_storage_group_get(kl_storage_t *st, const char *address, kl_storage_group_t *out);
/* Store op (already validated) as op `index` of the group at address, set
 * the head, retention and next index, and replace the membership with
 * members[0..n) (members and candidates after the op; anyone named before
 * and absent now becomes FORMER), creating and deleting cursors as
 * described above. index 0 creates the group and its log (KL_EEXIST if the
 * address exists); any other index needs the group (KL_ENOTFOUND) at
 * exactly that next index (KL_ESTATE otherwise). *out gets the new row. */
int kl_storage_group_append_op(kl_storage_t *st, const char *address, uint64_t index,
                               const uint8_t *op, size_t len, const uint8_t head[32],
                               uint32_t retention_days, const kl_storage_gmember_t *members,
                               size_t n, kl_storage_group_t *out);
/* Ops with index >= from, as entries (seq = index, ts 0), at most limit,
 * stopping before max_bytes as kl_storage_log_read does. */
int kl_storage_group_ops(kl_storage_t *st, uint64_t group, uint64_t from, uint32_t limit,
                         size_t max_bytes, kl_storage_entry_t **out, size_t *n, int *more);
/* kl_storage_group_get and kl_storage_group_status in one step (the
 * per-message path of send, fetch and ack). */
int kl_storage_group_caller(kl_storage_t *st, const char *address, uint64_t user,
                            kl_storage_group_t *out, kl_storage_gstatus_t *status);
/* The user's state in the group (NONE when never named). */
int kl_storage_group_status(kl_storage_t *st, uint64_t group, uint64_t user,
                            kl_storage_gstatus_t *out);
/* Users of this relay that are members (and with candidates 1, also
 * candidates) of the group: *users malloc'd (NULL when *n is 0), free().
 * 0, KL_ENOMEM, or a storage error (KL_EIO past 320 rows: more than a
 * group can hold). */
int kl_storage_group_users(kl_storage_t *st, uint64_t group, int candidates, uint64_t **users,
                           size_t *n);
/* The groups in which user is a member or candidate, at most
 * KL_STORAGE_MAX_GROUPS_LISTED: *out malloc'd (NULL when *n is 0), free().
 * 0, KL_ENOMEM or a storage error. */
int kl_storage_group_list(kl_storage_t *st, uint64_t user, kl_storage_ginfo_t **out, size_t *n);
/* Facts of op `index` of group (just appended by kl_storage_group_append_op,
 * in the same job): creator, the actor of op 0 (NULL for other ops), whom
 * kl_storage_groups_created counts; epoch_changed, that a member left or was
 * removed at it (sets rekey_next to index + 1). */
int kl_storage_group_note_op(kl_storage_t *st, uint64_t group, uint64_t index,
                             const uint8_t *creator, int epoch_changed);
/* How many groups of this relay were created (op 0) by identity key, into
 * *n. 0 or a storage error. */
int kl_storage_groups_created(kl_storage_t *st, const uint8_t key[32], uint64_t *n);
/* A group's retention applied to what its log holds: every entry's expiry
 * becomes min(expiry, ts + days); days 0 changes nothing. 0 or a storage
 * error. */
int kl_storage_group_retain(kl_storage_t *st, uint64_t log, uint32_t days);

/* Pointers the storage thread's code may hang on its connection, one per
 * slot (the state caches of jobs/: group_cache.h, chan_cache.h), each freed
 * with its free_fn by kl_storage_close. Setting a slot again frees what it
 * held. */
#define KL_STORAGE_AUX_GROUPS 0
#define KL_STORAGE_AUX_CHANNELS 1
#define KL_STORAGE_AUX_COUNT 2
/* Set slot's pointer p (owned by st from now on, freed with free_fn, which
 * may be NULL for none), or get it (borrowed; NULL when unset). Neither can
 * fail; slot must be below KL_STORAGE_AUX_COUNT (not checked). */
void kl_storage_set_aux(kl_storage_t *st, int slot, void *p, void (*free_fn)(void *));
void *kl_storage_aux(const kl_storage_t *st, int slot);
/* How many times st rolled back a batch, a job or an operation: state
 * cached from inside a transaction is valid only while this is unchanged. */
uint64_t kl_storage_undo_gen(const kl_storage_t *st);

/* ---- Broadcast channels ------------------------------------------------
 * A channel is a row (address "!name@relay", its post log, next op index,
 * head hash), its publisher ops (SignedOp bytes, validated by the caller
 * with libkollega before they get here) and its subscriptions. A post is
 * ONE entry of the channel's log whatever the number of subscribers; each
 * subscriber (a user of this relay) has a cursor on that log, and an entry
 * goes when every subscriber has acked it (kl_storage_log_ack) or when it
 * expires. A channel without subscribers keeps its posts until expiry. */

/* Ops one channel may have: each post is checked against the replayed
 * log, so its length is bounded; room for a members-only channel's
 * KL_CHANNEL_MAX_MEMBERS (4096) members and their churn. A replay after a
 * state-cache miss (chan_cache.h) costs one signature check per op. */
#define KL_STORAGE_CHANNEL_MAX_OPS 8192
/* Largest number of subscriptions one channel_list answers with. */
#define KL_STORAGE_MAX_CHANNELS_LISTED 256

typedef struct kl_storage_channel {
    uint64_t id;
    uint64_t log;            /* the post log */
    uint64_t next_index;     /* index the next op must have */
    uint8_t head[32];        /* SHA-256 of the last op */
    uint64_t last_seq;       /* last seq of the post log */
} kl_storage_channel_t;

typedef struct kl_storage_cinfo {
    char address[KL_STORAGE_GROUP_ADDR_MAX + 1];
    uint64_t next_index;
    uint64_t last_seq;
    uint64_t cursor;         /* the subscriber's acked seq */
} kl_storage_cinfo_t;

/* KL_ENOTFOUND if no channel has this address. */
int kl_storage_channel_get(kl_storage_t *st, const char *address, kl_storage_channel_t *out);
/* The channel and, in one step, whether user subscribes (*cursor = its
 * acked seq then, else 0). */
int kl_storage_channel_caller(kl_storage_t *st, const char *address, uint64_t user,
                              kl_storage_channel_t *out, int *subscribed, uint64_t *cursor);
/* Store op (already validated) as op `index` and set the head. index 0
 * creates the channel and its log (KL_EEXIST if the address exists, unless
 * it is a mirror's placeholder without ops, which it fills); any
 * other index needs the channel (KL_ENOTFOUND) at exactly that next index
 * (KL_ESTATE otherwise); KL_ELIMIT past KL_STORAGE_CHANNEL_MAX_OPS. *out
 * (may be NULL) gets the new row. */
int kl_storage_channel_append_op(kl_storage_t *st, const char *address, uint64_t index,
                                 const uint8_t *op, size_t len, const uint8_t head[32],
                                 kl_storage_channel_t *out);
/* Ops with index >= from, as entries (seq = index, ts 0), at most limit,
 * stopping before max_bytes as kl_storage_log_read does. */
int kl_storage_channel_ops(kl_storage_t *st, uint64_t chan, uint64_t from, uint32_t limit,
                           size_t max_bytes, kl_storage_entry_t **out, size_t *n, int *more);
/* Subscribe user to c: its cursor starts at c's last seq, or with backlog
 * > 0 just below the backlog latest entries not expired at now_ms. An
 * existing subscription is left as it is. *cursor (may be NULL) gets the
 * subscription's cursor. One savepoint. KL_EINVAL for user 0, KL_ENOTFOUND
 * when c is no longer stored, else 0 or a storage error. */
int kl_storage_channel_subscribe(kl_storage_t *st, const kl_storage_channel_t *c, uint64_t user,
                                 uint32_t backlog, uint64_t now_ms, uint64_t *cursor);
/* Drop the subscription and its cursor (and the entries only it held
 * back). KL_ENOTFOUND if user does not subscribe. */
int kl_storage_channel_unsubscribe(kl_storage_t *st, const kl_storage_channel_t *c,
                                   uint64_t user);
/* The subscribers of channel id chan: *users malloc'd (NULL when *n is 0),
 * free(). 0, KL_ENOMEM or a storage error. */
int kl_storage_channel_subscribers(kl_storage_t *st, uint64_t chan, uint64_t **users, size_t *n);
/* The channels user subscribes to, by address, at most
 * KL_STORAGE_MAX_CHANNELS_LISTED: *out malloc'd (NULL when *n is 0), free().
 * 0, KL_ENOMEM or a storage error. */
int kl_storage_channel_list(kl_storage_t *st, uint64_t user, kl_storage_cinfo_t **out,
                            size_t *n);

#endif
