/* relay/storage.h on sqlite: accounts. Looking a user up, invites made and
 * checked by their code's hash, and registration, which consumes an invite
 * (a reset invite re-keys the account it names). Invite lists, revocation
 * and removing users are the operator's (storage_sqlite_admin.c). */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage_sqlite.h"

static int fill_user(sqlite3_stmt *s, void *e, void *ctx)
{
    kl_storage_user_t *out = e;
    (void)ctx;
    if (sqlite3_column_bytes(s, 2) != 32)
        return KL_EIO;
    out->id = kl_sq_u64(sqlite3_column_int64(s, 0));
    out->inbox = kl_sq_u64(sqlite3_column_int64(s, 1));
    memcpy(out->identity_key, sqlite3_column_blob(s, 2), 32);
    out->rekeyed = 0;
    return 0;
}

int kl_sq_user_get(kl_storage_t *st, const char *handle, kl_storage_user_t *out)
{
    return kl_sq_get(st, S_USER_GET, handle, fill_user, out);
}

int kl_storage_user_get(kl_storage_t *st, const char *handle, kl_storage_user_t *out)
{
    return kl_sq_user_get(st, handle, out);
}

int kl_sq_count_query(sqlite3_stmt *s, uint64_t *n)
{
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW)
        return kl_sq_done(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc);
    *n = kl_sq_u64(sqlite3_column_int64(s, 0));
    sqlite3_reset(s);
    return 0;
}

int kl_storage_user_count(kl_storage_t *st, uint64_t *n)
{
    return kl_sq_count_query(kl_sq_stmt(st, S_USER_COUNT), n);
}

static void code_hash(const char *code, uint8_t h[32])
{
    kl_sha256((const uint8_t *)code, strlen(code), h);
}

int kl_storage_invite_create(kl_storage_t *st, const char *code, uint32_t uses,
                             uint64_t expires_ms, uint64_t now_ms)
{
    if (uses == 0 || code == NULL || code[0] == '\0')
        return KL_EINVAL;
    uint8_t h[32];
    code_hash(code, h);
    sqlite3_stmt *s = kl_sq_stmt(st, S_INVITE_INSERT);
    sqlite3_bind_blob(s, 1, h, 32, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, uses);
    sqlite3_bind_int64(s, 3, kl_sq_i64(expires_ms));
    sqlite3_bind_int64(s, 4, kl_sq_i64(now_ms));
    int r = kl_sq_exec_stmt(s);
    kl_memzero(h, sizeof h);
    return r;
}

static int invite_check(kl_storage_t *st, int which, const uint8_t h[32], uint64_t now_ms)
{
    sqlite3_stmt *s = kl_sq_stmt(st, which);
    sqlite3_bind_blob(s, 1, h, 32, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, kl_sq_i64(now_ms));
    int rc = sqlite3_step(s);
    if (which == S_INVITE_VALID) {
        int r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KL_EREFUSED : kl_sq_map_rc(rc);
        sqlite3_reset(s);
        return r;
    }
    int r = kl_sq_done(s, rc);
    if (r == 0 && sqlite3_changes(st->db) != 1)
        r = KL_EREFUSED;
    return r;
}

int kl_storage_register(kl_storage_t *st, const char *handle, const uint8_t identity_key[32],
                        const char *code, uint64_t now_ms, kl_storage_user_t *out)
{
    uint8_t h[32];
    char bound[KL_STORAGE_META_MAX + 1];
    kl_storage_user_t u;
    int retired = 0;
    memset(&u, 0, sizeof u);
    int r = kl_sq_op_begin(st);
    if (r)
        return r;
    code_hash(code, h);
    r = invite_check(st, S_INVITE_VALID, h, now_ms);
    if (r == 0)
        r = kl_sq_invite_bound(st, h, bound, sizeof bound);
    if (r)
        goto out;
    /* A reset invite (storage_admin.h) is for its handle only, and gives
     * that existing user the new key. */
    if (bound[0] && strcmp(bound, handle) != 0) {
        r = KL_EREFUSED;
        goto out;
    }
    r = kl_sq_user_get(st, handle, &u);
    if (r == 0 && bound[0]) {
        r = kl_sq_user_rekey(st, &u, identity_key);
        if (r == 0)
            r = invite_check(st, S_INVITE_CONSUME, h, now_ms);
        memcpy(u.identity_key, identity_key, 32);
        u.rekeyed = 1;
        goto out;
    }
    if (r == 0) {
        r = KL_EEXIST;
        goto out;
    }
    if (r != KL_ENOTFOUND)
        goto out;
    r = bound[0] ? KL_EREFUSED : kl_sq_handle_retired(st, handle, &retired);
    if (r == 0 && retired)
        r = KL_EEXIST;
    if (r)
        goto out;
    r = kl_sq_log_new(st, &u.inbox);
    if (r)
        goto out;
    sqlite3_stmt *s = kl_sq_stmt(st, S_USER_INSERT);
    sqlite3_bind_text(s, 1, handle, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, identity_key, 32, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, kl_sq_i64(u.inbox));
    sqlite3_bind_int64(s, 4, kl_sq_i64(now_ms));
    r = kl_sq_exec_stmt(s);
    if (r)
        goto out;
    u.id = (uint64_t)sqlite3_last_insert_rowid(st->db);
    memcpy(u.identity_key, identity_key, 32);
    r = kl_sq_cursor_set(st, u.inbox, u.id, 0);
    if (r)
        goto out;
    r = invite_check(st, S_INVITE_CONSUME, h, now_ms);
out:
    kl_memzero(h, sizeof h);
    r = kl_sq_op_end(st, r);
    if (r == 0 && out)
        *out = u;
    return r;
}
