/* The relay's network loop: one libuv loop on one thread, a TCP listener,
 * per-connection Noise NK transport, dispatch of frames, and the storage
 * thread behind it (storeq). See conn.c for a connection's life.
 *
 * Use: kl_server_new, kl_server_bind (learn the real address), write what
 * needs the address, kl_server_start (takes the storage, starts accepting),
 * uv_run until it returns, kl_server_free. SIGINT/SIGTERM (or
 * kl_server_shutdown) stop accepting, close every connection, drain and
 * commit storage, and let uv_run return. */
#ifndef KOLLEGA_RELAY_SERVER_H
#define KOLLEGA_RELAY_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/dispatch.h"
#include "core/opk_limit.h"
#include "storage/storage.h"

typedef struct kl_server kl_server_t;

typedef struct kl_server_cfg {
    kl_dispatch_cfg_t dispatch;     /* relay name, body/TTL/quota/rate limits */
    const uint8_t *static_sk;       /* relay X25519 private key (32), copied */
    uint32_t max_connections;       /* over it: accept and close at once */
    uint32_t handshake_timeout_s;   /* Noise handshake + register/auth */
    uint32_t idle_timeout_s;        /* no frame received for this long: close */
    size_t write_queue;             /* bytes queued per connection before backpressure */
    uint32_t expire_interval_s;     /* TTL sweep period (60) */
    int handle_signals;             /* 1: SIGINT/SIGTERM shut down (the CLI) */
    const char *fed_listen;         /* federation port HOST:PORT, NULL: no inbound links */
    uint32_t fed_retry_max_s;       /* peer redial backoff cap (KL_FED_RETRY_MAX_S) */
    kl_opk_limit_cfg_t opk;         /* one-time prekey limits (0 fields: defaults) */
    uint32_t ud_per_min;            /* unidentified sends per recipient and minute
                                     * (0: KL_UD_PER_MIN_DEFAULT) */
    const char *control_path;       /* the operator's control socket (server_ctl.c),
                                     * NULL: none */
    /* SIGHUP (with handle_signals): called on the loop thread to re-read
     * the configuration (it calls kl_server_reconfigure and friends).
     * NULL: SIGHUP is not handled. */
    void (*on_reload)(void *ud);
    void *reload_ud;
    const char *metrics_listen;     /* Prometheus endpoint HOST:PORT, NULL: off */
} kl_server_cfg_t;

/* Unidentified delivery (relay.proto Send.delivery_token): sends one user
 * may receive per minute without the sender identifying itself, and how
 * many recipients are tracked (least recently used evicted). */
#define KL_UD_PER_MIN_DEFAULT 60
#define KL_UD_PER_MIN_MAX 100000
#define KL_UD_TRACKED 16384

/* Defaults of the CLI (kl_server_cfg_defaults fills every field but the
 * relay name and the key). */
void kl_server_cfg_defaults(kl_server_cfg_t *cfg);

/* A server on loop (which must outlive it) with cfg, into *out (NULL on
 * failure): the caller frees it with kl_server_free after uv_run returns.
 * cfg is copied, the relay name duplicated and the static key copied into
 * guarded memory (the caller keeps and wipes its own copy). It initialises
 * its timer, signal and flush handles on loop (signals handled only with
 * cfg->handle_signals). KL_EINVAL without a relay name or key, with
 * max_connections 0, max_body over KL_MAX_BODY_LIMIT or invalid OPK
 * limits; KL_ENOMEM. */
int kl_server_new(kl_server_t **out, uv_loop_t *loop, const kl_server_cfg_t *cfg);
/* Bind host:port (port 0: ephemeral). bound gets "HOST:PORT" with the real
 * port ("[V6]:PORT" for IPv6). A libuv error (e.g. UV_EADDRINUSE) or
 * KL_EINVAL for an unparsable host. */
int kl_server_bind(kl_server_t *s, const char *host, uint16_t port, char *bound, size_t cap);
/* Hand st to the storage thread and start listening. On failure st is
 * still the caller's. */
int kl_server_start(kl_server_t *s, kl_storage_t *st);
/* The federation address bound by kl_server_start ("" when none). */
const char *kl_server_fed_address(const kl_server_t *s);
/* Apply the settings of cfg that can change while the relay runs (loop
 * thread; connections stay open): rate, burst, max_connections,
 * handshake and idle timeouts (for timers armed from now on), max_body,
 * quota, TTLs, write_queue, opk limits, ud_per_min and fed_retry_max_s.
 * Every other field of cfg is ignored. 0, or KL_EINVAL (a value out of
 * range: nothing changed). */
int kl_server_reconfigure(kl_server_t *s, const kl_server_cfg_t *cfg);
/* Cap the database at max_bytes (0: no cap) on the storage thread; the
 * outcome is logged when the storage thread has applied it. */
void kl_server_set_max_bytes(kl_server_t *s, uint64_t max_bytes);
/* Read the federation peers from storage again (kollega-relay peer
 * add/remove changed them): dial the new ones, close the links of removed
 * ones. The outcome is logged when storage has answered. */
void kl_server_reload_peers(kl_server_t *s);
/* The metrics address bound by kl_server_start ("" when off). */
const char *kl_server_metrics_address(const kl_server_t *s);
/* Begin the orderly shutdown (loop thread). */
void kl_server_shutdown(kl_server_t *s);
/* Same from any thread (tests). */
void kl_server_shutdown_async(kl_server_t *s);
/* Wall-clock time in ms since the Unix epoch (entry timestamps, expiry). */
uint64_t kl_server_wall_ms(void);

/* Free after uv_run has returned. */
void kl_server_free(kl_server_t *s);

#endif
