/* The metrics endpoint's HTTP side (metrics_http.h says why it is this
 * small and what bounds it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/dlist.h"
#include "kollega/err.h"
#include "base/diag.h"
#include "metrics_http.h"
#include "base/tcpaddr.h"

typedef struct mconn mconn_t;

struct kl_metrics_http {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int listener_open;
    kl_metrics_http_render_cb cb;
    void *ud;
    mconn_t *conns;
    unsigned n_conns;
    int stopping;
};

struct mconn {
    uv_tcp_t tcp;
    uv_timer_t timer;           /* the whole exchange's deadline */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    kl_metrics_http_t *h;
    mconn_t *prev, *next;
    int open_handles;
    int closing;
    int answered;               /* a response is being written */
    int shut;                   /* it is written and our FIN sent */
    int eof;                    /* the scraper closed its side */
    char *resp;
    size_t len;                 /* bytes of req received */
    char req[KL_METRICS_HTTP_REQ_MAX];
};

static void maybe_free_module(kl_metrics_http_t *h)
{
    if (h->stopping && !h->listener_open && h->n_conns == 0)
        free(h);
}

static void on_conn_handle_closed(uv_handle_t *hd)
{
    mconn_t *c = hd->data;
    if (--c->open_handles > 0)
        return;
    kl_metrics_http_t *h = c->h;
    KL_DLIST_UNLINK(h->conns, c);
    h->n_conns--;
    free(c->resp);
    free(c);
    maybe_free_module(h);
}

static void conn_close(mconn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

/* The answer is out and our side shut. Closing while the scraper still
 * sends (the rest of a too-long request) would turn into a reset that can
 * destroy the answer before it is read, so the connection lingers until
 * the scraper's EOF (on_read) or the deadline. */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    mconn_t *c = req->data;
    c->shut = 1;
    if (status < 0 || c->eof)
        conn_close(c);
}

static void on_written(uv_write_t *req, int status)
{
    mconn_t *c = req->data;
    if (c->closing)
        return;
    if (status < 0 || uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

/* Send one response and end the exchange. body may be NULL (len 0). */
static void respond(mconn_t *c, const char *status, const char *extra, const char *ctype,
                    const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     status, ctype, len, extra);
    c->answered = 1;
    c->len = 0; /* the request is handled: the buffer now takes what is discarded */
    if (n < 0 || (size_t)n >= sizeof head || len > SIZE_MAX - (size_t)n) {
        conn_close(c);
        return;
    }
    c->resp = malloc((size_t)n + len);
    if (c->resp == NULL) {
        conn_close(c);
        return;
    }
    memcpy(c->resp, head, (size_t)n);
    if (len)
        memcpy(c->resp + n, body, len);
    uv_buf_t b = uv_buf_init(c->resp, (unsigned)((size_t)n + len));
    c->wreq.data = c;
    c->sreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        conn_close(c);
}

static void respond_text(mconn_t *c, const char *status, const char *extra, const char *msg)
{
    respond(c, status, extra, "text/plain; charset=utf-8", msg, strlen(msg));
}

/* The end of the header block (a blank line) within req[0..len), as an
 * offset past it, or 0; bare LF line ends are accepted as well. Only a
 * blank line ending at from or later is looked for (the earlier bytes were
 * searched on the previous reads), so a request trickled in byte by byte
 * costs linear time, not quadratic. */
static size_t header_end(const char *req, size_t from, size_t len)
{
    for (size_t i = from > 0 ? from : 1; i < len; i++) {
        if (req[i] != '\n')
            continue;
        if (req[i - 1] == '\n')
            return i + 1;
        if (i >= 2 && req[i - 1] == '\r' && req[i - 2] == '\n')
            return i + 1;
    }
    return 0;
}

/* The request is complete: "METHOD SP TARGET SP HTTP/x.y" then headers,
 * which are not needed and not looked at. */
static void handle(mconn_t *c)
{
    char *line = c->req, *end = memchr(c->req, '\n', c->len);
    if (end == NULL) { /* cannot happen: header_end found one */
        conn_close(c);
        return;
    }
    *end = '\0';
    if (end > line && end[-1] == '\r')
        end[-1] = '\0';
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') != NULL ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp1 == line || sp2 == sp1 + 1) {
        respond_text(c, "400 Bad Request", "", "bad request\n");
        return;
    }
    *sp1 = *sp2 = '\0';
    const char *method = line, *target = sp1 + 1;
    size_t plen = strcspn(target, "?");
    if (plen != strlen("/metrics") || strncmp(target, "/metrics", plen) != 0) {
        respond_text(c, "404 Not Found", "", "not found: the metrics are at /metrics\n");
        return;
    }
    if (strcmp(method, "GET") != 0) {
        respond_text(c, "405 Method Not Allowed", "Allow: GET\r\n", "only GET is allowed\n");
        return;
    }
    char *body = NULL;
    size_t len = 0;
    int r = c->h->cb(c->h->ud, &body, &len);
    if (r != 0) {
        kl_diag(KL_DIAG_WARN, "metrics: cannot render: %s", kl_strerror(r));
        respond_text(c, "500 Internal Server Error", "", "cannot render the metrics\n");
        return;
    }
    respond(c, "200 OK", "", "text/plain; version=0.0.4; charset=utf-8", body, len);
    free(body);
}

static void on_alloc(uv_handle_t *hd, size_t hint, uv_buf_t *buf)
{
    mconn_t *c = hd->data;
    (void)hint;
    *buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof c->req - c->len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    mconn_t *c = st->data;
    (void)buf;
    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        /* EOF or an error. Before the answer the request never came
         * whole; after it the scraper is done: close once our FIN is out. */
        c->eof = 1;
        if (!c->answered || c->shut)
            conn_close(c);
        return;
    }
    if (c->answered) {
        c->len = 0; /* discard until EOF */
        return;
    }
    size_t from = c->len;
    c->len += (size_t)nread;
    if (header_end(c->req, from, c->len))
        handle(c);
    else if (c->len == sizeof c->req)
        respond_text(c, "431 Request Header Fields Too Large", "", "request too large\n");
}

static void free_refused(uv_handle_t *hd)
{
    free(hd->data);
}

static void on_connection(uv_stream_t *l, int status)
{
    kl_metrics_http_t *h = l->data;
    if (status < 0 || h->stopping)
        return;
    if (h->n_conns >= KL_METRICS_HTTP_CONNS) {
        /* Accept and close: left in the backlog it would be reported
         * again and again. */
        uv_tcp_t *t = malloc(sizeof *t);
        if (t == NULL)
            return;
        uv_tcp_init(h->loop, t);
        t->data = t;
        if (uv_accept(l, (uv_stream_t *)t) == 0)
            kl_diag(KL_DIAG_DEBUG, "metrics: refused a connection: %u open already", h->n_conns);
        uv_close((uv_handle_t *)t, free_refused);
        return;
    }
    mconn_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->h = h;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    KL_DLIST_PUSH(h->conns, c);
    h->n_conns++;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, KL_METRICS_HTTP_TIMEOUT_MS, 0);
}

static void on_listener_closed(uv_handle_t *hd)
{
    kl_metrics_http_t *h = hd->data;
    h->listener_open = 0;
    maybe_free_module(h);
}

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
        return a[0] == 127;
    }
    if (ss->ss_family == AF_INET6) {
        static const uint8_t lo[16] = {[15] = 1};
        static const uint8_t v4[12] = {[10] = 0xff, [11] = 0xff};
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
        return memcmp(a, lo, 16) == 0 || (memcmp(a, v4, 12) == 0 && a[12] == 127);
    }
    return 0;
}

int kl_metrics_http_start(kl_metrics_http_t **out, uv_loop_t *loop, const struct sockaddr *addr,
                          kl_metrics_http_render_cb cb, void *ud, char *bound, size_t cap,
                          int *loopback)
{
    *out = NULL;
    kl_metrics_http_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return KL_ENOMEM;
    h->loop = loop;
    h->cb = cb;
    h->ud = ud;
    uv_tcp_init(loop, &h->listener);
    h->listener.data = h;
    h->listener_open = 1;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    int r = uv_tcp_bind(&h->listener, addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&h->listener, 16, on_connection);
    if (r == 0)
        r = uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &len);
    if (r) {
        kl_metrics_http_stop(h);
        return r;
    }
    kl_tcp_name(&h->listener, 1, bound, cap);
    *loopback = is_loopback(&ss);
    *out = h;
    return 0;
}

void kl_metrics_http_stop(kl_metrics_http_t *h)
{
    if (h == NULL || h->stopping)
        return;
    h->stopping = 1;
    for (mconn_t *c = h->conns; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&h->listener, on_listener_closed);
}
