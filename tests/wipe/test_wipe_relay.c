/* Secrets are wiped before free, on the relay's paths: its key file, a
 * registration through Noise, protobuf, dispatch and a storage job, and a
 * running server's connections. See wipe.c for how it checks. */
#include <arpa/inet.h>
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

#include "core/dispatch.h"
#include "jobs/jobs.h"
#include "cli/keyfile.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/frame.h"
#include "kollega/noise.h"
#include "kollega/wire.h"
#include "base/diag.h"
#include "net/server.h"
#include "storage/storage.h"
#include "wipe.h"

/* The detector must fire, or every other test proves nothing. */
static void test_detector_fires_on_plain_free(void **state)
{
    (void)state;
    assert_int_equal(wipe_self_test(), 2);
}

/* In-memory Noise NK between a client and the relay's key. */
static void transports(const uint8_t relay_sk[32], kl_noise_transport_t *ct,
                       kl_noise_transport_t *rt)
{
    uint8_t relay_pk[32], m1[128], m2[128], pl[16];
    size_t n1, n2, pn;
    kl_noise_hs_t *c = NULL, *r = NULL;
    assert_int_equal(kl_x_public(relay_sk, relay_pk), 0);
    kl_noise_config_t cc = {.pattern = KL_NOISE_NK, .initiator = 1, .rs = relay_pk,
                            .prologue = (const uint8_t *)KL_PROLOGUE_CLIENT,
                            .prologue_len = strlen(KL_PROLOGUE_CLIENT)};
    kl_noise_config_t rc = {.pattern = KL_NOISE_NK, .initiator = 0, .s = relay_sk,
                            .prologue = (const uint8_t *)KL_PROLOGUE_CLIENT,
                            .prologue_len = strlen(KL_PROLOGUE_CLIENT)};
    assert_int_equal(kl_noise_hs_new(&c, &cc), 0);
    assert_int_equal(kl_noise_hs_new(&r, &rc), 0);
    assert_int_equal(kl_noise_hs_write(c, NULL, 0, m1, sizeof m1, &n1), 0);
    assert_int_equal(kl_noise_hs_read(r, m1, n1, pl, sizeof pl, &pn), 0);
    assert_int_equal(kl_noise_hs_write(r, NULL, 0, m2, sizeof m2, &n2), 0);
    assert_int_equal(kl_noise_hs_read(c, m2, n2, pl, sizeof pl, &pn), 0);
    assert_int_equal(kl_noise_hs_split(c, ct), 0);
    assert_int_equal(kl_noise_hs_split(r, rt), 0);
    kl_noise_hs_free(c);
    kl_noise_hs_free(r);
}

/* The relay side of a registration: its key file, the register frame
 * (invite code) through Noise and protobuf, dispatch, the storage job and
 * its completion. */
static void test_relay_register_path(void **state)
{
    (void)state;
    char dir[64], keypath[128], dbpath[128];
    const char *code = "wipe-test-invite-code-QmFzZTY0dXJs";
    uint8_t pk[32], ipk[KL_ED_PK], isk[KL_ED_SK], *relay_sk = NULL;
    wipe_tmpdir(dir, sizeof dir, "relay");
    snprintf(keypath, sizeof keypath, "%s/relay.key", dir);
    snprintf(dbpath, sizeof dbpath, "%s/relay.db", dir);
    assert_int_equal(kl_keyfile_create(keypath, pk), 0);
    assert_int_equal(kl_sign_keypair(ipk, isk), 0);
    kl_storage_t *st = NULL;
    assert_int_equal(kl_storage_open(&st, dbpath, KL_STORAGE_CREATE), 0);
    assert_int_equal(kl_storage_invite_create(st, code, 1, 2000000000000ull, 1700000000000ull), 0);

    wipe_scenario_begin();
    wipe_secret_add("the invite code", code, strlen(code));
    wipe_secret_add("the user's signing key", isk, 32);
    assert_int_equal(kl_keyfile_load(keypath, &relay_sk, pk), 0);
    wipe_secret_add("the relay's private key", relay_sk, 32);
    kl_noise_transport_t ct, rt;
    transports(relay_sk, &ct, &rt);

    /* Client: a signed register frame, sealed. */
    uint8_t msg[256], sig[KL_SIG], *wire = NULL;
    size_t mlen = 0, wlen = 0;
    assert_int_equal(kl_wire_register_msg(ct.hh, "wipe", code, msg, sizeof msg, &mlen), 0);
    assert_int_equal(kl_sign(isk, msg, mlen, sig), 0);
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Register rg = KOLLEGA__RELAY__V1__REGISTER__INIT;
    rg.handle = "wipe";
    rg.invite_code = (char *)code;
    rg.identity_key.data = ipk;
    rg.identity_key.len = 32;
    rg.signature.data = sig;
    rg.signature.len = 64;
    f.id = 1;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_REGISTER;
    f.register_ = &rg;
    assert_int_equal(kl_wire_seal_alloc(&ct, &f, &wire, &wlen), 0);

    /* Relay: open, dispatch, run the job, complete, free everything. */
    kl_dispatch_cfg_t cfg = {.relay_name = "oslo.test", .max_body = 1000, .ttl_default_s = 60,
                             .ttl_max_s = 60, .quota = {10, 10000}, .rate = 10, .burst = 10};
    kl_client_state_t sess;
    kl_client_state_init(&sess, &cfg, 1700000000000ull);
    memcpy(sess.hh, rt.hh, sizeof sess.hh);
    kl_frame_t *in = NULL;
    assert_int_equal(kl_wire_open(&rt, wire + 2, wlen - 2, &in), 0);
    kl_dispatch_out_t out;
    assert_int_equal(kl_dispatch_frame(&cfg, &sess, in, 1700000000000ull, &out), 0);
    kl_wire_free(in);
    assert_non_null(out.job);
    kl_job_t *job = out.job;
    kl_dispatch_out_free(&out);
    assert_int_equal(kl_storage_batch_begin(st), 0);
    kl_job_run(job, st);
    assert_int_equal(job->result, 0);
    assert_int_equal(kl_storage_batch_commit(st), 0);
    kl_dispatch_complete(&cfg, &sess, job, &out);
    assert_true(out.has_reply && sess.authed);
    kl_dispatch_out_free(&out);
    kl_job_free(job);
    free(wire);
    kl_noise_transport_wipe(&ct);
    kl_noise_transport_wipe(&rt);
    kl_secure_free(relay_sk);
    assert_int_equal(wipe_scenario_end("relay register"), 0);

    kl_storage_close(st);
    kl_memzero(isk, sizeof isk);
    kl_memzero(msg, sizeof msg);
    unlink(keypath);
    wipe_rm_db(dir, "relay.db");
    rmdir(dir);
}

/* ---- the relay server over loopback ----------------------------------- */

static int io_all(int fd, uint8_t *p, size_t n, int out)
{
    while (n > 0) {
        ssize_t k = out ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static long recv_l1(int fd, uint8_t *buf)
{
    uint8_t h[2];
    if (io_all(fd, h, 2, 0))
        return -1;
    size_t n = ((size_t)h[0] << 8) | h[1];
    return io_all(fd, buf, n, 0) ? -1 : (long)n;
}

static void loop_main(void *arg)
{
    uv_run(arg, UV_RUN_DEFAULT);
}

static kl_frame_t *roundtrip(int fd, kl_noise_transport_t *t, kl_frame_t *f)
{
    static uint8_t buf[KL_FRAME_MAX + 2];
    size_t n = 0;
    assert_int_equal(kl_wire_seal(t, f, buf, sizeof buf, &n), 0);
    assert_int_equal(io_all(fd, buf, n, 1), 0);
    for (;;) {
        long got = recv_l1(fd, buf);
        assert_true(got > 0);
        kl_frame_t *r = NULL;
        assert_int_equal(kl_wire_open(t, buf, (size_t)got, &r), 0);
        if (r->id == f->id)
            return r;
        kl_wire_free(r); /* a push */
    }
}

/* The running relay: a connection's Noise transport keys live in its
 * connection struct, the relay key in the server; registration carries the
 * invite code through the framer, dispatch and the storage thread. Every
 * one of those blocks must be wiped when the connection and the server go
 * away. The client's transport keys are the relay's, mirrored. */
static void test_relay_server_path(void **state)
{
    (void)state;
    char dir[64], path[128], bound[80];
    const char *code = "wipe-server-invite-code-0123456789abcdef";
    uint8_t sk[32], pk[32], ipk[KL_ED_PK], isk[KL_ED_SK];
    kl_storage_t *st = NULL;
    wipe_tmpdir(dir, sizeof dir, "server");
    snprintf(path, sizeof path, "%s/relay.db", dir);
    assert_int_equal(kl_storage_open(&st, path, KL_STORAGE_CREATE), 0);
    uint64_t now = kl_server_wall_ms();
    assert_int_equal(kl_storage_invite_create(st, code, 1, now + 600000, now), 0);
    assert_int_equal(kl_sign_keypair(ipk, isk), 0);

    wipe_scenario_begin();
    wipe_secret_add("the invite code", code, strlen(code));
    kl_x_keypair(pk, sk);
    wipe_secret_add("the relay's private key", sk, 32);
    kl_server_cfg_t cfg;
    kl_server_cfg_defaults(&cfg);
    cfg.dispatch.relay_name = "oslo.test";
    cfg.static_sk = sk;
    uv_loop_t loop;
    kl_server_t *srv = NULL;
    uv_thread_t thread;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(kl_server_new(&srv, &loop, &cfg), 0);
    kl_memzero(sk, sizeof sk);
    assert_int_equal(kl_server_bind(srv, "127.0.0.1", 0, bound, sizeof bound), 0);
    assert_int_equal(kl_server_start(srv, st), 0);
    assert_int_equal(uv_thread_create(&thread, loop_main, &loop), 0);

    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(strrchr(bound, ':') + 1))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    kl_noise_hs_t *hs = NULL;
    kl_noise_config_t nc = {.pattern = KL_NOISE_NK, .initiator = 1, .rs = pk,
                            .prologue = (const uint8_t *)KL_PROLOGUE_CLIENT,
                            .prologue_len = strlen(KL_PROLOGUE_CLIENT)};
    uint8_t m[2 + 128], buf[256], pl[16], msg[256], sig[KL_SIG];
    size_t n = 0, pn = 0, mlen = 0;
    kl_noise_transport_t t;
    assert_int_equal(kl_noise_hs_new(&hs, &nc), 0);
    assert_int_equal(kl_noise_hs_write(hs, NULL, 0, m + 2, 128, &n), 0);
    kl_frame_header(n, m);
    assert_int_equal(io_all(fd, m, n + 2, 1), 0);
    long got = recv_l1(fd, buf);
    assert_true(got > 0);
    assert_int_equal(kl_noise_hs_read(hs, buf, (size_t)got, pl, sizeof pl, &pn), 0);
    assert_int_equal(kl_noise_hs_split(hs, &t), 0);
    kl_noise_hs_free(hs);
    wipe_secret_add("the session key client->relay", t.send.k, 32);
    wipe_secret_add("the session key relay->client", t.recv.k, 32);

    assert_int_equal(kl_wire_register_msg(t.hh, "wipe", code, msg, sizeof msg, &mlen), 0);
    assert_int_equal(kl_sign(isk, msg, mlen, sig), 0);
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Register rg = KOLLEGA__RELAY__V1__REGISTER__INIT;
    rg.handle = "wipe";
    rg.invite_code = (char *)code;
    rg.identity_key.data = ipk;
    rg.identity_key.len = 32;
    rg.signature.data = sig;
    rg.signature.len = 64;
    f.id = 1;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_REGISTER;
    f.register_ = &rg;
    kl_frame_t *r = roundtrip(fd, &t, &f);
    assert_int_equal(r->body_case, KOLLEGA__RELAY__V1__FRAME__BODY_OK);
    kl_wire_free(r);
    kl_frame_t s = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = "wipe@oslo.test";
    sd.body.data = (uint8_t *)"an opaque sealed body";
    sd.body.len = 21;
    s.id = 2;
    s.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_SEND;
    s.send = &sd;
    r = roundtrip(fd, &t, &s);
    assert_int_equal(r->body_case, KOLLEGA__RELAY__V1__FRAME__BODY_SENT);
    kl_wire_free(r);
    close(fd);
    kl_noise_transport_wipe(&t);

    kl_server_shutdown_async(srv);
    uv_thread_join(&thread);
    kl_server_free(srv);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(wipe_scenario_end("relay server"), 0);
    kl_memzero(isk, sizeof isk);
    wipe_rm_db(dir, "relay.db");
    rmdir(dir);
}

int main(void)
{
    if (kl_crypto_init() != 0)
        return 1;
    kl_diag_set_level(KL_DIAG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detector_fires_on_plain_free),
        cmocka_unit_test(test_relay_register_path),
        cmocka_unit_test(test_relay_server_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
