/* ERFA groups in the client store. See store_group.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/group.h"
#include "store_group.h"
#include "store_int.h"

/* Sender-key records are small (kl_senderkey_serialize: a chain, a signing
 * key and at most KL_SENDERKEY_MAX_SKIP skipped keys); a bigger blob is
 * corruption. */
#define SK_MAX (256u * 1024u)

static const char GROUP_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS groups(grp TEXT PRIMARY KEY, cursor INTEGER NOT NULL,"
    " notified INTEGER NOT NULL, fork_index INTEGER NOT NULL DEFAULT 0, fork_author BLOB);"
    "CREATE TABLE IF NOT EXISTS group_ops(grp TEXT NOT NULL, idx INTEGER NOT NULL,"
    " box BLOB NOT NULL, PRIMARY KEY(grp, idx));"
    "CREATE TABLE IF NOT EXISTS sender_keys(grp TEXT NOT NULL, owner BLOB NOT NULL,"
    " key_id INTEGER NOT NULL, epoch INTEGER NOT NULL, own INTEGER NOT NULL,"
    " n INTEGER NOT NULL, box BLOB NOT NULL, PRIMARY KEY(grp, owner, key_id));"
    "CREATE TABLE IF NOT EXISTS sk_sent(grp TEXT NOT NULL, key_id INTEGER NOT NULL,"
    " member BLOB NOT NULL, PRIMARY KEY(grp, key_id, member));"
    "CREATE TABLE IF NOT EXISTS group_pending(grp TEXT NOT NULL, seq INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, box BLOB NOT NULL, PRIMARY KEY(grp, seq));";

/* The messages table as groups need it: duplicates are found by (peer,
 * outgoing, sender, msg_id), so one member cannot suppress another's
 * message by reusing its id, and relay_ts (the relay's entry time) decides
 * group retention. Older stores are rebuilt into it once. */
static const char MESSAGES_V2[] =
    "CREATE TABLE messages_v2(n INTEGER PRIMARY KEY, peer TEXT NOT NULL,"
    " outgoing INTEGER NOT NULL, msg_id BLOB NOT NULL, sent_at INTEGER NOT NULL,"
    " stored_at INTEGER NOT NULL, seq INTEGER NOT NULL, box BLOB NOT NULL,"
    " sender TEXT NOT NULL DEFAULT '', relay_ts INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE(peer, outgoing, sender, msg_id));"
    "INSERT INTO messages_v2(n, peer, outgoing, msg_id, sent_at, stored_at, seq, box, sender,"
    " relay_ts) SELECT n, peer, outgoing, msg_id, sent_at, stored_at, seq, box,"
    " coalesce(sender, ''), stored_at FROM messages;"
    "DROP TABLE messages;"
    "ALTER TABLE messages_v2 RENAME TO messages;"
    "CREATE INDEX messages_by_peer ON messages(peer, n);";

static int has_column(kl_store_t *st, const char *table, const char *col)
{
    char sql[128];
    sqlite3_stmt *s = NULL;
    snprintf(sql, sizeof sql, "SELECT %s FROM %s LIMIT 0", col, table);
    int ok = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) == SQLITE_OK;
    sqlite3_finalize(s);
    return ok;
}

static int exec_sql(kl_store_t *st, const char *sql)
{
    return sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : KL_EIO;
}

/* Members whose client claimed another history of the log than ours
 * (group.h, view check): told once per author, until it agrees again or
 * leaves the group. Before this table a disagreeing message marked the
 * whole group forked (fork_author set): such marks are no proof and are
 * cleared when the table is made. */
static const char DISPUTES[] =
    "CREATE TABLE group_disputes(grp TEXT NOT NULL, author BLOB NOT NULL,"
    " idx INTEGER NOT NULL, PRIMARY KEY(grp, author));"
    "UPDATE groups SET fork_index = 0, fork_author = NULL WHERE fork_author IS NOT NULL;";

static int migrate(kl_store_t *st)
{
    int r = 0;
    /* Stores made before groups have no sender column. */
    if (!has_column(st, "messages", "sender"))
        r = exec_sql(st, "ALTER TABLE messages ADD COLUMN sender TEXT");
    if (r == 0 && !has_column(st, "groups", "fork_index"))
        r = exec_sql(st, "ALTER TABLE groups ADD COLUMN fork_index INTEGER NOT NULL DEFAULT 0;"
                         "ALTER TABLE groups ADD COLUMN fork_author BLOB;");
    if (r == 0 && !has_column(st, "messages", "relay_ts"))
        r = exec_sql(st, MESSAGES_V2);
    if (r == 0 && !has_column(st, "group_disputes", "idx"))
        r = exec_sql(st, DISPUTES);
    /* When a departed member's keys were marked gone (their messages from
     * before stay readable for the group's retention). */
    if (r == 0 && !has_column(st, "sender_keys", "gone_at"))
        r = exec_sql(st, "ALTER TABLE sender_keys ADD COLUMN gone_at INTEGER NOT NULL DEFAULT 0");
    return r;
}

int kl_store_group_schema(kl_store_t *st)
{
    if (exec_sql(st, GROUP_SCHEMA) != 0)
        return KL_EIO;
    if (has_column(st, "messages", "relay_ts") && has_column(st, "groups", "fork_index") &&
        has_column(st, "group_disputes", "idx") && has_column(st, "sender_keys", "gone_at"))
        return 0;
    /* Checked again under the write lock: another process may have migrated. */
    if (exec_sql(st, "BEGIN IMMEDIATE;") != 0)
        return KL_EIO;
    int r = migrate(st);
    if (r == 0 && exec_sql(st, "COMMIT;") == 0)
        return 0;
    exec_sql(st, "ROLLBACK;");
    return KL_EIO;
}

static void row_fields(sqlite3_stmt *s, kl_store_group_t *g)
{
    g->cursor = (uint64_t)sqlite3_column_int64(s, 1);
    g->notified = (uint32_t)sqlite3_column_int64(s, 2);
    g->fork_index = (uint64_t)sqlite3_column_int64(s, 3);
    if (g->fork_index && sqlite3_column_bytes(s, 4) == 32)
        memcpy(g->fork_author, sqlite3_column_blob(s, 4), 32);
}

#define GROUP_ROW "SELECT grp, cursor, notified, fork_index, fork_author FROM groups"

int kl_store_group_get(kl_store_t *st, const char *grp, kl_store_group_t *g)
{
    sqlite3_stmt *s;
    memset(g, 0, sizeof *g);
    int r = kl_store_first(st, &s, GROUP_ROW " WHERE grp = ?1", KL_ARGS(KL_TEXT(grp)));
    if (r)
        return r;
    if ((r = kl_store_column_text(s, 0, g->address, sizeof g->address)) == 0)
        row_fields(s, g);
    sqlite3_finalize(s);
    return r;
}

int kl_store_group_put(kl_store_t *st, const kl_store_group_t *g)
{
    return kl_store_run(st, "INSERT OR REPLACE INTO groups(grp, cursor, notified, fork_index,"
                            " fork_author) VALUES(?1, ?2, ?3, ?4, ?5)",
                        KL_ARGS(KL_TEXT(g->address), KL_INT(g->cursor), KL_INT(g->notified),
                                KL_INT(g->fork_index),
                                KL_BLOB(g->fork_index ? g->fork_author : NULL, 32)));
}

int kl_store_group_row(kl_store_t *st, const char *grp, kl_store_group_t *g)
{
    int r = kl_store_group_get(st, grp, g);
    if (r == KL_ENOTFOUND) {
        memset(g, 0, sizeof *g);
        snprintf(g->address, sizeof g->address, "%s", grp);
        r = 0;
    }
    return r;
}

int kl_store_group_add(kl_store_t *st, const char *grp)
{
    return kl_store_run(st, "INSERT OR IGNORE INTO groups(grp, cursor, notified) VALUES(?1, 0, 0)",
                        KL_ARGS(KL_TEXT(grp)));
}

int kl_store_group_each(kl_store_t *st, int (*cb)(void *ud, const kl_store_group_t *g), void *ud)
{
    sqlite3_stmt *s;
    int rc, r = kl_store_query(st, &s, GROUP_ROW " ORDER BY grp", NULL, 0);
    if (r)
        return r;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        kl_store_group_t g;
        memset(&g, 0, sizeof g);
        if ((r = kl_store_column_text(s, 0, g.address, sizeof g.address)))
            break;
        row_fields(s, &g);
        if ((r = cb(ud, &g)))
            break;
    }
    return kl_store_done(s, r, rc);
}

static int sk_label(char *out, size_t cap, const char *grp, const uint8_t owner[32],
                    uint32_t key_id)
{
    char hex[65];
    char g2[KL_ADDR_MAX + 80];
    kl_hex_encode(owner, 32, hex, sizeof hex);
    int n = snprintf(g2, sizeof g2, "%s|%s", grp, hex);
    if (n < 0 || (size_t)n >= sizeof g2)
        return KL_ETOOBIG;
    return kl_store_row_label(out, cap, "sender_keys", g2, key_id);
}

int kl_store_senderkey_put(kl_store_t *st, const char *grp, const uint8_t owner[32],
                           uint32_t key_id, uint64_t epoch, int own, int replace,
                           const uint8_t *ser, size_t len)
{
    char label[KL_ADDR_MAX + 300];
    sqlite3_stmt *s;
    if (len == 0 || len > SK_MAX)
        return KL_ETOOBIG;
    int r = sk_label(label, sizeof label, grp, owner, key_id);
    /* n orders own keys by creation (the newest is the one to use). */
    if (r || (r = kl_store_query(st, &s,
                                 replace
                                     ? "INSERT OR REPLACE INTO sender_keys(grp, owner, key_id,"
                                       " epoch, own, n, box, gone_at) VALUES(?1, ?2, ?3, ?4,"
                                       " ?5, coalesce((SELECT n FROM sender_keys WHERE"
                                       " grp = ?1 AND owner = ?2 AND key_id = ?3),"
                                       " (SELECT coalesce(max(n), 0) + 1 FROM sender_keys)),"
                                       " ?6, coalesce((SELECT gone_at FROM sender_keys WHERE"
                                       " grp = ?1 AND owner = ?2 AND key_id = ?3), 0))"
                                     : "INSERT OR IGNORE INTO sender_keys(grp, owner, key_id,"
                                       " epoch, own, n, box) VALUES(?1, ?2, ?3, ?4, ?5,"
                                       " (SELECT coalesce(max(n), 0) + 1 FROM sender_keys),"
                                       " ?6)",
                                 KL_ARGS(KL_TEXT(grp), KL_BLOB(owner, 32), KL_INT(key_id),
                                         KL_INT(epoch), KL_INT(own ? 1 : 0)))))
        return r;
    if ((r = kl_store_exec_sealed(st, s, 6, label, ser, len)))
        return r;
    /* Bounded: only the newest KL_SK_KEEP keys of each (group, owner). */
    return kl_store_run(st, "DELETE FROM sender_keys WHERE grp = ?1 AND owner = ?2 AND own = ?3"
                            " AND n NOT IN (SELECT n FROM sender_keys WHERE grp = ?1"
                            " AND owner = ?2 AND own = ?3 ORDER BY n DESC LIMIT ?4)",
                        KL_ARGS(KL_TEXT(grp), KL_BLOB(owner, 32), KL_INT(own ? 1 : 0),
                                KL_INT(KL_SK_KEEP)));
}

int kl_store_senderkey_own(kl_store_t *st, const char *grp, const uint8_t me[32],
                           uint32_t *key_id, uint64_t *epoch, uint8_t **ser, size_t *len)
{
    char label[KL_ADDR_MAX + 300];
    sqlite3_stmt *s;
    *ser = NULL;
    *len = 0;
    int r = kl_store_first(st, &s, "SELECT key_id, epoch, box FROM sender_keys WHERE grp = ?1"
                                   " AND owner = ?2 AND own = 1 ORDER BY n DESC LIMIT 1",
                           KL_ARGS(KL_TEXT(grp), KL_BLOB(me, 32)));
    if (r)
        return r;
    *key_id = (uint32_t)sqlite3_column_int64(s, 0);
    *epoch = (uint64_t)sqlite3_column_int64(s, 1);
    if ((r = sk_label(label, sizeof label, grp, me, *key_id)) == 0)
        r = kl_store_column_unseal(st, s, 2, label, ser, len);
    sqlite3_finalize(s);
    return r;
}

int kl_store_senderkey_is_own(kl_store_t *st, const char *grp, const uint8_t me[32],
                              uint32_t key_id, int *own)
{
    return kl_store_exists(st, own, "SELECT 1 FROM sender_keys WHERE grp = ?1 AND owner = ?2"
                                    " AND key_id = ?3 AND own = 1",
                           KL_ARGS(KL_TEXT(grp), KL_BLOB(me, 32), KL_INT(key_id)));
}

/* kl_store_senderkey_each's rows: what the label needs, the owner it read
 * and the caller's callback. */
typedef struct sk_each {
    const char *grp;
    uint32_t key_id;
    uint8_t owner[32];
    int (*cb)(void *ud, const uint8_t owner[32], uint64_t epoch, const uint8_t *ser, size_t len);
    void *ud;
} sk_each_t;

static int sk_each_label(void *ctx, sqlite3_stmt *s, char *out, size_t cap)
{
    sk_each_t *e = ctx;
    if (sqlite3_column_bytes(s, 0) != 32)
        return KL_EPROTO;
    memcpy(e->owner, sqlite3_column_blob(s, 0), 32);
    return sk_label(out, cap, e->grp, e->owner, e->key_id);
}

static int sk_each_row(void *ctx, sqlite3_stmt *s, const uint8_t *ser, size_t len)
{
    sk_each_t *e = ctx;
    return e->cb(e->ud, e->owner, (uint64_t)sqlite3_column_int64(s, 2), ser, len);
}

int kl_store_senderkey_each(kl_store_t *st, const char *grp, uint32_t key_id,
                            int (*cb)(void *ud, const uint8_t owner[32], uint64_t epoch,
                                      const uint8_t *ser, size_t len),
                            void *ud)
{
    static const kl_store_sealed_rows_t how = {1, sk_each_label, sk_each_row};
    sk_each_t e = {grp, key_id, {0}, cb, ud};
    return kl_store_sealed_each(st, "SELECT owner, box, epoch FROM sender_keys WHERE grp = ?1"
                                    " AND key_id = ?2 AND own = 0 ORDER BY n",
                                KL_ARGS(KL_TEXT(grp), KL_INT(key_id)), &how, &e);
}

int kl_store_senderkey_gone(kl_store_t *st, const char *grp, const uint8_t owner[32],
                            uint64_t now_ms)
{
    return kl_store_run(st, "UPDATE sender_keys SET gone_at = ?3 WHERE grp = ?1 AND owner = ?2"
                            " AND own = 0 AND gone_at = 0",
                        KL_ARGS(KL_TEXT(grp), KL_BLOB(owner, 32), KL_INT(now_ms)));
}

/* Owners of received keys of grp, at most this many per prune (the rest
 * wait for the next one). */
#define PRUNE_OWNERS 256

int kl_store_senderkey_prune(kl_store_t *st, const char *grp, uint64_t before_ms,
                             int (*keep)(void *ud, const uint8_t owner[32]), void *ud)
{
    uint8_t (*drop)[32] = NULL;
    size_t n = 0;
    sqlite3_stmt *s;
    int rc, r = kl_store_query(st, &s, "SELECT DISTINCT owner FROM sender_keys WHERE grp = ?1"
                                       " AND own = 0 LIMIT ?2",
                               KL_ARGS(KL_TEXT(grp), KL_INT(PRUNE_OWNERS)));
    if (r)
        return r;
    if ((drop = calloc(PRUNE_OWNERS, sizeof *drop)) == NULL) {
        sqlite3_finalize(s);
        return KL_ENOMEM;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (sqlite3_column_bytes(s, 0) == 32 && !keep(ud, sqlite3_column_blob(s, 0)))
            memcpy(drop[n++], sqlite3_column_blob(s, 0), 32);
    r = kl_store_done(s, 0, rc);
    for (size_t i = 0; r == 0 && i < n; i++)
        r = kl_store_run(st, "DELETE FROM sender_keys WHERE grp = ?1 AND owner = ?2 AND own = 0",
                         KL_ARGS(KL_TEXT(grp), KL_BLOB(drop[i], 32)));
    free(drop);
    return r ? r : kl_store_run(st, "DELETE FROM sender_keys WHERE grp = ?1 AND own = 0"
                                    " AND gone_at != 0 AND gone_at < ?2",
                                KL_ARGS(KL_TEXT(grp), KL_INT(before_ms)));
}

int kl_store_gpending_add(kl_store_t *st, const char *grp, uint64_t seq, uint64_t ts,
                          const uint8_t *body, size_t len, uint64_t *dropped)
{
    char label[KL_ADDR_MAX + 200];
    sqlite3_stmt *s;
    *dropped = 0;
    int r = kl_store_row_label(label, sizeof label, "group_pending", grp, seq);
    if (r || (r = kl_store_query(st, &s, "INSERT OR IGNORE INTO group_pending(grp, seq, ts, box)"
                                         " VALUES(?1, ?2, ?3, ?4)",
                                 KL_ARGS(KL_TEXT(grp), KL_INT(seq), KL_INT(ts)))) ||
        (r = kl_store_exec_sealed(st, s, 4, label, body, len)))
        return r;
    /* Bounded: beyond KL_GPENDING_MAX the oldest entries go. */
    return kl_store_run_changes(st, dropped, "DELETE FROM group_pending WHERE grp = ?1 AND seq"
                                             " NOT IN (SELECT seq FROM group_pending WHERE"
                                             " grp = ?1 ORDER BY seq DESC LIMIT ?2)",
                                KL_ARGS(KL_TEXT(grp), KL_INT(KL_GPENDING_MAX)));
}

/* kl_store_gpending_each's rows: a log row (its seq) and the caller's
 * callback. */
typedef struct gpending_each {
    kl_store_log_row_t row;
    int (*cb)(void *ud, uint64_t seq, uint64_t ts, const uint8_t *body, size_t len);
    void *ud;
} gpending_each_t;

static int gpending_each_row(void *ctx, sqlite3_stmt *s, const uint8_t *body, size_t len)
{
    gpending_each_t *e = ctx;
    return e->cb(e->ud, e->row.idx, (uint64_t)sqlite3_column_int64(s, 1), body, len);
}

int kl_store_gpending_each(kl_store_t *st, const char *grp, uint64_t after, size_t limit,
                           int (*cb)(void *ud, uint64_t seq, uint64_t ts, const uint8_t *body,
                                     size_t len),
                           void *ud)
{
    static const kl_store_sealed_rows_t how = {2, kl_store_log_label, gpending_each_row};
    gpending_each_t e = {{"group_pending", grp, 0}, cb, ud};
    return kl_store_sealed_each(st, "SELECT seq, ts, box FROM group_pending WHERE grp = ?1"
                                    " AND seq > ?3 ORDER BY seq LIMIT ?2",
                                KL_ARGS(KL_TEXT(grp), KL_INT(limit), KL_INT(after)), &how, &e);
}

int kl_store_gpending_delete(kl_store_t *st, const char *grp, uint64_t seq)
{
    return kl_store_run(st, "DELETE FROM group_pending WHERE grp = ?1 AND seq = ?2",
                        KL_ARGS(KL_TEXT(grp), KL_INT(seq)));
}

int kl_store_gpending_count(kl_store_t *st, const char *grp, uint64_t *n)
{
    return kl_store_int(st, n, "SELECT count(*) FROM group_pending WHERE grp = ?1",
                        KL_ARGS(KL_TEXT(grp)));
}

int kl_store_group_purge(kl_store_t *st, const char *grp, uint64_t before_ms, uint64_t *n)
{
    *n = 0;
    int r = kl_store_run_changes(st, n, "DELETE FROM messages WHERE peer = ?1 AND relay_ts < ?2",
                                 KL_ARGS(KL_TEXT(grp), KL_INT(before_ms)));
    return r ? r : kl_store_run(st, "DELETE FROM group_pending WHERE grp = ?1 AND ts < ?2",
                                KL_ARGS(KL_TEXT(grp), KL_INT(before_ms)));
}

int kl_store_group_forget(kl_store_t *st, const char *grp)
{
    static const char *const sql[] = {
        "DELETE FROM sender_keys WHERE grp = ?1",
        "DELETE FROM sk_sent WHERE grp = ?1",
        "DELETE FROM group_pending WHERE grp = ?1",
        "DELETE FROM group_disputes WHERE grp = ?1",
    };
    int r = 0;
    for (size_t i = 0; r == 0 && i < sizeof sql / sizeof sql[0]; i++)
        r = kl_store_run(st, sql[i], KL_ARGS(KL_TEXT(grp)));
    return r;
}

int kl_store_group_dispute_get(kl_store_t *st, const char *grp, const uint8_t author[32],
                               int *has)
{
    return kl_store_exists(st, has, "SELECT 1 FROM group_disputes WHERE grp = ?1 AND author = ?2",
                           KL_ARGS(KL_TEXT(grp), KL_BLOB(author, 32)));
}

int kl_store_group_dispute_put(kl_store_t *st, const char *grp, const uint8_t author[32],
                               uint64_t idx)
{
    return kl_store_run(st, "INSERT OR REPLACE INTO group_disputes(grp, author, idx)"
                            " VALUES(?1, ?2, ?3)",
                        KL_ARGS(KL_TEXT(grp), KL_BLOB(author, 32), KL_INT(idx)));
}

int kl_store_group_dispute_delete(kl_store_t *st, const char *grp, const uint8_t author[32])
{
    return kl_store_run(st, "DELETE FROM group_disputes WHERE grp = ?1 AND author = ?2",
                        KL_ARGS(KL_TEXT(grp), KL_BLOB(author, 32)));
}
