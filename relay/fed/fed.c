/* Federation: the module's life (new, start, stop, free, the listener),
 * links coming up and going down with the redial backoff, and routing of
 * frames and finished storage jobs to the parts that own them. See fed.h
 * for the module's place, proto/federation.proto for the wire semantics,
 * fed_link.c for one link's socket and handshake, fed_peers.c for the set
 * of configured peers, fed_outbox.c for the outbox pump, fed_proxy.c for
 * proxied ops of local clients, fed_in.c for a peer's requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fed_int.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "base/diag.h"
#include "base/tcpaddr.h"

#define FBODY(x) KOLLEGA__FEDERATION__V1__FED_FRAME__BODY_##x
#define SWEEP_MS 200

uint64_t kl_fed_now_ms(void)
{
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) != 0)
        return 0;
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void submit(kl_fed_t *f, kl_job_t *job)
{
    job->now_ms = kl_fed_now_ms();
    f->cfg.submit(f->cfg.ud, job);
}

void kl_fed_store(kl_fed_t *f, kl_job_t *job)
{
    submit(f, job);
}

static void record_state(fed_peer_t *p, const char *state)
{
    if (p->removed || (p->state && strcmp(p->state, state) == 0))
        return;
    p->state = state;
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_STATE, 0, NULL);
    if (job == NULL)
        return; /* status shows an older state */
    job->u.fed->peer = p->cfg.id;
    snprintf(job->u.fed->state, sizeof job->u.fed->state, "%s", state);
    submit(p->fed, job);
}

size_t kl_fed_link_count(const kl_fed_t *f)
{
    size_t n = 0;
    for (const fed_link_t *l = f ? f->links : NULL; l; l = l->next)
        n += l->ready && !l->closing;
    return n;
}

/* ---- links up and down, dialling ---- */

static void on_peer_timer(uv_timer_t *t);

void kl_fed_peer_timer(fed_peer_t *p, uint64_t ms)
{
    uv_timer_start(&p->timer, on_peer_timer, ms, 0);
}

void kl_fed_redial_later(fed_peer_t *p)
{
    kl_fed_t *f = p->fed;
    p->out = NULL;
    if (f->stopping || p->removed)
        return;
    record_state(p, "down");
    /* Jitter: wait between half and all of the backoff, so that relays
     * restarted together do not redial in lockstep. */
    uint32_t d = p->backoff_ms / 2 + kl_random_u32() % (p->backoff_ms / 2 + 1);
    uint64_t cap = f->cfg.retry_max_ms;
    p->backoff_ms = (uint64_t)p->backoff_ms * 2 > cap ? (uint32_t)cap : p->backoff_ms * 2;
    kl_fed_peer_timer(p, d);
}

void kl_fed_dial(fed_peer_t *p)
{
    if (p->fed->stopping || p->removed || p->out || p->resolving)
        return;
    record_state(p, "connecting");
    kl_fedlink_dial(p);
}

static void on_peer_timer(uv_timer_t *t)
{
    fed_peer_t *p = t->data;
    if (p->out == NULL) {
        kl_fed_dial(p);
        return;
    }
    if (p->paused) {
        p->paused = 0;
        kl_fedout_pump(p);
    }
}

void kl_fed_link_up(fed_link_t *l)
{
    fed_peer_t *p = l->peer;
    kl_fed_t *f = l->fed;
    if (!l->outgoing) {
        kl_diag(KL_DIAG_INFO, "federation: inbound link from %s up", p->cfg.name);
        kl_diag(KL_DIAG_DEBUG, "federation: inbound link from %s comes from %s", p->cfg.name,
               l->where);
        if (p->in && p->in != l)
            kl_fedlink_close(p->in, "replaced by a new link");
        p->in = l;
        l->tokens_milli = (uint64_t)(p->cfg.rate ? p->cfg.rate : FED_RATE_DEFAULT) * 2000;
        l->refill_ms = uv_now(f->cfg.loop);
        /* The peer is (back) up: do not wait out our backoff to reach it. */
        if (p->out == NULL && !p->resolving) {
            uv_timer_stop(&p->timer);
            p->backoff_ms = KL_FED_RETRY_MIN_MS;
            kl_fed_dial(p);
        }
        return;
    }
    kl_diag(KL_DIAG_INFO, "federation: link to %s (%s) up", p->cfg.name, p->cfg.addr);
    record_state(p, "up");
    kl_fedchan_link_up(p);
    p->backoff_ms = KL_FED_RETRY_MIN_MS;
    p->retry_ms = FED_RESUME_MIN_MS;
    p->sent_upto = p->ack_want;
    p->in_flight = 0;
    p->paused = 0;
    p->restart_next = 0;
    p->min_answer_id = kl_fed_next_id(p);
    uv_timer_stop(&p->timer);
    kl_fedproxy_link_up(p);
    kl_fedout_pump(p);
}

void kl_fed_link_down(fed_link_t *l)
{
    fed_peer_t *p = l->peer;
    if (p == NULL)
        return;
    if (!l->outgoing) {
        if (p->in == l)
            p->in = NULL;
        return;
    }
    if (p->out != l)
        return;
    kl_fedproxy_link_down(p); /* sent proxied ops get no answer on this link */
    p->in_flight = 0;
    p->paused = 0;
    kl_fed_redial_later(p);
}

static void on_sweep(uv_timer_t *t)
{
    kl_fed_t *f = t->data;
    uint64_t now = uv_now(f->cfg.loop);
    kl_fedchan_sweep(f, now);
    kl_fedproxy_sweep(f, now);
}

/* ---- frames, completions, lifecycle ---- */

void kl_fed_on_frame(fed_link_t *l, kl_fedframe_t *fr)
{
    if (!l->outgoing) {
        kl_fedin_frame(l, fr);
        return;
    }
    fed_peer_t *p = l->peer;
    switch (fr->body_case) {
    case FBODY(FORWARD_RESULT):
        kl_fedout_forward_result(p, fr);
        break;
    case FBODY(LOOKUP_RESULT):
    case FBODY(PREKEY_BUNDLE):
    case FBODY(ERROR):
    case FBODY(GROUP_REPLY):
        kl_fedproxy_answer(p, fr);
        break;
    case FBODY(PONG):
        break;
    default:
        kl_fedlink_close(l, "unexpected frame on an outgoing link");
        break;
    }
}

int kl_fed_job_done(kl_fed_t *f, kl_job_t *job)
{
    kl_fed_job_t *fj = job->u.fed;
    fed_peer_t *p = NULL;
    switch (fj->op) {
    case KL_FED_OP_SEND:
        /* A client's message is in the outbox: send it (the client's
         * connection gets the job next, for its `sent`). */
        p = kl_fed_peer_by_id(f, fj->peer);
        if (job->result == 0 && p) {
            p->kicked = 1;
            kl_fedout_pump(p);
        }
        return 0;
    case KL_FED_OP_LOOKUP:
    case KL_FED_OP_PREKEY:
    case KL_FED_OP_GROUP:
    case KL_FED_OP_GROUP_LIST:
        return 0;
    case KL_FED_OP_CHAN_SUB:
        return kl_fedchan_sub_stored(f, job);
    case KL_FED_OP_MIRROR:
    case KL_FED_OP_MIRROR_LIST:
        kl_fedchan_stored(f, job);
        return 1; /* the module's own: freed or reused there */
    case KL_FED_OP_OUT_READ:
    case KL_FED_OP_OUT_ACK:
        kl_fedout_job_done(job->owner, job);
        break;
    case KL_FED_OP_IN_DELIVER:
    case KL_FED_OP_IN_LOOKUP:
    case KL_FED_OP_IN_PREKEY:
    case KL_FED_OP_IN_GROUP:
    case KL_FED_OP_IN_NOTIFY:
        kl_fedin_job_done(job->owner, job);
        return 1; /* freed there */
    case KL_FED_OP_STATE:
        break;
    }
    kl_job_free(job);
    return 1;
}

static void on_listen(uv_stream_t *s, int status)
{
    kl_fed_t *f = s->data;
    if (status < 0 || f->stopping)
        return;
    kl_fedlink_accept(f);
}

static int fed_bind(kl_fed_t *f, char *bound, size_t cap)
{
    char host[KL_HOST_MAX + 1];
    uint16_t port = 0;
    struct sockaddr_storage ss;
    if (kl_listen_parse(f->cfg.listen, host, sizeof host, &port) != 0)
        return KL_EINVAL;
    memset(&ss, 0, sizeof ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return KL_EINVAL;
    uv_tcp_init(f->cfg.loop, &f->listener);
    f->listener.data = f;
    f->listening = 1;
    int r = uv_tcp_bind(&f->listener, (const struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&f->listener, 64, on_listen);
    return r ? r : kl_tcp_name(&f->listener, 1, bound, cap);
}

int kl_fed_new(kl_fed_t **out, const kl_fed_cfg_t *cfg, const kl_storage_peer_t *peers,
               size_t n, char *bound, size_t cap)
{
    *out = NULL;
    if (cap > 0)
        bound[0] = '\0';
    kl_fed_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return KL_ENOMEM;
    f->cfg = *cfg;
    if (f->cfg.retry_max_ms < KL_FED_RETRY_MIN_MS)
        f->cfg.retry_max_ms = KL_FED_RETRY_MIN_MS;
    f->peers = calloc(n ? n : 1, sizeof *f->peers);
    int r = f->peers ? 0 : KL_ENOMEM;
    for (size_t i = 0; i < n && r == 0; i++)
        if ((f->peers[i] = calloc(1, sizeof **f->peers)) == NULL)
            r = KL_ENOMEM;
    if (r == 0) {
        f->n_peers = n;
        for (size_t i = 0; i < n; i++)
            f->peers[i]->cfg = peers[i];
        r = kl_fed_hint_keys(f);
    }
    if (r) {
        for (size_t i = 0; f->peers && i < n; i++)
            free(f->peers[i]);
        free(f->peers);
        free(f);
        return r;
    }
    for (size_t i = 0; i < n; i++)
        kl_fed_peer_init(f, f->peers[i]);
    uv_timer_init(f->cfg.loop, &f->sweep);
    f->sweep.data = f;
    *out = f;
    if (cfg->listen && cfg->listen[0])
        return fed_bind(f, bound, cap);
    return 0;
}

void kl_fed_set_limits(kl_fed_t *f, uint32_t retry_max_ms, uint32_t ttl_max_s,
                       const kl_storage_quota_t *quota)
{
    if (f == NULL)
        return;
    f->cfg.retry_max_ms = retry_max_ms < KL_FED_RETRY_MIN_MS ? KL_FED_RETRY_MIN_MS : retry_max_ms;
    f->cfg.ttl_max_s = ttl_max_s;
    f->cfg.inbox_quota = *quota;
}

void kl_fed_start(kl_fed_t *f)
{
    f->started = 1;
    uv_timer_start(&f->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    for (size_t i = 0; i < f->n_peers; i++)
        kl_fed_dial(f->peers[i]);
}

static void on_closed_nothing(uv_handle_t *h)
{
    (void)h;
}

void kl_fed_stop(kl_fed_t *f)
{
    if (f == NULL || f->stopping)
        return;
    for (size_t i = 0; i < f->n_peers && f->started; i++)
        record_state(f->peers[i], "stopped");
    f->stopping = 1;
    for (size_t i = 0; i < f->n_peers + f->n_retired; i++) {
        fed_peer_t *p = i < f->n_peers ? f->peers[i] : f->retired[i - f->n_peers];
        while (p->waiting.head)
            kl_fed_proxy_fail(f, p, p->waiting.head, "cannot be asked: this relay is shutting down");
        if (!p->removed) /* a removed peer's timer is closed already */
            uv_close((uv_handle_t *)&p->timer, on_closed_nothing);
        if (p->resolving)
            uv_cancel((uv_req_t *)&p->gai);
    }
    uv_close((uv_handle_t *)&f->sweep, on_closed_nothing);
    if (f->listening)
        uv_close((uv_handle_t *)&f->listener, on_closed_nothing);
    for (fed_link_t *l = f->links; l; l = l->next)
        kl_fedlink_close(l, "relay shutting down");
}

void kl_fed_free(kl_fed_t *f)
{
    if (f == NULL)
        return;
    /* Links still listed were never released by the loop (it did not run
     * after kl_fed_stop): free them here. */
    while (f->links) {
        fed_link_t *l = f->links;
        l->open_handles = 0;
        l->jobs = 0;
        l->closing = 1;
        kl_fedlink_maybe_free(l);
    }
    kl_fedchan_free(f);
    kl_secure_free(f->hint_keys);
    for (size_t i = 0; i < f->n_peers; i++)
        free(f->peers[i]);
    for (size_t i = 0; i < f->n_retired; i++)
        free(f->retired[i]);
    free(f->peers);
    free(f->retired);
    free(f);
}
