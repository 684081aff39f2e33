/* L1 framing: reassembly from any split of the stream, limits checked
 * before allocation, sticky failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/err.h"
#include "kollega/frame.h"

#define MAXF 8

/* Collects the frames the framer delivers. */
typedef struct sink {
    size_t count;
    size_t len[MAXF];
    uint8_t data[MAXF][300];
    int fail_at; /* return an error on this frame (1-based), 0 never */
} sink_t;

static int collect(void *ud, const uint8_t *frame, size_t len)
{
    sink_t *s = ud;
    assert_true(s->count < MAXF);
    assert_true(len <= sizeof s->data[0]);
    s->len[s->count] = len;
    memcpy(s->data[s->count], frame, len);
    s->count++;
    if (s->fail_at != 0 && (size_t)s->fail_at == s->count)
        return -42;
    return 0;
}

/* Three frames of lengths 1, 5 and 260 (a two-byte length) in one stream. */
static size_t make_stream(uint8_t *buf)
{
    size_t lens[3] = {1, 5, 260}, off = 0;
    for (size_t f = 0; f < 3; f++) {
        assert_int_equal(kl_frame_header(lens[f], buf + off), 0);
        off += 2;
        for (size_t i = 0; i < lens[f]; i++)
            buf[off++] = (uint8_t)(f * 50 + i);
    }
    return off;
}

static void check_stream(const sink_t *s)
{
    size_t lens[3] = {1, 5, 260};
    assert_int_equal(s->count, 3);
    for (size_t f = 0; f < 3; f++) {
        assert_int_equal(s->len[f], lens[f]);
        for (size_t i = 0; i < lens[f]; i++)
            assert_int_equal(s->data[f][i], (uint8_t)(f * 50 + i));
    }
}

static void test_byte_at_a_time(void **state)
{
    (void)state;
    uint8_t buf[400];
    sink_t s = {0};
    kl_framer_t fr;
    size_t n = make_stream(buf);
    kl_framer_init(&fr, KL_FRAME_MAX);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(kl_framer_feed(&fr, buf + i, 1, collect, &s), 0);
        /* pending exactly while inside a frame */
        int at_boundary = i + 1 == 3 || i + 1 == 10 || i + 1 == n;
        assert_int_equal(kl_framer_pending(&fr), !at_boundary);
    }
    check_stream(&s);
    kl_framer_free(&fr);
}

static void test_several_frames_in_one_feed(void **state)
{
    (void)state;
    uint8_t buf[400];
    sink_t s = {0};
    kl_framer_t fr;
    size_t n = make_stream(buf);
    kl_framer_init(&fr, KL_FRAME_MAX);
    assert_int_equal(kl_framer_feed(&fr, buf, n, collect, &s), 0);
    check_stream(&s);
    assert_false(kl_framer_pending(&fr));
    kl_framer_free(&fr);
}

/* Every two-way split of the stream gives the same frames. */
static void test_every_split(void **state)
{
    (void)state;
    uint8_t buf[400];
    size_t n = make_stream(buf);
    for (size_t cut = 0; cut <= n; cut++) {
        sink_t s = {0};
        kl_framer_t fr;
        kl_framer_init(&fr, KL_FRAME_MAX);
        assert_int_equal(kl_framer_feed(&fr, buf, cut, collect, &s), 0);
        assert_int_equal(kl_framer_feed(&fr, buf + cut, n - cut, collect, &s), 0);
        check_stream(&s);
        kl_framer_free(&fr);
    }
}

static void test_zero_length_is_eproto(void **state)
{
    (void)state;
    const uint8_t z[] = {0x00, 0x00, 0x00, 0x01, 0xaa};
    sink_t s = {0};
    kl_framer_t fr;
    kl_framer_init(&fr, KL_FRAME_MAX);
    assert_int_equal(kl_framer_feed(&fr, z, sizeof z, collect, &s), KL_EPROTO);
    assert_int_equal(s.count, 0);
    kl_framer_free(&fr);
}

/* A header announcing more than max_len fails at once, before the body
 * arrives and without allocating it. */
static void test_over_max_is_etoobig_before_alloc(void **state)
{
    (void)state;
    const uint8_t hdr[] = {0x01, 0x01}; /* 257 */
    sink_t s = {0};
    kl_framer_t fr;
    kl_framer_init(&fr, 256);
    assert_int_equal(kl_framer_feed(&fr, hdr, 1, collect, &s), 0);
    assert_int_equal(kl_framer_feed(&fr, hdr + 1, 1, collect, &s), KL_ETOOBIG);
    assert_null(fr.body);
    assert_int_equal(s.count, 0);
    kl_framer_free(&fr);

    /* Exactly max_len is accepted. */
    uint8_t ok[2 + 256];
    memset(ok, 0x11, sizeof ok);
    ok[0] = 0x01;
    ok[1] = 0x00;
    kl_framer_init(&fr, 256);
    assert_int_equal(kl_framer_feed(&fr, ok, sizeof ok, collect, &s), 0);
    assert_int_equal(s.count, 1);
    assert_int_equal(s.len[0], 256);
    kl_framer_free(&fr);

    /* max_len is capped at 65535. */
    kl_framer_init(&fr, 1000000);
    assert_int_equal(fr.max_len, KL_FRAME_MAX);
}

static void test_failure_is_sticky(void **state)
{
    (void)state;
    const uint8_t bad[] = {0x00, 0x00};
    const uint8_t good[] = {0x00, 0x01, 0x55};
    sink_t s = {0};
    kl_framer_t fr;
    kl_framer_init(&fr, KL_FRAME_MAX);
    assert_int_equal(kl_framer_feed(&fr, bad, sizeof bad, collect, &s), KL_EPROTO);
    assert_int_equal(kl_framer_feed(&fr, good, sizeof good, collect, &s), KL_ESTATE);
    assert_int_equal(s.count, 0);
    kl_framer_free(&fr);

    /* A callback error stops feeding, is returned, and is sticky too. */
    uint8_t buf[400];
    size_t n = make_stream(buf);
    sink_t s2 = {0};
    s2.fail_at = 2;
    kl_framer_init(&fr, KL_FRAME_MAX);
    assert_int_equal(kl_framer_feed(&fr, buf, n, collect, &s2), -42);
    assert_int_equal(s2.count, 2);
    assert_int_equal(kl_framer_feed(&fr, good, sizeof good, collect, &s2), KL_ESTATE);
    kl_framer_free(&fr);

    /* Same through the buffered (split) path. */
    sink_t s3 = {0};
    s3.fail_at = 3;
    kl_framer_init(&fr, KL_FRAME_MAX);
    for (size_t i = 0; i + 1 < n; i++)
        assert_int_equal(kl_framer_feed(&fr, buf + i, 1, collect, &s3), 0);
    assert_int_equal(kl_framer_feed(&fr, buf + n - 1, 1, collect, &s3), -42);
    assert_int_equal(kl_framer_feed(&fr, good, sizeof good, collect, &s3), KL_ESTATE);
    kl_framer_free(&fr);
}

/* Freeing mid-frame releases the partial body. */
static void test_free_mid_frame(void **state)
{
    (void)state;
    const uint8_t part[] = {0x00, 0x10, 1, 2, 3};
    sink_t s = {0};
    kl_framer_t fr;
    kl_framer_init(&fr, KL_FRAME_MAX);
    assert_int_equal(kl_framer_feed(&fr, part, sizeof part, collect, &s), 0);
    assert_true(kl_framer_pending(&fr));
    kl_framer_free(&fr);
    assert_false(kl_framer_pending(&fr));
}

static void test_header(void **state)
{
    (void)state;
    uint8_t h[2];
    assert_int_equal(kl_frame_header(0x1234, h), 0);
    assert_int_equal(h[0], 0x12);
    assert_int_equal(h[1], 0x34);
    assert_int_equal(kl_frame_header(KL_FRAME_MAX, h), 0);
    assert_int_equal(h[0], 0xff);
    assert_int_equal(h[1], 0xff);
    assert_int_equal(kl_frame_header(KL_FRAME_MAX + 1, h), KL_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_several_frames_in_one_feed),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_zero_length_is_eproto),
        cmocka_unit_test(test_over_max_is_etoobig_before_alloc),
        cmocka_unit_test(test_failure_is_sticky),
        cmocka_unit_test(test_free_mid_frame),
        cmocka_unit_test(test_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
