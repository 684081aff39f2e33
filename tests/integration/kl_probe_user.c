/* kl-probe modes of a registered user (see kl_probe.c for the usage).
 *
 * Bodies are opaque to the relay; the probe makes them checkable: the body
 * of message i is "n=<i>;" followed by filler bytes that depend on i and
 * the position, so a receiver can tell which message it got and whether a
 * single byte of it changed. Every event is one JSON line on stdout. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kl_probe.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "relay.pb-c.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x
#define REPLY_TIMEOUT_MS 10000
/* A sender with --retry gives up after this long without any progress. */
#define RETRY_GIVE_UP_MS 60000
#define WINDOW_MAX 256
#define BODY_MAX 65000

typedef probe_ident_t ident_t;

static int key_load(const char *path, ident_t *id)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t n = fread(id, 1, sizeof *id, f);
    fclose(f);
    return n == sizeof *id ? 0 : -1;
}

static int key_save(const char *path, const ident_t *id)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, id, sizeof *id);
    close(fd);
    return w == (ssize_t)sizeof *id ? 0 : -1;
}

/* b holds at least size + 32 bytes; the body is never shorter than its
 * "n=<i>;" prefix. */
static void make_body(long i, uint8_t *b, size_t size, size_t *len)
{
    int n = snprintf((char *)b, 32, "n=%ld;", i);
    for (size_t k = (size_t)n; k < size; k++)
        b[k] = (uint8_t)(i * 131 + (long)k * 7);
    *len = size > (size_t)n ? size : (size_t)n;
}

/* The i of a probe body, or -1 when the body is not one (or was altered). */
static long check_body(const uint8_t *b, size_t len)
{
    char head[32];
    size_t h = 0;
    while (h < len && h < sizeof head - 1 && b[h] != ';') {
        head[h] = (char)b[h];
        h++;
    }
    head[h] = '\0';
    if (h == len || b[h] != ';' || strncmp(head, "n=", 2) != 0)
        return -1;
    char *end = NULL;
    long i = strtol(head + 2, &end, 10);
    if (end == head + 2 || *end != '\0' || i < 0)
        return -1;
    for (size_t k = h + 1; k < len; k++)
        if (b[k] != (uint8_t)(i * 131 + (long)k * 7))
            return -1;
    return i;
}

/* Wait for the reply to id, skipping pushes (id 0; their entries are
 * counted into *pushed when given). 0 with *out, or a PR_ code. */
int probe_await(pconn_t *c, uint32_t id, kl_frame_t **out, long *pushed)
{
    for (;;) {
        int r = pconn_recv(c, REPLY_TIMEOUT_MS, out);
        if (r)
            return r;
        if ((*out)->id == id)
            return 0;
        if ((*out)->body_case == BODY(DELIVER) && pushed)
            *pushed += (long)(*out)->deliver->n_entries;
        kl_wire_free(*out);
        *out = NULL;
    }
}

/* Returns 0 when authenticated, an ErrorCode (> 0) when refused, -1 when
 * the connection failed. */
int probe_auth(pconn_t *c, const uint8_t sk[KL_ED_SK], const char *address)
{
    uint8_t msg[128], sig[KL_SIG];
    size_t mlen = 0;
    if (kl_wire_auth_msg(kl_stream_hh(&c->st), msg, sizeof msg, &mlen) != 0 ||
        kl_sign(sk, msg, mlen, sig) != 0)
        return -1;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Auth a = KOLLEGA__RELAY__V1__AUTH__INIT;
    a.address = (char *)address;
    a.signature.data = sig;
    a.signature.len = sizeof sig;
    f.id = pconn_id(c);
    f.body_case = BODY(AUTH);
    f.auth = &a;
    kl_frame_t *rep = NULL;
    if (pconn_send(c, &f) != 0 || probe_await(c, f.id, &rep, NULL) != 0)
        return -1;
    int r = rep->body_case == BODY(OK) ? 0
            : rep->body_case == BODY(ERROR) ? (int)rep->error->code
                                              : -1;
    kl_wire_free(rep);
    return r;
}

int probe_register(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: kl-probe ... register KEYFILE HANDLE INVITE_CODE\n");
        return 2;
    }
    ident_t id;
    pconn_t c;
    uint8_t msg[256], sig[KL_SIG];
    size_t mlen = 0;
    kl_sign_keypair(id.pk, id.sk);
    if (pconn_open(&c) != 0) {
        printf("{\"mode\":\"register\",\"ok\":false,\"error\":\"no connection\"}\n");
        return 1;
    }
    if (kl_wire_register_msg(kl_stream_hh(&c.st), argv[1], argv[2], msg, sizeof msg, &mlen) != 0 ||
        kl_sign(id.sk, msg, mlen, sig) != 0)
        return 1;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Register rg = KOLLEGA__RELAY__V1__REGISTER__INIT;
    rg.handle = argv[1];
    rg.invite_code = argv[2];
    rg.identity_key.data = id.pk;
    rg.identity_key.len = sizeof id.pk;
    rg.signature.data = sig;
    rg.signature.len = sizeof sig;
    f.id = pconn_id(&c);
    f.body_case = BODY(REGISTER);
    f.register_ = &rg;
    kl_frame_t *rep = NULL;
    int ok = 0, code = -1;
    if (pconn_send(&c, &f) == 0 && probe_await(&c, f.id, &rep, NULL) == 0) {
        ok = rep->body_case == BODY(OK);
        if (rep->body_case == BODY(ERROR))
            code = (int)rep->error->code;
    }
    kl_wire_free(rep);
    pconn_close(&c);
    if (ok && key_save(argv[0], &id) != 0)
        ok = 0;
    kl_memzero(&id, sizeof id);
    printf("{\"mode\":\"register\",\"ok\":%s,\"error_code\":", ok ? "true" : "false");
    if (code >= 0)
        printf("%d}\n", code);
    else
        printf("null}\n");
    return ok ? 0 : 1;
}

/* Open, handshake and authenticate; with retry, until it works or the
 * give-up time passes. 0, or -1. */
static int connect_user(pconn_t *c, const ident_t *id, const char *address, int retry)
{
    for (int waited = 0;; waited += 20) {
        if (pconn_open(c) == 0) {
            int r = probe_auth(c, id->sk, address);
            if (r == 0)
                return 0;
            pconn_close(c);
            if (r > 0 && r != CODE(UNAVAILABLE) && r != CODE(RATE_LIMITED)) {
                printf("{\"event\":\"auth refused\",\"error_code\":%d}\n", r);
                return -1;
            }
        }
        if (!retry || waited >= RETRY_GIVE_UP_MS)
            return -1;
        probe_sleep_ms(20);
    }
}

typedef struct sender {
    long *unsent;      /* i values still to send, in order */
    size_t n_unsent, unsent_head;
    long pend_i[WINDOW_MAX];
    uint32_t pend_id[WINDOW_MAX];
    size_t n_pend;
} sender_t;

/* Put the in-flight i values back in front of the queue (they were sent
 * first, so they go first again). */
static void requeue_pending(sender_t *s)
{
    for (size_t k = s->n_pend; k > 0; k--)
        s->unsent[--s->unsent_head] = s->pend_i[k - 1];
    s->n_pend = 0;
}

static void pend_remove(sender_t *s, size_t k)
{
    memmove(s->pend_i + k, s->pend_i + k + 1, (s->n_pend - k - 1) * sizeof s->pend_i[0]);
    memmove(s->pend_id + k, s->pend_id + k + 1, (s->n_pend - k - 1) * sizeof s->pend_id[0]);
    s->n_pend--;
}

int probe_sendloop(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: kl-probe ... sendloop KEYFILE ADDRESS TO N [--window W] "
                        "[--size B] [--start I] [--retry] [--until-error]\n");
        return 2;
    }
    long n = atol(argv[3]), start = 0;
    size_t window = 1, size = 0;
    int retry = 0, until_error = 0;
    for (int k = 4; k < argc; k++) {
        if (strcmp(argv[k], "--retry") == 0)
            retry = 1;
        else if (strcmp(argv[k], "--until-error") == 0)
            until_error = 1;
        else if (k + 1 < argc && strcmp(argv[k], "--window") == 0)
            window = (size_t)atol(argv[++k]);
        else if (k + 1 < argc && strcmp(argv[k], "--size") == 0)
            size = (size_t)atol(argv[++k]);
        else if (k + 1 < argc && strcmp(argv[k], "--start") == 0)
            start = atol(argv[++k]);
        else
            return 2;
    }
    if (n <= 0 || n > 10000000 || window < 1 || window > WINDOW_MAX || size > BODY_MAX ||
        start < 0)
        return 2;
    ident_t id;
    if (key_load(argv[0], &id) != 0) {
        fprintf(stderr, "kl-probe: cannot read %s\n", argv[0]);
        return 1;
    }
    sender_t s = {0};
    /* Room in front for requeued values: at most one window at a time. */
    s.unsent = calloc((size_t)n + WINDOW_MAX, sizeof *s.unsent);
    if (s.unsent == NULL)
        return 1;
    s.unsent_head = WINDOW_MAX;
    s.n_unsent = WINDOW_MAX + (size_t)n;
    for (long k = 0; k < n; k++)
        s.unsent[WINDOW_MAX + k] = start + k;
    static uint8_t body[BODY_MAX + 32];
    long acked = 0, errors = 0, reconnects = 0, since_progress = 0;
    int rc = 0, connected = 0, stop = 0;
    pconn_t c = {.fd = -1};
    while (!stop && (s.unsent_head < s.n_unsent || s.n_pend > 0)) {
        if (!connected) {
            if (connect_user(&c, &id, argv[1], retry) != 0) {
                printf("{\"event\":\"gave up\",\"acked\":%ld}\n", acked);
                rc = 1;
                break;
            }
            connected = 1;
        }
        int broken = 0;
        while (s.n_pend < window && s.unsent_head < s.n_unsent) {
            long i = s.unsent[s.unsent_head++];
            size_t len = 0;
            make_body(i, body, size, &len);
            kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
            Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
            sd.to = argv[2];
            sd.body.data = body;
            sd.body.len = len;
            f.id = pconn_id(&c);
            f.body_case = BODY(SEND);
            f.send = &sd;
            s.pend_i[s.n_pend] = i;
            s.pend_id[s.n_pend++] = f.id;
            if (pconn_send(&c, &f) != 0) {
                broken = 1;
                break;
            }
        }
        kl_frame_t *rep = NULL;
        if (!broken && pconn_recv(&c, REPLY_TIMEOUT_MS, &rep) != 0)
            broken = 1;
        if (broken) {
            /* The relay went away (or the stream broke): whatever was in
             * flight is unacknowledged and is sent again. */
            kl_wire_free(rep);
            requeue_pending(&s);
            pconn_close(&c);
            connected = 0;
            reconnects++;
            printf("{\"event\":\"disconnected\",\"acked\":%ld}\n", acked);
            if (!retry) {
                rc = 1;
                break;
            }
            since_progress += 20;
            if (since_progress > RETRY_GIVE_UP_MS) {
                rc = 1;
                break;
            }
            probe_sleep_ms(20);
            continue;
        }
        size_t k = 0;
        while (k < s.n_pend && s.pend_id[k] != rep->id)
            k++;
        if (rep->id == 0 || k == s.n_pend) {
            kl_wire_free(rep); /* a push, or a reply to nothing we sent */
            continue;
        }
        long i = s.pend_i[k];
        pend_remove(&s, k);
        if (rep->body_case == BODY(SENT)) {
            printf("{\"i\":%ld,\"seq\":%llu}\n", i, (unsigned long long)rep->sent->seq);
            acked++;
            since_progress = 0;
        } else {
            int code = rep->body_case == BODY(ERROR) ? (int)rep->error->code : -1;
            int again = retry && (code == CODE(UNAVAILABLE) || code == CODE(RATE_LIMITED));
            printf("{\"i\":%ld,\"error_code\":%d,\"retrying\":%s}\n", i, code,
                   again ? "true" : "false");
            if (again) {
                s.unsent[--s.unsent_head] = i;
                since_progress += 20;
                if (since_progress > RETRY_GIVE_UP_MS) {
                    rc = 1;
                    stop = 1;
                }
                probe_sleep_ms(20);
            } else {
                errors++;
                if (until_error)
                    stop = 1;
            }
        }
        kl_wire_free(rep);
    }
    /* With --until-error, replies of sends still in flight are awaited so
     * that every acknowledged message is reported. */
    while (connected && s.n_pend > 0) {
        kl_frame_t *rep = NULL;
        if (pconn_recv(&c, REPLY_TIMEOUT_MS, &rep) != 0)
            break;
        for (size_t k = 0; k < s.n_pend; k++) {
            if (s.pend_id[k] != rep->id || rep->id == 0)
                continue;
            if (rep->body_case == BODY(SENT)) {
                printf("{\"i\":%ld,\"seq\":%llu}\n", s.pend_i[k],
                       (unsigned long long)rep->sent->seq);
                acked++;
            } else {
                printf("{\"i\":%ld,\"error_code\":%d,\"retrying\":false}\n", s.pend_i[k],
                       rep->body_case == BODY(ERROR) ? (int)rep->error->code : -1);
                errors++;
            }
            pend_remove(&s, k);
            break;
        }
        kl_wire_free(rep);
    }
    pconn_close(&c);
    kl_memzero(&id, sizeof id);
    free(s.unsent);
    printf("{\"done\":true,\"acked\":%ld,\"errors\":%ld,\"reconnects\":%ld}\n", acked, errors,
           reconnects);
    return rc;
}

static void wait_stdin_eof(void)
{
    char b[256];
    for (;;) {
        ssize_t r = read(0, b, sizeof b);
        if (r == 0 || (r < 0 && errno != EINTR))
            return;
    }
}

/* One pass over the inbox: fetch after 0 until nothing is left, printing
 * each entry when show is set. 0, an ErrorCode (> 0) when a fetch was
 * refused, or -1 when the connection failed. */
static int fetch_all(pconn_t *c, int show, uint64_t *last, long *count, long *pushed)
{
    *last = 0;
    *count = 0;
    for (;;) {
        kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
        Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
        fe.after = *last;
        f.id = pconn_id(c);
        f.body_case = BODY(FETCH);
        f.fetch = &fe;
        kl_frame_t *rep = NULL;
        if (pconn_send(c, &f) != 0 || probe_await(c, f.id, &rep, pushed) != 0)
            return -1;
        if (rep->body_case != BODY(DELIVER)) {
            int code = rep->body_case == BODY(ERROR) ? (int)rep->error->code : -1;
            printf("{\"event\":\"fetch refused\",\"error_code\":%d}\n", code);
            kl_wire_free(rep);
            return code > 0 ? code : -1;
        }
        const Kollega__Relay__V1__Deliver *d = rep->deliver;
        for (size_t k = 0; k < d->n_entries; k++) {
            const Kollega__Relay__V1__Entry *e = d->entries[k];
            long i = check_body(e->body.data, e->body.len);
            if (show)
                printf("{\"seq\":%llu,\"i\":%ld,\"len\":%zu,\"ok\":%s}\n",
                       (unsigned long long)e->seq, i, e->body.len, i >= 0 ? "true" : "false");
            if (e->seq > *last)
                *last = e->seq;
            (*count)++;
        }
        int done = d->n_entries == 0 && !d->more;
        kl_wire_free(rep);
        if (done)
            return 0;
    }
}

/* recv: with --rounds R the whole inbox is fetched R times on one
 * connection (entries printed in the last round only) and refused fetches
 * are counted rather than fatal; the ack follows a complete last round. */
int probe_recv(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: kl-probe ... recv KEYFILE ADDRESS [--no-ack] [--hold] "
                        "[--rounds R]\n");
        return 2;
    }
    int ack = 1, hold = 0;
    long rounds = 1;
    for (int k = 2; k < argc; k++) {
        if (strcmp(argv[k], "--no-ack") == 0)
            ack = 0;
        else if (strcmp(argv[k], "--hold") == 0)
            hold = 1;
        else if (k + 1 < argc && strcmp(argv[k], "--rounds") == 0)
            rounds = atol(argv[++k]);
        else
            return 2;
    }
    if (rounds < 1)
        return 2;
    ident_t id;
    pconn_t c;
    if (key_load(argv[0], &id) != 0 || connect_user(&c, &id, argv[1], 0) != 0) {
        printf("{\"done\":false,\"error\":\"cannot authenticate\"}\n");
        return 1;
    }
    kl_memzero(&id, sizeof id);
    printf("{\"event\":\"authed\"}\n");
    /* --hold: stop reading (the relay's pushes pile up) until the test
     * closes our stdin. */
    if (hold)
        wait_stdin_eof();
    uint64_t after = 0;
    long count = 0, pushed = 0, refused = 0;
    int r = 0, acked = 0;
    for (long round = 0; round < rounds; round++) {
        r = fetch_all(&c, round == rounds - 1, &after, &count, &pushed);
        if (r < 0)
            break;
        if (r > 0)
            refused++;
    }
    if (r == 0 && ack && after > 0) {
        kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
        Kollega__Relay__V1__Ack a = KOLLEGA__RELAY__V1__ACK__INIT;
        a.seq = after;
        f.id = pconn_id(&c);
        f.body_case = BODY(ACK);
        f.ack = &a;
        kl_frame_t *rep = NULL;
        if (pconn_send(&c, &f) == 0 && probe_await(&c, f.id, &rep, &pushed) == 0) {
            acked = rep->body_case == BODY(OK);
            if (rep->body_case == BODY(ERROR))
                printf("{\"event\":\"ack refused\",\"error_code\":%d}\n", (int)rep->error->code);
        }
        kl_wire_free(rep);
    }
    pconn_close(&c);
    printf("{\"done\":%s,\"n\":%ld,\"last\":%llu,\"pushed\":%ld,\"refused\":%ld,"
           "\"acked\":%s}\n", r == 0 ? "true" : "false", count, (unsigned long long)after,
           pushed, refused, acked ? "true" : "false");
    return r == 0 ? 0 : 1;
}

typedef struct flood {
    long sent, pongs, limited, other;
    int closed;
} flood_t;

/* Read one reply and count it: 0, or -1 when the connection is gone. */
static int flood_read(pconn_t *c, flood_t *fl, int timeout_ms)
{
    kl_frame_t *rep = NULL;
    int r = pconn_recv(c, timeout_ms, &rep);
    if (r == PR_TIMEOUT)
        return 0;
    if (r != 0) {
        fl->closed = 1;
        return -1;
    }
    if (rep->body_case == BODY(PONG))
        fl->pongs++;
    else if (rep->body_case == BODY(ERROR) && rep->error->code == CODE(RATE_LIMITED))
        fl->limited++;
    else
        fl->other++;
    kl_wire_free(rep);
    return 0;
}

static int send_ping(pconn_t *c, uint64_t nonce)
{
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Ping p = KOLLEGA__RELAY__V1__PING__INIT;
    p.nonce = nonce;
    f.id = pconn_id(c);
    f.body_case = BODY(PING);
    f.ping = &p;
    return pconn_send(c, &f);
}

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

/* Pings as fast as the relay takes them, until stdin closes; then wait for
 * every reply and for one more pong once the bucket has refilled. */
int probe_flood(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: kl-probe ... flood KEYFILE ADDRESS\n");
        return 2;
    }
    ident_t id;
    pconn_t c;
    if (key_load(argv[0], &id) != 0 || connect_user(&c, &id, argv[1], 0) != 0) {
        printf("{\"mode\":\"flood\",\"error\":\"cannot authenticate\"}\n");
        return 1;
    }
    kl_memzero(&id, sizeof id);
    flood_t fl = {0};
    int told = 0;
    while (!fl.closed && !probe_stdin_eof()) {
        for (int k = 0; k < 64 && fl.sent - (fl.pongs + fl.limited + fl.other) < 512; k++) {
            if (send_ping(&c, (uint64_t)fl.sent) != 0) {
                fl.closed = 1;
                break;
            }
            fl.sent++;
        }
        while (!fl.closed && readable(c.fd))
            if (flood_read(&c, &fl, REPLY_TIMEOUT_MS) != 0)
                break;
        if (fl.limited > 0 && !told) {
            printf("{\"event\":\"limited\"}\n");
            told = 1;
        }
        if (fl.sent - (fl.pongs + fl.limited + fl.other) >= 512)
            flood_read(&c, &fl, REPLY_TIMEOUT_MS);
    }
    while (!fl.closed && fl.pongs + fl.limited + fl.other < fl.sent) {
        long before = fl.pongs + fl.limited + fl.other;
        if (flood_read(&c, &fl, REPLY_TIMEOUT_MS) != 0 ||
            fl.pongs + fl.limited + fl.other == before)
            break;
    }
    long answered = fl.pongs + fl.limited + fl.other;
    int final_pong = 0;
    for (int tries = 0; tries < 200 && !fl.closed && !final_pong; tries++) {
        probe_sleep_ms(50);
        long pongs = fl.pongs;
        if (send_ping(&c, 1u << 30) != 0 || flood_read(&c, &fl, REPLY_TIMEOUT_MS) != 0)
            break;
        final_pong = fl.pongs > pongs;
    }
    pconn_close(&c);
    printf("{\"mode\":\"flood\",\"sent\":%ld,\"answered\":%ld,\"pongs\":%ld,"
           "\"rate_limited\":%ld,\"other\":%ld,\"closed\":%s,\"final_pong\":%s}\n",
           fl.sent, answered, fl.pongs, fl.limited, fl.other, fl.closed ? "true" : "false",
           final_pong ? "true" : "false");
    return 0;
}

int probe_key_load(const char *path, probe_ident_t *id)
{
    return key_load(path, id);
}

int probe_connect_user(pconn_t *c, const probe_ident_t *id, const char *address)
{
    return connect_user(c, id, address, 0);
}

int probe_call(pconn_t *c, kl_frame_t *f, kl_frame_t **rep)
{
    *rep = NULL;
    f->id = pconn_id(c);
    if (pconn_send(c, f) != 0)
        return -1;
    return probe_await(c, f->id, rep, NULL) == 0 ? 0 : -1;
}

static int seen_before(const uint32_t *ids, size_t n, uint32_t id)
{
    for (size_t k = 0; k < n; k++)
        if (ids[k] == id)
            return 1;
    return 0;
}

/* A hostile user trying to drain TARGET's one-time prekeys: N prekey
 * fetches, one after the other, as fast as the relay answers. Reports how
 * many distinct one-time prekey ids it got (what it cost the target). */
int probe_drain(int argc, char **argv)
{
    if (argc != 4 || atol(argv[3]) <= 0 || atol(argv[3]) > 100000) {
        fprintf(stderr, "usage: kl-probe ... drain KEYFILE ADDRESS TARGET N (N <= 100000)\n");
        return 2;
    }
    long n = atol(argv[3]), bundles = 0, without = 0, errors = 0, limited = 0;
    size_t distinct = 0;
    ident_t id;
    pconn_t c;
    uint32_t *ids = calloc((size_t)n, sizeof *ids);
    if (ids == NULL || key_load(argv[0], &id) != 0 || connect_user(&c, &id, argv[1], 0) != 0) {
        printf("{\"mode\":\"drain\",\"error\":\"cannot authenticate\"}\n");
        free(ids);
        return 1;
    }
    kl_memzero(&id, sizeof id);
    int closed = 0;
    for (long i = 0; i < n && !closed; i++) {
        kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
        Kollega__Relay__V1__PrekeyFetch pf = KOLLEGA__RELAY__V1__PREKEY_FETCH__INIT;
        kl_frame_t *rep = NULL;
        pf.address = argv[2];
        f.id = pconn_id(&c);
        f.body_case = BODY(PREKEY_FETCH);
        f.prekey_fetch = &pf;
        if (pconn_send(&c, &f) != 0 || probe_await(&c, f.id, &rep, NULL) != 0) {
            closed = 1;
            break;
        }
        if (rep->body_case == BODY(PREKEY_BUNDLE)) {
            bundles++;
            const Kollega__Relay__V1__OneTimePrekey *o = rep->prekey_bundle->one_time_prekey;
            if (o == NULL)
                without++;
            else if (!seen_before(ids, distinct, o->id))
                ids[distinct++] = o->id;
        } else if (rep->body_case == BODY(ERROR) &&
                   rep->error->code == CODE(RATE_LIMITED)) {
            limited++;
        } else {
            errors++;
        }
        kl_wire_free(rep);
    }
    pconn_close(&c);
    free(ids);
    printf("{\"mode\":\"drain\",\"fetches\":%ld,\"bundles\":%ld,\"opks\":%zu,"
           "\"without_opk\":%ld,\"rate_limited\":%ld,\"errors\":%ld,\"closed\":%s}\n",
           n, bundles, distinct, without, limited, errors, closed ? "true" : "false");
    return 0;
}
