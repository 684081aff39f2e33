/* Bounded readers and writers: every read and write stops at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/buf.h"
#include "kollega/err.h"

static void test_reader_big_endian(void **state)
{
    (void)state;
    const uint8_t in[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
                          0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
    kl_reader_t rd;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    kl_reader_init(&rd, in, sizeof in);
    assert_int_equal(kl_reader_u8(&rd, &u8), 0);
    assert_int_equal(u8, 0x01);
    assert_int_equal(kl_reader_u16(&rd, &u16), 0);
    assert_int_equal(u16, 0x0203);
    assert_int_equal(kl_reader_u32(&rd, &u32), 0);
    assert_int_equal(u32, 0x04050607);
    assert_int_equal(kl_reader_u64(&rd, &u64), 0);
    assert_true(u64 == 0x08090a0b0c0d0e0full);
    assert_int_equal(kl_reader_left(&rd), 0);
}

/* Each reader at each too-short remainder fails and consumes nothing. */
static void test_reader_bounds(void **state)
{
    (void)state;
    const uint8_t in[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    for (size_t avail = 0; avail < 8; avail++) {
        kl_reader_t rd;
        uint8_t u8 = 0x5a;
        uint16_t u16 = 0x5a5a;
        uint32_t u32 = 0x5a5a5a5a;
        uint64_t u64 = 0x5a;
        kl_reader_init(&rd, in, avail);
        assert_int_equal(kl_reader_u64(&rd, &u64), KL_EPROTO);
        assert_true(u64 == 0x5a);
        if (avail < 4) {
            assert_int_equal(kl_reader_u32(&rd, &u32), KL_EPROTO);
            assert_int_equal(u32, 0x5a5a5a5a);
        }
        if (avail < 2) {
            assert_int_equal(kl_reader_u16(&rd, &u16), KL_EPROTO);
            assert_int_equal(u16, 0x5a5a);
        }
        if (avail < 1) {
            assert_int_equal(kl_reader_u8(&rd, &u8), KL_EPROTO);
            assert_int_equal(u8, 0x5a);
        }
        assert_int_equal(kl_reader_left(&rd), avail);
    }
}

static void test_reader_bytes_and_view(void **state)
{
    (void)state;
    const uint8_t in[] = {1, 2, 3, 4, 5};
    uint8_t out[8];
    const uint8_t *v = NULL;
    kl_reader_t rd;
    kl_reader_init(&rd, in, sizeof in);
    assert_int_equal(kl_reader_bytes(&rd, out, 6), KL_EPROTO);
    assert_int_equal(kl_reader_left(&rd), 5);
    assert_int_equal(kl_reader_bytes(&rd, out, 2), 0);
    assert_memory_equal(out, in, 2);
    assert_int_equal(kl_reader_view(&rd, &v, 4), KL_EPROTO);
    assert_null(v);
    assert_int_equal(kl_reader_view(&rd, &v, 3), 0);
    assert_ptr_equal(v, in + 2);
    assert_int_equal(kl_reader_left(&rd), 0);
    assert_int_equal(kl_reader_bytes(&rd, out, 0), 0);
    assert_int_equal(kl_reader_bytes(&rd, out, 1), KL_EPROTO);
    /* A huge count cannot wrap the bounds check. */
    assert_int_equal(kl_reader_view(&rd, &v, SIZE_MAX), KL_EPROTO);
    kl_reader_init(&rd, in, sizeof in);
    assert_int_equal(kl_reader_u8(&rd, out), 0);
    assert_int_equal(kl_reader_view(&rd, &v, SIZE_MAX), KL_EPROTO);
}

static void test_writer_round_trip(void **state)
{
    (void)state;
    uint8_t buf[15];
    kl_writer_t w;
    kl_reader_t rd;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    kl_writer_init(&w, buf, sizeof buf);
    assert_int_equal(kl_writer_u8(&w, 0xab), 0);
    assert_int_equal(kl_writer_u16(&w, 0xbeef), 0);
    assert_int_equal(kl_writer_u32(&w, 0xdeadbeef), 0);
    assert_int_equal(kl_writer_u64(&w, 0x0123456789abcdefull), 0);
    assert_int_equal(w.off, 15);
    assert_int_equal(buf[1], 0xbe);
    assert_int_equal(buf[2], 0xef);
    kl_reader_init(&rd, buf, w.off);
    assert_int_equal(kl_reader_u8(&rd, &u8), 0);
    assert_int_equal(kl_reader_u16(&rd, &u16), 0);
    assert_int_equal(kl_reader_u32(&rd, &u32), 0);
    assert_int_equal(kl_reader_u64(&rd, &u64), 0);
    assert_int_equal(u8, 0xab);
    assert_int_equal(u16, 0xbeef);
    assert_int_equal(u32, 0xdeadbeef);
    assert_true(u64 == 0x0123456789abcdefull);
}

/* Writes that do not fit fail with KL_ETOOBIG and write nothing. */
static void test_writer_bounds(void **state)
{
    (void)state;
    uint8_t buf[9];
    kl_writer_t w;
    memset(buf, 0x5a, sizeof buf);
    kl_writer_init(&w, buf, 7);
    assert_int_equal(kl_writer_u64(&w, 1), KL_ETOOBIG);
    assert_int_equal(w.off, 0);
    assert_int_equal(kl_writer_u32(&w, 0x01020304), 0);
    assert_int_equal(kl_writer_u32(&w, 1), KL_ETOOBIG);
    assert_int_equal(kl_writer_u16(&w, 0x0506), 0);
    assert_int_equal(kl_writer_u16(&w, 1), KL_ETOOBIG);
    assert_int_equal(kl_writer_u8(&w, 7), 0);
    assert_int_equal(kl_writer_u8(&w, 8), KL_ETOOBIG);
    assert_int_equal(kl_writer_bytes(&w, (const uint8_t *)"x", 1), KL_ETOOBIG);
    assert_int_equal(kl_writer_bytes(&w, NULL, 0), 0);
    assert_int_equal(w.off, 7);
    assert_int_equal(buf[7], 0x5a);
    assert_int_equal(buf[8], 0x5a);
    assert_int_equal(kl_writer_bytes(&w, buf, SIZE_MAX), KL_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_big_endian),
        cmocka_unit_test(test_reader_bounds),
        cmocka_unit_test(test_reader_bytes_and_view),
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_writer_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
