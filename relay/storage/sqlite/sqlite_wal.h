/* The sqlite backend's write-ahead-log policy (storage_sqlite.c). A
 * committing connection copies the log back into the database (and fsyncs
 * it) once the log holds KL_SQLITE_WAL_SOFT pages, stalling that commit.
 * While background maintenance runs (storage.h, kl_storage_maint_open) it
 * does that copy on its own thread and connection from SOFT pages on, and
 * the writer checkpoints only past KL_SQLITE_WAL_HARD pages, when the
 * maintenance thread is not keeping up. Exposed for the backend's tests. */
#ifndef KOLLEGA_RELAY_SQLITE_WAL_H
#define KOLLEGA_RELAY_SQLITE_WAL_H

#include "storage/storage.h"

#define KL_SQLITE_WAL_SOFT 1000
#define KL_SQLITE_WAL_HARD 8000

/* Pages in the write-ahead log after st's last commit (a count: cannot
 * fail). */
int kl_sqlite_wal_frames(const kl_storage_t *st);

#endif
