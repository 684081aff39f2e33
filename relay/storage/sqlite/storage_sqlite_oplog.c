/* The signed-op logs of groups and channels on sqlite (storage_sqlite.h
 * kl_sq_oplog_*). Both are a row (address, message log, next op index,
 * head hash) and its ops, which arrive validated: storing an op after the
 * row's last one and reading ops back run here the same way for both, each
 * kind with its own statements (KL_SQ_GROUP_LOG, KL_SQ_CHANNEL_LOG). What
 * an op changes besides (a group's membership and cursors) is the kind's
 * own, in storage_sqlite_groups.c and storage_sqlite_channels.c. */
#include <limits.h>
#include <string.h>

#include "kollega/err.h"
#include "storage_sqlite.h"

/* A group's op limit is the relay's configuration (jobs_group.c). */
const kl_sq_oplog_t KL_SQ_GROUP_LOG = {S_GROUP_GET, S_GROUP_INSERT, S_GROUP_HEAD, S_GOP_INSERT,
                                       S_GOP_READ, 0};
const kl_sq_oplog_t KL_SQ_CHANNEL_LOG = {S_CHAN_CALLER, S_CHAN_INSERT, S_CHAN_HEAD, S_COP_INSERT,
                                         S_COP_READ, KL_STORAGE_CHANNEL_MAX_OPS};

int kl_sq_oprow_fill(sqlite3_stmt *s, kl_sq_oprow_t *out)
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

static int fill_oprow(sqlite3_stmt *s, void *e, void *ctx)
{
    (void)ctx;
    return kl_sq_oprow_fill(s, e);
}

int kl_sq_oprow_get(kl_storage_t *st, const kl_sq_oplog_t *k, const char *address,
                    kl_sq_oprow_t *out)
{
    return kl_sq_get(st, k->get, address, fill_oprow, out);
}

int kl_sq_oprow_create(kl_storage_t *st, const kl_sq_oplog_t *k, const char *address,
                       kl_sq_oprow_t *out)
{
    uint64_t log = 0;
    int r = kl_sq_log_new(st, &log);
    if (r)
        return r;
    sqlite3_stmt *s = kl_sq_stmt(st, k->insert);
    sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, kl_sq_i64(log));
    r = kl_sq_exec_stmt(s);
    return r ? r : kl_sq_oprow_get(st, k, address, out);
}

/* The row op `index` goes to: the stored one, or for index 0 a new one. */
static int target_row(kl_storage_t *st, const kl_sq_oplog_t *k, const char *address,
                      uint64_t index, kl_sq_oprow_t *row)
{
    int r = kl_sq_oprow_get(st, k, address, row);
    if (index == 0 && r == 0 && row->next_index == 0)
        return 0; /* a row without ops: a channel mirror's placeholder */
    if (index == 0)
        return r == 0 ? KL_EEXIST : r == KL_ENOTFOUND ? kl_sq_oprow_create(st, k, address, row) : r;
    return r == 0 && row->next_index != index ? KL_ESTATE : r;
}

int kl_sq_oplog_append(kl_storage_t *st, const kl_sq_oplog_t *k, const char *address,
                       uint64_t index, const uint8_t *op, size_t len, const uint8_t head[32],
                       kl_sq_oplog_then_fn then, void *ctx, kl_sq_oprow_t *out)
{
    kl_sq_oprow_t row;
    if (address == NULL || op == NULL || len == 0 || len > INT_MAX ||
        index >= (uint64_t)INT64_MAX)
        return KL_EINVAL;
    if (k->max_ops != 0 && index >= k->max_ops)
        return KL_ELIMIT;
    int r = kl_sq_op_begin(st);
    if (r)
        return r;
    r = target_row(st, k, address, index, &row);
    if (r == 0) {
        sqlite3_stmt *s = kl_sq_stmt(st, k->op_insert);
        sqlite3_bind_int64(s, 1, kl_sq_i64(row.id));
        sqlite3_bind_int64(s, 2, kl_sq_i64(index));
        sqlite3_bind_blob(s, 3, op, (int)len, SQLITE_STATIC);
        r = kl_sq_exec_stmt(s);
    }
    if (r == 0) {
        row.next_index = index + 1;
        memcpy(row.head, head, 32);
        sqlite3_stmt *s = kl_sq_stmt(st, k->head);
        sqlite3_bind_int64(s, 1, kl_sq_i64(row.id));
        sqlite3_bind_int64(s, 2, kl_sq_i64(row.next_index));
        sqlite3_bind_blob(s, 3, head, 32, SQLITE_STATIC);
        r = kl_sq_exec_stmt(s);
    }
    if (r == 0 && then)
        r = then(st, &row, ctx);
    r = kl_sq_op_end(st, r);
    if (r == 0 && out)
        *out = row;
    return r;
}

int kl_sq_oplog_read(kl_storage_t *st, const kl_sq_oplog_t *k, uint64_t id, uint64_t from,
                     uint32_t limit, size_t max_bytes, kl_storage_entry_t **out, size_t *n,
                     int *more)
{
    sqlite3_stmt *s = kl_sq_stmt(st, k->op_read);
    sqlite3_bind_int64(s, 1, kl_sq_i64(id));
    sqlite3_bind_int64(s, 2, kl_sq_i64(from));
    sqlite3_bind_int64(s, 3, (sqlite3_int64)limit + 1); /* one more: is there more? */
    int r = kl_sq_read_entries(s, 0, limit, max_bytes, out, n, more);
    sqlite3_reset(s);
    return r;
}
