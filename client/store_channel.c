/* Broadcast channels in the client store. See channels.h.
 *
 * The tables are created on first use (kl_store_channel_schema), so a
 * store made before channels existed needs no migration step. Ops are
 * public (signed, not secret) but sealed like every other row, so that a
 * changed file is noticed rather than trusted; they are validated again
 * from index 0 whenever a channel is loaded anyway. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "kollega/channel.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "store_int.h"

static const char CHANNEL_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS channels(chan TEXT PRIMARY KEY, cursor INTEGER NOT NULL,"
    " subscribed INTEGER NOT NULL, owned INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS channel_ops(chan TEXT NOT NULL, idx INTEGER NOT NULL,"
    " box BLOB NOT NULL, PRIMARY KEY(chan, idx));";

int kl_store_channel_schema(kl_store_t *st)
{
    return sqlite3_exec(st->db, CHANNEL_SCHEMA, NULL, NULL, NULL) == SQLITE_OK ? 0 : KL_EIO;
}

static int text_col(sqlite3_stmt *s, int col, char *out, size_t cap)
{
    const unsigned char *p = sqlite3_column_text(s, col);
    int n = sqlite3_column_bytes(s, col);
    if (p == NULL || n <= 0 || (size_t)n >= cap)
        return KL_EPROTO;
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    return 0;
}

static int fill(sqlite3_stmt *s, kl_store_channel_t *c)
{
    memset(c, 0, sizeof *c);
    int r = text_col(s, 0, c->address, sizeof c->address);
    c->cursor = (uint64_t)sqlite3_column_int64(s, 1);
    c->subscribed = sqlite3_column_int(s, 2) != 0;
    c->owned = sqlite3_column_int(s, 3) != 0;
    return r;
}

int kl_store_channel_get(kl_store_t *st, const char *chan, kl_store_channel_t *c)
{
    sqlite3_stmt *s;
    int r = kl_store_prepare(st, "SELECT chan, cursor, subscribed, owned FROM channels"
                                 " WHERE chan = ?1", &s);
    if (r)
        return r;
    sqlite3_bind_text(s, 1, chan, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    r = rc == SQLITE_ROW ? fill(s, c) : rc == SQLITE_DONE ? KL_ENOTFOUND : KL_EIO;
    sqlite3_finalize(s);
    return r;
}

int kl_store_channel_put(kl_store_t *st, const kl_store_channel_t *c)
{
    sqlite3_stmt *s;
    int r = kl_store_prepare(st, "INSERT OR REPLACE INTO channels(chan, cursor, subscribed, owned)"
                                 " VALUES(?1, ?2, ?3, ?4)", &s);
    if (r)
        return r;
    sqlite3_bind_text(s, 1, c->address, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)c->cursor);
    sqlite3_bind_int(s, 3, c->subscribed ? 1 : 0);
    sqlite3_bind_int(s, 4, c->owned ? 1 : 0);
    return kl_store_exec_stmt(s);
}

int kl_store_channel_each(kl_store_t *st, int (*cb)(void *ud, const kl_store_channel_t *c),
                          void *ud)
{
    sqlite3_stmt *s;
    int r = kl_store_prepare(st, "SELECT chan, cursor, subscribed, owned FROM channels"
                                 " ORDER BY chan", &s);
    if (r)
        return r;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        kl_store_channel_t c;
        if ((r = fill(s, &c)) || (r = cb(ud, &c)))
            break;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = KL_EIO;
    sqlite3_finalize(s);
    return r;
}

static int op_label(char *out, size_t cap, const char *chan, uint64_t idx)
{
    char row[KL_ADDR_MAX + 32];
    int n = snprintf(row, sizeof row, "%s|%llu", chan, (unsigned long long)idx);
    if (n < 0 || (size_t)n >= sizeof row)
        return KL_ETOOBIG;
    return kl_store_label(out, cap, "channel_ops", row);
}

int kl_store_channel_op_put(kl_store_t *st, const char *chan, uint64_t idx, const uint8_t *op,
                            size_t len)
{
    char label[KL_ADDR_MAX + 128];
    sqlite3_stmt *s;
    if (len == 0 || len > KL_CHANNEL_MAX_OP)
        return KL_EINVAL;
    int r = op_label(label, sizeof label, chan, idx);
    if (r == 0)
        r = kl_store_prepare(st, "INSERT INTO channel_ops(chan, idx, box) VALUES(?1, ?2, ?3)",
                             &s);
    if (r)
        return r;
    sqlite3_bind_text(s, 1, chan, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)idx);
    if ((r = kl_store_bind_sealed(st, s, 3, label, op, len))) {
        sqlite3_finalize(s);
        return r;
    }
    return kl_store_exec_stmt(s);
}

int kl_store_channel_op_each(kl_store_t *st, const char *chan,
                             int (*cb)(void *ud, uint64_t idx, const uint8_t *op, size_t len),
                             void *ud)
{
    char label[KL_ADDR_MAX + 128];
    sqlite3_stmt *s;
    int r = kl_store_prepare(st, "SELECT idx, box FROM channel_ops WHERE chan = ?1 ORDER BY idx",
                             &s);
    if (r)
        return r;
    sqlite3_bind_text(s, 1, chan, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        uint64_t idx = (uint64_t)sqlite3_column_int64(s, 0);
        uint8_t *op = NULL;
        size_t len = 0;
        if ((r = op_label(label, sizeof label, chan, idx)) ||
            (r = kl_store_column_unseal(st, s, 1, label, &op, &len)))
            break;
        r = cb(ud, idx, op, len);
        kl_free_wipe(op, len);
        if (r)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = KL_EIO;
    sqlite3_finalize(s);
    return r;
}
