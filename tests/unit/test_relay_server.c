/* The relay end to end over loopback: the server loop runs in a thread on
 * 127.0.0.1:0 with a temporary database; the tests are blocking clients
 * speaking Noise NK + Frames through noise.h and wire.h (the fixture is
 * relay_server_fixture.h). */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "kollega/x3dh.h"
#include "relay_server_fixture.h"

#define INV_A "invite-code-for-alice-0123456789abcdefghijk"
#define INV_B "invite-code-for-bob-0123456789abcdefghijklm"

/* The invite codes of alice and bob, one registration each. */
static const char *const INVITES[] = {INV_A, INV_B, NULL};

static kl_frame_t *do_send(client_t *c, const char *to, const uint8_t *body, size_t len)
{
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = (char *)to;
    sd.body.data = (uint8_t *)body;
    sd.body.len = len;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(SEND);
    f.send = &sd;
    return request(c, &f);
}

static kl_frame_t *do_fetch(client_t *c, uint64_t after)
{
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    fe.after = after;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(FETCH);
    f.fetch = &fe;
    return request(c, &f);
}

static void test_register_send_push_fetch_ack(void **state)
{
    (void)state;
    relay_t *r = relay_start(10, INVITES, 1);
    client_t a, b;
    client_connect(r, &a);
    client_connect(r, &b);
    expect_ok(do_register(&a, "alice", INV_A));
    expect_ok(do_register(&b, "bob", INV_B));

    kl_frame_t *rep = do_send(&a, "bob@oslo.test", (const uint8_t *)"sealed-1", 8);
    assert_int_equal(rep->body_case, BODY(SENT));
    assert_int_equal(rep->sent->seq, 1);
    kl_wire_free(rep);
    /* bob is online: a push, id 0, with the entry */
    kl_frame_t *push = recv_frame(&b);
    assert_non_null(push);
    assert_int_equal(push->id, 0);
    assert_int_equal(push->body_case, BODY(DELIVER));
    assert_int_equal(push->deliver->n_entries, 1);
    assert_int_equal(push->deliver->entries[0]->seq, 1);
    assert_memory_equal(push->deliver->entries[0]->body.data, "sealed-1", 8);
    kl_wire_free(push);
    rep = do_send(&a, "bob@oslo.test", (const uint8_t *)"sealed-2", 8);
    kl_wire_free(rep);
    kl_wire_free(recv_frame(&b)); /* its push */

    rep = do_fetch(&b, 0);
    assert_int_equal(rep->body_case, BODY(DELIVER));
    assert_int_equal(rep->deliver->n_entries, 2);
    assert_int_equal(rep->deliver->entries[1]->seq, 2);
    assert_false(rep->deliver->more);
    kl_wire_free(rep);

    Kollega__Relay__V1__Ack ack = KOLLEGA__RELAY__V1__ACK__INIT;
    ack.seq = 2;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(ACK);
    f.ack = &ack;
    expect_ok(request(&b, &f));
    rep = do_fetch(&b, 0);
    assert_int_equal(rep->deliver->n_entries, 0);
    kl_wire_free(rep);

    expect_error(do_send(&a, "nobody@oslo.test", (const uint8_t *)"x", 1), CODE(NOT_FOUND));
    uint8_t big[1001];
    memset(big, 1, sizeof big);
    expect_error(do_send(&a, "bob@oslo.test", big, sizeof big), CODE(TOO_LARGE));
    client_close(&a);
    client_close(&b);
    relay_stop(r);
}

/* c uploads a signed prekey (id 1) and two one-time prekeys (ids 100, 101). */
static void upload_prekeys(client_t *c)
{
    uint8_t spk[32], spk_sk[32], sig[64], opk[32], opk_sk[32];
    kl_x_keypair(spk, spk_sk);
    kl_x_keypair(opk, opk_sk);
    kl_memzero(spk_sk, sizeof spk_sk);
    kl_memzero(opk_sk, sizeof opk_sk);
    kl_x3dh_spk_sign(c->ik_sk, 1, spk, sig);
    Kollega__Relay__V1__SignedPrekey sp = KOLLEGA__RELAY__V1__SIGNED_PREKEY__INIT;
    sp.id = 1;
    sp.public_key.data = spk;
    sp.public_key.len = 32;
    sp.signature.data = sig;
    sp.signature.len = 64;
    Kollega__Relay__V1__OneTimePrekey o1 = KOLLEGA__RELAY__V1__ONE_TIME_PREKEY__INIT, o2 = o1;
    o1.id = 100;
    o2.id = 101;
    o1.public_key.data = o2.public_key.data = opk;
    o1.public_key.len = o2.public_key.len = 32;
    Kollega__Relay__V1__OneTimePrekey *os[] = {&o1, &o2};
    Kollega__Relay__V1__PrekeyUpload pu = KOLLEGA__RELAY__V1__PREKEY_UPLOAD__INIT;
    pu.signed_prekey = &sp;
    pu.one_time_prekeys = os;
    pu.n_one_time_prekeys = 2;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(PREKEY_UPLOAD);
    f.prekey_upload = &pu;
    expect_ok(request(c, &f));
}

/* c's prekey_status answers count one-time prekeys and ran_out. */
static void expect_prekey_status(client_t *c, uint32_t count, uint32_t ran_out)
{
    Kollega__Relay__V1__PrekeyStatus ps = KOLLEGA__RELAY__V1__PREKEY_STATUS__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(PREKEY_STATUS);
    f.prekey_status = &ps;
    kl_frame_t *cnt = request(c, &f);
    assert_int_equal(cnt->body_case, BODY(PREKEY_COUNT));
    assert_int_equal(cnt->prekey_count->one_time_prekeys, count);
    assert_int_equal(cnt->prekey_count->ran_out, ran_out);
    assert_int_equal(cnt->prekey_count->ran_out_since_ms > 0, ran_out > 0);
    kl_wire_free(cnt);
}

/* On the relay's default limits, bob fetching alice's bundle again within
 * the window gets it without a one-time prekey: hers are not consumed,
 * and that does not count as alice running out. */
static void test_prekey_fetch_limited(void **state)
{
    (void)state;
    relay_t *r = relay_start(10, INVITES, 1);
    client_t a, b;
    client_connect(r, &a);
    expect_ok(do_register(&a, "alice", INV_A));
    client_connect(r, &b);
    expect_ok(do_register(&b, "bob", INV_B));
    upload_prekeys(&a);
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;

    Kollega__Relay__V1__PrekeyFetch pf = KOLLEGA__RELAY__V1__PREKEY_FETCH__INIT;
    pf.address = "alice@oslo.test";
    pf.requester = "someone@else.test"; /* ignored from a client */
    f.body_case = BODY(PREKEY_FETCH);
    f.prekey_fetch = &pf;
    for (int i = 0; i < 5; i++) {
        kl_frame_t *rep = request(&b, &f);
        assert_int_equal(rep->body_case, BODY(PREKEY_BUNDLE));
        assert_int_equal(rep->prekey_bundle->signed_prekey->id, 1);
        if (i == 0)
            assert_int_equal(rep->prekey_bundle->one_time_prekey->id, 100);
        else
            assert_null(rep->prekey_bundle->one_time_prekey);
        kl_wire_free(rep);
    }
    expect_prekey_status(&a, 1, 0);
    client_close(&a);
    client_close(&b);
    relay_stop(r);
}

static void test_auth_lookup_and_prekeys(void **state)
{
    (void)state;
    opt_opk_per_pair = 10; /* one requester may take all: see test_prekey_fetch_limited */
    relay_t *r = relay_start(10, INVITES, 1);
    client_t a, a2;
    client_connect(r, &a);
    expect_ok(do_register(&a, "alice", INV_A));

    upload_prekeys(&a);
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;

    /* a second connection authenticates as alice */
    uint8_t sig[64];
    client_connect(r, &a2);
    memcpy(a2.ik_pk, a.ik_pk, 32);
    memcpy(a2.ik_sk, a.ik_sk, 64);
    uint8_t msg[128];
    size_t n;
    kl_wire_auth_msg(a2.t.hh, msg, sizeof msg, &n);
    kl_sign(a2.ik_sk, msg, n, sig);
    Kollega__Relay__V1__Auth au = KOLLEGA__RELAY__V1__AUTH__INIT;
    au.address = "alice@oslo.test";
    au.signature.data = sig;
    au.signature.len = 64;
    f.body_case = BODY(AUTH);
    f.auth = &au;
    expect_ok(request(&a2, &f));

    Kollega__Relay__V1__PrekeyFetch pf = KOLLEGA__RELAY__V1__PREKEY_FETCH__INIT;
    pf.address = "alice@oslo.test";
    f.body_case = BODY(PREKEY_FETCH);
    f.prekey_fetch = &pf;
    for (int i = 0; i < 3; i++) {
        kl_frame_t *rep = request(&a2, &f);
        assert_int_equal(rep->body_case, BODY(PREKEY_BUNDLE));
        assert_memory_equal(rep->prekey_bundle->identity_key.data, a.ik_pk, 32);
        assert_int_equal(rep->prekey_bundle->signed_prekey->id, 1);
        if (i < 2)
            assert_int_equal(rep->prekey_bundle->one_time_prekey->id, 100 + (uint32_t)i);
        else
            assert_null(rep->prekey_bundle->one_time_prekey);
        kl_wire_free(rep);
    }
    /* The third fetch found none left: prekey_status tells the owner. */
    expect_prekey_status(&a2, 0, 1);
    Kollega__Relay__V1__Lookup lk = KOLLEGA__RELAY__V1__LOOKUP__INIT;
    lk.address = "alice@oslo.test";
    f.body_case = BODY(LOOKUP);
    f.lookup = &lk;
    kl_frame_t *rep = request(&a2, &f);
    assert_int_equal(rep->body_case, BODY(LOOKUP_RESULT));
    assert_true(rep->lookup_result->exists);
    assert_memory_equal(rep->lookup_result->identity_key.data, a.ik_pk, 32);
    kl_wire_free(rep);

    /* a replayed auth signature (another connection's hash) is refused */
    client_t m;
    client_connect(r, &m);
    au.signature.data = sig; /* signed over a2's handshake hash */
    f.body_case = BODY(AUTH);
    f.auth = &au;
    expect_error(request(&m, &f), CODE(UNAUTHENTICATED));
    assert_null(recv_frame(&m)); /* and closed */
    client_close(&m);
    client_close(&a);
    client_close(&a2);
    relay_stop(r);
}

static void test_used_invite_keeps_connection(void **state)
{
    (void)state;
    relay_t *r = relay_start(10, INVITES, 1);
    client_t a, b;
    client_connect(r, &a);
    expect_ok(do_register(&a, "alice", INV_A));
    client_connect(r, &b);
    expect_error(do_register(&b, "bob", INV_A), CODE(INVITE_INVALID));
    expect_error(do_register(&b, "alice", INV_B), CODE(CONFLICT));
    expect_ok(do_register(&b, "bob", INV_B)); /* the conflict did not use INV_B */
    client_close(&a);
    client_close(&b);
    relay_stop(r);
}

static void test_pipelined_requests_behind_register(void **state)
{
    (void)state;
    relay_t *r = relay_start(10, INVITES, 1);
    client_t a;
    client_connect(r, &a);
    /* register, then a fetch and a ping without waiting: answered in order */
    uint8_t msg[256], sig[64], out[3][KL_FRAME_MAX + 2];
    size_t n, len[3];
    kl_wire_register_msg(a.t.hh, "alice", INV_A, msg, sizeof msg, &n);
    kl_sign(a.ik_sk, msg, n, sig);
    Kollega__Relay__V1__Register rg = KOLLEGA__RELAY__V1__REGISTER__INIT;
    rg.handle = "alice";
    rg.invite_code = INV_A;
    rg.identity_key.data = a.ik_pk;
    rg.identity_key.len = 32;
    rg.signature.data = sig;
    rg.signature.len = 64;
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    Kollega__Relay__V1__Ping p = KOLLEGA__RELAY__V1__PING__INIT;
    kl_frame_t f[3] = {KOLLEGA__RELAY__V1__FRAME__INIT, KOLLEGA__RELAY__V1__FRAME__INIT,
                       KOLLEGA__RELAY__V1__FRAME__INIT};
    f[0].body_case = BODY(REGISTER);
    f[0].register_ = &rg;
    f[1].body_case = BODY(FETCH);
    f[1].fetch = &fe;
    f[2].body_case = BODY(PING);
    f[2].ping = &p;
    uint8_t all[3 * (KL_FRAME_MAX + 2)];
    size_t total = 0;
    for (int i = 0; i < 3; i++) {
        f[i].id = (uint32_t)i + 1;
        assert_int_equal(kl_wire_seal(&a.t, &f[i], out[i], sizeof out[i], &len[i]), 0);
        memcpy(all + total, out[i], len[i]);
        total += len[i];
    }
    assert_int_equal(send_all(a.fd, all, total), 0); /* one write: one read for the relay */
    kl_frame_t *rep = recv_frame(&a);
    assert_int_equal(rep->id, 1);
    expect_ok(rep);
    /* the fetch goes to storage, the ping is answered at once */
    int seen_fetch = 0, seen_pong = 0;
    for (int i = 0; i < 2; i++) {
        rep = recv_frame(&a);
        assert_non_null(rep);
        if (rep->body_case == BODY(DELIVER))
            seen_fetch = rep->id == 2;
        if (rep->body_case == BODY(PONG))
            seen_pong = rep->id == 3;
        kl_wire_free(rep);
    }
    assert_true(seen_fetch && seen_pong);
    client_close(&a);
    relay_stop(r);
}

static void test_handshake_timeout_closes(void **state)
{
    (void)state;
    relay_t *r = relay_start(1, INVITES, 1);
    int fd = raw_connect(r);
    uint8_t b;
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    assert_true(recv(fd, &b, 1, 0) <= 0); /* closed by the relay, not by our 5 s timeout */
    gettimeofday(&t1, NULL);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
    assert_true(ms >= 900 && ms < 4000);
    close(fd);
    /* connected but never authenticated: the same deadline */
    client_t c;
    client_connect(r, &c);
    assert_null(recv_frame(&c));
    client_close(&c);
    relay_stop(r);
}


static void test_max_connections_refused(void **state)
{
    (void)state;
    opt_max_conns = 2;
    relay_t *r = relay_start(10, INVITES, 1);
    client_t a, b;
    client_connect(r, &a);
    client_connect(r, &b);
    int fd = raw_connect(r);
    uint8_t x;
    assert_true(recv(fd, &x, 1, 0) <= 0); /* accepted and closed at once */
    close(fd);
    client_close(&a);
    /* once one leaves, a new connection is served again */
    usleep(100000);
    client_connect(r, &a);
    Kollega__Relay__V1__Ping p = KOLLEGA__RELAY__V1__PING__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(PING);
    f.ping = &p;
    kl_frame_t *rep = request(&a, &f);
    assert_int_equal(rep->body_case, BODY(PONG));
    kl_wire_free(rep);
    client_close(&a);
    client_close(&b);
    relay_stop(r);
}

static void test_idle_timeout_after_auth(void **state)
{
    (void)state;
    opt_idle_s = 1;
    relay_t *r = relay_start(10, INVITES, 1);
    client_t a;
    client_connect(r, &a);
    expect_ok(do_register(&a, "alice", INV_A));
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    assert_null(recv_frame(&a));
    gettimeofday(&t1, NULL);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
    assert_true(ms >= 800 && ms < 4000);
    client_close(&a);
    relay_stop(r);
}

/* With a tiny write queue, pushes that find the queue busy are dropped and
 * replaced by one empty deliver{more} once it drains: every entry is
 * either pushed or announced, and all of them can be fetched. */
static void test_backpressure_missed_pushes_announced(void **state)
{
    (void)state;
    enum { N = 20 };
    opt_write_queue = 1;
    relay_t *r = relay_start(10, INVITES, 1);
    client_t a, b;
    client_connect(r, &a);
    client_connect(r, &b);
    expect_ok(do_register(&a, "alice", INV_A));
    expect_ok(do_register(&b, "bob", INV_B));
    static uint8_t all[N * 128];
    size_t total = 0;
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = "bob@oslo.test";
    sd.body.data = (uint8_t *)"0123456789";
    sd.body.len = 10;
    for (int i = 0; i < N; i++) {
        kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
        f.body_case = BODY(SEND);
        f.send = &sd;
        f.id = (uint32_t)i + 1;
        size_t n;
        assert_int_equal(kl_wire_seal(&a.t, &f, all + total, sizeof all - total, &n), 0);
        total += n;
    }
    assert_int_equal(send_all(a.fd, all, total), 0);
    expect_replies(&a, N, BODY(SENT));
    int announced;
    int pushed = read_pushes(&b, N, NULL, &announced);
    print_message("pushed %d entries, more-announcement %s\n", pushed, announced ? "yes" : "no");
    /* later pushes may still arrive before the fetch answer: skip them */
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    kl_frame_t *rep = fetch_past_pushes(&b, &fe);
    assert_int_equal(rep->deliver->n_entries, N);
    kl_wire_free(rep);
    client_close(&a);
    client_close(&b);
    relay_stop(r);
}

/* Fetch replies are up to ~64 KiB while a fetch request is a few bytes: a
 * client that pipelines fetches without reading must not make the relay
 * queue far more than the write-queue cap. Every fetch in flight counts as
 * a full reply; those over the cap are refused with RATE_LIMITED. */
static void test_pipelined_fetches_bounded_by_write_queue(void **state)
{
    (void)state;
    enum { N = 40 };
    opt_write_queue = 65536;
    relay_t *r = relay_start(10, INVITES, 1);
    client_t a;
    client_connect(r, &a);
    expect_ok(do_register(&a, "alice", INV_A));
    static uint8_t all[N * 64];
    size_t total = 0;
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    for (int i = 0; i < N; i++) {
        kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
        f.body_case = BODY(FETCH);
        f.fetch = &fe;
        f.id = (uint32_t)i + 100;
        size_t n;
        assert_int_equal(kl_wire_seal(&a.t, &f, all + total, sizeof all - total, &n), 0);
        total += n;
    }
    assert_int_equal(send_all(a.fd, all, total), 0); /* one write: one read for the relay */
    int delivered = 0, limited = 0;
    for (int i = 0; i < N; i++) {
        kl_frame_t *rep = recv_frame(&a);
        assert_non_null(rep);
        if (rep->body_case == BODY(DELIVER))
            delivered++;
        else if (rep->body_case == BODY(ERROR) &&
                 rep->error->code == CODE(RATE_LIMITED))
            limited++;
        else
            fail_msg("unexpected reply %d", rep->body_case);
        kl_wire_free(rep);
    }
    assert_int_equal(delivered + limited, N);
    assert_true(delivered >= 1);
    assert_true(limited > 0);
    client_close(&a);
    relay_stop(r);
}

/* Write coalescing: every frame a connection gets in one loop turn goes
 * out in one write. A client pipelining sends to itself gets, for each, a
 * `sent` reply and a pushed `deliver`, sealed into the same buffers: every
 * frame must still decrypt (the Noise nonces are in order), the replies
 * must come in request order and the pushes in seq order, none missing. */
static void test_coalesced_frames_arrive_in_order(void **state)
{
    (void)state;
    enum { N = 200 };
    relay_t *r = relay_start(10, INVITES, 1);
    client_t a;
    client_connect(r, &a);
    expect_ok(do_register(&a, "alice", INV_A));
    static uint8_t all[N * 128];
    size_t total = 0;
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    uint8_t body[8];
    sd.to = "alice@oslo.test";
    sd.body.data = body;
    sd.body.len = sizeof body;
    for (int i = 0; i < N; i++) {
        kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
        f.body_case = BODY(SEND);
        f.send = &sd;
        f.id = (uint32_t)i + 10;
        memset(body, 'a' + i % 26, sizeof body);
        size_t n;
        assert_int_equal(kl_wire_seal(&a.t, &f, all + total, sizeof all - total, &n), 0);
        total += n;
    }
    assert_int_equal(send_all(a.fd, all, total), 0);
    uint32_t next_id = 10;
    uint64_t next_seq = 1;
    while (next_id < 10 + N || next_seq <= N) {
        kl_frame_t *f = recv_frame(&a); /* asserts that it decrypts */
        assert_non_null(f);
        if (f->body_case == BODY(SENT)) {
            assert_int_equal(f->id, next_id);
            next_id++;
        } else {
            assert_int_equal(f->body_case, BODY(DELIVER));
            assert_int_equal(f->id, 0);
            for (size_t k = 0; k < f->deliver->n_entries; k++) {
                Kollega__Relay__V1__Entry *e = f->deliver->entries[k];
                assert_int_equal(e->seq, next_seq);
                assert_int_equal(e->body.len, sizeof body);
                assert_int_equal(e->body.data[0], 'a' + (int)((next_seq - 1) % 26));
                next_seq++;
            }
        }
        kl_wire_free(f);
    }
    assert_int_equal(next_id, 10 + N);
    assert_int_equal(next_seq, N + 1);
    client_close(&a);
    relay_stop(r);
}

static void test_shutdown_with_open_connections(void **state)
{
    (void)state;
    relay_t *r = relay_start(10, INVITES, 1);
    client_t a, b;
    client_connect(r, &a);
    expect_ok(do_register(&a, "alice", INV_A));
    client_connect(r, &b);
    relay_stop(r); /* joins the loop thread: returns only when all is closed */
    assert_null(recv_frame(&a));
    client_close(&a);
    client_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_send_push_fetch_ack),
        cmocka_unit_test(test_auth_lookup_and_prekeys),
        cmocka_unit_test(test_prekey_fetch_limited),
        cmocka_unit_test(test_used_invite_keeps_connection),
        cmocka_unit_test(test_pipelined_requests_behind_register),
        cmocka_unit_test(test_handshake_timeout_closes),
        cmocka_unit_test(test_max_connections_refused),
        cmocka_unit_test(test_idle_timeout_after_auth),
        cmocka_unit_test(test_backpressure_missed_pushes_announced),
        cmocka_unit_test(test_pipelined_fetches_bounded_by_write_queue),
        cmocka_unit_test(test_coalesced_frames_arrive_in_order),
        cmocka_unit_test(test_shutdown_with_open_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
