/* relay/storage_admin.h on sqlite. These statements run when the operator
 * asks (and once per register, for the handle checks), so they are
 * prepared per call instead of at open, like federation's. */
#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage/storage_admin.h"
#include "storage_sqlite.h"

/* Retired handles (a removed user's), and the handle an invite is bound to
 * (a reset invite; NULL for ordinary invites). Check and change in one
 * write transaction, as kl_sq_groups_migrate does. */
int kl_sq_admin_migrate(kl_storage_t *st)
{
    sqlite3_stmt *s = NULL;
    uint64_t has = 0;
    int r = kl_sq_map_rc(sqlite3_exec(st->db, "BEGIN IMMEDIATE;"
                                      "CREATE TABLE IF NOT EXISTS retired_handles("
                                      "  handle TEXT PRIMARY KEY,"
                                      "  retired_ms INTEGER NOT NULL) WITHOUT ROWID;",
                                      NULL, NULL, NULL));
    if (r == 0)
        r = kl_sq_prep(st, "SELECT count(*) FROM pragma_table_info('invites')"
                           " WHERE name = 'handle'", &s);
    if (r == 0)
        r = kl_sq_count_query(s, &has);
    sqlite3_finalize(s);
    if (r == 0 && has == 0)
        r = kl_sq_map_rc(
            sqlite3_exec(st->db, "ALTER TABLE invites ADD COLUMN handle TEXT", NULL, NULL, NULL));
    if (r == 0)
        return kl_sq_map_rc(sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL));
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

int kl_sq_invite_bound(kl_storage_t *st, const uint8_t code_hash[32], char *handle, size_t cap)
{
    sqlite3_stmt *s = NULL;
    handle[0] = '\0';
    int r = kl_sq_prep(st, "SELECT handle FROM invites WHERE code_hash = ?1", &s);
    if (r)
        return r;
    sqlite3_bind_blob(s, 1, code_hash, 32, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_TEXT) {
        const unsigned char *t = sqlite3_column_text(s, 0); /* NULL: out of memory */
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        if (t == NULL)
            r = KL_ENOMEM;
        else if (n + 1 > cap)
            r = KL_EIO;
        else
            memcpy(handle, t, n + 1);
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        r = kl_sq_map_rc(rc);
    }
    sqlite3_finalize(s);
    return r;
}

int kl_sq_handle_retired(kl_storage_t *st, const char *handle, int *retired)
{
    sqlite3_stmt *s = NULL;
    uint64_t n = 0;
    int r = kl_sq_prep(st, "SELECT count(*) FROM retired_handles WHERE handle = ?1", &s);
    if (r == 0) {
        sqlite3_bind_text(s, 1, handle, -1, SQLITE_STATIC);
        r = kl_sq_count_query(s, &n);
    }
    sqlite3_finalize(s);
    *retired = n > 0;
    return r;
}

/* Run sql with ?1 = a and ?2 = b (when the statement has them). */
static int exec2(kl_storage_t *st, const char *sql, uint64_t a, uint64_t b)
{
    sqlite3_stmt *s = NULL;
    int r = kl_sq_prep(st, sql, &s);
    if (r)
        return r;
    if (sqlite3_bind_parameter_count(s) >= 1)
        sqlite3_bind_int64(s, 1, kl_sq_i64(a));
    if (sqlite3_bind_parameter_count(s) >= 2)
        sqlite3_bind_int64(s, 2, kl_sq_i64(b));
    return kl_sq_exec_fin(s);
}

/* What user id (inbox) holds besides its row: keys others use to reach
 * it, what waits for it, and its places in groups and channels. Group
 * memberships keep their rows (the group's log names the key) but no
 * longer point at this user, as an op applied now would compute them
 * (jobs_group.c: a member is a user here only under the key it
 * registered); the push lists cached on this connection may name the user
 * and are dropped (kl_storage_undo_gen). */
static int drop_user_state(kl_storage_t *st, uint64_t id, uint64_t inbox)
{
    static const char *const SQL[] = {
        "DELETE FROM signed_prekeys WHERE user = ?1",
        "DELETE FROM onetime_prekeys WHERE user = ?1",
        "DELETE FROM prekey_runout WHERE user = ?1",
        "DELETE FROM delivery_tokens WHERE user = ?1",
        "DELETE FROM channel_subs WHERE user = ?1",
        ("DELETE FROM cursors WHERE reader = ?1 AND log IN"
         " (SELECT log FROM groups UNION ALL SELECT log FROM channels)"),
        "UPDATE group_members SET user = 0 WHERE user = ?1",
        "DELETE FROM entries WHERE log = ?2",
    };
    int r = 0;
    for (size_t i = 0; r == 0 && i < sizeof SQL / sizeof SQL[0]; i++)
        r = exec2(st, SQL[i], id, inbox);
    st->undo_gen++;
    return r;
}

int kl_sq_user_rekey(kl_storage_t *st, const kl_storage_user_t *u, const uint8_t key[32])
{
    sqlite3_stmt *s = NULL;
    int r = drop_user_state(st, u->id, u->inbox);
    /* Nothing is left to read: the inbox cursor moves to the end. */
    if (r == 0)
        r = exec2(st, "UPDATE cursors SET acked = (SELECT last_seq FROM logs WHERE id = ?2)"
                      " WHERE log = ?2 AND reader = ?1", u->id, u->inbox);
    if (r == 0)
        r = kl_sq_prep(st, "UPDATE users SET identity_key = ?2 WHERE id = ?1", &s);
    if (r == 0) {
        sqlite3_bind_int64(s, 1, kl_sq_i64(u->id));
        sqlite3_bind_blob(s, 2, key, 32, SQLITE_STATIC);
        r = kl_sq_exec_fin(s);
    }
    return r;
}

/* Open an operation's savepoint with the user named handle in *u:
 * KL_ENOTFOUND (nothing left open) for a malformed handle or no such user. */
static int begin_on_user(kl_storage_t *st, const char *handle, kl_storage_user_t *u)
{
    if (!kl_handle_valid(handle))
        return KL_ENOTFOUND;
    int r = kl_sq_op_begin(st);
    if (r)
        return r;
    r = kl_sq_user_get(st, handle, u);
    return r ? kl_sq_op_end(st, r) : 0;
}

int kl_storage_user_remove(kl_storage_t *st, const char *handle, uint64_t now_ms, uint64_t *id)
{
    kl_storage_user_t u;
    sqlite3_stmt *s = NULL;
    int r = begin_on_user(st, handle, &u);
    if (r)
        return r;
    r = drop_user_state(st, u.id, u.inbox);
    if (r == 0)
        r = exec2(st, "DELETE FROM cursors WHERE log = ?2", u.id, u.inbox);
    if (r == 0)
        r = exec2(st, "DELETE FROM users WHERE id = ?1", u.id, 0);
    if (r == 0)
        r = exec2(st, "DELETE FROM logs WHERE id = ?1", u.inbox, 0);
    if (r == 0)
        r = kl_sq_prep(st, "DELETE FROM invites WHERE handle = ?1", &s);
    if (r == 0) {
        sqlite3_bind_text(s, 1, handle, -1, SQLITE_STATIC);
        r = kl_sq_exec_fin(s);
    }
    if (r == 0)
        r = kl_sq_prep(st, "INSERT OR REPLACE INTO retired_handles(handle, retired_ms)"
                           " VALUES(?1, ?2)", &s);
    if (r == 0) {
        sqlite3_bind_text(s, 1, handle, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, kl_sq_i64(now_ms));
        r = kl_sq_exec_fin(s);
    }
    r = kl_sq_op_end(st, r);
    /* The route cache keeps (id, inbox) by handle and has no way to forget
     * one slot (open addressing): empty it. A removal is rare. The removed
     * id may now be given to a user registered later in this transaction,
     * which a rollback would undo: nothing at or below it counts as
     * committed until the next batch looks again (kl_sq_users_mark). */
    kl_sq_ucache_free(st);
    st->users_max = 0;
    if (r == 0 && id)
        *id = u.id;
    return r;
}

static int fill_user_info(sqlite3_stmt *s, void *e, void *ctx)
{
    kl_storage_user_info_t *u = e;
    (void)ctx;
    snprintf(u->handle, sizeof u->handle, "%s", (const char *)sqlite3_column_text(s, 0));
    u->created_ms = kl_sq_u64(sqlite3_column_int64(s, 1));
    u->entries = kl_sq_u64(sqlite3_column_int64(s, 2));
    u->bytes = kl_sq_u64(sqlite3_column_int64(s, 3));
    return 0;
}

int kl_storage_user_list(kl_storage_t *st, kl_storage_user_info_t **out, size_t *n)
{
    sqlite3_stmt *s = NULL;
    *out = NULL;
    *n = 0;
    int r = kl_sq_prep(st, "SELECT u.handle, u.created_ms, l.n_entries, l.n_bytes FROM users u"
                           " JOIN logs l ON l.id = u.inbox WHERE instr(u.handle, '@') = 0"
                           " ORDER BY u.handle", &s);
    if (r == 0)
        r = kl_sq_rows(s, sizeof **out, 0, fill_user_info, NULL, out, n);
    sqlite3_finalize(s);
    return r;
}

static int fill_invite_info(sqlite3_stmt *s, void *e, void *ctx)
{
    kl_storage_invite_info_t *i = e;
    (void)ctx;
    if (sqlite3_column_bytes(s, 0) != 32)
        return 1; /* not one this relay wrote: skipped */
    kl_hex_encode(sqlite3_column_blob(s, 0), KL_INVITE_ID_LEN / 2, i->id, sizeof i->id);
    i->uses_left = (uint32_t)sqlite3_column_int64(s, 1);
    i->created_ms = kl_sq_u64(sqlite3_column_int64(s, 2));
    i->expires_ms = kl_sq_u64(sqlite3_column_int64(s, 3));
    if (sqlite3_column_type(s, 4) == SQLITE_TEXT)
        snprintf(i->handle, sizeof i->handle, "%s", (const char *)sqlite3_column_text(s, 4));
    return 0;
}

int kl_storage_invite_list(kl_storage_t *st, uint64_t now_ms, kl_storage_invite_info_t **out,
                           size_t *n)
{
    sqlite3_stmt *s = NULL;
    *out = NULL;
    *n = 0;
    int r = kl_sq_prep(st, "SELECT code_hash, uses_left, created_ms, expires_ms, handle"
                           " FROM invites WHERE uses_left > 0 AND expires_ms > ?1"
                           " ORDER BY created_ms, code_hash", &s);
    if (r == 0) {
        sqlite3_bind_int64(s, 1, kl_sq_i64(now_ms));
        r = kl_sq_rows(s, sizeof **out, 0, fill_invite_info, NULL, out, n);
    }
    sqlite3_finalize(s);
    return r;
}

int kl_storage_invite_revoke(kl_storage_t *st, const char *prefix, uint64_t now_ms)
{
    char p[KL_INVITE_ID_LEN + 1];
    size_t len = strlen(prefix);
    if (len < KL_INVITE_ID_MIN || len > KL_INVITE_ID_LEN)
        return KL_EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)prefix[i]))
            return KL_EINVAL;
        p[i] = (char)toupper((unsigned char)prefix[i]);
    }
    p[len] = '\0';
    static const char *const WHERE = " WHERE uses_left > 0 AND expires_ms > ?2"
                                     " AND substr(hex(code_hash), 1, length(?1)) = ?1";
    char sql[256];
    sqlite3_stmt *s = NULL;
    uint64_t n = 0;
    int r = kl_sq_op_begin(st);
    if (r)
        return r;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM invites%s", WHERE);
    r = kl_sq_prep(st, sql, &s);
    if (r == 0) {
        sqlite3_bind_text(s, 1, p, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, kl_sq_i64(now_ms));
        r = kl_sq_count_query(s, &n);
    }
    sqlite3_finalize(s);
    if (r == 0 && n != 1)
        r = n == 0 ? KL_ENOTFOUND : KL_EEXIST;
    if (r == 0) {
        snprintf(sql, sizeof sql, "DELETE FROM invites%s", WHERE);
        r = kl_sq_prep(st, sql, &s);
    }
    if (r == 0) {
        sqlite3_bind_text(s, 1, p, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, kl_sq_i64(now_ms));
        r = kl_sq_exec_fin(s);
    }
    return kl_sq_op_end(st, r);
}

int kl_storage_invite_create_for(kl_storage_t *st, const char *code, uint32_t uses,
                                 uint64_t expires_ms, uint64_t now_ms, const char *handle)
{
    kl_storage_user_t u;
    uint8_t h[32];
    sqlite3_stmt *s = NULL;
    int r = begin_on_user(st, handle, &u);
    if (r)
        return r;
    r = kl_storage_invite_create(st, code, uses, expires_ms, now_ms);
    if (r == 0)
        r = kl_sq_prep(st, "UPDATE invites SET handle = ?2 WHERE code_hash = ?1", &s);
    if (r == 0) {
        kl_sha256((const uint8_t *)code, strlen(code), h);
        sqlite3_bind_blob(s, 1, h, 32, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, handle, -1, SQLITE_STATIC);
        r = kl_sq_exec_fin(s);
        kl_memzero(h, sizeof h);
    }
    return kl_sq_op_end(st, r);
}

int kl_storage_backup(kl_storage_t *st, const char *path)
{
    sqlite3 *dst = NULL;
    int rc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                             SQLITE_OPEN_EXCLUSIVE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc == SQLITE_OK) {
        /* One step over every page: the source's read transaction is the
         * snapshot, and in WAL mode it does not hold up the relay's
         * commits. Stepping in parts would restart whenever another
         * connection commits meanwhile. */
        sqlite3_backup *b = sqlite3_backup_init(dst, "main", st->db, "main");
        if (b == NULL) {
            rc = sqlite3_errcode(dst);
        } else {
            do
                rc = sqlite3_backup_step(b, -1);
            while (rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
            int rc2 = sqlite3_backup_finish(b);
            rc = rc == SQLITE_DONE ? rc2 : rc;
        }
    }
    /* The copy stands alone: a rollback journal, no -wal beside it. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    if (sqlite3_close(dst) != SQLITE_OK && rc == SQLITE_OK)
        rc = SQLITE_IOERR;
    return rc == SQLITE_OK ? 0 : rc == SQLITE_CANTOPEN ? KL_EEXIST : kl_sq_map_rc(rc);
}

static int meta_text(sqlite3 *db, const char *key, char *out, size_t cap)
{
    sqlite3_stmt *s = NULL;
    int r = KL_EPROTO;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &s, NULL) != SQLITE_OK)
        return KL_EPROTO;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_TEXT) {
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        if (n > 0 && n + 1 <= cap) {
            memcpy(out, sqlite3_column_text(s, 0), n + 1);
            r = 0;
        }
    }
    sqlite3_finalize(s);
    return r;
}

int kl_storage_check_file(const char *path, char *name, size_t name_cap, char *key,
                          size_t key_cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int r = KL_EPROTO;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return KL_ENOTFOUND;
    }
    /* A file that is not a database at all fails here (SQLITE_NOTADB). */
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check(1)", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != NULL &&
        strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0)
        r = 0;
    sqlite3_finalize(s);
    if (r == 0)
        r = meta_text(db, "name", name, name_cap);
    if (r == 0)
        r = meta_text(db, "public_key", key, key_cap);
    sqlite3_close(db);
    return r;
}
