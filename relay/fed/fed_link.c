/* One federation link: TCP, Noise_KK (prologue "kollega-federation/1"),
 * then sealed FedFrames. Outgoing links are dialled by fed.c (one per
 * peer); inbound links are accepted on the federation port and identified
 * by the hint in front of the first handshake message (fed_ident.c).
 * The protocol is l->st, a kl_stream in plaintext mode; since the hint
 * wraps message 1, both ends bring their own Noise handshake to it
 * (kl_stream_adopt) and this file keeps the socket, the write queue and
 * the handshake timer. A link is freed once both handles are closed and
 * no storage job still refers to it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fed_int.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "base/diag.h"
#include "base/tcpaddr.h"

typedef struct fed_write {
    uv_write_t req;
    fed_link_t *l;
    uint8_t *buf;
    size_t len;
} fed_write_t;

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

void kl_fedlink_maybe_free(fed_link_t *l)
{
    if (!l->closing || l->open_handles > 0 || l->jobs > 0)
        return;
    kl_fed_t *f = l->fed;
    for (fed_link_t **pp = &f->links; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    kl_job_free(l->filling);
    kl_stream_free(&l->st);
    kl_free_wipe(l, sizeof *l);
}

static void on_closed(uv_handle_t *h)
{
    fed_link_t *l = h->data;
    l->open_handles--;
    kl_fedlink_maybe_free(l);
}

void kl_fedlink_close(fed_link_t *l, const char *why)
{
    if (l->closing)
        return;
    l->closing = 1;
    kl_diag(KL_DIAG_INFO, "federation: %s link %s %s closed (%s)",
           l->outgoing ? "outgoing" : "inbound", l->outgoing ? "to" : "from",
           l->peer ? l->peer->cfg.name : kl_diag_enabled(KL_DIAG_DEBUG) ? l->where : "an unidentified address",
           why);
    if (!l->outgoing && l->peer == NULL && l->fed->pending_in > 0)
        l->fed->pending_in--;
    kl_fed_link_down(l);
    uv_close((uv_handle_t *)&l->tcp, on_closed);
    uv_close((uv_handle_t *)&l->timer, on_closed);
}

static void on_write(uv_write_t *req, int status)
{
    fed_write_t *w = (fed_write_t *)req;
    fed_link_t *l = w->l;
    l->wq_bytes -= w->len;
    free(w->buf);
    free(w);
    if (status < 0)
        kl_fedlink_close(l, "write failed");
}

static void queue_write(fed_link_t *l, uint8_t *buf, size_t len)
{
    fed_write_t *w = malloc(sizeof *w);
    if (w == NULL) {
        free(buf);
        kl_fedlink_close(l, "out of memory");
        return;
    }
    w->l = l;
    w->buf = buf;
    w->len = len;
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&l->tcp, &b, 1, on_write) != 0) {
        free(buf);
        free(w);
        kl_fedlink_close(l, "write failed");
        return;
    }
    l->wq_bytes += len;
}

void kl_fedlink_send(fed_link_t *l, const kl_fedframe_t *fr)
{
    if (l->closing || !l->ready)
        return;
    size_t n = kollega__federation__v1__fed_frame__get_packed_size(fr);
    if (n > KL_NOISE_MAX_PT) {
        kl_diag(KL_DIAG_ERROR, "federation: frame of %zu bytes is too large", n);
        return;
    }
    /* Packed right behind the length header and sealed in place, so no
     * plaintext copy outlives the call. */
    uint8_t *out = malloc(KL_WIRE_SIZE(n));
    size_t olen = 0;
    int r = out ? 0 : KL_ENOMEM;
    if (r == 0) {
        kollega__federation__v1__fed_frame__pack(fr, out + KL_FRAME_HDR);
        r = kl_stream_seal(&l->st, out + KL_FRAME_HDR, n, out, KL_WIRE_SIZE(n), &olen,
                           uv_now(l->fed->cfg.loop));
    }
    if (r != 0) {
        kl_free_wipe(out, out ? KL_WIRE_SIZE(n) : 0);
        kl_fedlink_close(l, "cannot seal a frame");
        return;
    }
    queue_write(l, out, olen);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    /* Links are few: each has its own read buffer while reading. */
    buf->base = malloc(65536);
    buf->len = buf->base ? 65536 : 0;
}

/* Write the stream's handshake bytes (message 1, or the answer), if any. */
static int send_pending(fed_link_t *l)
{
    size_t n = kl_stream_pending(&l->st), len = 0;
    if (n == 0)
        return 0;
    uint8_t *out = malloc(n);
    if (out == NULL)
        return KL_ENOMEM;
    int r = kl_stream_take(&l->st, out, n, &len);
    if (r != 0) {
        free(out);
        return r;
    }
    queue_write(l, out, len);
    return 0;
}

/* The handshake completed: the answer (inbound) goes out first. */
static int ready(fed_link_t *l)
{
    if (send_pending(l) != 0) {
        kl_fedlink_close(l, "handshake failed");
        return 1;
    }
    if (l->closing)
        return 1;
    l->ready = 1;
    uv_timer_stop(&l->timer);
    kl_fed_link_up(l);
    return l->closing;
}

/* Inbound message 1: the hint in front of it tells which peer this is (or
 * nobody we know), and that peer's handshake, having read it, goes to the
 * stream, which answers and reports the link ready. */
static int identify(fed_link_t *l, const uint8_t *msg, size_t len)
{
    kl_noise_hs_t *hs = NULL;
    fed_peer_t *p = kl_fed_identify(l->fed, msg, len, &hs);
    if (p == NULL) {
        kl_diag(KL_DIAG_WARN, "federation: refused a link from %s: not a configured peer, or "
               "a peer with a different key",
               kl_diag_enabled(KL_DIAG_DEBUG) ? l->where : "an address (logged at debug)");
        kl_fedlink_close(l, "unknown peer");
        return 1;
    }
    l->peer = p;
    l->fed->pending_in--;
    if (kl_stream_adopt(&l->st, hs, NULL, 0) != 0) {
        kl_fedlink_close(l, "handshake failed");
        return 1;
    }
    return 0;
}

/* One FedFrame's plaintext. */
static int on_frame(fed_link_t *l, const uint8_t *pt, size_t len)
{
    kl_fedframe_t *fr = kollega__federation__v1__fed_frame__unpack(NULL, len, pt);
    if (fr == NULL || fr->body_case == KOLLEGA__FEDERATION__V1__FED_FRAME__BODY__NOT_SET) {
        if (fr)
            kollega__federation__v1__fed_frame__free_unpacked(fr, NULL);
        kl_fedlink_close(l, "undecodable frame");
        return 1;
    }
    kl_fed_on_frame(l, fr);
    kollega__federation__v1__fed_frame__free_unpacked(fr, NULL);
    return l->closing;
}

/* The stream's input failed (a bad length, a failed handshake or
 * decryption): nothing is answered on a link. */
static void stream_failed(fed_link_t *l, int err, const char *reason)
{
    if (l->outgoing && !l->ready) {
        kl_diag(KL_DIAG_WARN, "federation: handshake with %s failed: %s (is our key "
               "configured there?)", l->peer->cfg.name, kl_strerror(err));
        kl_fedlink_close(l, "handshake failed");
        return;
    }
    kl_fedlink_close(l, reason);
}

static int on_event(void *ud, kl_stream_event_t *ev)
{
    fed_link_t *l = ud;
    if (l->closing)
        return 1;
    switch (ev->type) {
    case KL_STREAM_EV_HANDSHAKE:
        return identify(l, ev->data, ev->len);
    case KL_STREAM_EV_READY:
        return ready(l);
    case KL_STREAM_EV_FRAME:
        return on_frame(l, ev->data, ev->len);
    case KL_STREAM_EV_ERROR:
        stream_failed(l, ev->err, ev->reason);
        return 1;
    }
    return 1;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    fed_link_t *l = st->data;
    if (nread < 0 && !l->closing)
        kl_fedlink_close(l, nread == UV_EOF ? "peer closed" : "read error");
    if (nread > 0 && !l->closing)
        (void)kl_stream_feed(&l->st, (const uint8_t *)buf->base, (size_t)nread,
                             uv_now(l->fed->cfg.loop), on_event, l); /* failures: on_event */
    free(buf->base);
}

static void on_timeout(uv_timer_t *t)
{
    fed_link_t *l = t->data;
    uint64_t now = uv_now(l->fed->cfg.loop), next = 0;
    if (l->ready)
        return;
    if (kl_stream_tick(&l->st, now, &next) == KL_ETIMEDOUT)
        kl_fedlink_close(l, l->outgoing ? "connect/handshake timeout" : "handshake timeout");
    else
        uv_timer_start(&l->timer, on_timeout, next - now, 0);
}

static fed_link_t *link_new(kl_fed_t *f, int outgoing)
{
    /* No keys here: both ends bring their own handshake (the hint). */
    kl_stream_config_t sc = {.pattern = KL_NOISE_KK,
                             .initiator = outgoing,
                             .hs_max = FED_HS_MAX,
                             .frame_max = KL_FRAME_MAX,
                             .plaintext = 1,
                             .defer = !outgoing,
                             .handshake_ms = FED_HS_TIMEOUT_MS};
    fed_link_t *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    if (kl_stream_init(&l->st, &sc, uv_now(f->cfg.loop)) != 0) {
        kl_stream_free(&l->st);
        free(l);
        return NULL;
    }
    l->fed = f;
    l->outgoing = outgoing;
    uv_tcp_init(f->cfg.loop, &l->tcp);
    uv_timer_init(f->cfg.loop, &l->timer);
    l->tcp.data = l->timer.data = l;
    l->open_handles = 2;
    l->next = f->links;
    f->links = l;
    uv_timer_start(&l->timer, on_timeout, FED_HS_TIMEOUT_MS, 0);
    return l;
}

static void on_connect(uv_connect_t *req, int status)
{
    fed_link_t *l = req->data;
    uint8_t msg[FED_HS_MAX];
    size_t mlen = 0;
    kl_noise_hs_t *hs = NULL;
    if (l->closing)
        return;
    if (status < 0) {
        kl_diag(KL_DIAG_INFO, "federation: cannot connect to %s at %s: %s", l->peer->cfg.name,
               l->peer->cfg.addr, uv_strerror(status));
        kl_fedlink_close(l, "connect failed");
        return;
    }
    const uint8_t *sk = l->fed->cfg.static_sk;
    kl_noise_config_t nc = {.pattern = KL_NOISE_KK,
                            .initiator = 1,
                            .prologue = (const uint8_t *)KL_PROLOGUE_FEDERATION,
                            .prologue_len = strlen(KL_PROLOGUE_FEDERATION),
                            .s = sk,
                            .rs = l->peer->cfg.key};
    int r = kl_noise_hs_new(&hs, &nc);
    if (r == 0)
        r = kl_fed_hello(l->peer, hs, msg, sizeof msg, &mlen);
    if (r == 0)
        r = kl_stream_adopt(&l->st, hs, msg, mlen); /* takes hs */
    else
        kl_noise_hs_free(hs);
    if (r == 0)
        r = send_pending(l);
    if (r == 0 && !l->closing)
        r = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
    if (r != 0)
        kl_fedlink_close(l, "handshake failed");
}

/* Dial p at the resolved address (fed.c resolved it). */
static void dial_addr(fed_peer_t *p, const struct sockaddr *sa)
{
    fed_link_t *l = link_new(p->fed, 1);
    if (l == NULL) {
        kl_fed_redial_later(p);
        return;
    }
    l->peer = p;
    p->out = l;
    snprintf(l->where, sizeof l->where, "%.63s", p->cfg.addr);
    uv_tcp_nodelay(&l->tcp, 1);
    uv_tcp_keepalive(&l->tcp, 1, 30);
    l->creq.data = l;
    int r = uv_tcp_connect(&l->creq, &l->tcp, sa, on_connect);
    if (r != 0) {
        kl_diag(KL_DIAG_INFO, "federation: cannot connect to %s: %s", p->cfg.name, uv_strerror(r));
        kl_fedlink_close(l, "connect failed");
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    fed_peer_t *p = req->data;
    p->resolving = 0;
    struct addrinfo *ai = res;
    while (ai && ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
        ai = ai->ai_next;
    if (p->fed->stopping || p->removed) {
        uv_freeaddrinfo(res);
        return;
    }
    if (status < 0 || ai == NULL) {
        kl_diag(KL_DIAG_WARN, "federation: cannot resolve %s for peer %s: %s", p->cfg.addr,
               p->cfg.name, status < 0 ? uv_strerror(status) : "no address");
        uv_freeaddrinfo(res);
        kl_fed_redial_later(p);
        return;
    }
    dial_addr(p, ai->ai_addr);
    uv_freeaddrinfo(res);
}

void kl_fedlink_dial(fed_peer_t *p)
{
    char host[KL_HOST_MAX + 1], port[8];
    uint16_t pn = 0;
    struct sockaddr_storage ss;
    if (kl_hostport_parse(p->cfg.addr, host, sizeof host, &pn) != 0) {
        kl_diag(KL_DIAG_ERROR, "federation: peer %s has an invalid address %s", p->cfg.name,
               p->cfg.addr);
        kl_fed_redial_later(p);
        return;
    }
    if (uv_ip4_addr(host, pn, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(host, pn, (struct sockaddr_in6 *)&ss) == 0) {
        dial_addr(p, (const struct sockaddr *)&ss);
        return;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%u", pn);
    p->gai.data = p;
    if (uv_getaddrinfo(p->fed->cfg.loop, &p->gai, on_resolved, host, port, &hints) == 0)
        p->resolving = 1;
    else
        kl_fed_redial_later(p);
}

void kl_fedlink_accept(kl_fed_t *f)
{
    fed_link_t *l = link_new(f, 0);
    if (l == NULL)
        return;
    if (uv_accept((uv_stream_t *)&f->listener, (uv_stream_t *)&l->tcp) != 0) {
        f->pending_in++; /* close decrements it */
        kl_fedlink_close(l, "accept failed");
        return;
    }
    kl_tcp_name(&l->tcp, 0, l->where, sizeof l->where);
    f->pending_in++;
    if (f->pending_in > FED_MAX_PENDING_IN) {
        kl_fedlink_close(l, "too many unidentified links");
        return;
    }
    uv_tcp_nodelay(&l->tcp, 1);
    uv_tcp_keepalive(&l->tcp, 1, 30);
    if (uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read) != 0)
        kl_fedlink_close(l, "read failed");
}
