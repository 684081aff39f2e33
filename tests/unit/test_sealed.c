/* Sealed sender boxes and ISO/IEC 7816-4 padding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/sealed.h"

static const uint8_t MSG[] = "kari@oslo.example.org says: see you at the ERFA meeting";

static int setup(void **state)
{
    (void)state;
    return kl_crypto_init();
}

static void test_seal_open_round_trip(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], box[sizeof MSG + KL_SEAL_OVERHEAD], pt[sizeof MSG];
    size_t n = 0, m = 0;

    assert_int_equal(kl_sign_keypair(pk, sk), 0);
    assert_int_equal(kl_sealed_seal(pk, MSG, sizeof MSG, box, sizeof box, &n), 0);
    assert_int_equal(n, sizeof MSG + KL_SEAL_OVERHEAD);
    assert_int_equal(kl_sealed_open(pk, sk, box, n, pt, sizeof pt, &m), 0);
    assert_int_equal(m, sizeof MSG);
    assert_memory_equal(pt, MSG, sizeof MSG);

    /* Empty plaintexts are fine too: a box is then just its overhead. */
    assert_int_equal(kl_sealed_seal(pk, MSG, 0, box, sizeof box, &n), 0);
    assert_int_equal(n, KL_SEAL_OVERHEAD);
    assert_int_equal(kl_sealed_open(pk, sk, box, n, pt, 0, &m), 0);
    assert_int_equal(m, 0);
}

static void test_seal_is_randomised(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], a[sizeof MSG + KL_SEAL_OVERHEAD], b[sizeof a];
    size_t n;

    assert_int_equal(kl_sign_keypair(pk, sk), 0);
    assert_int_equal(kl_sealed_seal(pk, MSG, sizeof MSG, a, sizeof a, &n), 0);
    assert_int_equal(kl_sealed_seal(pk, MSG, sizeof MSG, b, sizeof b, &n), 0);
    assert_memory_not_equal(a, b, sizeof a);
}

static void test_every_flipped_bit_rejected(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], box[sizeof MSG + KL_SEAL_OVERHEAD], pt[sizeof MSG];
    size_t n = 0, m = 0;

    assert_int_equal(kl_sign_keypair(pk, sk), 0);
    assert_int_equal(kl_sealed_seal(pk, MSG, sizeof MSG, box, sizeof box, &n), 0);
    for (size_t i = 0; i < n * 8; i++) {
        box[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(kl_sealed_open(pk, sk, box, n, pt, sizeof pt, &m), KL_ECRYPTO);
        box[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    assert_int_equal(kl_sealed_open(pk, sk, box, n, pt, sizeof pt, &m), 0);
    assert_memory_equal(pt, MSG, sizeof MSG);
}

static void test_wrong_recipient_rejected(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], pk2[32], sk2[64];
    uint8_t box[sizeof MSG + KL_SEAL_OVERHEAD], pt[sizeof MSG];
    size_t n = 0, m = 0;

    assert_int_equal(kl_sign_keypair(pk, sk), 0);
    assert_int_equal(kl_sign_keypair(pk2, sk2), 0);
    assert_int_equal(kl_sealed_seal(pk, MSG, sizeof MSG, box, sizeof box, &n), 0);
    assert_int_equal(kl_sealed_open(pk2, sk2, box, n, pt, sizeof pt, &m), KL_ECRYPTO);
    /* The right public key with the wrong secret key, and the reverse. */
    assert_int_equal(kl_sealed_open(pk, sk2, box, n, pt, sizeof pt, &m), KL_ECRYPTO);
    assert_int_equal(kl_sealed_open(pk2, sk, box, n, pt, sizeof pt, &m), KL_ECRYPTO);
}

static void test_short_input_and_small_buffers(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], box[sizeof MSG + KL_SEAL_OVERHEAD], pt[sizeof MSG];
    size_t n = 0, m = 0;

    assert_int_equal(kl_sign_keypair(pk, sk), 0);
    assert_int_equal(kl_sealed_seal(pk, MSG, sizeof MSG, box, sizeof box, &n), 0);
    for (size_t len = 0; len < KL_SEAL_OVERHEAD; len++)
        assert_int_equal(kl_sealed_open(pk, sk, box, len, pt, sizeof pt, &m), KL_EPROTO);
    /* Cut short but still over the overhead: authentication fails. */
    assert_int_equal(kl_sealed_open(pk, sk, box, n - 1, pt, sizeof pt, &m), KL_ECRYPTO);
    assert_int_equal(kl_sealed_open(pk, sk, box, n, pt, sizeof pt - 1, &m), KL_ETOOBIG);
    assert_int_equal(kl_sealed_seal(pk, MSG, sizeof MSG, box, sizeof box - 1, &n), KL_ETOOBIG);
}

static void test_invalid_recipient_key_rejected(void **state)
{
    (void)state;
    uint8_t zero[32] = {0}, box[sizeof MSG + KL_SEAL_OVERHEAD];
    size_t n;
    /* The all-zero Ed25519 key is a small-order point with no usable X25519 form. */
    assert_int_equal(kl_sealed_seal(zero, MSG, sizeof MSG, box, sizeof box, &n), KL_ECRYPTO);
}

static void test_pad_unpad_sizes_and_round_trip(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 100, 255, 256, 257, 511, 512, 1000, 4096};
    uint8_t buf[5000];

    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t len = lens[k], padded = 0, back = 0;
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)(i * 7 + 3);
        assert_int_equal(kl_pad(buf, len, sizeof buf, &padded), 0);
        assert_int_equal(padded % KL_PAD_BLOCK, 0);
        assert_true(padded > len);
        assert_true(padded - len <= KL_PAD_BLOCK);
        assert_int_equal(kl_unpad(buf, padded, &back), 0);
        assert_int_equal(back, len);
        for (size_t i = 0; i < len; i++)
            assert_int_equal(buf[i], (uint8_t)(i * 7 + 3));
    }
}

static void test_pad_needs_room(void **state)
{
    (void)state;
    uint8_t buf[512] = {0};
    size_t padded = 0;
    assert_int_equal(kl_pad(buf, 255, 255, &padded), KL_ETOOBIG);
    assert_int_equal(kl_pad(buf, 256, 511, &padded), KL_ETOOBIG);
    assert_int_equal(kl_pad(buf, 256, 512, &padded), 0);
    assert_int_equal(padded, 512);
    assert_int_equal(kl_pad(buf, 300, 200, &padded), KL_EINVAL);
}

static void test_unpad_garbage_rejected(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t len = 0, padded = 0;

    memset(buf, 0, sizeof buf);
    assert_int_equal(kl_unpad(buf, 256, &len), KL_EPROTO); /* no 0x80 marker */
    memset(buf, 0x41, sizeof buf);
    assert_int_equal(kl_unpad(buf, 256, &len), KL_EPROTO); /* marker missing */
    buf[255] = 0x80;
    buf[254] = 0x80;
    assert_int_equal(kl_unpad(buf, 256, &len), 0); /* 0x80 is also content */
    assert_int_equal(len, 255);
    buf[255] = 0x01;
    assert_int_equal(kl_unpad(buf, 256, &len), KL_EPROTO); /* non-zero after marker */
    assert_int_equal(kl_unpad(buf, 0, &len), KL_EPROTO);
    assert_int_equal(kl_pad(buf, 10, sizeof buf, &padded), 0);
    assert_int_equal(kl_unpad(buf, padded - 1, &len), KL_EPROTO); /* not a block multiple */
    assert_int_equal(kl_unpad(buf, 100, &len), KL_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_open_round_trip),
        cmocka_unit_test(test_seal_is_randomised),
        cmocka_unit_test(test_every_flipped_bit_rejected),
        cmocka_unit_test(test_wrong_recipient_rejected),
        cmocka_unit_test(test_short_input_and_small_buffers),
        cmocka_unit_test(test_invalid_recipient_key_rejected),
        cmocka_unit_test(test_pad_unpad_sizes_and_round_trip),
        cmocka_unit_test(test_pad_needs_room),
        cmocka_unit_test(test_unpad_garbage_rejected),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
