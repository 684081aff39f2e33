/* relay/storage.h on sqlite: append-only logs with cursors, and prekeys. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/err.h"
#include "storage_sqlite.h"

int kl_storage_prekey_set_signed(kl_storage_t *st, uint64_t user, uint32_t id,
                                 const uint8_t public_key[32], const uint8_t signature[64])
{
    sqlite3_stmt *s = kl_sq_stmt(st, S_SPK_SET);
    sqlite3_bind_int64(s, 1, kl_sq_i64(user));
    sqlite3_bind_int64(s, 2, id);
    sqlite3_bind_blob(s, 3, public_key, 32, SQLITE_STATIC);
    sqlite3_bind_blob(s, 4, signature, 64, SQLITE_STATIC);
    return kl_sq_exec_stmt(s);
}

int kl_storage_prekey_count(kl_storage_t *st, uint64_t user, uint32_t *n)
{
    uint64_t c = 0;
    sqlite3_stmt *s = kl_sq_stmt(st, S_OPK_COUNT);
    sqlite3_bind_int64(s, 1, kl_sq_i64(user));
    int r = kl_sq_count_query(s, &c);
    if (r == 0)
        *n = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
    return r;
}

int kl_storage_prekey_add_onetime(kl_storage_t *st, uint64_t user, const kl_storage_opk_t *keys,
                                  size_t n)
{
    if (n > KL_STORAGE_MAX_OPKS)
        return KL_ELIMIT;
    int r = kl_sq_op_begin(st);
    if (r)
        return r;
    for (size_t i = 0; i < n && r == 0; i++) {
        sqlite3_stmt *s = kl_sq_stmt(st, S_OPK_ADD);
        sqlite3_bind_int64(s, 1, kl_sq_i64(user));
        sqlite3_bind_int64(s, 2, keys[i].id);
        sqlite3_bind_blob(s, 3, keys[i].public_key, 32, SQLITE_STATIC);
        r = kl_sq_exec_stmt(s);
    }
    /* Count after inserting, so replaced ids are not counted twice. */
    uint32_t c = 0;
    if (r == 0)
        r = kl_storage_prekey_count(st, user, &c);
    if (r == 0 && c > KL_STORAGE_MAX_OPKS)
        r = KL_ELIMIT;
    if (r == 0 && n > 0) {
        sqlite3_stmt *s = kl_sq_stmt(st, S_RUNOUT_CLEAR);
        sqlite3_bind_int64(s, 1, kl_sq_i64(user));
        r = kl_sq_exec_stmt(s);
    }
    return kl_sq_op_end(st, r);
}

int kl_storage_prekey_status(kl_storage_t *st, uint64_t user, kl_storage_prekey_status_t *out)
{
    memset(out, 0, sizeof *out);
    int r = kl_storage_prekey_count(st, user, &out->count);
    if (r)
        return r;
    sqlite3_stmt *s = kl_sq_stmt(st, S_RUNOUT_GET);
    sqlite3_bind_int64(s, 1, kl_sq_i64(user));
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        sqlite3_int64 n = sqlite3_column_int64(s, 0), since = sqlite3_column_int64(s, 1);
        out->ran_out = n < 0 ? 0 : n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
        out->ran_out_since_ms = since < 0 ? 0 : (uint64_t)since;
    } else if (rc != SQLITE_DONE) {
        r = kl_sq_map_rc(rc);
    }
    sqlite3_reset(s);
    return r;
}

int kl_storage_prekey_fetch(kl_storage_t *st, const char *handle, int take_opk,
                            uint64_t now_ms, kl_prekey_bundle_t *out)
{
    kl_storage_user_t u;
    memset(out, 0, sizeof *out);
    int r = kl_sq_op_begin(st);
    if (r)
        return r;
    r = kl_sq_user_get(st, handle, &u);
    if (r)
        goto out;
    memcpy(out->identity_key, u.identity_key, 32);
    sqlite3_stmt *s = kl_sq_stmt(st, S_SPK_GET);
    sqlite3_bind_int64(s, 1, kl_sq_i64(u.id));
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        r = rc == SQLITE_DONE ? KL_ENOTFOUND : kl_sq_map_rc(rc);
        sqlite3_reset(s);
        goto out;
    }
    r = KL_EIO;
    if (sqlite3_column_bytes(s, 1) == 32 && sqlite3_column_bytes(s, 2) == 64) {
        out->spk_id = (uint32_t)sqlite3_column_int64(s, 0);
        memcpy(out->spk, sqlite3_column_blob(s, 1), 32);
        memcpy(out->spk_sig, sqlite3_column_blob(s, 2), 64);
        r = 0;
    }
    sqlite3_reset(s);
    if (r || !take_opk)
        goto out;
    s = kl_sq_stmt(st, S_OPK_FIRST);
    sqlite3_bind_int64(s, 1, kl_sq_i64(u.id));
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        /* None left: a bundle without one-time prekey, and a note for the
         * owner's next prekey_status. */
        sqlite3_reset(s);
        s = kl_sq_stmt(st, S_RUNOUT_HIT);
        sqlite3_bind_int64(s, 1, kl_sq_i64(u.id));
        sqlite3_bind_int64(s, 2, kl_sq_i64(now_ms));
        r = kl_sq_exec_stmt(s);
        goto out;
    }
    if (rc != SQLITE_ROW || sqlite3_column_bytes(s, 2) != 32) {
        r = rc == SQLITE_ROW ? KL_EIO : kl_sq_map_rc(rc);
        sqlite3_reset(s);
        goto out;
    }
    sqlite3_int64 rid = sqlite3_column_int64(s, 0);
    out->opk_id = (uint32_t)sqlite3_column_int64(s, 1);
    memcpy(out->opk, sqlite3_column_blob(s, 2), 32);
    out->has_opk = 1;
    sqlite3_reset(s);
    s = kl_sq_stmt(st, S_OPK_DELETE);
    sqlite3_bind_int64(s, 1, rid);
    r = kl_sq_exec_stmt(s);
out:
    r = kl_sq_op_end(st, r);
    if (r)
        memset(out, 0, sizeof *out);
    return r;
}

/* The operation's own savepoint, unless a job's savepoint already covers
 * it (storage.h, "Logs"): two statements and a savepoint's bookkeeping
 * less for each message stored or acknowledged. */
static int hot_op_begin(kl_storage_t *st)
{
    return st->in_job ? 0 : kl_sq_op_begin(st);
}

static int hot_op_end(kl_storage_t *st, int r)
{
    return st->in_job ? r : kl_sq_op_end(st, r);
}

int kl_storage_log_append(kl_storage_t *st, uint64_t log, uint64_t now_ms, uint64_t expires_ms,
                          const uint8_t *body, size_t len, const kl_storage_quota_t *q,
                          uint64_t *seq)
{
    if (len == 0 || len > INT_MAX)
        return KL_EINVAL;
    /* A read and one insert; the insert trigger (entries_ins) advances
     * last_seq and the totals, so the only write is one statement, atomic
     * on its own, and needs no savepoint inside a job or not. (One
     * INSERT ... SELECT ... RETURNING would do it all, but sqlite
     * materialises both the SELECT and the RETURNING rows in temporary
     * b-trees for that, which costs more than the read.) */
    sqlite3_stmt *s = kl_sq_stmt(st, S_LOG_GET);
    sqlite3_bind_int64(s, 1, kl_sq_i64(log));
    int r = kl_sq_row(s);
    if (r)
        return r;
    uint64_t last = kl_sq_u64(sqlite3_column_int64(s, 0));
    uint64_t n_entries = kl_sq_u64(sqlite3_column_int64(s, 1));
    uint64_t n_bytes = kl_sq_u64(sqlite3_column_int64(s, 2));
    sqlite3_reset(s);
    if (q && (n_entries + 1 > q->max_entries || n_bytes + len > q->max_bytes))
        return KL_ELIMIT;
    s = kl_sq_stmt(st, S_ENTRY_INSERT);
    sqlite3_bind_int64(s, 1, kl_sq_i64(log));
    sqlite3_bind_int64(s, 2, kl_sq_i64(last + 1));
    sqlite3_bind_int64(s, 3, kl_sq_i64(now_ms));
    sqlite3_bind_int64(s, 4, kl_sq_i64(expires_ms));
    sqlite3_bind_blob(s, 5, body, (int)len, SQLITE_STATIC);
    r = kl_sq_exec_stmt(s);
    if (r == 0)
        *seq = last + 1;
    return r;
}

void kl_storage_entries_free(kl_storage_entry_t *e, size_t n)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(e[i].body);
    free(e);
}

int kl_sq_read_entries(sqlite3_stmt *s, int with_ts, uint32_t limit, size_t max_bytes,
                       kl_storage_entry_t **out, size_t *n, int *more)
{
    int r = 0, body = with_ts ? 2 : 1;
    *out = NULL;
    *n = 0;
    *more = 0;
    if (limit == 0)
        return KL_EINVAL;
    kl_storage_entry_t *e = calloc(limit, sizeof *e);
    if (e == NULL)
        return KL_ENOMEM;
    size_t count = 0, bytes = 0;
    while (kl_sq_next(s, &r)) {
        size_t len = (size_t)sqlite3_column_bytes(s, body);
        if (count == limit || (count > 0 && bytes + len + KL_STORAGE_ENTRY_OVERHEAD > max_bytes)) {
            *more = 1;
            break;
        }
        const void *b = sqlite3_column_blob(s, body);
        e[count].body = malloc(len ? len : 1);
        if (e[count].body == NULL || (len > 0 && b == NULL)) {
            r = KL_ENOMEM;
            free(e[count].body);
            e[count].body = NULL;
            break;
        }
        memcpy(e[count].body, b, len);
        e[count].len = len;
        e[count].seq = kl_sq_u64(sqlite3_column_int64(s, 0));
        e[count].ts_ms = with_ts ? kl_sq_u64(sqlite3_column_int64(s, 1)) : 0;
        bytes += len + KL_STORAGE_ENTRY_OVERHEAD;
        count++;
    }
    if (r || count == 0) {
        kl_storage_entries_free(e, count);
        if (r)
            *more = 0;
        return r;
    }
    *out = e;
    *n = count;
    return 0;
}

int kl_storage_log_read(kl_storage_t *st, uint64_t log, uint64_t after, uint64_t now_ms,
                        uint32_t limit, size_t max_bytes, kl_storage_entry_t **out, size_t *n,
                        int *more)
{
    /* One row more than asked tells whether more remain. */
    sqlite3_stmt *s = kl_sq_stmt(st, S_ENTRY_READ);
    sqlite3_bind_int64(s, 1, kl_sq_i64(log));
    sqlite3_bind_int64(s, 2, kl_sq_i64(after));
    sqlite3_bind_int64(s, 3, kl_sq_i64(now_ms));
    sqlite3_bind_int64(s, 4, (sqlite3_int64)limit + 1);
    int r = kl_sq_read_entries(s, 1, limit, max_bytes, out, n, more);
    sqlite3_reset(s);
    return r;
}

int kl_sq_log_new(kl_storage_t *st, uint64_t *log)
{
    int r = kl_sq_run(st, S_LOG_INSERT);
    if (r == 0)
        *log = (uint64_t)sqlite3_last_insert_rowid(st->db);
    return r;
}

int kl_sq_cursor_set(kl_storage_t *st, uint64_t log, uint64_t reader, uint64_t acked)
{
    sqlite3_stmt *s = kl_sq_stmt(st, S_CURSOR_SET);
    sqlite3_bind_int64(s, 1, kl_sq_i64(log));
    sqlite3_bind_int64(s, 2, kl_sq_i64(reader));
    sqlite3_bind_int64(s, 3, kl_sq_i64(acked));
    return kl_sq_exec_stmt(s);
}

int kl_sq_cursor_drop(kl_storage_t *st, uint64_t log, uint64_t reader)
{
    sqlite3_stmt *s = kl_sq_stmt(st, S_CURSOR_DELETE);
    sqlite3_bind_int64(s, 1, kl_sq_i64(log));
    sqlite3_bind_int64(s, 2, kl_sq_i64(reader));
    return kl_sq_exec_stmt(s);
}

int kl_sq_log_trim(kl_storage_t *st, uint64_t log)
{
    sqlite3_stmt *s = kl_sq_stmt(st, S_ENTRY_DELETE_ACKED);
    sqlite3_bind_int64(s, 1, kl_sq_i64(log));
    return kl_sq_exec_stmt(s);
}

int kl_storage_log_ack(kl_storage_t *st, uint64_t log, uint64_t reader, uint64_t seq)
{
    int r = hot_op_begin(st);
    if (r)
        return r;
    sqlite3_stmt *s = kl_sq_stmt(st, S_CURSOR_ADVANCE);
    sqlite3_bind_int64(s, 1, kl_sq_i64(log));
    sqlite3_bind_int64(s, 2, kl_sq_i64(reader));
    sqlite3_bind_int64(s, 3, kl_sq_i64(seq));
    r = kl_sq_exec_stmt(s);
    if (r == 0 && sqlite3_changes(st->db) != 1)
        r = KL_ENOTFOUND;
    if (r == 0)
        r = kl_sq_log_trim(st, log);
    return hot_op_end(st, r);
}

int kl_storage_expire(kl_storage_t *st, uint64_t now_ms, uint32_t max, uint64_t *deleted,
                      int *more)
{
    *deleted = 0;
    *more = 0;
    int r = kl_sq_op_begin(st);
    if (r)
        return r;
    sqlite3_stmt *s = kl_sq_stmt(st, S_EXPIRE_ENTRIES);
    sqlite3_bind_int64(s, 1, kl_sq_i64(now_ms));
    sqlite3_bind_int64(s, 2, max);
    r = kl_sq_exec_stmt(s);
    if (r == 0)
        *deleted = (uint64_t)sqlite3_changes(st->db);
    if (r == 0) {
        s = kl_sq_stmt(st, S_EXPIRE_MORE);
        sqlite3_bind_int64(s, 1, kl_sq_i64(now_ms));
        int rc = sqlite3_step(s);
        *more = rc == SQLITE_ROW;
        r = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : kl_sq_map_rc(rc);
        sqlite3_reset(s);
    }
    if (r == 0) {
        s = kl_sq_stmt(st, S_EXPIRE_INVITES);
        sqlite3_bind_int64(s, 1, kl_sq_i64(now_ms));
        r = kl_sq_exec_stmt(s);
    }
    r = kl_sq_op_end(st, r);
    if (r) {
        *deleted = 0;
        *more = 0;
    }
    return r;
}

