/* The validated state of recently used broadcast channels, kept on the
 * storage thread so that a post is checked with one kl_channel_post_open
 * and an op with one kl_channel_apply, not after a replay of the channel's
 * whole publisher log (decode and signature check of every op).
 *
 * The cache hangs on the storage connection (kl_storage_set_chan_aux), so
 * it lives exactly as long as the thread's kl_storage_t and is touched by
 * that thread alone. Entries are keyed by channel row id and valid only
 * while the state's next index and head hash are those of the stored row:
 * the head is the SHA-256 of the last op, which names the hash of the one
 * before it, so equal heads mean equal logs. A job that applies an op to a
 * cached state and then fails (refused by storage, batch rolled back)
 * leaves a state whose head the row does not have; the next lookup misses
 * and the caller replays. At most KL_CCACHE_MAX channels, least recently
 * used first out. */
#ifndef KOLLEGA_RELAY_CHAN_CACHE_H
#define KOLLEGA_RELAY_CHAN_CACHE_H

#include <stdint.h>

#include "kollega/channel.h"
#include "storage/storage.h"

#define KL_CCACHE_MAX 64

/* The cached state of row c, or NULL (a miss). The state stays the
 * cache's: the caller may apply ops to it, and must not free it or keep it
 * past the job. */
kl_channel_t *kl_ccache_find(kl_storage_t *st, const kl_storage_channel_t *c);
/* Hand ch, the state of row id, to the cache (it frees ch when it cannot
 * keep it). Returns ch, or NULL if it was freed. */
kl_channel_t *kl_ccache_keep(kl_storage_t *st, uint64_t id, kl_channel_t *ch);
/* Lookups that hit and that missed on st since it was opened. */
void kl_ccache_stats(kl_storage_t *st, uint64_t *hits, uint64_t *misses);

#endif
