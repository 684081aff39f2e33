/* ERFA groups in the relay, hardened: ops with bogus signatures never
 * reach the storage thread; the validated state is cached (and survives
 * no failed job); a group's log and the groups one identity creates are
 * bounded; a message sent under a view of the log that misses a leave or
 * removal is refused; former members read the op log only up to their
 * exit; a shorter retention shortens what is stored. In-process, as
 * test_dispatch_group.c: kl_dispatch_frame, jobs on real sqlite storage,
 * kl_dispatch_complete. */
#include "group_fixture.h"

#include "dispatch_fixture.h"
#include "jobs/group_cache.h"

#define DAY 86400000ull

static int setup(void **state)
{
    if (fixture_setup(state) != 0)
        return -1;
    return dfx_open("/tmp/kl-ggroup-XXXXXX",
                    (dfx_limits_t){.max_body = 1000, .ttl_default_s = 30 * 86400,
                                   .max_bytes = 100000},
                    NU, U[0].pk, sizeof U[0]);
}

static int submit_c(int u, const opbuf_t *o, int commit)
{
    return req_group_op(u, o->p, o->len, commit);
}

/* Build by u against the mirror and submit; on acceptance apply to the
 * mirror. */
static int op(int u, kl_group_opdesc_t d)
{
    opbuf_t o = build(F->mirror, &U[u], d);
    int bc = submit_c(u, &o, 1);
    if (bc == BODY(GROUP_OP_ACCEPTED))
        apply_ok(F->mirror, &o);
    free(o.p);
    return bc;
}

/* A group message from u under the view group_index. */
static int send_at(int u, uint64_t group_index)
{
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    sd.to = GADDR;
    sd.body.data = (uint8_t *)"text";
    sd.body.len = 4;
    sd.group_index = group_index;
    fr.body_case = BODY(SEND);
    fr.send = &sd;
    return req(u, &fr);
}

static int send_now(int u)
{
    return send_at(u, kl_group_next_index(F->mirror));
}

static int gfetch(int u, uint64_t from)
{
    return req_group_fetch(u, GADDR, from);
}

/* u0 creates GADDR under FACILITATORS and invites u1..u(n-1). */
static void make_group(int n)
{
    F->mirror = group_new(GADDR);
    assert_int_equal(op(0, d_create(KL_POLICY_FACILITATORS, 0)), BODY(GROUP_OP_ACCEPTED));
    for (int i = 1; i < n; i++)
        assert_int_equal(op(0, d_on(KL_GOP_INVITE, &U[i])), BODY(GROUP_OP_ACCEPTED));
}

/* An op whose signature does not verify is answered on the network thread:
 * no job, so nothing of the group is loaded for it. */
static void test_bogus_signature_never_queued(void **state)
{
    (void)state;
    make_group(2);
    arena_t a = {.n = 0};
    Kollega__Group__V1__Op *dr = draft(F->mirror, &U[0], d_on(KL_GOP_INVITE, &U[5]), &a);
    opbuf_t forged = seal(dr, &U[1]);
    Kollega__Relay__V1__GroupOp go = KOLLEGA__RELAY__V1__GROUP_OP__INIT;
    kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
    go.signed_op.data = forged.p;
    go.signed_op.len = forged.len;
    fr.body_case = BODY(GROUP_OP);
    fr.group_op = &go;
    fr.id = 77;
    kl_dispatch_out_free(&F->out);
    assert_int_equal(kl_dispatch_frame(&F->cfg, &F->s[0], &fr, NOW, &F->out), 0);
    assert_null(F->out.job);
    assert_true(F->out.has_reply);
    expect_error(CODE(BAD_REQUEST), "signature does not verify");
    /* A stranger's bogus op at the next index: the same. */
    dr = draft(F->mirror, &U[9], d_kind(KL_GOP_REQUEST), &a);
    opbuf_t bogus = seal(dr, &U[8]);
    go.signed_op.data = bogus.p;
    go.signed_op.len = bogus.len;
    kl_dispatch_out_free(&F->out);
    assert_int_equal(kl_dispatch_frame(&F->cfg, &F->s[9], &fr, NOW, &F->out), 0);
    assert_null(F->out.job);
    expect_error(CODE(BAD_REQUEST), "signature");
    /* The genuine request is queued and accepted. */
    assert_int_equal(op(9, d_kind(KL_GOP_REQUEST)), BODY(GROUP_OP_ACCEPTED));
    free(forged.p);
    free(bogus.p);
    arena_release(&a);
}

/* Ops are applied to the cached state, not to a replay of the log; a job
 * that applied an op and was then rolled back leaves nothing stale. */
static void test_state_cached_and_never_stale(void **state)
{
    (void)state;
    uint64_t hits0, misses0, hits, misses;
    make_group(3);
    kl_gcache_stats(F->st, &hits0, &misses0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(op(0, d_policy(i % 2 ? KL_POLICY_ALL : KL_POLICY_MAJORITY)),
                         BODY(GROUP_OP_ACCEPTED));
    kl_gcache_stats(F->st, &hits, &misses);
    assert_true(misses - misses0 <= 1);
    assert_true(hits - hits0 >= 9);

    /* Invite u5 (admitted at once under FACILITATORS), but the batch is
     * lost: the cached state had u5 as a member; it must not be used. */
    assert_int_equal(op(0, d_policy(KL_POLICY_FACILITATORS)), BODY(GROUP_OP_ACCEPTED));
    opbuf_t lost = build(F->mirror, &U[0], d_on(KL_GOP_INVITE, &U[5]));
    assert_int_equal(submit_c(0, &lost, 0), BODY(ERROR));
    free(lost.p);
    /* A refused op changes nothing either. */
    assert_int_equal(op(1, d_on(KL_GOP_REMOVE, &U[0])), BODY(ERROR));
    /* The same invite again (a fresh signature) is accepted. */
    assert_int_equal(op(0, d_on(KL_GOP_INVITE, &U[5])), BODY(GROUP_OP_ACCEPTED));
    assert_int_equal(send_now(5), BODY(SENT));
    assert_int_equal(gfetch(1, 0), BODY(GROUP_LOG));
    uint8_t head[32];
    kl_group_head(F->mirror, head);
    assert_int_equal(F->out.reply.body.group_log.next_index, kl_group_next_index(F->mirror));
    assert_memory_equal(F->out.reply.body.group_log.head.data, head, 32);
}

static void test_log_and_create_caps(void **state)
{
    (void)state;
    F->cfg.group_max_ops = 5;
    F->cfg.groups_per_user = 2;
    make_group(3); /* ops 0-2 */
    assert_int_equal(op(0, d_retention(3)), BODY(GROUP_OP_ACCEPTED));
    assert_int_equal(op(0, d_retention(4)), BODY(GROUP_OP_ACCEPTED));
    assert_int_equal(op(0, d_retention(5)), BODY(ERROR));
    expect_error(CODE(QUOTA_EXCEEDED), "the group's log is full");
    assert_int_equal(kl_group_next_index(F->mirror), 5);
    /* Messages still flow in a group whose log is full. */
    assert_int_equal(send_now(1), BODY(SENT));

    /* u0 created GADDR; one more, then no more. Others are not affected. */
    const char *names[] = {"#b@oslo.test", "#c@oslo.test"};
    for (int i = 0; i < 2; i++) {
        kl_group_t *g = group_new(names[i]);
        opbuf_t c = build(g, &U[0], d_create(KL_POLICY_ALL, 0));
        assert_int_equal(submit_c(0, &c, 1), i == 0 ? BODY(GROUP_OP_ACCEPTED) : BODY(ERROR));
        if (i == 1)
            expect_error(CODE(QUOTA_EXCEEDED), "too many groups");
        free(c.p);
        kl_group_free(g);
    }
    kl_group_t *g = group_new("#c@oslo.test");
    opbuf_t c = build(g, &U[1], d_create(KL_POLICY_ALL, 0));
    assert_int_equal(submit_c(1, &c, 1), BODY(GROUP_OP_ACCEPTED));
    free(c.p);
    kl_group_free(g);
}

/* Send.group_index: required, not beyond the log, and not before the last
 * leave or removal. */
static void test_send_needs_current_view(void **state)
{
    (void)state;
    make_group(5); /* ops 0-4 */
    assert_int_equal(send_at(1, 0), BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), "group_index missing");
    assert_int_equal(send_at(1, 6), BODY(ERROR));
    expect_error(CODE(BAD_REQUEST), "beyond");
    assert_int_equal(send_at(1, 1), BODY(SENT)); /* no one left yet: any view */
    assert_int_equal(op(0, d_on(KL_GOP_REMOVE, &U[4])), BODY(GROUP_OP_ACCEPTED)); /* op 5 */
    assert_int_equal(send_at(1, 5), BODY(ERROR));
    expect_error(CODE(CONFLICT), "at op 5");
    assert_int_equal(send_at(1, 6), BODY(SENT));
    /* Ops that change no epoch do not outdate a view: a policy change, a
     * request and its refusal. */
    assert_int_equal(op(0, d_policy(KL_POLICY_ALL)), BODY(GROUP_OP_ACCEPTED));      /* 6 */
    assert_int_equal(op(9, d_kind(KL_GOP_REQUEST)), BODY(GROUP_OP_ACCEPTED));       /* 7 */
    assert_int_equal(op(0, d_on(KL_GOP_REMOVE, &U[9])), BODY(GROUP_OP_ACCEPTED));   /* 8 */
    assert_int_equal(send_at(2, 6), BODY(SENT));
    /* A leave does. */
    assert_int_equal(op(3, d_on(KL_GOP_LEAVE, NULL)), BODY(GROUP_OP_ACCEPTED));     /* 9 */
    assert_int_equal(send_at(2, 9), BODY(ERROR));
    expect_error(CODE(CONFLICT), "renew your sender key");
    assert_int_equal(send_at(2, 10), BODY(SENT));
}

/* A former member reads the ops up to its exit, nothing after. */
static void test_former_reads_until_exit(void **state)
{
    (void)state;
    make_group(3);                                                                   /* 0-2 */
    assert_int_equal(op(0, d_on(KL_GOP_REMOVE, &U[2])), BODY(GROUP_OP_ACCEPTED));   /* 3 */
    assert_int_equal(op(0, d_policy(KL_POLICY_ALL)), BODY(GROUP_OP_ACCEPTED));      /* 4 */
    assert_int_equal(op(7, d_kind(KL_GOP_REQUEST)), BODY(GROUP_OP_ACCEPTED));       /* 5 */
    assert_int_equal(op(0, d_on(KL_GOP_REMOVE, &U[7])), BODY(GROUP_OP_ACCEPTED));   /* 6 */
    assert_int_equal(op(1, d_on(KL_GOP_LEAVE, NULL)), BODY(GROUP_OP_ACCEPTED));     /* 7 */
    assert_int_equal(op(8, d_kind(KL_GOP_REQUEST)), BODY(GROUP_OP_ACCEPTED));       /* 8 */
    assert_int_equal(op(0, d_retention(2)), BODY(GROUP_OP_ACCEPTED));               /* 9 */
    struct {
        int user;
        uint64_t from;
        size_t n;
    } want[] = {
        {2, 0, 4}, {2, 3, 1}, {2, 4, 0}, /* removed member: up to its removal */
        {7, 0, 7}, {7, 6, 1},            /* refused candidate */
        {1, 0, 8}, {1, 8, 0},            /* left */
        {0, 0, 10}, {8, 0, 10},          /* member, candidate: everything */
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(gfetch(want[i].user, want[i].from), BODY(GROUP_LOG));
        const Kollega__Relay__V1__GroupLog *gl = &F->out.reply.body.group_log;
        if (gl->n_ops != want[i].n)
            fail_msg("u%d from %llu: %zu ops, expected %zu", want[i].user,
                     (unsigned long long)want[i].from, gl->n_ops, want[i].n);
        assert_false(gl->more);
        assert_int_equal(gl->next_index, 10);
    }
}

/* set_retention shortens the expiry of stored messages too (never
 * lengthens it); 0 changes nothing. */
static void test_retention_applies_to_stored(void **state)
{
    (void)state;
    uint64_t deleted = 0;
    int more = 0;
    make_group(2);
    assert_int_equal(send_now(0), BODY(SENT)); /* expires in 30 days (relay default) */
    assert_int_equal(send_now(1), BODY(SENT));
    assert_int_equal(op(0, d_retention(0)), BODY(GROUP_OP_ACCEPTED));
    assert_int_equal(kl_storage_expire(F->st, NOW + 2 * DAY, 100, &deleted, &more), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(op(0, d_retention(3)), BODY(GROUP_OP_ACCEPTED));
    assert_int_equal(send_now(0), BODY(SENT)); /* 3 days */
    assert_int_equal(op(0, d_retention(9)), BODY(GROUP_OP_ACCEPTED));
    assert_int_equal(kl_storage_expire(F->st, NOW + 3 * DAY - 1, 100, &deleted, &more), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(kl_storage_expire(F->st, NOW + 3 * DAY, 100, &deleted, &more), 0);
    assert_int_equal(deleted, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bogus_signature_never_queued, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_state_cached_and_never_stale, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_log_and_create_caps, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_send_needs_current_view, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_former_reads_until_exit, setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_retention_applies_to_stored, setup, dfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
