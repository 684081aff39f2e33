/* The validated state of recently used signed-op logs (groups, channels),
 * kept on the storage thread so that applying an op or checking a post
 * costs one step, not a replay of the whole log (decode and signature
 * check of every op). group_cache.h and chan_cache.h are its two users.
 *
 * A cache hangs on the storage connection (kl_storage_set_aux, one slot per
 * kind), so it lives exactly as long as the thread's kl_storage_t and is
 * touched by that thread alone. Entries are keyed by row id and valid only
 * while the state's next index and head hash are those of the stored row:
 * the head is the SHA-256 of the last op, which names the hash of the one
 * before it, so equal heads mean equal logs. A job that applies an op to a
 * cached state and then fails (refused by storage, batch rolled back)
 * leaves a state whose head the row does not have; the next lookup misses
 * and the caller replays. At most KL_SCACHE_MAX states, least recently used
 * first out. */
#ifndef KOLLEGA_RELAY_STATE_CACHE_H
#define KOLLEGA_RELAY_STATE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

#define KL_SCACHE_MAX 64

/* What the cache needs to know of one kind's states. */
typedef struct kl_scache_kind {
    void (*free)(void *state);
    uint64_t (*next_index)(const void *state);
    void (*head)(const void *state, uint8_t out[32]);
} kl_scache_kind_t;

typedef struct kl_scache_slot {
    uint64_t id;       /* row id; 0 = empty */
    uint64_t used;     /* tick of the last use */
    void *state;
} kl_scache_slot_t;

/* Zeroed: an empty cache. */
typedef struct kl_scache {
    const kl_scache_kind_t *kind; /* of the states kept (kl_scache_keep) */
    kl_scache_slot_t slot[KL_SCACHE_MAX];
    uint64_t tick;
    uint64_t hits, misses;
} kl_scache_t;

/* The cached state of row id while its next index and head are these, or
 * NULL (a miss). The state stays the cache's: the caller may apply ops to
 * it, and must not free it or keep it past the job. */
void *kl_scache_find(kl_scache_t *c, uint64_t id, uint64_t next_index, const uint8_t head[32]);
/* Hand state, the state of row id, of kind (the same for every state of
 * c), to the cache (it frees state when it cannot keep it: c NULL or id
 * 0). Returns state, or NULL if it was freed. */
void *kl_scache_keep(kl_scache_t *c, const kl_scache_kind_t *kind, uint64_t id, void *state);
/* Free every state (not c). */
void kl_scache_clear(kl_scache_t *c);
/* The object in st's aux slot (storage.h), made on first use: size bytes,
 * zeroed, freed with free_fn by kl_storage_close. NULL only when out of
 * memory. */
void *kl_scache_aux(kl_storage_t *st, int slot, size_t size, void (*free_fn)(void *));

#endif
