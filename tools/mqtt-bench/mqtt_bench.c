/* mqtt-bench: the kollega-bench `direct` workload over MQTT QoS 1 with
 * libmosquitto, for tools/compare-mosquitto.sh. P publisher->subscriber
 * pairs: subscriber k is subscribed (QoS 1) to its own topic, publisher k
 * keeps W QoS 1 publishes in flight (publish -> PUBACK) until N messages in
 * all are acknowledged, bodies of B bytes. Latencies: publish -> PUBACK and
 * publish -> delivery, from a send timestamp in the first body bytes (the
 * same 20-byte header as kollega-bench). Output: the same human lines and
 * JSON keys as kollega-bench.
 *
 * All 2P clients run on one thread: one poll() over their sockets with
 * libmosquitto's external-loop calls (loop_read / loop_write / loop_misc),
 * not one thread per connection. */
#include <errno.h>
#include <mosquitto.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "hist.h"
#include "report.h"

#define BODY_HDR 20
#define MIDS 65536

typedef struct pair pair_t;

typedef struct client {
    pair_t *p;
    int is_sub;
    struct mosquitto *m;
    int connected, subscribed, dead;
} client_t;

struct pair {
    uint32_t index;
    client_t pub, sub;
    char topic[64];
    uint8_t *body;
    uint64_t target, issued, ok, delivered;
    uint64_t *sent_at;       /* by mid */
    uint8_t *seen;           /* bitmap by counter */
};

static struct {
    uint64_t pairs, window, body, messages;
    double timeout;
    pid_t broker_pid;
    int json, quiet, port;
    const char *host;
    pair_t *pairs_arr;
    kb_hist_t ack, delivery;
    kb_result_t res;
    uint64_t total_ok, total_delivered, connected, subscribed;
} B;

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
    if (B.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("mqtt-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void publish_more(pair_t *p)
{
    while (p->issued < p->target && p->issued - p->ok < B.window && !p->pub.dead) {
        uint64_t t = kb_now_ns(), counter = p->issued;
        int mid = 0;
        memcpy(p->body, &t, 8);
        memcpy(p->body + 8, &p->index, 4);
        memcpy(p->body + 12, &counter, 8);
        int r = mosquitto_publish(p->pub.m, &mid, p->topic, (int)B.body, p->body, 1, false);
        if (r != MOSQ_ERR_SUCCESS) {
            kb_result_error(&B.res, KB_ERR_CLOSED);
            p->pub.dead = 1;
            return;
        }
        p->sent_at[mid & (MIDS - 1)] = t;
        p->issued++;
    }
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    client_t *c = obj;
    if (rc != 0) {
        kb_result_error(&B.res, KB_ERR_CONNECT);
        c->dead = 1;
        return;
    }
    c->connected = 1;
    B.connected++;
    if (c->is_sub && mosquitto_subscribe(m, NULL, c->p->topic, 1) != MOSQ_ERR_SUCCESS) {
        kb_result_error(&B.res, KB_ERR_CONNECT);
        c->dead = 1;
    }
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *qos)
{
    client_t *c = obj;
    (void)m;
    (void)mid;
    if (n != 1 || qos[0] != 1) {
        kb_result_error(&B.res, KB_ERR_PROTOCOL);
        c->dead = 1;
        return;
    }
    c->subscribed = 1;
    B.subscribed++;
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    client_t *c = obj;
    pair_t *p = c->p;
    (void)m;
    kb_hist_record(&B.ack, kb_now_ns() - p->sent_at[mid & (MIDS - 1)]);
    p->ok++;
    B.total_ok++;
    publish_more(p);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    client_t *c = obj;
    pair_t *p = c->p;
    uint64_t t, counter, now = kb_now_ns();
    uint32_t idx;
    (void)m;
    if (msg->payloadlen != (int)B.body) {
        kb_result_error(&B.res, KB_ERR_PROTOCOL);
        return;
    }
    memcpy(&t, msg->payload, 8);
    memcpy(&idx, (const uint8_t *)msg->payload + 8, 4);
    memcpy(&counter, (const uint8_t *)msg->payload + 12, 8);
    if (idx != p->index || counter >= p->target) {
        kb_result_error(&B.res, KB_ERR_PROTOCOL);
        return;
    }
    if (p->seen[counter / 8] & (1u << (counter % 8))) {
        B.res.duplicates++;
        return;
    }
    p->seen[counter / 8] |= (uint8_t)(1u << (counter % 8));
    kb_hist_record(&B.delivery, now > t ? now - t : 0);
    p->delivered++;
    B.total_delivered++;
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    client_t *c = obj;
    (void)m;
    if (rc != 0 && !c->dead) {
        kb_result_error(&B.res, KB_ERR_CLOSED);
        c->dead = 1;
    }
}

static int done(void)
{
    for (uint64_t i = 0; i < B.pairs; i++) {
        const pair_t *p = &B.pairs_arr[i];
        if (p->pub.dead || p->sub.dead)
            continue;
        if (p->ok < p->target || p->delivered < p->ok)
            return 0;
    }
    return 1;
}

/* One round of the external loop over every client: wait (up to
 * timeout_ms) for any socket, then read, write and housekeeping. */
static void loop_once(struct pollfd *fds, client_t **cl, size_t n, int timeout_ms)
{
    for (size_t i = 0; i < n; i++) {
        fds[i].fd = cl[i]->dead ? -1 : mosquitto_socket(cl[i]->m);
        fds[i].events = POLLIN | (mosquitto_want_write(cl[i]->m) ? POLLOUT : 0);
        fds[i].revents = 0;
    }
    if (poll(fds, n, timeout_ms) < 0 && errno != EINTR)
        return;
    for (size_t i = 0; i < n; i++) {
        client_t *c = cl[i];
        if (c->dead || fds[i].fd < 0)
            continue;
        int r = MOSQ_ERR_SUCCESS, avail = 0;
        /* loop_read reads as many packets as the client has QoS messages
         * queued, which for a subscriber is one: read on while the socket
         * holds more, or each sweep would take one packet per client. */
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
            int rounds = 0;
            do {
                r = mosquitto_loop_read(c->m, 1000);
            } while (r == MOSQ_ERR_SUCCESS && ++rounds < 256 && !c->dead &&
                     ioctl(fds[i].fd, FIONREAD, &avail) == 0 && avail > 0);
        }
        if (r == MOSQ_ERR_SUCCESS && mosquitto_want_write(c->m))
            r = mosquitto_loop_write(c->m, 1000);
        if (r != MOSQ_ERR_SUCCESS && !c->dead) {
            kb_result_error(&B.res, KB_ERR_CLOSED);
            c->dead = 1;
        }
    }
}

static void misc_all(client_t **cl, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!cl[i]->dead)
            mosquitto_loop_misc(cl[i]->m);
}

static int setup_client(client_t *c, pair_t *p, int is_sub)
{
    char id[64];
    snprintf(id, sizeof id, "kb%c%u-%ld", is_sub ? 's' : 'p', p->index, (long)getpid());
    c->p = p;
    c->is_sub = is_sub;
    c->m = mosquitto_new(id, true, c);
    if (c->m == NULL)
        return -1;
    mosquitto_connect_callback_set(c->m, on_connect);
    mosquitto_disconnect_callback_set(c->m, on_disconnect);
    if (is_sub) {
        mosquitto_subscribe_callback_set(c->m, on_subscribe);
        mosquitto_message_callback_set(c->m, on_message);
    } else {
        mosquitto_publish_callback_set(c->m, on_publish);
    }
    /* The window is ours; let libmosquitto never hold publishes back. No
     * Nagle: kollega-bench and the relay set TCP_NODELAY too, and Nagle
     * with delayed ACKs would stall small packets for tens of ms. */
    mosquitto_int_option(c->m, MOSQ_OPT_SEND_MAXIMUM, 65535);
    mosquitto_int_option(c->m, MOSQ_OPT_RECEIVE_MAXIMUM, 65535);
    mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
    if (mosquitto_connect(c->m, B.host, B.port, 60) != MOSQ_ERR_SUCCESS) {
        kb_result_error(&B.res, KB_ERR_CONNECT);
        c->dead = 1;
        return -1;
    }
    return 0;
}

static void usage(FILE *out)
{
    fputs("usage: mqtt-bench --port PORT [--host H] [-P pairs] [-W window] [-B body]\n"
          "                  [-N messages] [--broker-pid PID] [--timeout S] [--json] [--quiet]\n"
          "Defaults: host 127.0.0.1, 100 pairs, window 16, body 256, 200000 messages.\n", out);
}

static int num(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse(int argc, char **argv)
{
    B.host = "127.0.0.1";
    B.pairs = 100;
    B.window = 16;
    B.body = 256;
    B.messages = 200000;
    B.timeout = 120;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x = 0;
        if (strcmp(a, "--json") == 0) {
            B.json = 1;
            continue;
        }
        if (strcmp(a, "--quiet") == 0) {
            B.quiet = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (v == NULL)
            goto bad;
        i++;
        if (strcmp(a, "--host") == 0)
            B.host = v;
        else if (strcmp(a, "--port") == 0 && num(v, 1, 65535, &x) == 0)
            B.port = (int)x;
        else if ((strcmp(a, "-P") == 0 || strcmp(a, "--pairs") == 0) && num(v, 1, 100000, &x) == 0)
            B.pairs = x;
        else if ((strcmp(a, "-W") == 0 || strcmp(a, "--window") == 0) &&
                 num(v, 1, 65535, &x) == 0)
            B.window = x;
        else if ((strcmp(a, "-B") == 0 || strcmp(a, "--body") == 0) &&
                 num(v, BODY_HDR, 65000, &x) == 0)
            B.body = x;
        else if ((strcmp(a, "-N") == 0 || strcmp(a, "--messages") == 0) &&
                 num(v, 1, 1000000000, &x) == 0)
            B.messages = x;
        else if ((strcmp(a, "--broker-pid") == 0 || strcmp(a, "--relay-pid") == 0) &&
                 num(v, 1, 1u << 30, &x) == 0)
            B.broker_pid = (pid_t)x;
        else if (strcmp(a, "--timeout") == 0 && num(v, 1, 86400, &x) == 0)
            B.timeout = (double)x;
        else
            goto bad;
    }
    if (B.port == 0 || B.messages < B.pairs)
        goto bad;
    return 0;
bad:
    usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    int rc = parse(argc, argv);
    if (rc)
        return rc;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    mosquitto_lib_init();
    kb_result_init(&B.res, "mqtt-bench", "direct");
    B.res.pairs = B.pairs;
    B.res.window = B.window;
    B.res.body = B.body;
    B.res.messages = B.messages;
    kb_hist_init(&B.ack);
    kb_hist_init(&B.delivery);
    size_t n = 2 * B.pairs;
    B.pairs_arr = calloc(B.pairs, sizeof *B.pairs_arr);
    client_t **cl = calloc(n, sizeof *cl);
    struct pollfd *fds = calloc(n, sizeof *fds);
    if (B.pairs_arr == NULL || cl == NULL || fds == NULL)
        return 1;
    rc = 1;
    for (uint64_t i = 0; i < B.pairs; i++) {
        pair_t *p = &B.pairs_arr[i];
        p->index = (uint32_t)i;
        p->target = B.messages / B.pairs + (i < B.messages % B.pairs ? 1 : 0);
        snprintf(p->topic, sizeof p->topic, "kb/%ld/%u", (long)getpid(), p->index);
        p->body = malloc(B.body);
        p->sent_at = calloc(MIDS, sizeof *p->sent_at);
        p->seen = calloc(p->target / 8 + 1, 1);
        if (!p->body || !p->sent_at || !p->seen)
            goto out;
        for (uint64_t k = 0; k < B.body; k++)
            p->body[k] = (uint8_t)rand();
        cl[2 * i] = &p->sub;
        cl[2 * i + 1] = &p->pub;
        if (setup_client(&p->sub, p, 1) != 0 || setup_client(&p->pub, p, 0) != 0) {
            fprintf(stderr, "mqtt-bench: cannot connect to %s:%d\n", B.host, B.port);
            goto out;
        }
    }
    /* Everyone connected and every subscription granted before the clock
     * starts. */
    uint64_t t_setup = kb_now_ns();
    while (B.connected < n || B.subscribed < B.pairs) {
        loop_once(fds, cl, n, 10);
        if (B.res.errors || kb_now_ns() - t_setup > (uint64_t)(B.timeout * 1e9)) {
            fprintf(stderr, "mqtt-bench: setup failed (%llu/%zu connected, %llu/%llu "
                            "subscribed)\n", (unsigned long long)B.connected, n,
                    (unsigned long long)B.subscribed, (unsigned long long)B.pairs);
            goto out;
        }
    }
    double self0 = kb_self_cpu_s(), broker0 = B.broker_pid ? kb_proc_cpu_s(B.broker_pid) : 0;
    uint64_t t0 = kb_now_ns(), last_misc = t0, last_progress = t0;
    uint64_t deadline = t0 + (uint64_t)(B.timeout * 1e9);
    for (uint64_t i = 0; i < B.pairs; i++)
        publish_more(&B.pairs_arr[i]);
    while (!done()) {
        loop_once(fds, cl, n, 10);
        uint64_t now = kb_now_ns();
        if (now - last_misc > 100000000ull) {
            misc_all(cl, n);
            last_misc = now;
        }
        if (now - last_progress > 2000000000ull) {
            progress("%llu/%llu acknowledged, %llu delivered, %.0f msg/s",
                     (unsigned long long)B.total_ok, (unsigned long long)B.messages,
                     (unsigned long long)B.total_delivered,
                     (double)B.total_ok / ((double)(now - t0) / 1e9));
            last_progress = now;
        }
        if (now > deadline) {
            progress("deadline reached, giving up on what is outstanding");
            break;
        }
    }
    kb_result_t *r = &B.res;
    r->elapsed_s = (double)(kb_now_ns() - t0) / 1e9;
    r->bench_cpu_pct = (kb_self_cpu_s() - self0) / r->elapsed_s * 100;
    if (B.broker_pid) {
        r->server_pid = B.broker_pid;
        r->server_cpu_pct = (kb_proc_cpu_s(B.broker_pid) - broker0) / r->elapsed_s * 100;
        kb_proc_rss(B.broker_pid, &r->rss_kb, &r->rss_peak_kb);
    }
    for (uint64_t i = 0; i < B.pairs; i++) {
        const pair_t *p = &B.pairs_arr[i];
        for (uint64_t k = p->ok; k < p->target; k++)
            kb_result_error(r, p->pub.dead ? KB_ERR_CLOSED : KB_ERR_UNANSWERED);
        for (uint64_t k = p->delivered; k < p->ok; k++)
            kb_result_error(r, KB_ERR_MISSING);
    }
    r->sent_ok = B.total_ok;
    r->delivered = B.total_delivered;
    r->throughput = (double)B.total_ok / r->elapsed_s;
    r->ack = &B.ack;
    r->delivery = &B.delivery;
    if (B.json)
        kb_report_json(stdout, r);
    else
        kb_report_human(stdout, r);
    rc = r->errors ? 1 : 0;
out:
    for (size_t i = 0; i < n; i++) {
        if (cl[i] && cl[i]->m) {
            if (cl[i]->connected && !cl[i]->dead)
                mosquitto_disconnect(cl[i]->m);
            mosquitto_destroy(cl[i]->m);
        }
    }
    for (uint64_t i = 0; i < B.pairs; i++) {
        free(B.pairs_arr[i].body);
        free(B.pairs_arr[i].sent_at);
        free(B.pairs_arr[i].seen);
    }
    free(B.pairs_arr);
    free(cl);
    free(fds);
    mosquitto_lib_cleanup();
    return rc;
}
