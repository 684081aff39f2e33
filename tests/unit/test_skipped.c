/* The store of skipped message keys (proto/skipped.h) on its own: the chain
 * KDF, staging along a chain, lookup by (chain, n), removal, the bound and
 * which keys it evicts, restoring by push, and that every slot that no
 * longer holds a key is wiped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/hkdf.h"
#include "skipped.h"

static const uint8_t CHAIN_A[32] = {0xaa};
static const uint8_t CHAIN_B[32] = {0xbb};

static int setup(void **state)
{
    (void)state;
    return kl_crypto_init();
}

/* The key of message `want` on a chain that starts at message 0 with ck0. */
static void key_of(const uint8_t ck0[32], uint32_t want, uint8_t mk[32])
{
    uint8_t ck[32];
    memcpy(ck, ck0, 32);
    for (uint32_t i = 0; i <= want; i++)
        kl_chain_kdf(ck, mk);
}

/* Every slot past the keys held is all zero. */
static void assert_tail_wiped(const kl_skipped_t *s)
{
    for (size_t i = s->n; i < s->cap; i++)
        assert_true(kl_is_zero((const uint8_t *)&s->e[i], sizeof s->e[i]));
}

/* Stage keys [from, until) of the chain ck0 (a chain at message `from`). */
static void stage_range(kl_skipped_stage_t *st, const uint8_t chain[32], const uint8_t ck0[32],
                        uint32_t from, uint32_t until)
{
    uint8_t ck[32], mk[32];
    uint32_t n = 0;
    memcpy(ck, ck0, 32);
    for (uint32_t i = 0; i < from; i++) {
        kl_chain_kdf(ck, mk);
        n++;
    }
    assert_int_equal(kl_skipped_stage_chain(st, chain, ck, &n, until), 0);
    assert_int_equal(n, until > from ? until : from);
}

static void test_chain_kdf_is_hmac_steps(void **state)
{
    (void)state;
    /* MK = HMAC-SHA256(CK, 0x01), CK' = HMAC-SHA256(CK, 0x02); HKDF-Extract
     * with salt CK is that HMAC. */
    static const uint8_t one = 0x01, two = 0x02;
    uint8_t ck[32] = {1}, ck0[32] = {1}, mk[32], want_mk[32], want_ck[32];
    kl_hkdf_sha256_extract(ck0, 32, &one, 1, want_mk);
    kl_hkdf_sha256_extract(ck0, 32, &two, 1, want_ck);
    kl_chain_kdf(ck, mk);
    assert_memory_equal(mk, want_mk, 32);
    assert_memory_equal(ck, want_ck, 32);
}

static void test_stage_find_remove(void **state)
{
    (void)state;
    const uint8_t ck0[32] = {7};
    uint8_t mk[32];
    kl_skipped_t s;
    kl_skipped_stage_t st;

    kl_skipped_init(&s, 100);
    kl_skipped_stage_init(&st, 20);
    stage_range(&st, CHAIN_A, ck0, 3, 8); /* keys 3..7 of A */
    stage_range(&st, CHAIN_B, ck0, 0, 2); /* keys 0..1 of B */
    assert_int_equal(st.n, 7);
    assert_int_equal(s.n, 0);
    assert_null(s.e);
    assert_int_equal(kl_skipped_commit(&s, &st), 0);
    kl_skipped_stage_free(&st);
    assert_int_equal(s.n, 7);
    assert_int_equal(s.cap, 16);

    /* Found by chain and number, with the key the chain gives there. */
    for (uint32_t i = 3; i < 8; i++) {
        size_t at = kl_skipped_find(&s, CHAIN_A, i);
        assert_int_equal(at, i - 3);
        key_of(ck0, i, mk);
        assert_memory_equal(s.e[at].mk, mk, 32);
    }
    assert_int_equal(kl_skipped_find(&s, CHAIN_A, 2), SIZE_MAX);
    assert_int_equal(kl_skipped_find(&s, CHAIN_A, 8), SIZE_MAX);
    assert_int_equal(kl_skipped_find(&s, CHAIN_B, 1), 6);
    assert_int_equal(kl_skipped_find(&s, CHAIN_B, 3), SIZE_MAX);

    /* Removal keeps the order of the others and wipes the freed slot. */
    kl_skipped_remove(&s, kl_skipped_find(&s, CHAIN_A, 5));
    assert_int_equal(s.n, 6);
    assert_int_equal(kl_skipped_find(&s, CHAIN_A, 5), SIZE_MAX);
    assert_int_equal(kl_skipped_find(&s, CHAIN_A, 6), 2);
    assert_int_equal(kl_skipped_find(&s, CHAIN_B, 0), 4);
    assert_tail_wiped(&s);
    kl_skipped_free(&s);
    assert_int_equal(s.n, 0);
    assert_null(s.e);
    assert_int_equal(s.max, 100);
}

static void test_stage_bound_and_nothing_to_skip(void **state)
{
    (void)state;
    uint8_t ck[32] = {3}, before[32];
    uint32_t n = 10;
    kl_skipped_stage_t st;

    kl_skipped_stage_init(&st, 4);
    memcpy(before, ck, 32);
    /* Already there (or past): nothing staged, nothing allocated. */
    assert_int_equal(kl_skipped_stage_chain(&st, CHAIN_A, ck, &n, 10), 0);
    assert_int_equal(kl_skipped_stage_chain(&st, CHAIN_A, ck, &n, 5), 0);
    assert_int_equal(n, 10);
    assert_null(st.e);
    assert_memory_equal(ck, before, 32);
    /* More than the room: refused, nothing changed. */
    assert_int_equal(kl_skipped_stage_chain(&st, CHAIN_A, ck, &n, 15), KL_ELIMIT);
    assert_int_equal(n, 10);
    assert_int_equal(st.n, 0);
    assert_memory_equal(ck, before, 32);
    assert_int_equal(kl_skipped_stage_chain(&st, CHAIN_A, ck, &n, 13), 0);
    assert_int_equal(kl_skipped_stage_chain(&st, CHAIN_A, ck, &n, 15), KL_ELIMIT);
    assert_int_equal(kl_skipped_stage_chain(&st, CHAIN_A, ck, &n, 14), 0);
    assert_int_equal(st.n, 4);
    assert_int_equal(n, 14);
    kl_skipped_stage_free(&st);
    assert_null(st.e);
    assert_int_equal(st.n, 0);
}

static void test_bound_evicts_oldest(void **state)
{
    (void)state;
    const uint8_t ck0[32] = {9};
    kl_skipped_t s;
    kl_skipped_stage_t st;

    kl_skipped_init(&s, 40);
    kl_skipped_stage_init(&st, 100);
    stage_range(&st, CHAIN_A, ck0, 0, 30);
    assert_int_equal(kl_skipped_commit(&s, &st), 0);
    kl_skipped_stage_free(&st);
    assert_int_equal(s.n, 30);
    assert_int_equal(s.cap, 32);

    /* 30 + 25 > 40: the 15 oldest stored keys go. */
    kl_skipped_stage_init(&st, 100);
    stage_range(&st, CHAIN_B, ck0, 0, 25);
    assert_int_equal(kl_skipped_commit(&s, &st), 0);
    kl_skipped_stage_free(&st);
    assert_int_equal(s.n, 40);
    assert_int_equal(s.cap, 40); /* doubling stops at the bound */
    assert_int_equal(kl_skipped_find(&s, CHAIN_A, 14), SIZE_MAX);
    assert_int_equal(kl_skipped_find(&s, CHAIN_A, 15), 0);
    assert_int_equal(kl_skipped_find(&s, CHAIN_B, 24), 39);

    /* A stage larger than the bound alone: only its newest 40 stay. */
    kl_skipped_stage_init(&st, 100);
    stage_range(&st, CHAIN_A, ck0, 100, 150);
    assert_int_equal(kl_skipped_commit(&s, &st), 0);
    kl_skipped_stage_free(&st);
    assert_int_equal(s.n, 40);
    assert_int_equal(kl_skipped_find(&s, CHAIN_B, 24), SIZE_MAX);
    assert_int_equal(kl_skipped_find(&s, CHAIN_A, 109), SIZE_MAX);
    assert_int_equal(kl_skipped_find(&s, CHAIN_A, 110), 0);
    assert_int_equal(kl_skipped_find(&s, CHAIN_A, 149), 39);
    kl_skipped_free(&s);
}

static void test_eviction_wipes_what_it_leaves(void **state)
{
    (void)state;
    const uint8_t ck0[32] = {5};
    kl_skipped_t s;
    kl_skipped_stage_t st;

    /* Removed keys leave wiped slots; a commit that then evicts moves the
     * survivors to the front and leaves nothing behind past the end. */
    kl_skipped_init(&s, 20);
    kl_skipped_stage_init(&st, 20);
    stage_range(&st, CHAIN_A, ck0, 0, 20);
    assert_int_equal(kl_skipped_commit(&s, &st), 0);
    kl_skipped_stage_free(&st);
    for (int i = 0; i < 5; i++)
        kl_skipped_remove(&s, 0);
    assert_int_equal(s.n, 15);
    assert_tail_wiped(&s);
    kl_skipped_stage_init(&st, 20);
    stage_range(&st, CHAIN_B, ck0, 0, 8);
    assert_int_equal(kl_skipped_commit(&s, &st), 0);
    kl_skipped_stage_free(&st);
    assert_int_equal(s.n, 20);
    assert_int_equal(kl_skipped_find(&s, CHAIN_A, 7), SIZE_MAX);
    assert_int_equal(kl_skipped_find(&s, CHAIN_A, 8), 0);
    assert_int_equal(kl_skipped_find(&s, CHAIN_B, 7), 19);
    assert_tail_wiped(&s);
    /* An empty stage changes nothing. */
    kl_skipped_stage_init(&st, 20);
    assert_int_equal(kl_skipped_commit(&s, &st), 0);
    assert_int_equal(s.n, 20);
    kl_skipped_free(&s);
}

static void test_push_restores_in_order_up_to_bound(void **state)
{
    (void)state;
    kl_skipped_t s;
    kl_skipped_key_t k;

    kl_skipped_init(&s, 18);
    memset(&k, 0, sizeof k);
    memcpy(k.chain, CHAIN_A, 32);
    for (uint32_t i = 0; i < 18; i++) {
        k.n = i;
        k.mk[0] = (uint8_t)i;
        assert_int_equal(kl_skipped_push(&s, &k), 0);
    }
    assert_int_equal(s.cap, 18);
    /* Full: push never evicts. */
    k.n = 99;
    assert_int_equal(kl_skipped_push(&s, &k), KL_ELIMIT);
    assert_int_equal(s.n, 18);
    for (uint32_t i = 0; i < 18; i++) {
        assert_int_equal(kl_skipped_find(&s, CHAIN_A, i), i);
        assert_int_equal(s.e[i].mk[0], i);
    }
    kl_skipped_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_kdf_is_hmac_steps),
        cmocka_unit_test(test_stage_find_remove),
        cmocka_unit_test(test_stage_bound_and_nothing_to_skip),
        cmocka_unit_test(test_bound_evicts_oldest),
        cmocka_unit_test(test_eviction_wipes_what_it_leaves),
        cmocka_unit_test(test_push_restores_in_order_up_to_bound),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
