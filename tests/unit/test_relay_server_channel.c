/* Broadcast channels over loopback (the relay's connection layer): who
 * gets a post or op push (every live connection of every subscriber but
 * the one that sent it), and the announcement of channel pushes dropped for
 * backpressure (deliver{channel, more}). The server loop runs in a thread
 * on 127.0.0.1:0 with a temporary database; the clients are blocking
 * sockets speaking Noise NK + Frames (the fixture is
 * relay_server_fixture.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/channel.h"
#include "relay_server_fixture.h"

#define INV "invite-code-for-the-channel-test-0123456789"
#define CH "!news@oslo.test"

/* The invite code every test user registers with. */
static const char *const INVITES[] = {INV, NULL};

/* Build the next op of ch by c (handle@oslo.test), submit it, apply it. */
static void channel_op(client_t *c, const char *handle, kl_channel_t *ch, kl_channel_opkind_t k,
                       const client_t *t, const char *thandle)
{
    uint8_t *op = NULL;
    size_t len = 0;
    char addr[64], taddr[64];
    kl_channel_verr_t why;
    snprintf(addr, sizeof addr, "%s@oslo.test", handle);
    snprintf(taddr, sizeof taddr, "%s@oslo.test", thandle ? thandle : "");
    assert_int_equal(kl_channel_op_build(ch, c->ik_sk, c->ik_pk, addr, 1, k, t ? t->ik_pk : NULL,
                                         t ? taddr : NULL, &op, &len), 0);
    assert_int_equal(kl_channel_apply(ch, op, len, NULL, &why), 0);
    Kollega__Relay__V1__ChannelOp co = KOLLEGA__RELAY__V1__CHANNEL_OP__INIT;
    co.signed_op.data = op;
    co.signed_op.len = len;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(CHANNEL_OP);
    f.channel_op = &co;
    kl_frame_t *rep = request(c, &f);
    if (rep->body_case == BODY(ERROR))
        fail_msg("channel op refused: %s", rep->error->message);
    assert_int_equal(rep->body_case, BODY(CHANNEL_OP_ACCEPTED));
    assert_int_equal(rep->channel_op_accepted->index, kl_channel_next_index(ch) - 1);
    kl_wire_free(rep);
    free(op);
}

static void subscribe(client_t *c)
{
    Kollega__Relay__V1__Subscribe s = KOLLEGA__RELAY__V1__SUBSCRIBE__INIT;
    s.channel = CH;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.body_case = BODY(SUBSCRIBE);
    f.subscribe = &s;
    expect_ok(request(c, &f));
}

/* A signed post by c (handle) as a sealed send frame with request id. */
static void post_frame(const client_t *c, const char *handle, const kl_channel_t *ch,
                       const char *text, kl_frame_t *f, Kollega__Relay__V1__Send *sd,
                       uint8_t **body)
{
    uint8_t id[16];
    size_t len = 0;
    char addr[64];
    snprintf(addr, sizeof addr, "%s@oslo.test", handle);
    kl_random(id, sizeof id);
    assert_int_equal(kl_channel_post_build(ch, c->ik_sk, c->ik_pk, addr, id, 1, text, body, &len),
                     0);
    Kollega__Relay__V1__Send s0 = KOLLEGA__RELAY__V1__SEND__INIT;
    *sd = s0;
    sd->to = CH;
    sd->body.data = *body;
    sd->body.len = len;
    kl_frame_t f0 = KOLLEGA__RELAY__V1__FRAME__INIT;
    *f = f0;
    f->body_case = BODY(SEND);
    f->send = sd;
}

static void test_channel_pushes(void **state)
{
    (void)state;
    relay_t *r = relay_start(10, INVITES, 10);
    client_t a, b, b2, c;
    kl_channel_t *ch = NULL;
    client_connect(r, &a);
    client_connect(r, &b);
    client_connect(r, &c);
    expect_ok(do_register(&a, "alice", INV));
    expect_ok(do_register(&b, "bob", INV));
    expect_ok(do_register(&c, "carol", INV));
    do_auth(r, &b2, &b, "bob");
    assert_int_equal(kl_channel_new(&ch, CH), 0);
    channel_op(&a, "alice", ch, KL_COP_CREATE, NULL, NULL);
    subscribe(&b);
    subscribe(&a); /* the poster's own connection gets no push */

    kl_frame_t f;
    Kollega__Relay__V1__Send sd;
    uint8_t *body = NULL;
    post_frame(&a, "alice", ch, "announcement", &f, &sd, &body);
    kl_frame_t *rep = request(&a, &f);
    assert_int_equal(rep->body_case, BODY(SENT));
    uint64_t seq = rep->sent->seq;
    kl_wire_free(rep);
    free(body);
    client_t *bs[2] = {&b, &b2};
    for (int i = 0; i < 2; i++) {
        kl_frame_t *p = expect_push(bs[i], BODY(DELIVER));
        assert_string_equal(p->deliver->channel, CH);
        assert_int_equal(p->deliver->n_entries, 1);
        assert_int_equal(p->deliver->entries[0]->seq, seq);
        kl_channel_post_t post;
        kl_channel_verr_t why;
        const Kollega__Relay__V1__Entry *e = p->deliver->entries[0];
        assert_int_equal(kl_channel_post_open(ch, e->body.data, e->body.len, &post, &why), 0);
        assert_string_equal(post.text, "announcement");
        kl_channel_post_clear(&post);
        kl_wire_free(p);
    }
    expect_nothing_pushed(&a);
    expect_nothing_pushed(&c);
    /* An op reaches the subscribers as channel_log. */
    channel_op(&a, "alice", ch, KL_COP_ADD_PUBLISHER, &c, "carol");
    for (int i = 0; i < 2; i++) {
        kl_frame_t *p = expect_push(bs[i], BODY(CHANNEL_LOG));
        assert_string_equal(p->channel_log->channel, CH);
        assert_int_equal(p->channel_log->from_index, 1);
        assert_int_equal(p->channel_log->n_ops, 1);
        assert_int_equal(p->channel_log->next_index, 2);
        kl_wire_free(p);
    }
    expect_nothing_pushed(&c);
    kl_channel_free(ch);
    client_close(&a);
    client_close(&b);
    client_close(&b2);
    client_close(&c);
    relay_stop(r);
}

/* A deliver push must be one of channel CH. */
static void check_channel_push(const kl_frame_t *p)
{
    assert_string_equal(p->deliver->channel, CH);
    assert_string_equal(p->deliver->group, "");
}

/* With a write queue of one byte nearly every push to bob is dropped; once
 * his queue drains he gets deliver{channel, more} and fetches all. */
static void test_channel_missed_pushes_announced(void **state)
{
    (void)state;
    enum { N = 20 };
    opt_write_queue = 1;
    relay_t *r = relay_start(10, INVITES, 10);
    client_t a, b;
    kl_channel_t *ch = NULL;
    client_connect(r, &a);
    client_connect(r, &b);
    expect_ok(do_register(&a, "alice", INV));
    expect_ok(do_register(&b, "bob", INV));
    assert_int_equal(kl_channel_new(&ch, CH), 0);
    channel_op(&a, "alice", ch, KL_COP_CREATE, NULL, NULL);
    subscribe(&b);

    static uint8_t all[N * 512];
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        kl_frame_t f;
        Kollega__Relay__V1__Send sd;
        uint8_t *body = NULL;
        size_t n;
        post_frame(&a, "alice", ch, "post", &f, &sd, &body);
        f.id = 100 + (uint32_t)i;
        assert_int_equal(kl_wire_seal(&a.t, &f, all + total, sizeof all - total, &n), 0);
        total += n;
        free(body);
    }
    assert_int_equal(send_all(a.fd, all, total), 0);
    expect_replies(&a, N, BODY(SENT));
    int announced;
    int pushed = read_pushes(&b, N, check_channel_push, &announced);
    print_message("pushed %d channel posts, more-announcement %s\n", pushed,
                  announced ? "yes" : "no");
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    fe.channel = CH;
    kl_frame_t *rep = fetch_past_pushes(&b, &fe);
    assert_int_equal(rep->body_case, BODY(DELIVER));
    assert_string_equal(rep->deliver->channel, CH);
    assert_int_equal(rep->deliver->n_entries, N);
    kl_wire_free(rep);
    kl_channel_free(ch);
    client_close(&a);
    client_close(&b);
    relay_stop(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channel_pushes),
        cmocka_unit_test(test_channel_missed_pushes_announced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
