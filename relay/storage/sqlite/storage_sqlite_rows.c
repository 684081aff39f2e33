/* Stepping statements of the sqlite backend (storage_sqlite.h kl_sq_row,
 * kl_sq_rows, kl_sq_ids, kl_sq_text): one row, or every row into a
 * malloc'd array, the way every query of the backend reads its answer. */
#include <stdlib.h>
#include <string.h>

#include "kollega/err.h"
#include "storage_sqlite.h"

int kl_sq_row(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        return 0;
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? KL_ENOTFOUND : kl_sq_map_rc(rc);
}

int kl_sq_next(sqlite3_stmt *s, int *r)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc != SQLITE_DONE)
        *r = kl_sq_map_rc(rc);
    return 0;
}

int kl_sq_get(kl_storage_t *st, int which, const char *key, kl_sq_fill_fn fill, void *out)
{
    sqlite3_stmt *s = kl_sq_stmt(st, which);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int r = kl_sq_row(s);
    if (r)
        return r;
    r = fill(s, out, NULL);
    sqlite3_reset(s);
    return r;
}

int kl_sq_rows(sqlite3_stmt *s, size_t elem, size_t max, kl_sq_fill_fn fill, void *ctx,
               void *outp, size_t *n)
{
    unsigned char *v = NULL;
    size_t len = 0, cap = 0;
    int r = 0;
    *n = 0;
    memset(outp, 0, sizeof v);
    while (kl_sq_next(s, &r)) {
        if (max != 0 && len == max) {
            r = KL_EIO; /* more than the schema's users allow: the tables were edited */
            break;
        }
        if ((r = kl_sq_grow(&v, &cap, len, elem)))
            break;
        memset(v + len * elem, 0, elem);
        r = fill(s, v + len * elem, ctx);
        if (r < 0)
            break;
        len += r == 0;
        r = 0;
    }
    sqlite3_reset(s);
    if (r || len == 0) {
        free(v);
        return r;
    }
    memcpy(outp, &v, sizeof v);
    *n = len;
    return 0;
}

static int fill_id(sqlite3_stmt *s, void *e, void *ctx)
{
    (void)ctx;
    *(uint64_t *)e = kl_sq_u64(sqlite3_column_int64(s, 0));
    return 0;
}

int kl_sq_ids(sqlite3_stmt *s, size_t max, uint64_t **ids, size_t *n)
{
    return kl_sq_rows(s, sizeof **ids, max, fill_id, NULL, ids, n);
}

int kl_sq_text(sqlite3_stmt *s, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    size_t len = (size_t)sqlite3_column_bytes(s, col);
    if (t == NULL || len >= cap)
        return KL_EIO;
    memcpy(out, t, len);
    out[len] = '\0';
    return 0;
}

int kl_sq_names_add(kl_sq_names_t *nm, const char *name, size_t len)
{
    if (nm->used + len + 1 > nm->cap) {
        size_t ncap = (nm->used + len + 1) * 2;
        char *nb = realloc(nm->buf, ncap);
        if (nb == NULL)
            return KL_ENOMEM;
        nm->buf = nb;
        nm->cap = ncap;
    }
    memcpy(nm->buf + nm->used, name, len);
    nm->buf[nm->used + len] = '\0';
    nm->used += len + 1;
    nm->n++;
    return 0;
}

int kl_sq_names_end(kl_sq_names_t *nm, int r, char **out, size_t *len, size_t *count)
{
    *out = NULL;
    *len = *count = 0;
    if (r || nm->n == 0) {
        free(nm->buf);
        return r;
    }
    *out = nm->buf;
    *len = nm->used;
    *count = nm->n;
    return 0;
}
