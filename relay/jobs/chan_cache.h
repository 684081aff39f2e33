/* The validated state of recently used broadcast channels, kept on the
 * storage thread so that a post is checked with one kl_channel_post_open
 * and an op with one kl_channel_apply, not after a replay of the channel's
 * whole publisher log. A state_cache.h cache (its contract: validity by
 * next index and head, at most KL_SCACHE_MAX channels, least recently used
 * first out) on the storage connection's KL_STORAGE_AUX_CHANNELS slot. */
#ifndef KOLLEGA_RELAY_CHAN_CACHE_H
#define KOLLEGA_RELAY_CHAN_CACHE_H

#include <stdint.h>

#include "state_cache.h"
#include "storage/storage.h"

/* st's cache of kl_channel_t states (jobs_channel.c fills and reads it),
 * made on first use; NULL only when out of memory. */
kl_scache_t *kl_ccache_states(kl_storage_t *st);
/* Lookups that hit and that missed on st since it was opened. */
void kl_ccache_stats(kl_storage_t *st, uint64_t *hits, uint64_t *misses);

#endif
