/* The validated state of recently used broadcast channels, kept on the
 * storage thread so that a post is checked with one kl_channel_post_open
 * and an op with one kl_channel_apply, not after a replay of the channel's
 * whole publisher log. A state_cache.h cache (its contract: validity by
 * next index and head, at most KL_SCACHE_MAX channels, least recently used
 * first out) on the storage connection's KL_STORAGE_AUX_CHANNELS slot. */
#ifndef KOLLEGA_RELAY_CHAN_CACHE_H
#define KOLLEGA_RELAY_CHAN_CACHE_H

#include <stdint.h>

#include "kollega/channel.h"
#include "storage/storage.h"

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
