/* One-time prekey limits (opk_limit.h): four bounded tables of token
 * buckets, each an LRU list over a fixed slot array with a chained hash
 * index. Slot and bucket indices are stored plus one, so that the calloc'd
 * zero means "none" and the arrays need no initialising pass (their pages
 * are touched only as slots are used). */
#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "opk_limit.h"

#define ID_LEN 16
#define KEY_LEN 32

typedef struct slot {
    uint8_t id[ID_LEN];  /* keyed hash of the name(s) */
    uint64_t milli;      /* tokens, in thousandths */
    uint64_t at_ms;      /* last refill */
    uint32_t newer;      /* LRU neighbours (index + 1, 0: none) */
    uint32_t older;
    uint32_t chain;      /* next slot in the same hash bucket (index + 1) */
} slot_t;

typedef struct table {
    slot_t *slot;
    uint32_t *bucket;    /* first slot of each bucket (index + 1) */
    uint32_t mask;       /* buckets - 1 (a power of two) */
    uint32_t used;       /* slots 0..used-1 hold entries */
    uint32_t cap;
    uint32_t newest;     /* LRU ends (index + 1) */
    uint32_t oldest;
    uint32_t per;        /* tokens per window */
} table_t;

enum { T_PAIR, T_REQUESTER, T_TARGET, T_PEER, T_COUNT };

struct kl_opk_limit {
    kl_opk_limit_cfg_t cfg;
    uint64_t window_ms;
    table_t t[T_COUNT];
    uint8_t *keys;       /* T_COUNT hashing keys, guarded memory */
};

int kl_opk_limit_cfg_check(const kl_opk_limit_cfg_t *cfg)
{
    if (cfg->window_s > KL_OPK_WINDOW_S_MAX || cfg->per_pair > KL_OPK_PER_MAX ||
        cfg->per_requester > KL_OPK_PER_MAX || cfg->per_target > KL_OPK_PER_MAX ||
        cfg->per_peer > KL_OPK_PER_MAX || cfg->max_tracked > KL_OPK_TRACKED_MAX)
        return KL_EINVAL;
    return 0;
}

static int table_init(table_t *t, uint32_t cap, uint32_t per)
{
    uint32_t nb = 1;
    while (nb < cap)
        nb <<= 1;
    memset(t, 0, sizeof *t);
    t->slot = calloc(cap, sizeof *t->slot);
    t->bucket = calloc(nb, sizeof *t->bucket);
    if (t->slot == NULL || t->bucket == NULL)
        return KL_ENOMEM;
    t->mask = nb - 1;
    t->cap = cap;
    t->per = per;
    return 0;
}

static uint32_t bucket_of(const table_t *t, const uint8_t id[ID_LEN])
{
    uint32_t h;
    memcpy(&h, id, sizeof h); /* the id is a keyed hash: any 4 bytes are uniform */
    return h & t->mask;
}

static void lru_unlink(table_t *t, uint32_t i)
{
    slot_t *s = &t->slot[i];
    if (s->newer)
        t->slot[s->newer - 1].older = s->older;
    else
        t->newest = s->older;
    if (s->older)
        t->slot[s->older - 1].newer = s->newer;
    else
        t->oldest = s->newer;
    s->newer = s->older = 0;
}

static void lru_push(table_t *t, uint32_t i)
{
    slot_t *s = &t->slot[i];
    s->newer = 0;
    s->older = t->newest;
    if (t->newest)
        t->slot[t->newest - 1].newer = i + 1;
    t->newest = i + 1;
    if (t->oldest == 0)
        t->oldest = i + 1;
}

/* Remove slot i from its hash chain. */
static void chain_unlink(table_t *t, uint32_t i)
{
    uint32_t *pp = &t->bucket[bucket_of(t, t->slot[i].id)];
    while (*pp && *pp != i + 1)
        pp = &t->slot[*pp - 1].chain;
    if (*pp)
        *pp = t->slot[i].chain;
    t->slot[i].chain = 0;
}

/* The slot for id, made the most recently used: found, or new with a
 * full bucket (evicting the least recently used slot when all are taken). */
static slot_t *table_get(table_t *t, const uint8_t id[ID_LEN], uint64_t now_ms)
{
    uint32_t b = bucket_of(t, id);
    for (uint32_t i = t->bucket[b]; i; i = t->slot[i - 1].chain) {
        if (memcmp(t->slot[i - 1].id, id, ID_LEN) == 0) {
            lru_unlink(t, i - 1);
            lru_push(t, i - 1);
            return &t->slot[i - 1];
        }
    }
    uint32_t i;
    if (t->used < t->cap) {
        i = t->used++;
    } else {
        i = t->oldest - 1;
        lru_unlink(t, i);
        chain_unlink(t, i);
    }
    slot_t *s = &t->slot[i];
    memcpy(s->id, id, ID_LEN);
    s->milli = (uint64_t)t->per * 1000;
    s->at_ms = now_ms;
    s->chain = t->bucket[b];
    t->bucket[b] = i + 1;
    lru_push(t, i);
    return s;
}

/* Refill s for the time since its last refill: per tokens per window,
 * evenly, at most per. A clock that stepped back refills nothing; a
 * refill too small to count leaves at_ms, so short intervals add up. */
static void refill(slot_t *s, uint32_t per, uint64_t window_ms, uint64_t now_ms)
{
    uint64_t cap = (uint64_t)per * 1000;
    if (now_ms < s->at_ms) {
        s->at_ms = now_ms;
        return;
    }
    uint64_t elapsed = now_ms - s->at_ms;
    if (elapsed > window_ms)
        elapsed = window_ms;
    uint64_t add = elapsed * cap / window_ms;
    if (add == 0)
        return;
    s->milli = s->milli + add > cap ? cap : s->milli + add;
    s->at_ms = now_ms;
}

int kl_opk_limit_new(kl_opk_limit_t **out, const kl_opk_limit_cfg_t *cfg)
{
    *out = NULL;
    if (kl_opk_limit_cfg_check(cfg) != 0)
        return KL_EINVAL;
    kl_opk_limit_t *l = calloc(1, sizeof *l);
    if (l == NULL)
        return KL_ENOMEM;
    kl_opk_limit_cfg_t *c = &l->cfg;
    *c = *cfg;
    c->window_s = c->window_s ? c->window_s : KL_OPK_WINDOW_S_DEFAULT;
    c->per_pair = c->per_pair ? c->per_pair : KL_OPK_PER_PAIR_DEFAULT;
    c->per_requester = c->per_requester ? c->per_requester : KL_OPK_PER_REQUESTER_DEFAULT;
    c->per_target = c->per_target ? c->per_target : KL_OPK_PER_TARGET_DEFAULT;
    c->per_peer = c->per_peer ? c->per_peer : KL_OPK_PER_PEER_DEFAULT;
    c->max_tracked = c->max_tracked ? c->max_tracked : KL_OPK_TRACKED_DEFAULT;
    l->window_ms = (uint64_t)c->window_s * 1000;
    const uint32_t per[T_COUNT] = {c->per_pair, c->per_requester, c->per_target, c->per_peer};
    int r = KL_ENOMEM;
    l->keys = kl_secure_alloc(T_COUNT * KEY_LEN);
    if (l->keys == NULL)
        goto out;
    kl_random(l->keys, T_COUNT * KEY_LEN);
    for (int i = 0; i < T_COUNT; i++)
        if ((r = table_init(&l->t[i], c->max_tracked, per[i])) != 0)
            goto out;
    r = 0;
out:
    if (r) {
        kl_opk_limit_free(l);
        return r;
    }
    *out = l;
    return 0;
}

void kl_opk_limit_free(kl_opk_limit_t *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < T_COUNT; i++) {
        free(l->t[i].slot);
        free(l->t[i].bucket);
    }
    if (l->keys)
        kl_secure_free(l->keys);
    free(l);
}

const kl_opk_limit_cfg_t *kl_opk_limit_cfg(const kl_opk_limit_t *l)
{
    return &l->cfg;
}

static void name_id(const kl_opk_limit_t *l, int table, const uint8_t *in, size_t len,
                    uint8_t id[ID_LEN])
{
    /* Cannot fail: key and output lengths are in range. */
    (void)kl_blake2b_keyed(l->keys + table * KEY_LEN, KEY_LEN, in, len, id, ID_LEN);
}

int kl_opk_limit_take(kl_opk_limit_t *l, const char *peer, const char *requester,
                      const char *target, uint64_t now_ms)
{
    uint8_t id[T_COUNT][ID_LEN], both[2 * ID_LEN];
    slot_t *s[T_COUNT] = {NULL};
    name_id(l, T_REQUESTER, (const uint8_t *)requester, strlen(requester), id[T_REQUESTER]);
    name_id(l, T_TARGET, (const uint8_t *)target, strlen(target), id[T_TARGET]);
    memcpy(both, id[T_REQUESTER], ID_LEN);
    memcpy(both + ID_LEN, id[T_TARGET], ID_LEN);
    name_id(l, T_PAIR, both, sizeof both, id[T_PAIR]);
    if (peer)
        name_id(l, T_PEER, (const uint8_t *)peer, strlen(peer), id[T_PEER]);
    int ok = 1;
    for (int i = 0; i < T_COUNT; i++) {
        if (i == T_PEER && peer == NULL)
            continue;
        s[i] = table_get(&l->t[i], id[i], now_ms);
        refill(s[i], l->t[i].per, l->window_ms, now_ms);
        ok = ok && s[i]->milli >= 1000;
    }
    if (ok)
        for (int i = 0; i < T_COUNT; i++)
            if (s[i])
                s[i]->milli -= 1000;
    return ok;
}
