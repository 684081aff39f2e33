/* What group jobs (jobs_group.c) and channel jobs (jobs_channel.c) share:
 * both are about a signed-op log (a row with a message log, a next op index
 * and a head) and answer with the same kind of outputs. The kind's own
 * rules stay in its file; the steps below run the same way for both. */
#ifndef KOLLEGA_RELAY_OPLOG_JOB_H
#define KOLLEGA_RELAY_OPLOG_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "state_cache.h"
#include "storage/storage.h"

/* The outputs of a group or channel job that lists entries or pushes. */
typedef struct kl_oplog_out {
    kl_storage_entry_t *entries;   /* fetch: ops (seq = index); read: entries */
    size_t n;
    int more;
    uint64_t *push;                /* op, send/post: users of this relay to push to */
    size_t n_push;
    char *notify;                  /* op, send/post: who on federation peers hears of it,
                                    * NUL-separated: a group's remote members
                                    * (storage_gfed.h), a channel's mirroring peers */
    size_t notify_len, n_notify;
} kl_oplog_out_t;

/* Free o's contents and zero it. */
void kl_oplog_out_free(kl_oplog_out_t *o);

/* A kind of signed-op log on the storage thread. */
typedef struct kl_oplog_kind {
    kl_scache_kind_t state;        /* a validated state: free, next index, head */
    /* A new empty state for address (0 or a kl_err). */
    int (*state_new)(void **state, const char *address);
    /* Apply an op read back from storage, which was validated in full when
     * it was stored: nonzero when it no longer applies. */
    int (*replay)(void *state, const uint8_t *op, size_t len);
    /* The stored ops (kl_storage_group_ops, kl_storage_channel_ops). */
    int (*read_ops)(kl_storage_t *st, uint64_t id, uint64_t from, uint32_t limit,
                    size_t max_bytes, kl_storage_entry_t **out, size_t *n, int *more);
    /* st's cache of this kind's states (NULL when out of memory). */
    kl_scache_t *(*cache)(kl_storage_t *st);
} kl_oplog_kind_t;

/* The stored row a state belongs to. */
typedef struct kl_oplog_row {
    uint64_t id;
    uint64_t next_index;
    const uint8_t *head;           /* 32 bytes */
} kl_oplog_row_t;

/* The validated state of stored row at address: the cached one, else a
 * replay of its ops, then cached. The state is the cache's (the caller must
 * not free it); *out is NULL only on error. A stored log that no longer
 * validates is KL_EIO: nothing is built on it. */
int kl_oplog_state(kl_storage_t *st, const kl_oplog_kind_t *k, const char *address,
                   const kl_oplog_row_t *row, void **out);
/* The state op `index` is applied to, with the refusals that need no state
 * first: index 0 and no row (found 0) or a row without ops (a channel
 * mirror's placeholder), a new state (*fresh = 1: the caller's until it
 * hands it to kl_oplog_keep, else frees it); no row and another index,
 * KL_ENOTFOUND; a row and index 0, KL_EEXIST; an index that
 * is not the row's next, KL_ESTATE; at max_ops (0: no bound) or past it,
 * KL_ELIMIT; else the row's state (kl_oplog_state, *fresh = 0). */
int kl_oplog_op_state(kl_storage_t *st, const kl_oplog_kind_t *k, const char *address,
                      int found, const kl_oplog_row_t *row, uint64_t index, uint64_t max_ops,
                      void **state, int *fresh);
/* A reader's ack on a group's or channel's message log: KL_EREFUSED when
 * it has no cursor there, else as kl_storage_log_ack. */
int kl_oplog_ack(kl_storage_t *st, uint64_t log, uint64_t reader, uint64_t seq);
/* Hand a fresh state, now stored as row id, to the cache (or free it). */
void kl_oplog_keep(kl_storage_t *st, const kl_oplog_kind_t *k, uint64_t id, void *state);

#endif
