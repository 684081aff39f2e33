/* Integrity of the group log (include/kollega/group.h): what a relay (or
 * anyone between the members) might try. Forged and flipped signatures,
 * broken chains, reordered, dropped and replayed ops, ops of another group,
 * a relay inserting a member, malformed and non-canonical encodings, and
 * the member and candidate bounds. Every refusal must leave every query
 * answering as before. */
#include "group_fixture.h"

/* Every single-bit change of a valid SignedOp is refused, state unchanged;
 * the original still applies afterwards. */
static void test_every_flipped_bit_rejected(void **state)
{
    (void)state;
    kl_group_t *g = group_of(3, KL_POLICY_ALL);
    act(g, &U[5], d_kind(KL_GOP_REQUEST));
    opbuf_t o = build(g, &U[1], d_on(KL_GOP_APPROVE, &U[5]));
    char *before = snapshot(g);

    for (size_t bit = 0; bit < o.len * 8; bit++) {
        kl_group_verr_t why = KL_GV_OK;
        o.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(kl_group_apply(g, o.p, o.len, NULL, &why), 0);
        assert_int_not_equal(why, KL_GV_OK);
        o.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    char *after = snapshot(g);
    assert_string_equal(before, after);
    apply_ok(g, &o);
    assert_int_equal(kl_group_has_approved(g, U[5].pk, U[1].pk), 1);
    free(before);
    free(after);
    free(o.p);
    kl_group_free(g);
}

static void test_forged_signatures(void **state)
{
    (void)state;
    kl_group_t *g = group_of(3, KL_POLICY_ALL);
    arena_t a = {{0}, 0};
    user_t relay;
    uint8_t sig[64];
    opbuf_t o;

    make_user(&relay, "relay");
    act(g, &U[5], d_kind(KL_GOP_REQUEST));
    /* The facilitator's approval, signed by someone else. */
    Kollega__Group__V1__Op *op = draft(g, &U[0], d_on(KL_GOP_APPROVE, &U[5]), &a);
    o = seal(op, &relay);
    apply_refused_x(g, o.p, o.len, KL_GV_SIGNATURE, &relay, 1);
    free(o.p);
    o = seal(op, &U[1]); /* even by another member */
    apply_refused(g, &o, KL_GV_SIGNATURE);
    free(o.p);
    /* A signature over the op without the context string. */
    size_t n = kollega__group__v1__op__get_packed_size(op);
    uint8_t *b = malloc(n);
    assert_non_null(b);
    kollega__group__v1__op__pack(op, b);
    assert_int_equal(kl_sign(U[0].sk, b, n, sig), 0);
    o = wrap(b, n, sig, 64);
    apply_refused(g, &o, KL_GV_SIGNATURE);
    free(o.p);
    /* A real signature of another op (U0's signature of U1's approval). */
    o = build(g, &U[1], d_on(KL_GOP_APPROVE, &U[5]));
    Kollega__Group__V1__Op *other = op_of(&o, &a);
    free(o.p);
    n = kollega__group__v1__op__get_packed_size(other);
    uint8_t *b2 = malloc(n);
    assert_non_null(b2);
    kollega__group__v1__op__pack(other, b2);
    sign_raw(&U[0], b, kollega__group__v1__op__get_packed_size(op), sig);
    o = wrap(b2, n, sig, 64);
    apply_refused(g, &o, KL_GV_SIGNATURE);
    free(o.p);
    /* Honest: applies. */
    o = seal(op, &U[0]);
    apply_ok(g, &o);
    free(o.p);
    free(b);
    free(b2);
    arena_release(&a);
    kl_group_free(g);
}

static void test_broken_chain(void **state)
{
    (void)state;
    kl_group_t *g = group_of(3, KL_POLICY_ALL);
    arena_t a = {{0}, 0};
    uint8_t wrong[32], head[32];
    opbuf_t o;
    Kollega__Group__V1__Op *op;

    kl_group_head(g, head);
    memcpy(wrong, head, 32);
    wrong[31] ^= 1;
#define CHAIN_CASE(edit)                                                                     \
    do {                                                                                     \
        op = draft(g, &U[0], d_retention(3), &a);                                            \
        edit;                                                                                \
        o = seal(op, &U[0]);                                                                 \
        apply_refused(g, &o, KL_GV_CHAIN);                                                   \
        free(o.p);                                                                           \
    } while (0)
    CHAIN_CASE(op->prev.data = wrong);
    CHAIN_CASE(op->prev.len = 0);
    CHAIN_CASE(op->index += 1);
    CHAIN_CASE(op->index -= 1);
    CHAIN_CASE(op->index = 0);
    CHAIN_CASE(op->index = UINT64_MAX);
#undef CHAIN_CASE
    /* A create with a prev. */
    kl_group_t *fresh = group_new(GADDR);
    op = draft(fresh, &U[0], d_create(KL_POLICY_ALL, 0), &a);
    op->prev.data = head;
    op->prev.len = 32;
    o = seal(op, &U[0]);
    apply_refused(fresh, &o, KL_GV_CHAIN);
    free(o.p);
    /* The prev of the wrong length is malformed, not a chain break. */
    op = draft(g, &U[0], d_retention(3), &a);
    op->prev.len = 31;
    o = seal(op, &U[0]);
    apply_refused(g, &o, KL_GV_MALFORMED);
    free(o.p);
    arena_release(&a);
    kl_group_free(fresh);
    kl_group_free(g);
}

/* Ops of a log tried out of order on a second copy: every op ahead of its
 * turn (a reordering, or a drop of the ones before it) and every op again
 * (a replay) is refused. */
static void test_reorder_drop_replay(void **state)
{
    (void)state;
    opbuf_t ops[5];
    size_t n = 0;

    /* Two states fed identical bytes: a builds the log, b receives it. */
    kl_group_t *a = group_new(GADDR), *b = group_new(GADDR);
    ops[n] = build(a, &U[0], d_create(KL_POLICY_FACILITATORS, 0));
    apply_ok(a, &ops[n++]);
    ops[n] = build(a, &U[0], d_on(KL_GOP_INVITE, &U[1]));
    apply_ok(a, &ops[n++]);
    ops[n] = build(a, &U[2], d_kind(KL_GOP_REQUEST));
    apply_ok(a, &ops[n++]);
    ops[n] = build(a, &U[1], d_on(KL_GOP_APPROVE, &U[2]));
    apply_ok(a, &ops[n++]);
    ops[n] = build(a, &U[0], d_on(KL_GOP_APPROVE, &U[2]));
    apply_ok(a, &ops[n++]);
    assert_int_equal(kl_group_role_of(a, U[2].pk), KL_ROLE_MEMBER);

    /* b: every op before its turn is refused, every op after it too. */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++)
            apply_refused(b, &ops[j], KL_GV_CHAIN);
        apply_ok(b, &ops[i]);
        for (size_t j = 0; j <= i; j++)
            apply_refused(b, &ops[j], KL_GV_CHAIN); /* replays */
    }
    char *sa = snapshot(a), *sb = snapshot(b);
    assert_string_equal(sa, sb);
    free(sa);
    free(sb);
    /* The same op with only its (unsigned) wrapper changed is refused
     * too: an extra unknown field after the signature. */
    opbuf_t next = build(a, &U[0], d_retention(9));
    uint8_t *longer = malloc(next.len + 3);
    assert_non_null(longer);
    memcpy(longer, next.p, next.len);
    longer[next.len] = 0x18; /* field 3, varint */
    longer[next.len + 1] = 0x01;
    apply_refused_x(b, longer, next.len + 2, KL_GV_MALFORMED, NULL, 0);
    apply_ok(b, &next);
    free(longer);
    free(next.p);
    for (size_t i = 0; i < n; i++)
        free(ops[i].p);
    kl_group_free(a);
    kl_group_free(b);
}

static void test_op_for_another_group(void **state)
{
    (void)state;
    kl_group_t *g = group_new(GADDR), *h = group_new("#other@oslo.test");
    arena_t a = {{0}, 0};
    opbuf_t o;

    o = build(h, &U[0], d_create(KL_POLICY_ALL, 0));
    apply_refused(g, &o, KL_GV_WRONG_GROUP);
    apply_ok(h, &o);
    free(o.p);
    act(g, &U[0], d_create(KL_POLICY_ALL, 0));
    /* Same position in both logs: only the group differs. */
    Kollega__Group__V1__Op *op = draft(g, &U[0], d_on(KL_GOP_INVITE, &U[1]), &a);
    op->group = (char *)"#other@oslo.test";
    o = seal(op, &U[0]);
    apply_refused(g, &o, KL_GV_WRONG_GROUP);
    free(o.p);
    op->group = (char *)"#erfa@stockholm.test";
    o = seal(op, &U[0]);
    apply_refused(g, &o, KL_GV_WRONG_GROUP);
    free(o.p);
    arena_release(&a);
    kl_group_free(g);
    kl_group_free(h);
}

/* A relay holding only its own key tries to get itself (or a friend) in. */
static void test_relay_cannot_insert_a_member(void **state)
{
    (void)state;
    kl_group_t *g = group_of(3, KL_POLICY_FACILITATORS);
    arena_t a = {{0}, 0};
    user_t relay;
    opbuf_t o;

    make_user(&relay, "relay");
    /* Its own invite of itself: not a member. */
    o = build(g, &relay, d_on(KL_GOP_INVITE, &relay));
    apply_refused_x(g, o.p, o.len, KL_GV_NOT_MEMBER, &relay, 1);
    free(o.p);
    /* The facilitator's invite, forged. */
    Kollega__Group__V1__Op *op = draft(g, &U[0], d_on(KL_GOP_INVITE, &relay), &a);
    o = seal(op, &relay);
    apply_refused_x(g, o.p, o.len, KL_GV_SIGNATURE, &relay, 1);
    free(o.p);
    /* It may ask, but cannot approve itself or forge the approval. */
    o = build(g, &relay, d_kind(KL_GOP_REQUEST));
    apply_ok(g, &o);
    free(o.p);
    o = build(g, &relay, d_on(KL_GOP_APPROVE, &relay));
    apply_refused_x(g, o.p, o.len, KL_GV_NOT_MEMBER, &relay, 1);
    free(o.p);
    op = draft(g, &U[0], d_on(KL_GOP_APPROVE, &relay), &a);
    o = seal(op, &relay);
    apply_refused_x(g, o.p, o.len, KL_GV_SIGNATURE, &relay, 1);
    free(o.p);
    /* A plain member's approval does not satisfy FACILITATORS either. */
    o = build(g, &U[1], d_on(KL_GOP_APPROVE, &relay));
    assert_false(apply_ok(g, &o).admitted);
    free(o.p);
    assert_int_equal(kl_group_role_of(g, relay.pk), KL_ROLE_NONE);
    /* Nor can it promote itself or remove anyone. */
    o = build(g, &relay, d_role(&relay, KL_ROLE_FACILITATOR));
    apply_refused_x(g, o.p, o.len, KL_GV_NOT_MEMBER, &relay, 1);
    free(o.p);
    o = build(g, &relay, d_on(KL_GOP_REMOVE, &U[0]));
    apply_refused_x(g, o.p, o.len, KL_GV_NOT_MEMBER, &relay, 1);
    free(o.p);
    arena_release(&a);
    kl_group_free(g);
}

static void test_malformed_ops(void **state)
{
    (void)state;
    kl_group_t *g = group_of(2, KL_POLICY_ALL);
    arena_t a = {{0}, 0};
    uint8_t k31[31] = {1}, k33[33] = {1}, sig[64];
    char long_addr[300];
    Kollega__Group__V1__Op *op;
    Kollega__Group__V1__Member badm = KOLLEGA__GROUP__V1__MEMBER__INIT;
    opbuf_t o;

#define EDIT(kind_desc, edit, want)                                                          \
    do {                                                                                     \
        op = draft(g, &U[0], kind_desc, &a);                                                 \
        edit;                                                                                \
        o = seal(op, &U[0]);                                                                 \
        apply_refused(g, &o, want);                                                          \
        free(o.p);                                                                           \
    } while (0)
    EDIT(d_retention(1), (op->actor.data = k31, op->actor.len = 31), KL_GV_MALFORMED);
    EDIT(d_retention(1), (op->actor.data = k33, op->actor.len = 33), KL_GV_MALFORMED);
    EDIT(d_retention(1), op->actor_address = (char *)"#erfa@oslo.test", KL_GV_MALFORMED);
    EDIT(d_retention(1), op->actor_address = (char *)"U0@oslo.test", KL_GV_MALFORMED);
    EDIT(d_retention(1), op->actor_address = (char *)"", KL_GV_MALFORMED);
    /* 32 + 1 + 223 = 256 characters: a valid address that does not fit. */
    memset(long_addr, 'a', 32);
    long_addr[32] = '@';
    for (int i = 33; i < 256; i++)
        long_addr[i] = (i % 10 == 9) ? '.' : 'b';
    long_addr[256] = '\0';
    EDIT(d_retention(1), op->actor_address = long_addr, KL_GV_MALFORMED);
    EDIT(d_retention(1), op->body_case = KOLLEGA__GROUP__V1__OP__BODY__NOT_SET, KL_GV_MALFORMED);
    EDIT(d_retention(1), op->prev.len = 31, KL_GV_MALFORMED);
    EDIT(d_on(KL_GOP_INVITE, &U[5]),
         (op->invite->candidate->identity_key.data = k31,
          op->invite->candidate->identity_key.len = 31),
         KL_GV_MALFORMED);
    EDIT(d_on(KL_GOP_INVITE, &U[5]),
         op->invite->candidate->address = (char *)"#erfa@oslo.test", KL_GV_MALFORMED);
    EDIT(d_on(KL_GOP_INVITE, &U[5]), op->invite->candidate->address = long_addr,
         KL_GV_MALFORMED);
    EDIT(d_on(KL_GOP_INVITE, &U[5]), op->invite->candidate = &badm, KL_GV_MALFORMED);
    EDIT(d_on(KL_GOP_INVITE, &U[5]), op->invite->candidate = NULL, KL_GV_MALFORMED);
    EDIT(d_on(KL_GOP_APPROVE, &U[1]), op->approve->candidate.len = 0, KL_GV_MALFORMED);
    EDIT(d_on(KL_GOP_REMOVE, &U[1]), op->remove->member.len = 16, KL_GV_MALFORMED);
    EDIT(d_on(KL_GOP_LEAVE, &U[1]), op->leave->successor.len = 16, KL_GV_MALFORMED);
    EDIT(d_role(&U[1], KL_ROLE_MEMBER), op->set_role->role = 0, KL_GV_MALFORMED);
    EDIT(d_role(&U[1], KL_ROLE_MEMBER), op->set_role->role = 3, KL_GV_MALFORMED);
    EDIT(d_policy(KL_POLICY_ALL), op->set_policy->policy = 0, KL_GV_MALFORMED);
    EDIT(d_policy(KL_POLICY_ALL), op->set_policy->policy = 4, KL_GV_MALFORMED);
    /* Unknown fields inside the body or the candidate, properly signed. */
    uint8_t one = 1;
    ProtobufCMessageUnknownField uf = {100, PROTOBUF_C_WIRE_TYPE_VARINT, 1, &one};
    EDIT(d_on(KL_GOP_APPROVE, &U[1]),
         (op->approve->base.n_unknown_fields = 1, op->approve->base.unknown_fields = &uf),
         KL_GV_MALFORMED);
    EDIT(d_on(KL_GOP_INVITE, &U[5]),
         (op->invite->candidate->base.n_unknown_fields = 1,
          op->invite->candidate->base.unknown_fields = &uf),
         KL_GV_MALFORMED);
    EDIT(d_kind(KL_GOP_LEAVE),
         (op->leave->base.n_unknown_fields = 1, op->leave->base.unknown_fields = &uf),
         KL_GV_MALFORMED);
#undef EDIT
    /* A create with a bad policy, on a fresh state. */
    kl_group_t *fresh = group_new(GADDR);
    op = draft(fresh, &U[0], d_create(KL_POLICY_ALL, 0), &a);
    op->create->policy = 0;
    o = seal(op, &U[0]);
    apply_refused(fresh, &o, KL_GV_MALFORMED);
    free(o.p);
    op->create->policy = 7;
    o = seal(op, &U[0]);
    apply_refused(fresh, &o, KL_GV_MALFORMED);
    free(o.p);
    kl_group_free(fresh);

    /* Signatures of the wrong size, an empty op. */
    o = build(g, &U[0], d_retention(1));
    op = op_of(&o, &a);
    free(o.p);
    size_t n = kollega__group__v1__op__get_packed_size(op);
    uint8_t *b = malloc(n + 16);
    assert_non_null(b);
    kollega__group__v1__op__pack(op, b);
    sign_raw(&U[0], b, n, sig);
    o = wrap(b, n, sig, 63);
    apply_refused(g, &o, KL_GV_MALFORMED);
    free(o.p);
    o = wrap(b, 0, sig, 64);
    apply_refused(g, &o, KL_GV_MALFORMED);
    free(o.p);
    /* An Op carrying an unknown field, properly signed: refused, so no
     * field the validator cannot see is ever signed into the log. */
    b[n] = 0xa0; /* field 100, varint */
    b[n + 1] = 0x06;
    b[n + 2] = 0x01;
    sign_raw(&U[0], b, n + 3, sig);
    o = wrap(b, n + 3, sig, 64);
    apply_refused(g, &o, KL_GV_MALFORMED);
    free(o.p);
    /* The honest op still applies. */
    sign_raw(&U[0], b, n, sig);
    o = wrap(b, n, sig, 64);
    /* ... but first the same SignedOp with its fields swapped. */
    {
        uint8_t *sw = malloc(o.len);
        size_t oplen_hdr = o.len - 66; /* tag + length of op, then op */
        assert_non_null(sw);
        memcpy(sw, o.p + oplen_hdr, 66); /* signature field first */
        memcpy(sw + 66, o.p, oplen_hdr);
        assert_int_equal(o.p[oplen_hdr], 0x12);
        apply_refused_x(g, sw, o.len, KL_GV_MALFORMED, NULL, 0);
        free(sw);
    }
    apply_ok(g, &o);
    free(o.p);
    free(b);

    /* Raw garbage, empty, NULL and over-size inputs. */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a, 0x02, 0x01};
    apply_refused_x(g, junk, sizeof junk, KL_GV_MALFORMED, NULL, 0);
    apply_refused_x(g, junk, 0, KL_GV_MALFORMED, NULL, 0);
    apply_refused_x(g, NULL, 0, KL_GV_MALFORMED, NULL, 0);
    uint8_t *big = calloc(1, KL_GROUP_MAX_OP + 1);
    assert_non_null(big);
    o = build(g, &U[0], d_retention(2));
    memcpy(big, o.p, o.len); /* a valid op followed by zero padding */
    apply_refused_x(g, big, KL_GROUP_MAX_OP + 1, KL_GV_MALFORMED, NULL, 0);
    apply_ok(g, &o);
    free(o.p);
    free(big);
    assert_int_equal(kl_group_apply(NULL, junk, sizeof junk, NULL, NULL), KL_EINVAL);
    /* 255 characters fit. */
    long_addr[255] = '\0';
    kl_group_opdesc_t d = d_on(KL_GOP_INVITE, &U[6]);
    strcpy(d.target_address, long_addr);
    act(g, &U[0], d);
    assert_string_equal(cand_of(g, U[6].pk).address, long_addr);
    arena_release(&a);
    kl_group_free(g);
}

/* KL_GROUP_MAX_CANDIDATES and KL_GROUP_MAX_MEMBERS. */
static void test_limits(void **state)
{
    (void)state;
    const size_t nx = KL_GROUP_MAX_MEMBERS + KL_GROUP_MAX_CANDIDATES + 4;
    user_t *x = calloc(nx, sizeof *x);
    char h[16];
    size_t k = 0;
    kl_group_t *g = group_of(2, KL_POLICY_ALL);

    assert_non_null(x);
    for (size_t i = 0; i < nx; i++) {
        snprintf(h, sizeof h, "x%zu", i);
        make_user(&x[i], h);
    }
    for (size_t i = 0; i < KL_GROUP_MAX_CANDIDATES; i++)
        act(g, &x[k++], d_kind(KL_GOP_REQUEST));
    assert_int_equal(kl_group_candidate_count(g), KL_GROUP_MAX_CANDIDATES);
    opbuf_t o = build(g, &x[k], d_kind(KL_GOP_REQUEST));
    apply_refused_x(g, o.p, o.len, KL_GV_LIMIT, x, 1);
    free(o.p);
    o = build(g, &U[0], d_on(KL_GOP_INVITE, &x[k]));
    apply_refused_x(g, o.p, o.len, KL_GV_LIMIT, x, 1);
    free(o.p);
    /* Refusing one request makes room again. */
    act(g, &U[0], d_on(KL_GOP_REMOVE, &x[0]));
    act(g, &x[k++], d_kind(KL_GOP_REQUEST));
    kl_group_free(g);

    /* Members: fill up under FACILITATORS (each invite admits). */
    g = group_of(2, KL_POLICY_FACILITATORS);
    k = 0;
    while (kl_group_member_count(g) < KL_GROUP_MAX_MEMBERS - 1)
        assert_true(act(g, &U[0], d_on(KL_GOP_INVITE, &x[k++])).admitted);
    /* Two candidates invited by a plain member wait for a facilitator. */
    act(g, &U[1], d_on(KL_GOP_INVITE, &x[k]));
    act(g, &U[1], d_on(KL_GOP_INVITE, &x[k + 1]));
    assert_true(act(g, &U[0], d_on(KL_GOP_APPROVE, &x[k])).admitted);
    assert_int_equal(kl_group_member_count(g), KL_GROUP_MAX_MEMBERS);
    o = build(g, &U[0], d_on(KL_GOP_APPROVE, &x[k + 1]));
    apply_refused_x(g, o.p, o.len, KL_GV_LIMIT, x + k, 2);
    free(o.p);
    o = build(g, &U[0], d_on(KL_GOP_INVITE, &x[k + 2]));
    apply_refused_x(g, o.p, o.len, KL_GV_LIMIT, x + k, 3);
    free(o.p);
    o = build(g, &x[k + 3], d_kind(KL_GOP_REQUEST));
    apply_refused_x(g, o.p, o.len, KL_GV_LIMIT, x + k, 4);
    free(o.p);
    /* After a leave there is room for the waiting candidate. */
    act(g, &x[0], d_kind(KL_GOP_LEAVE));
    assert_true(act(g, &U[0], d_on(KL_GOP_APPROVE, &x[k + 1])).admitted);
    assert_int_equal(kl_group_member_count(g), KL_GROUP_MAX_MEMBERS);
    kl_group_free(g);
    for (size_t i = 0; i < nx; i++)
        kl_memzero(x[i].sk, sizeof x[i].sk);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_flipped_bit_rejected),
        cmocka_unit_test(test_forged_signatures),
        cmocka_unit_test(test_broken_chain),
        cmocka_unit_test(test_reorder_drop_replay),
        cmocka_unit_test(test_op_for_another_group),
        cmocka_unit_test(test_relay_cannot_insert_a_member),
        cmocka_unit_test(test_malformed_ops),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, fixture_setup, NULL);
}
