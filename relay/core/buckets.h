/* A bounded table of token buckets keyed by name, for limits the relay
 * keeps in memory on the loop (one-time prekey consumption, unidentified
 * sends per recipient).
 *
 * Each bucket holds up to `per` tokens and refills evenly, `per` tokens per
 * window; a new name starts with a full bucket. The table holds at most
 * `cap` names, allocated once at creation (nothing allocates later); when
 * it is full the least recently used name is evicted, which at worst gives
 * that name a fresh bucket. Names are kept only as a keyed BLAKE2b (a
 * random key per table and process), so memory holds no addresses and
 * nobody can choose names that collide in one hash bucket. */
#ifndef KOLLEGA_RELAY_BUCKETS_H
#define KOLLEGA_RELAY_BUCKETS_H

#include <stddef.h>
#include <stdint.h>

typedef struct kl_buckets kl_buckets_t;
typedef struct kl_bucket kl_bucket_t;

/* A table of cap names (cap 1..2^30), per tokens per window_ms (both >= 1),
 * hashed with a fresh random key, into *out (NULL on failure): the caller
 * owns it and frees it with kl_buckets_free. 0, KL_EINVAL or KL_ENOMEM. */
int kl_buckets_new(kl_buckets_t **out, uint32_t cap, uint32_t per, uint64_t window_ms);
/* Wipes the hashing key; NULL is fine. */
void kl_buckets_free(kl_buckets_t *t);
/* New rate (a config reload): buckets keep their tokens, at most the new
 * per, and refill at the new rate. KL_EINVAL for 0 (nothing changes). */
int kl_buckets_set_rate(kl_buckets_t *t, uint32_t per, uint64_t window_ms);

/* The bucket of name[0..len), made the most recently used and refilled to
 * now_ms (wall clock; a clock stepping back refills nothing). Valid until
 * the next kl_buckets_get on the same table. */
kl_bucket_t *kl_buckets_get(kl_buckets_t *t, const void *name, size_t len, uint64_t now_ms);
/* 1 if the bucket holds a whole token. */
int kl_bucket_ready(const kl_bucket_t *b);
/* Take one token (the caller checked kl_bucket_ready). */
void kl_bucket_take(kl_bucket_t *b);

/* kl_buckets_get then, when ready, take: 1 when a token was taken, else 0. */
int kl_buckets_take(kl_buckets_t *t, const void *name, size_t len, uint64_t now_ms);

#endif
