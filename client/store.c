/* The client's encrypted sqlite store: file creation, the wrapped store key,
 * transactions, sealing, settings and named secrets. See store.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "store_int.h"

#define FORMAT_VERSION 1

/* The schema. Sealed columns are called box (nonce || ciphertext). Message
 * metadata needed for queries (peer, direction, times) is in the clear;
 * the text is sealed with a label binding it to that metadata. */
static const char SCHEMA[] =
    "CREATE TABLE meta(k TEXT PRIMARY KEY, v BLOB NOT NULL);"
    "CREATE TABLE config(k TEXT PRIMARY KEY, v NOT NULL);"
    "CREATE TABLE secrets(name TEXT PRIMARY KEY, box BLOB NOT NULL);"
    "CREATE TABLE prekeys(id INTEGER NOT NULL, kind INTEGER NOT NULL, pub BLOB NOT NULL,"
    " created_at INTEGER NOT NULL, box BLOB NOT NULL, PRIMARY KEY(kind, id));"
    "CREATE TABLE sessions(peer TEXT PRIMARY KEY, updated_at INTEGER NOT NULL,"
    " box BLOB NOT NULL);"
    "CREATE TABLE contacts(address TEXT PRIMARY KEY, added_at INTEGER NOT NULL,"
    " box BLOB NOT NULL);"
    "CREATE TABLE messages(n INTEGER PRIMARY KEY, peer TEXT NOT NULL,"
    " outgoing INTEGER NOT NULL, msg_id BLOB NOT NULL, sent_at INTEGER NOT NULL,"
    " stored_at INTEGER NOT NULL, seq INTEGER NOT NULL, box BLOB NOT NULL,"
    " sender TEXT, UNIQUE(peer, outgoing, msg_id));"
    "CREATE INDEX messages_by_peer ON messages(peer, n);"
    "CREATE TABLE held(seq INTEGER PRIMARY KEY, sender TEXT NOT NULL,"
    " sender_key BLOB NOT NULL, received_at INTEGER NOT NULL, box BLOB NOT NULL);"
    "CREATE TABLE failures(seq INTEGER PRIMARY KEY, at INTEGER NOT NULL,"
    " reason TEXT NOT NULL);";

int kl_store_label(char *out, size_t cap, const char *table, const char *row)
{
    int n = snprintf(out, cap, "kollega-store-v1|%s|%s", table, row);
    if (n < 0 || (size_t)n >= cap)
        return KL_ETOOBIG;
    return 0;
}

int kl_store_prepare(kl_store_t *st, const char *sql, sqlite3_stmt **stmt)
{
    *stmt = NULL;
    return sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL) == SQLITE_OK ? 0 : KL_EIO;
}

static int bind(sqlite3_stmt *s, int i, const kl_sql_arg_t *a)
{
    if (a->type == KL_SQL_INT)
        return sqlite3_bind_int64(s, i, a->num);
    if (a->type == KL_SQL_TEXT && a->text)
        return sqlite3_bind_text(s, i, a->text, -1, SQLITE_STATIC);
    if (a->type == KL_SQL_BLOB && a->blob)
        return sqlite3_bind_blob(s, i, a->blob, (int)a->len, SQLITE_STATIC);
    return sqlite3_bind_null(s, i);
}

int kl_store_query(kl_store_t *st, sqlite3_stmt **stmt, const char *sql, const kl_sql_arg_t *args,
                   size_t n)
{
    int r = kl_store_prepare(st, sql, stmt);
    for (size_t i = 0; r == 0 && i < n; i++)
        if (bind(*stmt, (int)i + 1, &args[i]) != SQLITE_OK)
            r = KL_EIO;
    if (r && *stmt) {
        sqlite3_finalize(*stmt);
        *stmt = NULL;
    }
    return r;
}

int kl_store_first(kl_store_t *st, sqlite3_stmt **stmt, const char *sql, const kl_sql_arg_t *args,
                   size_t n)
{
    int r = kl_store_query(st, stmt, sql, args, n);
    if (r)
        return r;
    int rc = sqlite3_step(*stmt);
    if (rc == SQLITE_ROW)
        return 0;
    sqlite3_finalize(*stmt);
    *stmt = NULL;
    return rc == SQLITE_DONE ? KL_ENOTFOUND : KL_EIO;
}

int kl_store_run(kl_store_t *st, const char *sql, const kl_sql_arg_t *args, size_t n)
{
    sqlite3_stmt *s;
    int r = kl_store_query(st, &s, sql, args, n);
    return r ? r : kl_store_exec_stmt(s);
}

int kl_store_run_changes(kl_store_t *st, uint64_t *changes, const char *sql,
                         const kl_sql_arg_t *args, size_t n)
{
    sqlite3_stmt *s;
    int r = kl_store_query(st, &s, sql, args, n);
    return r ? r : kl_store_exec_changes(st, s, changes);
}

int kl_store_exists(kl_store_t *st, int *found, const char *sql, const kl_sql_arg_t *args,
                    size_t n)
{
    sqlite3_stmt *s;
    *found = 0;
    int r = kl_store_query(st, &s, sql, args, n);
    return r ? r : kl_store_step_exists(s, found);
}

int kl_store_int(kl_store_t *st, uint64_t *v, const char *sql, const kl_sql_arg_t *args,
                 size_t n)
{
    sqlite3_stmt *s;
    int r = kl_store_first(st, &s, sql, args, n);
    if (r)
        return r == KL_ENOTFOUND ? KL_EIO : r;
    *v = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return 0;
}

int kl_store_done(sqlite3_stmt *stmt, int r, int rc)
{
    sqlite3_finalize(stmt);
    return r == 0 && rc != SQLITE_DONE ? KL_EIO : r;
}

int kl_store_exec_stmt(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    return (rc & 0xff) == SQLITE_CONSTRAINT ? KL_EEXIST : KL_EIO;
}

static int exec(kl_store_t *st, const char *sql)
{
    return sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : KL_EIO;
}

int kl_store_seal(const kl_store_t *st, const char *label, const uint8_t *pt, size_t len,
                  uint8_t **box, size_t *boxlen)
{
    *box = NULL;
    *boxlen = 0;
    if (len > SIZE_MAX - KL_AEAD_NONCE - KL_AEAD_TAG)
        return KL_ETOOBIG;
    size_t n = KL_AEAD_NONCE + len + KL_AEAD_TAG;
    uint8_t *b = malloc(n);
    if (b == NULL)
        return KL_ENOMEM;
    kl_random(b, KL_AEAD_NONCE);
    int r = kl_aead_seal(st->key, b, (const uint8_t *)label, strlen(label), pt, len,
                         b + KL_AEAD_NONCE);
    if (r) {
        free(b);
        return r;
    }
    *box = b;
    *boxlen = n;
    return 0;
}

int kl_store_unseal(const kl_store_t *st, const char *label, const uint8_t *box, size_t boxlen,
                    uint8_t **pt, size_t *len)
{
    *pt = NULL;
    *len = 0;
    if (boxlen < KL_AEAD_NONCE + KL_AEAD_TAG)
        return KL_ECRYPTO;
    size_t n = boxlen - KL_AEAD_NONCE - KL_AEAD_TAG;
    uint8_t *p = malloc(n ? n : 1);
    if (p == NULL)
        return KL_ENOMEM;
    int r = kl_aead_open(st->key, box, (const uint8_t *)label, strlen(label),
                         box + KL_AEAD_NONCE, boxlen - KL_AEAD_NONCE, p);
    if (r) {
        kl_free_wipe(p, n ? n : 1);
        return KL_ECRYPTO;
    }
    *pt = p;
    *len = n;
    return 0;
}

int kl_store_bind_sealed(kl_store_t *st, sqlite3_stmt *stmt, int idx, const char *label,
                         const uint8_t *pt, size_t len)
{
    uint8_t *box;
    size_t boxlen;
    int r = kl_store_seal(st, label, pt, len, &box, &boxlen);
    if (r)
        return r;
    r = sqlite3_bind_blob(stmt, idx, box, (int)boxlen, SQLITE_TRANSIENT) == SQLITE_OK ? 0 : KL_EIO;
    free(box);
    return r;
}

int kl_store_column_unseal(kl_store_t *st, sqlite3_stmt *stmt, int col, const char *label,
                           uint8_t **pt, size_t *len)
{
    const uint8_t *box = sqlite3_column_blob(stmt, col);
    int n = sqlite3_column_bytes(stmt, col);
    if (box == NULL || n <= 0)
        return KL_ECRYPTO;
    return kl_store_unseal(st, label, box, (size_t)n, pt, len);
}

int kl_store_column_open(kl_store_t *st, sqlite3_stmt *stmt, int col, const char *label,
                         uint8_t *out, size_t len)
{
    uint8_t *pt = NULL;
    size_t n = 0;
    int r = kl_store_column_unseal(st, stmt, col, label, &pt, &n);
    if (r == 0 && n != len)
        r = KL_EPROTO;
    if (r == 0)
        memcpy(out, pt, len);
    kl_free_wipe(pt, n);
    return r;
}

int kl_store_column_text(sqlite3_stmt *s, int col, char *out, size_t cap)
{
    const unsigned char *p = sqlite3_column_text(s, col);
    int n = sqlite3_column_bytes(s, col);
    if (p == NULL || n <= 0 || (size_t)n >= cap)
        return KL_EPROTO;
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    return 0;
}

int kl_store_exec_sealed(kl_store_t *st, sqlite3_stmt *stmt, int idx, const char *label,
                         const uint8_t *pt, size_t len)
{
    int r = kl_store_bind_sealed(st, stmt, idx, label, pt, len);
    if (r) {
        sqlite3_finalize(stmt);
        return r;
    }
    return kl_store_exec_stmt(stmt);
}

int kl_store_exec_changes(kl_store_t *st, sqlite3_stmt *stmt, uint64_t *changes)
{
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return KL_EIO;
    *changes = (uint64_t)sqlite3_changes(st->db);
    return 0;
}

int kl_store_step_exists(sqlite3_stmt *stmt, int *found)
{
    int rc = sqlite3_step(stmt);
    *found = rc == SQLITE_ROW;
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : KL_EIO;
}

int kl_store_row_label(char *out, size_t cap, const char *table, const char *key,
                       uint64_t idx)
{
    char row[KL_ADDR_MAX + 128];
    int n = snprintf(row, sizeof row, "%s|%llu", key, (unsigned long long)idx);
    if (n < 0 || (size_t)n >= sizeof row)
        return KL_ETOOBIG;
    return kl_store_label(out, cap, table, row);
}

int kl_store_log_put(kl_store_t *st, const char *sql, const char *table, const char *key,
                     uint64_t idx, const uint8_t *op, size_t len)
{
    char label[KL_ADDR_MAX + 200];
    sqlite3_stmt *s;
    int r = kl_store_row_label(label, sizeof label, table, key, idx);
    if (r || (r = kl_store_query(st, &s, sql, KL_ARGS(KL_TEXT(key), KL_INT(idx)))))
        return r;
    return kl_store_exec_sealed(st, s, 3, label, op, len);
}

int kl_store_sealed_each(kl_store_t *st, const char *sql, const kl_sql_arg_t *args, size_t n,
                         const kl_store_sealed_rows_t *how, void *ctx)
{
    char label[2 * KL_ADDR_MAX + 256];
    sqlite3_stmt *s;
    int rc, r = kl_store_query(st, &s, sql, args, n);
    if (r)
        return r;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        uint8_t *pt = NULL;
        size_t len = 0;
        if ((r = how->label(ctx, s, label, sizeof label)) ||
            (r = kl_store_column_unseal(st, s, how->col, label, &pt, &len)))
            break;
        r = how->row(ctx, s, pt, len);
        kl_free_wipe(pt, len);
        if (r)
            break;
    }
    return kl_store_done(s, r, rc);
}

int kl_store_log_label(void *ctx, sqlite3_stmt *s, char *out, size_t cap)
{
    kl_store_log_row_t *l = ctx;
    l->idx = (uint64_t)sqlite3_column_int64(s, 0);
    return kl_store_row_label(out, cap, l->table, l->key, l->idx);
}

/* kl_store_log_each's rows: the log's row and the caller's callback. */
typedef struct log_each {
    kl_store_log_row_t row;
    int (*cb)(void *ud, uint64_t idx, const uint8_t *op, size_t len);
    void *ud;
} log_each_t;

static int log_each_row(void *ctx, sqlite3_stmt *s, const uint8_t *op, size_t len)
{
    log_each_t *e = ctx;
    (void)s;
    return e->cb(e->ud, e->row.idx, op, len);
}

static int log_each(kl_store_t *st, const char *sql, const kl_sql_arg_t *args, size_t n,
                    const char *table, const char *key,
                    int (*cb)(void *ud, uint64_t idx, const uint8_t *op, size_t len), void *ud)
{
    static const kl_store_sealed_rows_t how = {1, kl_store_log_label, log_each_row};
    log_each_t e = {{table, key, 0}, cb, ud};
    return kl_store_sealed_each(st, sql, args, n, &how, &e);
}

int kl_store_log_each(kl_store_t *st, const char *sql, const char *table, const char *key,
                      int (*cb)(void *ud, uint64_t idx, const uint8_t *op, size_t len), void *ud)
{
    return log_each(st, sql, KL_ARGS(KL_TEXT(key)), table, key, cb, ud);
}

int kl_store_log_each_after(kl_store_t *st, const char *sql, const char *table, const char *key,
                            uint64_t after,
                            int (*cb)(void *ud, uint64_t idx, const uint8_t *op, size_t len),
                            void *ud)
{
    return log_each(st, sql, KL_ARGS(KL_TEXT(key), KL_INT(after)), table, key, cb, ud);
}

/* Per-connection settings: wait for other kollega processes, full fsync on
 * commit, and overwrite deleted content so consumed keys leave no trace. */
static int configure(kl_store_t *st)
{
    sqlite3_busy_timeout(st->db, 10000);
    return exec(st, "PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;"
                    " PRAGMA foreign_keys=ON;");
}

static void remove_files(const char *path)
{
    char p[4096 + 8];
    unlink(path);
    const char *sfx[] = {"-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
}

int kl_store_create(const char *path, const char *pass, kl_store_t **out)
{
    int r = KL_EIO;
    kl_store_t *st = NULL;
    kl_pwhash_params_t params;
    int created = 0;

    *out = NULL;
    if (strlen(path) > 4096)
        return KL_EINVAL;
    /* Create the file ourselves so it is 0600 from its first byte. */
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? KL_EEXIST : KL_EIO;
    close(fd);
    created = 1;

    st = calloc(1, sizeof *st);
    if (st == NULL) {
        r = KL_ENOMEM;
        goto out;
    }
    st->key = kl_secure_alloc(32);
    if (st->key == NULL) {
        r = KL_ENOMEM;
        goto out;
    }
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        goto out;
    if ((r = exec(st, "PRAGMA journal_mode=WAL;")) || (r = configure(st)))
        goto out;

    kl_random(st->key, 32);
    kl_pwhash_params_default(&params);
    if ((r = kl_store_wrap_seal(st, pass, &params, &st->wrap)))
        goto out;

    uint8_t ver = FORMAT_VERSION;
    if ((r = exec(st, "BEGIN IMMEDIATE;")))
        goto out;
    if ((r = exec(st, SCHEMA)) || (r = kl_store_meta_put(st, "format", &ver, 1)) ||
        (r = kl_store_wrap_write(st, &st->wrap)) || (r = exec(st, "COMMIT;"))) {
        exec(st, "ROLLBACK;");
        goto out;
    }
    if ((r = kl_store_group_schema(st)) || (r = kl_store_trust_schema(st)))
        goto out;
    *out = st;
    st = NULL;
    r = 0;
out:
    if (st) {
        kl_store_close(st);
        if (created)
            remove_files(path);
    }
    return r;
}

int kl_store_open(const char *path, kl_pass_fn pass, void *ud, kl_store_t **out)
{
    return kl_store_open_flags(path, pass, ud, 0, out);
}

int kl_store_open_flags(const char *path, kl_pass_fn pass, void *ud, unsigned flags,
                        kl_store_t **out)
{
    int r = KL_EPROTO;
    kl_store_t *st = NULL;
    char *pw = NULL;
    uint8_t ver = 0;
    size_t n;
    struct stat sb;

    *out = NULL;
    if (stat(path, &sb) != 0)
        return errno == ENOENT ? KL_ENOTFOUND : KL_EIO;
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return KL_ENOMEM;
    st->key = kl_secure_alloc(32);
    if (st->key == NULL) {
        r = KL_ENOMEM;
        goto out;
    }
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        r = KL_EIO;
        goto out;
    }
    sqlite3_busy_timeout(st->db, 10000);

    /* Only reads until the passphrase is proven right: a wrong one must
     * leave the file exactly as it was. */
    if ((r = kl_store_meta_get(st, "format", &ver, 1, &n)) || n != 1 ||
        ver != FORMAT_VERSION) {
        r = KL_EPROTO;
        goto out;
    }
    if ((r = kl_store_wrap_read(st, &st->wrap)))
        goto out;
    if (st->wrap.has_pass) {
        if (pass == NULL) {
            r = KL_EPASS;
            goto out;
        }
        pw = kl_secure_alloc(KL_STORE_PASS_MAX);
        if (pw == NULL) {
            r = KL_ENOMEM;
            goto out;
        }
        pw[0] = '\0';
        if ((r = pass(ud, pw, KL_STORE_PASS_MAX)))
            goto out;
        pw[KL_STORE_PASS_MAX - 1] = '\0';
    }
    if ((r = kl_store_wrap_open(st, &st->wrap, pw)))
        goto out;
    if ((r = configure(st)) || (r = kl_store_group_schema(st)) ||
        (r = kl_store_trust_schema(st)))
        goto out;
    /* The passphrase is right and still at hand: a wrap made under weaker
     * limits is replaced now. Failing that is no reason to refuse the
     * store, whose old wrap is still valid. */
    if (!(flags & KL_STORE_OPEN_NO_UPGRADE) && kl_store_wrap_weak(&st->wrap)) {
        int u = kl_store_rekey(st, pw);
        st->upgraded = u ? u : 1;
    }
    *out = st;
    st = NULL;
    r = 0;
out:
    if (pw)
        kl_secure_free(pw);
    kl_store_close(st);
    return r;
}

void kl_store_close(kl_store_t *st)
{
    if (st == NULL)
        return;
    if (st->db) {
        if (st->in_txn)
            exec(st, "ROLLBACK;");
        sqlite3_close_v2(st->db);
    }
    if (st->key)
        kl_secure_free(st->key);
    free(st);
}

int kl_store_begin(kl_store_t *st)
{
    if (st->in_txn)
        return KL_ESTATE;
    int r = exec(st, "BEGIN IMMEDIATE;");
    if (r == 0)
        st->in_txn = 1;
    return r;
}

int kl_store_commit(kl_store_t *st)
{
    if (!st->in_txn)
        return KL_ESTATE;
    int r = exec(st, "COMMIT;");
    if (r)
        exec(st, "ROLLBACK;");
    st->in_txn = 0;
    return r;
}

void kl_store_rollback(kl_store_t *st)
{
    if (!st->in_txn)
        return;
    exec(st, "ROLLBACK;");
    st->in_txn = 0;
}

int kl_store_end(kl_store_t *st, int r)
{
    if (r == 0)
        return kl_store_commit(st);
    kl_store_rollback(st);
    return r;
}

int kl_store_get_str(kl_store_t *st, const char *key, char *out, size_t cap)
{
    sqlite3_stmt *s;
    int r = kl_store_first(st, &s, "SELECT CAST(v AS TEXT) FROM config WHERE k = ?1",
                           KL_ARGS(KL_TEXT(key)));
    if (r)
        return r;
    const unsigned char *v = sqlite3_column_text(s, 0);
    int n = sqlite3_column_bytes(s, 0);
    if (v == NULL || n < 0) {
        r = KL_EIO;
    } else if ((size_t)n >= cap) {
        r = KL_ETOOBIG;
    } else {
        memcpy(out, v, (size_t)n);
        out[n] = '\0';
    }
    sqlite3_finalize(s);
    return r;
}

int kl_store_set_str(kl_store_t *st, const char *key, const char *v)
{
    return kl_store_run(st, "INSERT OR REPLACE INTO config(k, v) VALUES(?1, ?2)",
                        KL_ARGS(KL_TEXT(key), KL_TEXT(v)));
}

int kl_store_get_u64(kl_store_t *st, const char *key, uint64_t *v)
{
    sqlite3_stmt *s;
    int r = kl_store_first(st, &s, "SELECT v FROM config WHERE k = ?1", KL_ARGS(KL_TEXT(key)));
    if (r)
        return r;
    if (sqlite3_column_type(s, 0) == SQLITE_INTEGER)
        *v = (uint64_t)sqlite3_column_int64(s, 0);
    else
        r = KL_EPROTO;
    sqlite3_finalize(s);
    return r;
}

int kl_store_set_u64(kl_store_t *st, const char *key, uint64_t v)
{
    return kl_store_run(st, "INSERT OR REPLACE INTO config(k, v) VALUES(?1, ?2)",
                        KL_ARGS(KL_TEXT(key), KL_INT(v)));
}

/* The sealed value in the first row of sql (?1 key): into *pt (malloc'd),
 * or, with out, into out[outlen] (a value of exactly that size). */
static int named_read(kl_store_t *st, const char *table, const char *key, const char *sql,
                      uint8_t **pt, size_t *len, uint8_t *out, size_t outlen)
{
    char label[KL_ADDR_MAX + 96];
    sqlite3_stmt *s;
    int r = kl_store_label(label, sizeof label, table, key);
    if (r || (r = kl_store_first(st, &s, sql, KL_ARGS(KL_TEXT(key)))))
        return r;
    r = out ? kl_store_column_open(st, s, 0, label, out, outlen)
            : kl_store_column_unseal(st, s, 0, label, pt, len);
    sqlite3_finalize(s);
    return r;
}

int kl_store_named_put(kl_store_t *st, const char *table, const char *key, const char *sql,
                       const uint8_t *pt, size_t len)
{
    char label[KL_ADDR_MAX + 96];
    sqlite3_stmt *s;
    int r = kl_store_label(label, sizeof label, table, key);
    if (r || (r = kl_store_query(st, &s, sql, KL_ARGS(KL_TEXT(key)))))
        return r;
    return kl_store_exec_sealed(st, s, 2, label, pt, len);
}

int kl_store_named_get(kl_store_t *st, const char *table, const char *key, const char *sql,
                       uint8_t **pt, size_t *len)
{
    *pt = NULL;
    *len = 0;
    return named_read(st, table, key, sql, pt, len, NULL, 0);
}

int kl_store_named_open(kl_store_t *st, const char *table, const char *key, const char *sql,
                        uint8_t *out, size_t len)
{
    return named_read(st, table, key, sql, NULL, NULL, out, len);
}

int kl_store_secret_put(kl_store_t *st, const char *name, const uint8_t *v, size_t len)
{
    return kl_store_named_put(st, "secrets", name,
                              "INSERT OR REPLACE INTO secrets(name, box) VALUES(?1, ?2)", v, len);
}

int kl_store_secret_get(kl_store_t *st, const char *name, uint8_t *v, size_t len)
{
    return kl_store_named_open(st, "secrets", name, "SELECT box FROM secrets WHERE name = ?1", v,
                               len);
}
