/* relay/storage_cmirror.h on sqlite. Statements prepared per call: mirrors
 * change at a subscription or a sync round, not per message of a local
 * user. A mirror's channel row is made as every channel's is
 * (storage_sqlite_oplog.c). */
#include <stdio.h>
#include <string.h>

#include "kollega/addr.h"
#include "kollega/err.h"
#include "storage/storage_cmirror.h"
#include "storage_sqlite.h"

/* Most names one list returns. */
#define LIST_MAX 4096

int kl_storage_cmirror_get(kl_storage_t *st, const char *address, kl_storage_cmirror_t *out)
{
    sqlite3_stmt *s;
    memset(out, 0, sizeof *out);
    int r = kl_storage_channel_get(st, address, &out->chan);
    if (r)
        return r;
    r = kl_sq_prep(st,
             "SELECT m.home_seq, m.active,"
             " (SELECT count(*) FROM channel_subs s WHERE s.chan = m.chan)"
             " FROM channel_mirrors m WHERE m.chan = ?1",
             &s);
    if (r)
        return r;
    sqlite3_bind_int64(s, 1, kl_sq_i64(out->chan.id));
    r = kl_sq_row(s);
    if (r == 0) {
        out->home_seq = kl_sq_u64(sqlite3_column_int64(s, 0));
        out->active = sqlite3_column_int(s, 1) != 0;
        out->n_subs = kl_sq_u64(sqlite3_column_int64(s, 2));
    }
    sqlite3_finalize(s);
    return r;
}

int kl_storage_cmirror_set(kl_storage_t *st, uint64_t chan, uint64_t home_seq, int active)
{
    sqlite3_stmt *s;
    int r = kl_sq_prep(st, "UPDATE channel_mirrors SET home_seq = ?2, active = ?3 WHERE chan = ?1",
                 &s);
    if (r)
        return r;
    sqlite3_bind_int64(s, 1, kl_sq_i64(chan));
    sqlite3_bind_int64(s, 2, kl_sq_i64(home_seq));
    sqlite3_bind_int(s, 3, active ? 1 : 0);
    return kl_sq_exec_fin(s);
}

int kl_storage_cmirror_ensure(kl_storage_t *st, const char *address, kl_storage_channel_t *out)
{
    kl_storage_cmirror_t m;
    kl_sq_oprow_t row;
    sqlite3_stmt *s;
    int r = kl_sq_op_begin(st);
    if (r)
        return r;
    r = kl_storage_cmirror_get(st, address, &m);
    if (r == 0) {
        r = m.active ? 0 : kl_storage_cmirror_set(st, m.chan.id, m.home_seq, 1);
        *out = m.chan;
        return kl_sq_op_end(st, r);
    }
    if (r == KL_ENOTFOUND && m.chan.id != 0)
        return kl_sq_op_end(st, KL_EEXIST); /* a channel of ours */
    if (r == KL_ENOTFOUND)
        r = kl_sq_oprow_create(st, &KL_SQ_CHANNEL_LOG, address, &row);
    if (r == 0)
        r = kl_sq_prep(st, "INSERT INTO channel_mirrors(chan, home_seq, active) VALUES(?1, 0, 1)", &s);
    if (r == 0) {
        sqlite3_bind_int64(s, 1, kl_sq_i64(row.id));
        r = kl_sq_exec_fin(s);
    }
    if (r == 0)
        r = kl_storage_channel_get(st, address, out);
    return kl_sq_op_end(st, r);
}

/* Collect column 0 of every row (text, sliced from position skip) as
 * NUL-separated names, at most LIST_MAX. s is finalized. */
static int collect(sqlite3_stmt *s, size_t skip, char **out, size_t *len, size_t *count)
{
    kl_sq_names_t nm = {0};
    int r = 0;
    while (nm.n < LIST_MAX && r == 0 && kl_sq_next(s, &r)) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        size_t tl = t ? strlen(t) : 0;
        if (tl > skip)
            r = kl_sq_names_add(&nm, t + skip, tl - skip);
    }
    sqlite3_finalize(s);
    return kl_sq_names_end(&nm, r, out, len, count);
}

/* The active mirrors of channels of relay ?1: the address ends in
 * "@relay" (channel names have no '@'; '=' is exact, unlike LIKE). */
#define MIRRORS_OF_RELAY                                                       \
    " FROM channel_mirrors m JOIN channels c ON c.id = m.chan"                 \
    " WHERE m.active AND substr(c.address, -length(?1) - 1) = '@' || ?1"

int kl_storage_cmirror_list(kl_storage_t *st, const char *relay, char **out, size_t *len,
                            size_t *count)
{
    sqlite3_stmt *s;
    int r = kl_sq_prep(st, "SELECT c.address" MIRRORS_OF_RELAY, &s);
    if (r)
        return r;
    sqlite3_bind_text(s, 1, relay, -1, SQLITE_STATIC);
    return collect(s, 0, out, len, count);
}

int kl_storage_channel_relays(kl_storage_t *st, uint64_t chan, char **out, size_t *len,
                              size_t *count)
{
    sqlite3_stmt *s;
    /* Shadow users of peer relays are the only handles starting with '@'
     * ('@' < handle < 'A'): a range scan of the handle index. */
    int r = kl_sq_prep(st,
                 "SELECT u.handle FROM users u JOIN channel_subs s ON s.user = u.id AND"
                 " s.chan = ?1 WHERE u.handle >= '@' AND u.handle < 'A'",
                 &s);
    if (r)
        return r;
    sqlite3_bind_int64(s, 1, kl_sq_i64(chan));
    return collect(s, 1, out, len, count);
}

int kl_storage_cmirror_stats(kl_storage_t *st, const char *relay, uint64_t *mirrors,
                             uint64_t *mirrored, uint64_t *lag)
{
    sqlite3_stmt *s;
    char shadow[KL_RELAYNAME_MAX + 2];
    *mirrors = *mirrored = *lag = 0;
    /* No such table (a read-only open of an older database): zeros. */
    if (kl_sq_prep(st, "SELECT count(*)" MIRRORS_OF_RELAY, &s) != 0)
        return 0;
    sqlite3_bind_text(s, 1, relay, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW)
        *mirrors = kl_sq_u64(sqlite3_column_int64(s, 0));
    sqlite3_finalize(s);
    snprintf(shadow, sizeof shadow, "@%s", relay);
    int r = kl_sq_prep(st,
                   "SELECT count(*), coalesce(sum(max(l.last_seq - coalesce(k.acked, 0), 0)), 0)"
                   " FROM users u JOIN channel_subs s ON s.user = u.id"
                   " JOIN channels c ON c.id = s.chan JOIN logs l ON l.id = c.log"
                   " LEFT JOIN cursors k ON k.log = c.log AND k.reader = u.id"
                   " WHERE u.handle = ?1",
                   &s);
    if (r)
        return 0; /* no channel tables: nothing mirrored */
    sqlite3_bind_text(s, 1, shadow, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        *mirrored = kl_sq_u64(sqlite3_column_int64(s, 0));
        *lag = kl_sq_u64(sqlite3_column_int64(s, 1));
    }
    sqlite3_finalize(s);
    return 0;
}
