/* The data directory's lock: one process at a time may run the relay on a
 * directory, or change it as a whole (init, restore).
 *
 * DATA/relay.lock is locked with flock(2) for as long as the holder runs;
 * it holds "PID START_UNIX_SECONDS\n" of the holder, for the messages of
 * those who find it locked. The kernel releases the lock when the holder
 * exits however it exits (kill -9 included), so a file left behind blocks
 * nobody: only a live lock counts. */
#ifndef KOLLEGA_RELAY_LOCK_H
#define KOLLEGA_RELAY_LOCK_H

#include <stdint.h>

#define KL_LOCK_NAME "relay.lock"

typedef struct kl_lock_holder {
    long pid;            /* 0 when the file did not say */
    uint64_t started;    /* Unix seconds, 0 when unknown */
} kl_lock_holder_t;

/* Take the lock of dir (which must exist) without waiting. 0 and *fd
 * (held until it is closed: the admin commands keep it until they
 * exit); KL_EEXIST when another
 * process holds it (*holder says who, as far as the file tells); KL_EIO
 * when the lock file cannot be opened or locked. */
int kl_lock_acquire(const char *dir, int *fd, kl_lock_holder_t *holder);
/* Whether dir's lock is held by another process right now (and by whom):
 * takes and drops it. 0 and *held; KL_EIO on failure. A directory without
 * a lock file is not locked. */
int kl_lock_probe(const char *dir, int *held, kl_lock_holder_t *holder);

#endif
