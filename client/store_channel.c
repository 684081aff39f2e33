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
    " box BLOB NOT NULL, PRIMARY KEY(chan, idx));"
    "CREATE TABLE IF NOT EXISTS channel_keys(chan TEXT NOT NULL, epoch INTEGER NOT NULL,"
    " sender BLOB NOT NULL, box BLOB NOT NULL, PRIMARY KEY(chan, epoch, sender));"
    "CREATE TABLE IF NOT EXISTS channel_key_sent(chan TEXT NOT NULL, epoch INTEGER NOT NULL,"
    " member BLOB NOT NULL, PRIMARY KEY(chan, epoch, member));"
    "CREATE TABLE IF NOT EXISTS channel_pending(chan TEXT NOT NULL, idx INTEGER NOT NULL,"
    " box BLOB NOT NULL, PRIMARY KEY(chan, idx));"
    "CREATE TABLE IF NOT EXISTS channel_epochs(chan TEXT PRIMARY KEY, epoch INTEGER NOT NULL,"
    " seq INTEGER NOT NULL);";

int kl_store_channel_schema(kl_store_t *st)
{
    return sqlite3_exec(st->db, CHANNEL_SCHEMA, NULL, NULL, NULL) == SQLITE_OK ? 0 : KL_EIO;
}

static int fill(sqlite3_stmt *s, kl_store_channel_t *c)
{
    memset(c, 0, sizeof *c);
    int r = kl_store_column_text(s, 0, c->address, sizeof c->address);
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

int kl_store_channel_op_put(kl_store_t *st, const char *chan, uint64_t idx, const uint8_t *op,
                            size_t len)
{
    if (len == 0)
        return KL_EINVAL;
    if (len > KL_CHANNEL_MAX_OP)
        return KL_ETOOBIG;
    return kl_store_log_put(st, "INSERT INTO channel_ops(chan, idx, box) VALUES(?1, ?2, ?3)",
                            "channel_ops", chan, idx, op, len);
}

int kl_store_channel_op_each(kl_store_t *st, const char *chan,
                             int (*cb)(void *ud, uint64_t idx, const uint8_t *op, size_t len),
                             void *ud)
{
    return kl_store_log_each(st, "SELECT idx, box FROM channel_ops WHERE chan = ?1 ORDER BY idx",
                             "channel_ops", chan, cb, ud);
}

/* ---- members-only channels: keys, who has them, posts waiting ---------- */

/* "channel_keys|<chan>|<sender hex>|<epoch>": a box opens only in its row. */
static int key_label(char *out, size_t cap, const char *chan, const uint8_t sender[32],
                     uint64_t epoch)
{
    char hex[65], k[KL_ADDR_MAX + 80];
    kl_hex_encode(sender, 32, hex, sizeof hex);
    int n = snprintf(k, sizeof k, "%s|%s", chan, hex);
    if (n < 0 || (size_t)n >= sizeof k)
        return KL_ETOOBIG;
    return kl_store_row_label(out, cap, "channel_keys", k, epoch);
}

int kl_store_channel_key_put(kl_store_t *st, const char *chan, uint64_t epoch,
                             const uint8_t sender[32], const uint8_t key[KL_CHANNEL_KEY])
{
    char label[KL_ADDR_MAX + 200];
    sqlite3_stmt *s;
    int found = 0;
    int r = key_label(label, sizeof label, chan, sender, epoch);
    /* Bounded: whoever sends keys, at most KL_STORE_CHANNEL_KEYS rows per channel. */
    if (r == 0)
        r = kl_store_prepare(st, "SELECT 1 FROM channel_keys WHERE chan = ?1 LIMIT 1 OFFSET ?2",
                             &s);
    if (r)
        return r;
    sqlite3_bind_text(s, 1, chan, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, KL_STORE_CHANNEL_KEYS - 1);
    if ((r = kl_store_step_exists(s, &found)))
        return r;
    if (found)
        return KL_ELIMIT;
    if ((r = kl_store_prepare(st, "INSERT OR IGNORE INTO channel_keys(chan, epoch, sender, box)"
                                  " VALUES(?1, ?2, ?3, ?4)", &s)))
        return r;
    sqlite3_bind_text(s, 1, chan, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)epoch);
    sqlite3_bind_blob(s, 3, sender, 32, SQLITE_STATIC);
    return kl_store_exec_sealed(st, s, 4, label, key, KL_CHANNEL_KEY);
}

int kl_store_channel_key_get(kl_store_t *st, const char *chan, uint64_t epoch,
                             const uint8_t sender[32], uint8_t key[KL_CHANNEL_KEY])
{
    char label[KL_ADDR_MAX + 200];
    sqlite3_stmt *s;
    uint8_t *pt = NULL;
    size_t len = 0;
    int r = key_label(label, sizeof label, chan, sender, epoch);
    if (r == 0)
        r = kl_store_prepare(st, "SELECT box FROM channel_keys WHERE chan = ?1 AND epoch = ?2"
                                 " AND sender = ?3", &s);
    if (r)
        return r;
    sqlite3_bind_text(s, 1, chan, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)epoch);
    sqlite3_bind_blob(s, 3, sender, 32, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        r = kl_store_column_unseal(st, s, 0, label, &pt, &len);
        if (r == 0 && len != KL_CHANNEL_KEY)
            r = KL_EPROTO;
        if (r == 0)
            memcpy(key, pt, KL_CHANNEL_KEY);
        if (pt)
            kl_free_wipe(pt, len);
    } else {
        r = rc == SQLITE_DONE ? KL_ENOTFOUND : KL_EIO;
    }
    sqlite3_finalize(s);
    return r;
}

int kl_store_channel_key_sent(kl_store_t *st, const char *chan, uint64_t epoch,
                              const uint8_t member[32], int mark, int *sent)
{
    sqlite3_stmt *s;
    int r = kl_store_prepare(st, mark ? "INSERT OR IGNORE INTO channel_key_sent(chan, epoch,"
                                        " member) VALUES(?1, ?2, ?3)"
                                      : "SELECT 1 FROM channel_key_sent WHERE chan = ?1 AND"
                                        " epoch = ?2 AND member = ?3", &s);
    if (r)
        return r;
    sqlite3_bind_text(s, 1, chan, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)epoch);
    sqlite3_bind_blob(s, 3, member, 32, SQLITE_STATIC);
    if (mark)
        return kl_store_exec_stmt(s);
    return kl_store_step_exists(s, sent);
}

int kl_store_channel_pending_put(kl_store_t *st, const char *chan, uint64_t seq,
                                 const uint8_t *post, size_t len)
{
    sqlite3_stmt *s;
    int found = 0;
    if (len == 0 || len > KL_CHANNEL_MAX_POST)
        return KL_EINVAL;
    int r = kl_store_prepare(st, "SELECT 1 FROM channel_pending WHERE chan = ?1 LIMIT 1"
                                 " OFFSET ?2", &s);
    if (r)
        return r;
    sqlite3_bind_text(s, 1, chan, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, KL_STORE_CHANNEL_PENDING - 1);
    if ((r = kl_store_step_exists(s, &found)))
        return r;
    if (found)
        return KL_ELIMIT;
    r = kl_store_log_put(st, "INSERT OR IGNORE INTO channel_pending(chan, idx, box)"
                             " VALUES(?1, ?2, ?3)", "channel_pending", chan, seq, post, len);
    return r;
}

int kl_store_channel_pending_each(kl_store_t *st, const char *chan,
                                  int (*cb)(void *ud, uint64_t seq, const uint8_t *post,
                                            size_t len),
                                  void *ud)
{
    return kl_store_log_each(st, "SELECT idx, box FROM channel_pending WHERE chan = ?1"
                                 " ORDER BY idx", "channel_pending", chan, cb, ud);
}

int kl_store_channel_pending_delete(kl_store_t *st, const char *chan, uint64_t seq)
{
    sqlite3_stmt *s;
    int r = kl_store_prepare(st, "DELETE FROM channel_pending WHERE chan = ?1 AND idx = ?2", &s);
    if (r)
        return r;
    sqlite3_bind_text(s, 1, chan, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)seq);
    return kl_store_exec_stmt(s);
}

int kl_store_channel_epoch_get(kl_store_t *st, const char *chan, uint64_t *epoch, uint64_t *seq)
{
    sqlite3_stmt *s;
    *epoch = *seq = 0;
    int r = kl_store_prepare(st, "SELECT epoch, seq FROM channel_epochs WHERE chan = ?1", &s);
    if (r)
        return r;
    sqlite3_bind_text(s, 1, chan, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *epoch = (uint64_t)sqlite3_column_int64(s, 0);
        *seq = (uint64_t)sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : KL_EIO;
}

int kl_store_channel_epoch_put(kl_store_t *st, const char *chan, uint64_t epoch, uint64_t seq)
{
    sqlite3_stmt *s;
    int r = kl_store_prepare(st, "INSERT OR REPLACE INTO channel_epochs(chan, epoch, seq)"
                                 " VALUES(?1, ?2, ?3)", &s);
    if (r)
        return r;
    sqlite3_bind_text(s, 1, chan, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)epoch);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)seq);
    return kl_store_exec_stmt(s);
}
