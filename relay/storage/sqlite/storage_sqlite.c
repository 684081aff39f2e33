/* relay/storage.h on sqlite: one database file in WAL mode, one connection
 * per kl_storage_t, every statement prepared once at open and reused. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kollega/err.h"
#include "sqlite_wal.h"
#include "storage_sqlite.h"

#define SCHEMA_VERSION 3

/* Entry counts and byte totals per log are kept in logs by triggers, so a
 * quota check is one row read instead of a scan, and no code path (append,
 * ack, expire) can forget to update them. Entries keep a rowid because their
 * bodies are large (up to 64 KiB): WITHOUT ROWID suits small rows only. */
static const char *SCHEMA =
    "CREATE TABLE IF NOT EXISTS meta("
    "  key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS logs("
    "  id INTEGER PRIMARY KEY,"
    "  last_seq INTEGER NOT NULL DEFAULT 0,"
    "  n_entries INTEGER NOT NULL DEFAULT 0,"
    "  n_bytes INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS users("
    "  id INTEGER PRIMARY KEY,"
    "  handle TEXT NOT NULL UNIQUE,"
    "  identity_key BLOB NOT NULL CHECK(length(identity_key) = 32),"
    "  inbox INTEGER NOT NULL REFERENCES logs(id),"
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS entries("
    "  id INTEGER PRIMARY KEY,"
    "  log INTEGER NOT NULL REFERENCES logs(id),"
    "  seq INTEGER NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  body BLOB NOT NULL,"
    "  UNIQUE(log, seq));"
    "CREATE INDEX IF NOT EXISTS entries_expires ON entries(expires_ms);"
    "CREATE TABLE IF NOT EXISTS cursors("
    "  log INTEGER NOT NULL REFERENCES logs(id),"
    "  reader INTEGER NOT NULL,"
    "  acked INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(log, reader)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS invites("
    "  code_hash BLOB PRIMARY KEY CHECK(length(code_hash) = 32),"
    "  uses_left INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS signed_prekeys("
    "  user INTEGER PRIMARY KEY REFERENCES users(id),"
    "  id INTEGER NOT NULL,"
    "  public_key BLOB NOT NULL CHECK(length(public_key) = 32),"
    "  signature BLOB NOT NULL CHECK(length(signature) = 64));"
    /* Unidentified delivery: SHA-256 of the user's delivery token. */
    "CREATE TABLE IF NOT EXISTS delivery_tokens("
    "  user INTEGER PRIMARY KEY REFERENCES users(id),"
    "  hash BLOB NOT NULL CHECK(length(hash) = 32));"
    "CREATE TABLE IF NOT EXISTS onetime_prekeys("
    "  rid INTEGER PRIMARY KEY,"
    "  user INTEGER NOT NULL REFERENCES users(id),"
    "  id INTEGER NOT NULL,"
    "  public_key BLOB NOT NULL CHECK(length(public_key) = 32),"
    "  UNIQUE(user, id));"
    /* Fetches that found no one-time prekey left since the user's last
     * upload of some (prekey_status tells the owner). */
    "CREATE TABLE IF NOT EXISTS prekey_runout("
    "  user INTEGER PRIMARY KEY REFERENCES users(id),"
    "  count INTEGER NOT NULL,"
    "  since_ms INTEGER NOT NULL);"
    /* ERFA groups: the row, its ops, and the membership derived from them
     * (state 1 member, 2 candidate, 3 former; user 0 = not a user here). */
    "CREATE TABLE IF NOT EXISTS groups("
    "  id INTEGER PRIMARY KEY,"
    "  address TEXT NOT NULL UNIQUE,"
    "  log INTEGER NOT NULL REFERENCES logs(id),"
    "  retention_days INTEGER NOT NULL DEFAULT 0,"
    "  next_index INTEGER NOT NULL DEFAULT 0,"
    "  head BLOB NOT NULL CHECK(length(head) = 32));"
    "CREATE TABLE IF NOT EXISTS group_ops("
    "  grp INTEGER NOT NULL REFERENCES groups(id),"
    "  idx INTEGER NOT NULL,"
    "  op BLOB NOT NULL,"
    "  PRIMARY KEY(grp, idx));"
    "CREATE TABLE IF NOT EXISTS group_members("
    "  grp INTEGER NOT NULL REFERENCES groups(id),"
    "  identity_key BLOB NOT NULL CHECK(length(identity_key) = 32),"
    "  user INTEGER NOT NULL DEFAULT 0,"
    "  state INTEGER NOT NULL,"
    "  role INTEGER NOT NULL DEFAULT 0,"
    "  join_seq INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(grp, identity_key)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS group_members_user ON group_members(user, grp);"
    /* Broadcast channels (storage_sqlite_channels.c): the row, its
     * publisher ops, and subscriptions (each with a cursor on the log). */
    "CREATE TABLE IF NOT EXISTS channels("
    "  id INTEGER PRIMARY KEY,"
    "  address TEXT NOT NULL UNIQUE,"
    "  log INTEGER NOT NULL REFERENCES logs(id),"
    "  next_index INTEGER NOT NULL DEFAULT 0,"
    "  head BLOB NOT NULL CHECK(length(head) = 32));"
    "CREATE TABLE IF NOT EXISTS channel_ops("
    "  chan INTEGER NOT NULL REFERENCES channels(id),"
    "  idx INTEGER NOT NULL,"
    "  op BLOB NOT NULL,"
    "  PRIMARY KEY(chan, idx));"
    "CREATE TABLE IF NOT EXISTS channel_subs("
    "  user INTEGER NOT NULL REFERENCES users(id),"
    "  chan INTEGER NOT NULL REFERENCES channels(id),"
    "  PRIMARY KEY(user, chan)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS channel_subs_chan ON channel_subs(chan, user);"
    /* Mirrors of other relays' channels (storage_cmirror.h). */
    "CREATE TABLE IF NOT EXISTS channel_mirrors("
    "  chan INTEGER PRIMARY KEY REFERENCES channels(id),"
    "  home_seq INTEGER NOT NULL DEFAULT 0,"
    "  active INTEGER NOT NULL DEFAULT 1);"
    /* The insert trigger also advances last_seq (version 3), so storing a
     * message is a read and an insert, without an update of its own. */
    "CREATE TRIGGER IF NOT EXISTS entries_ins AFTER INSERT ON entries BEGIN"
    "  UPDATE logs SET last_seq = max(last_seq, NEW.seq), n_entries = n_entries + 1,"
    "  n_bytes = n_bytes + length(NEW.body) WHERE id = NEW.log; END;"
    "CREATE TRIGGER IF NOT EXISTS entries_del AFTER DELETE ON entries BEGIN"
    "  UPDATE logs SET n_entries = n_entries - 1, n_bytes = n_bytes - length(OLD.body)"
    "  WHERE id = OLD.log; END;";


static const char *SQL[S_COUNT] = {
    [S_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [S_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2)"
                   " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [S_USER_GET] = "SELECT id, inbox, identity_key FROM users WHERE handle = ?1",
    /* Shadow users of remote group members (storage_gfed.h) are not users. */
    [S_USER_COUNT] = "SELECT count(*) FROM users WHERE instr(handle, '@') = 0",
    [S_USER_INSERT] = "INSERT INTO users(handle, identity_key, inbox, created_ms)"
                      " VALUES(?1, ?2, ?3, ?4)",
    [S_LOG_INSERT] = "INSERT INTO logs(last_seq) VALUES(0)",
    [S_INVITE_INSERT] = "INSERT INTO invites(code_hash, uses_left, expires_ms, created_ms)"
                        " VALUES(?1, ?2, ?3, ?4)",
    [S_INVITE_VALID] = "SELECT 1 FROM invites WHERE code_hash = ?1 AND uses_left > 0"
                       " AND expires_ms > ?2",
    [S_INVITE_CONSUME] = "UPDATE invites SET uses_left = uses_left - 1 WHERE code_hash = ?1"
                         " AND uses_left > 0 AND expires_ms > ?2",
    [S_SPK_SET] = "INSERT INTO signed_prekeys(user, id, public_key, signature)"
                  " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(user) DO UPDATE SET"
                  " id = excluded.id, public_key = excluded.public_key,"
                  " signature = excluded.signature",
    [S_SPK_GET] = "SELECT id, public_key, signature FROM signed_prekeys WHERE user = ?1",
    [S_OPK_ADD] = "INSERT OR REPLACE INTO onetime_prekeys(user, id, public_key)"
                  " VALUES(?1, ?2, ?3)",
    [S_OPK_COUNT] = "SELECT count(*) FROM onetime_prekeys WHERE user = ?1",
    [S_OPK_FIRST] = "SELECT rid, id, public_key FROM onetime_prekeys WHERE user = ?1"
                    " ORDER BY rid LIMIT 1",
    [S_OPK_DELETE] = "DELETE FROM onetime_prekeys WHERE rid = ?1",
    [S_RUNOUT_HIT] = "INSERT INTO prekey_runout(user, count, since_ms) VALUES(?1, 1, ?2)"
                     " ON CONFLICT(user) DO UPDATE SET count = count + 1",
    [S_RUNOUT_GET] = "SELECT count, since_ms FROM prekey_runout WHERE user = ?1",
    [S_RUNOUT_CLEAR] = "DELETE FROM prekey_runout WHERE user = ?1",
    [S_LOG_GET] = "SELECT last_seq, n_entries, n_bytes FROM logs WHERE id = ?1",
    [S_ENTRY_INSERT] = "INSERT INTO entries(log, seq, ts_ms, expires_ms, body)"
                       " VALUES(?1, ?2, ?3, ?4, ?5)",
    [S_ENTRY_READ] = "SELECT seq, ts_ms, body FROM entries WHERE log = ?1 AND seq > ?2"
                     " AND expires_ms > ?3 ORDER BY seq LIMIT ?4",
    [S_CURSOR_ADVANCE] = "UPDATE cursors SET acked = max(acked, min(?3,"
                         " (SELECT last_seq FROM logs WHERE id = ?1)))"
                         " WHERE log = ?1 AND reader = ?2",
    [S_ENTRY_DELETE_ACKED] = "DELETE FROM entries WHERE log = ?1 AND seq <="
                             " (SELECT min(acked) FROM cursors WHERE log = ?1)",
    [S_EXPIRE_ENTRIES] = "DELETE FROM entries WHERE id IN"
                         " (SELECT id FROM entries WHERE expires_ms <= ?1 LIMIT ?2)",
    [S_EXPIRE_MORE] = "SELECT 1 FROM entries WHERE expires_ms <= ?1 LIMIT 1",
    [S_EXPIRE_INVITES] = "DELETE FROM invites WHERE uses_left <= 0 OR expires_ms <= ?1",
    [S_STATS_ENTRIES] = "SELECT coalesce(sum(n_entries), 0), coalesce(sum(n_bytes), 0)"
                        " FROM logs",
    [S_STATS_INVITES] = "SELECT count(*) FROM invites WHERE uses_left > 0 AND expires_ms > ?1",
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_JOB_SAVE] = "SAVEPOINT job",
    [S_JOB_RELEASE] = "RELEASE job",
    [S_JOB_UNDO] = "ROLLBACK TO job",
    [S_OP_SAVE] = "SAVEPOINT op",
    [S_OP_RELEASE] = "RELEASE op",
    [S_OP_UNDO] = "ROLLBACK TO op",
    /* Group rows: the columns of a signed-op log first (kl_sq_oprow_fill),
     * then the group's own. */
    [S_GROUP_GET] = "SELECT g.id, g.log, g.next_index, g.head, l.last_seq, g.retention_days,"
                    " g.rekey_next FROM groups g JOIN logs l ON l.id = g.log"
                    " WHERE g.address = ?1",
    [S_GROUP_CALLER] = "SELECT g.id, g.log, g.next_index, g.head, l.last_seq, g.retention_days,"
                       " g.rekey_next, coalesce(m.state, 0), coalesce(m.join_seq, 0),"
                       " coalesce(m.exit_index, 0) FROM groups g JOIN logs l ON l.id = g.log"
                       " LEFT JOIN group_members m ON m.grp = g.id AND m.user = ?2"
                       " WHERE g.address = ?1"
                       /* A peer's shadow user may hold several keys in one
                        * group (a refused candidate under a fake key and the
                        * real member): its best standing decides. */
                       " ORDER BY m.state IS NULL, m.state LIMIT 1",
    [S_GROUP_INSERT] = "INSERT INTO groups(address, log, retention_days, next_index, head)"
                       " VALUES(?1, ?2, 0, 0, zeroblob(32))",
    [S_GROUP_HEAD] = "UPDATE groups SET next_index = ?2, head = ?3 WHERE id = ?1",
    [S_GROUP_RETENTION] = "UPDATE groups SET retention_days = ?2 WHERE id = ?1",
    [S_GOP_INSERT] = "INSERT INTO group_ops(grp, idx, op) VALUES(?1, ?2, ?3)",
    [S_GOP_READ] = "SELECT idx, op FROM group_ops WHERE grp = ?1 AND idx >= ?2"
                   " ORDER BY idx LIMIT ?3",
    [S_GMEM_CURRENT] = "SELECT identity_key, user, state, join_seq FROM group_members"
                       " WHERE grp = ?1 AND state IN (1, 2)",
    [S_GMEM_UPSERT] = "INSERT INTO group_members(grp, identity_key, user, state, role, join_seq)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(grp, identity_key) DO UPDATE"
                      " SET user = excluded.user, state = excluded.state,"
                      " role = excluded.role, join_seq = excluded.join_seq",
    [S_GMEM_SET_STATE] = "UPDATE group_members SET state = ?3, role = 0, exit_index = ?4"
                         " WHERE grp = ?1 AND identity_key = ?2",
    [S_GMEM_STATUS] = "SELECT state, join_seq FROM group_members WHERE user = ?2 AND grp = ?1"
                      " ORDER BY state LIMIT 1",
    [S_GMEM_USERS] = "SELECT user FROM group_members WHERE grp = ?1 AND user != 0"
                     " AND (state = 1 OR (?2 AND state = 2))",
    [S_GROUP_LIST] = "SELECT g.address, g.next_index, m.state, l.last_seq FROM group_members m"
                     " JOIN groups g ON g.id = m.grp JOIN logs l ON l.id = g.log"
                     " WHERE m.user = ?1 AND m.state IN (1, 2) ORDER BY g.address LIMIT ?2",
    [S_CURSOR_SET] = "INSERT OR REPLACE INTO cursors(log, reader, acked) VALUES(?1, ?2, ?3)",
    [S_CURSOR_DELETE] = "DELETE FROM cursors WHERE log = ?1 AND reader = ?2",
    [S_GROUP_NOTE] = "UPDATE groups SET creator = coalesce(?3, creator),"
                     " rekey_next = CASE WHEN ?4 THEN ?2 + 1 ELSE rekey_next END WHERE id = ?1",
    [S_GROUPS_CREATED] = "SELECT count(*) FROM groups WHERE creator = ?1",
    [S_GROUP_RETAIN] = "UPDATE entries SET expires_ms = ts_ms + ?2"
                       " WHERE log = ?1 AND expires_ms > ts_ms + ?2",
    [S_USER_ROUTE] = "SELECT id, inbox FROM users WHERE handle = ?1",
    [S_USER_MAX] = "SELECT coalesce(max(id), 0) FROM users",
    [S_SHADOW_HANDLE] = "SELECT handle FROM users WHERE id = ?1 AND instr(handle, '@') > 0",
    /* The channel named by ?1 (or, when ?1 is NULL, with id ?2), and the
     * cursor of user ?3's subscription to it (NULL when none). */
    [S_CHAN_CALLER] = "SELECT c.id, c.log, c.next_index, c.head, l.last_seq, k.acked"
                      " FROM channels c JOIN logs l ON l.id = c.log"
                      " LEFT JOIN channel_subs s ON s.chan = c.id AND s.user = ?3"
                      " LEFT JOIN cursors k ON k.log = c.log AND k.reader = s.user"
                      " WHERE (?1 IS NULL AND c.id = ?2) OR c.address = ?1",
    [S_CHAN_INSERT] = "INSERT INTO channels(address, log, next_index, head)"
                      " VALUES(?1, ?2, 0, zeroblob(32))",
    [S_CHAN_HEAD] = "UPDATE channels SET next_index = ?2, head = ?3 WHERE id = ?1",
    [S_COP_INSERT] = "INSERT INTO channel_ops(chan, idx, op) VALUES(?1, ?2, ?3)",
    [S_COP_READ] = "SELECT idx, op FROM channel_ops WHERE chan = ?1 AND idx >= ?2"
                   " ORDER BY idx LIMIT ?3",
    [S_CSUB_INSERT] = "INSERT INTO channel_subs(user, chan) VALUES(?1, ?2)",
    [S_CSUB_DELETE] = "DELETE FROM channel_subs WHERE user = ?1 AND chan = ?2",
    [S_CSUB_USERS] = "SELECT user FROM channel_subs WHERE chan = ?1",
    [S_CHAN_LIST] = "SELECT c.address, c.next_index, l.last_seq, coalesce(k.acked, 0)"
                    " FROM channel_subs s JOIN channels c ON c.id = s.chan"
                    " JOIN logs l ON l.id = c.log"
                    " LEFT JOIN cursors k ON k.log = c.log AND k.reader = s.user"
                    " WHERE s.user = ?1 ORDER BY c.address LIMIT ?2",
    [S_CHAN_BACKLOG] = "SELECT seq FROM entries WHERE log = ?1 AND expires_ms > ?2"
                       " ORDER BY seq DESC LIMIT 1 OFFSET ?3",
};


/* sqlite integers are signed 64-bit; wire values above that are clamped,
 * which for cursors and seqs means "everything". */
sqlite3_int64 kl_sq_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)v;
}

uint64_t kl_sq_u64(sqlite3_int64 v)
{
    return v < 0 ? 0 : (uint64_t)v;
}

/* Map a sqlite result code to the storage error space. Constraint
 * violations mean the caller broke an invariant the schema enforces. */
int kl_sq_map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_NOMEM:
        return KL_ENOMEM;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
        return KL_EINVAL;
    default:
        return KL_EIO;
    }
}

int kl_sq_grow(void *arrayp, size_t *cap, size_t len, size_t elem)
{
    void *v;
    if (len < *cap)
        return 0;
    /* arrayp is a T **: copied, not cast, so no T * is read as a void *. */
    memcpy(&v, arrayp, sizeof v);
    size_t n = *cap ? *cap * 2 : 8;
    void *nv = n > SIZE_MAX / elem ? NULL : realloc(v, n * elem);
    if (nv == NULL)
        return KL_ENOMEM;
    memcpy(arrayp, &nv, sizeof nv);
    *cap = n;
    return 0;
}

int kl_sq_prep(kl_storage_t *st, const char *sql, sqlite3_stmt **s)
{
    *s = NULL;
    return kl_sq_map_rc(sqlite3_prepare_v2(st->db, sql, -1, s, NULL));
}

int kl_sq_exec_fin(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    int r = kl_sq_map_rc(rc == SQLITE_ROW ? SQLITE_DONE : rc);
    sqlite3_finalize(s);
    return r;
}

/* Statements are reset right after use (and on every error path) so that
 * none holds a read transaction open across calls: an open reader would
 * stop WAL checkpoints and keep other processes' snapshots old. */
sqlite3_stmt *kl_sq_stmt(kl_storage_t *st, int which)
{
    sqlite3_stmt *s = st->stmt[which];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

int kl_sq_done(sqlite3_stmt *s, int rc)
{
    sqlite3_reset(s);
    return kl_sq_map_rc(rc);
}

/* Run a statement that returns no rows. */
int kl_sq_exec_stmt(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        rc = SQLITE_DONE;
    return kl_sq_done(s, rc);
}

int kl_sq_run(kl_storage_t *st, int which)
{
    if (which == S_ROLLBACK || which == S_JOB_UNDO || which == S_OP_UNDO)
        st->undo_gen++;
    return kl_sq_exec_stmt(kl_sq_stmt(st, which));
}

/* Every multi-statement operation runs inside its own savepoint, so it is
 * atomic whether or not the caller has opened a batch. */
int kl_sq_op_begin(kl_storage_t *st)
{
    return kl_sq_run(st, S_OP_SAVE);
}

int kl_sq_op_end(kl_storage_t *st, int r)
{
    if (r != 0)
        kl_sq_run(st, S_OP_UNDO);
    int r2 = kl_sq_run(st, S_OP_RELEASE);
    return r != 0 ? r : r2;
}

static int migrate(kl_storage_t *st)
{
    int r = kl_sq_map_rc(sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL));
    if (r)
        return r;
    sqlite3_stmt *v = NULL;
    int version = 0;
    r = kl_sq_map_rc(sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &v, NULL));
    if (r == 0 && sqlite3_step(v) == SQLITE_ROW)
        version = sqlite3_column_int(v, 0);
    sqlite3_finalize(v);
    if (r == 0 && version > SCHEMA_VERSION)
        r = KL_ESTATE; /* written by a newer relay: refuse rather than corrupt */
    /* Version 3 changed the body of the trigger entries_ins. */
    if (r == 0 && version < 3)
        r = kl_sq_map_rc(
            sqlite3_exec(st->db, "DROP TRIGGER IF EXISTS entries_ins", NULL, NULL, NULL));
    if (r == 0)
        r = kl_sq_map_rc(sqlite3_exec(st->db, SCHEMA, NULL, NULL, NULL));
    if (r == 0 && version < SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
        r = kl_sq_map_rc(sqlite3_exec(st->db, sql, NULL, NULL, NULL));
    }
    r = r ? r : kl_sq_map_rc(sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL));
    if (r)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

/* sqlite's wal hook (in place of its automatic checkpoint, which is this
 * hook with a fixed threshold): count the log's pages, checkpoint past
 * wal_ckpt_at. A checkpoint that cannot get its lock (another connection
 * is checkpointing) is skipped and tried after the next commit. */
static int on_wal_commit(void *ud, sqlite3 *db, const char *name, int frames)
{
    kl_storage_t *st = ud;
    st->wal_frames = frames;
    if (frames >= st->wal_ckpt_at)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

int kl_sqlite_wal_frames(const kl_storage_t *st)
{
    return st->wal_frames;
}

/* The maintenance connection: it only checkpoints, PASSIVE (it takes no
 * lock a commit needs). While it runs, st's own commits checkpoint only
 * past KL_SQLITE_WAL_HARD pages, when it is not keeping up (and, as it has
 * copied most pages already, briefly). */
struct kl_storage_maint {
    kl_storage_t *st; /* the writer whose threshold it raised */
    sqlite3 *db;
};

int kl_storage_maint_open(kl_storage_t *st, kl_storage_maint_t **out)
{
    *out = NULL;
    const char *path = sqlite3_db_filename(st->db, "main");
    if (st->readonly || path == NULL || path[0] == '\0')
        return KL_EIO;
    kl_storage_maint_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return KL_ENOMEM;
    int rc = sqlite3_open_v2(path, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(m->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_close(m->db);
        free(m);
        return KL_EIO;
    }
    m->st = st;
    st->wal_ckpt_at = KL_SQLITE_WAL_HARD;
    *out = m;
    return 0;
}

int kl_storage_maint_due(const kl_storage_t *st)
{
    return st->wal_frames >= KL_SQLITE_WAL_SOFT;
}

int kl_storage_maint_run(kl_storage_maint_t *m)
{
    int rc = sqlite3_wal_checkpoint_v2(m->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : KL_EIO;
}

void kl_storage_maint_close(kl_storage_maint_t *m)
{
    if (m == NULL)
        return;
    m->st->wal_ckpt_at = KL_SQLITE_WAL_SOFT;
    sqlite3_close(m->db);
    free(m);
}

int kl_storage_open(kl_storage_t **out, const char *path, int flags)
{
    int r = KL_ENOMEM;
    *out = NULL;
    /* sqlite counts every allocation under a global mutex unless told not
     * to; nothing here reads those counts, and on the storage thread the
     * lock and unlock were a tenth of the time. Only possible before
     * sqlite initialises (the first open of the process): later calls
     * fail harmlessly with SQLITE_MISUSE. */
    static int configured;
    if (!configured) {
        configured = 1;
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    }
    kl_storage_t *st = calloc(1, sizeof *st);
    if (st == NULL)
        return KL_ENOMEM;
    st->readonly = (flags & KL_STORAGE_READONLY) != 0;
    int oflags = st->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    if ((flags & KL_STORAGE_CREATE) && !st->readonly)
        oflags |= SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &st->db, oflags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        r = rc == SQLITE_CANTOPEN ? KL_ENOTFOUND : kl_sq_map_rc(rc);
        goto out;
    }
    sqlite3_extended_result_codes(st->db, 1);
    /* Private whatever the caller's umask: sqlite gives the WAL and shm
     * files the database file's mode. */
    if (!st->readonly)
        chmod(path, 0600);
    /* Another process (the admin CLI, or serve) may hold the write lock for
     * one group commit; wait for it rather than fail. */
    sqlite3_busy_timeout(st->db, 5000);
    st->wal_ckpt_at = KL_SQLITE_WAL_SOFT;
    if (!st->readonly)
        sqlite3_wal_hook(st->db, on_wal_commit, st);
    if (!st->readonly) {
        /* WAL lets `status` and `invite` run beside `serve`. secure_delete
         * overwrites deleted entries and invites instead of leaving them
         * in free pages of a seized disk. temp_store=MEMORY keeps the
         * sub-journal of each job's savepoint (the original of every page
         * the job changes, so that ROLLBACK TO can restore it) in memory:
         * by default it spills to a temporary file past 64 KiB, and from
         * then on every page a job touched cost a 4 KiB write(2), several
         * times the write-ahead log's own writes. The sub-journal is
         * truncated when a job's savepoint is released, so it holds one
         * job's pages at most; it plays no part in durability. */
        char pragmas[200];
        snprintf(pragmas, sizeof pragmas,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;"
                 " PRAGMA secure_delete=ON; PRAGMA temp_store=MEMORY;",
                 (flags & KL_STORAGE_SYNC_NORMAL) ? "NORMAL" : "FULL");
        r = kl_sq_map_rc(sqlite3_exec(st->db, pragmas, NULL, NULL, NULL));
        if (r)
            goto out;
        r = migrate(st);
        if (r == 0)
            r = kl_sq_fed_migrate(st); /* storage_sqlite_fed.c */
        if (r == 0)
            r = kl_sq_groups_migrate(st); /* storage_sqlite_groups.c */
        if (r == 0)
            r = kl_sq_admin_migrate(st); /* storage_sqlite_admin.c */
        if (r)
            goto out;
    } else {
        sqlite3_stmt *v = NULL;
        r = kl_sq_map_rc(sqlite3_prepare_v2(st->db, "SELECT 1 FROM meta LIMIT 1", -1, &v, NULL));
        sqlite3_finalize(v);
        if (r) {
            r = KL_ENOTFOUND; /* not a relay database (yet) */
            goto out;
        }
    }
    for (int i = 0; i < S_COUNT; i++) {
        if (st->readonly && i != S_META_GET && i != S_USER_GET && i != S_USER_COUNT &&
            i != S_STATS_ENTRIES && i != S_STATS_INVITES)
            continue;
        rc = sqlite3_prepare_v3(st->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
                                NULL);
        if (rc != SQLITE_OK) {
            r = kl_sq_map_rc(rc);
            goto out;
        }
    }
    *out = st;
    st = NULL;
    r = 0;
out:
    kl_storage_close(st);
    return r;
}

void kl_storage_close(kl_storage_t *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < KL_STORAGE_AUX_COUNT; i++)
        if (st->aux_free[i])
            st->aux_free[i](st->aux[i]);
    kl_sq_ucache_free(st);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db && !sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(st->db);
    free(st);
}

/* PRAGMA max_page_count is per connection and answers with the cap it
 * actually set (never below the current page count). */
int kl_storage_set_max_bytes(kl_storage_t *st, uint64_t max_bytes, uint64_t *effective)
{
    sqlite3_stmt *s = NULL;
    char sql[64];
    uint64_t page = 0, pages = 0;
    int r = kl_sq_map_rc(sqlite3_prepare_v2(st->db, "PRAGMA page_size", -1, &s, NULL));
    if (r == 0)
        r = kl_sq_count_query(s, &page);
    sqlite3_finalize(s);
    s = NULL;
    if (r == 0 && page == 0)
        r = KL_EIO;
    if (r)
        return r;
    uint64_t want = max_bytes / page;
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %llu",
             (unsigned long long)(want > 0 ? want : 1));
    r = kl_sq_map_rc(sqlite3_prepare_v2(st->db, sql, -1, &s, NULL));
    if (r == 0)
        r = kl_sq_count_query(s, &pages);
    sqlite3_finalize(s);
    if (r == 0 && effective)
        *effective = pages * page;
    return r;
}

int kl_storage_batch_begin(kl_storage_t *st)
{
    int r = kl_sq_run(st, S_BEGIN);
    if (r == 0 && kl_sq_users_mark(st) != 0) {
        kl_sq_run(st, S_ROLLBACK);
        r = KL_EIO;
    }
    return r;
}

int kl_storage_batch_commit(kl_storage_t *st)
{
    int r = kl_sq_run(st, S_COMMIT);
    /* A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY);
     * end it so that nothing of the batch survives. */
    if (r != 0) {
        if (!sqlite3_get_autocommit(st->db))
            kl_sq_run(st, S_ROLLBACK);
        return KL_EIO;
    }
    return 0;
}

void kl_storage_batch_rollback(kl_storage_t *st)
{
    if (!sqlite3_get_autocommit(st->db))
        kl_sq_run(st, S_ROLLBACK);
}

int kl_storage_batch_open(const kl_storage_t *st)
{
    return !sqlite3_get_autocommit(st->db);
}

int kl_storage_job_begin(kl_storage_t *st)
{
    int r = kl_sq_run(st, S_JOB_SAVE);
    st->in_job = r == 0;
    return r;
}

int kl_storage_job_end(kl_storage_t *st, int err)
{
    st->in_job = 0;
    if (err != 0)
        kl_sq_run(st, S_JOB_UNDO);
    return kl_sq_run(st, S_JOB_RELEASE);
}

int kl_storage_meta_get(kl_storage_t *st, const char *key, char *out, size_t cap)
{
    sqlite3_stmt *s = kl_sq_stmt(st, S_META_GET);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? (sqlite3_reset(s), KL_ENOTFOUND) : kl_sq_done(s, rc);
    const unsigned char *v = sqlite3_column_text(s, 0);
    size_t n = (size_t)sqlite3_column_bytes(s, 0);
    int r = 0;
    if (v == NULL)
        r = KL_ENOMEM;
    else if (n + 1 > cap)
        r = KL_ETOOBIG;
    else {
        memcpy(out, v, n);
        out[n] = '\0';
    }
    sqlite3_reset(s);
    return r;
}

int kl_storage_meta_set(kl_storage_t *st, const char *key, const char *value)
{
    if (strlen(value) > KL_STORAGE_META_MAX)
        return KL_ETOOBIG;
    sqlite3_stmt *s = kl_sq_stmt(st, S_META_SET);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    return kl_sq_exec_stmt(s);
}

int kl_storage_stats(kl_storage_t *st, uint64_t now_ms, kl_storage_stats_t *out)
{
    memset(out, 0, sizeof *out);
    int r = kl_storage_user_count(st, &out->users);
    if (r)
        return r;
    sqlite3_stmt *s = kl_sq_stmt(st, S_STATS_ENTRIES);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW)
        return kl_sq_done(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc);
    out->entries = kl_sq_u64(sqlite3_column_int64(s, 0));
    out->bytes = kl_sq_u64(sqlite3_column_int64(s, 1));
    sqlite3_reset(s);
    s = kl_sq_stmt(st, S_STATS_INVITES);
    sqlite3_bind_int64(s, 1, kl_sq_i64(now_ms));
    return kl_sq_count_query(s, &out->active_invites);
}

void kl_storage_set_aux(kl_storage_t *st, int slot, void *p, void (*free_fn)(void *))
{
    if (st->aux_free[slot] && st->aux[slot] != p)
        st->aux_free[slot](st->aux[slot]);
    st->aux[slot] = p;
    st->aux_free[slot] = free_fn;
}

void *kl_storage_aux(const kl_storage_t *st, int slot)
{
    return st->aux[slot];
}

uint64_t kl_storage_undo_gen(const kl_storage_t *st)
{
    return st->undo_gen;
}
