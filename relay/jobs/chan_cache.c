/* The channel state cache (contract in chan_cache.h). */
#include <stdlib.h>

#include "chan_cache.h"

static void cache_free(void *p)
{
    kl_scache_t *c = p;
    if (c == NULL)
        return;
    kl_scache_clear(c);
    free(c);
}

kl_scache_t *kl_ccache_states(kl_storage_t *st)
{
    return kl_scache_aux(st, KL_STORAGE_AUX_CHANNELS, sizeof(kl_scache_t), cache_free);
}

void kl_ccache_stats(kl_storage_t *st, uint64_t *hits, uint64_t *misses)
{
    const kl_scache_t *c = kl_storage_aux(st, KL_STORAGE_AUX_CHANNELS);
    *hits = c ? c->hits : 0;
    *misses = c ? c->misses : 0;
}
