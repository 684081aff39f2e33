/* The validated state of recently used groups, kept on the storage thread
 * so that applying an op costs one kl_group_apply, not a replay of the
 * group's whole log. A state_cache.h cache (its contract: validity by next
 * index and head, at most KL_SCACHE_MAX groups, least recently used first
 * out) on the storage connection's KL_STORAGE_AUX_GROUPS slot, beside the
 * push lists of group sends below. */
#ifndef KOLLEGA_RELAY_GROUP_CACHE_H
#define KOLLEGA_RELAY_GROUP_CACHE_H

#include <stdint.h>

#include "state_cache.h"
#include "storage/storage.h"

/* Push lists kept (one per group). */
#define KL_GCACHE_MAX 64

/* st's cache of kl_group_t states (jobs_group.c fills and reads it), made
 * on first use; NULL only when out of memory. */
kl_scache_t *kl_gcache_states(kl_storage_t *st);
/* The push list of a group send, cached next to the states: the user ids
 * of row g's current members (kl_storage_group_users without candidates)
 * and the remote addresses among them (kl_storage_shadow_addresses). The
 * membership rows change only with an op, which moves the row's next index
 * and head, so an entry is valid while those are the row's and no batch,
 * job or operation was rolled back since it was stored (a rollback may
 * undo a user the list names, and the id be reused). */
#define KL_GCACHE_USERS_MAX 1024
/* 1 and malloc'd copies (the caller frees *users and *notify; each NULL
 * when empty) on a hit, 0 on a miss, KL_ENOMEM. */
int kl_gcache_members_get(kl_storage_t *st, const kl_storage_group_t *g, uint64_t **users,
                          size_t *n, char **notify, size_t *notify_len, size_t *n_notify);
/* Store copies of the push list read for row g (at most
 * KL_GCACHE_USERS_MAX users; silently not cached when out of memory). */
void kl_gcache_members_put(kl_storage_t *st, const kl_storage_group_t *g, const uint64_t *users,
                           size_t n, const char *notify, size_t notify_len, size_t n_notify);
/* Lookups that hit and that missed on st since it was opened. */
void kl_gcache_stats(kl_storage_t *st, uint64_t *hits, uint64_t *misses);

#endif
