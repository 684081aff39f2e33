/* kl-probe: a raw protocol client for integration tests. It does what a
 * well-behaved client never does and reports what the relay answered, and
 * it drives registered users fast enough for crash and abuse tests.
 *
 * usage: kl-probe HOST PORT RELAY_KEY_B64 MODE [ARGS...]
 *
 * One bad connection, reported as one JSON line
 *   {"mode":"...","error_code":N|null,"error":"...","closed":true|false}:
 *   garbage    random bytes instead of a handshake
 *   truncated  a length prefix announcing more than ever arrives, then EOF
 *   hsbig      a handshake frame longer than any handshake message
 *   badframe   valid Noise, undecodable protobuf
 *   badlen     valid Noise, protobuf whose field length points far past the end
 *   badcipher  a transport message that fails authentication
 *   bigcipher  a maximal (65535-byte) transport message of random bytes
 *   empty      a zero-length frame after the handshake
 *   partial    after the handshake, part of a 65535-byte frame, then EOF
 *   unauth     a valid request in the wrong state (fetch before auth)
 *   wrongbody  a frame the relay never receives (deliver)
 *   zeroid     a request with id 0
 *   ping       ping before auth (answered, not an error: "error":"pong")
 * storm KIND N   N connections of one of the kinds above, one JSON line:
 *   {"mode":"storm","kind":"...","n":N,"closed":C,"codes":{"CODE":COUNT},"failed":F}
 *
 * Registered users (kl_probe_user.c; KEYFILE holds the Ed25519 key pair):
 *   register KEYFILE HANDLE INVITE_CODE
 *   sendloop KEYFILE ADDRESS TO N [--window W] [--size B] [--start I] [--retry]
 *            [--until-error]
 *   recv     KEYFILE ADDRESS [--no-ack] [--hold] [--rounds R]
 *   flood    KEYFILE ADDRESS
 * A hostile user at the end-to-end layer (kl_probe_e2e.c):
 *   forge    KEYFILE ADDRESS TO CLAIMED_SENDER junk|proven TEXT
 *            a sealed-sender envelope to TO that claims CLAIMED_SENDER: junk
 *            (a random claimed key and random ratchet bytes) or proven (the
 *            probe's own key and a real X3DH start carrying TEXT)
 *   unidentified TO TOKEN_B64|random   a send without authenticating, with
 *            that delivery token: {"mode","ok","error_code","closed"}
 * A hostile group member (kl_probe_group.c; HOME is the member's kollega
 * home, whose store has no passphrase):
 *   group-invite HOME GROUP ADDRESS KEY_B64
 *   group-send   HOME GROUP TEXT [--index N] [--head-bogus] [--print]
 *   chan-post    HOME CHANNEL EPOCH TEXT   a members-only channel post under
 *                the key of EPOCH
 *   drain    KEYFILE ADDRESS TARGET N   N prekey fetches of TARGET, one JSON line:
 *            {"mode":"drain","fetches","bundles","opks" (distinct one-time prekey
 *            ids got),"without_opk","rate_limited","errors","closed"}
 * Exit codes: 0 the mode ran (its JSON says what happened), 1 it could not
 * run (no relay, handshake failed), 2 usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kl_probe.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/frame.h"
#include "relay.pb-c.h"

#define TIMEOUT_MS 5000

static struct sockaddr_in g_addr;
static uint8_t g_rs[32];

void probe_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int probe_stdin_eof(void)
{
    struct pollfd p = {.fd = 0, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
        return 1;
    char b[64];
    return read(0, b, sizeof b) <= 0;
}

void probe_json_str(const char *s)
{
    putchar('"');
    for (const char *p = s ? s : ""; *p; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            putchar(*p);
    putchar('"');
}

int probe_send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read exactly n bytes: 0, 1 on orderly close/reset, -1 on timeout. */
static int recv_all(int fd, uint8_t *p, size_t n, int timeout_ms)
{
    while (n > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            return -1;
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int send_frame(int fd, const uint8_t *p, size_t n)
{
    uint8_t hdr[2];
    if (kl_frame_header(n, hdr) != 0)
        return -1;
    return probe_send_all(fd, hdr, 2) || probe_send_all(fd, p, n) ? -1 : 0;
}

int pconn_connect(pconn_t *c)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    if (connect(c->fd, (struct sockaddr *)&g_addr, sizeof g_addr) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

void pconn_close(pconn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    kl_stream_free(&c->st);
}

/* What one read of the stream brought. */
typedef struct got {
    kl_frame_t *f;
    int bad;
} got_t;

static int on_event(void *ud, kl_stream_event_t *ev)
{
    got_t *g = ud;
    if (ev->type == KL_STREAM_EV_FRAME)
        g->f = ev->frame;
    else if (ev->type == KL_STREAM_EV_ERROR)
        g->bad = 1;
    return 0;
}

/* Read until the stream has a frame (or, with until_ready, has finished
 * the handshake). Each read asks for exactly the bytes that complete the
 * current length header or frame, so nothing past a frame is consumed and
 * each feed brings at most one frame. 0, PR_TIMEOUT, PR_CLOSED, PR_BAD.
 * The probe runs no timers on the stream: its clock is always 0. */
static int pump(pconn_t *c, int timeout_ms, int until_ready, got_t *g)
{
    static uint8_t buf[KL_FRAME_MAX];
    for (;;) {
        size_t want = kl_stream_want(&c->st);
        if (want == 0)
            return PR_BAD;
        int r = recv_all(c->fd, buf, want, timeout_ms);
        if (r)
            return r < 0 ? PR_TIMEOUT : PR_CLOSED;
        if (kl_stream_feed(&c->st, buf, want, 0, on_event, g) != 0 || g->bad)
            return PR_BAD;
        if (g->f != NULL || (until_ready && kl_stream_ready(&c->st)))
            return 0;
    }
}

static int handshake(pconn_t *c)
{
    /* Payloads are empty; up to 64 bytes from the relay are ignored. */
    kl_stream_config_t cfg = {.pattern = KL_NOISE_NK,
                              .initiator = 1,
                              .rs = g_rs,
                              .prologue = (const uint8_t *)KL_PROLOGUE_CLIENT,
                              .prologue_len = strlen(KL_PROLOGUE_CLIENT),
                              .hs_max = KL_STREAM_HS_MAX,
                              .frame_max = KL_FRAME_MAX,
                              .payload_max = 64};
    uint8_t msg[KL_STREAM_OUT_MAX];
    size_t n = 0;
    got_t g = {0};
    int r = kl_stream_init(&c->st, &cfg, 0);
    if (r == 0)
        r = kl_stream_start(&c->st);
    if (r == 0)
        r = kl_stream_take(&c->st, msg, sizeof msg, &n);
    if (r == 0)
        r = probe_send_all(c->fd, msg, n) ? KL_EIO : 0;
    if (r == 0)
        r = pump(c, TIMEOUT_MS, 1, &g) ? KL_EIO : 0;
    return r;
}

int pconn_open(pconn_t *c)
{
    if (pconn_connect(c) != 0)
        return -1;
    if (handshake(c) != 0) {
        pconn_close(c);
        return -1;
    }
    return 0;
}

uint32_t pconn_id(pconn_t *c)
{
    if (++c->next_id == 0)
        c->next_id = 1;
    return c->next_id;
}

int pconn_send(pconn_t *c, const kl_frame_t *f)
{
    static uint8_t out[KL_FRAME_MAX + 2];
    size_t n = kollega__relay__v1__frame__get_packed_size(f), len = 0;
    if (n > KL_WIRE_MAX_FRAME || kl_stream_seal_frame(&c->st, f, n, out, sizeof out, &len, 0) != 0)
        return -1;
    return probe_send_all(c->fd, out, len);
}

int pconn_recv(pconn_t *c, int timeout_ms, kl_frame_t **out)
{
    got_t g = {0};
    int r = pump(c, timeout_ms, 0, &g);
    *out = g.f;
    return r;
}

/* After a violation the relay must close: wait for EOF. */
static int wait_closed(int fd)
{
    uint8_t b[256];
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, TIMEOUT_MS) <= 0)
            return 0;
        ssize_t r = recv(fd, b, sizeof b, 0);
        if (r <= 0)
            return 1;
    }
}

typedef struct result {
    int code;      /* error code, or -1 */
    int closed;
    char msg[200];
} result_t;

static void set_result(result_t *res, int code, const char *msg, int closed)
{
    res->code = code;
    res->closed = closed;
    snprintf(res->msg, sizeof res->msg, "%s", msg ? msg : "");
}

/* Read frames until an error frame or close. */
static void expect_error_close(pconn_t *c, result_t *res)
{
    for (;;) {
        kl_frame_t *f = NULL;
        int r = pconn_recv(c, TIMEOUT_MS, &f);
        if (r == PR_CLOSED) {
            set_result(res, -1, "closed without error frame", 1);
            return;
        }
        if (r == PR_TIMEOUT) {
            set_result(res, -1, "timeout", 0);
            return;
        }
        if (r == PR_BAD) {
            set_result(res, -1, "undecryptable reply", 0);
            return;
        }
        if (f->body_case == KOLLEGA__RELAY__V1__FRAME__BODY_ERROR) {
            set_result(res, (int)f->error->code, f->error->message, 0);
            kl_wire_free(f);
            res->closed = wait_closed(c->fd);
            return;
        }
        kl_wire_free(f);
    }
}

/* Send a plaintext (not necessarily a Frame) as one transport message. */
static int send_plain(pconn_t *c, const uint8_t *pt, size_t n)
{
    static uint8_t out[KL_FRAME_MAX + 2];
    size_t olen = 0;
    if (kl_stream_seal(&c->st, pt, n, out, sizeof out, &olen, 0) != 0)
        return -1;
    return probe_send_all(c->fd, out, olen);
}

static int is_kind(const char *k)
{
    static const char *KINDS[] = {"garbage", "truncated", "hsbig", "badframe", "badlen",
                                  "badcipher", "bigcipher", "empty", "partial", "unauth", "wrongbody",
                                  "zeroid", "ping"};
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
        if (strcmp(k, KINDS[i]) == 0)
            return 1;
    return 0;
}

/* Run one bad connection of kind; 0 when it ran, -1 when it could not
 * (connect or handshake failed). */
static int abuse(const char *kind, result_t *res)
{
    static uint8_t junk[KL_FRAME_MAX];
    pconn_t c;
    set_result(res, -1, "", 0);
    if (strcmp(kind, "garbage") == 0 || strcmp(kind, "truncated") == 0 ||
        strcmp(kind, "hsbig") == 0) {
        if (pconn_connect(&c) != 0)
            return -1;
        if (strcmp(kind, "garbage") == 0) {
            /* Nothing can be said back on a channel that never formed, so
             * the relay just closes. */
            kl_random(junk, 4096);
            probe_send_all(c.fd, junk, 4096);
        } else if (strcmp(kind, "truncated") == 0) {
            uint8_t hdr[2] = {0xff, 0xff};
            probe_send_all(c.fd, hdr, 2);
            probe_send_all(c.fd, (const uint8_t *)"abc", 3);
            shutdown(c.fd, SHUT_WR);
        } else {
            uint8_t hdr[2] = {0x10, 0x00};
            kl_random(junk, 64);
            probe_send_all(c.fd, hdr, 2);
            probe_send_all(c.fd, junk, 64);
        }
        res->closed = wait_closed(c.fd);
        pconn_close(&c);
        return 0;
    }
    if (pconn_open(&c) != 0) {
        set_result(res, -1, "handshake failed", 0);
        return -1;
    }
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    if (strcmp(kind, "badframe") == 0) {
        memset(junk, 0xff, 64);
        send_plain(&c, junk, 64);
    } else if (strcmp(kind, "badlen") == 0) {
        /* Field 13 (send), length-delimited, claiming 2^31 bytes. */
        const uint8_t pb[] = {0x08, 0x01, 0x6a, 0x80, 0x80, 0x80, 0x80, 0x08, 0x0a, 0x01};
        send_plain(&c, pb, sizeof pb);
    } else if (strcmp(kind, "badcipher") == 0) {
        kl_random(junk, 64);
        send_frame(c.fd, junk, 64);
    } else if (strcmp(kind, "bigcipher") == 0) {
        kl_random(junk, KL_FRAME_MAX);
        send_frame(c.fd, junk, KL_FRAME_MAX);
    } else if (strcmp(kind, "empty") == 0) {
        uint8_t hdr[2] = {0, 0};
        probe_send_all(c.fd, hdr, 2);
    } else if (strcmp(kind, "partial") == 0) {
        /* The relay buffers the partial frame until EOF; nothing to answer. */
        uint8_t hdr[2] = {0xff, 0xff};
        kl_random(junk, 1000);
        probe_send_all(c.fd, hdr, 2);
        probe_send_all(c.fd, junk, 1000);
        shutdown(c.fd, SHUT_WR);
        res->closed = wait_closed(c.fd);
        pconn_close(&c);
        return 0;
    } else if (strcmp(kind, "unauth") == 0) {
        Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
        f.id = 7;
        f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_FETCH;
        f.fetch = &fe;
        pconn_send(&c, &f);
    } else if (strcmp(kind, "wrongbody") == 0) {
        Kollega__Relay__V1__Deliver d = KOLLEGA__RELAY__V1__DELIVER__INIT;
        f.id = 9;
        f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_DELIVER;
        f.deliver = &d;
        pconn_send(&c, &f);
    } else if (strcmp(kind, "zeroid") == 0 || strcmp(kind, "ping") == 0) {
        Kollega__Relay__V1__Ping p = KOLLEGA__RELAY__V1__PING__INIT;
        f.id = strcmp(kind, "ping") == 0 ? 1 : 0;
        p.nonce = 42;
        f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_PING;
        f.ping = &p;
        pconn_send(&c, &f);
    }
    if (strcmp(kind, "ping") == 0) {
        kl_frame_t *reply = NULL;
        int r = pconn_recv(&c, TIMEOUT_MS, &reply);
        if (r == 0 && reply->body_case == KOLLEGA__RELAY__V1__FRAME__BODY_PONG &&
            reply->id == 1 && reply->pong->nonce == 42)
            set_result(res, -1, "pong", 0);
        else
            set_result(res, -1, "no pong", r == PR_CLOSED);
        kl_wire_free(reply);
    } else {
        expect_error_close(&c, res);
    }
    pconn_close(&c);
    return 0;
}

static int storm(const char *kind, long n)
{
    long closed = 0, failed = 0, codes[32] = {0}, nocode = 0;
    for (long i = 0; i < n; i++) {
        result_t res;
        if (abuse(kind, &res) != 0) {
            failed++;
            continue;
        }
        closed += res.closed;
        if (res.code >= 0 && res.code < 32)
            codes[res.code]++;
        else
            nocode++;
    }
    printf("{\"mode\":\"storm\",\"kind\":\"%s\",\"n\":%ld,\"closed\":%ld,\"failed\":%ld,"
           "\"no_error_frame\":%ld,\"codes\":{", kind, n, closed, failed, nocode);
    int first = 1;
    for (int k = 0; k < 32; k++) {
        if (codes[k] == 0)
            continue;
        printf("%s\"%d\":%ld", first ? "" : ",", k, codes[k]);
        first = 0;
    }
    printf("}}\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: kl-probe HOST PORT RELAY_KEY_B64 MODE [ARGS...]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (kl_crypto_init())
        return 1;
    size_t rsl = 0;
    if (kl_b64_decode(argv[3], g_rs, sizeof g_rs, &rsl) || rsl != 32) {
        fprintf(stderr, "kl-probe: bad relay key\n");
        return 2;
    }
    const char *mode = argv[4];
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &g_addr.sin_addr) != 1)
        return 2;
    int rest = argc - 5;
    char **rargv = argv + 5;
    if (strcmp(mode, "storm") == 0) {
        if (rest != 2 || !is_kind(rargv[0]) || atol(rargv[1]) <= 0) {
            fprintf(stderr, "usage: kl-probe ... storm KIND N\n");
            return 2;
        }
        return storm(rargv[0], atol(rargv[1]));
    }
    if (strcmp(mode, "register") == 0)
        return probe_register(rest, rargv);
    if (strcmp(mode, "sendloop") == 0)
        return probe_sendloop(rest, rargv);
    if (strcmp(mode, "recv") == 0)
        return probe_recv(rest, rargv);
    if (strcmp(mode, "unidentified") == 0)
        return probe_unidentified(rest, rargv);
    if (strcmp(mode, "forge") == 0)
        return probe_forge(rest, rargv);
    if (strcmp(mode, "flood") == 0)
        return probe_flood(rest, rargv);
    if (strcmp(mode, "group-invite") == 0)
        return probe_group_invite(rest, rargv);
    if (strcmp(mode, "chan-post") == 0)
        return probe_chan_post(rest, rargv);
    if (strcmp(mode, "group-send") == 0)
        return probe_group_send(rest, rargv);
    if (strcmp(mode, "drain") == 0)
        return probe_drain(rest, rargv);
    if (!is_kind(mode) || rest != 0) {
        fprintf(stderr, "kl-probe: unknown mode %s\n", mode);
        return 2;
    }
    result_t res;
    int r = abuse(mode, &res);
    printf("{\"mode\":\"%s\",\"error_code\":", mode);
    if (res.code >= 0)
        printf("%d", res.code);
    else
        printf("null");
    printf(",\"error\":");
    probe_json_str(res.msg);
    printf(",\"closed\":%s}\n", res.closed ? "true" : "false");
    if (r != 0)
        return 1;
    /* ping that got no pong is a failure of the relay, not of the probe. */
    return strcmp(mode, "ping") == 0 && strcmp(res.msg, "pong") != 0 ? 1 : 0;
}
