/* Skipped message keys of symmetric-key chains, shared by the Double Ratchet
 * (proto/ratchet.c) and sender keys (proto/senderkey.c). Internal to
 * libkollega.
 *
 * Both advance a chain with the same KDF (kl_chain_kdf). A message that
 * arrives ahead of its chain makes the receiver derive and keep the keys of
 * the messages it skipped, so they can still be read when they come. The
 * store holds those keys, each under (chain, n): the chain is a 32-byte id
 * (the sender's ratchet public key; all zeros for a sender-key state, which
 * has one chain) and n the message number in it.
 *
 * The store is bounded: it holds at most `max` keys (set at kl_skipped_init),
 * oldest first, and evicts the oldest to take newer ones. Keys live in a
 * guarded block (kl_secure_alloc) that grows on demand by doubling from 16
 * entries up to `max`, so a state that never sees out-of-order delivery
 * costs nothing; every slot past the keys held is zero.
 *
 * Decryption is transactional: the keys a message would skip are derived
 * into a stage (kl_skipped_stage_chain), and added to the store
 * (kl_skipped_commit) only once the message has authenticated. How far one
 * message may skip is the caller's rule: it checks the gap before staging. */
#ifndef KOLLEGA_SKIPPED_H
#define KOLLEGA_SKIPPED_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/buf.h"

typedef struct kl_skipped_key {
    uint8_t chain[32]; /* which chain the key belongs to */
    uint32_t n;        /* message number within the chain */
    uint8_t mk[32];    /* the message key */
} kl_skipped_key_t;

/* The store. Lives inside the caller's (guarded) state; the fields are read
 * by the caller's serialiser (e[0..n), oldest first) and changed only
 * through the functions below. */
typedef struct kl_skipped {
    kl_skipped_key_t *e; /* kl_secure_alloc'd, cap entries; NULL while cap is 0 */
    size_t n;            /* keys held */
    size_t cap;
    size_t max;          /* the bound on n */
} kl_skipped_t;

/* Keys derived for one message, not yet in the store. */
typedef struct kl_skipped_stage {
    kl_skipped_key_t *e; /* kl_secure_alloc'd on the first key staged */
    size_t n;
    size_t cap;          /* room allocated on first use */
} kl_skipped_stage_t;

/* One step of a chain: MK = HMAC-SHA256(CK, 0x01) into mk, and CK is
 * replaced by HMAC-SHA256(CK, 0x02). Cannot fail; wipes its temporary. */
void kl_chain_kdf(uint8_t ck[32], uint8_t mk[32]);

/* An empty store that will hold at most max keys (max >= 1). Allocates
 * nothing. */
void kl_skipped_init(kl_skipped_t *s, size_t max);
/* Wipe and free the keys; the store is empty afterwards (same max). */
void kl_skipped_free(kl_skipped_t *s);
/* The index of the oldest key stored for (chain, n), or SIZE_MAX. */
size_t kl_skipped_find(const kl_skipped_t *s, const uint8_t chain[32], uint32_t n);
/* Remove key i (< s->n, e.g. once used), keeping the order; the freed slot
 * is wiped. */
void kl_skipped_remove(kl_skipped_t *s, size_t i);
/* Append a key as the newest: KL_ELIMIT if the store is full (it never
 * evicts), KL_ENOMEM; unchanged on failure. */
int kl_skipped_push(kl_skipped_t *s, const kl_skipped_key_t *k);

/* The serialised keys, the tail of the ratchet's and the sender key's
 * serialised states (integers big-endian):
 *   u32 count | count x ([chain 32] | u32 n | MK 32), oldest first
 * with the chain only when chain_ids is set (a store of one chain leaves
 * it out). kl_skipped_wire_len is its size; kl_skipped_write writes it
 * (the writer's error, KL_ETOOBIG, if it does not fit). */
size_t kl_skipped_wire_len(const kl_skipped_t *s, int chain_ids);
int kl_skipped_write(const kl_skipped_t *s, kl_writer_t *w, int chain_ids);
/* Read `count` keys (the count the caller has read) into an empty store,
 * which must then be the end of the input: KL_EPROTO if count exceeds max
 * or the input left is not exactly count keys (checked before allocating),
 * KL_ENOMEM. Keys read without chain ids get the all-zero chain. On
 * failure the store may hold some keys: the caller frees it. */
int kl_skipped_read(kl_skipped_t *s, kl_reader_t *rd, uint32_t count, int chain_ids);

/* An empty stage that will allocate room for cap keys on first use. */
void kl_skipped_stage_init(kl_skipped_stage_t *st, size_t cap);
/* Wipe and free the staged keys. */
void kl_skipped_stage_free(kl_skipped_stage_t *st);
/* Advance the chain key ck from message *n to message `until`, staging the
 * key of every message passed over under (chain, number); *n becomes
 * `until`. Nothing happens when *n >= until. KL_ELIMIT if the stage has no
 * room for them all, KL_ENOMEM; on failure nothing is changed. ck and *n
 * are the caller's staged copies: it commits them with the stage. */
int kl_skipped_stage_chain(kl_skipped_stage_t *st, const uint8_t chain[32], uint8_t ck[32],
                           uint32_t *n, uint32_t until);
/* Add the staged keys to the store as its newest, evicting the oldest
 * stored keys (and, should the stage alone exceed max, its own oldest) to
 * stay within max. KL_ENOMEM if the store could not grow; then nothing is
 * changed. The stage is left as it was (the caller frees it). */
int kl_skipped_commit(kl_skipped_t *s, const kl_skipped_stage_t *st);

#endif
