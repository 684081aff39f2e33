/* ERFA groups end to end over loopback (the relay's connection layer):
 * who gets a group push (every live connection of the members but the one
 * that sent it), and the announcement of group pushes dropped for
 * backpressure. The server loop runs in a thread on 127.0.0.1:0 with a
 * temporary database; the tests are blocking clients speaking Noise NK +
 * Frames. The fixture is relay_server_fixture.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/group.h"
#include "relay_server_fixture.h"

#define INV "invite-code-for-the-group-test-0123456789ab"
#define GA "#erfa@oslo.test"

/* The invite code every test user registers with. */
static const char *const INVITES[] = {INV, NULL};

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
    relay_t *r = relay_start(10, INVITES, 10);
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

/* A deliver push must be one of group GA. */
static void check_group_push(const kl_frame_t *p)
{
    assert_string_equal(p->deliver->group, GA);
}

/* With a write queue of one byte nearly every push to bob is dropped; once
 * his queue drains he gets deliver{group, more} and fetches all. */
static void test_group_missed_pushes_announced(void **state)
{
    (void)state;
    enum { N = 20 };
    opt_write_queue = 1;
    relay_t *r = relay_start(10, INVITES, 10);
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
    expect_replies(&a, N, BODY(SENT));
    int announced;
    int pushed = read_pushes(&b, N, check_group_push, &announced);
    print_message("pushed %d group entries, more-announcement %s\n", pushed,
                  announced ? "yes" : "no");
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    fe.group = GA;
    kl_frame_t *rep = fetch_past_pushes(&b, &fe);
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
