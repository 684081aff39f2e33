/* ERFA groups end to end over loopback (the relay's connection layer):
 * who gets a group push (every live connection of the members but the one
 * that sent it), and the announcement of group pushes dropped for
 * backpressure. The server loop runs in a thread on 127.0.0.1:0 with a
 * temporary database; the tests are blocking clients speaking Noise NK +
 * Frames. The helpers are those of test_relay_server.c. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/frame.h"
#include "kollega/noise.h"
#include "kollega/wire.h"
#include "kollega/group.h"
#include "log.h"
#include "server.h"
#include "storage.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x
#define INV "invite-code-for-the-group-test-0123456789ab"
#define GA "#erfa@oslo.test"

typedef struct relay {
    char dir[64];
    uv_loop_t loop;
    kl_server_t *srv;
    uv_thread_t thread;
    uint16_t port;
    uint8_t pk[32];
} relay_t;

typedef struct client {
    int fd;
    kl_noise_transport_t t;
    uint8_t ik_pk[32], ik_sk[64];
    uint32_t next_id;
} client_t;

static void loop_main(void *arg)
{
    relay_t *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
}

/* Override for the next relay_start (0 = default). */
static size_t opt_write_queue;

static relay_t *relay_start(uint32_t handshake_timeout_s)
{
    relay_t *r = calloc(1, sizeof *r);
    uint8_t sk[32];
    char path[128], bound[80];
    kl_storage_t *st = NULL;
    assert_non_null(r);
    assert_int_equal(kl_crypto_init(), 0);
    kl_log_set_level(KL_LOG_WARN); /* keep the test output readable */
    snprintf(r->dir, sizeof r->dir, "/tmp/kl-relay-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(path, sizeof path, "%s/relay.db", r->dir);
    assert_int_equal(kl_storage_open(&st, path, KL_STORAGE_CREATE), 0);
    uint64_t now = kl_server_wall_ms();
    assert_int_equal(kl_storage_invite_create(st, INV, 10, now + 600000, now), 0);
    kl_x_keypair(r->pk, sk);
    kl_server_cfg_t cfg;
    kl_server_cfg_defaults(&cfg);
    cfg.dispatch.relay_name = "oslo.test";
    cfg.dispatch.max_body = 1000;
    cfg.static_sk = sk;
    cfg.handshake_timeout_s = handshake_timeout_s;
    if (opt_write_queue)
        cfg.write_queue = opt_write_queue;
    opt_write_queue = 0;
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(kl_server_new(&r->srv, &r->loop, &cfg), 0);
    kl_memzero(sk, sizeof sk);
    assert_int_equal(kl_server_bind(r->srv, "127.0.0.1", 0, bound, sizeof bound), 0);
    const char *colon = strrchr(bound, ':');
    assert_non_null(colon);
    r->port = (uint16_t)atoi(colon + 1);
    assert_true(r->port > 0);
    assert_int_equal(kl_server_start(r->srv, st), 0);
    assert_int_equal(uv_thread_create(&r->thread, loop_main, r), 0);
    return r;
}

static void relay_stop(relay_t *r)
{
    kl_server_shutdown_async(r->srv);
    uv_thread_join(&r->thread);
    kl_server_free(r->srv);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    DIR *d = opendir(r->dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char p[400];
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", r->dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(r->dir);
    free(r);
}

static int recv_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One L1 frame; its length, or -1 on close/timeout. */
static long recv_l1(int fd, uint8_t *buf)
{
    uint8_t h[2];
    if (recv_all(fd, h, 2))
        return -1;
    size_t n = ((size_t)h[0] << 8) | h[1];
    if (recv_all(fd, buf, n))
        return -1;
    return (long)n;
}

static int raw_connect(relay_t *r)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(r->port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void client_connect(relay_t *r, client_t *c)
{
    memset(c, 0, sizeof *c);
    c->fd = raw_connect(r);
    kl_sign_keypair(c->ik_pk, c->ik_sk);
    kl_noise_hs_t *hs = NULL;
    kl_noise_config_t nc = {.pattern = KL_NOISE_NK, .initiator = 1, .rs = r->pk,
                            .prologue = (const uint8_t *)KL_PROLOGUE_CLIENT,
                            .prologue_len = strlen(KL_PROLOGUE_CLIENT)};
    uint8_t msg[2 + 256], pl[16], buf[256];
    size_t n, pn;
    assert_int_equal(kl_noise_hs_new(&hs, &nc), 0);
    assert_int_equal(kl_noise_hs_write(hs, NULL, 0, msg + 2, 256, &n), 0);
    kl_frame_header(n, msg);
    assert_int_equal(send_all(c->fd, msg, n + 2), 0);
    long got = recv_l1(c->fd, buf);
    assert_true(got > 0);
    assert_int_equal(kl_noise_hs_read(hs, buf, (size_t)got, pl, sizeof pl, &pn), 0);
    assert_int_equal(kl_noise_hs_split(hs, &c->t), 0);
    kl_noise_hs_free(hs);
    c->next_id = 1;
}

static void client_close(client_t *c)
{
    close(c->fd);
    kl_noise_transport_wipe(&c->t);
}

static uint32_t send_frame(client_t *c, kl_frame_t *f)
{
    uint8_t out[KL_FRAME_MAX + 2];
    size_t n;
    f->id = c->next_id++;
    assert_int_equal(kl_wire_seal(&c->t, f, out, sizeof out, &n), 0);
    assert_int_equal(send_all(c->fd, out, n), 0);
    return f->id;
}

/* Next frame from the relay, or NULL when the connection closed. */
static kl_frame_t *recv_frame(client_t *c)
{
    static uint8_t buf[KL_FRAME_MAX];
    long n = recv_l1(c->fd, buf);
    if (n < 0)
        return NULL;
    kl_frame_t *f = NULL;
    assert_int_equal(kl_wire_open(&c->t, buf, (size_t)n, &f), 0);
    return f;
}

static kl_frame_t *request(client_t *c, kl_frame_t *f)
{
    uint32_t id = send_frame(c, f);
    kl_frame_t *r = recv_frame(c);
    assert_non_null(r);
    assert_int_equal(r->id, id);
    return r;
}

static void expect_ok(kl_frame_t *r)
{
    if (r->body_case == BODY(ERROR))
        fail_msg("error %d: %s", r->error->code, r->error->message);
    assert_int_equal(r->body_case, BODY(OK));
    kl_wire_free(r);
}

static kl_frame_t *do_register(client_t *c, const char *handle, const char *code)
{
    uint8_t msg[256], sig[64];
    size_t n;
    assert_int_equal(kl_wire_register_msg(c->t.hh, handle, code, msg, sizeof msg, &n), 0);
    kl_sign(c->ik_sk, msg, n, sig);
    Kollega__Relay__V1__Register rg = KOLLEGA__RELAY__V1__REGISTER__INIT;
    rg.handle = (char *)handle;
    rg.invite_code = (char *)code;
    rg.identity_key.data = c->ik_pk;
    rg.identity_key.len = 32;
    rg.signature.data = sig;
    rg.signature.len = 64;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(REGISTER);
    f.register_ = &rg;
    return request(c, &f);
}

/* A group message under the sender's view g of the log. */
static kl_frame_t *do_send(client_t *c, const char *to, const kl_group_t *g,
                           const uint8_t *body, size_t len)
{
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = (char *)to;
    sd.group_index = kl_group_next_index(g);
    sd.body.data = (uint8_t *)body;
    sd.body.len = len;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(SEND);
    f.send = &sd;
    return request(c, &f);
}

/* Log in a second connection as c's user (handle on this relay). */
static void do_auth(relay_t *r, client_t *c2, const client_t *c, const char *handle)
{
    uint8_t msg[128], sig[64];
    size_t n;
    char addr[64];
    client_connect(r, c2);
    memcpy(c2->ik_pk, c->ik_pk, 32);
    memcpy(c2->ik_sk, c->ik_sk, 64);
    assert_int_equal(kl_wire_auth_msg(c2->t.hh, msg, sizeof msg, &n), 0);
    kl_sign(c2->ik_sk, msg, n, sig);
    snprintf(addr, sizeof addr, "%s@oslo.test", handle);
    Kollega__Relay__V1__Auth au = KOLLEGA__RELAY__V1__AUTH__INIT;
    au.address = addr;
    au.signature.data = sig;
    au.signature.len = 64;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(AUTH);
    f.auth = &au;
    expect_ok(request(c2, &f));
}

/* Build the next op of g by c (address handle@oslo.test), apply it to g,
 * submit it; the reply must accept it. */
static void group_op(client_t *c, const char *handle, kl_group_t *g, kl_group_opdesc_t d)
{
    uint8_t *op = NULL;
    size_t len = 0;
    char addr[64];
    snprintf(addr, sizeof addr, "%s@oslo.test", handle);
    assert_int_equal(kl_group_op_build(g, c->ik_sk, c->ik_pk, addr, 1, &d, &op, &len), 0);
    assert_int_equal(kl_group_apply(g, op, len, NULL, NULL), 0);
    Kollega__Relay__V1__GroupOp go = KOLLEGA__RELAY__V1__GROUP_OP__INIT;
    go.signed_op.data = op;
    go.signed_op.len = len;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(GROUP_OP);
    f.group_op = &go;
    kl_frame_t *rep = request(c, &f);
    if (rep->body_case == BODY(ERROR))
        fail_msg("group op refused: %s", rep->error->message);
    assert_int_equal(rep->body_case, BODY(GROUP_OP_ACCEPTED));
    assert_int_equal(rep->group_op_accepted->index, kl_group_next_index(g) - 1);
    kl_wire_free(rep);
    free(op);
}

/* A ping's pong must be the very next frame: nothing was pushed before. */
static void expect_nothing_pushed(client_t *c)
{
    Kollega__Relay__V1__Ping p = KOLLEGA__RELAY__V1__PING__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(PING);
    f.ping = &p;
    kl_frame_t *rep = request(c, &f);
    assert_int_equal(rep->body_case, BODY(PONG));
    kl_wire_free(rep);
}

static kl_frame_t *expect_push(client_t *c, int body_case)
{
    kl_frame_t *p = recv_frame(c);
    assert_non_null(p);
    assert_int_equal(p->id, 0);
    assert_int_equal(p->body_case, body_case);
    return p;
}

static kl_group_opdesc_t invite_of(const client_t *c, const char *handle)
{
    kl_group_opdesc_t d;
    memset(&d, 0, sizeof d);
    d.kind = KL_GOP_INVITE;
    memcpy(d.target, c->ik_pk, 32);
    d.has_target = 1;
    snprintf(d.target_address, sizeof d.target_address, "%s@oslo.test", handle);
    return d;
}

static void test_group_pushes(void **state)
{
    (void)state;
    relay_t *r = relay_start(10);
    client_t a1, a2, b, c;
    kl_group_t *g = NULL;
    kl_group_opdesc_t d;
    client_connect(r, &a1);
    client_connect(r, &b);
    client_connect(r, &c);
    expect_ok(do_register(&a1, "alice", INV));
    expect_ok(do_register(&b, "bob", INV));
    expect_ok(do_register(&c, "carol", INV));
    do_auth(r, &a2, &a1, "alice");
    assert_int_equal(kl_group_new(&g, GA), 0);

    /* create: alice's other connection hears of it, the creating one not. */
    memset(&d, 0, sizeof d);
    d.kind = KL_GOP_CREATE;
    d.policy = KL_POLICY_FACILITATORS;
    group_op(&a1, "alice", g, d);
    kl_frame_t *p = expect_push(&a2, BODY(GROUP_LOG));
    assert_string_equal(p->group_log->group, GA);
    assert_int_equal(p->group_log->from_index, 0);
    assert_int_equal(p->group_log->n_ops, 1);
    assert_int_equal(p->group_log->next_index, 1);
    kl_wire_free(p);
    expect_nothing_pushed(&a1);

    /* invite bob: the candidate-now-member is told, and alice's other
     * connection; carol is not. */
    group_op(&a1, "alice", g, invite_of(&b, "bob"));
    p = expect_push(&b, BODY(GROUP_LOG));
    assert_int_equal(p->group_log->from_index, 1);
    kl_wire_free(p);
    kl_wire_free(expect_push(&a2, BODY(GROUP_LOG)));

    /* a message: to every member's connections but the sending one. */
    kl_frame_t *rep = do_send(&a1, GA, g, (const uint8_t *)"group hello", 11);
    assert_int_equal(rep->body_case, BODY(SENT));
    assert_int_equal(rep->sent->seq, 1);
    kl_wire_free(rep);
    client_t *members[] = {&a2, &b};
    for (int i = 0; i < 2; i++) {
        p = expect_push(members[i], BODY(DELIVER));
        assert_string_equal(p->deliver->group, GA);
        assert_int_equal(p->deliver->n_entries, 1);
        assert_int_equal(p->deliver->entries[0]->seq, 1);
        assert_memory_equal(p->deliver->entries[0]->body.data, "group hello", 11);
        kl_wire_free(p);
    }
    expect_nothing_pushed(&a1);
    expect_nothing_pushed(&c);
    /* carol may not post. */
    rep = do_send(&c, GA, g, (const uint8_t *)"x", 1);
    assert_int_equal(rep->body_case, BODY(ERROR));
    assert_int_equal(rep->error->code, CODE(FORBIDDEN));
    kl_wire_free(rep);
    expect_nothing_pushed(&b);

    kl_group_free(g);
    client_close(&a1);
    client_close(&a2);
    client_close(&b);
    client_close(&c);
    relay_stop(r);
}

/* With a write queue of one byte nearly every push to bob is dropped; once
 * his queue drains he gets deliver{group, more} and fetches all. */
static void test_group_missed_pushes_announced(void **state)
{
    (void)state;
    enum { N = 20 };
    opt_write_queue = 1;
    relay_t *r = relay_start(10);
    client_t a, b;
    kl_group_t *g = NULL;
    kl_group_opdesc_t d;
    client_connect(r, &a);
    client_connect(r, &b);
    expect_ok(do_register(&a, "alice", INV));
    expect_ok(do_register(&b, "bob", INV));
    assert_int_equal(kl_group_new(&g, GA), 0);
    memset(&d, 0, sizeof d);
    d.kind = KL_GOP_CREATE;
    d.policy = KL_POLICY_FACILITATORS;
    group_op(&a, "alice", g, d);
    group_op(&a, "alice", g, invite_of(&b, "bob"));
    kl_wire_free(expect_push(&b, BODY(GROUP_LOG)));

    static uint8_t all[N * 128];
    size_t total = 0;
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = GA;
    sd.body.data = (uint8_t *)"0123456789";
    sd.body.len = 10;
    sd.group_index = kl_group_next_index(g);
    for (int i = 0; i < N; i++) {
        kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
        f.body_case = BODY(SEND);
        f.send = &sd;
        f.id = 100 + (uint32_t)i;
        size_t n;
        assert_int_equal(kl_wire_seal(&a.t, &f, all + total, sizeof all - total, &n), 0);
        total += n;
    }
    assert_int_equal(send_all(a.fd, all, total), 0);
    for (int i = 0; i < N; i++) {
        kl_frame_t *rep = recv_frame(&a);
        assert_non_null(rep);
        assert_int_equal(rep->body_case, BODY(SENT));
        kl_wire_free(rep);
    }
    int pushed = 0, announced = 0;
    while (pushed + announced == 0 || (pushed < N && !announced)) {
        kl_frame_t *p = expect_push(&b, BODY(DELIVER));
        assert_string_equal(p->deliver->group, GA);
        pushed += (int)p->deliver->n_entries;
        if (p->deliver->n_entries == 0) {
            assert_true(p->deliver->more);
            announced = 1;
        }
        kl_wire_free(p);
    }
    print_message("pushed %d group entries, more-announcement %s\n", pushed,
                  announced ? "yes" : "no");
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    fe.group = GA;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(FETCH);
    f.fetch = &fe;
    uint32_t id = send_frame(&b, &f);
    kl_frame_t *rep;
    while ((rep = recv_frame(&b)) != NULL && rep->id == 0)
        kl_wire_free(rep);
    assert_non_null(rep);
    assert_int_equal(rep->id, id);
    assert_int_equal(rep->body_case, BODY(DELIVER));
    assert_string_equal(rep->deliver->group, GA);
    assert_int_equal(rep->deliver->n_entries, N);
    kl_wire_free(rep);
    kl_group_free(g);
    client_close(&a);
    client_close(&b);
    relay_stop(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_pushes),
        cmocka_unit_test(test_group_missed_pushes_announced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
