/* The relay's listener and lifecycle: bind, accept (conn.c does the rest),
 * the map of authenticated connections by user for pushes, the storage
 * thread's completions, the TTL sweep, and the orderly shutdown. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "base/dlist.h"
#include "kollega/err.h"
#include "base/diag.h"
#include "server_int.h"
#include "base/tcpaddr.h"

/* Entries deleted per expire job: keeps one group commit short. */
#define EXPIRE_BATCH 10000

void kl_server_cfg_defaults(kl_server_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dispatch.max_body = 61440;
    cfg->dispatch.ttl_default_s = 30u * 24 * 3600;
    cfg->dispatch.ttl_max_s = 30u * 24 * 3600;
    cfg->dispatch.quota.max_entries = 10000;
    cfg->dispatch.quota.max_bytes = 64ull << 20;
    cfg->dispatch.rate = 2000;
    cfg->dispatch.burst = 4000;
    cfg->max_connections = 10000;
    cfg->handshake_timeout_s = 10;
    cfg->idle_timeout_s = 300;
    cfg->write_queue = 1u << 20;
    cfg->expire_interval_s = 60;
    cfg->fed_retry_max_s = KL_FED_RETRY_MAX_S;
    cfg->opk.window_s = KL_OPK_WINDOW_S_DEFAULT;
    cfg->opk.per_pair = KL_OPK_PER_PAIR_DEFAULT;
    cfg->opk.per_requester = KL_OPK_PER_REQUESTER_DEFAULT;
    cfg->opk.per_target = KL_OPK_PER_TARGET_DEFAULT;
    cfg->opk.per_peer = KL_OPK_PER_PEER_DEFAULT;
    cfg->ud_per_min = KL_UD_PER_MIN_DEFAULT;
}

uint64_t kl_server_wall_ms(void)
{
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) != 0)
        return 0;
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static size_t bucket(const kl_server_t *s, uint64_t user)
{
    /* Fibonacci hashing: user ids are sequential, spread them. */
    return (size_t)((user * 0x9E3779B97F4A7C15ull) >> 32) & (s->map_size - 1);
}

size_t kl_server_bucket(const kl_server_t *s, uint64_t user)
{
    return bucket(s, user);
}

void kl_server_map_add(kl_server_t *s, kl_conn_t *c)
{
    if (c->in_map)
        return;
    size_t b = bucket(s, c->sess.user_id);
    c->map_next = s->map[b];
    s->map[b] = c;
    c->in_map = 1;
}

void kl_server_map_remove(kl_server_t *s, kl_conn_t *c)
{
    if (!c->in_map)
        return;
    for (kl_conn_t **p = &s->map[bucket(s, c->sess.user_id)]; *p; p = &(*p)->map_next) {
        if (*p == c) {
            *p = c->map_next;
            break;
        }
    }
    c->map_next = NULL;
    c->in_map = 0;
}

void kl_server_push(kl_server_t *s, uint64_t user, const kl_frame_t *f)
{
    kl_conn_t *c = s->map[bucket(s, user)];
    while (c) {
        kl_conn_t *next = c->map_next; /* c may close (and leave the map) */
        if (c->sess.user_id == user)
            kl_conn_send(c, f, 1);
        c = next;
    }
}

void kl_server_submit(kl_server_t *s, kl_job_t *job)
{
    /* Connections are all closing before the storage thread stops, and
     * closing connections dispatch nothing, so this cannot happen; if it
     * ever did, leaking one job at exit beats touching freed state. */
    if (s->q == NULL) {
        kl_diag(KL_DIAG_ERROR, "storage job submitted after shutdown (dropped)");
        return;
    }
    if (s->fed && kl_fed_is_proxy(job)) { /* a proxied op goes to the peer, not storage */
        kl_fed_submit(s->fed, job);
        return;
    }
    kl_storeq_submit(s->q, job);
}

void kl_server_conn_freed(kl_server_t *s, kl_conn_t *c)
{
    if (!c->linked)
        return;
    KL_DLIST_UNLINK(s->conns, c);
    s->n_conns--;
}

kl_job_t *kl_server_job(kl_server_t *s, kl_job_kind_t kind, const char *oom_log, int *oom)
{
    if (oom)
        *oom = 0;
    if (s->stopping || s->q == NULL)
        return NULL;
    kl_job_t *job = kl_job_new(kind, 0, NULL);
    if (job) {
        job->now_ms = kl_server_wall_ms();
        return job;
    }
    if (oom)
        *oom = 1;
    if (oom_log)
        kl_diag(KL_DIAG_ERROR, "%s", oom_log);
    return NULL;
}

static void submit_expire(kl_server_t *s)
{
    kl_job_t *job = s->expire_running ? NULL : kl_server_job(s, KL_JOB_EXPIRE, NULL, NULL);
    if (job == NULL)
        return; /* the next tick retries */
    job->u.expire.max = EXPIRE_BATCH;
    s->expire_running = 1;
    kl_storeq_submit(s->q, job);
}

static void on_job_done(void *ud, kl_job_t *job)
{
    kl_server_t *s = ud;
    if (job->kind == KL_JOB_FED && s->fed && kl_fed_job_done(s->fed, job))
        return; /* federation's own job (server_fed.c) */
    if (job->kind == KL_JOB_USER_REMOVE) { /* the operator's (server_ctl.c) */
        kl_server_ctl_job_done(s, job);
        return;
    }
    if (job->owner) {
        kl_conn_job_done(job->owner, job);
        return;
    }
    if (job->kind == KL_JOB_PEER_LIST) {
        kl_server_peers_loaded(s, job);
        kl_job_free(job);
        return;
    }
    if (job->kind == KL_JOB_MAX_BYTES) {
        if (job->result != 0)
            kl_diag(KL_DIAG_ERROR, "config reload: cannot apply max-db-bytes: %s (the old cap stays)",
                   kl_strerror(job->result));
        else if (job->u.max_bytes.effective > job->u.max_bytes.max)
            kl_diag(KL_DIAG_WARN, "config reload: the database already holds %llu bytes, over "
                   "max-db-bytes: new messages are refused until acks and expiry free space",
                   (unsigned long long)job->u.max_bytes.effective);
        else
            kl_diag(KL_DIAG_INFO, "config reload: database cap now %llu bytes",
                   (unsigned long long)job->u.max_bytes.effective);
        kl_job_free(job);
        return;
    }
    if (job->kind == KL_JOB_STATS) {
        kl_server_metrics_stats_done(s, job);
        return;
    }
    /* The remaining internal job: the TTL sweep. */
    s->expire_running = 0;
    int more = 0;
    if (job->result != 0)
        kl_diag(KL_DIAG_WARN, "expiry sweep failed: %s", kl_strerror(job->result));
    else if (job->u.expire.deleted > 0)
        kl_diag(KL_DIAG_INFO, "expired %llu entries",
               (unsigned long long)job->u.expire.deleted);
    more = job->result == 0 && job->u.expire.more;
    kl_job_free(job);
    if (more)
        submit_expire(s);
}

static void on_expire_timer(uv_timer_t *t)
{
    submit_expire(t->data);
}

static void on_connection(uv_stream_t *l, int status)
{
    kl_server_t *s = l->data;
    if (status < 0) {
        kl_diag(KL_DIAG_WARN, "accept failed: %s", uv_strerror(status));
        return;
    }
    kl_conn_accept(s);
}

static void on_signal(uv_signal_t *h, int signum)
{
    kl_diag(KL_DIAG_INFO, "received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    kl_server_shutdown(h->data);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    kl_server_t *s = h->data;
    (void)signum;
    kl_diag(KL_DIAG_INFO, "received SIGHUP: reloading the configuration");
    if (!s->stopping && s->cfg.on_reload)
        s->cfg.on_reload(s->cfg.reload_ud);
}

int kl_server_reconfigure(kl_server_t *s, const kl_server_cfg_t *cfg)
{
    if (cfg->max_connections == 0 || cfg->dispatch.max_body > KL_MAX_BODY_LIMIT ||
        cfg->dispatch.rate == 0 || cfg->dispatch.burst == 0 || cfg->write_queue == 0 ||
        cfg->idle_timeout_s == 0 || cfg->handshake_timeout_s == 0 ||
        kl_opk_limit_cfg_check(&cfg->opk) != 0 || cfg->ud_per_min > KL_UD_PER_MIN_MAX)
        return KL_EINVAL;
    if (kl_opk_limit_set(s->opk_limit, &cfg->opk) != 0)
        return KL_EINVAL;
    (void)kl_buckets_set_rate(s->ud_limit, cfg->ud_per_min ? cfg->ud_per_min
                                                           : KL_UD_PER_MIN_DEFAULT, 60000);
    kl_dispatch_cfg_t *d = &s->cfg.dispatch;
    d->max_body = cfg->dispatch.max_body;
    d->ttl_default_s = cfg->dispatch.ttl_default_s;
    d->ttl_max_s = cfg->dispatch.ttl_max_s;
    d->quota = cfg->dispatch.quota;
    d->rate = cfg->dispatch.rate;
    d->burst = cfg->dispatch.burst;
    s->cfg.max_connections = cfg->max_connections;
    s->cfg.handshake_timeout_s = cfg->handshake_timeout_s;
    s->cfg.idle_timeout_s = cfg->idle_timeout_s;
    s->cfg.write_queue = cfg->write_queue;
    s->cfg.opk = cfg->opk;
    s->cfg.ud_per_min = cfg->ud_per_min;
    s->cfg.fed_retry_max_s = cfg->fed_retry_max_s;
    kl_fed_set_limits(s->fed,
                      (s->cfg.fed_retry_max_s ? s->cfg.fed_retry_max_s : KL_FED_RETRY_MAX_S) *
                          1000u,
                      d->ttl_max_s, &d->quota);
    return 0;
}

void kl_server_set_max_bytes(kl_server_t *s, uint64_t max_bytes)
{
    kl_job_t *job = kl_server_job(s, KL_JOB_MAX_BYTES,
                                  "config reload: out of memory: max-db-bytes not applied", NULL);
    if (job == NULL)
        return;
    /* No cap: the largest sqlite takes (it clamps to its own maximum). */
    job->u.max_bytes.max = max_bytes ? max_bytes : UINT64_MAX / 2;
    kl_storeq_submit(s->q, job);
}

static void on_wakeup(uv_async_t *a)
{
    kl_server_shutdown(a->data);
}

/* Write coalescing (conn.c): frames sealed in any callback of a loop turn
 * go out once per phase boundary. The check handle runs right after the
 * poll phase (reads, storage completions); the prepare handle right before
 * the next poll, for frames sealed by timers or deferred write callbacks,
 * so nothing waits in a buffer while the loop sleeps. */
static void on_flush_prepare(uv_prepare_t *h)
{
    kl_conn_flush_all(h->data);
}

static void on_flush_check(uv_check_t *h)
{
    kl_conn_flush_all(h->data);
}

int kl_server_new(kl_server_t **out, uv_loop_t *loop, const kl_server_cfg_t *cfg)
{
    *out = NULL;
    if (cfg->dispatch.relay_name == NULL || cfg->static_sk == NULL ||
        cfg->max_connections == 0 || cfg->dispatch.max_body > KL_MAX_BODY_LIMIT)
        return KL_EINVAL;
    kl_server_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return KL_ENOMEM;
    s->loop = loop;
    s->cfg = *cfg;
    s->relay_name = strdup(cfg->dispatch.relay_name);
    s->static_sk = kl_secure_alloc(32);
    s->map_size = 64;
    while (s->map_size < cfg->max_connections && s->map_size < (1u << 20))
        s->map_size <<= 1;
    s->map = calloc(s->map_size, sizeof *s->map);
    int r = kl_opk_limit_new(&s->opk_limit, &cfg->opk);
    if (r == 0)
        r = kl_buckets_new(&s->ud_limit, KL_UD_TRACKED,
                           cfg->ud_per_min ? cfg->ud_per_min : KL_UD_PER_MIN_DEFAULT, 60000);
    if (s->relay_name == NULL || s->static_sk == NULL || s->map == NULL || r != 0) {
        free(s->relay_name);
        if (s->static_sk)
            kl_secure_free(s->static_sk);
        free(s->map);
        kl_opk_limit_free(s->opk_limit);
        kl_buckets_free(s->ud_limit);
        free(s);
        return r ? r : KL_ENOMEM;
    }
    s->cfg.dispatch.opk_limit = s->opk_limit;
    s->cfg.dispatch.ud_limit = s->ud_limit;
    memcpy(s->static_sk, cfg->static_sk, 32);
    s->cfg.static_sk = NULL; /* only the guarded copy is used */
    s->cfg.dispatch.relay_name = s->relay_name;
    uv_timer_init(loop, &s->expire_timer);
    s->expire_timer.data = s;
    uv_async_init(loop, &s->wakeup, on_wakeup);
    s->wakeup.data = s;
    uv_signal_init(loop, &s->sigint);
    uv_signal_init(loop, &s->sigterm);
    uv_signal_init(loop, &s->sighup);
    s->sigint.data = s->sigterm.data = s->sighup.data = s;
    uv_prepare_init(loop, &s->flush_prepare);
    uv_check_init(loop, &s->flush_check);
    s->flush_prepare.data = s->flush_check.data = s;
    uv_prepare_start(&s->flush_prepare, on_flush_prepare);
    uv_check_start(&s->flush_check, on_flush_check);
    s->handles_init = 1;
    if (cfg->handle_signals) {
        uv_signal_start(&s->sigint, on_signal, SIGINT);
        uv_signal_start(&s->sigterm, on_signal, SIGTERM);
        if (cfg->on_reload)
            uv_signal_start(&s->sighup, on_sighup, SIGHUP);
    }
    *out = s;
    return 0;
}

static int resolve(kl_server_t *s, const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    /* A host name (e.g. "localhost"): resolve synchronously, once, at start. */
    uv_getaddrinfo_t req;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int r = uv_getaddrinfo(s->loop, &req, NULL, host, NULL, &hints);
    if (r != 0)
        return KL_EINVAL;
    r = KL_EINVAL;
    for (struct addrinfo *ai = req.addrinfo; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) {
            memcpy(ss, ai->ai_addr, ai->ai_addrlen);
            if (ai->ai_family == AF_INET)
                ((struct sockaddr_in *)ss)->sin_port = htons(port);
            else
                ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
            r = 0;
            break;
        }
    }
    uv_freeaddrinfo(req.addrinfo);
    return r;
}

/* The listen backlog: the system's cap (net.core.somaxconn), so that a
 * reconnect storm after a restart waits in the kernel instead of being
 * dropped and retried after SYN timeouts (1, 3, 7 s). A backlog above the
 * cap is silently truncated by the kernel; 4096 when it cannot be read. */
static int listen_backlog(void)
{
    int n = 4096;
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    if (f) {
        int v = 0;
        if (fscanf(f, "%d", &v) == 1 && v > 0)
            n = v;
        fclose(f);
    }
    return n < 65535 ? n : 65535;
}

int kl_server_resolve(kl_server_t *s, const char *host, uint16_t port,
                      struct sockaddr_storage *ss)
{
    return resolve(s, host, port, ss);
}

int kl_server_bind(kl_server_t *s, const char *host, uint16_t port, char *bound, size_t cap)
{
    struct sockaddr_storage ss;
    int r = resolve(s, host, port, &ss);
    if (r)
        return r;
    if (!s->listener_open) {
        uv_tcp_init(s->loop, &s->listener);
        s->listener.data = s;
        s->listener_open = 1;
    }
    r = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    /* libuv reports EADDRINUSE at listen time: listen now so the caller
     * learns it before printing anything. Connections wait in the kernel
     * until the loop runs. */
    if (r == 0)
        r = uv_listen((uv_stream_t *)&s->listener, listen_backlog(), on_connection);
    if (r)
        return r;
    return kl_tcp_name(&s->listener, 1, bound, cap);
}

int kl_server_start(kl_server_t *s, kl_storage_t *st)
{
    if (!s->listener_open || s->q)
        return KL_ESTATE;
    int r = kl_server_metrics_bind(s);
    if (r)
        return r;
    r = kl_server_fed_new(s, st); /* reads the peers before st moves to storage */
    if (r)
        return r;
    r = kl_storeq_start(&s->q, s->loop, st, on_job_done, s);
    if (r)
        return r;
    kl_server_metrics_start(s);
    if (s->fed)
        kl_fed_start(s->fed);
    uint64_t every = (uint64_t)s->cfg.expire_interval_s * 1000;
    uv_timer_start(&s->expire_timer, on_expire_timer, every < 1000 ? every : 1000, every);
    s->started_ms = kl_server_wall_ms();
    if (s->cfg.control_path && (r = kl_server_ctl_start(s, s->cfg.control_path)) != 0)
        kl_diag(KL_DIAG_WARN, "no control socket at %s: %s; status cannot see this relay and "
               "user remove must wait until it stops", s->cfg.control_path, kl_strerror(r));
    return 0;
}

static void on_closed_nothing(uv_handle_t *h)
{
    (void)h;
}

void kl_server_shutdown(kl_server_t *s)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    unsigned open_conns = 0;
    for (kl_conn_t *c = s->conns; c; c = c->next)
        open_conns += !c->closing;
    kl_diag(KL_DIAG_INFO, "shutting down: closing %u connections, draining storage", open_conns);
    if (s->listener_open)
        uv_close((uv_handle_t *)&s->listener, on_closed_nothing);
    if (s->handles_init) {
        uv_close((uv_handle_t *)&s->expire_timer, on_closed_nothing);
        uv_close((uv_handle_t *)&s->wakeup, on_closed_nothing);
        uv_close((uv_handle_t *)&s->sigint, on_closed_nothing);
        uv_close((uv_handle_t *)&s->sigterm, on_closed_nothing);
        uv_close((uv_handle_t *)&s->sighup, on_closed_nothing);
        uv_close((uv_handle_t *)&s->flush_prepare, on_closed_nothing);
        uv_close((uv_handle_t *)&s->flush_check, on_closed_nothing);
    }
    kl_server_ctl_stop(s);
    kl_server_metrics_stop(s);
    for (kl_conn_t *c = s->conns; c; c = c->next)
        kl_conn_close(c, "relay shutting down");
    /* Every connection is closing, so completions are dropped (a committed
     * send's push included: there is nobody left to push to). */
    if (s->q) {
        kl_fed_stop(s->fed);
        kl_storeq_stop(s->q);
        s->q = NULL;
    }
}

void kl_server_shutdown_async(kl_server_t *s)
{
    uv_async_send(&s->wakeup);
}

void kl_server_free(kl_server_t *s)
{
    if (s == NULL)
        return;
    if (!s->stopping)
        kl_server_shutdown(s);
    kl_fed_stop(s->fed); /* when the storage thread never started */
    uv_run(s->loop, UV_RUN_DEFAULT); /* run the close callbacks */
    kl_fed_free(s->fed);
    kl_fed_free(s->fed_dead);
    kl_server_metrics_free(s);
    free(s->map);
    free(s->relay_name);
    kl_secure_free(s->static_sk);
    kl_opk_limit_free(s->opk_limit);
    kl_buckets_free(s->ud_limit);
    free(s);
}
