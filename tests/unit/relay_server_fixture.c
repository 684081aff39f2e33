/* The relay server fixture (relay_server_fixture.h). */
#include "relay_server_fixture.h"

static void loop_main(void *arg)
{
    relay_t *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
}

uint32_t opt_max_conns, opt_idle_s, opt_opk_per_pair;

size_t opt_write_queue;

relay_t *relay_start(uint32_t handshake_timeout_s, const char *const *invites,
                     uint32_t uses)
{
    relay_t *r = calloc(1, sizeof *r);
    uint8_t sk[32];
    char path[128], bound[80];
    kl_storage_t *st = NULL;
    assert_non_null(r);
    assert_int_equal(kl_crypto_init(), 0);
    kl_diag_set_level(KL_DIAG_WARN); /* keep the test output readable */
    snprintf(r->dir, sizeof r->dir, "/tmp/kl-relay-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(path, sizeof path, "%s/relay.db", r->dir);
    assert_int_equal(kl_storage_open(&st, path, KL_STORAGE_CREATE), 0);
    uint64_t now = kl_server_wall_ms();
    for (size_t i = 0; invites[i] != NULL; i++)
        assert_int_equal(kl_storage_invite_create(st, invites[i], uses, now + 600000, now), 0);
    kl_x_keypair(r->pk, sk);
    kl_server_cfg_t cfg;
    kl_server_cfg_defaults(&cfg);
    cfg.dispatch.relay_name = "oslo.test";
    cfg.dispatch.max_body = 1000;
    cfg.static_sk = sk;
    cfg.handshake_timeout_s = handshake_timeout_s;
    if (opt_max_conns)
        cfg.max_connections = opt_max_conns;
    if (opt_idle_s)
        cfg.idle_timeout_s = opt_idle_s;
    if (opt_write_queue)
        cfg.write_queue = opt_write_queue;
    if (opt_opk_per_pair)
        cfg.opk.per_pair = opt_opk_per_pair;
    opt_max_conns = opt_idle_s = opt_opk_per_pair = 0;
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

void relay_stop(relay_t *r)
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

int send_all(int fd, const uint8_t *p, size_t n)
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

int raw_connect(relay_t *r)
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

void client_connect(relay_t *r, client_t *c)
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

void client_close(client_t *c)
{
    close(c->fd);
    kl_noise_transport_wipe(&c->t);
}

/* Seal and send f under the next request id of c; returns that id. */
static uint32_t send_frame(client_t *c, kl_frame_t *f)
{
    uint8_t out[KL_FRAME_MAX + 2];
    size_t n;
    f->id = c->next_id++;
    assert_int_equal(kl_wire_seal(&c->t, f, out, sizeof out, &n), 0);
    assert_int_equal(send_all(c->fd, out, n), 0);
    return f->id;
}

kl_frame_t *recv_frame(client_t *c)
{
    static uint8_t buf[KL_FRAME_MAX];
    long n = recv_l1(c->fd, buf);
    if (n < 0)
        return NULL;
    kl_frame_t *f = NULL;
    assert_int_equal(kl_wire_open(&c->t, buf, (size_t)n, &f), 0);
    return f;
}

kl_frame_t *request(client_t *c, kl_frame_t *f)
{
    uint32_t id = send_frame(c, f);
    kl_frame_t *r = recv_frame(c);
    assert_non_null(r);
    assert_int_equal(r->id, id);
    return r;
}

void expect_ok(kl_frame_t *r)
{
    if (r->body_case == BODY(ERROR))
        fail_msg("error %d: %s", r->error->code, r->error->message);
    assert_int_equal(r->body_case, BODY(OK));
    kl_wire_free(r);
}

void expect_error(kl_frame_t *r, int code)
{
    assert_int_equal(r->body_case, BODY(ERROR));
    assert_int_equal(r->error->code, code);
    kl_wire_free(r);
}

kl_frame_t *do_register(client_t *c, const char *handle, const char *code)
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

void do_auth(relay_t *r, client_t *c2, const client_t *c, const char *handle)
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

void expect_nothing_pushed(client_t *c)
{
    Kollega__Relay__V1__Ping p = KOLLEGA__RELAY__V1__PING__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(PING);
    f.ping = &p;
    kl_frame_t *rep = request(c, &f);
    assert_int_equal(rep->body_case, BODY(PONG));
    kl_wire_free(rep);
}

kl_frame_t *expect_push(client_t *c, int body_case)
{
    kl_frame_t *p = recv_frame(c);
    assert_non_null(p);
    assert_int_equal(p->id, 0);
    assert_int_equal(p->body_case, body_case);
    return p;
}

void expect_replies(client_t *c, int n, int body_case)
{
    for (int i = 0; i < n; i++) {
        kl_frame_t *rep = recv_frame(c);
        assert_non_null(rep);
        assert_int_equal(rep->body_case, body_case);
        kl_wire_free(rep);
    }
}

int read_pushes(client_t *c, int n, void (*check)(const kl_frame_t *p),
                int *announced)
{
    int pushed = 0;
    *announced = 0;
    while (pushed + *announced == 0 || (pushed < n && !*announced)) {
        kl_frame_t *p = expect_push(c, BODY(DELIVER));
        if (check)
            check(p);
        pushed += (int)p->deliver->n_entries;
        if (p->deliver->n_entries == 0) {
            assert_true(p->deliver->more);
            *announced = 1;
        }
        kl_wire_free(p);
    }
    return pushed;
}

kl_frame_t *fetch_past_pushes(client_t *c, Kollega__Relay__V1__Fetch *fe)
{
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(FETCH);
    f.fetch = fe;
    uint32_t id = send_frame(c, &f);
    kl_frame_t *rep;
    while ((rep = recv_frame(c)) != NULL && rep->id == 0)
        kl_wire_free(rep);
    assert_non_null(rep);
    assert_int_equal(rep->id, id);
    return rep;
}
