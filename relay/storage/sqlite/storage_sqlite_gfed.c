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
    r = kl_sq_prep(st, "INSERT INTO logs(last_seq) VALUES(0)", &s);
    if (r == 0)
        r = kl_sq_exec_fin(s);
    uint64_t inbox = (uint64_t)sqlite3_last_insert_rowid(st->db);
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
    int r = 0;
    char *buf = malloc(n * (KL_ADDR_MAX + 1));
    size_t used = 0, c = 0;
    if (buf == NULL)
        r = KL_ENOMEM;
    for (size_t i = 0; i < n && r == 0; i++) {
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, kl_sq_i64(users[i]));
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            continue;
        if (rc != SQLITE_ROW) {
            r = kl_sq_map_rc(rc);
            break;
        }
        const unsigned char *h = sqlite3_column_text(s, 0);
        size_t hl = (size_t)sqlite3_column_bytes(s, 0);
        if (h == NULL || hl > KL_ADDR_MAX)
            continue; /* not a shadow this relay wrote */
        memcpy(buf + used, h, hl);
        buf[used + hl] = '\0';
        used += hl + 1;
        c++;
    }
    sqlite3_reset(s);
    if (r || c == 0) {
        free(buf);
        return r;
    }
    *out = buf;
    *len = used;
    *count = c;
    return 0;
}
