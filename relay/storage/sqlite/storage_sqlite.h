/* Internals of the sqlite storage backend, shared by storage_sqlite.c
 * (schema, open, batches, meta, users, invites) and storage_sqlite_logs.c
 * (logs and prekeys). Included only by relay/storage_sqlite*.c. */
#ifndef KOLLEGA_RELAY_STORAGE_SQLITE_H
#define KOLLEGA_RELAY_STORAGE_SQLITE_H

#include <sqlite3.h>

#include "storage/storage.h"

/* Prepared statements, one per query, prepared at open and reused. */
enum {
    S_META_GET,
    S_META_SET,
    S_USER_GET,
    S_USER_COUNT,
    S_USER_INSERT,
    S_LOG_INSERT,
    S_INVITE_INSERT,
    S_INVITE_VALID,
    S_INVITE_CONSUME,
    S_SPK_SET,
    S_SPK_GET,
    S_OPK_ADD,
    S_OPK_COUNT,
    S_OPK_FIRST,
    S_OPK_DELETE,
    S_RUNOUT_HIT,
    S_RUNOUT_GET,
    S_RUNOUT_CLEAR,
    S_LOG_GET,
    S_ENTRY_INSERT,
    S_ENTRY_READ,
    S_CURSOR_ADVANCE,
    S_ENTRY_DELETE_ACKED,
    S_EXPIRE_ENTRIES,
    S_EXPIRE_MORE,
    S_EXPIRE_INVITES,
    S_STATS_ENTRIES,
    S_STATS_INVITES,
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_JOB_SAVE,
    S_JOB_RELEASE,
    S_JOB_UNDO,
    S_OP_SAVE,
    S_OP_RELEASE,
    S_OP_UNDO,
    /* groups (storage_sqlite_groups.c) */
    S_GROUP_GET,
    S_GROUP_CALLER,
    S_GROUP_INSERT,
    S_GROUP_HEAD,
    S_GROUP_RETENTION,
    S_GOP_INSERT,
    S_GOP_READ,
    S_GMEM_CURRENT,
    S_GMEM_UPSERT,
    S_GMEM_SET_STATE,
    S_GMEM_STATUS,
    S_GMEM_USERS,
    S_GROUP_LIST,
    S_CURSOR_SET,
    S_CURSOR_DELETE,
    S_GROUP_NOTE,
    S_GROUPS_CREATED,
    S_GROUP_RETAIN,
    /* the hot path of a send (storage_sqlite_logs.c, storage_sqlite_users.c) */
    S_USER_ROUTE,
    S_USER_MAX,
    /* the remote addresses of a group send's push list (storage_sqlite_gfed.c) */
    S_SHADOW_HANDLE,
    /* channels (storage_sqlite_channels.c) */
    S_CHAN_CALLER,
    S_CHAN_INSERT,
    S_CHAN_HEAD,
    S_COP_INSERT,
    S_COP_READ,
    S_CSUB_INSERT,
    S_CSUB_DELETE,
    S_CSUB_USERS,
    S_CHAN_LIST,
    S_CHAN_BACKLOG,
    S_COUNT
};

struct kl_storage {
    sqlite3 *db;
    int readonly;
    sqlite3_stmt *stmt[S_COUNT];
    int in_job;        /* between kl_storage_job_begin and _end */
    int wal_frames;    /* in the write-ahead log after the last commit */
    int wal_ckpt_at;   /* the committing connection checkpoints from here */
    void *aux[KL_STORAGE_AUX_COUNT]; /* kl_storage_set_aux */
    void (*aux_free[KL_STORAGE_AUX_COUNT])(void *);
    struct kl_sq_ucache *ucache; /* handle -> (id, inbox), storage_sqlite_users.c */
    uint64_t users_max;          /* every user id <= this one is committed */
    uint64_t undo_gen;           /* rollbacks so far (kl_storage_undo_gen) */
};

/* Clamp to sqlite's signed 64-bit integers / back. */
sqlite3_int64 kl_sq_i64(uint64_t v);
uint64_t kl_sq_u64(sqlite3_int64 v);
/* sqlite result code -> kl_err (0 for OK/ROW/DONE). */
int kl_sq_map_rc(int rc);
/* Room for one more element of elem bytes in the array of *cap elements
 * (len in use) that arrayp (a T **) points to: doubles it (from 8) when
 * full. 0, or KL_ENOMEM with the array intact. */
int kl_sq_grow(void *arrayp, size_t *cap, size_t len, size_t elem);
/* Prepare sql on st's connection (*s NULL on error): 0 or a storage error. */
int kl_sq_prep(kl_storage_t *st, const char *sql, sqlite3_stmt **s);
/* Step a statement without rows (a row counts as done), finalize it. */
int kl_sq_exec_fin(sqlite3_stmt *s);
/* Statement `which` prepared at open, reset and unbound, ready for
 * binding: owned by st (never finalize it), valid until kl_storage_close.
 * Cannot fail. */
sqlite3_stmt *kl_sq_stmt(kl_storage_t *st, int which);
/* Reset s and return kl_sq_map_rc(rc): 0 or a storage error. */
int kl_sq_done(sqlite3_stmt *s, int rc);
/* Step a statement that returns no rows (a row counts as done), then
 * reset it; run: the same for statement `which` (kl_sq_stmt), counting a
 * rollback, job or op undo in st->undo_gen. 0 or a storage error as
 * kl_sq_map_rc (KL_EINVAL for a constraint, KL_ENOMEM, else KL_EIO). */
int kl_sq_exec_stmt(sqlite3_stmt *s);
int kl_sq_run(kl_storage_t *st, int which);
/* A savepoint around one multi-statement operation; kl_sq_op_end(st, r) undoes
 * it when r != 0 and returns r (or the release error). */
int kl_sq_op_begin(kl_storage_t *st);
int kl_sq_op_end(kl_storage_t *st, int r);
int kl_sq_user_get(kl_storage_t *st, const char *handle, kl_storage_user_t *out);
/* The route cache (storage_sqlite_users.c): note at the start of a write
 * transaction which user ids are committed (users_max: 0 or a storage
 * error, kl_storage_batch_begin then rolls back with KL_EIO), and free it. */
int kl_sq_users_mark(kl_storage_t *st);
void kl_sq_ucache_free(kl_storage_t *st);
/* Step s to its first row (storage_sqlite_rows.c): 0 with the row there
 * to read (reset s after), else s is reset and the answer is KL_ENOTFOUND
 * (no row) or a storage error. */
int kl_sq_row(sqlite3_stmt *s);
/* Fill one element (zeroed) of an array from the current row of s: 0 keeps
 * it, 1 skips the row, a negative kl_err stops the reading with it. */
typedef int (*kl_sq_fill_fn)(sqlite3_stmt *s, void *elem, void *ctx);
/* Step s for a loop over its rows: 1 with a row there to read; 0 at the
 * end (*r unchanged) or on an error (*r gets it). */
int kl_sq_next(sqlite3_stmt *s, int *r);
/* The row of statement `which` (prepared at open) for text key ?1, read
 * by fill(s, out, NULL): KL_ENOTFOUND when there is none. */
int kl_sq_get(kl_storage_t *st, int which, const char *key, kl_sq_fill_fn fill, void *out);
/* NUL-separated names collected one by one (kl_sq_names_add), handed over
 * as a malloc'd buffer by kl_sq_names_end. */
typedef struct kl_sq_names {
    char *buf;
    size_t used, cap, n;
} kl_sq_names_t;
/* Append name[0..len) and its NUL: 0 or KL_ENOMEM. */
int kl_sq_names_add(kl_sq_names_t *nm, const char *name, size_t len);
/* With r 0 and names collected: *out (NUL-separated, *len bytes, *count
 * names) takes the buffer; else it is freed and *out is NULL. Returns r. */
int kl_sq_names_end(kl_sq_names_t *nm, int r, char **out, size_t *len, size_t *count);
/* Step s to its end, one element of elem bytes per row (fill(s, elem,
 * ctx)); more than max rows (0: no bound) is KL_EIO. *outp (a T **) gets
 * the malloc'd array, NULL when *n is 0; on error nothing. s is reset. */
int kl_sq_rows(sqlite3_stmt *s, size_t elem, size_t max, kl_sq_fill_fn fill, void *ctx,
               void *outp, size_t *n);
/* kl_sq_rows of column 0 as ids. */
int kl_sq_ids(sqlite3_stmt *s, size_t max, uint64_t **ids, size_t *n);
/* Text column col of the current row into out (cap bytes with the NUL):
 * KL_EIO when NULL or longer. */
int kl_sq_text(sqlite3_stmt *s, int col, char *out, size_t cap);

/* Logs and cursors (storage_sqlite_logs.c). */
/* A new empty log: *log gets its id. 0 or a storage error (kl_sq_run). */
int kl_sq_log_new(kl_storage_t *st, uint64_t *log);
/* Set reader's cursor on log to acked (created if missing). 0 or a
 * storage error, as the two below. */
int kl_sq_cursor_set(kl_storage_t *st, uint64_t log, uint64_t reader, uint64_t acked);
/* Drop reader's cursor on log (none is fine). 0 or a storage error. */
int kl_sq_cursor_drop(kl_storage_t *st, uint64_t log, uint64_t reader);
/* Delete the entries of log every cursor on it has acked (after a reader
 * left, it may have been the last one holding them back). 0 or a storage
 * error. */
int kl_sq_log_trim(kl_storage_t *st, uint64_t log);
/* Step s, whose rows are (seq, [ts_ms if with_ts,] body) in order, into
 * entries as kl_storage_log_read answers (limit, max_bytes, *more). s is
 * not reset. */
int kl_sq_read_entries(sqlite3_stmt *s, int with_ts, uint32_t limit, size_t max_bytes,
                       kl_storage_entry_t **out, size_t *n, int *more);

/* Signed-op logs of groups and channels (storage_sqlite_oplog.c). Both are
 * a row (address, message log, next op index, head) with its ops; the
 * statements of each kind, with the same parameters and columns: */
typedef struct kl_sq_oplog {
    int get;       /* (address) -> id, log, next_index, head, last_seq, ... */
    int insert;    /* (address, log): a row without ops (next index 0) */
    int head;      /* (id, next_index, head) */
    int op_insert; /* (row id, index, op) */
    int op_read;   /* (row id, from, limit) -> index, op, in order */
    uint64_t max_ops; /* ops a row may hold (0: no bound here) */
} kl_sq_oplog_t;
extern const kl_sq_oplog_t KL_SQ_GROUP_LOG;
extern const kl_sq_oplog_t KL_SQ_CHANNEL_LOG;
/* The part of a row both kinds have. */
typedef struct kl_sq_oprow {
    uint64_t id;
    uint64_t log;
    uint64_t next_index;
    uint8_t head[32];
    uint64_t last_seq;
} kl_sq_oprow_t;
/* Columns 0-4 of the current row of a kind's get (KL_EIO for a bad head). */
int kl_sq_oprow_fill(sqlite3_stmt *s, kl_sq_oprow_t *out);
/* The row at address: KL_ENOTFOUND when there is none. */
int kl_sq_oprow_get(kl_storage_t *st, const kl_sq_oplog_t *k, const char *address,
                    kl_sq_oprow_t *out);
/* Create the row at address (next index 0) and its message log; *out gets
 * it as stored. 0 or a storage error (KL_EINVAL: the address exists). */
int kl_sq_oprow_create(kl_storage_t *st, const kl_sq_oplog_t *k, const char *address,
                       kl_sq_oprow_t *out);
/* What the kind does in the same savepoint after its op is stored (row:
 * as it is now). 0 or an error that undoes the op. */
typedef int (*kl_sq_oplog_then_fn)(kl_storage_t *st, const kl_sq_oprow_t *row, void *ctx);
/* Store op (validated by the caller) as op `index` of the row at address
 * and set its head and next index, in one savepoint with then (may be
 * NULL). index 0 creates the row and its log (KL_EEXIST if it exists,
 * unless the row has no op yet: a channel mirror's placeholder,
 * storage_cmirror.h); any other index needs the row (KL_ENOTFOUND) at
 * exactly that next index (KL_ESTATE). KL_EINVAL for a bad argument,
 * KL_ELIMIT for an index past the kind's max_ops. *out
 * (may be NULL) gets the row after the op. */
int kl_sq_oplog_append(kl_storage_t *st, const kl_sq_oplog_t *k, const char *address,
                       uint64_t index, const uint8_t *op, size_t len, const uint8_t head[32],
                       kl_sq_oplog_then_fn then, void *ctx, kl_sq_oprow_t *out);
/* Ops of row id with index >= from, as entries (seq = index), as
 * kl_storage_group_ops answers. */
int kl_sq_oplog_read(kl_storage_t *st, const kl_sq_oplog_t *k, uint64_t id, uint64_t from,
                     uint32_t limit, size_t max_bytes, kl_storage_entry_t **out, size_t *n,
                     int *more);

/* Step a "SELECT count(*)"-like statement into *n. */
int kl_sq_count_query(sqlite3_stmt *s, uint64_t *n);
/* Schema migrations, run by kl_storage_open on a writable database; each
 * 0 or a storage error (KL_EIO ...). Create the federation tables if
 * missing (storage_sqlite_fed.c). */
int kl_sq_fed_migrate(kl_storage_t *st);
/* Add the group columns of later versions if missing
 * (storage_sqlite_groups.c), in one transaction (rolled back on error). */
int kl_sq_groups_migrate(kl_storage_t *st);
/* Operator tables and columns (storage_sqlite_admin.c): retired handles,
 * invites bound to a handle, in one transaction: 0 or a storage error. */
int kl_sq_admin_migrate(kl_storage_t *st);
/* The handle the invite with this code hash is bound to into handle (""
 * if none, or no such invite). 0, KL_EIO if the stored handle does not fit
 * cap, KL_ENOMEM if sqlite cannot give the text, or a storage error. */
int kl_sq_invite_bound(kl_storage_t *st, const uint8_t code_hash[32], char *handle, size_t cap);
/* *retired = 1 when handle belonged to a removed user (0 also on error).
 * 0 or a storage error. */
int kl_sq_handle_retired(kl_storage_t *st, const char *handle, int *retired);
/* Give user u a new identity key and drop what belonged to the old one
 * (prekeys, delivery token, inbox contents, group and channel places).
 * Several statements and no savepoint of its own: the caller's (a
 * registration's) undoes it. 0 or a storage error. */
int kl_sq_user_rekey(kl_storage_t *st, const kl_storage_user_t *u, const uint8_t key[32]);

#endif
