/* relay/storage.h on sqlite: broadcast channels (the channel row, its
 * publisher ops, and subscriptions with their cursors on the channel's post
 * log). The ops arrive validated: this file only stores them.
 *
 * The channel statements are prepared per call (like the federation
 * ones), so the shared statement table of storage_sqlite.c stays as it is;
 * the per-post path (append, read, ack) uses the shared log statements. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/err.h"
#include "storage_sqlite.h"

#define CHANNEL_COLS "c.id, c.log, c.next_index, c.head, l.last_seq"



/* Columns 0-4 of the current row (CHANNEL_COLS). */
static int fill_channel(sqlite3_stmt *s, kl_storage_channel_t *out)
{
    if (sqlite3_column_bytes(s, 3) != 32)
        return KL_EIO;
    out->id = kl_sq_u64(sqlite3_column_int64(s, 0));
    out->log = kl_sq_u64(sqlite3_column_int64(s, 1));
    out->next_index = kl_sq_u64(sqlite3_column_int64(s, 2));
    memcpy(out->head, sqlite3_column_blob(s, 3), 32);
    out->last_seq = kl_sq_u64(sqlite3_column_int64(s, 4));
    return 0;
}

/* The channel named by address (or, when address is NULL, with id) and
 * user's subscription to it. */
static int caller(kl_storage_t *st, const char *address, uint64_t id, uint64_t user,
                  kl_storage_channel_t *out, int *subscribed, uint64_t *cursor)
{
    sqlite3_stmt *s;
    *subscribed = 0;
    *cursor = 0;
    memset(out, 0, sizeof *out);
    int r = kl_sq_prep(st,
                 "SELECT " CHANNEL_COLS ", k.acked FROM channels c JOIN logs l ON l.id = c.log"
                 " LEFT JOIN channel_subs s ON s.chan = c.id AND s.user = ?3"
                 " LEFT JOIN cursors k ON k.log = c.log AND k.reader = s.user"
                 " WHERE (?1 IS NULL AND c.id = ?2) OR c.address = ?1",
                 &s);
    if (r)
        return r;
    if (address)
        sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, kl_sq_i64(id));
    sqlite3_bind_int64(s, 3, user == 0 ? -1 : kl_sq_i64(user));
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        r = fill_channel(s, out);
        if (r == 0 && sqlite3_column_type(s, 5) != SQLITE_NULL) {
            *subscribed = 1;
            *cursor = kl_sq_u64(sqlite3_column_int64(s, 5));
        }
    } else {
        r = rc == SQLITE_DONE ? KL_ENOTFOUND : kl_sq_map_rc(rc);
    }
    sqlite3_finalize(s);
    return r;
}

int kl_storage_channel_caller(kl_storage_t *st, const char *address, uint64_t user,
                              kl_storage_channel_t *out, int *subscribed, uint64_t *cursor)
{
    if (address == NULL)
        return KL_EINVAL;
    return caller(st, address, 0, user, out, subscribed, cursor);
}

int kl_storage_channel_get(kl_storage_t *st, const char *address, kl_storage_channel_t *out)
{
    int sub = 0;
    uint64_t cur = 0;
    return kl_storage_channel_caller(st, address, 0, out, &sub, &cur);
}

int kl_storage_channel_append_op(kl_storage_t *st, const char *address, uint64_t index,
                                 const uint8_t *op, size_t len, const uint8_t head[32],
                                 kl_storage_channel_t *out)
{
    kl_storage_channel_t c;
    sqlite3_stmt *s;
    if (address == NULL || op == NULL || len == 0 || len > INT_MAX ||
        index >= (uint64_t)INT64_MAX)
        return KL_EINVAL;
    if (index >= KL_STORAGE_CHANNEL_MAX_OPS)
        return KL_ELIMIT;
    int r = kl_sq_op_begin(st);
    if (r)
        return r;
    r = kl_storage_channel_get(st, address, &c);
    if (index == 0 && r == 0 && c.next_index == 0) {
        /* A mirror's placeholder (storage_cmirror.h): its first op. */
    } else if (index == 0) {
        if (r == 0)
            r = KL_EEXIST;
        else if (r == KL_ENOTFOUND)
            r = kl_sq_run(st, S_LOG_INSERT);
        if (r)
            goto out;
        uint64_t log = (uint64_t)sqlite3_last_insert_rowid(st->db);
        r = kl_sq_prep(st, "INSERT INTO channels(address, log, next_index, head)"
                     " VALUES(?1, ?2, 0, zeroblob(32))", &s);
        if (r)
            goto out;
        sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, kl_sq_i64(log));
        r = kl_sq_exec_fin(s);
        if (r == 0)
            r = kl_storage_channel_get(st, address, &c);
    } else if (r == 0 && c.next_index != index) {
        r = KL_ESTATE;
    }
    if (r)
        goto out;
    r = kl_sq_prep(st, "INSERT INTO channel_ops(chan, idx, op) VALUES(?1, ?2, ?3)", &s);
    if (r)
        goto out;
    sqlite3_bind_int64(s, 1, kl_sq_i64(c.id));
    sqlite3_bind_int64(s, 2, kl_sq_i64(index));
    sqlite3_bind_blob(s, 3, op, (int)len, SQLITE_STATIC);
    r = kl_sq_exec_fin(s);
    if (r)
        goto out;
    c.next_index = index + 1;
    memcpy(c.head, head, 32);
    r = kl_sq_prep(st, "UPDATE channels SET next_index = ?2, head = ?3 WHERE id = ?1", &s);
    if (r)
        goto out;
    sqlite3_bind_int64(s, 1, kl_sq_i64(c.id));
    sqlite3_bind_int64(s, 2, kl_sq_i64(c.next_index));
    sqlite3_bind_blob(s, 3, head, 32, SQLITE_STATIC);
    r = kl_sq_exec_fin(s);
out:
    r = kl_sq_op_end(st, r);
    if (r == 0 && out)
        *out = c;
    return r;
}

int kl_storage_channel_ops(kl_storage_t *st, uint64_t chan, uint64_t from, uint32_t limit,
                           size_t max_bytes, kl_storage_entry_t **out, size_t *n, int *more)
{
    sqlite3_stmt *s;
    *out = NULL;
    *n = 0;
    *more = 0;
    if (limit == 0)
        return KL_EINVAL;
    kl_storage_entry_t *e = calloc(limit, sizeof *e);
    if (e == NULL)
        return KL_ENOMEM;
    int r = kl_sq_prep(st, "SELECT idx, op FROM channel_ops WHERE chan = ?1 AND idx >= ?2"
                     " ORDER BY idx LIMIT ?3", &s);
    if (r) {
        free(e);
        return r;
    }
    sqlite3_bind_int64(s, 1, kl_sq_i64(chan));
    sqlite3_bind_int64(s, 2, kl_sq_i64(from));
    sqlite3_bind_int64(s, 3, (sqlite3_int64)limit + 1); /* one more: is there more? */
    size_t count = 0, bytes = 0;
    for (;;) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            r = kl_sq_map_rc(rc);
            break;
        }
        size_t len = (size_t)sqlite3_column_bytes(s, 1);
        if (count == limit || (count > 0 && bytes + len + KL_STORAGE_ENTRY_OVERHEAD > max_bytes)) {
            *more = 1;
            break;
        }
        const void *b = sqlite3_column_blob(s, 1);
        e[count].body = malloc(len ? len : 1);
        if (e[count].body == NULL || (len > 0 && b == NULL)) {
            free(e[count].body);
            e[count].body = NULL;
            r = KL_ENOMEM;
            break;
        }
        memcpy(e[count].body, b, len);
        e[count].len = len;
        e[count].seq = kl_sq_u64(sqlite3_column_int64(s, 0));
        bytes += len + KL_STORAGE_ENTRY_OVERHEAD;
        count++;
    }
    sqlite3_finalize(s);
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

/* The cursor that leaves the backlog latest live entries of log after it. */
static int backlog_cursor(kl_storage_t *st, const kl_storage_channel_t *c, uint32_t backlog,
                          uint64_t now_ms, uint64_t *cursor)
{
    sqlite3_stmt *s;
    *cursor = c->last_seq;
    if (backlog == 0)
        return 0;
    int r = kl_sq_prep(st, "SELECT seq FROM entries WHERE log = ?1 AND expires_ms > ?2"
                     " ORDER BY seq DESC LIMIT 1 OFFSET ?3", &s);
    if (r)
        return r;
    sqlite3_bind_int64(s, 1, kl_sq_i64(c->log));
    sqlite3_bind_int64(s, 2, kl_sq_i64(now_ms));
    sqlite3_bind_int64(s, 3, (sqlite3_int64)backlog - 1);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        uint64_t seq = kl_sq_u64(sqlite3_column_int64(s, 0));
        *cursor = seq > 0 ? seq - 1 : 0;
    } else if (rc == SQLITE_DONE) {
        *cursor = 0; /* fewer retained entries than asked: all of them */
    } else {
        r = kl_sq_map_rc(rc);
    }
    sqlite3_finalize(s);
    return r;
}

int kl_storage_channel_subscribe(kl_storage_t *st, const kl_storage_channel_t *c, uint64_t user,
                                 uint32_t backlog, uint64_t now_ms, uint64_t *cursor)
{
    sqlite3_stmt *s = NULL;
    kl_storage_channel_t cur;
    int sub = 0;
    uint64_t at = 0;
    if (user == 0)
        return KL_EINVAL;
    int r = kl_sq_op_begin(st);
    if (r)
        return r;
    /* Re-read the row inside the savepoint: last_seq may have moved. */
    r = caller(st, NULL, c->id, user, &cur, &sub, &at);
    if (r || sub)
        goto out; /* already subscribed: keep its cursor */
    r = backlog_cursor(st, &cur, backlog, now_ms, &at);
    if (r == 0) {
        s = kl_sq_stmt(st, S_CURSOR_SET);
        sqlite3_bind_int64(s, 1, kl_sq_i64(cur.log));
        sqlite3_bind_int64(s, 2, kl_sq_i64(user));
        sqlite3_bind_int64(s, 3, kl_sq_i64(at));
        r = kl_sq_exec_stmt(s);
    }
    if (r == 0)
        r = kl_sq_prep(st, "INSERT INTO channel_subs(user, chan) VALUES(?1, ?2)", &s);
    if (r == 0) {
        sqlite3_bind_int64(s, 1, kl_sq_i64(user));
        sqlite3_bind_int64(s, 2, kl_sq_i64(cur.id));
        r = kl_sq_exec_fin(s);
    }
out:
    r = kl_sq_op_end(st, r);
    if (r == 0 && cursor)
        *cursor = at;
    return r;
}

int kl_storage_channel_unsubscribe(kl_storage_t *st, const kl_storage_channel_t *c,
                                   uint64_t user)
{
    sqlite3_stmt *s;
    int r = kl_sq_op_begin(st);
    if (r)
        return r;
    r = kl_sq_prep(st, "DELETE FROM channel_subs WHERE user = ?1 AND chan = ?2", &s);
    if (r == 0) {
        sqlite3_bind_int64(s, 1, kl_sq_i64(user));
        sqlite3_bind_int64(s, 2, kl_sq_i64(c->id));
        r = kl_sq_exec_fin(s);
    }
    if (r == 0 && sqlite3_changes(st->db) != 1)
        r = KL_ENOTFOUND;
    if (r == 0) {
        s = kl_sq_stmt(st, S_CURSOR_DELETE);
        sqlite3_bind_int64(s, 1, kl_sq_i64(c->log));
        sqlite3_bind_int64(s, 2, kl_sq_i64(user));
        r = kl_sq_exec_stmt(s);
    }
    /* The one who left may have been the last one holding entries back. */
    if (r == 0) {
        s = kl_sq_stmt(st, S_ENTRY_DELETE_ACKED);
        sqlite3_bind_int64(s, 1, kl_sq_i64(c->log));
        r = kl_sq_exec_stmt(s);
    }
    return kl_sq_op_end(st, r);
}

int kl_storage_channel_subscribers(kl_storage_t *st, uint64_t chan, uint64_t **users, size_t *n)
{
    sqlite3_stmt *s;
    *users = NULL;
    *n = 0;
    uint64_t *u = NULL;
    size_t count = 0, cap = 0;
    int r = kl_sq_prep(st, "SELECT user FROM channel_subs WHERE chan = ?1", &s);
    if (r)
        return r;
    sqlite3_bind_int64(s, 1, kl_sq_i64(chan));
    for (;;) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            r = kl_sq_map_rc(rc);
            break;
        }
        if (count == cap) {
            /* Bounded by the relay's users: one row per user at most. */
            size_t ncap = cap ? cap * 2 : 64;
            uint64_t *nu = ncap > SIZE_MAX / sizeof *nu ? NULL : realloc(u, ncap * sizeof *nu);
            if (nu == NULL) {
                r = KL_ENOMEM;
                break;
            }
            u = nu;
            cap = ncap;
        }
        u[count++] = kl_sq_u64(sqlite3_column_int64(s, 0));
    }
    sqlite3_finalize(s);
    if (r || count == 0) {
        free(u);
        return r;
    }
    *users = u;
    *n = count;
    return 0;
}

int kl_storage_channel_list(kl_storage_t *st, uint64_t user, kl_storage_cinfo_t **out,
                            size_t *n)
{
    sqlite3_stmt *s;
    *out = NULL;
    *n = 0;
    kl_storage_cinfo_t *c = NULL;
    size_t count = 0, cap = 0;
    int r = kl_sq_prep(st,
                 "SELECT c.address, c.next_index, l.last_seq, coalesce(k.acked, 0)"
                 " FROM channel_subs s JOIN channels c ON c.id = s.chan"
                 " JOIN logs l ON l.id = c.log"
                 " LEFT JOIN cursors k ON k.log = c.log AND k.reader = s.user"
                 " WHERE s.user = ?1 ORDER BY c.address LIMIT ?2",
                 &s);
    if (r)
        return r;
    sqlite3_bind_int64(s, 1, kl_sq_i64(user));
    sqlite3_bind_int(s, 2, KL_STORAGE_MAX_CHANNELS_LISTED);
    for (;;) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            r = kl_sq_map_rc(rc);
            break;
        }
        if ((r = kl_sq_grow(&c, &cap, count, sizeof *c)))
            break;
        const unsigned char *a = sqlite3_column_text(s, 0);
        size_t alen = (size_t)sqlite3_column_bytes(s, 0);
        if (a == NULL || alen > KL_STORAGE_GROUP_ADDR_MAX) {
            r = KL_EIO;
            break;
        }
        memcpy(c[count].address, a, alen);
        c[count].address[alen] = '\0';
        c[count].next_index = kl_sq_u64(sqlite3_column_int64(s, 1));
        c[count].last_seq = kl_sq_u64(sqlite3_column_int64(s, 2));
        c[count].cursor = kl_sq_u64(sqlite3_column_int64(s, 3));
        count++;
    }
    sqlite3_finalize(s);
    if (r || count == 0) {
        free(c);
        return r;
    }
    *out = c;
    *n = count;
    return 0;
}

void kl_storage_set_chan_aux(kl_storage_t *st, void *p, void (*free_fn)(void *))
{
    if (st->chan_aux_free && st->chan_aux != p)
        st->chan_aux_free(st->chan_aux);
    st->chan_aux = p;
    st->chan_aux_free = free_fn;
}

void *kl_storage_chan_aux(const kl_storage_t *st)
{
    return st->chan_aux;
}
