/* Internals shared by server.c (listener, lifecycle, push map, storage
 * completions) and conn.c (one connection's I/O). Not for other modules. */
#ifndef KOLLEGA_RELAY_SERVER_INT_H
#define KOLLEGA_RELAY_SERVER_INT_H

#include <uv.h>

#include "core/buckets.h"
#include "core/dispatch.h"
#include "fed/fed.h"
#include "kollega/stream.h"
#include "base/metrics.h"
#include "metrics_http.h"
#include "server.h"
#include "jobs/storeq.h"

/* Jobs in flight per connection: at SOFT reading pauses, at HARD further
 * requests get RATE_LIMITED. Together with the write-queue cap this bounds
 * what one connection can make the relay hold. */
#define KL_CONN_JOBS_SOFT 32
#define KL_CONN_JOBS_HARD 256
/* Frames held while a register/auth is being checked. */
#define KL_CONN_BACKLOG 16
/* Largest handshake message accepted (NK message 1 is 48 bytes). */
#define KL_CONN_HS_MAX 128
/* How long a connection being closed may take to flush its last reply. */
#define KL_CONN_LINGER_MS 5000
/* Shared read buffer: libuv reads are synchronous in the loop. */
#define KL_READ_BUF 65536

typedef struct kl_conn kl_conn_t;
typedef struct kl_missed kl_missed_t; /* push_group.c */
/* Groups whose pushes one connection may miss and have announced later. */
#define KL_CONN_MISSED_MAX 64

struct kl_server {
    uv_loop_t *loop;
    kl_server_cfg_t cfg;
    char *relay_name;            /* owned copy behind cfg.dispatch.relay_name */
    uint8_t *static_sk;          /* guarded memory */
    kl_opk_limit_t *opk_limit;   /* behind cfg.dispatch.opk_limit */
    kl_buckets_t *ud_limit;      /* behind cfg.dispatch.ud_limit */
    uv_tcp_t listener;
    int listener_open;
    uv_timer_t expire_timer;
    uv_signal_t sigint, sigterm, sighup;
    uv_async_t wakeup;           /* kl_server_shutdown_async */
    int handles_init;
    kl_storeq_t *q;
    int stopping;
    uint64_t next_conn_id;
    uint32_t n_conns;
    kl_conn_t *conns;            /* every open connection */
    kl_conn_t **map;             /* authenticated connections by user id */
    size_t map_size;             /* power of two */
    uint8_t rbuf[KL_READ_BUF];
    int rbuf_busy;
    int expire_running;
    kl_fed_t *fed;               /* federation (server_fed.c), NULL without peers/port */
    kl_fed_t *fed_dead;          /* one that failed to start on a reload, freed at the end */
    char fed_bound[300];         /* federation listen address actually bound */
    /* Write coalescing (conn.c): connections with frames sealed this loop
     * turn and not yet handed to uv_write. flush_prepare (before the loop
     * polls) and flush_check (right after) write each one's frames with a
     * single uv_write. */
    uv_prepare_t flush_prepare;
    uv_check_t flush_check;
    kl_conn_t *flush_head;
    struct kl_ctl *ctl;          /* the control socket (server_ctl.c), NULL without */
    uint64_t started_ms;         /* wall clock at kl_server_start */
    uint64_t admin_gen;          /* accounts removed or re-keyed so far (server_ctl.c) */
    /* Metrics (server_metrics.c), all NULL / 0 when off. */
    kl_metrics_t *metrics;
    kl_metrics_http_t *metrics_http;
    char metrics_bound[300];
    uv_timer_t stats_timer;      /* refreshes the storage gauges */
    int stats_timer_init;
    int stats_running;           /* a KL_JOB_STATS is in storage */
    kl_job_t *stats;             /* the last one that succeeded, NULL before */
};

struct kl_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;            /* handshake deadline, then idle, then linger */
    uv_shutdown_t sreq;          /* FIN after the last reply of a finishing connection */
    int shutdown_sent;
    kl_server_t *srv;
    kl_conn_t *prev, *next;      /* srv->conns */
    kl_conn_t *map_next;         /* srv->map bucket chain */
    int in_map;
    int linked;                  /* in srv->conns and counted */
    uint64_t id;
    char peer[64];
    kl_stream_t st;              /* framing, Noise, keepalive (clock: uv_now) */
    void *hs_work;               /* the handshake, while on the thread pool (conn.c) */
    int transport_ready;         /* the handshake's answer is queued: frames may be sealed */
    kl_client_state_t sess;
    size_t wq_bytes;             /* sealed and not yet written, out included */
    struct kl_outbuf *out;       /* frames sealed this loop turn (conn.c) */
    kl_conn_t *fl_prev, *fl_next; /* srv->flush_head list while out != NULL */
    int missed;                  /* a push was dropped for backpressure */
    kl_missed_t *missed_groups;  /* groups whose pushes were dropped (push_group.c) */
    uint32_t jobs;               /* in flight in storage */
    uint32_t fetches;            /* of which fetches (see process() in conn.c) */
    int reading;
    int finishing;               /* flushing a last reply, then close */
    int closing;                 /* uv_close called */
    int open_handles;
    const char *close_reason;
    uint64_t auth_gen;           /* srv->admin_gen when the auth job was submitted */
    kl_frame_t *backlog[KL_CONN_BACKLOG];
    size_t n_backlog;
};

/* conn.c */
/* A connection is waiting on the listener (loop thread): accept it as a new
 * Noise NK session linked into s->conns, or accept and close it at once
 * (logged) when s is stopping, at max connections or out of memory. */
void kl_conn_accept(kl_server_t *s);
/* Close now (reason is a static string for the log). */
void kl_conn_close(kl_conn_t *c, const char *reason);
/* Send f; is_push: drop it and mark the connection "missed" instead of
 * queueing when the write queue is over its cap. */
void kl_conn_send(kl_conn_t *c, const kl_frame_t *f, int is_push);
/* The same for a frame already packed (kl_wire_pack_alloc): pt[0..n) is
 * only sealed, so one frame to many connections is packed once. */
void kl_conn_send_packed(kl_conn_t *c, const uint8_t *pt, size_t n, int is_push);
/* A storage job of this connection finished. */
void kl_conn_job_done(kl_conn_t *c, kl_job_t *job);
/* Write out every connection's frames sealed since the last call: one
 * uv_write per connection. Called once per loop phase (server.c). */
void kl_conn_flush_all(kl_server_t *s);

/* server.c */
void kl_server_map_add(kl_server_t *s, kl_conn_t *c);
void kl_server_map_remove(kl_server_t *s, kl_conn_t *c);
void kl_server_push(kl_server_t *s, uint64_t user, const kl_frame_t *f);
size_t kl_server_bucket(const kl_server_t *s, uint64_t user);

/* push_group.c: f to every live connection of users[0..n) but except,
 * with the group backpressure rule; the announcements of missed groups
 * (on_write, once the queue drained); freeing the list (maybe_free). */
void kl_server_push_list(kl_server_t *s, const uint64_t *users, size_t n, const kl_frame_t *f,
                         const kl_conn_t *except, const char *group);
void kl_conn_announce_groups(kl_conn_t *c);
void kl_conn_missed_free(kl_conn_t *c);
void kl_server_submit(kl_server_t *s, kl_job_t *job);
/* A storage job of kind for the server itself (no connection; now_ms set),
 * or NULL: when the server is stopping or has no storage queue, or when out
 * of memory (then *oom is set, if oom is not NULL, and oom_log, if not
 * NULL, is logged as an error). Submit it with kl_storeq_submit(s->q, job). */
kl_job_t *kl_server_job(kl_server_t *s, kl_job_kind_t kind, const char *oom_log, int *oom);
/* The connection is fully closed and no job refers to it. */
void kl_server_conn_freed(kl_server_t *s, kl_conn_t *c);

/* server_ctl.c: the control socket at path (listening on the loop), its
 * shutdown (closes it and its clients, removes the socket), a finished
 * KL_JOB_USER_REMOVE. drop_user closes every connection of user but except
 * (reason is a static string) and counts an account change (admin_gen: an
 * auth that read the account before it is refused with UNAVAILABLE, and the
 * client retries against the new state). Returns how many were closed. */
int kl_server_ctl_start(kl_server_t *s, const char *path);
void kl_server_ctl_stop(kl_server_t *s);
void kl_server_ctl_job_done(kl_server_t *s, kl_job_t *job);
unsigned kl_server_drop_user(kl_server_t *s, uint64_t user, const kl_conn_t *except,
                             const char *reason);

/* server.c: resolve host (an IPv4 or IPv6 literal, else a name resolved
 * synchronously on the loop, first IPv4/IPv6 answer) with port into *ss.
 * 0, or KL_EINVAL when it does not resolve. */
int kl_server_resolve(kl_server_t *s, const char *host, uint16_t port,
                      struct sockaddr_storage *ss);

/* server_metrics.c: bind cfg.metrics_listen (nothing when NULL; before the
 * storage starts), start refreshing the storage gauges (after), take a
 * KL_JOB_STATS back, close everything (shutdown) and free (kl_server_free). */
int kl_server_metrics_bind(kl_server_t *s);
void kl_server_metrics_start(kl_server_t *s);
void kl_server_metrics_stats_done(kl_server_t *s, kl_job_t *job);
void kl_server_metrics_stop(kl_server_t *s);
void kl_server_metrics_free(kl_server_t *s);

/* server_fed.c: create s->fed from the peers in st and cfg.fed_listen
 * (nothing when there are neither), on the loop thread before st moves to
 * the storage thread. 0, a kl_storage_fed_peer_list error, or a kl_fed_new
 * error (s->fed then is left stopped, freed by kl_server_free). */
int kl_server_fed_new(kl_server_t *s, kl_storage_t *st);
/* A KL_JOB_PEER_LIST came back (the caller frees the job). */
void kl_server_peers_loaded(kl_server_t *s, kl_job_t *job);

#endif
