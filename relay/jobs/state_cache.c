/* The signed-op log state cache (contract in state_cache.h). */
#include <stdlib.h>
#include <string.h>

#include "state_cache.h"

static void drop(const kl_scache_t *c, kl_scache_slot_t *s)
{
    if (s->state)
        c->kind->free(s->state);
    memset(s, 0, sizeof *s);
}

void *kl_scache_find(kl_scache_t *c, uint64_t id, uint64_t next_index, const uint8_t head[32])
{
    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < KL_SCACHE_MAX; i++) {
        kl_scache_slot_t *s = &c->slot[i];
        if (s->state == NULL || s->id != id)
            continue;
        uint8_t h[32];
        c->kind->head(s->state, h);
        if (c->kind->next_index(s->state) != next_index || memcmp(h, head, 32) != 0) {
            drop(c, s); /* stale: the row moved on, or a job failed after applying */
            break;
        }
        s->used = ++c->tick;
        c->hits++;
        return s->state;
    }
    c->misses++;
    return NULL;
}

void *kl_scache_keep(kl_scache_t *c, const kl_scache_kind_t *kind, uint64_t id, void *state)
{
    if (c == NULL || id == 0) {
        kind->free(state);
        return NULL;
    }
    /* The slot of this row if it has one (never two states for one row),
     * else an empty slot, else the least recently used. */
    kl_scache_slot_t *victim = NULL;
    for (size_t i = 0; i < KL_SCACHE_MAX; i++) {
        kl_scache_slot_t *s = &c->slot[i];
        if (s->state != NULL && s->id == id) {
            victim = s;
            break;
        }
        if (victim == NULL ||
            (victim->state != NULL && (s->state == NULL || s->used < victim->used)))
            victim = s;
    }
    if (victim->state != state)
        drop(c, victim);
    c->kind = kind;
    victim->id = id;
    victim->state = state;
    victim->used = ++c->tick;
    return state;
}

void kl_scache_clear(kl_scache_t *c)
{
    for (size_t i = 0; i < KL_SCACHE_MAX; i++)
        drop(c, &c->slot[i]);
}

void *kl_scache_aux(kl_storage_t *st, int slot, size_t size, void (*free_fn)(void *))
{
    void *p = kl_storage_aux(st, slot);
    if (p == NULL) {
        p = calloc(1, size);
        if (p != NULL)
            kl_storage_set_aux(st, slot, p, free_fn);
    }
    return p;
}
