/* Token buckets by name (buckets.h): an LRU list over a fixed slot array
 * with a chained hash index. Slot and bucket indices are stored plus one,
 * so that the calloc'd zero means "none" and the arrays need no
 * initialising pass (their pages are touched only as slots are used). */
#include <stdlib.h>
#include <string.h>

#include "buckets.h"
#include "kollega/crypto.h"
#include "kollega/err.h"

#define ID_LEN 16
#define KEY_LEN 32

struct kl_bucket {
    uint8_t id[ID_LEN];  /* keyed hash of the name */
    uint64_t milli;      /* tokens, in thousandths */
    uint64_t at_ms;      /* last refill */
    uint32_t newer;      /* LRU neighbours (index + 1, 0: none) */
    uint32_t older;
    uint32_t chain;      /* next slot in the same hash bucket (index + 1) */
};

struct kl_buckets {
    kl_bucket_t *slot;
    uint32_t *bucket;    /* first slot of each hash bucket (index + 1) */
    uint32_t mask;       /* hash buckets - 1 (a power of two) */
    uint32_t used;       /* slots 0..used-1 hold entries */
    uint32_t cap;
    uint32_t newest;     /* LRU ends (index + 1) */
    uint32_t oldest;
    uint32_t per;        /* tokens per window */
    uint64_t window_ms;
    uint8_t *key;        /* hashing key, guarded memory */
};

int kl_buckets_new(kl_buckets_t **out, uint32_t cap, uint32_t per, uint64_t window_ms)
{
    uint32_t nb = 1;
    *out = NULL;
    if (cap == 0 || cap > (1u << 30) || per == 0 || window_ms == 0)
        return KL_EINVAL;
    while (nb < cap)
        nb <<= 1;
    kl_buckets_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return KL_ENOMEM;
    t->slot = calloc(cap, sizeof *t->slot);
    t->bucket = calloc(nb, sizeof *t->bucket);
    t->key = kl_secure_alloc(KEY_LEN);
    if (t->slot == NULL || t->bucket == NULL || t->key == NULL) {
        kl_buckets_free(t);
        return KL_ENOMEM;
    }
    kl_random(t->key, KEY_LEN);
    t->mask = nb - 1;
    t->cap = cap;
    t->per = per;
    t->window_ms = window_ms;
    *out = t;
    return 0;
}

void kl_buckets_free(kl_buckets_t *t)
{
    if (t == NULL)
        return;
    free(t->slot);
    free(t->bucket);
    if (t->key)
        kl_secure_free(t->key);
    free(t);
}

static uint32_t bucket_of(const kl_buckets_t *t, const uint8_t id[ID_LEN])
{
    uint32_t h;
    memcpy(&h, id, sizeof h); /* the id is a keyed hash: any 4 bytes are uniform */
    return h & t->mask;
}

static void lru_unlink(kl_buckets_t *t, uint32_t i)
{
    kl_bucket_t *s = &t->slot[i];
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

static void lru_push(kl_buckets_t *t, uint32_t i)
{
    kl_bucket_t *s = &t->slot[i];
    s->newer = 0;
    s->older = t->newest;
    if (t->newest)
        t->slot[t->newest - 1].newer = i + 1;
    t->newest = i + 1;
    if (t->oldest == 0)
        t->oldest = i + 1;
}

/* Remove slot i from its hash chain. */
static void chain_unlink(kl_buckets_t *t, uint32_t i)
{
    uint32_t *pp = &t->bucket[bucket_of(t, t->slot[i].id)];
    while (*pp && *pp != i + 1)
        pp = &t->slot[*pp - 1].chain;
    if (*pp)
        *pp = t->slot[i].chain;
    t->slot[i].chain = 0;
}

/* Refill s for the time since its last refill: per tokens per window,
 * evenly, at most per. A clock that stepped back refills nothing; a
 * refill too small to count leaves at_ms, so short intervals add up. */
static void refill(const kl_buckets_t *t, kl_bucket_t *s, uint64_t now_ms)
{
    uint64_t cap = (uint64_t)t->per * 1000;
    if (s->milli > cap) /* the rate was lowered (kl_buckets_set_rate) */
        s->milli = cap;
    if (now_ms < s->at_ms) {
        s->at_ms = now_ms;
        return;
    }
    uint64_t elapsed = now_ms - s->at_ms;
    if (elapsed > t->window_ms)
        elapsed = t->window_ms;
    uint64_t add = elapsed * cap / t->window_ms;
    if (add == 0)
        return;
    s->milli = s->milli + add > cap ? cap : s->milli + add;
    s->at_ms = now_ms;
}

kl_bucket_t *kl_buckets_get(kl_buckets_t *t, const void *name, size_t len, uint64_t now_ms)
{
    uint8_t id[ID_LEN];
    /* Cannot fail: key and output lengths are in range. */
    (void)kl_blake2b_keyed(t->key, KEY_LEN, name, len, id, ID_LEN);
    uint32_t b = bucket_of(t, id);
    for (uint32_t i = t->bucket[b]; i; i = t->slot[i - 1].chain) {
        if (memcmp(t->slot[i - 1].id, id, ID_LEN) == 0) {
            lru_unlink(t, i - 1);
            lru_push(t, i - 1);
            refill(t, &t->slot[i - 1], now_ms);
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
    kl_bucket_t *s = &t->slot[i];
    memcpy(s->id, id, ID_LEN);
    s->milli = (uint64_t)t->per * 1000;
    s->at_ms = now_ms;
    s->chain = t->bucket[b];
    t->bucket[b] = i + 1;
    lru_push(t, i);
    return s;
}

int kl_bucket_ready(const kl_bucket_t *b)
{
    return b->milli >= 1000;
}

void kl_bucket_take(kl_bucket_t *b)
{
    b->milli -= 1000;
}

int kl_buckets_take(kl_buckets_t *t, const void *name, size_t len, uint64_t now_ms)
{
    kl_bucket_t *b = kl_buckets_get(t, name, len, now_ms);
    if (!kl_bucket_ready(b))
        return 0;
    kl_bucket_take(b);
    return 1;
}

int kl_buckets_set_rate(kl_buckets_t *t, uint32_t per, uint64_t window_ms)
{
    if (per == 0 || window_ms == 0)
        return KL_EINVAL;
    t->per = per;
    t->window_ms = window_ms;
    return 0;
}
