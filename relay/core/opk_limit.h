/* Limits on how fast one-time prekeys (OPKs) are consumed, so that nobody
 * can drain a user's OPKs by calling prekey_fetch in a loop (see
 * docs/OPERATING.md "One-time prekey limits"). The relay asks
 * kl_opk_limit_take before every prekey fetch of a local user; when it
 * says no, the fetch is still answered, with the
 * identity key and signed prekey but WITHOUT a one-time prekey, and
 * nothing is consumed. A session can always start from the signed prekey
 * alone (X3DH without OPK), so a limited requester is never locked out:
 * it only stops costing the target its OPKs. Answering RATE_LIMITED
 * instead would break an honest client that retries or re-installs, and
 * would tell a prober nothing the empty OPK slot does not.
 *
 * Every limit is a token bucket of `n` OPK-consuming fetches per window
 * (refilled evenly over the window), and a fetch consumes an OPK only when
 * EVERY bucket it touches has a token (then it takes one from each):
 *   - pair:      requester x target, per_pair per window (default 1: a
 *                requester that fetches the same target again in the
 *                window gets the bundle without an OPK);
 *   - requester: per_requester per window across all targets;
 *   - target:    per_target per window in total, whoever asks;
 *   - peer:      for a fetch a federation peer proxies, per_peer per window
 *                for that peer relay as a whole (its users are named by the
 *                peer, which could invent any number of them).
 * A requester is an address: "handle@ourrelay" for a local user,
 * "handle@peer" for a peer's user as the peer vouches (the relay part
 * must be the peer the link is authenticated as), or "@peer" when the
 * peer names nobody.
 *
 * The state is in memory on the loop, not in storage: it is advisory
 * (losing it at a restart gives every requester one fresh window, which a
 * restart-forcing attacker cannot do at will), it is touched on every
 * fetch (a storage write per fetch would cost a commit), and it must
 * never make a fetch wait. Each table is bounded (max_tracked entries;
 * the least recently used is evicted, which at worst gives that requester
 * a fresh bucket) and keyed by a keyed BLAKE2b of the names (a random key
 * per process), so memory holds no addresses and a hostile peer cannot
 * aim many names at one hash bucket. */
#ifndef KOLLEGA_RELAY_OPK_LIMIT_H
#define KOLLEGA_RELAY_OPK_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#define KL_OPK_WINDOW_S_DEFAULT 3600
#define KL_OPK_PER_PAIR_DEFAULT 1
#define KL_OPK_PER_REQUESTER_DEFAULT 20
#define KL_OPK_PER_TARGET_DEFAULT 30
#define KL_OPK_PER_PEER_DEFAULT 200
#define KL_OPK_TRACKED_DEFAULT 16384
/* Upper bounds of the configuration (larger values are refused). */
#define KL_OPK_WINDOW_S_MAX (7u * 24 * 3600)
#define KL_OPK_PER_MAX 1000000u
#define KL_OPK_TRACKED_MAX (1u << 20)

/* 0 in any field means its default. */
typedef struct kl_opk_limit_cfg {
    uint32_t window_s;
    uint32_t per_pair;
    uint32_t per_requester;
    uint32_t per_target;
    uint32_t per_peer;
    uint32_t max_tracked;      /* entries per table */
} kl_opk_limit_cfg_t;

typedef struct kl_opk_limit kl_opk_limit_t;

/* Check cfg: 0 or KL_EINVAL (a value over its *_MAX). */
int kl_opk_limit_cfg_check(const kl_opk_limit_cfg_t *cfg);
/* A limiter with cfg's limits (defaults filled in), all buckets full.
 * 0, KL_EINVAL (kl_opk_limit_cfg_check) or KL_ENOMEM. The tables are
 * allocated here, once: nothing later allocates. */
int kl_opk_limit_new(kl_opk_limit_t **out, const kl_opk_limit_cfg_t *cfg);
/* Wipes the hashing key; NULL is fine. */
void kl_opk_limit_free(kl_opk_limit_t *l);
/* New limits (a config reload; 0 fields: defaults; max_tracked is kept):
 * every requester keeps what it has used, at most the new limits. 0 or
 * KL_EINVAL (nothing changes). */
int kl_opk_limit_set(kl_opk_limit_t *l, const kl_opk_limit_cfg_t *cfg);
/* May requester consume one of target's OPKs at now_ms (wall clock; a
 * clock stepping back refills nothing)? peer names the federation peer that
 * proxied the fetch, NULL for a local requester. 1: yes, and a token was
 * taken from every bucket involved; 0: no (serve without OPK), nothing
 * taken, also when out of memory; it never fails otherwise. Strings are NUL-terminated; their length is not limited here (the
 * callers pass parsed addresses). */
int kl_opk_limit_take(kl_opk_limit_t *l, const char *peer, const char *requester,
                      const char *target, uint64_t now_ms);
/* The effective configuration (defaults filled in): points into l, valid
 * until kl_opk_limit_free (kl_opk_limit_set changes what it holds). */
const kl_opk_limit_cfg_t *kl_opk_limit_cfg(const kl_opk_limit_t *l);

#endif
