/* relay/storage.h on sqlite: broadcast channels (the channel row, its
 * publisher ops, and subscriptions with their cursors on the channel's post
 * log). The ops arrive validated and are stored as every signed-op log is
 * (storage_sqlite_oplog.c); the per-post path (append, read, ack) uses the
 * shared log statements. */
#include <string.h>

#include "kollega/err.h"
#include "storage_sqlite.h"

static void channel_of(const kl_sq_oprow_t *row, kl_storage_channel_t *out)
{
    out->id = row->id;
    out->log = row->log;
    out->next_index = row->next_index;
    memcpy(out->head, row->head, 32);
    out->last_seq = row->last_seq;
}

/* The channel named by address (or, when address is NULL, with id) and
 * user's subscription to it. */
static int caller(kl_storage_t *st, const char *address, uint64_t id, uint64_t user,
                  kl_storage_channel_t *out, int *subscribed, uint64_t *cursor)
{
    kl_sq_oprow_t row;
    *subscribed = 0;
    *cursor = 0;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = kl_sq_stmt(st, S_CHAN_CALLER);
    if (address)
        sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, kl_sq_i64(id));
    sqlite3_bind_int64(s, 3, user == 0 ? -1 : kl_sq_i64(user));
    int r = kl_sq_row(s);
    if (r)
        return r;
    r = kl_sq_oprow_fill(s, &row);
    if (r == 0) {
        channel_of(&row, out);
        if (sqlite3_column_type(s, 5) != SQLITE_NULL) {
            *subscribed = 1;
            *cursor = kl_sq_u64(sqlite3_column_int64(s, 5));
        }
    }
    sqlite3_reset(s);
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
    kl_sq_oprow_t row;
    int r = kl_sq_oplog_append(st, &KL_SQ_CHANNEL_LOG, address, index, op, len, head, NULL, NULL,
                               &row);
    if (r == 0 && out)
        channel_of(&row, out);
    return r;
}

int kl_storage_channel_ops(kl_storage_t *st, uint64_t chan, uint64_t from, uint32_t limit,
                           size_t max_bytes, kl_storage_entry_t **out, size_t *n, int *more)
{
    return kl_sq_oplog_read(st, &KL_SQ_CHANNEL_LOG, chan, from, limit, max_bytes, out, n, more);
}

/* The cursor that leaves the backlog latest live entries of log after it. */
static int backlog_cursor(kl_storage_t *st, const kl_storage_channel_t *c, uint32_t backlog,
                          uint64_t now_ms, uint64_t *cursor)
{
    *cursor = c->last_seq;
    if (backlog == 0)
        return 0;
    sqlite3_stmt *s = kl_sq_stmt(st, S_CHAN_BACKLOG);
    sqlite3_bind_int64(s, 1, kl_sq_i64(c->log));
    sqlite3_bind_int64(s, 2, kl_sq_i64(now_ms));
    sqlite3_bind_int64(s, 3, (sqlite3_int64)backlog - 1);
    int r = kl_sq_row(s);
    if (r == 0) {
        uint64_t seq = kl_sq_u64(sqlite3_column_int64(s, 0));
        *cursor = seq > 0 ? seq - 1 : 0;
        sqlite3_reset(s);
    } else if (r == KL_ENOTFOUND) {
        *cursor = 0; /* fewer retained entries than asked: all of them */
        r = 0;
    }
    return r;
}

/* Add or remove (insert 0) user's row in channel_subs. */
static int sub_row(kl_storage_t *st, int insert, uint64_t user, uint64_t chan)
{
    sqlite3_stmt *s = kl_sq_stmt(st, insert ? S_CSUB_INSERT : S_CSUB_DELETE);
    sqlite3_bind_int64(s, 1, kl_sq_i64(user));
    sqlite3_bind_int64(s, 2, kl_sq_i64(chan));
    return kl_sq_exec_stmt(s);
}

int kl_storage_channel_subscribe(kl_storage_t *st, const kl_storage_channel_t *c, uint64_t user,
                                 uint32_t backlog, uint64_t now_ms, uint64_t *cursor)
{
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
    if (r == 0)
        r = kl_sq_cursor_set(st, cur.log, user, at);
    if (r == 0)
        r = sub_row(st, 1, user, cur.id);
out:
    r = kl_sq_op_end(st, r);
    if (r == 0 && cursor)
        *cursor = at;
    return r;
}

int kl_storage_channel_unsubscribe(kl_storage_t *st, const kl_storage_channel_t *c,
                                   uint64_t user)
{
    int r = kl_sq_op_begin(st);
    if (r)
        return r;
    r = sub_row(st, 0, user, c->id);
    if (r == 0 && sqlite3_changes(st->db) != 1)
        r = KL_ENOTFOUND;
    if (r == 0)
        r = kl_sq_cursor_drop(st, c->log, user);
    if (r == 0)
        r = kl_sq_log_trim(st, c->log);
    return kl_sq_op_end(st, r);
}

int kl_storage_channel_subscribers(kl_storage_t *st, uint64_t chan, uint64_t **users, size_t *n)
{
    /* Bounded by the relay's users: one row per user at most. */
    sqlite3_stmt *s = kl_sq_stmt(st, S_CSUB_USERS);
    sqlite3_bind_int64(s, 1, kl_sq_i64(chan));
    return kl_sq_ids(s, 0, users, n);
}

static int fill_cinfo(sqlite3_stmt *s, void *e, void *ctx)
{
    kl_storage_cinfo_t *c = e;
    (void)ctx;
    int r = kl_sq_text(s, 0, c->address, sizeof c->address);
    c->next_index = kl_sq_u64(sqlite3_column_int64(s, 1));
    c->last_seq = kl_sq_u64(sqlite3_column_int64(s, 2));
    c->cursor = kl_sq_u64(sqlite3_column_int64(s, 3));
    return r;
}

int kl_storage_channel_list(kl_storage_t *st, uint64_t user, kl_storage_cinfo_t **out,
                            size_t *n)
{
    sqlite3_stmt *s = kl_sq_stmt(st, S_CHAN_LIST);
    sqlite3_bind_int64(s, 1, kl_sq_i64(user));
    sqlite3_bind_int(s, 2, KL_STORAGE_MAX_CHANNELS_LISTED);
    return kl_sq_rows(s, sizeof **out, 0, fill_cinfo, NULL, out, n);
}
