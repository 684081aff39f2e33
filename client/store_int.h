/* Internals shared by client/store*.c only (they alone see sqlite). */
#ifndef KOLLEGA_CLIENT_STORE_INT_H
#define KOLLEGA_CLIENT_STORE_INT_H

#include <sqlite3.h>

#include "store.h"

struct kl_store {
    sqlite3 *db;
    uint8_t *key;   /* 32-byte store key in guarded memory */
    int in_txn;
};

/* Prepare sql; KL_EIO on failure. */
int kl_store_prepare(kl_store_t *st, const char *sql, sqlite3_stmt **stmt);
/* Step a statement that returns no rows; KL_EEXIST on a constraint
 * violation, KL_EIO on anything else. Finalizes it. */
int kl_store_exec_stmt(sqlite3_stmt *stmt);
/* Seal pt and bind the box to parameter idx of stmt (transient copy). */
int kl_store_bind_sealed(kl_store_t *st, sqlite3_stmt *stmt, int idx, const char *label,
                         const uint8_t *pt, size_t len);
/* Open the sealed blob in column col of the current row. */
int kl_store_column_unseal(kl_store_t *st, sqlite3_stmt *stmt, int col, const char *label,
                           uint8_t **pt, size_t *len);

#endif
