/* The client's group pieces without a relay: several client identities,
 * each with its own temporary store, share group ops and bodies directly.
 * Covers the validated local log (a forged op stops it), sender keys
 * travelling over the 1:1 sessions (sync.c stores them), group messages
 * decrypted with the right author, entries kept pending until their key
 * arrives (also behind more than a page of entries whose key never comes),
 * rotation after a removal (the removed member cannot read what
 * follows), keys from non-members ignored, and retention. */
#include "client_group_fixture.h"

static void test_address_and_validated_log(void **state)
{
    log_t l;
    kl_grp_t x;
    char out[KL_ADDR_MAX + 1];
    uint8_t *forged = NULL;
    size_t flen = 0;
    (void)state;
    assert_int_equal(kl_grp_address(&P[0].cli, "#erfa", out, sizeof out), 0);
    assert_string_equal(out, GRP);
    assert_int_equal(kl_grp_address(&P[0].cli, "#erfa@bergen.test", out, sizeof out), 0);
    assert_string_equal(out, "#erfa@bergen.test");
    assert_int_equal(kl_grp_address(&P[0].cli, "erfa", out, sizeof out), KL_EINVAL);
    assert_int_equal(kl_grp_address(&P[0].cli, "#Erfa", out, sizeof out), KL_EINVAL);

    make_group(&l);
    share(&l, &P[1]);
    assert_int_equal(kl_grp_load(&P[1].cli, GRP, &x), 0);
    assert_int_equal(kl_group_member_count(x.g), 3);
    assert_false(x.invalid);
    assert_true(x.admitted);
    assert_string_equal(x.invited_by, P[0].cli.me.address);
    kl_grp_free(&x);

    /* An op dave signed although he is no member ("a relay inserted him"):
     * the local log stops before it and dave never becomes a member. */
    kl_group_opdesc_t d = desc(KL_GOP_INVITE, &P[3]);
    assert_int_equal(kl_group_op_build(l.g, P[3].cli.me.sk, P[3].cli.me.pk, P[3].cli.me.address, 1,
                                       &d, &forged, &flen),
                     0);
    assert_int_equal(kl_store_begin(P[1].cli.st), 0);
    assert_int_equal(kl_store_slog_op_put(P[1].cli.st, GRP, l.n, forged, flen), 0);
    assert_int_equal(kl_store_commit(P[1].cli.st), 0);
    assert_int_equal(kl_grp_load(&P[1].cli, GRP, &x), 0);
    assert_true(x.invalid);
    assert_int_equal(kl_group_next_index(x.g), l.n);
    assert_int_equal(kl_group_role_of(x.g, P[3].cli.me.pk), KL_ROLE_NONE);
    kl_grp_free(&x);
    free(forged);
    log_free(&l);
}

static void test_messages_keys_and_pending(void **state)
{
    log_t l;
    got_t g;
    uint8_t *b1, *b2;
    size_t l1, l2;
    uint64_t n = 0;
    (void)state;
    make_group(&l);
    for (int i = 0; i < 3; i++)
        share(&l, &P[i]);
    uint8_t *kc = NULL;
    size_t klc = 0;
    give_key(&P[0], &P[1]);
    /* alice's key for carol leaves before her message, but reaches carol
     * only after it (carol fetched her inbox before it arrived). */
    key_body(&P[0], &P[2], &kc, &klc);
    seal(&P[0], "hei gruppa", &b1, &l1);
    /* The group message names no sender: bob finds alice by her key. */
    memset(&g, 0, sizeof g);
    kl_grp_rx_t c = deliver(&P[1], 1, b1, l1, &g);
    assert_int_equal(c.stored, 1);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.text, "hei gruppa");
    assert_string_equal(g.sender, P[0].cli.me.address);
    assert_string_equal(g.peer, GRP);
    /* Redelivery at or below the cursor is skipped: shown once. */
    c = deliver(&P[1], 1, b1, l1, &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(c.stored + c.pending_new + c.failed, 0);
    /* The author sees its own message in the log and skips it. */
    c = deliver(&P[0], 1, b1, l1, &g);
    assert_int_equal(c.stored + c.pending_new + c.failed, 0);

    /* carol has no key yet: kept pending, then read once the key comes. */
    memset(&g, 0, sizeof g);
    c = deliver(&P[2], 1, b1, l1, &g);
    assert_int_equal(c.pending_new, 1);
    assert_int_equal(g.n, 0);
    assert_int_equal(kl_store_gpending_count(P[2].cli.st, GRP, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(retry(&P[2], &g), 1);
    take_key(&P[2], kc, klc);
    assert_int_equal(retry(&P[2], &g), 0);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.text, "hei gruppa");

    /* A tampered body is counted as a failure, not shown. */
    seal(&P[0], "andre", &b2, &l2);
    b2[l2 / 2] ^= 1;
    memset(&g, 0, sizeof g);
    c = deliver(&P[1], 2, b2, l2, &g);
    assert_int_equal(c.failed, 1);
    assert_int_equal(g.n, 0);
    free(b1);
    free(b2);
    log_free(&l);
}

/* More than a page of entries whose key never comes (bob writes with a
 * key he hands no one) must not hide later entries whose key did arrive:
 * a retry walks all pending entries and shows those in seq order. */
static void test_pending_beyond_a_page_is_retried(void **state)
{
    enum { HIDDEN = 70 };
    log_t l;
    got_t g;
    uint8_t *b, *kc = NULL;
    size_t bl, klc = 0;
    char text[32];
    (void)state;
    make_group(&l);
    for (int i = 0; i < 3; i++)
        share(&l, &P[i]);
    memset(&g, 0, sizeof g);
    for (int i = 0; i < HIDDEN; i++) {
        snprintf(text, sizeof text, "skjult %d", i);
        seal(&P[1], text, &b, &bl);
        assert_int_equal(deliver(&P[2], (uint64_t)i + 1, b, bl, &g).pending_new, 1);
        free(b);
    }
    /* alice's key for carol arrives after alice's two messages. */
    key_body(&P[0], &P[2], &kc, &klc);
    seal(&P[0], "første", &b, &bl);
    assert_int_equal(deliver(&P[2], HIDDEN + 1, b, bl, &g).pending_new, 1);
    free(b);
    seal(&P[0], "andre", &b, &bl);
    assert_int_equal(deliver(&P[2], HIDDEN + 2, b, bl, &g).pending_new, 1);
    free(b);
    assert_int_equal(retry(&P[2], &g), HIDDEN + 2);
    assert_int_equal(g.n, 0);
    take_key(&P[2], kc, klc);
    assert_int_equal(retry(&P[2], &g), HIDDEN);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.text, "andre"); /* shown last: seq order */
    assert_string_equal(g.sender, P[0].cli.me.address);
    assert_int_equal(retry(&P[2], &g), HIDDEN);
    assert_int_equal(g.n, 2);
    log_free(&l);
}

static void test_removal_rotates_and_excludes(void **state)
{
    log_t l;
    got_t g;
    uint8_t *b1, *b2;
    size_t l1, l2;
    (void)state;
    make_group(&l);
    for (int i = 0; i < 3; i++)
        share(&l, &P[i]);
    uint32_t before = give_key(&P[0], &P[1]);
    assert_int_equal(give_key(&P[0], &P[2]), before);
    seal(&P[0], "før", &b1, &l1);
    memset(&g, 0, sizeof g);
    assert_int_equal(deliver(&P[2], 1, b1, l1, &g).stored, 1);

    /* alice removes carol: the epoch moves on and alice's next message
     * uses a new key that only bob receives. */
    log_op(&l, &P[0], desc(KL_GOP_REMOVE, &P[2]));
    for (int i = 0; i < 3; i++)
        share(&l, &P[i]);
    uint32_t after = give_key(&P[0], &P[1]);
    assert_int_not_equal(after, before);
    seal(&P[0], "etter", &b2, &l2);
    uint32_t kid = 0;
    assert_int_equal(kl_senderkey_msg_key_id(b2, l2, &kid), 0);
    assert_int_equal(kid, after);
    memset(&g, 0, sizeof g);
    assert_int_equal(deliver(&P[1], 2, b2, l2, &g).stored, 1);
    assert_string_equal(g.text, "etter");
    /* carol, handed the entry anyway (a relay giving her cursor back),
     * has no key for it: nothing is shown, it can only wait. */
    memset(&g, 0, sizeof g);
    kl_grp_rx_t c = deliver(&P[2], 2, b2, l2, &g);
    assert_int_equal(c.stored, 0);
    assert_int_equal(c.pending_new, 1);
    assert_int_equal(retry(&P[2], &g), 1);
    assert_int_equal(g.n, 0);
    free(b1);
    free(b2);
    log_free(&l);
}

static void test_keys_of_non_members_are_not_used(void **state)
{
    log_t l;
    got_t g;
    uint8_t *b;
    size_t bl;
    (void)state;
    make_group(&l);
    share(&l, &P[1]);
    share(&l, &P[3]); /* dave holds the log but is no member */
    /* dave hands bob a key for the group and writes with it. */
    give_key(&P[3], &P[1]);
    seal(&P[3], "jeg er med", &b, &bl);
    memset(&g, 0, sizeof g);
    kl_grp_rx_t c = deliver(&P[1], 1, b, bl, &g);
    assert_int_equal(c.stored, 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(c.pending_new, 1);
    free(b);
    log_free(&l);
}

static void test_retention_deletes_old_messages(void **state)
{
    log_t l;
    kl_message_t m;
    int added = 0;
    uint64_t now = kl_now_ms();
    (void)state;
    memset(&l, 0, sizeof l);
    assert_int_equal(kl_group_new(&l.g, GRP), 0);
    kl_group_opdesc_t d = desc(KL_GOP_CREATE, NULL);
    d.days = 2;
    log_op(&l, &P[0], d);
    share(&l, &P[0]);
    assert_int_equal(kl_store_begin(P[0].cli.st), 0);
    kl_store_group_t row;
    memset(&row, 0, sizeof row);
    snprintf(row.address, sizeof row.address, "%s", GRP);
    assert_int_equal(kl_store_group_put(P[0].cli.st, &row), 0);
    for (int i = 0; i < 3; i++) {
        memset(&m, 0, sizeof m);
        kl_random(m.id, 16);
        snprintf(m.peer, sizeof m.peer, "%s", i < 2 ? GRP : P[1].cli.me.address);
        snprintf(m.sender, sizeof m.sender, "%s", i < 2 ? P[1].cli.me.address : "");
        /* one group message three days old, one fresh; an old 1:1 one */
        m.stored_at = i == 1 ? now : now - 3 * 24 * 3600 * 1000ull;
        m.sent_at = m.stored_at;
        /* The old group message was decrypted late (stored today): the
         * relay's entry time decides. */
        if (i == 0) {
            m.relay_ts = m.stored_at;
            m.stored_at = now;
        }
        m.text = "x";
        m.text_len = 1;
        assert_int_equal(kl_store_message_add(P[0].cli.st, &m, &added), 0);
        assert_true(added);
    }
    assert_int_equal(kl_store_commit(P[0].cli.st), 0);
    assert_int_equal(kl_grp_retention_all(&P[0].cli), 0);
    got_t g;
    memset(&g, 0, sizeof g);
    assert_int_equal(kl_store_message_each(P[0].cli.st, GRP, on_msg, &g), 0);
    assert_int_equal(g.n, 1);
    memset(&g, 0, sizeof g);
    assert_int_equal(kl_store_message_each(P[0].cli.st, P[1].cli.me.address, on_msg, &g), 0);
    assert_int_equal(g.n, 1); /* 1:1 history has no retention */
    log_free(&l);
}

static void test_content_with_sender_key(void **state)
{
    kl_content_t c, back;
    uint8_t *pt = NULL;
    size_t cap = 0, len = 0;
    (void)state;
    memset(&c, 0, sizeof c);
    kl_random(c.id, 16);
    c.text = (char *)"";
    snprintf(c.to, sizeof c.to, "bob@oslo.test");
    c.has_dist = 1;
    snprintf(c.dist_group, sizeof c.dist_group, "%s", GRP);
    c.dist_epoch = 3;
    kl_random(c.dist, sizeof c.dist);
    assert_int_equal(kl_content_pack(&c, &pt, &cap, &len), 0);
    assert_int_equal(len % 256, 0);
    assert_int_equal(kl_content_unpack(pt, len, &back), 0);
    assert_true(back.has_dist);
    assert_string_equal(back.dist_group, GRP);
    assert_int_equal(back.dist_epoch, 3);
    assert_memory_equal(back.dist, c.dist, sizeof c.dist);
    kl_content_free(&back);
    kl_free_wipe(pt, cap);
    /* A key for something that is not a group is malformed. */
    snprintf(c.dist_group, sizeof c.dist_group, "bob@oslo.test");
    assert_int_equal(kl_content_pack(&c, &pt, &cap, &len), 0);
    assert_int_equal(kl_content_unpack(pt, len, &back), KL_EPROTO);
    kl_free_wipe(pt, cap);
}

/* A relay that shows bob another op at index 3 than alice: alice's message
 * names her head at index 4, bob's differs: bob warns, and gives no keys
 * and sends nothing in that group from then on. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_address_and_validated_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_keys_and_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_beyond_a_page_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removal_rotates_and_excludes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_of_non_members_are_not_used, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_deletes_old_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_with_sender_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
