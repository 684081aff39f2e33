/* ERFA groups with members on other relays, the home relay's side,
 * in-process: requests of a peer's users through kl_dispatch_group_remote
 * (as fed_group.c makes them), run against real sqlite storage, completed
 * with kl_dispatch_group_complete; the shadow users that give remote
 * members cursors and a group_list; which answers a user's relay relays;
 * and a local client's request for a group of an unknown relay. Local users
 * u0..u2 are on oslo.test, r0 and r1 on stockholm.test. */
#include "group_fixture.h"

#include "dispatch_fixture.h"
#include "storage/storage_gfed.h"

#define NL 3

static user_t R[2]; /* remote users */

static int setup(void **state)
{
    if (fixture_setup(state) != 0)
        return -1;
    if (dfx_open("/tmp/kl-dgfed-XXXXXX",
                 (dfx_limits_t){.max_body = 1000, .ttl_default_s = 3600, .max_bytes = 100000},
                 NL, U[0].pk, sizeof U[0]) != 0)
        return -1;
    F->complete = kl_dispatch_group_complete;
    for (int i = 0; i < 2; i++) {
        make_user(&R[i], "r");
        snprintf(R[i].addr, sizeof R[i].addr, "r%d@stockholm.test", i);
    }
    F->mirror = group_new(GADDR);
    return 0;
}

/* Remote user r (address addr, key) sends fr through its relay. */
static int remote_req(const char *addr, const uint8_t *key, kl_frame_t *fr)
{
    reset_out();
    fr->id = F->next_id++;
    assert_int_equal(kl_dispatch_group_remote(&F->cfg, addr, key, fr, &F->out), 0);
    if (F->out.job) {
        assert_non_null(F->out.job->u.group.remote);
        F->out.job->req_id = fr->id;
        F->out.job->now_ms = NOW;
    }
    return run_out(NULL, fr->id);
}

static int op_frame(const opbuf_t *o, kl_frame_t *fr, Kollega__Relay__V1__GroupOp *go)
{
    go->signed_op.data = o->p;
    go->signed_op.len = o->len;
    fr->body_case = BODY(GROUP_OP);
    fr->group_op = go;
    return 0;
}

/* u (local index, or -1 - i for remote user i) builds d on the mirror and
 * submits it; applied to the mirror when accepted. */
static int op(int u, kl_group_opdesc_t d)
{
    const user_t *who = u >= 0 ? &U[u] : &R[-1 - u];
    opbuf_t o = build(F->mirror, who, d);
    Kollega__Relay__V1__GroupOp go = KOLLEGA__RELAY__V1__GROUP_OP__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    op_frame(&o, &fr, &go);
    int bc = u >= 0 ? req(u, &fr) : remote_req(who->addr, who->pk, &fr);
    if (bc == BODY(GROUP_OP_ACCEPTED))
        apply_ok(F->mirror, &o);
    free(o.p);
    return bc;
}

static int send_remote(const user_t *r, const char *text)
{
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    sd.to = GADDR;
    sd.body.data = (uint8_t *)text;
    sd.body.len = strlen(text);
    sd.group_index = kl_group_next_index(F->mirror);
    fr.body_case = BODY(SEND);
    fr.send = &sd;
    return remote_req(r->addr, r->pk, &fr);
}

static int fetch_remote(const user_t *r, const uint8_t *key, uint64_t after)
{
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    fe.after = after;
    fe.group = GADDR;
    fr.body_case = BODY(FETCH);
    fr.fetch = &fe;
    return remote_req(r->addr, key, &fr);
}

static int list_remote(const user_t *r)
{
    Kollega__Relay__V1__GroupList gl = KOLLEGA__RELAY__V1__GROUP_LIST__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    fr.body_case = BODY(GROUP_LIST);
    fr.group_list = &gl;
    return remote_req(r->addr, r->pk, &fr);
}

/* The notify list of the last completion, as one string "a,b,". */
static void notify_is(const char *want)
{
    char got[512] = "";
    const char *a = F->out.notify;
    for (size_t i = 0; i < F->out.n_notify; i++, a += strlen(a) + 1) {
        strncat(got, a, sizeof got - strlen(got) - 2);
        strcat(got, ",");
    }
    assert_string_equal(got, want);
}

static void test_remote_member_invited_sends_and_reads(void **state)
{
    (void)state;
    assert_int_equal(op(0, d_create(KL_POLICY_ALL, 0)), BODY(GROUP_OP_ACCEPTED));
    notify_is("");
    /* u0 invites r0 (stockholm): admitted; stockholm is to be told. */
    assert_int_equal(op(0, d_on(KL_GOP_INVITE, &R[0])), BODY(GROUP_OP_ACCEPTED));
    assert_true(F->out.reply.body.group_op_accepted.admitted);
    notify_is("r0@stockholm.test,");
    /* The shadow user exists with the logged key. */
    uint64_t id = 0;
    assert_int_equal(kl_storage_shadow_user(F->st, R[0].addr, R[0].pk, 0, &id), 0);
    assert_true(id != 0);

    /* r0 sends through its relay: stored once, u0 pushed, r0 notified. */
    assert_int_equal(send_remote(&R[0], "hei fra stockholm"), BODY(SENT));
    assert_int_equal(F->out.reply.body.sent.seq, 1);
    assert_int_equal(F->out.n_push_users, 2); /* u0 and r0's shadow */
    notify_is("r0@stockholm.test,");
    /* r0 reads it back; with another key the same address is a stranger. */
    assert_int_equal(fetch_remote(&R[0], R[0].pk, 0), BODY(DELIVER));
    assert_int_equal(F->out.reply.body.deliver.n_entries, 1);
    assert_string_equal(F->out.reply.body.deliver.group, GADDR);
    assert_int_equal(fetch_remote(&R[0], R[1].pk, 0), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a member");
    /* group_list of the remote member lists the group; of a stranger: none. */
    assert_int_equal(list_remote(&R[0]), BODY(GROUP_LIST_RESULT));
    assert_int_equal(F->out.reply.body.group_list_result.n_groups, 1);
    assert_string_equal(F->out.reply.body.group_list_result.groups[0]->group, GADDR);
    assert_true(F->out.reply.body.group_list_result.groups[0]->member);
    assert_int_equal(list_remote(&R[1]), BODY(GROUP_LIST_RESULT));
    assert_int_equal(F->out.reply.body.group_list_result.n_groups, 0);
}

static void test_remote_rules(void **state)
{
    (void)state;
    assert_int_equal(op(0, d_create(KL_POLICY_ALL, 0)), BODY(GROUP_OP_ACCEPTED));
    /* A stranger on stockholm cannot send. */
    assert_int_equal(send_remote(&R[1], "slipp meg inn"), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a member of " GADDR);
    /* r1 asks to join (request), u0 approves: a member. */
    assert_int_equal(op(-2, d_kind(KL_GOP_REQUEST)), BODY(GROUP_OP_ACCEPTED));
    assert_false(F->out.reply.body.group_op_accepted.admitted);
    assert_int_equal(op(0, d_on(KL_GOP_APPROVE, &R[1])), BODY(GROUP_OP_ACCEPTED));
    assert_true(F->out.reply.body.group_op_accepted.admitted);
    assert_int_equal(send_remote(&R[1], "takk"), BODY(SENT));
    /* An op whose actor is not the proxied user is refused, like a local
     * one: r0's signed op sent in r1's name. */
    opbuf_t o = build(F->mirror, &R[0], d_kind(KL_GOP_REQUEST));
    Kollega__Relay__V1__GroupOp go = KOLLEGA__RELAY__V1__GROUP_OP__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    op_frame(&o, &fr, &go);
    assert_int_equal(remote_req(R[1].addr, R[1].pk, &fr), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "connected user");
    free(o.p);
    /* A remote caller may only address groups of this relay. */
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    kl_frame_t fs = KOLLEGA__RELAY__V1__FRAME__INIT;
    sd.to = "#erfa@riga.test";
    sd.body.data = (uint8_t *)"x";
    sd.body.len = 1;
    sd.group_index = 1;
    fs.body_case = BODY(SEND);
    fs.send = &sd;
    assert_int_equal(remote_req(R[1].addr, R[1].pk, &fs), BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), "not a group of this relay");
    /* A proxied send is held to this relay's body limit, as a local one. */
    uint8_t big[1001] = {0};
    sd.to = GADDR;
    sd.body.data = big;
    sd.body.len = sizeof big;
    assert_int_equal(remote_req(R[1].addr, R[1].pk, &fs), BODY(ERROR));
    expect_error(CODE(TOO_LARGE), "over this relay's limit");
    sd.body.len = 0;
    assert_int_equal(remote_req(R[1].addr, R[1].pk, &fs), BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), "non-empty body");
    /* Nothing but group requests is served to peers. */
    Kollega__Relay__V1__Lookup lk = KOLLEGA__RELAY__V1__LOOKUP__INIT;
    kl_frame_t fl = KOLLEGA__RELAY__V1__FRAME__INIT;
    lk.address = "u0@oslo.test";
    fl.body_case = BODY(LOOKUP);
    fl.lookup = &lk;
    assert_int_equal(remote_req(R[1].addr, R[1].pk, &fl), BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), "not a group request");
    /* Removed: r1 reads nothing more and its cursor is gone. */
    assert_int_equal(op(0, d_on(KL_GOP_REMOVE, &R[1])), BODY(GROUP_OP_ACCEPTED));
    notify_is("r1@stockholm.test,"); /* the removed member hears of it */
    assert_int_equal(fetch_remote(&R[1], R[1].pk, 0), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not a member");
}

/* The home relay vouches for its own users' keys: an invite naming one of
 * them under another key, or a user it does not have, is refused whoever
 * submits it (a local member, or a remote member through its relay). */
static void test_invite_names_local_user_by_its_key(void **state)
{
    (void)state;
    user_t fake_u1 = U[4], nobody = U[3];
    snprintf(fake_u1.addr, sizeof fake_u1.addr, "%s", U[1].addr);
    snprintf(nobody.addr, sizeof nobody.addr, "nobody@oslo.test");
    assert_int_equal(op(0, d_create(KL_POLICY_FACILITATORS, 0)), BODY(GROUP_OP_ACCEPTED));
    assert_int_equal(op(0, d_on(KL_GOP_INVITE, &R[0])), BODY(GROUP_OP_ACCEPTED));
    /* u0 (local) and r0 (proxied) try u1's address on another key. */
    assert_int_equal(op(0, d_on(KL_GOP_INVITE, &fake_u1)), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not the one they registered");
    assert_int_equal(op(-1, d_on(KL_GOP_INVITE, &fake_u1)), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "not the one they registered");
    assert_int_equal(op(-1, d_on(KL_GOP_INVITE, &nobody)), BODY(ERROR));
    expect_error(CODE(FORBIDDEN), "does not have");
    /* Nothing was stored: the rightful invite is the next op. */
    assert_int_equal(op(-1, d_on(KL_GOP_INVITE, &U[1])), BODY(GROUP_OP_ACCEPTED));
    assert_int_equal(kl_group_next_index(F->mirror), 3);
    /* Users of other relays are their relays' to vouch for (the clients
     * look them up): r1 on stockholm is taken as named. */
    assert_int_equal(op(0, d_on(KL_GOP_INVITE, &R[1])), BODY(GROUP_OP_ACCEPTED));
}

static void test_local_client_unknown_relay(void **state)
{
    (void)state;
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    sd.to = "#erfa@stockholm.test";
    sd.body.data = (uint8_t *)"x";
    sd.body.len = 1;
    sd.group_index = 1;
    fr.body_case = BODY(SEND);
    fr.send = &sd;
    assert_int_equal(req(0, &fr), BODY(ERROR));
    expect_error(CODE(UNAVAILABLE), "no federation peer for stockholm.test");
}

static void test_answers_relayed(void **state)
{
    (void)state;
    assert_true(kl_dispatch_group_answer_ok(BODY(SEND), BODY(SENT)));
    assert_true(kl_dispatch_group_answer_ok(BODY(SEND), BODY(ERROR)));
    assert_true(kl_dispatch_group_answer_ok(BODY(GROUP_OP), BODY(GROUP_OP_ACCEPTED)));
    assert_true(kl_dispatch_group_answer_ok(BODY(GROUP_FETCH), BODY(GROUP_LOG)));
    assert_true(kl_dispatch_group_answer_ok(BODY(FETCH), BODY(DELIVER)));
    assert_true(kl_dispatch_group_answer_ok(BODY(ACK), BODY(OK)));
    /* A peer cannot make us hand a client anything else. */
    assert_false(kl_dispatch_group_answer_ok(BODY(SEND), BODY(DELIVER)));
    assert_false(kl_dispatch_group_answer_ok(BODY(FETCH), BODY(PREKEY_BUNDLE)));
    assert_false(kl_dispatch_group_answer_ok(BODY(LOOKUP), BODY(LOOKUP_RESULT)));
}

static void test_shadow_users(void **state)
{
    (void)state;
    uint64_t id = 0, id2 = 0, again = 0;
    const uint8_t *k0 = R[0].pk, *k1 = R[1].pk;
    /* Lookup without create: none. */
    assert_int_equal(kl_storage_shadow_user(F->st, "r0@stockholm.test", k0, 0, &id), 0);
    assert_int_equal(id, 0);
    assert_int_equal(kl_storage_shadow_user(F->st, "r0@stockholm.test", k0, 1, &id), 0);
    assert_true(id != 0);
    assert_int_equal(kl_storage_shadow_user(F->st, "r0@stockholm.test", k0, 0, &again), 0);
    assert_int_equal(again, id);
    /* Another key: not this shadow, unless a log names it (create). */
    assert_int_equal(kl_storage_shadow_user(F->st, "r0@stockholm.test", k1, 0, &again), 0);
    assert_int_equal(again, 0);
    assert_int_equal(kl_storage_shadow_user(F->st, "r0@stockholm.test", k1, 1, &id2), 0);
    assert_int_equal(id2, id);
    assert_int_equal(kl_storage_shadow_user(F->st, "r0@stockholm.test", k0, 0, &again), 0);
    assert_int_equal(again, 0);
    /* A local handle is never a shadow. */
    assert_int_equal(kl_storage_shadow_user(F->st, "u0", k0, 1, &again), KL_EINVAL);
    /* Only shadows are listed as addresses. */
    uint64_t ids[3] = {F->users[0].id, id, F->users[1].id};
    char *a = NULL;
    size_t len = 0, n = 0;
    assert_int_equal(kl_storage_shadow_addresses(F->st, ids, 3, &a, &len, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(a, "r0@stockholm.test");
    assert_int_equal(len, strlen("r0@stockholm.test") + 1);
    free(a);
    assert_int_equal(kl_storage_shadow_addresses(F->st, ids, 1, &a, &len, &n), 0);
    assert_int_equal(n, 0);
    assert_null(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_remote_member_invited_sends_and_reads, setup,
                                        dfx_teardown),
        cmocka_unit_test_setup_teardown(test_remote_rules, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_invite_names_local_user_by_its_key, setup,
                                        dfx_teardown),
        cmocka_unit_test_setup_teardown(test_local_client_unknown_relay, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_answers_relayed, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_shadow_users, setup, dfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
