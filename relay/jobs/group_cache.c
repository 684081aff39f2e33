/* The group state cache (contract in group_cache.h). */
#include <stdlib.h>
#include <string.h>

#include "group_cache.h"
#include "kollega/err.h"

/* A group's push list for sends (kl_gcache_members_get). */
typedef struct mslot {
    uint64_t id;         /* group row id; 0 = empty */
    uint64_t used;       /* tick of the last use */
    uint64_t next_index; /* the row's next index and head it was read at */
    uint8_t head[32];
    uint64_t gen;        /* kl_storage_undo_gen then */
    uint64_t *users;
    size_t n;
    char *notify;
    size_t notify_len, n_notify;
} mslot_t;

typedef struct gcache {
    kl_scache_t states;  /* kl_group_t states (state_cache.h) */
    mslot_t mslot[KL_GCACHE_MAX];
    uint64_t tick;       /* of the push lists */
} gcache_t;

static void gcache_free(void *p)
{
    gcache_t *c = p;
    if (c == NULL)
        return;
    kl_scache_clear(&c->states);
    for (size_t i = 0; i < KL_GCACHE_MAX; i++) {
        free(c->mslot[i].users);
        free(c->mslot[i].notify);
    }
    free(c);
}

/* st's cache, created on first use; NULL only when out of memory. */
static gcache_t *cache_of(kl_storage_t *st)
{
    return kl_scache_aux(st, KL_STORAGE_AUX_GROUPS, sizeof(gcache_t), gcache_free);
}

kl_scache_t *kl_gcache_states(kl_storage_t *st)
{
    gcache_t *c = cache_of(st);
    return c ? &c->states : NULL;
}

void kl_gcache_stats(kl_storage_t *st, uint64_t *hits, uint64_t *misses)
{
    const gcache_t *c = kl_storage_aux(st, KL_STORAGE_AUX_GROUPS);
    *hits = c ? c->states.hits : 0;
    *misses = c ? c->states.misses : 0;
}

static void mdrop(mslot_t *s)
{
    free(s->users);
    free(s->notify);
    memset(s, 0, sizeof *s);
}

/* A malloc'd copy of p[0..len), or NULL for len 0 (*r = KL_ENOMEM on failure). */
static void *dup_bytes(const void *p, size_t len, int *r)
{
    if (len == 0 || *r)
        return NULL;
    void *q = malloc(len);
    if (q == NULL)
        *r = KL_ENOMEM;
    else
        memcpy(q, p, len);
    return q;
}

int kl_gcache_members_get(kl_storage_t *st, const kl_storage_group_t *g, uint64_t **users,
                          size_t *n, char **notify, size_t *notify_len, size_t *n_notify)
{
    *users = NULL;
    *notify = NULL;
    *n = *notify_len = *n_notify = 0;
    gcache_t *c = cache_of(st);
    if (c == NULL)
        return 0;
    uint64_t gen = kl_storage_undo_gen(st);
    for (size_t i = 0; i < KL_GCACHE_MAX; i++) {
        mslot_t *s = &c->mslot[i];
        if (s->id == 0 || s->id != g->id)
            continue;
        if (s->gen != gen || s->next_index != g->next_index || memcmp(s->head, g->head, 32) != 0) {
            mdrop(s); /* an op or a rollback since */
            return 0;
        }
        int r = 0;
        uint64_t *u = dup_bytes(s->users, s->n * sizeof *u, &r);
        char *a = dup_bytes(s->notify, s->notify_len, &r);
        if (r) {
            free(u);
            free(a);
            return r;
        }
        s->used = ++c->tick;
        *users = u;
        *n = s->n;
        *notify = a;
        *notify_len = s->notify_len;
        *n_notify = s->n_notify;
        return 1;
    }
    return 0;
}

void kl_gcache_members_put(kl_storage_t *st, const kl_storage_group_t *g, const uint64_t *users,
                           size_t n, const char *notify, size_t notify_len, size_t n_notify)
{
    gcache_t *c = cache_of(st);
    if (c == NULL || g->id == 0 || n > KL_GCACHE_USERS_MAX)
        return;
    mslot_t *victim = NULL;
    for (size_t i = 0; i < KL_GCACHE_MAX; i++) {
        mslot_t *s = &c->mslot[i];
        if (s->id == g->id) {
            victim = s;
            break;
        }
        if (victim == NULL || (victim->id != 0 && (s->id == 0 || s->used < victim->used)))
            victim = s;
    }
    mdrop(victim);
    int r = 0;
    uint64_t *u = dup_bytes(users, n * sizeof *u, &r);
    char *a = dup_bytes(notify, notify_len, &r);
    if (r) {
        free(u);
        free(a);
        return; /* not cached: the next send reads storage again */
    }
    victim->id = g->id;
    victim->used = ++c->tick;
    victim->next_index = g->next_index;
    memcpy(victim->head, g->head, 32);
    victim->gen = kl_storage_undo_gen(st);
    victim->users = u;
    victim->n = n;
    victim->notify = a;
    victim->notify_len = notify_len;
    victim->n_notify = n_notify;
}
