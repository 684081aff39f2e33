/* The client's defences against a dishonest relay or member in groups,
 * without a relay (fixture: client_group_fixture.h): a member's message
 * claiming another history refused for that author only, sending refused while
 * the log is invalid, dedupe by sender, display only after commit, several
 * members admitted by one op, and bounds on what the store keeps. */
#include "client_group_fixture.h"
#include "contacts.h"

/* A member's message claiming another history than ours (here: bob's log
 * differs from alice's at index 3) is not shown, and its author is
 * disputed, once; the group is not blocked for it: a claim is no proof. */
static void test_claimed_history_refused_for_its_author(void **state)
{
    log_t la, lb;
    got_t g;
    uint8_t *b;
    size_t bl;
    kl_grp_t x;
    int has = 0;
    (void)state;
    make_group(&la);
    make_group(&lb);
    /* Same first ops for both (bob's copy is alice's, re-applied). */
    for (size_t i = 0; i < la.n; i++) {
        free(lb.ops[i]);
        lb.ops[i] = malloc(la.len[i]);
        memcpy(lb.ops[i], la.ops[i], la.len[i]);
        lb.len[i] = la.len[i];
    }
    kl_group_free(lb.g);
    assert_int_equal(kl_group_new(&lb.g, GRP), 0);
    for (size_t i = 0; i < lb.n; i++)
        assert_int_equal(kl_group_apply(lb.g, lb.ops[i], lb.len[i], NULL, NULL), 0);
    log_op(&la, &P[0], desc(KL_GOP_INVITE, &P[3]));   /* alice sees dave invited */
    kl_group_opdesc_t d = desc(KL_GOP_SET_ROLE, &P[1]);
    d.role = KL_ROLE_FACILITATOR;
    log_op(&lb, &P[0], d);                             /* bob sees a role change */
    share(&la, &P[0]);
    share(&lb, &P[1]);
    share(&la, &P[2]);
    give_key(&P[0], &P[1]);
    give_key(&P[0], &P[2]);
    for (uint64_t seq = 1; seq <= 2; seq++) {
        seal(&P[0], "hvem leser?", &b, &bl);
        memset(&g, 0, sizeof g);
        kl_grp_rx_t c = deliver(&P[1], seq, b, bl, &g);
        assert_int_equal(c.stored, 0);
        assert_int_equal(c.refused, 1);
        assert_int_equal(g.n, 0);
        assert_int_equal(kl_store_group_dispute_get(P[1].cli.st, GRP, P[0].cli.me.pk, &has), 0);
        assert_int_equal(has, 1);
        kl_store_group_t row;
        assert_int_equal(kl_store_group_get(P[1].cli.st, GRP, &row), 0);
        assert_int_equal(row.fork_index, 0);
        assert_int_equal(row.cursor, seq);
        assert_int_equal(kl_grp_load(&P[1].cli, GRP, &x), 0);
        assert_false(kl_grp_blocked(&x));
        kl_grp_free(&x);
        /* carol, whose log is alice's, reads it and disputes nobody. */
        memset(&g, 0, sizeof g);
        assert_int_equal(deliver(&P[2], seq, b, bl, &g).stored, 1);
        assert_int_equal(kl_store_group_dispute_get(P[2].cli.st, GRP, P[0].cli.me.pk, &has), 0);
        assert_int_equal(has, 0);
        free(b);
    }
    log_free(&la);
    log_free(&lb);
}

/* A group's (or channel's) log never creates or changes a 1:1 pin: the
 * check reads only, and names a conflict with a pin to another key or a
 * flagged contact. */
static void test_log_key_never_pins(void **state)
{
    kl_contact_t c;
    int conflict = -1;
    (void)state;
    /* alice knows no "eve": nothing is written, no conflict. */
    assert_int_equal(kl_contacts_check_log_key(P[0].cli.st, "eve@oslo.test", P[3].cli.me.pk,
                                               &conflict), 0);
    assert_int_equal(conflict, 0);
    assert_int_equal(kl_store_contact_get(P[0].cli.st, "eve@oslo.test", &c), KL_ENOTFOUND);
    /* bob's pin agrees; dave's key under bob's address does not. */
    assert_int_equal(kl_contacts_check_log_key(P[0].cli.st, P[1].cli.me.address, P[1].cli.me.pk,
                                               &conflict), 0);
    assert_int_equal(conflict, 0);
    assert_int_equal(kl_contacts_check_log_key(P[0].cli.st, P[1].cli.me.address, P[3].cli.me.pk,
                                               &conflict), 0);
    assert_int_equal(conflict, 1);
    assert_int_equal(kl_store_contact_get(P[0].cli.st, P[1].cli.me.address, &c), 0);
    assert_memory_equal(c.key, P[1].cli.me.pk, 32);
    assert_int_equal(c.key_changed, 0);
    /* A flagged contact conflicts even with its pinned key. */
    c.key_changed = 1;
    assert_int_equal(kl_store_contact_put(P[0].cli.st, &c), 0);
    assert_int_equal(kl_contacts_check_log_key(P[0].cli.st, P[1].cli.me.address, P[1].cli.me.pk,
                                               &conflict), 0);
    assert_int_equal(conflict, 1);
}

static void test_invalid_log_blocks_sending(void **state)
{
    log_t l;
    kl_grp_t x;
    kl_message_t m;
    uint8_t *forged = NULL;
    size_t flen = 0;
    (void)state;
    make_group(&l);
    share(&l, &P[1]);
    kl_group_opdesc_t d = desc(KL_GOP_INVITE, &P[3]);
    assert_int_equal(kl_group_op_build(l.g, P[3].cli.me.sk, P[3].cli.me.pk, P[3].cli.me.address, 1,
                                       &d, &forged, &flen),
                     0);
    assert_int_equal(kl_store_begin(P[1].cli.st), 0);
    assert_int_equal(kl_store_slog_op_put(P[1].cli.st, GRP, l.n, forged, flen), 0);
    assert_int_equal(kl_store_commit(P[1].cli.st), 0);
    assert_int_equal(kl_grp_load(&P[1].cli, GRP, &x), 0);
    assert_true(x.invalid);
    assert_int_equal(kl_grp_send(&P[1].cli, NULL, &x, "hei", 3, &m), KL_ECRYPTO);
    kl_grp_free(&x);
    free(forged);
    log_free(&l);
}

/* Two members' messages with the same id are both kept. */
static void test_dedupe_by_sender(void **state)
{
    kl_message_t m;
    int added = 0;
    got_t g;
    (void)state;
    memset(&m, 0, sizeof m);
    kl_random(m.id, 16);
    snprintf(m.peer, sizeof m.peer, "%s", GRP);
    m.text = "x";
    m.text_len = 1;
    m.stored_at = m.sent_at = kl_now_ms();
    assert_int_equal(kl_store_begin(P[0].cli.st), 0);
    snprintf(m.sender, sizeof m.sender, "%s", P[1].cli.me.address);
    assert_int_equal(kl_store_message_add(P[0].cli.st, &m, &added), 0);
    assert_true(added);
    assert_int_equal(kl_store_message_add(P[0].cli.st, &m, &added), 0);
    assert_false(added); /* a real duplicate */
    snprintf(m.sender, sizeof m.sender, "%s", P[2].cli.me.address);
    assert_int_equal(kl_store_message_add(P[0].cli.st, &m, &added), 0);
    assert_true(added); /* carol reusing bob's id does not suppress either */
    /* 1:1 duplicates are still found. */
    snprintf(m.peer, sizeof m.peer, "%s", P[1].cli.me.address);
    m.sender[0] = '\0';
    assert_int_equal(kl_store_message_add(P[0].cli.st, &m, &added), 0);
    assert_true(added);
    assert_int_equal(kl_store_message_add(P[0].cli.st, &m, &added), 0);
    assert_false(added);
    assert_int_equal(kl_store_commit(P[0].cli.st), 0);
    memset(&g, 0, sizeof g);
    assert_int_equal(kl_store_message_each(P[0].cli.st, GRP, on_msg, &g), 0);
    assert_int_equal(g.n, 2);
}

/* on_message runs only after the commit: a second connection sees it. */
static int on_msg_committed(void *ud, const kl_message_t *m)
{
    got_t *g = ud;
    kl_store_t *other = NULL;
    got_t seen;
    (void)m;
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kl_store_open(P[1].path, NULL, NULL, &other), 0);
    assert_int_equal(kl_store_message_each(other, GRP, on_msg, &seen), 0);
    kl_store_close(other);
    g->n += seen.n;
    return 0;
}

static void test_shown_after_commit(void **state)
{
    log_t l;
    got_t g;
    uint8_t *b;
    size_t bl;
    kl_grp_t x;
    kl_sync_t s;
    kl_grp_rx_t c;
    (void)state;
    make_group(&l);
    for (int i = 0; i < 2; i++)
        share(&l, &P[i]);
    give_key(&P[0], &P[1]);
    seal(&P[0], "én gang", &b, &bl);
    memset(&g, 0, sizeof g);
    memset(&s, 0, sizeof s);
    s.on_message = on_msg_committed;
    s.ud = &g;
    assert_int_equal(kl_grp_load(&P[1].cli, GRP, &x), 0);
    memset(&c, 0, sizeof c);
    c.cli = &P[1].cli;
    c.s = &s;
    c.x = &x;
    assert_int_equal(kl_grp_entry(&c, 1, 1, b, bl), 0);
    assert_int_equal(c.stored, 1);
    assert_int_equal(g.n, 1); /* the message was committed when shown */
    kl_grp_free(&x);
    free(b);
    log_free(&l);
}

/* policy all -> facilitators admits carol and dave at one op: dave, the
 * second, learns he is a member too. */
static void test_several_admitted_at_once(void **state)
{
    log_t l;
    kl_grp_t x;
    (void)state;
    memset(&l, 0, sizeof l);
    assert_int_equal(kl_group_new(&l.g, GRP), 0);
    kl_group_opdesc_t d = desc(KL_GOP_CREATE, NULL);
    d.policy = KL_POLICY_ALL;
    log_op(&l, &P[0], d);
    log_op(&l, &P[0], desc(KL_GOP_INVITE, &P[1]));   /* alone: admitted */
    log_op(&l, &P[0], desc(KL_GOP_INVITE, &P[2]));   /* needs bob */
    log_op(&l, &P[0], desc(KL_GOP_INVITE, &P[3]));   /* needs bob */
    d = desc(KL_GOP_SET_POLICY, NULL);
    d.policy = KL_POLICY_FACILITATORS;
    log_op(&l, &P[0], d);
    share(&l, &P[3]);
    assert_int_equal(kl_grp_load(&P[3].cli, GRP, &x), 0);
    assert_int_equal(kl_group_role_of(x.g, P[3].cli.me.pk), KL_ROLE_MEMBER);
    assert_true(x.admitted);
    kl_grp_free(&x);
    log_free(&l);
}

static int count_key(void *ud, const uint8_t owner[32], uint64_t epoch, const uint8_t *ser,
                     size_t len)
{
    (void)owner;
    (void)epoch;
    (void)ser;
    (void)len;
    (*(int *)ud)++;
    return 0;
}

/* Bounds: pending entries, sender keys per owner, keys for unknown groups,
 * and everything forgotten after leaving. */
static void test_store_bounds(void **state)
{
    log_t l;
    uint64_t n = 0, dropped = 0, total = 0;
    uint8_t body[64];
    (void)state;
    make_group(&l);
    share(&l, &P[1]);
    memset(body, 7, sizeof body);
    assert_int_equal(kl_store_begin(P[1].cli.st), 0);
    for (uint64_t seq = 1; seq <= KL_GPENDING_MAX + 5; seq++) {
        assert_int_equal(kl_store_gpending_add(P[1].cli.st, GRP, seq, 1, body, sizeof body,
                                               &dropped),
                         0);
        total += dropped;
    }
    assert_int_equal(kl_store_commit(P[1].cli.st), 0);
    assert_int_equal(kl_store_gpending_count(P[1].cli.st, GRP, &n), 0);
    assert_int_equal(n, KL_GPENDING_MAX);
    assert_int_equal(total, 5);

    /* Ten keys of alice: the newest eight stay. */
    uint8_t dist[KL_SENDERKEY_DIST];
    uint32_t ids[10];
    for (int i = 0; i < 10; i++) {
        kl_senderkey_t *k = NULL;
        assert_int_equal(kl_senderkey_new(&k, (uint32_t)(100 + i)), 0);
        ids[i] = kl_senderkey_id(k);
        assert_int_equal(kl_senderkey_export(k, dist), 0);
        kl_senderkey_free(k);
        assert_int_equal(kl_store_begin(P[1].cli.st), 0);
        assert_int_equal(kl_grp_store_dist(P[1].cli.st, GRP, P[0].cli.me.pk, 0, dist, sizeof dist),
                         0);
        /* A group bob never saw: ignored. */
        assert_int_equal(kl_grp_store_dist(P[1].cli.st, "#other@oslo.test", P[0].cli.me.pk, 0,
                                           dist, sizeof dist),
                         0);
        assert_int_equal(kl_store_commit(P[1].cli.st), 0);
    }
    int have = 0;
    for (int i = 0; i < 10; i++) {
        int one = 0;
        assert_int_equal(kl_store_senderkey_each(P[1].cli.st, GRP, ids[i], count_key, &one), 0);
        assert_int_equal(one, i >= 2);
        have += one;
        one = 0;
        assert_int_equal(kl_store_senderkey_each(P[1].cli.st, "#other@oslo.test", ids[i],
                                                 count_key, &one),
                         0);
        assert_int_equal(one, 0);
    }
    assert_int_equal(have, KL_SK_KEEP);
    /* Gone from the group: keys and pending entries go. */
    assert_int_equal(kl_grp_forget(&P[1].cli, GRP), 0);
    have = 0;
    for (int i = 0; i < 10; i++)
        assert_int_equal(kl_store_senderkey_each(P[1].cli.st, GRP, ids[i], count_key, &have), 0);
    assert_int_equal(have, 0);
    assert_int_equal(kl_store_gpending_count(P[1].cli.st, GRP, &n), 0);
    assert_int_equal(n, 0);
    log_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_claimed_history_refused_for_its_author, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_key_never_pins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_log_blocks_sending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_by_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shown_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_admitted_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_bounds, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
