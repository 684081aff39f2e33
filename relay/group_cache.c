/* The group state cache (contract in group_cache.h). */
#include <stdlib.h>
#include <string.h>

#include "group_cache.h"

typedef struct slot {
    uint64_t id;       /* group row id; 0 = empty */
    uint64_t used;     /* tick of the last use */
    kl_group_t *grp;
} slot_t;

typedef struct gcache {
    slot_t slot[KL_GCACHE_MAX];
    uint64_t tick;
    uint64_t hits, misses;
} gcache_t;

static void gcache_free(void *p)
{
    gcache_t *c = p;
    if (c == NULL)
        return;
    for (size_t i = 0; i < KL_GCACHE_MAX; i++)
        kl_group_free(c->slot[i].grp);
    free(c);
}

/* st's cache, created on first use; NULL only when out of memory. */
static gcache_t *cache_of(kl_storage_t *st)
{
    gcache_t *c = kl_storage_aux(st);
    if (c == NULL) {
        c = calloc(1, sizeof *c);
        if (c != NULL)
            kl_storage_set_aux(st, c, gcache_free);
    }
    return c;
}

static void drop(slot_t *s)
{
    kl_group_free(s->grp);
    memset(s, 0, sizeof *s);
}

kl_group_t *kl_gcache_find(kl_storage_t *st, const kl_storage_group_t *g)
{
    gcache_t *c = cache_of(st);
    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < KL_GCACHE_MAX; i++) {
        slot_t *s = &c->slot[i];
        if (s->grp == NULL || s->id != g->id)
            continue;
        uint8_t head[32];
        kl_group_head(s->grp, head);
        if (kl_group_next_index(s->grp) != g->next_index || memcmp(head, g->head, 32) != 0) {
            drop(s); /* stale: the row moved on, or a job failed after applying */
            break;
        }
        s->used = ++c->tick;
        c->hits++;
        return s->grp;
    }
    c->misses++;
    return NULL;
}

kl_group_t *kl_gcache_keep(kl_storage_t *st, uint64_t id, kl_group_t *grp)
{
    gcache_t *c = cache_of(st);
    if (c == NULL || id == 0) {
        kl_group_free(grp);
        return NULL;
    }
    /* The slot of this group if it has one (never two states for one
     * group), else an empty slot, else the least recently used. */
    slot_t *victim = NULL;
    for (size_t i = 0; i < KL_GCACHE_MAX; i++) {
        slot_t *s = &c->slot[i];
        if (s->grp != NULL && s->id == id) {
            victim = s;
            break;
        }
        if (victim == NULL || (victim->grp != NULL && (s->grp == NULL || s->used < victim->used)))
            victim = s;
    }
    if (victim->grp != grp)
        drop(victim);
    victim->id = id;
    victim->grp = grp;
    victim->used = ++c->tick;
    return grp;
}

void kl_gcache_stats(kl_storage_t *st, uint64_t *hits, uint64_t *misses)
{
    const gcache_t *c = kl_storage_aux(st);
    *hits = c ? c->hits : 0;
    *misses = c ? c->misses : 0;
}
