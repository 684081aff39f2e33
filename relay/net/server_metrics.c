/* The server's side of the metrics (metrics.h, metrics_http.h): the
 * endpoint on --metrics-listen, the gauges read at scrape time, and the
 * periodic refresh of the storage counts.
 *
 * The storage counts (users, stored entries and bytes, outbox depths) come
 * from the storage thread, as a KL_JOB_STATS job every STATS_INTERVAL_MS:
 * the loop never queries sqlite itself. A scrape shows the last counts
 * that came back, so they may be up to one interval old; before the first
 * one they are left out rather than shown as zero. */
#include <stdlib.h>
#include <string.h>

#include "base/tcpaddr.h"
#include "kollega/err.h"
#include "base/diag.h"
#include "server_int.h"

#define STATS_INTERVAL_MS 5000

const char *kl_server_metrics_address(const kl_server_t *s)
{
    return s->metrics_bound;
}

/* kl_metrics_view_t from the loop's state, the last storage counts and
 * the federation module (peers[] has room for every configured peer). */
static int render(void *ud, char **body, size_t *len)
{
    kl_server_t *s = ud;
    kl_metrics_view_t v;
    memset(&v, 0, sizeof v);
    v.connections = s->n_conns;
    v.accepted = s->next_conn_id;
    const kl_job_t *st = s->stats;
    if (st) {
        v.have_storage = 1;
        v.users = st->u.stats.stats.users;
        v.entries = st->u.stats.stats.entries;
        v.entry_bytes = st->u.stats.stats.bytes;
    }
    size_t n = kl_fed_peer_count(s->fed);
    kl_metrics_peer_t *peers = calloc(n ? n : 1, sizeof *peers);
    if (peers == NULL)
        return KL_ENOMEM;
    v.federation = s->fed != NULL;
    v.fed_links = kl_fed_link_count(s->fed);
    v.peers = peers;
    v.n_peers = n;
    for (size_t i = 0; i < n; i++) {
        peers[i].name = kl_fed_peer_link(s->fed, i, &peers[i].up);
        for (size_t k = 0; st && k < st->u.stats.n_peers; k++) {
            const kl_storage_peer_t *sp = &st->u.stats.peers[k];
            if (strcmp(sp->name, peers[i].name) == 0) {
                peers[i].have_depth = 1;
                peers[i].depth = sp->depth;
                peers[i].depth_bytes = sp->depth_bytes;
                break;
            }
        }
    }
    int r = kl_metrics_render(s->metrics, &v, body, len);
    free(peers);
    return r;
}

int kl_server_metrics_bind(kl_server_t *s)
{
    const char *listen = s->cfg.metrics_listen;
    char host[KL_HOST_MAX + 1];
    uint16_t port = 0;
    struct sockaddr_storage ss;
    int loopback = 0;
    if (listen == NULL || listen[0] == '\0')
        return 0;
    if (kl_listen_parse(listen, host, sizeof host, &port) != 0 ||
        kl_server_resolve(s, host, port, &ss) != 0) {
        kl_diag(KL_DIAG_ERROR, "metrics: cannot use %s: give HOST:PORT, e.g. 127.0.0.1:9477",
               listen);
        return KL_EINVAL;
    }
    s->metrics = kl_metrics_new();
    if (s->metrics == NULL)
        return KL_ENOMEM;
    int r = kl_metrics_http_start(&s->metrics_http, s->loop, (const struct sockaddr *)&ss, render,
                                  s, s->metrics_bound, sizeof s->metrics_bound, &loopback);
    if (r) {
        kl_diag(KL_DIAG_ERROR, "metrics: cannot listen on %s: %s (another process may hold the "
               "port: pick another --metrics-listen)", listen, kl_strerror(r));
        return r;
    }
    kl_diag(KL_DIAG_INFO, "metrics served on http://%s/metrics", s->metrics_bound);
    if (!loopback)
        kl_diag(KL_DIAG_WARN, "metrics on %s are reachable from the network, without "
               "authentication: bind them to 127.0.0.1 or firewall the port",
               s->metrics_bound);
    return 0;
}

static void on_stats_timer(uv_timer_t *t)
{
    kl_server_t *s = t->data;
    kl_job_t *job = s->stats_running ? NULL : kl_server_job(s, KL_JOB_STATS, NULL, NULL);
    if (job == NULL)
        return; /* the next tick retries */
    s->stats_running = 1;
    kl_storeq_submit(s->q, job);
}

void kl_server_metrics_start(kl_server_t *s)
{
    if (s->metrics == NULL)
        return;
    kl_storeq_set_metrics(s->q, s->metrics);
    uv_timer_init(s->loop, &s->stats_timer);
    s->stats_timer.data = s;
    s->stats_timer_init = 1;
    uv_timer_start(&s->stats_timer, on_stats_timer, 0, STATS_INTERVAL_MS);
}

void kl_server_metrics_stats_done(kl_server_t *s, kl_job_t *job)
{
    s->stats_running = 0;
    if (job->result != 0) {
        kl_diag(KL_DIAG_DEBUG, "metrics: storage counts not refreshed: %s",
               kl_strerror(job->result));
        kl_job_free(job);
        return;
    }
    kl_job_free(s->stats);
    s->stats = job;
}

static void on_closed_nothing(uv_handle_t *h)
{
    (void)h;
}

void kl_server_metrics_stop(kl_server_t *s)
{
    if (s->stats_timer_init) {
        uv_close((uv_handle_t *)&s->stats_timer, on_closed_nothing);
        s->stats_timer_init = 0;
    }
    kl_metrics_http_stop(s->metrics_http);
    s->metrics_http = NULL;
}

void kl_server_metrics_free(kl_server_t *s)
{
    kl_job_free(s->stats);
    s->stats = NULL;
    kl_metrics_free(s->metrics);
    s->metrics = NULL;
}
