/* Federation state in the relay's storage (same conventions as storage.h,
 * whose logs carry the outboxes):
 *   - peers: name, HOST:PORT of the peer's federation port, static X25519
 *     public key, per-peer limits, the outbox log (one per peer, read by
 *     reader 0 = the link; entries are packed federation Forward messages),
 *     a random outbox epoch, and the last link state a running relay
 *     recorded (for `status`);
 *   - inbound watermarks: per origin relay name, the epoch and the highest
 *     origin seq stored or rejected (exactly-once for forwarded entries;
 *     one row per name ever configured, so bounded). */
#ifndef KOLLEGA_RELAY_STORAGE_FED_H
#define KOLLEGA_RELAY_STORAGE_FED_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/addr.h"
#include "storage.h"

/* Longest HOST:PORT of a peer. */
#define KL_FED_HOSTPORT_MAX (KL_HOST_MAX + 8)
/* Most peers one relay may configure. */
#define KL_FED_MAX_PEERS 64

typedef struct kl_storage_peer {
    uint64_t id;
    char name[KL_RELAYNAME_MAX + 1];
    char addr[KL_FED_HOSTPORT_MAX + 1];
    uint8_t key[32];
    uint64_t outbox;              /* log id */
    uint64_t epoch;
    kl_storage_quota_t quota;     /* outbox caps */
    uint32_t rate;                /* inbound frames per second on its link */
    char state[16];               /* last recorded link state ("" = never ran) */
    uint64_t state_ms;
    uint64_t depth;               /* outbox entries */
    uint64_t depth_bytes;
} kl_storage_peer_t;

/* Add a peer with an empty outbox. KL_EEXIST if the name is configured,
 * KL_ELIMIT over KL_FED_MAX_PEERS. p->id, outbox and epoch are filled. */
int kl_storage_fed_peer_add(kl_storage_t *st, kl_storage_peer_t *p);
/* Remove a peer and drop its outbox. KL_ENOTFOUND if unknown. */
int kl_storage_fed_peer_remove(kl_storage_t *st, const char *name);
/* Every peer by name (with outbox depth), at most KL_FED_MAX_PEERS. *out is
 * malloc'd and free()d by the caller (also when *n is 0, unless NULL); a
 * database without federation tables (read-only, older) has none (0, *out
 * NULL). 0, KL_ENOMEM, KL_EIO for a malformed stored peer, or a storage
 * error (then *out NULL). */
int kl_storage_fed_peer_list(kl_storage_t *st, kl_storage_peer_t **out, size_t *n);
/* Record a link state ("up", "down", "connecting", "stopped") at now_ms
 * (an unknown peer id changes nothing). 0 or a storage error. */
int kl_storage_fed_set_state(kl_storage_t *st, uint64_t peer, const char *state,
                             uint64_t now_ms);
/* Inbound watermark of origin relay name: get (*epoch and *seq are 0 when
 * none, and on error), set (insert or replace). 0 or a storage error. */
int kl_storage_fed_in_get(kl_storage_t *st, const char *name, uint64_t *epoch, uint64_t *seq);
int kl_storage_fed_in_set(kl_storage_t *st, const char *name, uint64_t epoch, uint64_t seq);

#endif
