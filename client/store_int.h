/* Internals shared by client/store*.c only (they alone see sqlite). */
#ifndef KOLLEGA_CLIENT_STORE_INT_H
#define KOLLEGA_CLIENT_STORE_INT_H

#include <sqlite3.h>

#include "kollega/crypto.h"
#include "store.h"

#define KL_STORE_WRAPPED_LEN (KL_AEAD_NONCE + 32 + KL_AEAD_TAG)

/* The store key's wrap as the meta table holds it (store_wrap.c). Nothing
 * in it is secret: the store key inside is sealed. */
typedef struct kl_store_wrap {
    char kdf[32];                 /* "pwhash", "none" or the legacy name */
    int has_pass;
    kl_pwhash_params_t params;    /* when has_pass */
    uint8_t salt[KL_PWHASH_SALT];
    uint8_t wrapped[KL_STORE_WRAPPED_LEN];
} kl_store_wrap_t;

struct kl_store {
    sqlite3 *db;
    uint8_t *key;   /* 32-byte store key in guarded memory */
    int in_txn;
    kl_store_wrap_t wrap; /* the wrap the store was opened with (or re-wrapped to) */
    int upgraded;   /* kl_store_upgraded() */
};

/* ---- the key wrap (store_wrap.c) ---- */
/* Meta values: get copies value k into out[cap] (KL_EPROTO if it is
 * missing, too long, or there is no meta table); put inserts or replaces. */
int kl_store_meta_get(kl_store_t *st, const char *k, uint8_t *out, size_t cap, size_t *len);
int kl_store_meta_put(kl_store_t *st, const char *k, const void *v, size_t len);
/* Read the wrap from meta without writing. KL_EPROTO for a missing or
 * unknown part, KL_ELIMIT for limits beyond what we derive with. */
int kl_store_wrap_read(kl_store_t *st, kl_store_wrap_t *w);
/* Unwrap w into st->key with pass (NULL for a store without passphrase):
 * one derivation. KL_EPASS if pass is wrong or missing, KL_ENOMEM if the
 * derivation could not get its memory, kl_pwhash_params_check's errors. */
int kl_store_wrap_open(kl_store_t *st, const kl_store_wrap_t *w, const char *pass);
/* A new wrap of st->key under pass with limits p (pass NULL: none, p
 * unused) and a fresh salt and nonce, into *w only (nothing is written):
 * one derivation. kl_pwhash's errors (KL_EPROTO, KL_ELIMIT for limits out
 * of range, KL_ENOMEM), KL_ECRYPTO. */
int kl_store_wrap_seal(const kl_store_t *st, const char *pass, const kl_pwhash_params_t *p,
                       kl_store_wrap_t *w);
/* Write w's meta rows, inserting or replacing them (a wrap without
 * passphrase deletes the kdf_* rows), inside the caller's transaction.
 * KL_EIO. */
int kl_store_wrap_write(kl_store_t *st, const kl_store_wrap_t *w);
/* 1 if w is a passphrase wrap weaker than the default limits (or of the
 * legacy kind that does not record them): kl_store_open re-wraps it. */
int kl_store_wrap_weak(const kl_store_wrap_t *w);

/* Prepare sql: 0 with *stmt (the caller finalizes it), or KL_EIO with
 * *stmt NULL. */
int kl_store_prepare(kl_store_t *st, const char *sql, sqlite3_stmt **stmt);
/* Step a statement that returns no rows (a row returned counts as done);
 * KL_EEXIST on a constraint violation, KL_EIO on anything else. Finalizes
 * it on every path. */
int kl_store_exec_stmt(sqlite3_stmt *stmt);
/* Seal pt and bind the box to parameter idx of stmt (sqlite keeps its own
 * copy). kl_store_seal's errors, KL_EIO if the bind fails; stmt is not
 * finalized either way. */
int kl_store_bind_sealed(kl_store_t *st, sqlite3_stmt *stmt, int idx, const char *label,
                         const uint8_t *pt, size_t len);
/* Open the sealed blob in column col of the current row: 0 with *pt
 * malloc'd (free with kl_free_wipe(*pt, *len)). KL_ECRYPTO for an empty
 * column (*pt untouched) or a box that does not open, KL_ENOMEM (*pt NULL
 * then). */
int kl_store_column_unseal(kl_store_t *st, sqlite3_stmt *stmt, int col, const char *label,
                           uint8_t **pt, size_t *len);
/* The same for a value of exactly len bytes, into out: KL_EPROTO for
 * another size (out untouched). */
int kl_store_column_open(kl_store_t *st, sqlite3_stmt *stmt, int col, const char *label,
                         uint8_t *out, size_t len);

/* Copy the non-empty text in column col of the current row into out[cap]
 * with its NUL; KL_EPROTO if it is missing, empty or does not fit. */
int kl_store_column_text(sqlite3_stmt *s, int col, char *out, size_t cap);
/* kl_store_bind_sealed, then kl_store_exec_stmt; finalizes stmt on every
 * path. */
int kl_store_exec_sealed(kl_store_t *st, sqlite3_stmt *stmt, int idx, const char *label,
                         const uint8_t *pt, size_t len);
/* Step a statement that returns no rows and finalize it; *changes is the
 * number of rows it changed (set only on success). KL_EIO on failure. */
int kl_store_exec_changes(kl_store_t *st, sqlite3_stmt *stmt, uint64_t *changes);
/* Step a query once and finalize it; *found = 1 if it returned a row.
 * 0, or KL_EIO on failure. */
int kl_store_step_exists(sqlite3_stmt *stmt, int *found);
/* The end of a loop over the rows of stmt: finalize it and return r, or
 * KL_EIO when r is 0 but the last sqlite3_step result rc was not
 * SQLITE_DONE. */
int kl_store_done(sqlite3_stmt *stmt, int r, int rc);

/* Statements with their parameters. A parameter list binds ?1, ?2, ...
 * in order; text and blobs are bound without a copy (they must live until
 * the statement is finalized) and a NULL pointer binds NULL:
 *   kl_store_run(st, "DELETE FROM t WHERE k = ?1 AND n = ?2",
 *                KL_ARGS(KL_TEXT(key), KL_INT(n)));
 * KL_ARGS stands for the two arguments (array, count) the functions take. */
typedef struct kl_sql_arg {
    enum { KL_SQL_TEXT = 1, KL_SQL_INT, KL_SQL_BLOB } type;
    const char *text;
    const void *blob;
    size_t len;
    int64_t num;
} kl_sql_arg_t;
#define KL_TEXT(s) ((kl_sql_arg_t){.type = KL_SQL_TEXT, .text = (s)})
#define KL_INT(v) ((kl_sql_arg_t){.type = KL_SQL_INT, .num = (int64_t)(v)})
#define KL_BLOB(p, n) ((kl_sql_arg_t){.type = KL_SQL_BLOB, .blob = (p), .len = (n)})
#define KL_ARGS(...) \
    (const kl_sql_arg_t[]){__VA_ARGS__}, \
        sizeof((const kl_sql_arg_t[]){__VA_ARGS__}) / sizeof(kl_sql_arg_t)

/* Prepare sql and bind args[0..n): 0 with *stmt (the caller finalizes it),
 * or KL_EIO (nothing to finalize then). */
int kl_store_query(kl_store_t *st, sqlite3_stmt **stmt, const char *sql, const kl_sql_arg_t *args,
                   size_t n);
/* kl_store_query, then step to the first row: 0 with *stmt on it (the
 * caller finalizes it), KL_ENOTFOUND when there is none, KL_EIO (nothing
 * to finalize then). */
int kl_store_first(kl_store_t *st, sqlite3_stmt **stmt, const char *sql, const kl_sql_arg_t *args,
                   size_t n);
/* Run sql with args, a statement that returns no rows: kl_store_exec_stmt's
 * errors. */
int kl_store_run(kl_store_t *st, const char *sql, const kl_sql_arg_t *args, size_t n);
/* The same; *changes is the number of rows it changed (set on success). */
int kl_store_run_changes(kl_store_t *st, uint64_t *changes, const char *sql,
                         const kl_sql_arg_t *args, size_t n);
/* *found = 1 if sql with args returns a row. 0 or KL_EIO. */
int kl_store_exists(kl_store_t *st, int *found, const char *sql, const kl_sql_arg_t *args,
                    size_t n);
/* The integer in the first column of the first row of sql with args (a
 * count): 0 with *v, or KL_EIO when there is no row. */
int kl_store_int(kl_store_t *st, uint64_t *v, const char *sql, const kl_sql_arg_t *args,
                 size_t n);
/* The label "table|key|idx" that binds a sealed value to its row;
 * KL_ETOOBIG if it does not fit out[cap]. */
int kl_store_row_label(char *out, size_t cap, const char *table, const char *key,
                       uint64_t idx);
/* A sealed value in the row of table named key, under the label
 * "table|key". put runs sql with ?1 key and ?2 the box; get runs sql with
 * ?1 key, its first column the box, and opens it (*pt malloc'd, free with
 * kl_free_wipe; KL_ENOTFOUND without a row); open is get for a value of
 * exactly len bytes, into out (KL_EPROTO for another size). */
int kl_store_named_put(kl_store_t *st, const char *table, const char *key, const char *sql,
                       const uint8_t *pt, size_t len);
int kl_store_named_get(kl_store_t *st, const char *table, const char *key, const char *sql,
                       uint8_t **pt, size_t *len);
int kl_store_named_open(kl_store_t *st, const char *table, const char *key, const char *sql,
                        uint8_t *out, size_t len);
/* Rows whose column col is a sealed box, read by kl_store_sealed_each: for
 * each row, label reads what it needs of the row into ctx and writes the
 * label the box is sealed under to out[cap]; row then gets the opened box
 * (wiped after it returns). A non-zero result of either stops the loop. */
typedef struct kl_store_sealed_rows {
    int col;
    int (*label)(void *ctx, sqlite3_stmt *s, char *out, size_t cap);
    int (*row)(void *ctx, sqlite3_stmt *s, const uint8_t *pt, size_t len);
} kl_store_sealed_rows_t;
/* Run sql with args and hand each row's opened box to how->row. Returns
 * the first non-zero result of how->label or how->row, else 0;
 * kl_store_column_unseal's errors for a box that does not open; KL_EIO
 * when the query fails. */
int kl_store_sealed_each(kl_store_t *st, const char *sql, const kl_sql_arg_t *args, size_t n,
                         const kl_store_sealed_rows_t *how, void *ctx);
/* A row of an op log as kl_store_log_label reads it. */
typedef struct kl_store_log_row {
    const char *table;
    const char *key;
    uint64_t idx; /* column 0 of the current row */
} kl_store_log_row_t;
/* A kl_store_sealed_rows_t label for op-log rows, ctx a kl_store_log_row_t:
 * sets its idx from column 0 of s's row and writes "table|key|idx"
 * (kl_store_row_label) to out[cap]; KL_ETOOBIG if it does not fit. */
int kl_store_log_label(void *ctx, sqlite3_stmt *s, char *out, size_t cap);
/* An op log: rows (key, idx, box) of table, each box sealed under the label
 * "table|key|idx". kl_store_log_put runs sql (parameters ?1 key, ?2 idx,
 * ?3 box) for op[0..len) (the caller checks len); kl_store_log_each runs
 * sql (parameter ?1 key; columns idx, box) and calls cb with each opened
 * op, stopping at cb's first non-zero result, which it returns.
 * kl_store_log_each_after does the same for sql with a second parameter,
 * ?2 after (the rows after a seq: one page of a longer walk). */
int kl_store_log_put(kl_store_t *st, const char *sql, const char *table, const char *key,
                     uint64_t idx, const uint8_t *op, size_t len);
int kl_store_log_each(kl_store_t *st, const char *sql, const char *table, const char *key,
                      int (*cb)(void *ud, uint64_t idx, const uint8_t *op, size_t len), void *ud);
int kl_store_log_each_after(kl_store_t *st, const char *sql, const char *table, const char *key,
                            uint64_t after,
                            int (*cb)(void *ud, uint64_t idx, const uint8_t *op, size_t len),
                            void *ud);

#endif
