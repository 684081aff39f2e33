/* kl_group_op_peek: what a relay learns of a SignedOp before it loads any
 * group state. A genuine op is described exactly; a forged signature, a
 * non-canonical or malformed encoding, an oversized op are refused. */
#include "group_fixture.h"

static void test_peek_genuine(void **state)
{
    (void)state;
    kl_group_t *g = group_of(3, KL_POLICY_FACILITATORS);
    opbuf_t o = build(g, &U[1], d_on(KL_GOP_APPROVE, &U[4]));
    kl_group_peek_t pk;
    assert_int_equal(kl_group_op_peek(o.p, o.len, &pk), 0);
    assert_int_equal(pk.index, kl_group_next_index(g));
    assert_int_equal(pk.kind, KL_GOP_APPROVE);
    assert_memory_equal(pk.actor, U[1].pk, 32);
    assert_string_equal(pk.actor_address, U[1].addr);
    assert_string_equal(pk.group, GADDR);
    /* Peeking needs no state: an op of any group, at any index. */
    kl_group_t *other = group_new("#other@oslo.test");
    opbuf_t c = build(other, &U[7], d_create(KL_POLICY_ALL, 3));
    assert_int_equal(kl_group_op_peek(c.p, c.len, &pk), 0);
    assert_int_equal(pk.index, 0);
    assert_int_equal(pk.kind, KL_GOP_CREATE);
    assert_string_equal(pk.group, "#other@oslo.test");
    free(c.p);
    free(o.p);
    kl_group_free(other);
    kl_group_free(g);
}

static void test_peek_refuses(void **state)
{
    (void)state;
    kl_group_t *g = group_of(2, KL_POLICY_FACILITATORS);
    kl_group_peek_t pk;
    arena_t a = {.n = 0};

    /* Signed by u1 while naming u0 as actor. */
    Kollega__Group__V1__Op *dr = draft(g, &U[0], d_on(KL_GOP_INVITE, &U[5]), &a);
    opbuf_t forged = seal(dr, &U[1]);
    memset(&pk, 0xaa, sizeof pk);
    assert_int_equal(kl_group_op_peek(forged.p, forged.len, &pk), KL_ECRYPTO);
    assert_int_equal(pk.index, 0); /* zeroed on error */
    assert_int_equal(pk.group[0], '\0');
    free(forged.p);

    /* One flipped bit in the signed bytes. */
    opbuf_t o = build(g, &U[0], d_on(KL_GOP_INVITE, &U[5]));
    assert_int_equal(kl_group_op_peek(o.p, o.len, &pk), 0);
    o.p[o.len / 2] ^= 0x01;
    assert_true(kl_group_op_peek(o.p, o.len, &pk) < 0);

    /* A signature that is not 64 bytes; an op without a body. */
    opbuf_t ok = build(g, &U[0], d_on(KL_GOP_INVITE, &U[5]));
    Kollega__Group__V1__Op *op = op_of(&ok, &a);
    opbuf_t shortsig = wrap((const uint8_t *)"x", 1, (const uint8_t *)"sig", 3);
    assert_int_equal(kl_group_op_peek(shortsig.p, shortsig.len, &pk), KL_EPROTO);
    op->body_case = KOLLEGA__GROUP__V1__OP__BODY__NOT_SET;
    opbuf_t nobody = seal(op, &U[0]);
    assert_int_equal(kl_group_op_peek(nobody.p, nobody.len, &pk), KL_EPROTO);

    /* Not canonical: an unknown field appended to the SignedOp. */
    uint8_t *longer = malloc(ok.len + 2);
    assert_non_null(longer);
    memcpy(longer, ok.p, ok.len);
    longer[ok.len] = 0x18; /* field 3, varint */
    longer[ok.len + 1] = 0x01;
    assert_int_equal(kl_group_op_peek(longer, ok.len + 2, &pk), KL_EPROTO);

    /* Garbage, empty, oversized, NULL. */
    assert_int_equal(kl_group_op_peek((const uint8_t *)"\x0a\x03xyz", 5, &pk), KL_EPROTO);
    assert_int_equal(kl_group_op_peek(ok.p, 0, &pk), KL_EPROTO);
    assert_int_equal(kl_group_op_peek(ok.p, KL_GROUP_MAX_OP + 1, &pk), KL_ETOOBIG);
    assert_int_equal(kl_group_op_peek(NULL, 5, &pk), KL_EINVAL);
    assert_int_equal(kl_group_op_peek(ok.p, ok.len, NULL), KL_EINVAL);

    free(longer);
    free(nobody.p);
    free(shortsig.p);
    free(ok.p);
    free(o.p);
    arena_release(&a);
    kl_group_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peek_genuine),
        cmocka_unit_test(test_peek_refuses),
    };
    return cmocka_run_group_tests(tests, fixture_setup, NULL);
}
