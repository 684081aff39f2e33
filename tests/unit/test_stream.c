/* kl_stream: two streams talking through memory (NK and KK, inline,
 * deferred and adopted handshakes), against bare kl_noise + kl_wire peers
 * (the bytes on the wire are theirs), fragmentation down to one byte,
 * length limits, garbage and tampering before and after the handshake,
 * the sticky input failure, and the keepalive deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/stream.h"
#include "relay.pb-c.h"

#define MAXF 8

/* One end: its stream and everything its events said. */
typedef struct peer {
    kl_stream_t s;
    int handshakes, ready, errors, frames;
    int err;
    const char *reason;
    int has_remote;
    uint8_t remote[32];
    uint8_t hh[KL_NOISE_HASH];
    size_t payload_len;
    uint8_t payload[KL_STREAM_HS_MAX];
    size_t len[MAXF];
    uint8_t data[MAXF][600];     /* plaintext frames */
    uint64_t nonce[MAXF];        /* ping nonces of decoded frames */
    int stop;                    /* returned for every frame when non-zero */
    /* deferred responder: called for EV_HANDSHAKE when set */
    int (*on_hs)(struct peer *p, const uint8_t *msg, size_t len);
    const uint8_t *sk, *peer_pk; /* keys on_hs uses */
    int take_in_ready;           /* take the output in the READY callback */
    size_t taken_len;
    uint8_t taken[KL_STREAM_OUT_MAX];
} peer_t;

static uint8_t g_relay_pk[32], g_relay_sk[32], g_a_pk[32], g_a_sk[32];

static int setup(void **state)
{
    (void)state;
    if (kl_crypto_init() != 0)
        return -1;
    kl_x_keypair(g_relay_pk, g_relay_sk);
    kl_x_keypair(g_a_pk, g_a_sk);
    return 0;
}

static int on_event(void *ud, kl_stream_event_t *ev)
{
    peer_t *p = ud;
    switch (ev->type) {
    case KL_STREAM_EV_HANDSHAKE:
        p->handshakes++;
        return p->on_hs ? p->on_hs(p, ev->data, ev->len) : 0;
    case KL_STREAM_EV_READY:
        p->ready++;
        p->has_remote = ev->remote_static != NULL;
        if (ev->remote_static)
            memcpy(p->remote, ev->remote_static, 32);
        memcpy(p->hh, ev->hh, sizeof p->hh);
        assert_memory_equal(ev->hh, kl_stream_hh(&p->s), KL_NOISE_HASH);
        assert_true(ev->len <= sizeof p->payload);
        memcpy(p->payload, ev->data, ev->len);
        p->payload_len = ev->len;
        if (p->take_in_ready)
            assert_int_equal(kl_stream_take(&p->s, p->taken, sizeof p->taken, &p->taken_len), 0);
        return 0;
    case KL_STREAM_EV_FRAME:
        assert_true(p->frames < MAXF);
        if (ev->frame != NULL) {
            assert_int_equal(ev->frame->body_case, KOLLEGA__RELAY__V1__FRAME__BODY_PING);
            p->nonce[p->frames] = ev->frame->ping->nonce;
            kl_wire_free(ev->frame);
        } else {
            assert_true(ev->len <= sizeof p->data[0]);
            if (ev->len > 0)
                memcpy(p->data[p->frames], ev->data, ev->len);
            p->len[p->frames] = ev->len;
        }
        p->frames++;
        return p->stop;
    case KL_STREAM_EV_ERROR:
        p->errors++;
        p->err = ev->err;
        p->reason = ev->reason;
        return 0;
    }
    fail();
    return 0;
}

static kl_stream_config_t nk_cfg(int initiator)
{
    kl_stream_config_t c = {
        .pattern = KL_NOISE_NK,
        .initiator = initiator,
        .prologue = (const uint8_t *)KL_PROLOGUE_CLIENT,
        .prologue_len = strlen(KL_PROLOGUE_CLIENT),
        .s = initiator ? NULL : g_relay_sk,
        .rs = initiator ? g_relay_pk : NULL,
        .hs_max = KL_STREAM_HS_MAX,
        .frame_max = KL_FRAME_MAX,
    };
    return c;
}

static kl_stream_config_t kk_cfg(int initiator)
{
    kl_stream_config_t c = {
        .pattern = KL_NOISE_KK,
        .initiator = initiator,
        .prologue = (const uint8_t *)KL_PROLOGUE_FEDERATION,
        .prologue_len = strlen(KL_PROLOGUE_FEDERATION),
        .s = initiator ? g_a_sk : g_relay_sk,
        .rs = initiator ? g_relay_pk : g_a_pk,
        .hs_max = KL_STREAM_HS_MAX,
        .frame_max = KL_FRAME_MAX,
        .plaintext = 1,
    };
    return c;
}

static void peer_init(peer_t *p, const kl_stream_config_t *cfg, uint64_t now)
{
    memset(p, 0, sizeof *p);
    assert_int_equal(kl_stream_init(&p->s, cfg, now), 0);
}

/* Feed n bytes to p in pieces of step bytes (0: at once); the first
 * non-zero result of kl_stream_feed. */
static int feed(peer_t *p, const uint8_t *b, size_t n, uint64_t now, size_t step)
{
    size_t off = 0;
    if (n == 0)
        return kl_stream_feed(&p->s, b, 0, now, on_event, p);
    while (off < n) {
        size_t k = step == 0 || step > n - off ? n - off : step;
        int r = kl_stream_feed(&p->s, b + off, k, now, on_event, p);
        if (r)
            return r;
        off += k;
    }
    return 0;
}

/* Move from's handshake output to to. */
static int pump(peer_t *from, peer_t *to, uint64_t now, size_t step)
{
    uint8_t buf[KL_STREAM_OUT_MAX];
    size_t n = 0;
    assert_int_equal(kl_stream_take(&from->s, buf, sizeof buf, &n), 0);
    assert_true(n > 0);
    return feed(to, buf, n, now, step);
}

/* Initiator a and responder b through a whole handshake. */
static void connect_pair(peer_t *a, peer_t *b, size_t step)
{
    assert_int_equal(kl_stream_start(&a->s), 0);
    assert_int_equal(kl_stream_pending(&a->s), 2 + 48);
    assert_int_equal(pump(a, b, 10, step), 0);
    assert_int_equal(b->ready, 1);
    assert_true(kl_stream_ready(&b->s));
    assert_int_equal(kl_stream_pending(&b->s), 2 + 48);
    assert_int_equal(pump(b, a, 10, step), 0);
    assert_int_equal(a->ready, 1);
    assert_int_equal(kl_stream_pending(&a->s), 0);
    assert_int_equal(kl_stream_pending(&b->s), 0);
    assert_memory_equal(a->hh, b->hh, KL_NOISE_HASH);
}

/* Seal a ping from a into out. */
static size_t seal_ping(peer_t *a, uint64_t nonce, uint8_t *out, size_t cap, uint64_t now)
{
    Kollega__Relay__V1__Ping ping = KOLLEGA__RELAY__V1__PING__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    size_t len = 0;
    ping.nonce = nonce;
    f.id = 1;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_PING;
    f.ping = &ping;
    size_t n = kollega__relay__v1__frame__get_packed_size(&f);
    assert_int_equal(kl_stream_seal_frame(&a->s, &f, n, out, cap, &len, now), 0);
    assert_int_equal(len, KL_WIRE_SIZE(n));
    return len;
}

static void test_nk_frames_both_ways(void **state)
{
    (void)state;
    peer_t a, b;
    kl_stream_config_t ca = nk_cfg(1), cb = nk_cfg(0);
    uint8_t buf[256];
    peer_init(&a, &ca, 0);
    peer_init(&b, &cb, 0);
    assert_null(kl_stream_hh(&a.s));
    connect_pair(&a, &b, 0);
    assert_true(a.has_remote);
    assert_memory_equal(a.remote, g_relay_pk, 32);
    assert_false(b.has_remote); /* NK: the client has no static key */
    assert_int_equal(a.payload_len, 0);
    for (uint64_t i = 1; i <= 3; i++) {
        size_t n = seal_ping(&a, i, buf, sizeof buf, 20);
        assert_int_equal(feed(&b, buf, n, 20, 0), 0);
        n = seal_ping(&b, 100 + i, buf, sizeof buf, 20);
        assert_int_equal(feed(&a, buf, n, 20, 0), 0);
    }
    assert_int_equal(b.frames, 3);
    assert_int_equal(a.frames, 3);
    assert_int_equal(b.nonce[2], 3);
    assert_int_equal(a.nonce[0], 101);
    assert_int_equal(a.errors + b.errors, 0);
    kl_stream_free(&a.s);
    kl_stream_free(&b.s);
    assert_null(a.s.hs);
}

static void test_kk_plaintext_both_ways(void **state)
{
    (void)state;
    peer_t a, b;
    kl_stream_config_t ca = kk_cfg(1), cb = kk_cfg(0);
    uint8_t buf[700], msg[500];
    size_t n = 0;
    peer_init(&a, &ca, 0);
    peer_init(&b, &cb, 0);
    connect_pair(&a, &b, 0);
    assert_true(a.has_remote && b.has_remote);
    assert_memory_equal(a.remote, g_relay_pk, 32);
    assert_memory_equal(b.remote, g_a_pk, 32);
    kl_random(msg, sizeof msg);
    /* Sealed in place (pt = out + 2) and from a separate buffer. */
    memcpy(buf + 2, msg, sizeof msg);
    assert_int_equal(kl_stream_seal(&a.s, buf + 2, sizeof msg, buf, sizeof buf, &n, 5), 0);
    assert_int_equal(n, KL_WIRE_SIZE(sizeof msg));
    assert_int_equal(feed(&b, buf, n, 5, 0), 0);
    assert_int_equal(kl_stream_seal(&b.s, msg, 0, buf, sizeof buf, &n, 5), 0);
    assert_int_equal(feed(&a, buf, n, 5, 0), 0);
    assert_int_equal(b.frames, 1);
    assert_int_equal(b.len[0], sizeof msg);
    assert_memory_equal(b.data[0], msg, sizeof msg);
    assert_int_equal(a.frames, 1);
    assert_int_equal(a.len[0], 0);
    kl_stream_free(&a.s);
    kl_stream_free(&b.s);
}

/* Every byte on its own, both directions, with kl_stream_want saying
 * exactly how much completes the next header or frame. */
static void test_one_byte_at_a_time(void **state)
{
    (void)state;
    peer_t a, b;
    kl_stream_config_t ca = nk_cfg(1), cb = nk_cfg(0);
    uint8_t buf[3 * 64];
    size_t n = 0;
    peer_init(&a, &ca, 0);
    peer_init(&b, &cb, 0);
    assert_int_equal(kl_stream_want(&b.s), 2);
    connect_pair(&a, &b, 1);
    for (uint64_t i = 0; i < 3; i++)
        n += seal_ping(&a, 7 + i, buf + n, sizeof buf - n, 1);
    size_t frame = n / 3;
    for (size_t i = 0; i < n; i++) {
        size_t at = i % frame;
        assert_int_equal(kl_stream_want(&b.s), at < 2 ? 2 - at : frame - at);
        assert_int_equal(feed(&b, buf + i, 1, 1, 0), 0);
        assert_int_equal(b.frames, (int)((i + 1) / frame));
    }
    assert_int_equal(b.nonce[0], 7);
    assert_int_equal(b.nonce[2], 9);
    kl_stream_free(&a.s);
    kl_stream_free(&b.s);
}

/* The relay's way: message 1 held, answered by kl_stream_handshake (on
 * the thread pool there), bytes after it kept for the transport. */
static void test_deferred_responder(void **state)
{
    (void)state;
    peer_t a, b;
    kl_stream_config_t ca = nk_cfg(1), cb = nk_cfg(0);
    uint8_t buf[256];
    size_t n = 0, m = 0;
    cb.defer = 1;
    cb.hs_max = 64;
    peer_init(&a, &ca, 0);
    peer_init(&b, &cb, 0);
    assert_int_equal(kl_stream_start(&a.s), 0);
    assert_int_equal(kl_stream_take(&a.s, buf, sizeof buf, &n), 0);
    /* Message 1 and the first byte of something else. */
    buf[n] = 0;
    assert_int_equal(feed(&b, buf, n + 1, 3, 0), 0);
    assert_int_equal(b.handshakes, 1);
    assert_int_equal(b.ready, 0);
    assert_true(kl_stream_held(&b.s));
    assert_int_equal(kl_stream_pending(&b.s), 0);
    assert_int_equal(kl_stream_handshake(&b.s), 0);
    assert_false(kl_stream_held(&b.s));
    assert_true(kl_stream_ready(&b.s));
    assert_int_equal(b.ready, 0); /* no event outside a feed */
    assert_int_equal(kl_stream_handshake(&b.s), KL_ESTATE);
    assert_int_equal(pump(&b, &a, 4, 0), 0);
    assert_int_equal(a.ready, 1);
    assert_memory_equal(a.hh, kl_stream_hh(&b.s), KL_NOISE_HASH);
    /* The held byte is the first of the next frame. */
    Kollega__Relay__V1__Ping ping = KOLLEGA__RELAY__V1__PING__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    ping.nonce = UINT64_MAX;
    f.id = 0xffffffffu;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_PING;
    f.ping = &ping;
    size_t pn = kollega__relay__v1__frame__get_packed_size(&f);
    assert_int_equal(kl_stream_seal_frame(&a.s, &f, pn, buf, sizeof buf, &m, 5), 0);
    assert_int_equal(buf[0], 0);
    assert_int_equal(feed(&b, buf + 1, m - 1, 5, 0), 0);
    assert_int_equal(b.frames, 1);
    assert_true(b.nonce[0] == UINT64_MAX);
    kl_stream_free(&a.s);
    kl_stream_free(&b.s);
}

static void test_deferred_frame_before_answer(void **state)
{
    (void)state;
    peer_t a, b;
    kl_stream_config_t ca = nk_cfg(1), cb = nk_cfg(0);
    uint8_t buf[256];
    size_t n = 0;
    cb.defer = 1;
    peer_init(&a, &ca, 0);
    peer_init(&b, &cb, 0);
    assert_int_equal(kl_stream_start(&a.s), 0);
    assert_int_equal(kl_stream_take(&a.s, buf, sizeof buf, &n), 0);
    memcpy(buf + n, buf, n); /* message 1 twice */
    assert_int_equal(feed(&b, buf, 2 * n, 3, 0), KL_EPROTO);
    assert_int_equal(b.handshakes, 1);
    assert_int_equal(b.errors, 1);
    assert_string_equal(b.reason, "data before the handshake completed");
    assert_false(kl_stream_held(&b.s));
    assert_int_equal(kl_stream_handshake(&b.s), KL_ESTATE);
    assert_int_equal(feed(&b, buf, 1, 3, 0), KL_ESTATE);
    assert_int_equal(b.errors, 1); /* reported once */
    kl_stream_free(&a.s);
    kl_stream_free(&b.s);
}

/* Federation's way: 16 bytes in front of message 1, the responder finds
 * the peer from them and brings a handshake that has read message 1. */
static int adopt_with_prefix(peer_t *p, const uint8_t *msg, size_t len)
{
    kl_noise_hs_t *hs = NULL;
    uint8_t pl[KL_STREAM_HS_MAX];
    size_t plen = 0;
    kl_noise_config_t nc = {.pattern = KL_NOISE_KK,
                            .prologue = (const uint8_t *)KL_PROLOGUE_FEDERATION,
                            .prologue_len = strlen(KL_PROLOGUE_FEDERATION),
                            .s = p->sk,
                            .rs = p->peer_pk};
    assert_true(len > 16);
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(msg[i], 0xa0 + i);
    assert_int_equal(kl_noise_hs_new(&hs, &nc), 0);
    assert_int_equal(kl_noise_hs_read(hs, msg + 16, len - 16, pl, sizeof pl, &plen), 0);
    assert_int_equal(kl_stream_adopt(&p->s, hs, NULL, 0), 0);
    return 0;
}

static void test_adopted_kk_with_prefix(void **state)
{
    (void)state;
    peer_t a, b;
    kl_stream_config_t ca = {.pattern = KL_NOISE_KK, .initiator = 1, .hs_max = 128,
                             .frame_max = KL_FRAME_MAX, .plaintext = 1};
    kl_stream_config_t cb = ca;
    uint8_t hello[KL_STREAM_HS_MAX], buf[64];
    size_t n = 0;
    cb.initiator = 0;
    cb.defer = 1;
    peer_init(&a, &ca, 0);
    peer_init(&b, &cb, 0);
    b.on_hs = adopt_with_prefix;
    b.sk = g_relay_sk;
    b.peer_pk = g_a_pk;
    b.take_in_ready = 1;
    /* The initiator's own handshake, message 1 behind a prefix. */
    kl_noise_hs_t *hs = NULL;
    kl_noise_config_t nc = {.pattern = KL_NOISE_KK,
                            .initiator = 1,
                            .prologue = (const uint8_t *)KL_PROLOGUE_FEDERATION,
                            .prologue_len = strlen(KL_PROLOGUE_FEDERATION),
                            .s = g_a_sk,
                            .rs = g_relay_pk};
    assert_int_equal(kl_noise_hs_new(&hs, &nc), 0);
    for (size_t i = 0; i < 16; i++)
        hello[i] = (uint8_t)(0xa0 + i);
    assert_int_equal(kl_noise_hs_write(hs, NULL, 0, hello + 16, sizeof hello - 16, &n), 0);
    assert_int_equal(kl_stream_adopt(&a.s, hs, hello, 16 + n), 0);
    assert_int_equal(kl_stream_start(&a.s), KL_ESTATE);
    assert_int_equal(kl_stream_pending(&a.s), 2 + 16 + 48);
    assert_int_equal(pump(&a, &b, 1, 0), 0);
    assert_int_equal(b.handshakes, 1);
    assert_int_equal(b.ready, 1);
    assert_int_equal(b.taken_len, 2 + 48);
    assert_int_equal(kl_stream_pending(&b.s), 0);
    assert_int_equal(feed(&a, b.taken, b.taken_len, 2, 0), 0);
    assert_int_equal(a.ready, 1);
    assert_memory_equal(a.hh, b.hh, KL_NOISE_HASH);
    assert_int_equal(kl_stream_seal(&a.s, (const uint8_t *)"fed", 3, buf, sizeof buf, &n, 3), 0);
    assert_int_equal(feed(&b, buf, n, 3, 0), 0);
    assert_int_equal(b.frames, 1);
    assert_memory_equal(b.data[0], "fed", 3);
    /* Adopting twice, or on a stream that holds nothing, is refused (and
     * the handshake handed over is freed all the same). */
    assert_int_equal(kl_noise_hs_new(&hs, &nc), 0);
    assert_int_equal(kl_stream_adopt(&b.s, hs, NULL, 0), KL_ESTATE);
    kl_stream_free(&a.s);
    kl_stream_free(&b.s);
}

/* The stream speaks what bare kl_noise + kl_wire speak, byte for byte:
 * a stream initiator with a bare responder, and the other way round. */
static void test_interop_with_bare_noise(void **state)
{
    (void)state;
    for (int stream_initiates = 0; stream_initiates < 2; stream_initiates++) {
        peer_t p;
        kl_stream_config_t cfg = nk_cfg(stream_initiates);
        kl_noise_config_t nc = {.pattern = KL_NOISE_NK,
                                .initiator = !stream_initiates,
                                .prologue = (const uint8_t *)KL_PROLOGUE_CLIENT,
                                .prologue_len = strlen(KL_PROLOGUE_CLIENT),
                                .s = stream_initiates ? g_relay_sk : NULL,
                                .rs = stream_initiates ? NULL : g_relay_pk};
        kl_noise_hs_t *hs = NULL;
        kl_noise_transport_t t;
        uint8_t buf[256], pl[64];
        size_t n = 0, pn = 0;
        peer_init(&p, &cfg, 0);
        assert_int_equal(kl_noise_hs_new(&hs, &nc), 0);
        if (stream_initiates) {
            assert_int_equal(kl_stream_start(&p.s), 0);
            assert_int_equal(kl_stream_take(&p.s, buf, sizeof buf, &n), 0);
            assert_int_equal((buf[0] << 8) | buf[1], n - 2);
            assert_int_equal(kl_noise_hs_read(hs, buf + 2, n - 2, pl, sizeof pl, &pn), 0);
            assert_int_equal(kl_noise_hs_write(hs, NULL, 0, buf + 2, sizeof buf - 2, &n), 0);
            assert_int_equal(kl_frame_header(n, buf), 0);
            assert_int_equal(feed(&p, buf, n + 2, 0, 0), 0);
        } else {
            assert_int_equal(kl_noise_hs_write(hs, NULL, 0, buf + 2, sizeof buf - 2, &n), 0);
            assert_int_equal(kl_frame_header(n, buf), 0);
            assert_int_equal(feed(&p, buf, n + 2, 0, 0), 0);
            assert_int_equal(kl_stream_take(&p.s, buf, sizeof buf, &n), 0);
            assert_int_equal(kl_noise_hs_read(hs, buf + 2, n - 2, pl, sizeof pl, &pn), 0);
        }
        assert_int_equal(p.ready, 1);
        assert_int_equal(kl_noise_hs_split(hs, &t), 0);
        kl_noise_hs_free(hs);
        assert_memory_equal(t.hh, kl_stream_hh(&p.s), KL_NOISE_HASH);
        /* The stream's sealed frame opens with kl_wire_open; kl_wire_seal's
         * output is the stream's next frame. */
        kl_frame_t *g = NULL;
        n = seal_ping(&p, 42, buf, sizeof buf, 0);
        assert_int_equal(kl_wire_open(&t, buf + 2, n - 2, &g), 0);
        assert_int_equal(g->ping->nonce, 42);
        g->ping->nonce = 43;
        assert_int_equal(kl_wire_seal(&t, g, buf, sizeof buf, &n), 0);
        kl_wire_free(g);
        assert_int_equal(feed(&p, buf, n, 0, 0), 0);
        assert_int_equal(p.frames, 1);
        assert_int_equal(p.nonce[0], 43);
        kl_noise_transport_wipe(&t);
        kl_stream_free(&p.s);
    }
}

/* Lengths are checked from the two header bytes, before any body byte
 * arrives or anything is allocated for it. */
static void test_oversize_and_empty_frames(void **state)
{
    (void)state;
    peer_t a, b;
    kl_stream_config_t ca = nk_cfg(1), cb = nk_cfg(0);
    uint8_t big[2] = {0x00, 0x81}, zero[2] = {0, 0}, buf[256];
    /* Before the handshake: hs_max. */
    cb.hs_max = 128;
    peer_init(&b, &cb, 0);
    assert_int_equal(feed(&b, big, 2, 0, 0), KL_ETOOBIG);
    assert_string_equal(b.reason, "frame too long");
    assert_null(b.s.framer.body);
    assert_int_equal(kl_stream_want(&b.s), 0);
    kl_stream_free(&b.s);
    peer_init(&b, &cb, 0);
    assert_int_equal(feed(&b, zero, 2, 0, 0), KL_EPROTO);
    assert_string_equal(b.reason, "empty frame");
    kl_stream_free(&b.s);
    /* After it: frame_max. */
    for (int k = 0; k < 2; k++) {
        cb.frame_max = 100;
        peer_init(&a, &ca, 0);
        peer_init(&b, &cb, 0);
        connect_pair(&a, &b, 0);
        uint8_t hdr[2];
        assert_int_equal(kl_frame_header(k == 0 ? 101 : 100, hdr), 0);
        int r = feed(&b, hdr, 2, 0, 0);
        if (k == 0) {
            assert_int_equal(r, KL_ETOOBIG);
            assert_int_equal(b.errors, 1);
            assert_null(b.s.framer.body);
        } else {
            assert_int_equal(r, 0); /* allowed: its body is awaited */
            assert_int_equal(kl_stream_want(&b.s), 100);
        }
        /* Sealing is bounded too. */
        size_t n = 0;
        assert_int_equal(kl_stream_seal(&a.s, buf, KL_WIRE_MAX_FRAME + 1, buf, sizeof buf, &n, 0),
                         KL_ETOOBIG);
        assert_int_equal(kl_stream_seal(&a.s, buf, 200, buf, sizeof buf - 100, &n, 0),
                         KL_ETOOBIG);
        kl_stream_free(&a.s);
        kl_stream_free(&b.s);
    }
}

/* Random bytes instead of message 1, data before the handshake started,
 * a wrong relay key: the handshake fails, nothing is answered, and the
 * stream takes no more input. */
static void test_garbage_before_handshake(void **state)
{
    (void)state;
    peer_t a, b;
    kl_stream_config_t ca = nk_cfg(1), cb = nk_cfg(0);
    uint8_t buf[128];
    size_t n = 0;
    peer_init(&b, &cb, 0);
    kl_random(buf + 2, 48);
    assert_int_equal(kl_frame_header(48, buf), 0);
    assert_int_equal(feed(&b, buf, 50, 0, 0), KL_ECRYPTO);
    assert_string_equal(b.reason, "handshake failed");
    assert_int_equal(b.ready, 0);
    assert_int_equal(kl_stream_pending(&b.s), 0);
    assert_int_equal(kl_stream_seal(&b.s, buf, 1, buf, sizeof buf, &n, 0), KL_ESTATE);
    assert_int_equal(feed(&b, buf, 50, 0, 0), KL_ESTATE);
    assert_int_equal(b.errors, 1);
    kl_stream_free(&b.s);

    /* An initiator that has not sent message 1 expects nothing yet. */
    peer_init(&a, &ca, 0);
    assert_int_equal(feed(&a, buf, 50, 0, 0), KL_EPROTO);
    assert_string_equal(a.reason, "data before the handshake completed");
    assert_int_equal(kl_stream_start(&a.s), KL_ESTATE);
    kl_stream_free(&a.s);

    /* A client holding the wrong relay key. */
    uint8_t other_pk[32], other_sk[32];
    kl_x_keypair(other_pk, other_sk);
    ca.rs = other_pk;
    peer_init(&a, &ca, 0);
    peer_init(&b, &cb, 0);
    assert_int_equal(kl_stream_start(&a.s), 0);
    assert_int_equal(pump(&a, &b, 0, 0), KL_ECRYPTO);
    assert_int_equal(b.ready, 0);
    kl_stream_free(&a.s);
    kl_stream_free(&b.s);

    /* Missing keys. */
    ca.rs = NULL;
    peer_init(&a, &ca, 0);
    assert_int_equal(kl_stream_start(&a.s), KL_EINVAL);
    kl_stream_free(&a.s);
}

/* After the handshake: random frames, short frames, undecodable frames.
 * The output side stays usable for a last (error) frame. */
static void test_garbage_after_handshake(void **state)
{
    (void)state;
    struct {
        size_t len;
        int plain;     /* a valid transport message of junk plaintext */
        int err;
        const char *reason;
    } cases[] = {
        {64, 0, KL_ECRYPTO, "decryption failed"},
        {15, 0, KL_EPROTO, "undecodable frame"},
        {64, 1, KL_EPROTO, "undecodable frame"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        peer_t a, b;
        kl_stream_config_t ca = nk_cfg(1), cb = nk_cfg(0);
        uint8_t junk[64], buf[256];
        size_t n = 0;
        peer_init(&a, &ca, 0);
        peer_init(&b, &cb, 0);
        connect_pair(&a, &b, 0);
        memset(junk, 0xff, sizeof junk);
        if (cases[i].plain) {
            assert_int_equal(kl_stream_seal(&a.s, junk, cases[i].len, buf, sizeof buf, &n, 0), 0);
        } else {
            kl_random(buf + 2, cases[i].len);
            assert_int_equal(kl_frame_header(cases[i].len, buf), 0);
            n = cases[i].len + 2;
        }
        assert_int_equal(feed(&b, buf, n, 0, 0), cases[i].err);
        assert_int_equal(b.errors, 1);
        assert_int_equal(b.frames, 0);
        assert_string_equal(b.reason, cases[i].reason);
        n = seal_ping(&a, 1, buf, sizeof buf, 0);
        assert_int_equal(feed(&b, buf, n, 0, 0), KL_ESTATE);
        assert_int_equal(kl_stream_want(&b.s), 0);
        n = seal_ping(&b, 2, buf, sizeof buf, 0);
        assert_int_equal(feed(&a, buf, n, 0, 0), 0);
        assert_int_equal(a.frames, 1);
        kl_stream_free(&a.s);
        kl_stream_free(&b.s);
    }
}

/* Any changed bit of a sealed frame, and a replayed frame, fail to open. */
static void test_tampered_ciphertext(void **state)
{
    (void)state;
    uint8_t buf[256], copy[256];
    size_t n = 0;
    peer_t a, b;
    kl_stream_config_t ca = nk_cfg(1), cb = nk_cfg(0);
    peer_init(&a, &ca, 0);
    peer_init(&b, &cb, 0);
    connect_pair(&a, &b, 0);
    n = seal_ping(&a, 5, buf, sizeof buf, 0);
    for (size_t i = 2; i < n; i++) {
        peer_t t = b; /* the same receiving state each time */
        memcpy(copy, buf, n);
        copy[i] ^= 0x01;
        assert_int_equal(kl_stream_feed(&t.s, copy, n, 0, on_event, &t), KL_ECRYPTO);
        assert_string_equal(t.reason, "decryption failed");
        assert_int_equal(t.frames, 0);
    }
    assert_int_equal(feed(&b, buf, n, 0, 0), 0);
    assert_int_equal(b.frames, 1);
    assert_int_equal(feed(&b, buf, n, 0, 0), KL_ECRYPTO); /* replay */
    assert_int_equal(b.frames, 1);
    kl_stream_free(&a.s);
    kl_stream_free(&b.s);
}

/* Nothing is sealed before the handshake, nor before the answer is
 * taken; a transport message in place of message 2 is a failed handshake,
 * never a frame. */
static void test_no_frames_before_handshake(void **state)
{
    (void)state;
    peer_t a, b, c, d;
    kl_stream_config_t ca = nk_cfg(1), cb = nk_cfg(0);
    uint8_t buf[256], msg[KL_STREAM_OUT_MAX];
    size_t n = 0, m = 0;
    peer_init(&a, &ca, 0);
    peer_init(&b, &cb, 0);
    assert_int_equal(kl_stream_seal(&a.s, buf, 1, buf, sizeof buf, &n, 0), KL_ESTATE);
    assert_int_equal(kl_stream_start(&a.s), 0);
    assert_int_equal(kl_stream_take(&a.s, msg, sizeof msg, &m), 0);
    assert_int_equal(feed(&b, msg, m, 0, 0), 0);
    assert_true(kl_stream_ready(&b.s));
    assert_int_equal(kl_stream_seal(&b.s, buf, 1, buf, sizeof buf, &n, 0), KL_ESTATE);
    assert_int_equal(kl_stream_take(&b.s, buf, 10, &n), KL_ETOOBIG);
    /* A second pair's transport frame, to the first initiator. */
    peer_init(&c, &ca, 0);
    peer_init(&d, &cb, 0);
    connect_pair(&c, &d, 0);
    n = seal_ping(&d, 1, buf, sizeof buf, 0);
    assert_int_equal(feed(&a, buf, n, 0, 0), KL_EPROTO);
    assert_string_equal(a.reason, "handshake failed");
    assert_int_equal(a.frames + a.ready, 0);
    kl_stream_free(&a.s);
    kl_stream_free(&b.s);
    kl_stream_free(&c.s);
    kl_stream_free(&d.s);
}

/* A handshake payload over payload_max fails; within it, it is handed up. */
static void test_handshake_payload(void **state)
{
    (void)state;
    for (size_t max = 0; max <= 8; max += 8) {
        peer_t b;
        kl_stream_config_t cb = nk_cfg(0);
        kl_noise_config_t nc = {.pattern = KL_NOISE_NK,
                                .initiator = 1,
                                .prologue = (const uint8_t *)KL_PROLOGUE_CLIENT,
                                .prologue_len = strlen(KL_PROLOGUE_CLIENT),
                                .rs = g_relay_pk};
        kl_noise_hs_t *hs = NULL;
        uint8_t buf[128];
        size_t n = 0;
        cb.payload_max = max;
        peer_init(&b, &cb, 0);
        assert_int_equal(kl_noise_hs_new(&hs, &nc), 0);
        assert_int_equal(kl_noise_hs_write(hs, (const uint8_t *)"hi", 2, buf + 2, 126, &n), 0);
        assert_int_equal(kl_frame_header(n, buf), 0);
        kl_noise_hs_free(hs);
        if (max == 0) {
            assert_int_equal(feed(&b, buf, n + 2, 0, 0), KL_EPROTO);
            assert_string_equal(b.reason, "handshake failed");
        } else {
            assert_int_equal(feed(&b, buf, n + 2, 0, 0), 0);
            assert_int_equal(b.ready, 1);
            assert_int_equal(b.payload_len, 2);
            assert_memory_equal(b.payload, "hi", 2);
        }
        kl_stream_free(&b.s);
    }
}

/* A callback's non-zero return stops the feed for good; sealing goes on. */
static void test_callback_stops(void **state)
{
    (void)state;
    peer_t a, b;
    kl_stream_config_t ca = nk_cfg(1), cb = nk_cfg(0);
    uint8_t buf[256];
    size_t n = 0;
    peer_init(&a, &ca, 0);
    peer_init(&b, &cb, 0);
    connect_pair(&a, &b, 0);
    n = seal_ping(&a, 1, buf, sizeof buf, 0);
    n += seal_ping(&a, 2, buf + n, sizeof buf - n, 0);
    b.stop = 7;
    assert_int_equal(feed(&b, buf, n, 0, 0), 7);
    assert_int_equal(b.frames, 1);
    assert_int_equal(b.errors, 0);
    assert_int_equal(feed(&b, buf, 1, 0, 0), KL_ESTATE);
    n = seal_ping(&b, 3, buf, sizeof buf, 0);
    assert_int_equal(feed(&a, buf, n, 0, 0), 0);
    assert_int_equal(a.nonce[0], 3);
    kl_stream_free(&a.s);
    kl_stream_free(&b.s);
}

static void test_keepalive(void **state)
{
    (void)state;
    peer_t a, b;
    kl_stream_config_t ca = nk_cfg(1), cb = nk_cfg(0);
    uint64_t next = 0;
    uint8_t buf[256];
    size_t n = 0;
    /* No deadline at all. */
    peer_init(&a, &ca, 1000);
    assert_int_equal(kl_stream_tick(&a.s, 1u << 30, &next), 0);
    assert_true(next == UINT64_MAX);
    kl_stream_free(&a.s);
    /* The handshake deadline, from kl_stream_init. */
    cb.handshake_ms = 500;
    peer_init(&b, &cb, 1000);
    assert_int_equal(kl_stream_tick(&b.s, 1499, &next), 0);
    assert_int_equal(next, 1500);
    assert_int_equal(kl_stream_tick(&b.s, 1500, NULL), KL_ETIMEDOUT);
    assert_int_equal(kl_stream_last_rx(&b.s), 1000);
    /* Completed in time: the deadline no longer applies, keepalive does. */
    peer_init(&a, &ca, 1000);
    assert_int_equal(kl_stream_start(&a.s), 0);
    assert_int_equal(pump(&a, &b, 1200, 0), 0);
    assert_int_equal(pump(&b, &a, 1200, 0), 0);
    assert_int_equal(kl_stream_tick(&b.s, 5000, &next), 0);
    assert_true(next == UINT64_MAX);
    kl_stream_keepalive(&b.s, 300, 100);
    assert_int_equal(kl_stream_last_rx(&b.s), 1200);
    assert_int_equal(kl_stream_last_tx(&b.s), 1000);
    assert_int_equal(kl_stream_tick(&b.s, 1050, &next), 0);
    assert_int_equal(next, 1100);                 /* ping due 100 after the last send */
    assert_int_equal(kl_stream_tick(&b.s, 1100, &next), 1);
    assert_int_equal(next, 1100);
    n = seal_ping(&b, 1, buf, sizeof buf, 1150);  /* the caller's ping */
    assert_int_equal(kl_stream_last_tx(&b.s), 1150);
    assert_int_equal(kl_stream_tick(&b.s, 1150, &next), 0);
    assert_int_equal(next, 1250);
    assert_int_equal(kl_stream_tick(&b.s, 1260, &next), 1);
    assert_int_equal(next, 1250);
    kl_stream_keepalive(&b.s, 300, 0);
    assert_int_equal(kl_stream_tick(&b.s, 1499, &next), 0);
    assert_int_equal(next, 1500);                 /* dead 300 after the last receipt */
    assert_int_equal(kl_stream_tick(&b.s, 1500, &next), KL_ETIMEDOUT);
    assert_int_equal(feed(&a, buf, n, 1400, 0), 0);
    n = seal_ping(&a, 2, buf, sizeof buf, 1400);
    assert_int_equal(feed(&b, buf, n, 1400, 0), 0); /* any receipt pushes it back */
    assert_int_equal(kl_stream_tick(&b.s, 1600, &next), 0);
    assert_int_equal(next, 1700);
    /* Partial frames count as life too. */
    n = seal_ping(&a, 3, buf, sizeof buf, 1650);
    assert_int_equal(feed(&b, buf, 1, 1650, 0), 0);
    assert_int_equal(kl_stream_tick(&b.s, 1700, &next), 0);
    assert_int_equal(next, 1950);
    kl_stream_free(&a.s);
    kl_stream_free(&b.s);
}

static void test_bad_config(void **state)
{
    (void)state;
    kl_stream_t s;
    kl_stream_config_t c = nk_cfg(1);
    memset(&s, 0, sizeof s);
    kl_stream_free(&s); /* a zero-filled stream is fine */
    c.pattern = KL_NOISE_XX;
    assert_int_equal(kl_stream_init(&s, &c, 0), KL_EINVAL);
    kl_stream_free(&s);
    c = nk_cfg(1);
    c.hs_max = KL_STREAM_HS_MAX + 1;
    assert_int_equal(kl_stream_init(&s, &c, 0), KL_EINVAL);
    c = nk_cfg(1);
    c.frame_max = 0;
    assert_int_equal(kl_stream_init(&s, &c, 0), KL_EINVAL);
    c = nk_cfg(1);
    c.defer = 1;
    assert_int_equal(kl_stream_init(&s, &c, 0), KL_EINVAL);
    c = nk_cfg(0);
    c.payload_max = KL_STREAM_HS_MAX + 1;
    assert_int_equal(kl_stream_init(&s, &c, 0), KL_EINVAL);
    c = nk_cfg(0);
    assert_int_equal(kl_stream_init(&s, &c, 0), 0);
    assert_int_equal(kl_stream_start(&s), KL_ESTATE); /* a responder */
    assert_int_equal(kl_stream_feed(&s, NULL, 1, 0, on_event, NULL), KL_EINVAL);
    kl_stream_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nk_frames_both_ways),
        cmocka_unit_test(test_kk_plaintext_both_ways),
        cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_deferred_responder),
        cmocka_unit_test(test_deferred_frame_before_answer),
        cmocka_unit_test(test_adopted_kk_with_prefix),
        cmocka_unit_test(test_interop_with_bare_noise),
        cmocka_unit_test(test_oversize_and_empty_frames),
        cmocka_unit_test(test_garbage_before_handshake),
        cmocka_unit_test(test_garbage_after_handshake),
        cmocka_unit_test(test_tampered_ciphertext),
        cmocka_unit_test(test_no_frames_before_handshake),
        cmocka_unit_test(test_handshake_payload),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
