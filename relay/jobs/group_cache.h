/* The validated state of recently used groups, kept on the storage thread
 * so that applying an op costs one kl_group_apply, not a replay of the
 * group's whole log (signature check and decode of every op).
 *
 * The cache hangs on the storage connection (kl_storage_set_aux), so it
 * lives exactly as long as the thread's kl_storage_t and is touched by
 * that thread alone. Entries are keyed by group row id and valid only
 * while the state's next index and head hash are those of the stored row:
 * the head is the SHA-256 of the last op, which names the hash of the one
 * before it, so equal heads mean equal logs. A job that applies an op to
 * a cached state and then fails (refused by storage, batch rolled back)
 * leaves a state whose head the row does not have; the next lookup misses
 * and the caller replays. At most KL_GCACHE_MAX groups, least recently
 * used first out. */
#ifndef KOLLEGA_RELAY_GROUP_CACHE_H
#define KOLLEGA_RELAY_GROUP_CACHE_H

#include <stdint.h>

#include "kollega/group.h"
#include "storage/storage.h"

#define KL_GCACHE_MAX 64

/* The cached state of row g, or NULL (a miss). The state stays the cache's:
 * the caller may apply ops to it, and must not free it or keep it past the
 * job. */
kl_group_t *kl_gcache_find(kl_storage_t *st, const kl_storage_group_t *g);
/* Hand grp, the state of row id, to the cache (it frees grp when it cannot
 * keep it). Returns grp, or NULL if it was freed. */
kl_group_t *kl_gcache_keep(kl_storage_t *st, uint64_t id, kl_group_t *grp);
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
