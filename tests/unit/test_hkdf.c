/* HKDF-SHA256 against every RFC 5869 vector in hkdf-sha256.json, plus the
 * length bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/hkdf.h"
#include "vectors.h"

static int setup(void **state)
{
    kl_vec_t *doc = kl_vec_load("hkdf-sha256.json");
    if (doc == NULL || kl_vec_len(kl_vec_get(doc, "vectors")) == 0) {
        kl_vec_free(doc);
        return -1;
    }
    if (kl_crypto_init() != 0) {
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

typedef struct hkdf_case {
    uint8_t *ikm, *salt, *info, *prk, *okm;
    size_t ikm_len, salt_len, info_len, prk_len, okm_len;
    long long length;
} hkdf_case_t;

static void case_load(const kl_vec_t *v, hkdf_case_t *c)
{
    int ok = 0;
    memset(c, 0, sizeof *c);
    c->ikm = kl_vec_hex(v, "ikm", &c->ikm_len);
    c->salt = kl_vec_hex(v, "salt", &c->salt_len);
    c->info = kl_vec_hex(v, "info", &c->info_len);
    c->prk = kl_vec_hex(v, "prk", &c->prk_len);
    c->okm = kl_vec_hex(v, "okm", &c->okm_len);
    c->length = kl_vec_int(v, "length", &ok);
    assert_non_null(c->ikm);
    assert_non_null(c->salt);
    assert_non_null(c->info);
    assert_non_null(c->prk);
    assert_non_null(c->okm);
    assert_true(ok);
    assert_int_equal(c->prk_len, 32);
    assert_int_equal((size_t)c->length, c->okm_len);
}

static void case_free(hkdf_case_t *c)
{
    free(c->ikm);
    free(c->salt);
    free(c->info);
    free(c->prk);
    free(c->okm);
}

static void test_extract_matches_rfc_prk(void **state)
{
    const kl_vec_t *vs = kl_vec_get(*state, "vectors");
    for (size_t i = 0; i < kl_vec_len(vs); i++) {
        hkdf_case_t c;
        uint8_t prk[32];
        case_load(kl_vec_at(vs, i), &c);
        kl_hkdf_sha256_extract(c.salt, c.salt_len, c.ikm, c.ikm_len, prk);
        assert_memory_equal(prk, c.prk, 32);
        case_free(&c);
    }
}

static void test_expand_matches_rfc_okm(void **state)
{
    const kl_vec_t *vs = kl_vec_get(*state, "vectors");
    for (size_t i = 0; i < kl_vec_len(vs); i++) {
        hkdf_case_t c;
        case_load(kl_vec_at(vs, i), &c);
        uint8_t *okm = malloc(c.okm_len);
        assert_non_null(okm);
        assert_int_equal(kl_hkdf_sha256_expand(c.prk, c.info, c.info_len, okm, c.okm_len), 0);
        assert_memory_equal(okm, c.okm, c.okm_len);
        free(okm);
        case_free(&c);
    }
}

static void test_oneshot_matches_rfc_okm(void **state)
{
    const kl_vec_t *vs = kl_vec_get(*state, "vectors");
    for (size_t i = 0; i < kl_vec_len(vs); i++) {
        hkdf_case_t c;
        case_load(kl_vec_at(vs, i), &c);
        uint8_t *okm = malloc(c.okm_len);
        assert_non_null(okm);
        assert_int_equal(kl_hkdf_sha256(c.salt, c.salt_len, c.ikm, c.ikm_len, c.info,
                                        c.info_len, okm, c.okm_len),
                         0);
        assert_memory_equal(okm, c.okm, c.okm_len);
        free(okm);
        case_free(&c);
    }
}

/* Every prefix length gives a prefix of the full output (the block
 * boundaries at 32, 64 are where an off-by-one would show). */
static void test_expand_prefixes_agree(void **state)
{
    (void)state;
    uint8_t prk[32], full[100], part[100];
    memset(prk, 7, sizeof prk);
    assert_int_equal(kl_hkdf_sha256_expand(prk, (const uint8_t *)"x", 1, full, sizeof full), 0);
    for (size_t n = 0; n <= sizeof full; n++) {
        memset(part, 0xee, sizeof part);
        assert_int_equal(kl_hkdf_sha256_expand(prk, (const uint8_t *)"x", 1, part, n), 0);
        assert_memory_equal(part, full, n);
        if (n < sizeof part)
            assert_int_equal(part[n], 0xee);
    }
}

static void test_expand_length_limit(void **state)
{
    (void)state;
    uint8_t prk[32] = {1};
    size_t max = 255 * 32;
    uint8_t *out = malloc(max + 1);
    assert_non_null(out);
    assert_int_equal(kl_hkdf_sha256_expand(prk, NULL, 0, out, max), 0);
    assert_int_equal(kl_hkdf_sha256_expand(prk, NULL, 0, out, max + 1), KL_EINVAL);
    assert_int_equal(kl_hkdf_sha256(NULL, 0, prk, 32, NULL, 0, out, max + 1), KL_EINVAL);
    free(out);
}

/* An absent salt is the same as HashLen zero bytes (RFC 5869 2.2). */
static void test_empty_salt_is_zero_salt(void **state)
{
    (void)state;
    uint8_t zeros[32] = {0}, ikm[5] = {1, 2, 3, 4, 5}, a[32], b[32], c[32];
    kl_hkdf_sha256_extract(NULL, 0, ikm, sizeof ikm, a);
    kl_hkdf_sha256_extract(zeros, sizeof zeros, ikm, sizeof ikm, b);
    kl_hkdf_sha256_extract(ikm, sizeof ikm, ikm, sizeof ikm, c);
    assert_memory_equal(a, b, 32);
    assert_memory_not_equal(a, c, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extract_matches_rfc_prk),
        cmocka_unit_test(test_expand_matches_rfc_okm),
        cmocka_unit_test(test_oneshot_matches_rfc_okm),
        cmocka_unit_test(test_expand_prefixes_agree),
        cmocka_unit_test(test_expand_length_limit),
        cmocka_unit_test(test_empty_salt_is_zero_salt),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
