/* ERFA groups in the relay, in-process: frames go through kl_dispatch_frame,
 * the jobs run against the real sqlite storage (as the storage thread runs
 * them: job_begin, kl_job_run, job_end inside a batch), and
 * kl_dispatch_complete turns them into replies and push lists. Users u0..u11
 * (group_fixture.h) are registered on relay oslo.test. */
#include "group_fixture.h"

#include "dispatch_fixture.h"

static int setup(void **state)
{
    if (fixture_setup(state) != 0)
        return -1;
    return dfx_open("/tmp/kl-dgroup-XXXXXX",
                    (dfx_limits_t){.max_body = 1000, .ttl_default_s = 3600, .max_bytes = 100000},
                    NU, U[0].pk, sizeof U[0]);
}

/* Submit op bytes as user u. */
static int submit(int u, const opbuf_t *o)
{
    return req_group_op(u, o->p, o->len, 1);
}

/* Build by u against the mirror, submit as u, and on acceptance apply to
 * the mirror. Returns the reply's body case. */
static int op(int u, kl_group_opdesc_t d)
{
    opbuf_t o = build(F->mirror, &U[u], d);
    int bc = submit(u, &o);
    if (bc == BODY(GROUP_OP_ACCEPTED)) {
        apply_ok(F->mirror, &o);
        assert_int_equal(F->out.reply.body.group_op_accepted.index,
                         kl_group_next_index(F->mirror) - 1);
        assert_string_equal(F->out.reply.body.group_op_accepted.group, GADDR);
    }
    free(o.p);
    return bc;
}

static int send_to(int u, const char *to, const char *text)
{
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    sd.to = (char *)to;
    sd.body.data = (uint8_t *)text;
    sd.body.len = strlen(text);
    /* The sender's view of the log: every test member follows the mirror. */
    sd.group_index = F->mirror ? kl_group_next_index(F->mirror) : 1;
    fr.body_case = BODY(SEND);
    fr.send = &sd;
    return req(u, &fr);
}

static int fetch_group(int u, uint64_t after)
{
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    fe.after = after;
    fe.group = GADDR;
    fr.body_case = BODY(FETCH);
    fr.fetch = &fe;
    return req(u, &fr);
}

static int ack_group(int u, uint64_t seq)
{
    Kollega__Relay__V1__Ack ak = KOLLEGA__RELAY__V1__ACK__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    ak.seq = seq;
    ak.group = GADDR;
    fr.body_case = BODY(ACK);
    fr.ack = &ak;
    return req(u, &fr);
}

static int gfetch(int u, uint64_t from)
{
    return req_group_fetch(u, GADDR, from);
}

/* u0 creates GADDR under FACILITATORS and invites u1..u(n-1). */
static void make_group(int n, uint32_t days)
{
    F->mirror = group_new(GADDR);
    assert_int_equal(op(0, d_create(KL_POLICY_FACILITATORS, days)), BODY(GROUP_OP_ACCEPTED));
    for (int i = 1; i < n; i++) {
        assert_int_equal(op(0, d_on(KL_GOP_INVITE, &U[i])), BODY(GROUP_OP_ACCEPTED));
        assert_true(F->out.reply.body.group_op_accepted.admitted);
    }
}

static void test_create_and_duplicate(void **state)
{
    (void)state;
    make_group(1, 0);
    /* The creator's other connections hear of it. */
    assert_true(F->out.has_push);
    assert_int_equal(F->out.n_push_users, 1);
    assert_true(has_user(0));
    assert_int_equal(F->out.push.frame.body_case, BODY(GROUP_LOG));
    assert_int_equal(F->out.push.frame.id, 0);
    assert_int_equal(F->out.push.body.group_log.n_ops, 1);
    assert_int_equal(F->out.push.body.group_log.next_index, 1);

    /* Another create of the same address (u1, fresh state): CONFLICT. */
    kl_group_t *other = group_new(GADDR);
    opbuf_t o = build(other, &U[1], d_create(KL_POLICY_ALL, 0));
    assert_int_equal(submit(1, &o), BODY(ERROR));
    expect_error(CODE(CONFLICT), "already exists");
    free(o.p);
    kl_group_free(other);
}

static void test_stale_index_and_unknown_group(void **state)
{
    (void)state;
    make_group(1, 0);
    opbuf_t stale = build(F->mirror, &U[0], d_on(KL_GOP_INVITE, &U[2]));
    assert_int_equal(op(0, d_on(KL_GOP_INVITE, &U[1])), BODY(GROUP_OP_ACCEPTED));
    assert_true(has_user(0) && has_user(1));
    assert_int_equal(submit(0, &stale), BODY(ERROR));
    expect_error(CODE(CONFLICT), "fetch");
    free(stale.p);

    /* An op for a group that does not exist. */
    kl_group_t *g = group_new("#nope@oslo.test");
    opbuf_t c = build(g, &U[0], d_create(KL_POLICY_ALL, 0));
    assert_int_equal(kl_group_apply(g, c.p, c.len, NULL, NULL), 0);
    opbuf_t inv = build(g, &U[0], d_on(KL_GOP_INVITE, &U[1]));
    assert_int_equal(submit(0, &inv), BODY(ERROR));
    expect_error(CODE(NOT_FOUND), "no such group");
    free(c.p);
    free(inv.p);
    kl_group_free(g);

    /* A group of another relay. */
    g = group_new("#erfa@stockholm.test");
    c = build(g, &U[0], d_create(KL_POLICY_ALL, 0));
    assert_int_equal(submit(0, &c), BODY(ERROR));
    expect_error(CODE(UNAVAILABLE), "federation");
    free(c.p);
    kl_group_free(g);
}

static void test_forged_actor_and_rules(void **state)
{
    (void)state;
    make_group(2, 0);
    /* u1's op submitted on u0's connection. */
    opbuf_t o = build(F->mirror, &U[1], d_on(KL_GOP_INVITE, &U[5]));
    assert_int_equal(submit(0, &o), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "connected user");
    free(o.p);
    /* An op naming u0 as actor but signed by u1. */
    arena_t a = {.n = 0};
    Kollega__Group__V1__Op *dr = draft(F->mirror, &U[0], d_on(KL_GOP_INVITE, &U[5]), &a);
    opbuf_t forged = seal(dr, &U[1]);
    assert_int_equal(submit(0, &forged), BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), NULL);
    free(forged.p);
    arena_release(&a);
    /* The rules: u1 (a member, not a facilitator) may not remove u0. */
    assert_int_equal(op(1, d_on(KL_GOP_REMOVE, &U[0])), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), NULL);
    /* Garbage. */
    opbuf_t junk = {(uint8_t *)"\x0a\x03xyz", 5};
    assert_int_equal(submit(0, &junk), BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), NULL);
    /* Nothing of it was stored. */
    assert_int_equal(gfetch(0, 0), BODY(GROUP_LOG));
    assert_int_equal(F->out.reply.body.group_log.n_ops, 2);
    assert_int_equal(F->out.reply.body.group_log.next_index, 2);
}

static void test_send_once_and_push_list(void **state)
{
    (void)state;
    make_group(10, 0);
    assert_int_equal(send_to(10, GADDR, "not mine"), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a member of " GADDR);
    uint64_t before = stored_entries();
    assert_int_equal(send_to(3, GADDR, "hello group"), BODY(SENT));
    assert_int_equal(F->out.reply.body.sent.seq, 1);
    assert_int_equal(stored_entries(), before + 1); /* one entry for ten members */
    assert_true(F->out.has_push);
    assert_int_equal(F->out.n_push_users, 10);
    for (int i = 0; i < 10; i++)
        assert_true(has_user(i));
    assert_false(has_user(10));
    assert_string_equal(F->out.push_group, GADDR);
    assert_int_equal(F->out.push.frame.body_case, BODY(DELIVER));
    assert_string_equal(F->out.push.body.deliver.group, GADDR);
    assert_int_equal(F->out.push.body.deliver.n_entries, 1);
    assert_int_equal(F->out.push.body.deliver.entries[0]->seq, 1);
    assert_memory_equal(F->out.push.body.deliver.entries[0]->body.data, "hello group", 11);
    /* A non-member cannot read or ack either. */
    assert_int_equal(fetch_group(10, 0), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a member");
    assert_int_equal(ack_group(10, 1), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a member");
}

static void test_cursors_and_deletion(void **state)
{
    (void)state;
    make_group(3, 0);
    uint64_t before = stored_entries();
    assert_int_equal(send_to(0, GADDR, "one"), BODY(SENT));
    assert_int_equal(send_to(1, GADDR, "two"), BODY(SENT));
    assert_int_equal(stored_entries(), before + 2);
    for (int u = 0; u < 3; u++) {
        assert_int_equal(fetch_group(u, 0), BODY(DELIVER));
        assert_string_equal(F->out.reply.body.deliver.group, GADDR);
        assert_int_equal(F->out.reply.body.deliver.n_entries, 2);
    }
    /* Each member's cursor is its own: acks by two of three delete nothing. */
    assert_int_equal(ack_group(0, 2), BODY(OK));
    assert_int_equal(ack_group(1, 1), BODY(OK));
    assert_int_equal(stored_entries(), before + 2);
    assert_int_equal(fetch_group(2, 0), BODY(DELIVER));
    assert_int_equal(F->out.reply.body.deliver.n_entries, 2);
    assert_int_equal(ack_group(2, 2), BODY(OK));
    assert_int_equal(stored_entries(), before + 1); /* u1 still holds seq 2 */
    assert_int_equal(ack_group(1, 2), BODY(OK));
    assert_int_equal(stored_entries(), before);
}

static void test_removed_and_new_members(void **state)
{
    (void)state;
    make_group(4, 0);
    assert_int_equal(send_to(0, GADDR, "before"), BODY(SENT));
    uint64_t before = stored_entries();
    /* u3 is removed while holding seq 1 unacked: it loses its cursor, it is
     * told (push), and it can no longer read. */
    assert_int_equal(op(0, d_on(KL_GOP_REMOVE, &U[3])), BODY(GROUP_OP_ACCEPTED));
    assert_true(has_user(3));
    assert_int_equal(fetch_group(3, 0), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a member");
    assert_int_equal(ack_group(3, 1), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a member");
    assert_int_equal(send_to(3, GADDR, "still here?"), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a member");
    /* A message after the removal is not pushed to u3. */
    assert_int_equal(send_to(1, GADDR, "after"), BODY(SENT));
    assert_false(has_user(3));
    assert_int_equal(F->out.n_push_users, 3);
    /* u5 joins now: it sees nothing from before its admission. */
    assert_int_equal(op(0, d_on(KL_GOP_INVITE, &U[5])), BODY(GROUP_OP_ACCEPTED));
    assert_int_equal(fetch_group(5, 0), BODY(DELIVER));
    assert_int_equal(F->out.reply.body.deliver.n_entries, 0);
    assert_int_equal(send_to(2, GADDR, "welcome"), BODY(SENT));
    assert_int_equal(fetch_group(5, 0), BODY(DELIVER));
    assert_int_equal(F->out.reply.body.deliver.n_entries, 1);
    assert_int_equal(F->out.reply.body.deliver.entries[0]->seq, 3);
    /* When the remaining old members ack everything, all goes: u3's cursor
     * no longer holds anything back. */
    for (int u = 0; u < 3; u++)
        assert_int_equal(ack_group(u, 3), BODY(OK));
    assert_int_equal(ack_group(5, 3), BODY(OK));
    assert_int_equal(stored_entries(), before - 1);
    /* A member that leaves loses its cursor too. */
    assert_int_equal(op(2, d_on(KL_GOP_LEAVE, NULL)), BODY(GROUP_OP_ACCEPTED));
    assert_int_equal(fetch_group(2, 0), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a member");
}

static void test_candidate_and_stranger_fetch(void **state)
{
    (void)state;
    make_group(2, 0);
    assert_int_equal(op(0, d_policy(KL_POLICY_ALL)), BODY(GROUP_OP_ACCEPTED));
    /* A stranger: next_index and head, no ops. */
    uint8_t head[32];
    kl_group_head(F->mirror, head);
    assert_int_equal(gfetch(7, 0), BODY(GROUP_LOG));
    assert_int_equal(F->out.reply.body.group_log.n_ops, 0);
    assert_int_equal(F->out.reply.body.group_log.next_index, 3);
    assert_int_equal(F->out.reply.body.group_log.head.len, 32);
    assert_memory_equal(F->out.reply.body.group_log.head.data, head, 32);
    /* u7 asks to join: now a candidate, it gets the ops, and the members
     * hear of it. */
    assert_int_equal(op(7, d_kind(KL_GOP_REQUEST)), BODY(GROUP_OP_ACCEPTED));
    assert_false(F->out.reply.body.group_op_accepted.admitted);
    assert_true(has_user(0) && has_user(1) && has_user(7));
    assert_int_equal(gfetch(7, 1), BODY(GROUP_LOG));
    assert_int_equal(F->out.reply.body.group_log.n_ops, 3);
    assert_int_equal(F->out.reply.body.group_log.from_index, 1);
    assert_int_equal(F->out.reply.body.group_log.next_index, 4);
    /* A candidate is not a member: no messages. */
    assert_int_equal(send_to(7, GADDR, "hi"), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a member");
    /* group_list shows it as a candidate, u0 as a member. */
    Kollega__Relay__V1__GroupList gl = KOLLEGA__RELAY__V1__GROUP_LIST__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    fr.body_case = BODY(GROUP_LIST);
    fr.group_list = &gl;
    assert_int_equal(req(7, &fr), BODY(GROUP_LIST_RESULT));
    assert_int_equal(F->out.reply.body.group_list_result.n_groups, 1);
    assert_string_equal(F->out.reply.body.group_list_result.groups[0]->group, GADDR);
    assert_false(F->out.reply.body.group_list_result.groups[0]->member);
    assert_int_equal(F->out.reply.body.group_list_result.groups[0]->next_index, 4);
    assert_int_equal(req(8, &fr), BODY(GROUP_LIST_RESULT));
    assert_int_equal(F->out.reply.body.group_list_result.n_groups, 0);
    /* Policy all: u0's approval is not enough, u1's completes it. */
    assert_int_equal(op(0, d_on(KL_GOP_APPROVE, &U[7])), BODY(GROUP_OP_ACCEPTED));
    assert_false(F->out.reply.body.group_op_accepted.admitted);
    assert_int_equal(op(0, d_on(KL_GOP_APPROVE, &U[7])), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), NULL);
    assert_int_equal(op(1, d_on(KL_GOP_APPROVE, &U[7])), BODY(GROUP_OP_ACCEPTED));
    assert_true(F->out.reply.body.group_op_accepted.admitted);
    assert_int_equal(send_to(7, GADDR, "hi"), BODY(SENT));
    assert_int_equal(req(7, &fr), BODY(GROUP_LIST_RESULT));
    assert_true(F->out.reply.body.group_list_result.groups[0]->member);
    assert_int_equal(F->out.reply.body.group_list_result.groups[0]->last_seq, 1);
}

/* Entries get the group's retention as expiry; set_retention applies to
 * later messages. */
static void test_retention(void **state)
{
    (void)state;
    make_group(2, 2);
    uint64_t deleted = 0;
    int more = 0;
    uint64_t before = stored_entries();
    assert_int_equal(send_to(0, GADDR, "two days"), BODY(SENT));
    assert_int_equal(op(0, d_retention(5)), BODY(GROUP_OP_ACCEPTED));
    assert_int_equal(send_to(0, GADDR, "five days"), BODY(SENT));
    assert_int_equal(kl_storage_expire(F->st, NOW + 2 * 86400000ull - 1, 100, &deleted, &more),
                     0);
    assert_int_equal(deleted, 0);
    assert_int_equal(kl_storage_expire(F->st, NOW + 2 * 86400000ull, 100, &deleted, &more), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(stored_entries(), before + 1);
    assert_int_equal(kl_storage_expire(F->st, NOW + 5 * 86400000ull, 100, &deleted, &more), 0);
    assert_int_equal(deleted, 1);
    /* Retention 0 is the relay's default TTL; never beyond the TTL max. */
    assert_int_equal(op(0, d_retention(0)), BODY(GROUP_OP_ACCEPTED));
    assert_int_equal(send_to(0, GADDR, "default"), BODY(SENT));
    assert_int_equal(op(0, d_retention(365)), BODY(GROUP_OP_ACCEPTED));
    assert_int_equal(send_to(0, GADDR, "capped"), BODY(SENT));
    assert_int_equal(kl_storage_expire(F->st, NOW + 3600000ull, 100, &deleted, &more), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(kl_storage_expire(F->st, NOW + 30 * 86400000ull, 100, &deleted, &more), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(stored_entries(), before);
}

/* Group addresses that are malformed, of another relay, or unknown. */
static void test_bad_address_forms(void **state)
{
    (void)state;
    make_group(1, 0);
    assert_int_equal(send_to(0, "#erfa@stockholm.test", "x"), BODY(ERROR));
    expect_error(CODE(UNAVAILABLE), "federation");
    assert_int_equal(send_to(0, "#Bad Name@oslo.test", "x"), BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), "group address");
    assert_int_equal(send_to(0, "#nope@oslo.test", "x"), BODY(ERROR));
    expect_error(CODE(NOT_FOUND), "no such group");
    assert_int_equal(gfetch(0, 0), BODY(GROUP_LOG));
    Kollega__Relay__V1__GroupFetch gf = KOLLEGA__RELAY__V1__GROUP_FETCH__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    gf.group = "#nope@oslo.test";
    fr.body_case = BODY(GROUP_FETCH);
    fr.group_fetch = &gf;
    assert_int_equal(req(0, &fr), BODY(ERROR));
    expect_error(CODE(NOT_FOUND), NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_duplicate, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_stale_index_and_unknown_group, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_forged_actor_and_rules, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_send_once_and_push_list, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_cursors_and_deletion, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_removed_and_new_members, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_candidate_and_stranger_fetch, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_address_forms, setup, dfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
