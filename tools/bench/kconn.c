#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kconn.h"
#include "kollega/err.h"
#include "relay.pb-c.h"
#include "report.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
/* A connection whose unwritten output grows past this is failed: the bench
 * bounds what it sends by its windows, so only a stalled relay gets here. */
#define OBUF_MAX (64u << 20)

typedef struct write_req {
    uv_write_t req;
    kb_conn_t *c;
    uint8_t *buf;
    size_t len;
} write_req_t;

int kb_net_init(kb_net_t *n, uv_loop_t *loop, const char *host, uint16_t port)
{
    memset(n, 0, sizeof *n);
    n->loop = loop;
    struct addrinfo hints, *res = NULL;
    char ps[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    if (getaddrinfo(host, ps, &hints, &res) != 0 || res == NULL)
        return KL_EINVAL;
    if (res->ai_addrlen > sizeof n->addr) {
        freeaddrinfo(res);
        return KL_EINVAL;
    }
    memcpy(&n->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    uv_idle_init(loop, &n->flusher);
    n->flusher.data = n;
    return 0;
}

void kb_net_close(kb_net_t *n)
{
    uv_close((uv_handle_t *)&n->flusher, NULL);
}

int kb_users_make(kb_user_t *u, size_t n, const char *prefix)
{
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(u[i].handle, sizeof u[i].handle, "%s%zu", prefix, i);
        if (w < 0 || (size_t)w >= sizeof u[i].handle || !kl_handle_valid(u[i].handle))
            return KL_EINVAL;
        if (kl_sign_keypair(u[i].pk, u[i].sk) != 0)
            return KL_ECRYPTO;
    }
    return 0;
}

uint32_t kb_conn_ctl_id(kb_conn_t *c)
{
    c->ctl_id = (c->ctl_id + 1) & 0xffffu;
    if (c->ctl_id == 0)
        c->ctl_id = 1;
    return c->ctl_id << 16;
}

static void unlink_dirty(kb_conn_t *c)
{
    if (!c->dirty)
        return;
    for (kb_conn_t **p = &c->net->dirty; *p; p = &(*p)->dirty_next) {
        if (*p == c) {
            *p = c->dirty_next;
            break;
        }
    }
    c->dirty = 0;
    c->dirty_next = NULL;
}

static void on_closed(uv_handle_t *h)
{
    kb_conn_t *c = h->data;
    kl_stream_free(&c->st);
    free(c->obuf);
    c->obuf = NULL;
    c->olen = c->ocap = 0;
    c->net->open_conns--;
    c->state = KB_IDLE;
    c->ops->closed(c);
}

void kb_conn_close(kb_conn_t *c)
{
    if (c->state == KB_IDLE || c->state == KB_CLOSING)
        return;
    c->state = KB_CLOSING;
    unlink_dirty(c);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void fail(kb_conn_t *c, int kind)
{
    if (c->state == KB_IDLE || c->state == KB_CLOSING)
        return;
    c->ops->failed(c, kind);
    kb_conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    kb_conn_t *c = w->c;
    c->inflight_bytes -= w->len;
    free(w->buf);
    free(w);
    if (status < 0)
        fail(c, KB_ERR_CLOSED);
}

/* Write what is buffered: straight to the socket when nothing is queued
 * in libuv, and whatever the kernel did not take as one uv_write that
 * takes over the buffer. */
static void flush_conn(kb_conn_t *c)
{
    if (c->olen == 0 || c->state == KB_CLOSING)
        return;
    if (c->inflight_bytes == 0) {
        uv_buf_t b = uv_buf_init((char *)c->obuf, (unsigned)c->olen);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n == (int)c->olen) {
            c->olen = 0;
            return;
        }
        if (n > 0) {
            memmove(c->obuf, c->obuf + n, c->olen - (size_t)n);
            c->olen -= (size_t)n;
        } else if (n != UV_EAGAIN) {
            fail(c, KB_ERR_CLOSED);
            return;
        }
    }
    write_req_t *w = malloc(sizeof *w);
    if (w == NULL) {
        fail(c, KB_ERR_PROTOCOL);
        return;
    }
    w->c = c;
    w->buf = c->obuf;
    w->len = c->olen;
    c->obuf = NULL;
    c->olen = c->ocap = 0;
    uv_buf_t b = uv_buf_init((char *)w->buf, (unsigned)w->len);
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (r != 0) {
        free(w->buf);
        free(w);
        fail(c, KB_ERR_CLOSED);
        return;
    }
    c->inflight_bytes += w->len;
}

static void on_flush(uv_idle_t *h)
{
    kb_net_t *n = h->data;
    while (n->dirty) {
        kb_conn_t *c = n->dirty;
        n->dirty = c->dirty_next;
        c->dirty_next = NULL;
        c->dirty = 0;
        flush_conn(c);
    }
    uv_idle_stop(&n->flusher);
    n->flusher_on = 0;
}

static void mark_dirty(kb_conn_t *c)
{
    kb_net_t *n = c->net;
    if (!c->dirty) {
        c->dirty = 1;
        c->dirty_next = n->dirty;
        n->dirty = c;
    }
    if (!n->flusher_on) {
        uv_idle_start(&n->flusher, on_flush);
        n->flusher_on = 1;
    }
}

/* Make room for need more bytes of output. */
static int reserve(kb_conn_t *c, size_t need)
{
    if (c->ocap - c->olen >= need)
        return 0;
    if (c->olen + need > OBUF_MAX)
        return KL_ETOOBIG;
    size_t cap = c->ocap ? c->ocap * 2 : 4096;
    while (cap < c->olen + need)
        cap *= 2;
    uint8_t *p = realloc(c->obuf, cap);
    if (p == NULL)
        return KL_ENOMEM;
    c->obuf = p;
    c->ocap = cap;
    return 0;
}

int kb_conn_send(kb_conn_t *c, const kl_frame_t *f)
{
    if (c->state != KB_READY && c->state != KB_AUTHING)
        return KL_ESTATE;
    size_t pn = kollega__relay__v1__frame__get_packed_size(f), n = 0;
    int r = pn > KL_WIRE_MAX_FRAME ? KL_ETOOBIG : reserve(c, KL_WIRE_SIZE(pn));
    if (r == 0)
        r = kl_stream_seal_frame(&c->st, f, pn, c->obuf + c->olen, c->ocap - c->olen, &n,
                                 uv_now(c->net->loop));
    if (r != 0) {
        fail(c, KB_ERR_PROTOCOL);
        return r;
    }
    c->olen += n;
    mark_dirty(c);
    return 0;
}

/* The first request on a fresh transport: register (signature over
 * "kollega-register-v1" || hh || handle || code) or auth (over
 * "kollega-auth-v1" || hh). */
static int send_hello(kb_conn_t *c)
{
    uint8_t msg[512], sig[KL_SIG];
    size_t mlen = 0;
    char address[KL_ADDR_MAX + 1];
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Register rg = KOLLEGA__RELAY__V1__REGISTER__INIT;
    Kollega__Relay__V1__Auth au = KOLLEGA__RELAY__V1__AUTH__INIT;
    int r;
    if (c->do_register) {
        r = kl_wire_register_msg(kl_stream_hh(&c->st), c->user->handle, c->net->code, msg, sizeof msg,
                                 &mlen);
        if (r == 0)
            r = kl_sign(c->user->sk, msg, mlen, sig);
        rg.handle = (char *)c->user->handle;
        rg.identity_key.data = (uint8_t *)c->user->pk;
        rg.identity_key.len = KL_ED_PK;
        rg.invite_code = c->net->code;
        rg.signature.data = sig;
        rg.signature.len = KL_SIG;
        f.body_case = BODY(REGISTER);
        f.register_ = &rg;
    } else {
        snprintf(address, sizeof address, "%s@%s", c->user->handle, c->net->relay_name);
        r = kl_wire_auth_msg(kl_stream_hh(&c->st), msg, sizeof msg, &mlen);
        if (r == 0)
            r = kl_sign(c->user->sk, msg, mlen, sig);
        au.address = address;
        au.signature.data = sig;
        au.signature.len = KL_SIG;
        f.body_case = BODY(AUTH);
        f.auth = &au;
    }
    kl_memzero(msg, sizeof msg); /* holds the invite code */
    if (r != 0)
        return r;
    c->auth_id = f.id = kb_conn_ctl_id(c);
    c->state = KB_AUTHING;
    return kb_conn_send(c, &f);
}

/* One decoded frame. Non-zero stops feeding (closing). */
static int on_frame(kb_conn_t *c, kl_frame_t *f)
{
    if (c->state == KB_AUTHING) {
        if (f->body_case == BODY(OK) && f->id == c->auth_id) {
            c->state = KB_READY;
            c->ops->ready(c);
        } else if (f->body_case == BODY(ERROR)) {
            fail(c, (int)f->error->code > 0 && (int)f->error->code < (int)KB_ERR_CONNECT ? (int)f->error->code
                                                                         : KB_ERR_PROTOCOL);
        } else {
            fail(c, KB_ERR_PROTOCOL);
        }
    } else if (c->state == KB_READY) {
        c->ops->frame(c, f);
    }
    kl_wire_free(f);
    return c->state == KB_CLOSING;
}

/* kl_stream events. Non-zero stops feeding (closing). */
static int on_event(void *ud, kl_stream_event_t *ev)
{
    kb_conn_t *c = ud;
    switch (ev->type) {
    case KL_STREAM_EV_READY:
        if (send_hello(c) != 0)
            fail(c, KB_ERR_CONNECT);
        return c->state == KB_CLOSING;
    case KL_STREAM_EV_FRAME:
        return on_frame(c, ev->frame);
    case KL_STREAM_EV_ERROR:
        fail(c, c->state == KB_HANDSHAKE ? KB_ERR_CONNECT : KB_ERR_PROTOCOL);
        return 1;
    case KL_STREAM_EV_HANDSHAKE: /* responders only */
        break;
    }
    return 1;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    kb_conn_t *c = h->data;
    (void)hint;
    *buf = uv_buf_init((char *)c->net->rbuf, sizeof c->net->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    kb_conn_t *c = s->data;
    if (nread == 0 || c->state == KB_CLOSING)
        return;
    if (nread < 0) {
        fail(c, c->state == KB_READY ? KB_ERR_CLOSED : KB_ERR_CONNECT);
        return;
    }
    (void)kl_stream_feed(&c->st, (const uint8_t *)buf->base, (size_t)nread,
                         uv_now(c->net->loop), on_event, c); /* failures: on_event */
}

static void on_connect(uv_connect_t *req, int status)
{
    kb_conn_t *c = req->data;
    size_t n = 0;
    if (c->state == KB_CLOSING)
        return;
    if (status < 0) {
        fail(c, KB_ERR_CONNECT);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int r = kl_stream_start(&c->st);
    if (r == 0)
        r = reserve(c, kl_stream_pending(&c->st));
    if (r == 0)
        r = kl_stream_take(&c->st, c->obuf + c->olen, c->ocap - c->olen, &n);
    if (r != 0) {
        fail(c, KB_ERR_CONNECT);
        return;
    }
    c->olen += n;
    c->state = KB_HANDSHAKE;
    mark_dirty(c);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        fail(c, KB_ERR_CONNECT);
}

int kb_conn_open(kb_conn_t *c, kb_net_t *n, const kb_user_t *user, int do_register,
                 const kb_conn_ops_t *ops, void *ud)
{
    memset(c, 0, sizeof *c);
    c->net = n;
    c->ops = ops;
    c->ud = ud;
    c->user = user;
    c->do_register = do_register;
    c->started_ns = kb_now_ns();
    /* A relay's handshake payloads are empty; up to 64 bytes are ignored. */
    kl_stream_config_t sc = {.pattern = KL_NOISE_NK,
                             .initiator = 1,
                             .prologue = (const uint8_t *)KL_PROLOGUE_CLIENT,
                             .prologue_len = strlen(KL_PROLOGUE_CLIENT),
                             .rs = n->relay_key,
                             .hs_max = KL_STREAM_HS_MAX,
                             .frame_max = KL_FRAME_MAX,
                             .payload_max = 64};
    int r = kl_stream_init(&c->st, &sc, uv_now(n->loop));
    if (r == 0)
        r = uv_tcp_init(n->loop, &c->tcp);
    if (r != 0) {
        kl_stream_free(&c->st);
        return r;
    }
    c->tcp.data = c;
    c->creq.data = c;
    n->open_conns++;
    c->state = KB_CONNECTING;
    r = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&n->addr, on_connect);
    if (r != 0) {
        /* The handle exists: close it; closed() reports it to the owner. */
        c->ops->failed(c, KB_ERR_CONNECT);
        c->state = KB_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return 0;
    }
    return 0;
}
