/* Blocking relay connection for the CLI. See net.h.
 *
 * The socket is non-blocking and every wait is a poll() with a deadline, so
 * no relay (slow, silent or hostile) can hang the client: a connect, a
 * handshake and each request have a time limit. The protocol (framing,
 * the Noise NK handshake, the transport) is c->st, a kl_stream: frames
 * are capped at 128 bytes before the handshake and at the protocol's 65535
 * after it, before anything is allocated. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/stream.h"
#include "net.h"
#include "relay.pb-c.h"

struct qitem {
    kl_frame_t *f;
    struct qitem *next;
};

struct kl_net {
    int fd;
    char where[300];               /* "HOST:PORT" for messages */
    kl_stream_t st;
    struct qitem *head, *tail;
    size_t npush;
    int missed;
    uint32_t next_id;
    volatile sig_atomic_t *stop;
    int dead;
    char err[512];
    int relay_err;
    char relay_msg[256];
};

static void set_err(kl_net_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(kl_net_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int remaining(uint64_t deadline)
{
    if (deadline == UINT64_MAX)
        return -1;
    uint64_t now = now_ms();
    if (now >= deadline)
        return 0;
    uint64_t left = deadline - now;
    return left > 600000 ? 600000 : (int)left;
}

static int stopped(const kl_net_t *c)
{
    return c->stop != NULL && *c->stop;
}

/* Wait for events on the socket until the deadline. 0 when ready,
 * KL_ETIMEDOUT, -EINTR when the stop flag is set, KL_EIO on poll errors. */
static int wait_fd(kl_net_t *c, short events, uint64_t deadline)
{
    for (;;) {
        if (stopped(c))
            return -EINTR;
        int ms = remaining(deadline);
        if (ms == 0)
            return KL_ETIMEDOUT;
        struct pollfd p = {.fd = c->fd, .events = events};
        int n = poll(&p, 1, ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return KL_EIO;
        }
        if (n > 0)
            return 0;
    }
}

static void queue_push(kl_net_t *c, kl_frame_t *f)
{
    if (f->id == 0) {
        if (c->npush >= KL_CONN_MAX_QUEUED) {
            kl_wire_free(f);
            c->missed = 1;
            return;
        }
        c->npush++;
    }
    struct qitem *q = malloc(sizeof *q);
    if (q == NULL) {
        if (f->id == 0) {
            c->npush--;
            c->missed = 1;
        }
        kl_wire_free(f);
        return;
    }
    q->f = f;
    q->next = NULL;
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
}

/* Remove and return the first queued frame with this id (NULL if none). */
static kl_frame_t *queue_take(kl_net_t *c, uint32_t id)
{
    struct qitem *prev = NULL;
    for (struct qitem *q = c->head; q; prev = q, q = q->next) {
        if (q->f->id != id)
            continue;
        if (prev)
            prev->next = q->next;
        else
            c->head = q->next;
        if (c->tail == q)
            c->tail = prev;
        kl_frame_t *f = q->f;
        free(q);
        if (id == 0)
            c->npush--;
        return f;
    }
    return NULL;
}

/* Stream events: each frame, decrypted as it arrives so nonces stay in
 * order, is queued. The handshake's end shows in kl_stream_ready and a
 * failure in kl_stream_feed's result. */
static int on_event(void *ud, kl_stream_event_t *ev)
{
    kl_net_t *c = ud;
    if (ev->type == KL_STREAM_EV_FRAME)
        queue_push(c, ev->frame);
    return 0;
}

/* Read what is available (waiting until the deadline) and feed it. */
static int read_some(kl_net_t *c, uint64_t deadline)
{
    uint8_t buf[16384];
    if (c->dead)
        return KL_EIO;
    int r = wait_fd(c, POLLIN, deadline);
    if (r)
        return r;
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        c->dead = 1;
        set_err(c, "the relay %s closed the connection", c->where);
        return KL_EIO;
    }
    if (n < 0)
        return 0;
    r = kl_stream_feed(&c->st, buf, (size_t)n, now_ms(), on_event, c);
    kl_memzero(buf, sizeof buf);
    if (r) {
        c->dead = 1;
        if (r == KL_ECRYPTO)
            set_err(c, "the relay %s could not be authenticated or sent corrupted data", c->where);
        else
            set_err(c, "the relay %s broke the protocol (%s)", c->where, kl_strerror(r));
        return r == KL_ECRYPTO ? KL_ECRYPTO : KL_EPROTO;
    }
    return 0;
}

static int write_all(kl_net_t *c, const uint8_t *p, size_t len, uint64_t deadline)
{
    while (len > 0) {
        if (c->dead)
            return KL_EIO;
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                int r = wait_fd(c, POLLOUT, deadline);
                if (r) {
                    if (r == KL_ETIMEDOUT)
                        set_err(c, "the relay %s stopped reading (timed out)", c->where);
                    return r;
                }
                continue;
            }
            c->dead = 1;
            set_err(c, "the connection to the relay %s failed (%s)", c->where, strerror(errno));
            return KL_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Non-blocking connect to each resolved address in turn. */
static int tcp_connect(kl_net_t *c, const char *host, uint16_t port, uint64_t deadline)
{
    struct addrinfo hints, *res = NULL;
    char portstr[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof portstr, "%u", port);
    int g = getaddrinfo(host, portstr, &hints, &res);
    if (g != 0) {
        set_err(c, "cannot reach relay %s (cannot resolve host: %s); check the host name in "
                   "your invite and your network", c->where, gai_strerror(g));
        return KL_EIO;
    }
    int last = ECONNREFUSED, r = KL_EIO;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        c->fd = fd;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            r = 0;
            break;
        }
        if (errno == EINPROGRESS) {
            int w = wait_fd(c, POLLOUT, deadline);
            if (w == 0) {
                int soerr = 0;
                socklen_t sl = sizeof soerr;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
                    r = 0;
                    break;
                }
                last = soerr ? soerr : errno;
            } else if (w == KL_ETIMEDOUT) {
                last = ETIMEDOUT;
            } else {
                close(fd);
                c->fd = -1;
                r = w;
                break;
            }
        } else {
            last = errno;
        }
        close(fd);
        c->fd = -1;
    }
    freeaddrinfo(res);
    if (r == 0) {
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return 0;
    }
    if (r == -EINTR)
        return r;
    set_err(c, "cannot reach relay %s (%s); is kollega-relay running there, and is the "
               "address in your invite right?", c->where, strerror(last));
    return last == ETIMEDOUT ? KL_ETIMEDOUT : KL_EIO;
}

int kl_net_open(const char *host, uint16_t port, const uint8_t relay_key[32],
                 volatile sig_atomic_t *stop, kl_net_t **out, char *err, size_t errcap)
{
    int r = KL_ENOMEM;
    uint8_t msg1[KL_STREAM_OUT_MAX];
    size_t m1 = 0;
    kl_net_t *c = calloc(1, sizeof *c);
    /* The protocol's handshake payloads are empty; one of up to 64 bytes
     * from the relay is tolerated (and ignored), as it always was. */
    kl_stream_config_t sc = {
        .pattern = KL_NOISE_NK,
        .initiator = 1,
        .prologue = (const uint8_t *)KL_PROLOGUE_CLIENT,
        .prologue_len = strlen(KL_PROLOGUE_CLIENT),
        .rs = relay_key,
        .hs_max = KL_STREAM_HS_MAX,
        .frame_max = KL_FRAME_MAX,
        .payload_max = 64,
    };

    *out = NULL;
    if (c == NULL)
        goto out;
    c->fd = -1;
    c->stop = stop;
    c->next_id = 1;
    snprintf(c->where, sizeof c->where, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);

    uint64_t deadline = now_ms() + KL_CONN_CONNECT_MS;
    if ((r = tcp_connect(c, host, port, deadline)))
        goto out;

    if ((r = kl_stream_init(&c->st, &sc, now_ms())) || (r = kl_stream_start(&c->st)) ||
        (r = kl_stream_take(&c->st, msg1, sizeof msg1, &m1))) {
        set_err(c, "cannot start the encrypted connection (%s)", kl_strerror(r));
        goto out;
    }
    if ((r = write_all(c, msg1, m1, deadline)))
        goto out;
    while (!kl_stream_ready(&c->st)) {
        r = read_some(c, deadline);
        if (r == KL_ETIMEDOUT)
            set_err(c, "the relay %s did not answer the handshake in time", c->where);
        if (r == KL_ECRYPTO || r == KL_EPROTO)
            set_err(c, "the relay at %s could not prove it holds the key from your invite "
                       "(handshake failed); the invite may be outdated, or someone is "
                       "intercepting the connection", c->where);
        if (r == KL_EPROTO)
            r = KL_ECRYPTO;
        if (r)
            goto out;
    }
    *out = c;
    c = NULL;
    r = 0;
out:
    if (c) {
        if (err && errcap)
            snprintf(err, errcap, "%s", c->err[0] ? c->err : kl_strerror(r));
        kl_net_close(c);
    }
    return r;
}

void kl_net_close(kl_net_t *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0)
        close(c->fd);
    kl_stream_free(&c->st);
    while (c->head) {
        struct qitem *q = c->head;
        c->head = q->next;
        kl_wire_free(q->f);
        free(q);
    }
    free(c);
}

const uint8_t *kl_net_handshake_hash(const kl_net_t *c)
{
    return kl_stream_hh(&c->st);
}

int kl_net_send(kl_net_t *c, kl_frame_t *f)
{
    uint8_t *buf = NULL;
    size_t n = 0, len = 0;
    int r = 0;
    if (c->dead)
        return KL_EIO;
    n = kollega__relay__v1__frame__get_packed_size(f);
    if (n > KL_WIRE_MAX_FRAME)
        r = KL_ETOOBIG;
    else if ((buf = malloc(KL_WIRE_SIZE(n))) == NULL)
        r = KL_ENOMEM;
    else
        r = kl_stream_seal_frame(&c->st, f, n, buf, KL_WIRE_SIZE(n), &len, now_ms());
    if (r) {
        free(buf);
        set_err(c, "cannot encode a request (%s)", kl_strerror(r));
        return r;
    }
    r = write_all(c, buf, len, now_ms() + KL_CONN_REQUEST_MS);
    free(buf);
    return r;
}

static void save_relay_error(kl_net_t *c, const kl_frame_t *f)
{
    const Kollega__Relay__V1__Error *e = f->error;
    c->relay_err = e ? (int)e->code : 0;
    c->relay_msg[0] = '\0';
    if (e == NULL || e->message == NULL)
        return;
    /* The relay's words end up on the user's terminal: printable ASCII only. */
    size_t j = 0;
    for (size_t i = 0; e->message[i] && j + 1 < sizeof c->relay_msg; i++) {
        unsigned char ch = (unsigned char)e->message[i];
        c->relay_msg[j++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    c->relay_msg[j] = '\0';
}

int kl_net_call(kl_net_t *c, kl_frame_t *req, int expect_case, kl_frame_t **resp)
{
    *resp = NULL;
    if (c->next_id == 0)
        c->next_id = 1;
    req->id = c->next_id++;
    int r = kl_net_send(c, req);
    if (r)
        return r;
    uint64_t deadline = now_ms() + KL_CONN_REQUEST_MS;
    for (;;) {
        kl_frame_t *f = queue_take(c, req->id);
        if (f) {
            if ((int)f->body_case == expect_case) {
                *resp = f;
                return 0;
            }
            if (f->body_case == KOLLEGA__RELAY__V1__FRAME__BODY_ERROR) {
                save_relay_error(c, f);
                set_err(c, "the relay refused the request: %s", c->relay_msg[0] ? c->relay_msg
                                                                                  : "no reason given");
                kl_wire_free(f);
                return KL_EREFUSED;
            }
            kl_wire_free(f);
            set_err(c, "the relay %s sent an unexpected answer", c->where);
            return KL_EPROTO;
        }
        /* Answers to requests we gave up on are of no use any more. */
        for (struct qitem *q = c->head; q; q = q->next)
            if (q->f->id != 0 && q->f->id != req->id) {
                kl_frame_t *stale = queue_take(c, q->f->id);
                kl_wire_free(stale);
                break;
            }
        r = read_some(c, deadline);
        if (r == KL_ETIMEDOUT)
            set_err(c, "the relay %s did not answer in time", c->where);
        if (r)
            return r;
    }
}

int kl_net_wait_push(kl_net_t *c, int timeout_ms, kl_frame_t **push)
{
    *push = NULL;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        kl_frame_t *f = queue_take(c, 0);
        if (f) {
            *push = f;
            return 0;
        }
        int r = read_some(c, deadline);
        if (r)
            return r;
    }
}

int kl_net_take_missed(kl_net_t *c)
{
    int m = c->missed;
    c->missed = 0;
    return m;
}

const char *kl_net_error(const kl_net_t *c)
{
    return c->err[0] ? c->err : "connection failed";
}

int kl_net_relay_error(const kl_net_t *c)
{
    return c->relay_err;
}

const char *kl_net_relay_message(const kl_net_t *c)
{
    return c->relay_msg;
}
