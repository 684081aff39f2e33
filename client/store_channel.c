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

#define CHANNEL_ROW "SELECT chan, cursor, subscribed, owned FROM channels"

int kl_store_channel_get(kl_store_t *st, const char *chan, kl_store_channel_t *c)
{
    sqlite3_stmt *s;
    int r = kl_store_first(st, &s, CHANNEL_ROW " WHERE chan = ?1", KL_ARGS(KL_TEXT(chan)));
    if (r)
        return r;
    r = fill(s, c);
    sqlite3_finalize(s);
    return r;
}

int kl_store_channel_put(kl_store_t *st, const kl_store_channel_t *c)
{
    return kl_store_run(st, "INSERT OR REPLACE INTO channels(chan, cursor, subscribed, owned)"
                            " VALUES(?1, ?2, ?3, ?4)",
                        KL_ARGS(KL_TEXT(c->address), KL_INT(c->cursor),
                                KL_INT(c->subscribed ? 1 : 0), KL_INT(c->owned ? 1 : 0)));
}

int kl_store_channel_each(kl_store_t *st, int (*cb)(void *ud, const kl_store_channel_t *c),
                          void *ud)
{
    sqlite3_stmt *s;
    int rc, r = kl_store_query(st, &s, CHANNEL_ROW " ORDER BY chan", NULL, 0);
    if (r)
        return r;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        kl_store_channel_t c;
        if ((r = fill(s, &c)) || (r = cb(ud, &c)))
            break;
    }
    return kl_store_done(s, r, rc);
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

/* KL_ELIMIT when chan has `max` rows in table already. */
static int full(kl_store_t *st, const char *sql, const char *chan, int max)
{
    int found = 0;
    int r = kl_store_exists(st, &found, sql, KL_ARGS(KL_TEXT(chan), KL_INT(max - 1)));
    return r ? r : found ? KL_ELIMIT : 0;
}

int kl_store_channel_key_put(kl_store_t *st, const char *chan, uint64_t epoch,
                             const uint8_t sender[32], const uint8_t key[KL_CHANNEL_KEY])
{
    char label[KL_ADDR_MAX + 200];
    sqlite3_stmt *s;
    int r = key_label(label, sizeof label, chan, sender, epoch);
    /* Bounded: whoever sends keys, at most KL_STORE_CHANNEL_KEYS rows per channel. */
    if (r || (r = full(st, "SELECT 1 FROM channel_keys WHERE chan = ?1 LIMIT 1 OFFSET ?2", chan,
                       KL_STORE_CHANNEL_KEYS)) ||
        (r = kl_store_query(st, &s, "INSERT OR IGNORE INTO channel_keys(chan, epoch, sender, box)"
                                    " VALUES(?1, ?2, ?3, ?4)",
                            KL_ARGS(KL_TEXT(chan), KL_INT(epoch), KL_BLOB(sender, 32)))))
        return r;
    return kl_store_exec_sealed(st, s, 4, label, key, KL_CHANNEL_KEY);
}

int kl_store_channel_key_get(kl_store_t *st, const char *chan, uint64_t epoch,
                             const uint8_t sender[32], uint8_t key[KL_CHANNEL_KEY])
{
    char label[KL_ADDR_MAX + 200];
    sqlite3_stmt *s;
    int r = key_label(label, sizeof label, chan, sender, epoch);
    if (r || (r = kl_store_first(st, &s, "SELECT box FROM channel_keys WHERE chan = ?1 AND"
                                         " epoch = ?2 AND sender = ?3",
                                 KL_ARGS(KL_TEXT(chan), KL_INT(epoch), KL_BLOB(sender, 32)))))
        return r;
    r = kl_store_column_open(st, s, 0, label, key, KL_CHANNEL_KEY);
    sqlite3_finalize(s);
    return r;
}

int kl_store_channel_pending_put(kl_store_t *st, const char *chan, uint64_t seq,
                                 const uint8_t *post, size_t len)
{
    if (len == 0 || len > KL_CHANNEL_MAX_POST)
        return KL_EINVAL;
    int r = full(st, "SELECT 1 FROM channel_pending WHERE chan = ?1 LIMIT 1 OFFSET ?2", chan,
                 KL_STORE_CHANNEL_PENDING);
    return r ? r : kl_store_log_put(st, "INSERT OR IGNORE INTO channel_pending(chan, idx, box)"
                                        " VALUES(?1, ?2, ?3)",
                                    "channel_pending", chan, seq, post, len);
}

int kl_store_channel_pending_each(kl_store_t *st, const char *chan, uint64_t after,
                                  int (*cb)(void *ud, uint64_t seq, const uint8_t *post,
                                            size_t len),
                                  void *ud)
{
    return kl_store_log_each_after(st, "SELECT idx, box FROM channel_pending WHERE chan = ?1"
                                       " AND idx > ?2 ORDER BY idx",
                                   "channel_pending", chan, after, cb, ud);
}

int kl_store_channel_pending_delete(kl_store_t *st, const char *chan, uint64_t seq)
{
    return kl_store_run(st, "DELETE FROM channel_pending WHERE chan = ?1 AND idx = ?2",
                        KL_ARGS(KL_TEXT(chan), KL_INT(seq)));
}

int kl_store_channel_epoch_get(kl_store_t *st, const char *chan, uint64_t *epoch, uint64_t *seq)
{
    sqlite3_stmt *s;
    *epoch = *seq = 0;
    int r = kl_store_first(st, &s, "SELECT epoch, seq FROM channel_epochs WHERE chan = ?1",
                           KL_ARGS(KL_TEXT(chan)));
    if (r)
        return r == KL_ENOTFOUND ? 0 : r;
    *epoch = (uint64_t)sqlite3_column_int64(s, 0);
    *seq = (uint64_t)sqlite3_column_int64(s, 1);
    sqlite3_finalize(s);
    return 0;
}

int kl_store_channel_epoch_put(kl_store_t *st, const char *chan, uint64_t epoch, uint64_t seq)
{
    return kl_store_run(st, "INSERT OR REPLACE INTO channel_epochs(chan, epoch, seq)"
                            " VALUES(?1, ?2, ?3)",
                        KL_ARGS(KL_TEXT(chan), KL_INT(epoch), KL_INT(seq)));
}
