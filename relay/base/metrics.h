/* The relay's metrics: counters any thread may bump (C11 atomics, relaxed:
 * each counter is exact, a scrape is not a snapshot across counters), and
 * their rendering in the Prometheus text exposition format, version 0.0.4.
 *
 * Labels only ever take values from fixed sets: frame types and error codes
 * are names from relay.proto's schema (never a string from the wire), and a
 * peer is one of the relays the operator configured. No metric is per user:
 * a handle, an address or an IP never appears in the output.
 *
 * The counters live here; the gauges (connections, stored entries, peers)
 * belong to the loop and the storage thread, which hand a kl_metrics_view_t
 * to kl_metrics_render at scrape time. metrics_http.c serves the text. */
#ifndef KOLLEGA_RELAY_METRICS_H
#define KOLLEGA_RELAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct kl_metrics kl_metrics_t;

/* Upper bounds (seconds, inclusive) of the commit duration histogram's
 * buckets; +Inf comes after them. */
#define KL_METRICS_COMMIT_BUCKETS 13
extern const double kl_metrics_commit_le[KL_METRICS_COMMIT_BUCKETS];

/* Zeroed counters, or NULL when out of memory. */
kl_metrics_t *kl_metrics_new(void);
void kl_metrics_free(kl_metrics_t *m);

/* Any thread; m may be NULL (metrics off: nothing is counted). */
/* A client frame was received and decoded; type is its Frame body case
 * (relay.proto field number); numbers the schema does not name count as
 * "other". */
void kl_metrics_frame_received(kl_metrics_t *m, unsigned type);
/* An Error frame with this relay.proto ErrorCode went to a client. */
void kl_metrics_error_sent(kl_metrics_t *m, unsigned code);
/* A storage transaction committed after ns nanoseconds (BEGIN to the end
 * of COMMIT), or (committed 0) did not commit. */
void kl_metrics_commit(kl_metrics_t *m, int committed, uint64_t ns);

/* One configured peer relay. */
typedef struct kl_metrics_peer {
    const char *name;          /* its relay name (operator-configured) */
    int up;                    /* our link to it is up */
    int have_depth;            /* depth known (storage answered) */
    uint64_t depth, depth_bytes;
} kl_metrics_peer_t;

/* The gauges at scrape time (loop thread). */
typedef struct kl_metrics_view {
    uint64_t connections;      /* client connections open now */
    uint64_t accepted;         /* client connections accepted since start */
    int have_storage;          /* the storage thread has reported once */
    uint64_t users, entries, entry_bytes;
    int federation;            /* federation is on (peers or a port) */
    uint64_t fed_links;        /* relay links up, both directions */
    const kl_metrics_peer_t *peers;
    size_t n_peers;
} kl_metrics_view_t;

/* Render every metric of m and v as text (HELP and TYPE lines, then the
 * samples). *out is malloc'd (NUL-terminated, free() it), *len its length
 * without the NUL. 0 or KL_ENOMEM. */
int kl_metrics_render(const kl_metrics_t *m, const kl_metrics_view_t *v, char **out, size_t *len);

#endif
