/* relay/storage_fed.h on sqlite. Federation statements run rarely (peer
 * configuration, link state changes, one watermark read and write per batch
 * of forwards), so they are prepared per call instead of at open: the
 * shared statement table stays as it is. Outboxes are ordinary logs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage/storage_fed.h"
#include "storage_sqlite.h"

static const char *FED_SCHEMA =
    "CREATE TABLE IF NOT EXISTS fed_peers("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  addr TEXT NOT NULL,"
    "  key BLOB NOT NULL CHECK(length(key) = 32),"
    "  outbox INTEGER NOT NULL REFERENCES logs(id),"
    "  epoch INTEGER NOT NULL,"
    "  max_entries INTEGER NOT NULL,"
    "  max_bytes INTEGER NOT NULL,"
    "  rate INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT '',"
    "  state_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS fed_inbound("
    "  name TEXT PRIMARY KEY,"
    "  epoch INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL) WITHOUT ROWID;";

int kl_sq_fed_migrate(kl_storage_t *st)
{
    return kl_sq_map_rc(sqlite3_exec(st->db, FED_SCHEMA, NULL, NULL, NULL));
}

/* The outbox of the peer called name: 0, KL_ENOTFOUND when there is no
 * such peer, or a storage error. */
static int peer_outbox(kl_storage_t *st, const char *name, uint64_t *outbox)
{
    sqlite3_stmt *s = NULL;
    int r = kl_sq_prep(st, "SELECT outbox FROM fed_peers WHERE name = ?1", &s);
    if (r)
        return r;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *outbox = kl_sq_u64(sqlite3_column_int64(s, 0));
    r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KL_ENOTFOUND : kl_sq_map_rc(rc);
    sqlite3_finalize(s);
    return r;
}

int kl_storage_fed_peer_add(kl_storage_t *st, kl_storage_peer_t *p)
{
    sqlite3_stmt *s = NULL;
    uint64_t n = 0;
    int r = kl_sq_op_begin(st);
    if (r)
        return r;
    r = kl_sq_prep(st, "SELECT count(*) FROM fed_peers", &s);
    if (r == 0)
        r = kl_sq_count_query(s, &n);
    sqlite3_finalize(s);
    if (r == 0 && n >= KL_FED_MAX_PEERS)
        r = KL_ELIMIT;
    if (r == 0) {
        uint64_t outbox;
        r = peer_outbox(st, p->name, &outbox);
        r = r == 0 ? KL_EEXIST : r == KL_ENOTFOUND ? 0 : r;
    }
    if (r == 0)
        r = kl_sq_log_new(st, &p->outbox);
    if (r == 0)
        r = kl_sq_cursor_set(st, p->outbox, 0, 0); /* reader 0: the link */
    if (r)
        goto out;
    kl_random(&p->epoch, sizeof p->epoch);
    p->epoch &= INT64_MAX;
    p->epoch |= 1; /* never 0, which means "none" */
    r = kl_sq_prep(st, "INSERT INTO fed_peers(name, addr, key, outbox, epoch, max_entries, max_bytes,"
                 " rate) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", &s);
    if (r)
        goto out;
    sqlite3_bind_text(s, 1, p->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, p->addr, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, p->key, 32, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, kl_sq_i64(p->outbox));
    sqlite3_bind_int64(s, 5, kl_sq_i64(p->epoch));
    sqlite3_bind_int64(s, 6, kl_sq_i64(p->quota.max_entries));
    sqlite3_bind_int64(s, 7, kl_sq_i64(p->quota.max_bytes));
    sqlite3_bind_int64(s, 8, p->rate);
    r = kl_sq_exec_fin(s);
    if (r == 0)
        p->id = (uint64_t)sqlite3_last_insert_rowid(st->db);
out:
    return kl_sq_op_end(st, r);
}

int kl_storage_fed_peer_remove(kl_storage_t *st, const char *name)
{
    sqlite3_stmt *s = NULL;
    uint64_t outbox = 0;
    int r = kl_sq_op_begin(st);
    if (r)
        return r;
    r = peer_outbox(st, name, &outbox);
    static const char *const DEL[] = {
        "DELETE FROM fed_peers WHERE outbox = ?1",
        "DELETE FROM entries WHERE log = ?1",
        "DELETE FROM cursors WHERE log = ?1",
        "DELETE FROM logs WHERE id = ?1",
    };
    for (size_t i = 0; r == 0 && i < sizeof DEL / sizeof DEL[0]; i++) {
        r = kl_sq_prep(st, DEL[i], &s);
        if (r == 0) {
            sqlite3_bind_int64(s, 1, kl_sq_i64(outbox));
            r = kl_sq_exec_fin(s);
        }
    }
    return kl_sq_op_end(st, r);
}

int kl_storage_fed_peer_list(kl_storage_t *st, kl_storage_peer_t **out, size_t *n)
{
    sqlite3_stmt *s = NULL;
    kl_storage_peer_t *v = NULL;
    size_t k = 0;
    *out = NULL;
    *n = 0;
    int rc = sqlite3_prepare_v2(
        st->db,
        "SELECT p.id, p.name, p.addr, p.key, p.outbox, p.epoch, p.max_entries, p.max_bytes,"
        " p.rate, p.state, p.state_ms, coalesce(l.n_entries, 0), coalesce(l.n_bytes, 0)"
        " FROM fed_peers p LEFT JOIN logs l ON l.id = p.outbox ORDER BY p.name",
        -1, &s, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(s);
        /* No table yet (a read-only open of an older database): no peers. */
        return (rc & 0xff) == SQLITE_ERROR ? 0 : kl_sq_map_rc(rc);
    }
    v = calloc(KL_FED_MAX_PEERS, sizeof *v);
    if (v == NULL) {
        sqlite3_finalize(s);
        return KL_ENOMEM;
    }
    int r = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && k < KL_FED_MAX_PEERS) {
        kl_storage_peer_t *p = &v[k];
        const char *name = (const char *)sqlite3_column_text(s, 1);
        const char *addr = (const char *)sqlite3_column_text(s, 2);
        const char *state = (const char *)sqlite3_column_text(s, 9);
        if (name == NULL || addr == NULL || sqlite3_column_bytes(s, 3) != 32 ||
            strlen(name) > KL_RELAYNAME_MAX || strlen(addr) > KL_FED_HOSTPORT_MAX) {
            r = KL_EIO;
            break;
        }
        p->id = kl_sq_u64(sqlite3_column_int64(s, 0));
        memcpy(p->name, name, strlen(name) + 1);
        memcpy(p->addr, addr, strlen(addr) + 1);
        memcpy(p->key, sqlite3_column_blob(s, 3), 32);
        p->outbox = kl_sq_u64(sqlite3_column_int64(s, 4));
        p->epoch = kl_sq_u64(sqlite3_column_int64(s, 5));
        p->quota.max_entries = kl_sq_u64(sqlite3_column_int64(s, 6));
        p->quota.max_bytes = kl_sq_u64(sqlite3_column_int64(s, 7));
        p->rate = (uint32_t)sqlite3_column_int64(s, 8);
        snprintf(p->state, sizeof p->state, "%s", state ? state : "");
        p->state_ms = kl_sq_u64(sqlite3_column_int64(s, 10));
        p->depth = kl_sq_u64(sqlite3_column_int64(s, 11));
        p->depth_bytes = kl_sq_u64(sqlite3_column_int64(s, 12));
        k++;
    }
    if (r == 0 && rc != SQLITE_ROW)
        r = kl_sq_map_rc(rc);
    sqlite3_finalize(s);
    if (r) {
        free(v);
        return r;
    }
    *out = v;
    *n = k;
    return 0;
}

int kl_storage_fed_set_state(kl_storage_t *st, uint64_t peer, const char *state,
                             uint64_t now_ms)
{
    sqlite3_stmt *s = NULL;
    int r = kl_sq_prep(st, "UPDATE fed_peers SET state = ?2, state_ms = ?3 WHERE id = ?1", &s);
    if (r) {
        sqlite3_finalize(s);
        return r;
    }
    sqlite3_bind_int64(s, 1, kl_sq_i64(peer));
    sqlite3_bind_text(s, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, kl_sq_i64(now_ms));
    return kl_sq_exec_fin(s);
}

int kl_storage_fed_in_get(kl_storage_t *st, const char *name, uint64_t *epoch, uint64_t *seq)
{
    sqlite3_stmt *s = NULL;
    *epoch = *seq = 0;
    int r = kl_sq_prep(st, "SELECT epoch, seq FROM fed_inbound WHERE name = ?1", &s);
    if (r) {
        sqlite3_finalize(s);
        return r;
    }
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *epoch = kl_sq_u64(sqlite3_column_int64(s, 0));
        *seq = kl_sq_u64(sqlite3_column_int64(s, 1));
    }
    r = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : kl_sq_map_rc(rc);
    sqlite3_finalize(s);
    return r;
}

int kl_storage_fed_in_set(kl_storage_t *st, const char *name, uint64_t epoch, uint64_t seq)
{
    sqlite3_stmt *s = NULL;
    int r = kl_sq_prep(st, "INSERT INTO fed_inbound(name, epoch, seq) VALUES(?1, ?2, ?3)"
                     " ON CONFLICT(name) DO UPDATE SET epoch = excluded.epoch,"
                     " seq = excluded.seq", &s);
    if (r) {
        sqlite3_finalize(s);
        return r;
    }
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, kl_sq_i64(epoch));
    sqlite3_bind_int64(s, 3, kl_sq_i64(seq));
    return kl_sq_exec_fin(s);
}
