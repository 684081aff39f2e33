/* The channel state cache (contract in chan_cache.h): a state_cache.h cache
 * of kl_channel_t states on the storage connection's channel slot. */
#include <stdlib.h>

#include "chan_cache.h"
#include "state_cache.h"

static void state_free(void *p)
{
    kl_channel_free(p);
}

static uint64_t state_next_index(const void *p)
{
    return kl_channel_next_index(p);
}

static void state_head(const void *p, uint8_t out[32])
{
    kl_channel_head(p, out);
}

static const kl_scache_kind_t KIND = {state_free, state_next_index, state_head};

static void cache_free(void *p)
{
    kl_scache_t *c = p;
    if (c == NULL)
        return;
    kl_scache_clear(c);
    free(c);
}

/* st's cache, created on first use; NULL only when out of memory. */
static kl_scache_t *cache_of(kl_storage_t *st)
{
    kl_scache_t *c = kl_scache_aux(st, KL_STORAGE_AUX_CHANNELS, sizeof *c, cache_free);
    if (c)
        c->kind = &KIND;
    return c;
}

kl_channel_t *kl_ccache_find(kl_storage_t *st, const kl_storage_channel_t *c)
{
    return kl_scache_find(cache_of(st), c->id, c->next_index, c->head);
}

kl_channel_t *kl_ccache_keep(kl_storage_t *st, uint64_t id, kl_channel_t *ch)
{
    return kl_scache_keep(cache_of(st), &KIND, id, ch);
}

void kl_ccache_stats(kl_storage_t *st, uint64_t *hits, uint64_t *misses)
{
    const kl_scache_t *c = kl_storage_aux(st, KL_STORAGE_AUX_CHANNELS);
    *hits = c ? c->hits : 0;
    *misses = c ? c->misses : 0;
}
