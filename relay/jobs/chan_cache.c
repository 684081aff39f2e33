/* The channel state cache (contract in chan_cache.h). */
#include <stdlib.h>
#include <string.h>

#include "chan_cache.h"

typedef struct slot {
    uint64_t id;       /* channel row id; 0 = empty */
    uint64_t used;     /* tick of the last use */
    kl_channel_t *ch;
} slot_t;

typedef struct ccache {
    slot_t slot[KL_CCACHE_MAX];
    uint64_t tick;
    uint64_t hits, misses;
} ccache_t;

static void ccache_free(void *p)
{
    ccache_t *c = p;
    if (c == NULL)
        return;
    for (size_t i = 0; i < KL_CCACHE_MAX; i++)
        kl_channel_free(c->slot[i].ch);
    free(c);
}

/* st's cache, created on first use; NULL only when out of memory. */
static ccache_t *cache_of(kl_storage_t *st)
{
    ccache_t *c = kl_storage_chan_aux(st);
    if (c == NULL) {
        c = calloc(1, sizeof *c);
        if (c != NULL)
            kl_storage_set_chan_aux(st, c, ccache_free);
    }
    return c;
}

static void drop(slot_t *s)
{
    kl_channel_free(s->ch);
    memset(s, 0, sizeof *s);
}

kl_channel_t *kl_ccache_find(kl_storage_t *st, const kl_storage_channel_t *g)
{
    ccache_t *c = cache_of(st);
    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < KL_CCACHE_MAX; i++) {
        slot_t *s = &c->slot[i];
        if (s->ch == NULL || s->id != g->id)
            continue;
        uint8_t head[32];
        kl_channel_head(s->ch, head);
        if (kl_channel_next_index(s->ch) != g->next_index || memcmp(head, g->head, 32) != 0) {
            drop(s); /* stale: the row moved on, or a job failed after applying */
            break;
        }
        s->used = ++c->tick;
        c->hits++;
        return s->ch;
    }
    c->misses++;
    return NULL;
}

kl_channel_t *kl_ccache_keep(kl_storage_t *st, uint64_t id, kl_channel_t *ch)
{
    ccache_t *c = cache_of(st);
    if (c == NULL || id == 0) {
        kl_channel_free(ch);
        return NULL;
    }
    /* The slot of this channel if it has one (never two states for one
     * channel), else an empty slot, else the least recently used. */
    slot_t *victim = NULL;
    for (size_t i = 0; i < KL_CCACHE_MAX; i++) {
        slot_t *s = &c->slot[i];
        if (s->ch != NULL && s->id == id) {
            victim = s;
            break;
        }
        if (victim == NULL || (victim->ch != NULL && (s->ch == NULL || s->used < victim->used)))
            victim = s;
    }
    if (victim->ch != ch)
        drop(victim);
    victim->id = id;
    victim->ch = ch;
    victim->used = ++c->tick;
    return ch;
}

void kl_ccache_stats(kl_storage_t *st, uint64_t *hits, uint64_t *misses)
{
    const ccache_t *c = kl_storage_chan_aux(st);
    *hits = c ? c->hits : 0;
    *misses = c ? c->misses : 0;
}
