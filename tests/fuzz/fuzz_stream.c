/* kl_stream, the input path of every connection (fuzz_stream.h): bytes in
 * input-chosen chunks, before and after a genuine handshake.
 *
 * Input: u8 mode | u8 chunk seed | rest. Modes (mod 3):
 *   FS_RELAY   the relay's stream reads rest as the client's bytes, handing
 *              a held message 1 to kl_stream_handshake between feeds as
 *              relay/net/conn.c does (seeds carry a real message 1 and
 *              frames sealed for the relay's resulting keys);
 *   FS_CLIENT  a client's stream that has sent message 1 reads rest as the
 *              relay's bytes (seeds: a real message 2 and frames);
 *   FS_PAIR    an established federation pair (plaintext mode); rest is
 *              records u8 flags | u16 len | len bytes: flag 1 seals the
 *              bytes on the initiator (a genuine message), flag 2 then
 *              flips one bit of the framed message, otherwise they go in
 *              raw. The i-th plaintext handed up must be the i-th genuine
 *              one, and every genuine one arrives when nothing else was
 *              sent.
 * Always: nothing before the handshake but the handshake, at most one
 * EV_HANDSHAKE and one EV_READY, nothing after EV_ERROR, and after any
 * failure every feed is KL_ESTATE and nothing is wanted. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_stream.h"
#include "kollega/err.h"
#include "relay.pb-c.h"

#define MAX_GENUINE 4096

typedef struct obs {
    kl_stream_t *s;
    int defer;
    int handshakes, ready, errors, err;
    size_t frames;
    /* FS_PAIR: the genuine plaintexts, in the order they were sealed */
    const uint8_t *gp[MAX_GENUINE];
    size_t gl[MAX_GENUINE], n_genuine;
} obs_t;

static int on_event(void *ud, kl_stream_event_t *ev)
{
    obs_t *o = ud;
    FUZZ_CHECK(o->errors == 0);
    switch (ev->type) {
    case KL_STREAM_EV_HANDSHAKE:
        FUZZ_CHECK(o->defer && o->handshakes++ == 0 && !kl_stream_ready(o->s));
        FUZZ_CHECK(ev->len > 0 && ev->len <= KL_STREAM_HS_MAX);
        break;
    case KL_STREAM_EV_READY:
        FUZZ_CHECK(o->ready++ == 0 && kl_stream_ready(o->s) && ev->hh != NULL);
        FUZZ_CHECK(ev->len <= 64);
        break;
    case KL_STREAM_EV_FRAME:
        FUZZ_CHECK(kl_stream_ready(o->s));
        if (ev->frame != NULL) {
            FUZZ_CHECK(ev->frame->body_case != KOLLEGA__RELAY__V1__FRAME__BODY__NOT_SET);
            kl_wire_free(ev->frame);
        } else {
            FUZZ_CHECK(o->frames < o->n_genuine && ev->len == o->gl[o->frames]);
            FUZZ_CHECK(ev->len == 0 || memcmp(ev->data, o->gp[o->frames], ev->len) == 0);
        }
        o->frames++;
        break;
    case KL_STREAM_EV_ERROR:
        FUZZ_CHECK(ev->err < 0 && ev->reason != NULL);
        o->errors++;
        o->err = ev->err;
        break;
    }
    return 0;
}

static int ignore(void *ud, kl_stream_event_t *ev)
{
    (void)ud;
    FUZZ_CHECK(ev->type == KL_STREAM_EV_READY);
    return 0;
}

/* Feed n bytes in chunks drawn from seed. 1 once the input has failed. */
static int feed_all(obs_t *o, const uint8_t *p, size_t n, uint32_t seed)
{
    size_t pos = 0;
    while (pos < n) {
        seed = seed * 1103515245u + 12345u;
        size_t chunk = (seed >> 16) % 8 == 0 ? (seed >> 8) % 70000 : (seed >> 16) % 5;
        if (chunk == 0)
            chunk = 1;
        if (chunk > n - pos)
            chunk = n - pos;
        int r = kl_stream_feed(o->s, p + pos, chunk, pos, on_event, o);
        pos += chunk;
        if (r != 0) {
            FUZZ_CHECK(r < 0 && o->errors == 1 && r == o->err);
            return 1;
        }
        FUZZ_CHECK(o->errors == 0);
        if (kl_stream_held(o->s)) {
            /* The relay's hand-off: its ephemeral key is the first draw. */
            fuzz_rng_reset(FS_RELAY_SEED);
            if (kl_stream_handshake(o->s) != 0) {
                FUZZ_CHECK(!kl_stream_ready(o->s) && kl_stream_pending(o->s) == 0);
                return 1;
            }
            uint8_t m[KL_STREAM_OUT_MAX];
            size_t mlen = 0;
            FUZZ_CHECK(kl_stream_ready(o->s) && !kl_stream_held(o->s));
            FUZZ_CHECK(kl_stream_take(o->s, m, sizeof m, &mlen) == 0 && mlen == 2 + 48);
        }
    }
    return 0;
}

/* FS_PAIR: build the stream of records, then feed it. */
static void pair(fuzz_in_t *in, uint32_t seed)
{
    static obs_t o;
    static uint8_t wire[1u << 20], pt[KL_NOISE_MAX_MSG];
    kl_stream_t i, r;
    size_t n = 0;
    int clean = 1;
    memset(&o, 0, sizeof o);
    fs_pair(&i, &r, ignore, NULL);
    o.s = &r;
    while (in->left > 0 && o.n_genuine < MAX_GENUINE) {
        uint8_t flags = fuzz_u8(in);
        size_t want = fuzz_u16(in), len = 0, wlen = 0;
        const uint8_t *b = fuzz_bytes(in, want, &len);
        if (sizeof wire - n < KL_WIRE_SIZE(len))
            break;
        if (flags & 1) {
            if (len > KL_NOISE_MAX_PT)
                len = KL_NOISE_MAX_PT;
            memcpy(pt, b, len);
            FUZZ_CHECK(kl_stream_seal(&i, pt, len, wire + n, sizeof wire - n, &wlen, 0) == 0);
            o.gp[o.n_genuine] = b;
            o.gl[o.n_genuine++] = len;
            if (flags & 2) {
                size_t bit = ((size_t)flags >> 2) * 7919u % (wlen * 8);
                wire[n + bit / 8] ^= (uint8_t)(1u << (bit % 8));
                clean = 0;
            }
        } else {
            memcpy(wire + n, b, len);
            wlen = len;
            clean &= len == 0;
        }
        n += wlen;
    }
    int failed = feed_all(&o, wire, n, seed);
    FUZZ_CHECK(o.frames <= o.n_genuine);
    if (clean)
        FUZZ_CHECK(!failed && o.frames == o.n_genuine);
    if (failed)
        FUZZ_CHECK(kl_stream_feed(&r, wire, 1, 0, on_event, &o) == KL_ESTATE);
    kl_stream_free(&i);
    kl_stream_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static obs_t o;
    fuzz_in_t in = {data, size};
    fuzz_init();
    uint8_t mode = fuzz_u8(&in) % 3;
    uint32_t seed = fuzz_u8(&in);
    if (mode == FS_PAIR) {
        pair(&in, seed);
        return 0;
    }
    kl_stream_t s;
    memset(&o, 0, sizeof o);
    o.s = &s;
    o.defer = mode == FS_RELAY;
    if (mode == FS_RELAY) {
        fs_relay(&s);
    } else {
        uint8_t m[KL_STREAM_OUT_MAX];
        size_t mlen = 0;
        fs_client(&s);
        FUZZ_CHECK(kl_stream_take(&s, m, sizeof m, &mlen) == 0 && mlen == 2 + 48);
    }
    int failed = feed_all(&o, in.p, in.left, seed);
    uint8_t out[256];
    size_t olen = 0;
    if (failed) {
        FUZZ_CHECK(kl_stream_feed(&s, data, 1, 0, on_event, &o) == KL_ESTATE);
        FUZZ_CHECK(kl_stream_want(&s) == 0 && !kl_stream_held(&s));
    } else {
        FUZZ_CHECK(kl_stream_want(&s) > 0);
    }
    /* Sealing works exactly once the handshake is done. */
    int sr = kl_stream_seal(&s, data, size < 64 ? size : 64, out, sizeof out, &olen, 0);
    FUZZ_CHECK(kl_stream_ready(&s) ? sr == 0 : sr == KL_ESTATE);
    FUZZ_CHECK(o.ready == (kl_stream_ready(&s) && mode == FS_CLIENT));
    kl_stream_free(&s);
    return 0;
}
