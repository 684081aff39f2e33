/* client/rpc_log.c: a deliver frame as the client reads it. Entries come
 * out in seq order whatever order the relay sent them in (the inbox, a
 * group's log and a channel's posts alike), and a deliver about another
 * log than the one asked for carries nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/noise.h"
#include "kollega/wire.h"
#include "relay.pb-c.h"
#include "rpc.h"

typedef struct pair {
    kl_noise_transport_t c; /* client (initiator) */
    kl_noise_transport_t r; /* relay (responder) */
} pair_t;

static int setup(void **state)
{
    uint8_t pub[32], priv[32], m[128], p[128];
    size_t ml, pl;
    kl_noise_hs_t *hi = NULL, *hr = NULL;
    pair_t *pr = calloc(1, sizeof *pr);
    if (pr == NULL || kl_crypto_init() != 0)
        return -1;
    kl_x_keypair(pub, priv);
    kl_noise_config_t ci = {KL_NOISE_NK, 1, 0, (const uint8_t *)"kollega/1", 9, NULL, pub,
                            NULL, NULL};
    kl_noise_config_t cr = {KL_NOISE_NK, 0, 0, (const uint8_t *)"kollega/1", 9, priv, NULL,
                            NULL, NULL};
    if (kl_noise_hs_new(&hi, &ci) || kl_noise_hs_new(&hr, &cr) ||
        kl_noise_hs_write(hi, NULL, 0, m, sizeof m, &ml) ||
        kl_noise_hs_read(hr, m, ml, p, sizeof p, &pl) ||
        kl_noise_hs_write(hr, NULL, 0, m, sizeof m, &ml) ||
        kl_noise_hs_read(hi, m, ml, p, sizeof p, &pl) || kl_noise_hs_split(hi, &pr->c) ||
        kl_noise_hs_split(hr, &pr->r))
        return -1;
    kl_noise_hs_free(hi);
    kl_noise_hs_free(hr);
    *state = pr;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* f as the client receives it: sealed by the relay side, opened. */
static kl_frame_t *received(pair_t *pr, const kl_frame_t *f)
{
    uint8_t *wire = NULL;
    size_t len = 0;
    kl_frame_t *out = NULL;
    assert_int_equal(kl_wire_seal_alloc(&pr->r, f, &wire, &len), 0);
    assert_int_equal(kl_wire_open(&pr->c, wire + 2, len - 2, &out), 0);
    free(wire);
    return out;
}

/* A deliver naming group and channel, with entries of these seqs (body:
 * the seq as text). */
static kl_frame_t *deliver(pair_t *pr, const char *group, const char *channel,
                           const uint64_t *seqs, size_t n, int more)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Deliver d = KOLLEGA__RELAY__V1__DELIVER__INIT;
    Kollega__Relay__V1__Entry e[8], *ep[8];
    char text[8][8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        Kollega__Relay__V1__Entry init = KOLLEGA__RELAY__V1__ENTRY__INIT;
        e[i] = init;
        e[i].seq = seqs[i];
        e[i].ts = 1000 + seqs[i];
        snprintf(text[i], sizeof text[i], "%llu", (unsigned long long)seqs[i]);
        e[i].body.data = (uint8_t *)text[i];
        e[i].body.len = strlen(text[i]);
        ep[i] = &e[i];
    }
    d.entries = ep;
    d.n_entries = n;
    d.more = more;
    if (group)
        d.group = (char *)group;
    if (channel)
        d.channel = (char *)channel;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_DELIVER;
    f.deliver = &d;
    return received(pr, &f);
}

static void check_seqs(const kl_rpc_batch_t *b, const uint64_t *want, size_t n)
{
    char text[8];
    assert_int_equal(b->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(b->entries[i].seq, want[i]);
        assert_int_equal(b->entries[i].ts, 1000 + want[i]);
        snprintf(text, sizeof text, "%llu", (unsigned long long)want[i]);
        assert_int_equal(b->entries[i].len, strlen(text));
        assert_memory_equal(b->entries[i].body, text, strlen(text));
    }
}

static void test_entries_in_seq_order_for_every_log(void **state)
{
    pair_t *pr = *state;
    const uint64_t sent[] = {7, 3, 0, 5, 4};
    const uint64_t want[] = {3, 4, 5, 7};
    kl_rpc_batch_t b;
    kl_frame_t *f = deliver(pr, NULL, NULL, sent, 5, 1);
    assert_int_equal(kl_rpc_push_is_news(f), 1);
    assert_int_equal(kl_rpc_batch_take(f, NULL, &b), 0);
    check_seqs(&b, want, 4);
    assert_int_equal(b.more, 1);
    kl_rpc_batch_free(&b);
    /* A channel's posts are sorted like the inbox and a group's log. */
    assert_int_equal(kl_rpc_batch_take(deliver(pr, NULL, "!news@oslo.test", sent, 5, 0),
                                       "!news@oslo.test", &b), 0);
    check_seqs(&b, want, 4);
    assert_int_equal(b.more, 0);
    kl_rpc_batch_free(&b);
    assert_int_equal(kl_rpc_batch_take(deliver(pr, "#erfa@oslo.test", NULL, sent, 5, 1),
                                       "#erfa@oslo.test", &b), 0);
    check_seqs(&b, want, 4);
    kl_rpc_batch_free(&b);
}

static void test_deliver_about_another_log_is_empty(void **state)
{
    pair_t *pr = *state;
    const uint64_t sent[] = {1, 2};
    kl_rpc_batch_t b;
    assert_int_equal(kl_rpc_batch_take(deliver(pr, NULL, "!other@oslo.test", sent, 2, 1),
                                       "!news@oslo.test", &b), 0);
    assert_int_equal(b.n, 0);
    assert_int_equal(b.more, 0);
    kl_rpc_batch_free(&b);
    assert_int_equal(kl_rpc_batch_take(deliver(pr, "#other@oslo.test", NULL, sent, 2, 1),
                                       "#erfa@oslo.test", &b), 0);
    assert_int_equal(b.n, 0);
    assert_int_equal(b.more, 0);
    kl_rpc_batch_free(&b);
}

static void test_other_frames_are_no_deliver(void **state)
{
    pair_t *pr = *state;
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Pong p = KOLLEGA__RELAY__V1__PONG__INIT;
    kl_rpc_batch_t b;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_PONG;
    f.pong = &p;
    kl_frame_t *pong = received(pr, &f);
    assert_int_equal(kl_rpc_push_is_news(pong), 0);
    assert_int_equal(kl_rpc_batch_take(pong, NULL, &b), KL_EPROTO);
    assert_null(b.frame);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries_in_seq_order_for_every_log),
        cmocka_unit_test(test_deliver_about_another_log_is_empty),
        cmocka_unit_test(test_other_frames_are_no_deliver),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
