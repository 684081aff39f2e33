/* Broadcast channels across relays (proto/federation.proto "ChannelNotify"),
 * in storage.
 *
 * Home relay: a federation peer that mirrors one of our channels is ONE
 * subscriber of it, the shadow user "@<peer name>" (storage_gfed.h; no
 * local handle or user address starts with '@'), with a cursor like any
 * subscriber, so a post stays until the peer has stored it and acked.
 *
 * Mirror relay (the subscribers' relay): a channel "!name@home" that local
 * users subscribe to is a row of `channels` like a local one (its ops
 * copied from the home relay and validated here, its own post log, local
 * subscriptions with cursors), plus a channel_mirrors row: home_seq, the
 * home relay's seq of the last post taken (stored or refused: the
 * exactly-once watermark, updated in the same transaction as the posts),
 * and whether the mirror is active (subscribed at the home relay). Before
 * its first op arrives the row is a placeholder (next_index 0). */
#ifndef KOLLEGA_RELAY_STORAGE_CMIRROR_H
#define KOLLEGA_RELAY_STORAGE_CMIRROR_H

#include <stddef.h>
#include <stdint.h>

#include "storage.h"

typedef struct kl_storage_cmirror {
    kl_storage_channel_t chan;
    uint64_t home_seq;
    int active;
    uint64_t n_subs;          /* local subscribers */
} kl_storage_cmirror_t;

/* The mirror of address, created (placeholder channel row and mirror row)
 * when missing, and marked active. *out gets its channel row. KL_EEXIST if
 * address is a channel of this relay (not a mirror). */
int kl_storage_cmirror_ensure(kl_storage_t *st, const char *address, kl_storage_channel_t *out);
/* The mirror of address: KL_ENOTFOUND when there is none. */
int kl_storage_cmirror_get(kl_storage_t *st, const char *address, kl_storage_cmirror_t *out);
/* Set a mirror's watermark and active flag (no mirror row for chan: nothing
 * changes, 0). 0 or a storage error. */
int kl_storage_cmirror_set(kl_storage_t *st, uint64_t chan, uint64_t home_seq, int active);
/* The active mirrors of channels of relay: *out malloc'd, NUL-separated
 * addresses (*count of them, *len bytes; NULL when none), at most 4096. */
int kl_storage_cmirror_list(kl_storage_t *st, const char *relay, char **out, size_t *len,
                            size_t *count);
/* For `status`, about federation peer relay: *mirrors, the active mirrors
 * here of its channels; *mirrored, our channels it mirrors; *lag, the
 * posts of those it has not taken yet. Zeros for a database without these
 * tables (read-only open of an older one). It never fails: it returns 0,
 * and a query that cannot be prepared or stepped leaves its zeros. */
int kl_storage_cmirror_stats(kl_storage_t *st, const char *relay, uint64_t *mirrors,
                             uint64_t *mirrored, uint64_t *lag);
/* Home relay: the peers (names, without the '@') subscribed to channel id
 * chan, in the same form as kl_storage_cmirror_list. */
int kl_storage_channel_relays(kl_storage_t *st, uint64_t chan, char **out, size_t *len,
                              size_t *count);

#endif
