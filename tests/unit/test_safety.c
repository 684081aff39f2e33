/* Safety numbers against every vector of safety-numbers.json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/safety.h"
#include "vectors.h"

static int setup(void **state)
{
    kl_vec_t *doc = kl_vec_load("safety-numbers.json");
    if (doc == NULL || kl_vec_len(kl_vec_get(doc, "vectors")) == 0 || kl_crypto_init() != 0) {
        kl_vec_free(doc);
        return -1;
    }
    *state = doc;
    return 0;
}

static int teardown(void **state)
{
    kl_vec_free(*state);
    return 0;
}

typedef struct scase {
    uint8_t ika[32], ikb[32];
    const char *addra, *addrb, *half_a, *half_b, *number, *display;
} scase_t;

static void load(const kl_vec_t *v, scase_t *c)
{
    assert_int_equal(kl_vec_hex_exact(v, "identity_key_a", c->ika, 32), 0);
    assert_int_equal(kl_vec_hex_exact(v, "identity_key_b", c->ikb, 32), 0);
    c->addra = kl_vec_str(v, "address_a");
    c->addrb = kl_vec_str(v, "address_b");
    c->half_a = kl_vec_str(v, "half_a");
    c->half_b = kl_vec_str(v, "half_b");
    c->number = kl_vec_str(v, "safety_number");
    c->display = kl_vec_str(v, "display");
    assert_non_null(c->addra);
    assert_non_null(c->addrb);
    assert_non_null(c->half_a);
    assert_non_null(c->half_b);
    assert_non_null(c->number);
    assert_non_null(c->display);
}

static void test_halves(void **state)
{
    const kl_vec_t *vs = kl_vec_get(*state, "vectors");
    for (size_t i = 0; i < kl_vec_len(vs); i++) {
        scase_t c;
        char h[31];
        load(kl_vec_at(vs, i), &c);
        assert_int_equal(kl_safety_half(c.ika, c.addra, h), 0);
        assert_string_equal(h, c.half_a);
        assert_int_equal(kl_safety_half(c.ikb, c.addrb, h), 0);
        assert_string_equal(h, c.half_b);
    }
}

static void test_numbers_and_symmetry(void **state)
{
    const kl_vec_t *vs = kl_vec_get(*state, "vectors");
    for (size_t i = 0; i < kl_vec_len(vs); i++) {
        scase_t c;
        char ab[KL_SAFETY_DIGITS + 1], ba[KL_SAFETY_DIGITS + 1];
        load(kl_vec_at(vs, i), &c);
        assert_int_equal(kl_safety_number(c.ika, c.addra, c.ikb, c.addrb, ab), 0);
        assert_string_equal(ab, c.number);
        assert_int_equal(kl_safety_number(c.ikb, c.addrb, c.ika, c.addra, ba), 0);
        assert_string_equal(ba, c.number);
        assert_int_equal(strlen(ab), KL_SAFETY_DIGITS);
    }
}

static void test_display(void **state)
{
    const kl_vec_t *vs = kl_vec_get(*state, "vectors");
    for (size_t i = 0; i < kl_vec_len(vs); i++) {
        scase_t c;
        char d[KL_SAFETY_DISPLAY];
        load(kl_vec_at(vs, i), &c);
        assert_int_equal(kl_safety_display(c.number, d), 0);
        assert_string_equal(d, c.display);
        assert_int_equal(strlen(d), KL_SAFETY_DISPLAY - 1);
    }
}

/* Changing either the key or the address changes the half. */
static void test_binds_key_and_address(void **state)
{
    const kl_vec_t *vs = kl_vec_get(*state, "vectors");
    scase_t c;
    char h[31];
    load(kl_vec_at(vs, 0), &c);
    c.ika[31] ^= 1;
    assert_int_equal(kl_safety_half(c.ika, c.addra, h), 0);
    assert_string_not_equal(h, c.half_a);
    c.ika[31] ^= 1;
    assert_int_equal(kl_safety_half(c.ika, "alice@oslo.example.net", h), 0);
    assert_string_not_equal(h, c.half_a);
}

static void test_invalid_input(void **state)
{
    (void)state;
    uint8_t ik[32] = {0};
    char h[31], n[KL_SAFETY_DIGITS + 1], d[KL_SAFETY_DISPLAY];
    assert_int_equal(kl_safety_half(ik, "", h), KL_EINVAL);
    assert_int_equal(kl_safety_half(ik, NULL, h), KL_EINVAL);
    assert_int_equal(kl_safety_number(ik, "a@b", ik, NULL, n), KL_EINVAL);
    assert_int_equal(kl_safety_display("123", d), KL_EINVAL);
    assert_int_equal(kl_safety_display(
                         "12345678901234567890123456789012345678901234567890123456789x", d),
                     KL_EINVAL);
    assert_int_equal(kl_safety_display(
                         "1234567890123456789012345678901234567890123456789012345678901", d),
                     KL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_halves),
        cmocka_unit_test(test_numbers_and_symmetry),
        cmocka_unit_test(test_display),
        cmocka_unit_test(test_binds_key_and_address),
        cmocka_unit_test(test_invalid_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
