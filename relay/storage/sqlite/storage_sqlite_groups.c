/* relay/storage.h on sqlite: ERFA groups (the group row, its ops, the
 * membership derived from them, and the members' cursors on the group's
 * message log). The ops arrive validated: this file only stores them and
 * keeps the membership and cursors in step, in the op's own transaction. */
#include <stdlib.h>
#include <string.h>

#include "kollega/err.h"
#include "storage_sqlite.h"

/* Members plus candidates a group can have at once (kl_group's bounds). */
#define CURRENT_MAX (256 + 64)

/* A group row: the op-log columns 0-4 (kl_sq_oprow_fill), retention
 * days at 5 and rekey_next at 6. */
static int fill_group(sqlite3_stmt *s, void *e, void *ctx)
{
    kl_storage_group_t *out = e;
    kl_sq_oprow_t row;
    (void)ctx;
    int r = kl_sq_oprow_fill(s, &row);
    if (r)
        return r;
    out->id = row.id;
    out->log = row.log;
    out->next_index = row.next_index;
    memcpy(out->head, row.head, 32);
    out->last_seq = row.last_seq;
    sqlite3_int64 days = sqlite3_column_int64(s, 5);
    out->retention_days = days < 0 ? 0 : days > UINT32_MAX ? UINT32_MAX : (uint32_t)days;
    out->rekey_next = kl_sq_u64(sqlite3_column_int64(s, 6));
    return 0;
}

int kl_storage_group_caller(kl_storage_t *st, const char *address, uint64_t user,
                            kl_storage_group_t *out, kl_storage_gstatus_t *status)
{
    memset(status, 0, sizeof *status);
    sqlite3_stmt *s = kl_sq_stmt(st, S_GROUP_CALLER);
    sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, user == 0 ? -1 : kl_sq_i64(user));
    int r = kl_sq_row(s);
    if (r)
        return r;
    r = fill_group(s, out, NULL);
    status->state = sqlite3_column_int(s, 7);
    status->join_seq = kl_sq_u64(sqlite3_column_int64(s, 8));
    status->exit_index = kl_sq_u64(sqlite3_column_int64(s, 9));
    sqlite3_reset(s);
    return r;
}

int kl_storage_group_get(kl_storage_t *st, const char *address, kl_storage_group_t *out)
{
    return kl_sq_get(st, S_GROUP_GET, address, fill_group, out);
}

typedef struct current {
    uint8_t key[32];
    uint64_t user;
    int state;
    uint64_t join_seq;
    int seen;            /* still named after the op */
} current_t;

/* The members and candidates before the op. */
static int load_current(kl_storage_t *st, uint64_t grp, current_t *cur, size_t *n)
{
    sqlite3_stmt *s = kl_sq_stmt(st, S_GMEM_CURRENT);
    sqlite3_bind_int64(s, 1, kl_sq_i64(grp));
    *n = 0;
    for (;;) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW)
            return kl_sq_done(s, rc);
        if (*n == CURRENT_MAX || sqlite3_column_bytes(s, 0) != 32) {
            sqlite3_reset(s);
            return KL_EIO; /* more than kl_group allows: the table was edited */
        }
        current_t *c = &cur[(*n)++];
        memcpy(c->key, sqlite3_column_blob(s, 0), 32);
        c->user = kl_sq_u64(sqlite3_column_int64(s, 1));
        c->state = sqlite3_column_int(s, 2);
        c->join_seq = kl_sq_u64(sqlite3_column_int64(s, 3));
        c->seen = 0;
    }
    sqlite3_reset(s);
    return 0;
}

/* Rewrite the membership to members[0..n) and move cursors with it: a
 * local member keeps its cursor (and its join seq) while it stays a member
 * under the same user id, gets a new one at the log's last seq when it
 * becomes one, and loses it when it stops being one. Whoever stops being
 * named becomes FORMER with the op's index (g->next_index - 1) as its exit
 * index: group_fetch serves a former member the ops up to that one. */
static int sync_members(kl_storage_t *st, const kl_storage_group_t *g,
                        const kl_storage_gmember_t *m, size_t n)
{
    current_t *cur = calloc(CURRENT_MAX, sizeof *cur);
    size_t nc = 0;
    if (cur == NULL)
        return KL_ENOMEM;
    int r = load_current(st, g->id, cur, &nc);
    for (size_t i = 0; i < n && r == 0; i++) {
        current_t *old = NULL;
        for (size_t j = 0; j < nc; j++) {
            if (memcmp(cur[j].key, m[i].identity_key, 32) == 0) {
                old = &cur[j];
                old->seen = 1;
                break;
            }
        }
        int had = old && old->state == KL_GSTATE_MEMBER && old->user != 0;
        int needs = m[i].state == KL_GSTATE_MEMBER && m[i].user != 0;
        int keep = had && needs && old->user == m[i].user;
        uint64_t join = keep ? old->join_seq : g->last_seq;
        if (had && !keep)
            r = kl_sq_cursor_drop(st, g->log, old->user);
        if (r == 0 && needs && !keep)
            r = kl_sq_cursor_set(st, g->log, m[i].user, g->last_seq);
        if (r)
            break;
        sqlite3_stmt *s = kl_sq_stmt(st, S_GMEM_UPSERT);
        sqlite3_bind_int64(s, 1, kl_sq_i64(g->id));
        sqlite3_bind_blob(s, 2, m[i].identity_key, 32, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, kl_sq_i64(m[i].user));
        sqlite3_bind_int(s, 4, m[i].state);
        sqlite3_bind_int(s, 5, m[i].state == KL_GSTATE_MEMBER ? m[i].role : 0);
        sqlite3_bind_int64(s, 6, kl_sq_i64(join));
        r = kl_sq_exec_stmt(s);
    }
    for (size_t j = 0; j < nc && r == 0; j++) {
        if (cur[j].seen)
            continue;
        if (cur[j].state == KL_GSTATE_MEMBER && cur[j].user != 0)
            r = kl_sq_cursor_drop(st, g->log, cur[j].user);
        if (r)
            break;
        sqlite3_stmt *s = kl_sq_stmt(st, S_GMEM_SET_STATE);
        sqlite3_bind_int64(s, 1, kl_sq_i64(g->id));
        sqlite3_bind_blob(s, 2, cur[j].key, 32, SQLITE_STATIC);
        sqlite3_bind_int(s, 3, KL_GSTATE_FORMER);
        sqlite3_bind_int64(s, 4, kl_sq_i64(g->next_index - 1));
        r = kl_sq_exec_stmt(s);
    }
    /* A member that left may have been the last one holding entries back. */
    if (r == 0)
        r = kl_sq_log_trim(st, g->log);
    free(cur);
    return r;
}

/* What a group op changes besides its log (kl_sq_oplog_then_fn). */
typedef struct after_op {
    const char *address;
    uint32_t retention_days;
    const kl_storage_gmember_t *members;
    size_t n;
    kl_storage_group_t *g;
} after_op_t;

static int after_op(kl_storage_t *st, const kl_sq_oprow_t *row, void *ctx)
{
    after_op_t *a = ctx;
    sqlite3_stmt *s = kl_sq_stmt(st, S_GROUP_RETENTION);
    sqlite3_bind_int64(s, 1, kl_sq_i64(row->id));
    sqlite3_bind_int64(s, 2, a->retention_days);
    int r = kl_sq_exec_stmt(s);
    if (r == 0)
        r = kl_storage_group_get(st, a->address, a->g);
    return r ? r : sync_members(st, a->g, a->members, a->n);
}

int kl_storage_group_append_op(kl_storage_t *st, const char *address, uint64_t index,
                               const uint8_t *op, size_t len, const uint8_t head[32],
                               uint32_t retention_days, const kl_storage_gmember_t *members,
                               size_t n, kl_storage_group_t *out)
{
    kl_storage_group_t g;
    after_op_t a = {address, retention_days, members, n, &g};
    if (n > CURRENT_MAX)
        return KL_EINVAL;
    int r = kl_sq_oplog_append(st, &KL_SQ_GROUP_LOG, address, index, op, len, head, after_op,
                               &a, NULL);
    if (r == 0 && out)
        *out = g;
    return r;
}

int kl_storage_group_ops(kl_storage_t *st, uint64_t group, uint64_t from, uint32_t limit,
                         size_t max_bytes, kl_storage_entry_t **out, size_t *n, int *more)
{
    return kl_sq_oplog_read(st, &KL_SQ_GROUP_LOG, group, from, limit, max_bytes, out, n, more);
}

int kl_storage_group_status(kl_storage_t *st, uint64_t group, uint64_t user,
                            kl_storage_gstatus_t *out)
{
    memset(out, 0, sizeof *out);
    if (user == 0)
        return 0;
    sqlite3_stmt *s = kl_sq_stmt(st, S_GMEM_STATUS);
    sqlite3_bind_int64(s, 1, kl_sq_i64(group));
    sqlite3_bind_int64(s, 2, kl_sq_i64(user));
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->state = sqlite3_column_int(s, 0);
        out->join_seq = kl_sq_u64(sqlite3_column_int64(s, 1));
        rc = SQLITE_DONE;
    }
    return kl_sq_done(s, rc);
}

int kl_storage_group_users(kl_storage_t *st, uint64_t group, int candidates, uint64_t **users,
                           size_t *n)
{
    sqlite3_stmt *s = kl_sq_stmt(st, S_GMEM_USERS);
    sqlite3_bind_int64(s, 1, kl_sq_i64(group));
    sqlite3_bind_int(s, 2, candidates ? 1 : 0);
    return kl_sq_ids(s, CURRENT_MAX, users, n);
}

static int fill_ginfo(sqlite3_stmt *s, void *e, void *ctx)
{
    kl_storage_ginfo_t *g = e;
    (void)ctx;
    int r = kl_sq_text(s, 0, g->address, sizeof g->address);
    g->next_index = kl_sq_u64(sqlite3_column_int64(s, 1));
    g->member = sqlite3_column_int(s, 2) == KL_GSTATE_MEMBER;
    g->last_seq = kl_sq_u64(sqlite3_column_int64(s, 3));
    return r;
}

int kl_storage_group_list(kl_storage_t *st, uint64_t user, kl_storage_ginfo_t **out, size_t *n)
{
    sqlite3_stmt *s = kl_sq_stmt(st, S_GROUP_LIST);
    sqlite3_bind_int64(s, 1, kl_sq_i64(user));
    sqlite3_bind_int(s, 2, KL_STORAGE_MAX_GROUPS_LISTED);
    return kl_sq_rows(s, sizeof **out, 0, fill_ginfo, NULL, out, n);
}

int kl_storage_group_note_op(kl_storage_t *st, uint64_t group, uint64_t index,
                             const uint8_t *creator, int epoch_changed)
{
    sqlite3_stmt *s = kl_sq_stmt(st, S_GROUP_NOTE);
    sqlite3_bind_int64(s, 1, kl_sq_i64(group));
    sqlite3_bind_int64(s, 2, kl_sq_i64(index));
    if (creator)
        sqlite3_bind_blob(s, 3, creator, 32, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 3);
    sqlite3_bind_int(s, 4, epoch_changed ? 1 : 0);
    return kl_sq_exec_stmt(s);
}

int kl_storage_groups_created(kl_storage_t *st, const uint8_t key[32], uint64_t *n)
{
    sqlite3_stmt *s = kl_sq_stmt(st, S_GROUPS_CREATED);
    sqlite3_bind_blob(s, 1, key, 32, SQLITE_STATIC);
    return kl_sq_count_query(s, n);
}

int kl_storage_group_retain(kl_storage_t *st, uint64_t log, uint32_t days)
{
    if (days == 0)
        return 0;
    sqlite3_stmt *s = kl_sq_stmt(st, S_GROUP_RETAIN);
    sqlite3_bind_int64(s, 1, kl_sq_i64(log));
    sqlite3_bind_int64(s, 2, (sqlite3_int64)days * 86400000);
    return kl_sq_exec_stmt(s);
}

/* Columns added after the group tables first shipped: ALTER TABLE for a
 * database that lacks them (a fresh one gets them here too, right after
 * SCHEMA created the tables). Check and change run in one write
 * transaction, so two processes opening the file at once cannot both add
 * a column. Rows from before get the defaults: no creator (not counted by
 * kl_storage_groups_created), no epoch change known, exit index 0. */
static const char *const ADDED[][3] = {
    {"groups", "creator", "ALTER TABLE groups ADD COLUMN creator BLOB"},
    {"groups", "rekey_next",
     "ALTER TABLE groups ADD COLUMN rekey_next INTEGER NOT NULL DEFAULT 0"},
    {"group_members", "exit_index",
     "ALTER TABLE group_members ADD COLUMN exit_index INTEGER NOT NULL DEFAULT 0"},
};

int kl_sq_groups_migrate(kl_storage_t *st)
{
    int r = kl_sq_map_rc(sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL));
    for (size_t i = 0; r == 0 && i < sizeof ADDED / sizeof ADDED[0]; i++) {
        sqlite3_stmt *s = NULL;
        uint64_t has = 0;
        r = kl_sq_map_rc(sqlite3_prepare_v2(
            st->db, "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2", -1, &s, NULL));
        if (r == 0) {
            sqlite3_bind_text(s, 1, ADDED[i][0], -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, ADDED[i][1], -1, SQLITE_STATIC);
            r = kl_sq_count_query(s, &has);
        }
        sqlite3_finalize(s);
        if (r == 0 && has == 0)
            r = kl_sq_map_rc(sqlite3_exec(st->db, ADDED[i][2], NULL, NULL, NULL));
    }
    if (r == 0)
        r = kl_sq_map_rc(sqlite3_exec(
            st->db, "CREATE INDEX IF NOT EXISTS groups_creator ON groups(creator)", NULL, NULL,
            NULL));
    if (r == 0)
        return kl_sq_map_rc(sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL));
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}
