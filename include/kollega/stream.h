/* One secure connection's protocol without its I/O: L1 framing, the Noise
 * handshake (NK or KK, either role) and the transport after it, for the
 * relay, the client, the federation links, the bench and the test probe.
 * The caller owns the socket, the clock and the timers: bytes go in with
 * kl_stream_feed, what happens comes back as events, and what is to be
 * written comes out as handshake bytes (kl_stream_take) and sealed frames
 * written straight into the caller's output buffer (kl_stream_seal*), so
 * a caller that coalesces writes keeps doing so without a copy.
 *
 * Guarantees (docs/PROTOCOL.md section 1, DESIGN "Layers"):
 *  - a frame's length is checked before anything is allocated for it,
 *    never more than hs_max bytes before the handshake completes and
 *    frame_max after it (kl_framer);
 *  - no transport frame is decrypted or handed out before the handshake
 *    completes, and nothing can be sealed before it;
 *  - after any failure of the input side (bad length, failed handshake,
 *    failed decryption, undecodable frame) every later kl_stream_feed is
 *    KL_ESTATE; the output side stays usable once the handshake is done,
 *    so a last error frame can still be sealed;
 *  - keys (handshake state, transport keys) and buffers that held
 *    plaintext or handshake messages are wiped before they are freed;
 *  - the bytes on the wire are those of kl_noise + kl_wire: handshake
 *    messages with empty payloads, each as one L1 frame, then one Noise
 *    transport message per L1 frame.
 *
 * Nothing here blocks, reads a clock or touches a file. A stream is used
 * by one thread at a time (see kl_stream_handshake for the one hand-off). */
#ifndef KOLLEGA_STREAM_H
#define KOLLEGA_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/frame.h"
#include "kollega/noise.h"
#include "kollega/wire.h"

/* Largest L1 frame accepted before the handshake completes, and so the
 * largest handshake message (NK and KK message 1 and 2 are 48 bytes; a
 * federation message 1 has a 16-byte hint in front). */
#define KL_STREAM_HS_MAX 128u
/* Most handshake output a stream holds at once: one framed message. */
#define KL_STREAM_OUT_MAX (KL_FRAME_HDR + KL_STREAM_HS_MAX)

typedef struct kl_stream_config {
    kl_noise_pattern_t pattern;  /* KL_NOISE_NK or KL_NOISE_KK */
    int initiator;               /* 1 initiator, 0 responder */
    /* The prologue and keys are read until the handshake completes (or
     * the stream is freed): they must stay valid until then. Keys are
     * those kl_noise_config_t takes; a stream whose handshake the caller
     * brings (kl_stream_adopt) needs none. */
    const uint8_t *prologue;
    size_t prologue_len;
    const uint8_t *s;            /* our static private X25519 key (NK responder, KK) */
    const uint8_t *rs;           /* the peer's static public key (NK initiator, KK) */
    size_t hs_max;               /* largest L1 frame before the handshake: 1..KL_STREAM_HS_MAX */
    size_t frame_max;            /* largest L1 frame after it: 1..KL_FRAME_MAX */
    size_t payload_max;          /* largest handshake payload taken from the peer (0: empty only),
                                  * at most KL_STREAM_HS_MAX; ours are always empty */
    int plaintext;               /* 1: frames come out as plaintext bytes; 0: as kl_frame_t */
    int defer;                   /* responder: hand message 1 to the caller (EV_HANDSHAKE)
                                  * instead of answering it during kl_stream_feed */
    uint64_t handshake_ms;       /* the handshake must complete within this long after
                                  * kl_stream_init (kl_stream_tick); 0: no limit */
} kl_stream_config_t;

typedef enum kl_stream_event_type {
    /* defer only: message 1 arrived and is held. data/len is the whole L1
     * frame (valid during the call). The caller answers it with
     * kl_stream_adopt (during the call or later) or kl_stream_handshake
     * (after kl_stream_feed returned); until then any further complete
     * frame is an error. */
    KL_STREAM_EV_HANDSHAKE,
    /* The handshake completed during this feed. remote_static is the
     * peer's static key (NULL when the pattern gives the responder none,
     * as NK), hh the handshake hash (KL_NOISE_HASH bytes, also
     * kl_stream_hh), data/len the peer's handshake payload (all valid
     * during the call). If kl_stream_pending() is non-zero, write that
     * before anything else. */
    KL_STREAM_EV_READY,
    /* One transport message: frame (config plaintext 0), decoded and owned
     * by the callee from now on (free it with kl_wire_free), or data/len,
     * its plaintext (plaintext 1), valid during the call and wiped after. */
    KL_STREAM_EV_FRAME,
    /* The input side failed: err is a KL_E* code, reason a static phrase
     * for logs (and for the relay's error frames): "frame too long",
     * "empty frame", "out of memory", "handshake failed", "data before the
     * handshake completed", "decryption failed", "undecodable frame" (frame
     * mode: shorter than a tag, or not a Frame with a body), "bad frame".
     * The callback's return value is ignored; kl_stream_feed returns err. */
    KL_STREAM_EV_ERROR,
} kl_stream_event_type_t;

typedef struct kl_stream_event {
    kl_stream_event_type_t type;
    const uint8_t *data;
    size_t len;
    kl_frame_t *frame;
    const uint8_t *remote_static;
    const uint8_t *hh;
    int err;
    const char *reason;
} kl_stream_event_t;

/* Called for each event during kl_stream_feed. Return 0 to go on, or
 * non-zero to stop: kl_stream_feed then returns that value at once and the
 * stream accepts no more input (its output side stays usable). */
typedef int (*kl_stream_cb)(void *ud, kl_stream_event_t *ev);

struct kl_stream_hs; /* proto/stream.c: the handshake's state, until it is done */

/* Embed one per connection; the fields are the implementation's. */
typedef struct kl_stream {
    kl_framer_t framer;
    kl_noise_transport_t tr;
    struct kl_stream_hs *hs;     /* NULL once ready and its output is taken */
    uint64_t last_rx, last_tx;   /* now of the last kl_stream_feed / seal */
    uint64_t deadline;           /* handshake deadline, 0: none */
    uint64_t idle_ms, ping_ms;   /* kl_stream_keepalive */
    uint8_t ready;
    uint8_t failed;              /* input side */
    uint8_t plaintext;
} kl_stream_t;

/* Set s up (nothing is sent or read yet). now is the caller's clock in ms
 * (any monotonic origin; the same clock for every call on s). 0,
 * KL_EINVAL (a pattern other than NK or KK, a limit out of range),
 * KL_ENOMEM. kl_stream_free must follow in every case; it is also safe on
 * a zero-filled stream that was never initialised. */
int kl_stream_init(kl_stream_t *s, const kl_stream_config_t *cfg, uint64_t now);
/* Wipe and free everything s holds; s is left zero-filled. */
void kl_stream_free(kl_stream_t *s);

/* Initiator: write message 1 (kl_stream_take gives it). 0, KL_ESTATE (a
 * responder, or already started or adopted), or a kl_noise_hs_new /
 * kl_noise_hs_write error (KL_EINVAL: the keys the pattern needs are
 * missing); on error the stream is failed. */
int kl_stream_start(kl_stream_t *s);
/* Continue with a handshake the caller set up and advanced itself, for
 * wire formats that put something around message 1 (the federation hint,
 * fedhint.h). Either an initiator instead of kl_stream_start, with msg
 * (len bytes, at most KL_STREAM_HS_MAX) the message 1 it wrote, which
 * the stream frames and sends first; or a deferred responder holding
 * message 1, with hs having read it (msg NULL, len 0): the stream writes
 * the answer and completes. The stream owns hs from the call on, also on
 * error (it is then freed). Called during the EV_HANDSHAKE callback, a
 * completed handshake is reported as EV_READY right after it; called
 * later, no event says so (kl_stream_ready). 0, KL_EINVAL, KL_ESTATE (not
 * in one of those two states), KL_ETOOBIG, or a kl_noise error; on error
 * the stream is failed. */
int kl_stream_adopt(kl_stream_t *s, kl_noise_hs_t *hs, const uint8_t *msg, size_t len);
/* 1 while a deferred responder holds message 1 for kl_stream_handshake
 * or kl_stream_adopt. */
int kl_stream_held(const kl_stream_t *s);
/* Deferred responder: read the held message 1 with the configured keys,
 * write the answer and complete (the costly part of a connect: three
 * X25519). It may run on another thread once kl_stream_feed has returned,
 * provided no other call on s runs until it has returned. No event is
 * emitted: on 0 the stream is ready and kl_stream_take gives the answer.
 * KL_ESTATE (no message held), a kl_noise error (KL_EPROTO, KL_ECRYPTO),
 * KL_EPROTO (a payload over payload_max), KL_ENOMEM; on error the stream
 * is failed. */
int kl_stream_handshake(kl_stream_t *s);

/* Feed len bytes received at time now; events go to cb. Returns 0, the
 * callback's non-zero return, or the KL_E* code of a failure (reported
 * first as KL_STREAM_EV_ERROR). KL_ESTATE once the input side has failed
 * or a callback stopped it, KL_EINVAL for data NULL with len > 0. */
int kl_stream_feed(kl_stream_t *s, const uint8_t *data, size_t len, uint64_t now, kl_stream_cb cb,
                   void *ud);
/* How many bytes complete the next L1 header or frame (at least 1), for a
 * reader that must not read past a frame; 0 once the input has failed. */
size_t kl_stream_want(const kl_stream_t *s);

/* Handshake bytes waiting to be written (framed), 0 if none. They come
 * before any sealed frame: sealing is KL_ESTATE until they are taken. */
size_t kl_stream_pending(const kl_stream_t *s);
/* Copy them to out (cap bytes, at least kl_stream_pending) and forget
 * them; *outlen is 0 when there are none. 0 or KL_ETOOBIG. */
int kl_stream_take(kl_stream_t *s, uint8_t *out, size_t cap, size_t *outlen);

/* Seal frame f, whose packed size n the caller has computed
 * (kl_wire_packed_size, to size out), as one L1
 * frame: KL_WIRE_SIZE(n) bytes to out. As kl_wire_seal_sized: KL_EINVAL
 * (a frame without body), KL_ETOOBIG (n or cap), KL_ELIMIT (nonces used
 * up); and KL_ESTATE before the handshake completes or while handshake
 * output is pending. now updates the time of the last send. */
int kl_stream_seal_frame(kl_stream_t *s, const kl_frame_t *f, size_t n, uint8_t *out, size_t cap,
                         size_t *outlen, uint64_t now);
/* The same for plaintext bytes pt[0..n) (a packed Frame or FedFrame, or
 * anything at all). pt may be out + KL_FRAME_HDR, sealing in place, and
 * must not overlap out otherwise. */
int kl_stream_seal(kl_stream_t *s, const uint8_t *pt, size_t n, uint8_t *out, size_t cap,
                   size_t *outlen, uint64_t now);

/* 1 once the handshake has completed, else 0 (it cannot fail). */
int kl_stream_ready(const kl_stream_t *s);
/* The handshake hash (KL_NOISE_HASH bytes) that register and auth
 * signatures bind, or NULL before the handshake completes. */
const uint8_t *kl_stream_hh(const kl_stream_t *s);

/* Keepalive from the handshake's completion on: the peer is dead when
 * nothing arrived for idle_ms, a ping is due when nothing was sent for
 * ping_ms (0: off). The caller builds and seals pings itself. */
void kl_stream_keepalive(kl_stream_t *s, uint64_t idle_ms, uint64_t ping_ms);
/* At time now: KL_ETIMEDOUT when the handshake deadline passed before
 * completion or the peer is dead by idle_ms, 1 when a ping is due, else 0.
 * *next (may be NULL) gets the earliest time the answer can change
 * (UINT64_MAX: never; not after now while a ping is due). */
int kl_stream_tick(const kl_stream_t *s, uint64_t now, uint64_t *next);
/* now of the last kl_stream_feed and of the last seal (kl_stream_init's
 * now before either). */
uint64_t kl_stream_last_rx(const kl_stream_t *s);
uint64_t kl_stream_last_tx(const kl_stream_t *s);

#endif
