/* Relay federation (docs/DESIGN.md "Federation"; wire format in
 * proto/federation.proto). One kl_fed_t per running relay, on the loop
 * thread: the configured peers, one outgoing Noise_KK link per peer
 * (redialled with capped, jittered exponential backoff), the inbound links
 * peers open to us on the federation port, each peer's outbox pump, and
 * proxied lookups / prekey fetches / group requests of local clients
 * (groups: fed_group.c).
 *
 * The server owns it: kl_fed_new at start (peers read from storage), jobs
 * of kind KL_JOB_FED pass through kl_fed_submit / kl_fed_job_done, and
 * kl_fed_stop at shutdown (before the storage thread drains). Peers are
 * read at start and again on SIGHUP (kl_server_reload_peers ->
 * kl_fed_set_peers), so `kollega-relay peer add/remove` takes effect then. */
#ifndef KOLLEGA_RELAY_FED_H
#define KOLLEGA_RELAY_FED_H

#include <stddef.h>
#include <stdint.h>

#include "core/dispatch.h"
#include "jobs/fed_job.h"
#include "jobs/jobs.h"
#include "kollega/wire.h"
#include "storage/storage_fed.h"

struct uv_loop_s;
typedef struct kl_fed kl_fed_t;

/* Forwards in flight per link (the receiver refuses more). */
#define KL_FED_WINDOW KL_FED_BATCH
/* Reconnect backoff: first delay and the default cap. */
#define KL_FED_RETRY_MIN_MS 250
#define KL_FED_RETRY_MAX_S 30
/* How long a proxied lookup / prekey fetch waits for the peer. */
#define KL_FED_PROXY_TIMEOUT_S 5

typedef struct kl_fed_cfg {
    struct uv_loop_s *loop;
    const char *relay_name;        /* outlives the module */
    const uint8_t *static_sk;      /* relay X25519 private key, outlives the module */
    const char *listen;            /* HOST:PORT for inbound links, NULL: none */
    uint32_t retry_max_ms;         /* reconnect backoff cap */
    uint32_t proxy_timeout_ms;
    uint32_t ttl_max_s;            /* forwarded entries expire no later than this */
    kl_storage_quota_t inbox_quota;
    /* Server glue (loop thread). */
    void (*submit)(void *ud, kl_job_t *job);                     /* to storage */
    void (*client_done)(void *ud, kl_job_t *job);                /* a proxied op finished */
    void (*push)(void *ud, uint64_t user, const kl_frame_t *f);  /* deliver to a local user */
    /* A group frame to every live connection of users (group backpressure
     * rules, push_group.c). */
    void (*push_list)(void *ud, const uint64_t *users, size_t n, const kl_frame_t *f,
                      const char *group);
    /* The rules peers' group requests are dispatched under (outlives the
     * module; NULL: group requests of peers are refused). */
    const struct kl_dispatch_cfg *dispatch;
    void *ud;
} kl_fed_cfg_t;

/* Create the module for n peers (copied) and bind the federation listener
 * when cfg->listen is set (bound gets HOST:PORT, "" otherwise). Dialling
 * starts with kl_fed_start. 0, KL_ENOMEM, KL_EINVAL (listen address) or a
 * libuv error (port taken). */
int kl_fed_new(kl_fed_t **out, const kl_fed_cfg_t *cfg, const kl_storage_peer_t *peers,
               size_t n, char *bound, size_t cap);
/* New limits (a config reload): the redial backoff cap, forwarded
 * entries' TTL cap and the inbox quota of forwarded entries. f may be
 * NULL. */
void kl_fed_set_limits(kl_fed_t *f, uint32_t retry_max_ms, uint32_t ttl_max_s,
                       const kl_storage_quota_t *quota);
/* The configured peers are now peers[0..n) (a reload): peers not there
 * any more have their links closed and are never dialled again, new ones
 * are dialled; unchanged ones (same id, name, address and key) keep their
 * links. A changed address or key counts as removed and added. *added,
 * *removed get the counts. 0 or KL_ENOMEM (nothing changed). */
int kl_fed_set_peers(kl_fed_t *f, const kl_storage_peer_t *peers, size_t n, size_t *added,
                     size_t *removed);
/* Start dialling every peer. */
void kl_fed_start(kl_fed_t *f);
/* The configured peer named relay, or NULL (f may be NULL). */
const kl_storage_peer_t *kl_fed_peer(const kl_fed_t *f, const char *relay);
/* The peers as request handling sees them (core/dispatch.h); f may be NULL
 * (then the directory knows no peer). */
kl_peer_directory_t kl_fed_directory(const kl_fed_t *f);
/* Number of configured peers (f may be NULL). */
size_t kl_fed_peer_count(const kl_fed_t *f);
/* Federation links (in or out) past their handshake and open. */
size_t kl_fed_link_count(const kl_fed_t *f);
/* Metrics: the name of peer i (below kl_fed_peer_count) and whether our
 * link to it is up. */
const char *kl_fed_peer_link(const kl_fed_t *f, size_t i, int *up);
/* fed_group.c: tell each peer with users among addrs (n NUL-separated
 * addresses) that group has a new message (ops 0) or op (ops 1): ONE
 * GroupNotify per peer, on its link if up (best effort). f may be NULL. */
void kl_fed_group_notify(kl_fed_t *f, const char *group, const char *addrs, size_t n, int ops);
/* fed_channel.c: send each peer named in relays (n NUL-separated relay
 * names) ONE ChannelNotify for channel (a post or op was committed), on
 * its link if up (best effort: the peer also syncs at every link-up). */
void kl_fed_channel_notify(kl_fed_t *f, const char *channel, const char *relays, size_t n);
/* 1 if a KL_JOB_FED job goes to kl_fed_submit rather than storage. */
int kl_fed_is_proxy(const kl_job_t *job);
/* Take a proxied op of a client: it comes back through cfg->client_done
 * with the peer's answer or an error (never re-entrantly). */
void kl_fed_submit(kl_fed_t *f, kl_job_t *job);
/* A KL_JOB_FED job came back from storage. Returns 1 if the module took it,
 * 0 if it belongs to a client connection (the server hands it on). */
int kl_fed_job_done(kl_fed_t *f, kl_job_t *job);
/* Shutdown: record "stopped" for every peer, fail waiting proxied ops,
 * close every handle. Storage completions may still arrive afterwards. */
void kl_fed_stop(kl_fed_t *f);
/* Free after the loop has closed the handles; NULL is fine. */
void kl_fed_free(kl_fed_t *f);

#endif
