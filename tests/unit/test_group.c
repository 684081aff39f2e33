/* Group governance rules (include/kollega/group.h): admission under each
 * policy, approvals, remove, leave and the last facilitator, roles, policy
 * and retention, the epoch, and the events. Every refusal is checked to
 * leave every query answering as before (group_fixture.h). The log's
 * integrity (signatures, chain, decoding, limits) is test_group_log.c. */
#include "group_fixture.h"

static void test_new_and_empty_state(void **state)
{
    (void)state;
    kl_group_t *g = NULL;
    uint8_t head[32], zeros[32] = {0};
    static const char *bad[] = {"erfa@oslo.test", "#Erfa@oslo.test", "#erfa", "#@oslo.test",
                                "", "#erfa@oslo.test@x", "##erfa@oslo.test"};

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(kl_group_new(&g, bad[i]), KL_EINVAL);
        assert_null(g);
    }
    assert_int_equal(kl_group_new(&g, NULL), KL_EINVAL);
    assert_int_equal(kl_group_new(NULL, GADDR), KL_EINVAL);

    g = group_new(GADDR);
    assert_string_equal(kl_group_address(g), GADDR);
    assert_int_equal(kl_group_next_index(g), 0);
    kl_group_head(g, head);
    assert_memory_equal(head, zeros, 32);
    assert_int_equal(kl_group_closed(g), 0);
    assert_int_equal(kl_group_epoch(g), 0);
    assert_int_equal(kl_group_member_count(g), 0);
    assert_int_equal(kl_group_candidate_count(g), 0);
    assert_int_equal(kl_group_role_of(g, U[0].pk), KL_ROLE_NONE);
    kl_group_free(g);
    kl_group_free(NULL);
}

static void test_create(void **state)
{
    (void)state;
    kl_group_t *g = group_new(GADDR);
    kl_group_member_t m;

    /* Index 0 must be create. */
    act_refused(g, &U[1], d_kind(KL_GOP_REQUEST), KL_GV_CHAIN);
    act_refused(g, &U[0], d_policy(KL_POLICY_ALL), KL_GV_CHAIN);

    kl_group_event_t ev = act(g, &U[0], d_create(KL_POLICY_MAJORITY, 14));
    assert_int_equal(ev.kind, KL_GOP_CREATE);
    assert_memory_equal(ev.actor, U[0].pk, 32);
    assert_string_equal(ev.actor_address, U[0].addr);
    assert_int_equal(ev.admitted, 0);
    assert_int_equal(ev.epoch_changed, 0);
    assert_int_equal(kl_group_policy(g), KL_POLICY_MAJORITY);
    assert_int_equal(kl_group_retention_days(g), 14);
    assert_int_equal(kl_group_member_count(g), 1);
    assert_int_equal(kl_group_member_at(g, 0, &m), 0);
    assert_memory_equal(m.key, U[0].pk, 32);
    assert_string_equal(m.address, U[0].addr);
    assert_int_equal(m.role, KL_ROLE_FACILITATOR);
    assert_int_equal(kl_group_role_of(g, U[0].pk), KL_ROLE_FACILITATOR);

    /* Create only at index 0, by anyone. */
    act_refused(g, &U[0], d_create(KL_POLICY_ALL, 0), KL_GV_CHAIN);
    act_refused(g, &U[1], d_create(KL_POLICY_ALL, 0), KL_GV_CHAIN);
    kl_group_free(g);
}

/* A request built from what the relay tells an outsider (index of the next
 * op and hash of the last) is the same op kl_group_op_build makes from the
 * state: same bytes, and it applies. Without prev past index 0: refused. */
static void test_build_at_for_outsiders(void **state)
{
    (void)state;
    kl_group_t *g = group_of(3, KL_POLICY_ALL);
    kl_group_opdesc_t d = d_kind(KL_GOP_REQUEST);
    uint8_t head[32], *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    kl_group_head(g, head);
    assert_int_equal(kl_group_op_build(g, U[6].sk, U[6].pk, U[6].addr, TS, &d, &a, &alen), 0);
    assert_int_equal(kl_group_op_build_at(GADDR, kl_group_next_index(g), head, U[6].sk, U[6].pk,
                                          U[6].addr, TS, &d, &b, &blen),
                     0);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen); /* Ed25519 signatures are deterministic */
    opbuf_t o = {b, blen};
    kl_group_event_t ev = apply_ok(g, &o);
    assert_int_equal(ev.kind, KL_GOP_REQUEST);
    free(a);
    free(b);
    b = (uint8_t *)"x";
    assert_int_equal(kl_group_op_build_at(GADDR, 3, NULL, U[6].sk, U[6].pk, U[6].addr, TS, &d,
                                          &b, &blen),
                     KL_EINVAL);
    assert_null(b);
    kl_group_free(g);
}

/* ALL with 5 members: admitted exactly at the 5th approval, not before. */
static void test_policy_all_five_members(void **state)
{
    (void)state;
    kl_group_t *g = group_of(5, KL_POLICY_ALL);
    const user_t *cand = &U[6];
    kl_group_candidate_t c;

    kl_group_event_t ev = act(g, cand, d_kind(KL_GOP_REQUEST));
    assert_int_equal(ev.kind, KL_GOP_REQUEST);
    assert_memory_equal(ev.target, cand->pk, 32);
    assert_string_equal(ev.target_address, cand->addr);
    assert_false(ev.admitted);
    c = cand_of(g, cand->pk);
    assert_string_equal(c.address, cand->addr);
    assert_int_equal(c.approvals, 0);
    assert_int_equal(c.missing, 5);
    for (int i = 0; i < 5; i++) {
        ev = act(g, &U[i], d_on(KL_GOP_APPROVE, cand));
        assert_int_equal(ev.kind, KL_GOP_APPROVE);
        assert_memory_equal(ev.target, cand->pk, 32);
        if (i < 4) {
            assert_false(ev.admitted);
            assert_int_equal(kl_group_role_of(g, cand->pk), KL_ROLE_NONE);
            c = cand_of(g, cand->pk);
            assert_int_equal(c.approvals, (size_t)i + 1);
            assert_int_equal(c.missing, (size_t)(4 - i));
            assert_int_equal(kl_group_has_approved(g, cand->pk, U[i].pk), 1);
            assert_int_equal(kl_group_has_approved(g, cand->pk, U[i + 1].pk), 0);
        }
    }
    assert_true(ev.admitted);
    assert_memory_equal(ev.admitted_key, cand->pk, 32);
    assert_int_equal(kl_group_role_of(g, cand->pk), KL_ROLE_MEMBER);
    assert_int_equal(kl_group_member_count(g), 6);
    assert_int_equal(kl_group_candidate_count(g), 0);

    /* An invite counts as the inviter's approval: 1 of 6. */
    ev = act(g, &U[3], d_on(KL_GOP_INVITE, &U[7]));
    assert_false(ev.admitted);
    assert_string_equal(ev.target_address, U[7].addr);
    c = cand_of(g, U[7].pk);
    assert_int_equal(c.approvals, 1);
    assert_int_equal(c.missing, 5);
    assert_int_equal(kl_group_has_approved(g, U[7].pk, U[3].pk), 1);
    kl_group_free(g);
}

/* MAJORITY: admitted at the approval that makes approvals * 2 > members. */
static void test_policy_majority(void **state)
{
    (void)state;
    kl_group_t *g = group_of(4, KL_POLICY_MAJORITY);
    kl_group_event_t ev;

    /* 4 members need 3. */
    ev = act(g, &U[1], d_on(KL_GOP_INVITE, &U[5]));
    assert_false(ev.admitted);
    assert_int_equal(cand_of(g, U[5].pk).missing, 2);
    ev = act(g, &U[2], d_on(KL_GOP_APPROVE, &U[5]));
    assert_false(ev.admitted);
    assert_int_equal(cand_of(g, U[5].pk).missing, 1);
    ev = act(g, &U[3], d_on(KL_GOP_APPROVE, &U[5]));
    assert_true(ev.admitted);
    assert_memory_equal(ev.admitted_key, U[5].pk, 32);

    /* 5 members need 3 as well; 6 would need 4. */
    act(g, &U[6], d_kind(KL_GOP_REQUEST));
    assert_int_equal(cand_of(g, U[6].pk).missing, 3);
    assert_false(act(g, &U[5], d_on(KL_GOP_APPROVE, &U[6])).admitted);
    assert_false(act(g, &U[0], d_on(KL_GOP_APPROVE, &U[6])).admitted);
    assert_int_equal(cand_of(g, U[6].pk).missing, 1);
    assert_true(act(g, &U[1], d_on(KL_GOP_APPROVE, &U[6])).admitted);
    act(g, &U[7], d_kind(KL_GOP_REQUEST));
    assert_int_equal(cand_of(g, U[7].pk).missing, 4);
    kl_group_free(g);
}

/* FACILITATORS: the first approval by a facilitator admits. */
static void test_policy_facilitators(void **state)
{
    (void)state;
    kl_group_t *g = group_of(4, KL_POLICY_FACILITATORS);
    kl_group_event_t ev;

    act(g, &U[0], d_role(&U[1], KL_ROLE_FACILITATOR));
    ev = act(g, &U[2], d_on(KL_GOP_INVITE, &U[5]));
    assert_false(ev.admitted);
    assert_int_equal(cand_of(g, U[5].pk).missing, 1);
    ev = act(g, &U[3], d_on(KL_GOP_APPROVE, &U[5]));
    assert_false(ev.admitted);
    assert_int_equal(cand_of(g, U[5].pk).approvals, 2);
    assert_int_equal(cand_of(g, U[5].pk).missing, 1);
    ev = act(g, &U[1], d_on(KL_GOP_APPROVE, &U[5]));
    assert_true(ev.admitted);
    assert_int_equal(kl_group_role_of(g, U[5].pk), KL_ROLE_MEMBER);

    /* A facilitator's invite admits at once; a request never does. */
    ev = act(g, &U[0], d_on(KL_GOP_INVITE, &U[6]));
    assert_true(ev.admitted);
    assert_memory_equal(ev.admitted_key, U[6].pk, 32);
    ev = act(g, &U[7], d_kind(KL_GOP_REQUEST));
    assert_false(ev.admitted);
    assert_int_equal(cand_of(g, U[7].pk).missing, 1);
    kl_group_free(g);
}

static void test_approve_and_invite_refusals(void **state)
{
    (void)state;
    kl_group_t *g = group_of(3, KL_POLICY_ALL);

    act(g, &U[1], d_on(KL_GOP_INVITE, &U[5]));
    act(g, &U[6], d_kind(KL_GOP_REQUEST));
    /* Approval already given: by the invite, or by an approve. */
    act_refused(g, &U[1], d_on(KL_GOP_APPROVE, &U[5]), KL_GV_ALREADY_APPROVED);
    act(g, &U[2], d_on(KL_GOP_APPROVE, &U[6]));
    act_refused(g, &U[2], d_on(KL_GOP_APPROVE, &U[6]), KL_GV_ALREADY_APPROVED);
    /* Non-members (outsiders and candidates) cannot approve. */
    act_refused(g, &U[7], d_on(KL_GOP_APPROVE, &U[5]), KL_GV_NOT_MEMBER);
    act_refused(g, &U[5], d_on(KL_GOP_APPROVE, &U[5]), KL_GV_NOT_MEMBER);
    act_refused(g, &U[5], d_on(KL_GOP_APPROVE, &U[6]), KL_GV_NOT_MEMBER);
    /* Approving someone who is not a candidate. */
    act_refused(g, &U[0], d_on(KL_GOP_APPROVE, &U[7]), KL_GV_NOT_CANDIDATE);
    act_refused(g, &U[0], d_on(KL_GOP_APPROVE, &U[1]), KL_GV_NOT_CANDIDATE);
    /* Invite and request: members and candidates are refused. */
    act_refused(g, &U[0], d_on(KL_GOP_INVITE, &U[2]), KL_GV_ALREADY_MEMBER);
    act_refused(g, &U[0], d_on(KL_GOP_INVITE, &U[0]), KL_GV_ALREADY_MEMBER);
    act_refused(g, &U[0], d_on(KL_GOP_INVITE, &U[6]), KL_GV_ALREADY_CANDIDATE);
    act_refused(g, &U[1], d_kind(KL_GOP_REQUEST), KL_GV_ALREADY_MEMBER);
    act_refused(g, &U[5], d_kind(KL_GOP_REQUEST), KL_GV_ALREADY_CANDIDATE);
    act_refused(g, &U[7], d_on(KL_GOP_INVITE, &U[8]), KL_GV_NOT_MEMBER);
    kl_group_free(g);
}

/* group.h: an address appears at most once among members and candidates.
 * Mallory (a member) cannot put a member's or a candidate's address on
 * her own key (or any other), by invite or by request; once the address's
 * owner has left, the address is free again (a new key after a reinstall). */
static void test_address_at_most_once(void **state)
{
    (void)state;
    kl_group_t *g = group_of(3, KL_POLICY_ALL);
    user_t mallory_as_u1 = U[9], stranger_as_u5 = U[10], u6_again = U[11];

    snprintf(mallory_as_u1.addr, sizeof mallory_as_u1.addr, "%s", U[1].addr);
    snprintf(stranger_as_u5.addr, sizeof stranger_as_u5.addr, "%s", U[5].addr);
    snprintf(u6_again.addr, sizeof u6_again.addr, "%s", U[6].addr);
    /* A member's address under another key: invite and request. */
    act_refused(g, &U[2], d_on(KL_GOP_INVITE, &mallory_as_u1), KL_GV_ADDRESS_TAKEN);
    act_refused(g, &mallory_as_u1, d_kind(KL_GOP_REQUEST), KL_GV_ADDRESS_TAKEN);
    /* A candidate's address under another key. */
    act(g, &U[1], d_on(KL_GOP_INVITE, &U[5]));
    act_refused(g, &U[2], d_on(KL_GOP_INVITE, &stranger_as_u5), KL_GV_ADDRESS_TAKEN);
    act_refused(g, &stranger_as_u5, d_kind(KL_GOP_REQUEST), KL_GV_ADDRESS_TAKEN);
    act(g, &U[6], d_kind(KL_GOP_REQUEST));
    act_refused(g, &U[0], d_on(KL_GOP_INVITE, &u6_again), KL_GV_ADDRESS_TAKEN);
    /* The same key stays ALREADY_*: that check comes first. */
    act_refused(g, &U[0], d_on(KL_GOP_INVITE, &U[6]), KL_GV_ALREADY_CANDIDATE);
    /* After u1 left, its address may come back under a new key. */
    act(g, &U[1], d_kind(KL_GOP_LEAVE));
    kl_group_event_t ev = act(g, &U[2], d_on(KL_GOP_INVITE, &mallory_as_u1));
    assert_int_equal(ev.kind, KL_GOP_INVITE);
    assert_string_equal(ev.target_address, U[1].addr);
    kl_group_free(g);
}

/* Membership and epoch at a view of the log (group.h): a message written
 * with next_index i is its author's if it was a member after op i - 1. */
static void test_membership_history(void **state)
{
    (void)state;
    kl_group_t *g = group_of(3, KL_POLICY_FACILITATORS); /* ops 0, 1 (u1), 2 (u2) */
    kl_group_member_t m;
    uint64_t e = 99;

    assert_int_equal(kl_group_member_at_index(g, U[1].pk, 1, NULL), 0);
    assert_int_equal(kl_group_member_at_index(g, U[1].pk, 2, &m), 1);
    assert_string_equal(m.address, U[1].addr);
    assert_int_equal(kl_group_member_at_index(g, U[0].pk, 1, NULL), 1);
    assert_int_equal(kl_group_member_at_index(g, U[0].pk, 0, NULL), 0);
    assert_int_equal(kl_group_member_at_index(g, U[0].pk, 4, NULL), 0); /* beyond the log */
    act(g, &U[1], d_kind(KL_GOP_LEAVE));                  /* op 3 */
    act(g, &U[0], d_on(KL_GOP_REMOVE, &U[2]));            /* op 4 */
    assert_int_equal(kl_group_member_at_index(g, U[1].pk, 3, NULL), 1); /* its farewell */
    assert_int_equal(kl_group_member_at_index(g, U[1].pk, 4, NULL), 0);
    assert_int_equal(kl_group_member_at_index(g, U[2].pk, 4, &m), 1);
    assert_string_equal(m.address, U[2].addr);
    assert_int_equal(m.role, KL_ROLE_MEMBER);
    assert_int_equal(kl_group_member_at_index(g, U[2].pk, 5, NULL), 0);
    assert_true(kl_group_was_member(g, U[1].pk, NULL) && kl_group_was_member(g, U[2].pk, NULL));
    assert_false(kl_group_was_member(g, U[3].pk, NULL));
    assert_int_equal(kl_group_epoch_at(g, 3, &e), 0);
    assert_int_equal(e, 0);
    assert_int_equal(kl_group_epoch_at(g, 4, &e), 0);
    assert_int_equal(e, 1);
    assert_int_equal(kl_group_epoch_at(g, 5, &e), 0);
    assert_int_equal(e, 2);
    assert_int_equal(kl_group_epoch_at(g, 6, &e), KL_ENOTFOUND);
    assert_int_equal(kl_group_epoch_at(g, 0, &e), KL_ENOTFOUND);
    /* u1 comes back (op 5): a second spell, from view 6. */
    act(g, &U[0], d_on(KL_GOP_INVITE, &U[1]));
    assert_int_equal(kl_group_member_at_index(g, U[1].pk, 5, NULL), 0);
    assert_int_equal(kl_group_member_at_index(g, U[1].pk, 6, NULL), 1);
    assert_int_equal(kl_group_member_at_index(g, U[1].pk, 3, NULL), 1);
    /* Bounded: after KL_GROUP_MAX_DEPARTED more departures the first
     * spells are forgotten, and so are the epochs of those views. */
    for (int i = 0; i < KL_GROUP_MAX_DEPARTED; i++) {
        act(g, &U[0], d_on(KL_GOP_INVITE, &U[5]));
        act(g, &U[5], d_kind(KL_GOP_LEAVE));
    }
    assert_int_equal(kl_group_member_at_index(g, U[2].pk, 4, NULL), 0);
    assert_false(kl_group_was_member(g, U[2].pk, NULL));
    assert_int_equal(kl_group_epoch_at(g, 4, &e), KL_ENOTFOUND);
    uint64_t next = kl_group_next_index(g);
    assert_int_equal(kl_group_epoch_at(g, next, &e), 0);
    assert_int_equal(e, kl_group_epoch(g));
    assert_int_equal(kl_group_member_at_index(g, U[5].pk, next - 1, NULL), 1);
    kl_group_free(g);
}

static void test_remove(void **state)
{
    (void)state;
    kl_group_t *g = group_of(4, KL_POLICY_ALL);
    kl_group_event_t ev;

    act(g, &U[5], d_kind(KL_GOP_REQUEST));
    /* Only a facilitator removes. */
    act_refused(g, &U[1], d_on(KL_GOP_REMOVE, &U[2]), KL_GV_NOT_FACILITATOR);
    act_refused(g, &U[1], d_on(KL_GOP_REMOVE, &U[5]), KL_GV_NOT_FACILITATOR);
    act_refused(g, &U[7], d_on(KL_GOP_REMOVE, &U[2]), KL_GV_NOT_MEMBER);
    /* Not a member nor a candidate; oneself (that is a leave). */
    act_refused(g, &U[0], d_on(KL_GOP_REMOVE, &U[7]), KL_GV_NOT_MEMBER);
    act_refused(g, &U[0], d_on(KL_GOP_REMOVE, &U[0]), KL_GV_MALFORMED);

    ev = act(g, &U[0], d_on(KL_GOP_REMOVE, &U[2]));
    assert_int_equal(ev.kind, KL_GOP_REMOVE);
    assert_memory_equal(ev.target, U[2].pk, 32);
    assert_string_equal(ev.target_address, U[2].addr);
    assert_true(ev.epoch_changed);
    assert_int_equal(kl_group_epoch(g), 1);
    assert_int_equal(kl_group_role_of(g, U[2].pk), KL_ROLE_NONE);
    assert_int_equal(kl_group_member_count(g), 3);
    /* The removed member can do nothing a member does. */
    act_refused(g, &U[2], d_on(KL_GOP_APPROVE, &U[5]), KL_GV_NOT_MEMBER);
    act_refused(g, &U[2], d_kind(KL_GOP_LEAVE), KL_GV_NOT_MEMBER);

    /* Refusing a request: the candidate goes, the epoch stays. */
    ev = act(g, &U[0], d_on(KL_GOP_REMOVE, &U[5]));
    assert_false(ev.epoch_changed);
    assert_int_equal(kl_group_epoch(g), 1);
    assert_int_equal(kl_group_candidate_count(g), 0);
    /* It may ask again. */
    act(g, &U[5], d_kind(KL_GOP_REQUEST));
    assert_int_equal(cand_of(g, U[5].pk).approvals, 0);

    /* A facilitator may remove another facilitator. */
    act(g, &U[0], d_role(&U[1], KL_ROLE_FACILITATOR));
    act(g, &U[1], d_on(KL_GOP_REMOVE, &U[0]));
    assert_int_equal(kl_group_role_of(g, U[0].pk), KL_ROLE_NONE);
    assert_int_equal(kl_group_epoch(g), 2);
    kl_group_free(g);
}

static void test_last_facilitator(void **state)
{
    (void)state;
    kl_group_t *g = group_of(3, KL_POLICY_ALL);
    kl_group_event_t ev;

    /* U0 is the only facilitator. */
    act_refused(g, &U[0], d_kind(KL_GOP_LEAVE), KL_GV_SUCCESSOR);
    act_refused(g, &U[0], d_on(KL_GOP_LEAVE, &U[7]), KL_GV_SUCCESSOR);
    act_refused(g, &U[0], d_on(KL_GOP_LEAVE, &U[0]), KL_GV_SUCCESSOR);
    act_refused(g, &U[0], d_role(&U[0], KL_ROLE_MEMBER), KL_GV_LAST_FACILITATOR);
    act_refused(g, &U[0], d_on(KL_GOP_REMOVE, &U[0]), KL_GV_MALFORMED);
    /* Naming a successor promotes: a plain member may not. */
    act_refused(g, &U[1], d_on(KL_GOP_LEAVE, &U[2]), KL_GV_NOT_FACILITATOR);
    act(g, &U[3], d_kind(KL_GOP_REQUEST));
    act_refused(g, &U[0], d_on(KL_GOP_LEAVE, &U[3]), KL_GV_SUCCESSOR); /* a candidate */

    ev = act(g, &U[0], d_on(KL_GOP_LEAVE, &U[2]));
    assert_int_equal(ev.kind, KL_GOP_LEAVE);
    assert_memory_equal(ev.target, U[2].pk, 32);
    assert_string_equal(ev.target_address, U[2].addr);
    assert_true(ev.epoch_changed);
    assert_int_equal(kl_group_role_of(g, U[0].pk), KL_ROLE_NONE);
    assert_int_equal(kl_group_role_of(g, U[2].pk), KL_ROLE_FACILITATOR);
    assert_int_equal(kl_group_epoch(g), 1);

    /* With two facilitators either may step down or leave plainly. */
    act(g, &U[2], d_role(&U[1], KL_ROLE_FACILITATOR));
    act(g, &U[2], d_role(&U[2], KL_ROLE_MEMBER));
    assert_int_equal(kl_group_role_of(g, U[2].pk), KL_ROLE_MEMBER);
    act_refused(g, &U[1], d_role(&U[1], KL_ROLE_MEMBER), KL_GV_LAST_FACILITATOR);
    act(g, &U[1], d_role(&U[2], KL_ROLE_FACILITATOR));
    act(g, &U[2], d_kind(KL_GOP_LEAVE));
    assert_int_equal(kl_group_role_of(g, U[1].pk), KL_ROLE_FACILITATOR);
    assert_int_equal(kl_group_epoch(g), 2);
    /* A plain member's leave needs nothing. */
    assert_true(act(g, &U[1], d_on(KL_GOP_APPROVE, &U[3])).admitted);
    act(g, &U[1], d_on(KL_GOP_INVITE, &U[4]));
    assert_true(act(g, &U[3], d_on(KL_GOP_APPROVE, &U[4])).admitted);
    assert_int_equal(kl_group_member_count(g), 3);
    act(g, &U[4], d_kind(KL_GOP_LEAVE));
    assert_int_equal(kl_group_epoch(g), 3);
    kl_group_free(g);
}

static void test_leave_of_last_member_closes(void **state)
{
    (void)state;
    kl_group_t *g = group_of(1, KL_POLICY_ALL);

    act(g, &U[0], d_on(KL_GOP_INVITE, &U[1])); /* 1 of 1: admitted */
    act(g, &U[2], d_kind(KL_GOP_REQUEST));
    act(g, &U[0], d_on(KL_GOP_LEAVE, &U[1]));
    assert_int_equal(kl_group_closed(g), 0);
    kl_group_event_t ev = act(g, &U[1], d_kind(KL_GOP_LEAVE));
    assert_true(ev.epoch_changed);
    assert_int_equal(kl_group_closed(g), 1);
    assert_int_equal(kl_group_member_count(g), 0);
    assert_int_equal(kl_group_candidate_count(g), 0);
    assert_int_equal(kl_group_epoch(g), 2);
    /* Nothing is valid any more, not even a new create. */
    act_refused(g, &U[2], d_kind(KL_GOP_REQUEST), KL_GV_CLOSED);
    act_refused(g, &U[1], d_kind(KL_GOP_REQUEST), KL_GV_CLOSED);
    act_refused(g, &U[0], d_create(KL_POLICY_ALL, 0), KL_GV_CLOSED);
    kl_group_free(g);
}

/* Approvals by members who left or were removed stop counting, and a new
 * member who reuses their place does not inherit them. */
static void test_approvals_of_departed_members(void **state)
{
    (void)state;
    kl_group_t *g = group_of(3, KL_POLICY_ALL);
    kl_group_candidate_t c;

    act(g, &U[5], d_kind(KL_GOP_REQUEST));
    act(g, &U[1], d_on(KL_GOP_APPROVE, &U[5]));
    act(g, &U[2], d_on(KL_GOP_APPROVE, &U[5]));
    c = cand_of(g, U[5].pk);
    assert_int_equal(c.approvals, 2);
    assert_int_equal(c.missing, 1);
    act(g, &U[0], d_on(KL_GOP_REMOVE, &U[1]));
    c = cand_of(g, U[5].pk);
    assert_int_equal(c.approvals, 1);
    assert_int_equal(c.missing, 1);
    assert_int_equal(kl_group_has_approved(g, U[5].pk, U[1].pk), 0);
    act(g, &U[2], d_kind(KL_GOP_LEAVE));
    c = cand_of(g, U[5].pk);
    assert_int_equal(c.approvals, 0);
    assert_int_equal(c.missing, 1);

    /* U1 comes back through another candidate's admission order: U0 (the
     * only member) invites U6 (admitted, 1 of 1), then U1 asks again. */
    act(g, &U[0], d_on(KL_GOP_INVITE, &U[6]));
    c = cand_of(g, U[5].pk);
    assert_int_equal(c.approvals, 0);
    assert_int_equal(c.missing, 2);
    assert_int_equal(kl_group_has_approved(g, U[5].pk, U[6].pk), 0);
    act(g, &U[1], d_kind(KL_GOP_REQUEST));
    act(g, &U[0], d_on(KL_GOP_APPROVE, &U[1]));
    assert_true(act(g, &U[6], d_on(KL_GOP_APPROVE, &U[1])).admitted);
    assert_int_equal(kl_group_has_approved(g, U[5].pk, U[1].pk), 0);
    assert_int_equal(cand_of(g, U[5].pk).missing, 3);

    /* Under MAJORITY too: 3 members, one approval by a member who then
     * leaves, so two new approvals are needed. */
    act(g, &U[0], d_policy(KL_POLICY_MAJORITY));
    act(g, &U[6], d_on(KL_GOP_APPROVE, &U[5]));
    assert_int_equal(cand_of(g, U[5].pk).missing, 1);
    act(g, &U[6], d_kind(KL_GOP_LEAVE));
    assert_int_equal(cand_of(g, U[5].pk).approvals, 0);
    assert_int_equal(cand_of(g, U[5].pk).missing, 2);
    assert_false(act(g, &U[0], d_on(KL_GOP_APPROVE, &U[5])).admitted);
    assert_true(act(g, &U[1], d_on(KL_GOP_APPROVE, &U[5])).admitted);
    kl_group_free(g);
}

/* A candidate is admitted at the op where its policy is first satisfied,
 * whatever that op is: a leave or removal (fewer members to consent), a
 * promotion (FACILITATORS) or a policy change; several at once if so. */
static void test_admitted_when_policy_becomes_satisfied(void **state)
{
    (void)state;
    kl_group_t *g = group_of(3, KL_POLICY_ALL);
    kl_group_event_t ev;

    /* ALL, 3 members: U0 and U1 approve U5; U2 leaving admits U5. */
    act(g, &U[5], d_kind(KL_GOP_REQUEST));
    act(g, &U[0], d_on(KL_GOP_APPROVE, &U[5]));
    act(g, &U[1], d_on(KL_GOP_APPROVE, &U[5]));
    assert_int_equal(cand_of(g, U[5].pk).missing, 1);
    ev = act(g, &U[2], d_kind(KL_GOP_LEAVE));
    assert_int_equal(ev.admitted, 1);
    assert_memory_equal(ev.admitted_key, U[5].pk, 32);
    assert_memory_equal(ev.admitted_keys[0], U[5].pk, 32);
    assert_int_equal(kl_group_role_of(g, U[5].pk), KL_ROLE_MEMBER);
    assert_int_equal(kl_group_candidate_count(g), 0);

    /* Removal: members U0 U1 U5; U6 and U7 approved by U0 and U1 (U7 also
     * by U5, which does not matter); removing U5 admits both, in order. */
    act(g, &U[6], d_kind(KL_GOP_REQUEST));
    act(g, &U[7], d_kind(KL_GOP_REQUEST));
    act(g, &U[0], d_on(KL_GOP_APPROVE, &U[6]));
    act(g, &U[1], d_on(KL_GOP_APPROVE, &U[6]));
    act(g, &U[0], d_on(KL_GOP_APPROVE, &U[7]));
    act(g, &U[1], d_on(KL_GOP_APPROVE, &U[7]));
    ev = act(g, &U[0], d_on(KL_GOP_REMOVE, &U[5]));
    assert_true(ev.epoch_changed);
    assert_int_equal(ev.admitted, 2);
    assert_memory_equal(ev.admitted_keys[0], U[6].pk, 32);
    assert_memory_equal(ev.admitted_keys[1], U[7].pk, 32);
    assert_int_equal(kl_group_member_count(g), 4);

    /* Policy change: under ALL one approval of 4 is not enough; MAJORITY
     * still needs 3; FACILITATORS is met by U0's approval at once. */
    act(g, &U[8], d_kind(KL_GOP_REQUEST));
    act(g, &U[0], d_on(KL_GOP_APPROVE, &U[8]));
    assert_int_equal(act(g, &U[0], d_policy(KL_POLICY_MAJORITY)).admitted, 0);
    ev = act(g, &U[0], d_policy(KL_POLICY_FACILITATORS));
    assert_int_equal(ev.admitted, 1);
    assert_memory_equal(ev.admitted_key, U[8].pk, 32);

    /* Promotion: under FACILITATORS a member's approval counts once the
     * member becomes a facilitator. */
    act(g, &U[9], d_kind(KL_GOP_REQUEST));
    act(g, &U[6], d_on(KL_GOP_APPROVE, &U[9]));
    assert_int_equal(cand_of(g, U[9].pk).missing, 1);
    ev = act(g, &U[0], d_role(&U[6], KL_ROLE_FACILITATOR));
    assert_int_equal(ev.admitted, 1);
    assert_memory_equal(ev.admitted_key, U[9].pk, 32);
    assert_int_equal(kl_group_role_of(g, U[9].pk), KL_ROLE_MEMBER);
    kl_group_free(g);
}

/* MAJORITY: a member's remove is a vote; the target goes at the vote that
 * makes votes * 2 > members - 1; votes count once, never against the last
 * facilitator, and stop counting when the voter leaves. Under other
 * policies only facilitators remove. */
static void test_removal_by_majority_vote(void **state)
{
    (void)state;
    kl_group_t *g = group_of(6, KL_POLICY_MAJORITY); /* U0 facilitator, U1..U5 */
    kl_group_event_t ev;
    size_t missing;

    /* 5 others than U5: 3 votes needed. */
    ev = act(g, &U[1], d_on(KL_GOP_REMOVE, &U[5]));
    assert_false(ev.epoch_changed);
    assert_int_equal(kl_group_role_of(g, U[5].pk), KL_ROLE_MEMBER);
    assert_int_equal(kl_group_removal_votes(g, U[5].pk, &missing), 1);
    assert_int_equal(missing, 2);
    act_refused(g, &U[1], d_on(KL_GOP_REMOVE, &U[5]), KL_GV_ALREADY_APPROVED);
    act_refused(g, &U[1], d_on(KL_GOP_REMOVE, &U[0]), KL_GV_LAST_FACILITATOR);
    act_refused(g, &U[1], d_on(KL_GOP_REMOVE, &U[1]), KL_GV_MALFORMED);
    act(g, &U[2], d_on(KL_GOP_REMOVE, &U[5]));
    /* U2 leaves: its vote stops counting (1 of 4 others, 2 more). */
    act(g, &U[2], d_kind(KL_GOP_LEAVE));
    assert_int_equal(kl_group_removal_votes(g, U[5].pk, &missing), 1);
    assert_int_equal(missing, 2);
    act(g, &U[3], d_on(KL_GOP_REMOVE, &U[5]));
    uint64_t epoch = kl_group_epoch(g);
    ev = act(g, &U[4], d_on(KL_GOP_REMOVE, &U[5]));
    assert_true(ev.epoch_changed);
    assert_int_equal(kl_group_epoch(g), epoch + 1);
    assert_int_equal(kl_group_role_of(g, U[5].pk), KL_ROLE_NONE);
    assert_int_equal(kl_group_removal_votes(g, U[5].pk, &missing), 0);

    /* A member reusing the removed one's slot carries no votes. */
    act(g, &U[0], d_on(KL_GOP_INVITE, &U[7]));
    act(g, &U[1], d_on(KL_GOP_APPROVE, &U[7]));
    act(g, &U[3], d_on(KL_GOP_APPROVE, &U[7]));
    assert_int_equal(kl_group_role_of(g, U[7].pk), KL_ROLE_MEMBER);
    assert_int_equal(kl_group_removal_votes(g, U[7].pk, NULL), 0);
    assert_int_equal(kl_group_removal_votes(g, U[1].pk, NULL), 0);

    /* Refusing a request stays with facilitators; under ALL a member
     * cannot vote. */
    act(g, &U[8], d_kind(KL_GOP_REQUEST));
    act_refused(g, &U[1], d_on(KL_GOP_REMOVE, &U[8]), KL_GV_NOT_FACILITATOR);
    act(g, &U[0], d_policy(KL_POLICY_ALL));
    act_refused(g, &U[1], d_on(KL_GOP_REMOVE, &U[3]), KL_GV_NOT_FACILITATOR);
    kl_group_free(g);
}

/* kl_group_apply_stored skips the signature check and nothing else: a
 * replay of validated ops is cheap, and every other rule still holds. */
static void test_apply_stored_skips_only_the_signature(void **state)
{
    (void)state;
    kl_group_t *g = group_of(2, KL_POLICY_ALL), *h = group_of(2, KL_POLICY_ALL);
    kl_group_verr_t why;

    /* An op by the facilitator U0 whose signature is broken. */
    opbuf_t o = build(g, &U[0], d_policy(KL_POLICY_MAJORITY));
    o.p[o.len - 1] ^= 0x01; /* last byte: inside the signature */
    apply_refused(g, &o, KL_GV_SIGNATURE);
    assert_int_equal(kl_group_apply_stored(h, o.p, o.len, NULL, &why), 0);
    assert_int_equal(kl_group_policy(h), KL_POLICY_MAJORITY);
    /* The chain, the group and the rules are still checked. */
    assert_int_equal(kl_group_apply_stored(h, o.p, o.len, NULL, &why), KL_EPROTO);
    assert_int_equal(why, KL_GV_CHAIN);
    free(o.p);
    o = build(h, &U[1], d_policy(KL_POLICY_ALL));
    assert_int_equal(kl_group_apply_stored(h, o.p, o.len, NULL, &why), KL_ESTATE);
    assert_int_equal(why, KL_GV_NOT_FACILITATOR);
    free(o.p);
    kl_group_free(g);
    kl_group_free(h);
}

static void test_roles_policy_retention(void **state)
{
    (void)state;
    kl_group_t *g = group_of(3, KL_POLICY_ALL);
    kl_group_event_t ev;

    act_refused(g, &U[1], d_role(&U[2], KL_ROLE_FACILITATOR), KL_GV_NOT_FACILITATOR);
    act_refused(g, &U[1], d_role(&U[1], KL_ROLE_FACILITATOR), KL_GV_NOT_FACILITATOR);
    act_refused(g, &U[0], d_role(&U[7], KL_ROLE_FACILITATOR), KL_GV_NOT_MEMBER);
    act_refused(g, &U[1], d_policy(KL_POLICY_MAJORITY), KL_GV_NOT_FACILITATOR);
    act_refused(g, &U[1], d_retention(7), KL_GV_NOT_FACILITATOR);
    act_refused(g, &U[7], d_retention(7), KL_GV_NOT_MEMBER);

    ev = act(g, &U[0], d_role(&U[2], KL_ROLE_FACILITATOR));
    assert_int_equal(ev.kind, KL_GOP_SET_ROLE);
    assert_memory_equal(ev.target, U[2].pk, 32);
    assert_int_equal(kl_group_role_of(g, U[2].pk), KL_ROLE_FACILITATOR);
    ev = act(g, &U[2], d_policy(KL_POLICY_FACILITATORS));
    assert_int_equal(ev.kind, KL_GOP_SET_POLICY);
    assert_int_equal(kl_group_policy(g), KL_POLICY_FACILITATORS);
    ev = act(g, &U[2], d_retention(30));
    assert_int_equal(ev.kind, KL_GOP_SET_RETENTION);
    assert_int_equal(kl_group_retention_days(g), 30);
    act(g, &U[0], d_retention(0));
    assert_int_equal(kl_group_retention_days(g), 0);
    /* Demoting a facilitator while another remains. */
    act(g, &U[2], d_role(&U[0], KL_ROLE_MEMBER));
    assert_int_equal(kl_group_role_of(g, U[0].pk), KL_ROLE_MEMBER);
    act_refused(g, &U[0], d_retention(1), KL_GV_NOT_FACILITATOR);
    assert_int_equal(kl_group_epoch(g), 0); /* no remove or leave so far */
    kl_group_free(g);
}

/* Members are listed in order of admission; candidates in order of arrival. */
static void test_listing_order(void **state)
{
    (void)state;
    kl_group_t *g = group_of(4, KL_POLICY_ALL);
    kl_group_member_t m;
    kl_group_candidate_t c;

    act(g, &U[0], d_on(KL_GOP_REMOVE, &U[2]));
    act(g, &U[7], d_kind(KL_GOP_REQUEST));
    act(g, &U[1], d_on(KL_GOP_INVITE, &U[6]));
    assert_int_equal(kl_group_candidate_at(g, 0, &c), 0);
    assert_memory_equal(c.key, U[7].pk, 32);
    assert_int_equal(kl_group_candidate_at(g, 1, &c), 0);
    assert_memory_equal(c.key, U[6].pk, 32);
    assert_string_equal(c.address, U[6].addr);
    static const int want[] = {0, 1, 3};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(kl_group_member_at(g, i, &m), 0);
        assert_memory_equal(m.key, U[want[i]].pk, 32);
        assert_string_equal(m.address, U[want[i]].addr);
        assert_int_equal(m.role, i == 0 ? KL_ROLE_FACILITATOR : KL_ROLE_MEMBER);
    }
    kl_group_free(g);
}

static void test_builder_refuses_unusable_descriptions(void **state)
{
    (void)state;
    kl_group_t *g = group_of(2, KL_POLICY_ALL);
    uint8_t *out = (uint8_t *)"untouched";
    size_t len = 7;
    kl_group_opdesc_t d;

#define BAD(desc)                                                                            \
    do {                                                                                     \
        kl_group_opdesc_t dd_ = (desc);                                                      \
        assert_int_equal(kl_group_op_build(g, U[0].sk, U[0].pk, U[0].addr, TS, &dd_, &out,  \
                                           &len),                                            \
                         KL_EINVAL);                                                         \
        assert_null(out);                                                                    \
        assert_int_equal(len, 0);                                                            \
    } while (0)
    BAD(d_kind((kl_group_opkind_t)0));
    BAD(d_kind((kl_group_opkind_t)19));
    BAD(d_create((kl_group_policy_t)0, 0));
    BAD(d_create((kl_group_policy_t)4, 0));
    BAD(d_policy((kl_group_policy_t)0));
    BAD(d_role(&U[1], KL_ROLE_NONE));
    BAD(d_role(&U[1], (kl_group_role_t)3));
    d = d_on(KL_GOP_INVITE, &U[3]);
    strcpy(d.target_address, "#group@oslo.test");
    BAD(d);
    strcpy(d.target_address, "Bad@oslo.test");
    BAD(d);
    memset(d.target_address, 'a', sizeof d.target_address); /* not terminated */
    BAD(d);
    d = d_on(KL_GOP_APPROVE, &U[3]);
    assert_int_equal(kl_group_op_build(g, U[0].sk, U[0].pk, "#g@oslo.test", TS, &d, &out, &len),
                     KL_EINVAL);
    assert_int_equal(kl_group_op_build(g, U[0].sk, U[0].pk, NULL, TS, &d, &out, &len), KL_EINVAL);
    assert_int_equal(kl_group_op_build(g, U[0].sk, U[0].pk, U[0].addr, TS, NULL, &out, &len),
                     KL_EINVAL);
    assert_int_equal(kl_group_op_build(NULL, U[0].sk, U[0].pk, U[0].addr, TS, &d, &out, &len),
                     KL_EINVAL);
#undef BAD
    kl_group_free(g);
}

static void test_refusal_reasons_are_named(void **state)
{
    (void)state;
    for (int i = KL_GV_OK; i <= KL_GV_ADDRESS_TAKEN; i++) {
        const char *s = kl_group_verr_str((kl_group_verr_t)i);
        assert_non_null(s);
        assert_true(strlen(s) > 3);
        for (int j = KL_GV_OK; j < i; j++)
            assert_string_not_equal(s, kl_group_verr_str((kl_group_verr_t)j));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_and_empty_state),
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_build_at_for_outsiders),
        cmocka_unit_test(test_policy_all_five_members),
        cmocka_unit_test(test_policy_majority),
        cmocka_unit_test(test_policy_facilitators),
        cmocka_unit_test(test_approve_and_invite_refusals),
        cmocka_unit_test(test_address_at_most_once),
        cmocka_unit_test(test_membership_history),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_last_facilitator),
        cmocka_unit_test(test_leave_of_last_member_closes),
        cmocka_unit_test(test_approvals_of_departed_members),
        cmocka_unit_test(test_admitted_when_policy_becomes_satisfied),
        cmocka_unit_test(test_removal_by_majority_vote),
        cmocka_unit_test(test_apply_stored_skips_only_the_signature),
        cmocka_unit_test(test_roles_policy_retention),
        cmocka_unit_test(test_listing_order),
        cmocka_unit_test(test_builder_refuses_unusable_descriptions),
        cmocka_unit_test(test_refusal_reasons_are_named),
    };
    return cmocka_run_group_tests(tests, fixture_setup, NULL);
}
