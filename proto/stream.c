/* One connection's protocol without I/O: kl_framer for L1, kl_noise for
 * the handshake and the transport, kl_wire for Frames. See stream.h.
 *
 *   init -> handshake (start / message 1 / held for the caller / adopt)
 *        -> ready: every L1 frame one transport message
 *
 * The handshake's state (configuration, Noise handshake, the held
 * message, the pending answer) lives in one heap block that exists only
 * until the handshake is done and its output taken, so a connection that
 * is up carries only the framer, the transport keys and a few counters. */
#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/stream.h"

struct kl_stream_hs {
    kl_noise_hs_t *hs;           /* NULL before start / message 1 / adopt, and once split */
    kl_noise_pattern_t pattern;
    int initiator;
    int defer;
    int started;                 /* the Noise handshake exists or existed */
    const uint8_t *prologue;
    size_t prologue_len;
    const uint8_t *s, *rs;
    size_t frame_max, payload_max;
    int held;                    /* msg holds the deferred message 1 */
    size_t msg_len;
    uint8_t msg[KL_STREAM_HS_MAX];
    size_t out_len;
    uint8_t out[KL_STREAM_OUT_MAX];
    size_t payload_len;
    uint8_t payload[KL_STREAM_HS_MAX];
    int has_rs;
    uint8_t remote[32];
};

/* One kl_stream_feed call: the caller's callback, and what stopped it. */
typedef struct feed {
    kl_stream_t *s;
    kl_stream_cb cb;
    void *ud;
    int stopped;                 /* the callback returned non-zero */
    const char *reason;          /* set with a failure found in on_l1 */
} feed_t;

static void hs_drop(kl_stream_t *s)
{
    if (s->hs == NULL)
        return;
    kl_noise_hs_free(s->hs->hs);
    kl_free_wipe(s->hs, sizeof *s->hs);
    s->hs = NULL;
}

/* a + b, or UINT64_MAX when that does not fit: a deadline never wraps. */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

int kl_stream_init(kl_stream_t *s, const kl_stream_config_t *cfg, uint64_t now)
{
    memset(s, 0, sizeof *s);
    if (cfg == NULL || (cfg->pattern != KL_NOISE_NK && cfg->pattern != KL_NOISE_KK) ||
        cfg->hs_max == 0 || cfg->hs_max > KL_STREAM_HS_MAX || cfg->frame_max == 0 ||
        cfg->frame_max > KL_FRAME_MAX || cfg->payload_max > KL_STREAM_HS_MAX ||
        (cfg->defer && cfg->initiator) || (cfg->prologue == NULL && cfg->prologue_len > 0))
        return KL_EINVAL;
    struct kl_stream_hs *h = calloc(1, sizeof *h);
    if (h == NULL)
        return KL_ENOMEM;
    h->pattern = cfg->pattern;
    h->initiator = cfg->initiator != 0;
    h->defer = cfg->defer != 0;
    h->prologue = cfg->prologue;
    h->prologue_len = cfg->prologue_len;
    h->s = cfg->s;
    h->rs = cfg->rs;
    h->frame_max = cfg->frame_max;
    h->payload_max = cfg->payload_max;
    s->hs = h;
    kl_framer_init(&s->framer, cfg->hs_max);
    s->plaintext = cfg->plaintext != 0;
    s->last_rx = s->last_tx = now;
    if (cfg->handshake_ms > 0)
        s->deadline = add_sat(now, cfg->handshake_ms);
    return 0;
}

void kl_stream_free(kl_stream_t *s)
{
    if (s == NULL)
        return;
    hs_drop(s);
    kl_framer_free(&s->framer);
    kl_noise_transport_wipe(&s->tr);
    kl_memzero(s, sizeof *s);
}

/* The input side is over: every later feed is KL_ESTATE. The handshake
 * state goes at once (nothing more can be done with it). */
static int fail(kl_stream_t *s, int err)
{
    s->failed = 1;
    s->framer.failed = 1;
    if (!s->ready)
        hs_drop(s);
    return err;
}

/* Write every message that is ours to write, then split once the pattern
 * is done: the transport replaces the handshake, and from then on frames
 * up to frame_max are accepted. */
static int advance(kl_stream_t *s)
{
    struct kl_stream_hs *h = s->hs;
    while (kl_noise_hs_my_turn(h->hs)) {
        size_t n = 0;
        if (sizeof h->out - h->out_len < KL_FRAME_HDR)
            return KL_ETOOBIG;
        uint8_t *p = h->out + h->out_len;
        int r = kl_noise_hs_write(h->hs, NULL, 0, p + KL_FRAME_HDR,
                                  sizeof h->out - h->out_len - KL_FRAME_HDR, &n);
        if (r == 0)
            r = kl_frame_header(n, p);
        if (r)
            return r;
        h->out_len += KL_FRAME_HDR + n;
    }
    if (!kl_noise_hs_done(h->hs))
        return 0;
    h->has_rs = kl_noise_hs_remote_static(h->hs, h->remote) == 0;
    int r = kl_noise_hs_split(h->hs, &s->tr);
    kl_noise_hs_free(h->hs);
    h->hs = NULL;
    if (r)
        return r;
    s->framer.max_len = h->frame_max;
    s->ready = 1;
    return 0;
}

/* A new Noise handshake from the configuration. */
static int hs_new(struct kl_stream_hs *h)
{
    kl_noise_config_t nc = {
        .pattern = h->pattern,
        .initiator = h->initiator,
        .prologue = h->prologue,
        .prologue_len = h->prologue_len,
        .s = h->s,
        .rs = h->rs,
    };
    h->started = 1;
    return kl_noise_hs_new(&h->hs, &nc);
}

/* Read the peer's handshake message and answer it if it is our turn. */
static int hs_read(kl_stream_t *s, const uint8_t *msg, size_t len)
{
    struct kl_stream_hs *h = s->hs;
    size_t plen = 0;
    int r = kl_noise_hs_read(h->hs, msg, len, h->payload, sizeof h->payload, &plen);
    if (r == 0 && plen > h->payload_max)
        r = KL_EPROTO;
    if (r)
        return r;
    h->payload_len = plen;
    return advance(s);
}

/* The output is taken and the handshake is over: its block goes. */
static void hs_release_if_done(kl_stream_t *s)
{
    if (s->ready && s->hs != NULL && s->hs->out_len == 0)
        hs_drop(s);
}

int kl_stream_start(kl_stream_t *s)
{
    struct kl_stream_hs *h = s->hs;
    if (h == NULL || s->failed || !h->initiator || h->started)
        return KL_ESTATE;
    int r = hs_new(h);
    if (r == 0)
        r = advance(s);
    return r ? fail(s, r) : 0;
}

int kl_stream_adopt(kl_stream_t *s, kl_noise_hs_t *hs, const uint8_t *msg, size_t len)
{
    struct kl_stream_hs *h = s->hs;
    int r = 0;
    if (hs == NULL || (msg == NULL && len > 0)) {
        kl_noise_hs_free(hs);
        return KL_EINVAL;
    }
    if (h == NULL || s->failed || s->ready || (h->initiator ? h->started : !h->held)) {
        kl_noise_hs_free(hs);
        return KL_ESTATE;
    }
    h->hs = hs;
    h->started = 1;
    if (h->held) {
        kl_memzero(h->msg, sizeof h->msg);
        h->held = 0;
    }
    if (len > KL_STREAM_HS_MAX || sizeof h->out - h->out_len < KL_FRAME_HDR + len)
        r = KL_ETOOBIG;
    if (r == 0 && len > 0) {
        kl_frame_header(len, h->out + h->out_len);
        memcpy(h->out + h->out_len + KL_FRAME_HDR, msg, len);
        h->out_len += KL_FRAME_HDR + len;
    }
    if (r == 0)
        r = advance(s);
    return r ? fail(s, r) : 0;
}

int kl_stream_held(const kl_stream_t *s)
{
    return s->hs != NULL && s->hs->held;
}

int kl_stream_handshake(kl_stream_t *s)
{
    struct kl_stream_hs *h = s->hs;
    if (h == NULL || s->failed || !h->held)
        return KL_ESTATE;
    h->held = 0;
    int r = hs_new(h);
    if (r == 0)
        r = hs_read(s, h->msg, h->msg_len);
    kl_memzero(h->msg, sizeof h->msg);
    return r ? fail(s, r) : 0;
}

static int emit(feed_t *fd, kl_stream_event_t *ev)
{
    int r = fd->cb(fd->ud, ev);
    if (r)
        fd->stopped = 1;
    return r;
}

/* The handshake completed during this feed. The event's bytes are copies:
 * the callback may take the output, which releases the handshake block. */
static int emit_ready(feed_t *fd)
{
    struct kl_stream_hs *h = fd->s->hs;
    uint8_t payload[KL_STREAM_HS_MAX], remote[32];
    size_t plen = h->payload_len;
    int has_rs = h->has_rs;
    memcpy(payload, h->payload, plen);
    memcpy(remote, h->remote, sizeof remote);
    kl_memzero(h->payload, sizeof h->payload);
    hs_release_if_done(fd->s);
    kl_stream_event_t ev = {
        .type = KL_STREAM_EV_READY,
        .data = payload,
        .len = plen,
        .remote_static = has_rs ? remote : NULL,
        .hh = fd->s->tr.hh,
    };
    int r = emit(fd, &ev);
    kl_memzero(payload, sizeof payload);
    return r;
}

static int feed_fail(feed_t *fd, int err, const char *reason)
{
    fd->reason = reason;
    return fail(fd->s, err);
}

/* A handshake message (L1 frame) while the handshake runs. */
static int on_handshake(feed_t *fd, const uint8_t *msg, size_t len)
{
    kl_stream_t *s = fd->s;
    struct kl_stream_hs *h = s->hs;
    if (h->held || (h->initiator && h->hs == NULL) || (!h->initiator && h->started))
        return feed_fail(fd, KL_EPROTO, "data before the handshake completed");
    if (!h->initiator && h->defer) {
        memcpy(h->msg, msg, len); /* len <= hs_max <= sizeof h->msg: the framer's cap */
        h->msg_len = len;
        h->held = 1;
        kl_stream_event_t ev = {.type = KL_STREAM_EV_HANDSHAKE, .data = msg, .len = len};
        int r = emit(fd, &ev);
        if (r)
            return r;
        if (s->failed)
            return feed_fail(fd, KL_EPROTO, "handshake failed"); /* a failed adopt */
        return s->ready ? emit_ready(fd) : 0;
    }
    int r = h->initiator ? 0 : hs_new(h);
    if (r == 0)
        r = hs_read(s, msg, len);
    if (r)
        return feed_fail(fd, r, "handshake failed");
    return s->ready ? emit_ready(fd) : 0;
}

/* A transport message: decrypt (and decode) it for the callback. */
static int on_transport(feed_t *fd, const uint8_t *msg, size_t len)
{
    kl_stream_t *s = fd->s;
    kl_stream_event_t ev = {.type = KL_STREAM_EV_FRAME};
    int r;
    if (!s->plaintext) {
        r = kl_wire_open(&s->tr, msg, len, &ev.frame);
        if (r)
            return feed_fail(fd, r, r == KL_ECRYPTO  ? "decryption failed"
                                    : r == KL_EPROTO ? "undecodable frame"
                                                     : "bad frame");
        return emit(fd, &ev);
    }
    size_t cap = len > KL_NOISE_TAG ? len - KL_NOISE_TAG : 0;
    uint8_t *pt = malloc(cap + 1); /* a real buffer even for an empty plaintext */
    if (pt == NULL)
        return feed_fail(fd, KL_ENOMEM, "out of memory");
    r = kl_noise_decrypt(&s->tr, msg, len, pt, cap, &ev.len);
    if (r == 0) {
        ev.data = pt;
        r = emit(fd, &ev);
    } else {
        r = feed_fail(fd, r, "decryption failed");
    }
    kl_free_wipe(pt, cap + 1);
    return r;
}

/* kl_framer callback: one complete L1 frame. */
static int on_l1(void *ud, const uint8_t *msg, size_t len)
{
    feed_t *fd = ud;
    return fd->s->ready ? on_transport(fd, msg, len) : on_handshake(fd, msg, len);
}

static const char *framer_reason(int err)
{
    switch (err) {
    case KL_ETOOBIG:
        return "frame too long";
    case KL_EPROTO:
        return "empty frame";
    case KL_ENOMEM:
        return "out of memory";
    default:
        return "bad frame";
    }
}

int kl_stream_feed(kl_stream_t *s, const uint8_t *data, size_t len, uint64_t now, kl_stream_cb cb,
                   void *ud)
{
    if (s->failed)
        return KL_ESTATE;
    if ((data == NULL && len > 0) || cb == NULL)
        return KL_EINVAL;
    s->last_rx = now;
    feed_t fd = {.s = s, .cb = cb, .ud = ud};
    int r = kl_framer_feed(&s->framer, data, len, on_l1, &fd);
    if (r == 0 || fd.stopped) {
        if (r)
            fail(s, r);
        return r;
    }
    fail(s, r);
    kl_stream_event_t ev = {
        .type = KL_STREAM_EV_ERROR,
        .err = r,
        .reason = fd.reason ? fd.reason : framer_reason(r),
    };
    (void)cb(ud, &ev);
    return r;
}

size_t kl_stream_want(const kl_stream_t *s)
{
    const kl_framer_t *f = &s->framer;
    if (s->failed)
        return 0;
    if (f->body == NULL)
        return KL_FRAME_HDR - f->hdr_have;
    return f->need - f->have;
}

size_t kl_stream_pending(const kl_stream_t *s)
{
    return s->hs != NULL ? s->hs->out_len : 0;
}

int kl_stream_take(kl_stream_t *s, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t n = kl_stream_pending(s);
    if (n > cap)
        return KL_ETOOBIG;
    if (n > 0) {
        memcpy(out, s->hs->out, n);
        kl_memzero(s->hs->out, n);
        s->hs->out_len = 0;
    }
    *outlen = n;
    hs_release_if_done(s);
    return 0;
}

static int can_seal(const kl_stream_t *s)
{
    return s->ready && kl_stream_pending(s) == 0;
}

/* A seal's result r, with the send time noted when it succeeded. */
static int sealed(kl_stream_t *s, int r, uint64_t now)
{
    if (r == 0)
        s->last_tx = now;
    return r;
}

int kl_stream_seal_frame(kl_stream_t *s, const kl_frame_t *f, size_t n, uint8_t *out, size_t cap,
                         size_t *outlen, uint64_t now)
{
    if (!can_seal(s))
        return KL_ESTATE;
    return sealed(s, kl_wire_seal_sized(&s->tr, f, n, out, cap, outlen), now);
}

int kl_stream_seal(kl_stream_t *s, const uint8_t *pt, size_t n, uint8_t *out, size_t cap,
                   size_t *outlen, uint64_t now)
{
    if (!can_seal(s))
        return KL_ESTATE;
    return sealed(s, kl_wire_seal_packed(&s->tr, pt, n, out, cap, outlen), now);
}

int kl_stream_ready(const kl_stream_t *s)
{
    return s->ready;
}

const uint8_t *kl_stream_hh(const kl_stream_t *s)
{
    return s->ready ? s->tr.hh : NULL;
}

void kl_stream_keepalive(kl_stream_t *s, uint64_t idle_ms, uint64_t ping_ms)
{
    s->idle_ms = idle_ms;
    s->ping_ms = ping_ms;
}

int kl_stream_tick(const kl_stream_t *s, uint64_t now, uint64_t *next)
{
    uint64_t at = UINT64_MAX;
    int r = 0;
    if (!s->ready) {
        if (s->deadline != 0) {
            at = s->deadline;
            if (now >= s->deadline)
                r = KL_ETIMEDOUT;
        }
    } else {
        if (s->idle_ms > 0) {
            uint64_t dead = add_sat(s->last_rx, s->idle_ms);
            at = dead;
            if (now >= dead)
                r = KL_ETIMEDOUT;
        }
        if (s->ping_ms > 0) {
            uint64_t ping = add_sat(s->last_tx, s->ping_ms);
            if (ping < at)
                at = ping;
            if (r == 0 && now >= ping)
                r = 1;
        }
    }
    if (next != NULL)
        *next = at;
    return r;
}

uint64_t kl_stream_last_rx(const kl_stream_t *s)
{
    return s->last_rx;
}

uint64_t kl_stream_last_tx(const kl_stream_t *s)
{
    return s->last_tx;
}
