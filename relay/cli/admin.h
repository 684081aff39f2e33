/* Relay state on disk and the operations of the admin CLI that do not need
 * the network: where the data directory is, initialising it (key + database
 * + meta), and creating invite tokens. main.c is only argument parsing and
 * output around these.
 *
 * A data directory holds relay.key (X25519 private key, 0600) and relay.db
 * (storage). Meta keys written here:
 *   name        relay name (addresses are handle@name)
 *   public_key  base64url relay public key (so invite/status never read the
 *               private key)
 *   listen      configured listen address (init --listen; default
 *               127.0.0.1:7447)
 *   address     the address `serve` actually bound last (real port)
 *   advertise   optional HOST:PORT that invite tokens carry instead */
#ifndef KOLLEGA_RELAY_ADMIN_H
#define KOLLEGA_RELAY_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/addr.h"
#include "storage/storage.h"

#define KL_DEFAULT_LISTEN "127.0.0.1:7447"
#define KL_DB_NAME "relay.db"
#define KL_PATH_MAX 4096

/* --data, else $KOLLEGA_RELAY_DATA, else $XDG_DATA_HOME/kollega-relay, else
 * $HOME/.local/share/kollega-relay. KL_ENOTFOUND if none applies,
 * KL_ETOOBIG if too long. */
int kl_admin_data_dir(const char *flag, char *out, size_t cap);

/* Create dir and missing parents with mode 0700. KL_EIO on failure. */
int kl_admin_mkdir(const char *dir);

/* join dir and name into out (KL_ETOOBIG if it does not fit). */
int kl_admin_path(const char *dir, const char *name, char *out, size_t cap);

typedef enum kl_admin_state {
    KL_STATE_NONE,      /* neither key nor database: initialise */
    KL_STATE_PARTIAL,   /* a key but no named database: an interrupted init, resumable */
    KL_STATE_READY,     /* key and named database */
    KL_STATE_NO_KEY,    /* a named database without its key: refuse */
} kl_admin_state_t;

/* The state of data directory dir into *out (the database is opened
 * read-only to look for its meta name). KL_ETOOBIG if a path is too long,
 * else a kl_storage_open / kl_storage_meta_get error. */
int kl_admin_state(const char *dir, kl_admin_state_t *out);

/* Initialise dir (state NONE or PARTIAL): key, database, meta name,
 * listen and public_key. sync_normal selects KL_STORAGE_SYNC_NORMAL.
 * The meta rows are written in one batch, name last (it marks the state
 * READY). KL_EINVAL for an invalid name or listen address, KL_ETOOBIG for
 * a too long path, else the error of kl_admin_mkdir, the key file
 * (KL_EREFUSED: an existing key readable by others) or storage. */
int kl_admin_init(const char *dir, const char *name, const char *listen, int sync_normal);


/* The HOST:PORT an invite token carries: advertise if set, else the bound
 * address, else the configured listen address. KL_ESTATE when that is a
 * wildcard (0.0.0.0, ::): the relay cannot know where clients reach it,
 * and its name need not resolve to it, so advertise must be set. */
int kl_admin_token_addr(kl_storage_t *st, char *host, size_t cap, uint16_t *port);
/* 1 if host is a wildcard address (0.0.0.0, :: or empty). */
int kl_admin_wildcard(const char *host);

/* Create an invite valid for uses registrations until now + ttl_s and
 * format its token (KL_ESTATE: see kl_admin_token_addr). Only the code's hash is stored; the token (which holds
 * the code) exists only in *token. */
int kl_admin_invite(kl_storage_t *st, uint32_t uses, uint64_t ttl_s, uint64_t now_ms, char *token,
                    size_t cap, uint64_t *expires_ms);

/* A one-use invite bound to existing user handle (storage_admin.h): it
 * registers only that handle, replacing the user's identity key (a member
 * who lost their device). KL_ENOTFOUND if there is no such user. */
int kl_admin_invite_reset(kl_storage_t *st, const char *handle, uint64_t ttl_s, uint64_t now_ms,
                          char *token, size_t cap, uint64_t *expires_ms);

/* RFC 3339 UTC ("2025-03-01T12:00:00Z") of ms since the epoch. */
void kl_admin_time(uint64_t ms, char *out, size_t cap);

/* Parse a duration: N followed by s, m, h or d (plain N = seconds), N in
 * 1..UINT32_MAX, into *seconds. KL_EINVAL otherwise (*seconds untouched). */
int kl_admin_duration(const char *s, uint64_t *seconds);

#endif
