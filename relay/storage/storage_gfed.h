/* Storage for ERFA groups with members on other relays (the home relay's
 * side; proto/federation.proto "GroupProxy"). A remote user named by a
 * group's log, or making a proxied group request, is a "shadow" row of the
 * users table whose handle is its full address (handle@relay: no local
 * handle contains '@', so the two never collide, and no client can
 * authenticate as one). The shadow gives it a user id, so membership,
 * cursors and group_list work exactly as for a local user; its inbox log
 * stays empty (1:1 messages to it are forwarded to its own relay). */
#ifndef KOLLEGA_RELAY_STORAGE_GFED_H
#define KOLLEGA_RELAY_STORAGE_GFED_H

#include <stddef.h>
#include <stdint.h>

#include "storage.h"

/* The shadow user of address (handle@another relay) with identity key key.
 * *id gets its id; 0 when there is none with that key. With create, a
 * missing shadow is created, and one with another key gets this key (the
 * group log that names the address is the authority). 0 or a storage
 * error. */
int kl_storage_shadow_user(kl_storage_t *st, const char *address, const uint8_t key[32],
                           int create, uint64_t *id);
/* The addresses of the shadow users among users[0..n): *out is malloc'd,
 * NUL-separated (*count of them, *len bytes in all; NULL when none).
 * KL_EINVAL for n over 1024. One prepared statement, no per-call prepare. */
int kl_storage_shadow_addresses(kl_storage_t *st, const uint64_t *users, size_t n, char **out,
                                size_t *len, size_t *count);

#endif
