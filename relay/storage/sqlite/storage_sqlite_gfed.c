/* relay/storage_gfed.h on sqlite: shadow users of remote group members. */
#include <stdlib.h>
#include <string.h>

#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage/storage_gfed.h"
#include "storage_sqlite.h"

/* Users one kl_storage_shadow_addresses call looks up: a push list is at
 * most the members and candidates before and after an op (2 x 320). */
#define SHADOW_LOOKUP_MAX 1024

int kl_storage_shadow_user(kl_storage_t *st, const char *address, const uint8_t key[32],
                           int create, uint64_t *id)
{
    kl_storage_user_t u;
    sqlite3_stmt *s = NULL;
    *id = 0;
    if (strchr(address, '@') == NULL || strlen(address) > KL_ADDR_MAX)
        return KL_EINVAL;
    int r = kl_storage_user_get(st, address, &u);
    if (r == 0 && kl_memcmp(u.identity_key, key, 32) == 0) {
        *id = u.id;
        return 0;
    }
    if ((r != 0 && r != KL_ENOTFOUND) || !create)
        return r == KL_ENOTFOUND ? 0 : r;
    if (r == 0) {
        r = kl_sq_prep(st, "UPDATE users SET identity_key = ?2 WHERE id = ?1", &s);
        if (r)
            return r;
        sqlite3_bind_int64(s, 1, kl_sq_i64(u.id));
        sqlite3_bind_blob(s, 2, key, 32, SQLITE_STATIC);
        r = kl_sq_exec_fin(s);
        if (r == 0)
            *id = u.id;
        return r;
    }
    r = kl_sq_op_begin(st);
    if (r)
        return r;
    uint64_t inbox = 0;
    r = kl_sq_log_new(st, &inbox);
    if (r == 0)
        r = kl_sq_prep(st,
                 "INSERT INTO users(handle, identity_key, inbox, created_ms)"
                 " VALUES(?1, ?2, ?3, 0)",
                 &s);
    if (r == 0) {
        sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 2, key, 32, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, kl_sq_i64(inbox));
        r = kl_sq_exec_fin(s);
    }
    if (r == 0)
        *id = (uint64_t)sqlite3_last_insert_rowid(st->db);
    return kl_sq_op_end(st, r);
}

int kl_storage_shadow_addresses(kl_storage_t *st, const uint64_t *users, size_t n, char **out,
                                size_t *len, size_t *count)
{
    *out = NULL;
    *len = 0;
    *count = 0;
    if (n == 0)
        return 0;
    if (n > SHADOW_LOOKUP_MAX)
        return KL_EINVAL;
    sqlite3_stmt *s = kl_sq_stmt(st, S_SHADOW_HANDLE);
    kl_sq_names_t nm = {0};
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, kl_sq_i64(users[i]));
        if (!kl_sq_next(s, &r))
            continue; /* not a shadow user (or r set) */
        const unsigned char *h = sqlite3_column_text(s, 0);
        size_t hl = (size_t)sqlite3_column_bytes(s, 0);
        if (h == NULL || hl > KL_ADDR_MAX)
            continue; /* not a shadow this relay wrote */
        r = kl_sq_names_add(&nm, (const char *)h, hl);
    }
    sqlite3_reset(s);
    return kl_sq_names_end(&nm, r, out, len, count);
}
