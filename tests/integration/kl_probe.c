/* kl-probe: a raw protocol client for integration tests. It does what a
 * well-behaved client never does (garbage, undecodable frames, requests
 * before auth) and reports what the relay answered as one JSON line:
 *   {"mode":"...","error_code":N|null,"error":"...","closed":true|false}
 * usage: kl-probe HOST PORT RELAY_KEY_B64 MODE
 *   MODE: garbage | badframe | unauth | ping | truncated | badcipher */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/frame.h"
#include "kollega/noise.h"
#include "kollega/wire.h"

#define TIMEOUT_MS 5000

static int fd = -1;

static int send_all(const uint8_t *p, size_t n)
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

/* Read exactly n bytes; 1 on orderly close/reset, -1 on timeout. */
static int recv_all(uint8_t *p, size_t n)
{
    while (n > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, TIMEOUT_MS);
        if (pr == 0)
            return -1;
        ssize_t r = recv(fd, p, n, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return 1;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Read one L1 frame into buf; returns its length, -1 timeout, -2 closed. */
static long recv_frame(uint8_t *buf)
{
    uint8_t hdr[2];
    int r = recv_all(hdr, 2);
    if (r)
        return r < 0 ? -1 : -2;
    size_t n = ((size_t)hdr[0] << 8) | hdr[1];
    r = recv_all(buf, n);
    if (r)
        return r < 0 ? -1 : -2;
    return (long)n;
}

static int send_frame(const uint8_t *p, size_t n)
{
    uint8_t hdr[2];
    kl_frame_header(n, hdr);
    return send_all(hdr, 2) || send_all(p, n);
}

/* After a violation the relay must close: wait for EOF. */
static int wait_closed(void)
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

static void report(const char *mode, int code, const char *msg, int closed)
{
    printf("{\"mode\":\"%s\",\"error_code\":", mode);
    if (code >= 0)
        printf("%d", code);
    else
        printf("null");
    printf(",\"error\":\"");
    for (const char *p = msg ? msg : ""; *p; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            putchar(*p);
    printf("\",\"closed\":%s}\n", closed ? "true" : "false");
}

static int handshake(const uint8_t rs[32], kl_noise_transport_t *t)
{
    kl_noise_hs_t *hs = NULL;
    kl_noise_config_t cfg = {.pattern = KL_NOISE_NK, .initiator = 1, .rs = rs,
                             .prologue = (const uint8_t *)KL_PROLOGUE_CLIENT,
                             .prologue_len = strlen(KL_PROLOGUE_CLIENT)};
    uint8_t msg[256], pl[64];
    size_t n, pn;
    int r = kl_noise_hs_new(&hs, &cfg);
    if (r == 0)
        r = kl_noise_hs_write(hs, NULL, 0, msg, sizeof msg, &n);
    if (r == 0)
        r = send_frame(msg, n) ? KL_EIO : 0;
    if (r == 0) {
        uint8_t buf[KL_FRAME_MAX];
        long got = recv_frame(buf);
        r = got < 0 ? KL_EIO : kl_noise_hs_read(hs, buf, (size_t)got, pl, sizeof pl, &pn);
    }
    if (r == 0)
        r = kl_noise_hs_split(hs, t);
    kl_noise_hs_free(hs);
    return r;
}

/* Read frames until an error frame or close; report. */
static int expect_error_close(const char *mode, kl_noise_transport_t *t)
{
    static uint8_t buf[KL_FRAME_MAX];
    for (;;) {
        long n = recv_frame(buf);
        if (n == -2) {
            report(mode, -1, "closed without error frame", 1);
            return 0;
        }
        if (n < 0) {
            report(mode, -1, "timeout", 0);
            return 1;
        }
        kl_frame_t *f = NULL;
        if (kl_wire_open(t, buf, (size_t)n, &f) != 0) {
            report(mode, -1, "undecryptable reply", 0);
            return 1;
        }
        if (f->body_case == KOLLEGA__RELAY__V1__FRAME__BODY_ERROR) {
            int code = (int)f->error->code;
            char msg[200];
            snprintf(msg, sizeof msg, "%s", f->error->message ? f->error->message : "");
            kl_wire_free(f);
            report(mode, code, msg, wait_closed());
            return 0;
        }
        kl_wire_free(f);
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: kl-probe HOST PORT RELAY_KEY_B64 MODE\n");
        return 2;
    }
    if (kl_crypto_init())
        return 1;
    uint8_t rs[32];
    size_t rsl = 0;
    if (kl_b64_decode(argv[3], rs, sizeof rs, &rsl) || rsl != 32) {
        fprintf(stderr, "kl-probe: bad relay key\n");
        return 2;
    }
    const char *mode = argv[4];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1)
        return 2;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "kl-probe: connect: %s\n", strerror(errno));
        return 1;
    }

    if (strcmp(mode, "garbage") == 0) {
        /* Random bytes where a handshake should be: nothing can be said
         * back on a channel that never formed, so the relay just closes. */
        uint8_t junk[4096];
        kl_random(junk, sizeof junk);
        send_all(junk, sizeof junk);
        report(mode, -1, "", wait_closed());
        return 0;
    }
    if (strcmp(mode, "truncated") == 0) {
        /* A length prefix announcing more than ever arrives, then EOF. */
        uint8_t hdr[2] = {0xff, 0xff};
        send_all(hdr, 2);
        send_all((const uint8_t *)"abc", 3);
        shutdown(fd, SHUT_WR);
        report(mode, -1, "", wait_closed());
        return 0;
    }

    kl_noise_transport_t t;
    if (handshake(rs, &t) != 0) {
        report(mode, -1, "handshake failed", 0);
        return 1;
    }
    uint8_t out[KL_FRAME_MAX + 2];
    size_t n = 0;
    int rc;
    if (strcmp(mode, "badframe") == 0) {
        /* Valid Noise, undecodable protobuf. */
        uint8_t junk[64];
        memset(junk, 0xff, sizeof junk);
        kl_noise_encrypt(&t, junk, sizeof junk, out, sizeof out, &n);
        send_frame(out, n);
        rc = expect_error_close(mode, &t);
    } else if (strcmp(mode, "badcipher") == 0) {
        /* A transport message that fails authentication. */
        uint8_t junk[64];
        kl_random(junk, sizeof junk);
        send_frame(junk, sizeof junk);
        rc = expect_error_close(mode, &t);
    } else if (strcmp(mode, "unauth") == 0) {
        /* A valid request in the wrong state: fetch before auth. */
        Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
        Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
        f.id = 7;
        f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_FETCH;
        f.fetch = &fe;
        kl_wire_seal(&t, &f, out, sizeof out, &n);
        send_all(out, n);
        rc = expect_error_close(mode, &t);
    } else if (strcmp(mode, "ping") == 0) {
        Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
        Kollega__Relay__V1__Ping p = KOLLEGA__RELAY__V1__PING__INIT;
        static uint8_t buf[KL_FRAME_MAX];
        f.id = 1;
        p.nonce = 42;
        f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_PING;
        f.ping = &p;
        kl_wire_seal(&t, &f, out, sizeof out, &n);
        send_all(out, n);
        long got = recv_frame(buf);
        kl_frame_t *reply = NULL;
        rc = 1;
        if (got > 0 && kl_wire_open(&t, buf, (size_t)got, &reply) == 0 &&
            reply->body_case == KOLLEGA__RELAY__V1__FRAME__BODY_PONG && reply->id == 1 &&
            reply->pong->nonce == 42) {
            report(mode, -1, "pong", 0);
            rc = 0;
        } else {
            report(mode, -1, "no pong", got == -2);
        }
        kl_wire_free(reply);
    } else {
        fprintf(stderr, "kl-probe: unknown mode %s\n", mode);
        rc = 2;
    }
    kl_noise_transport_wipe(&t);
    close(fd);
    return rc;
}
