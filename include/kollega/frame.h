/* L1 framing: every message on the wire is a u16 big-endian length followed
 * by that many bytes. kl_framer reassembles frames from a byte stream and
 * allocates a frame's body only once its header has arrived (so an idle
 * connection holds no read buffer), never more than max_len bytes. */
#ifndef KOLLEGA_FRAME_H
#define KOLLEGA_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define KL_FRAME_MAX 65535u
#define KL_FRAME_HDR 2u

typedef struct kl_framer {
    size_t max_len;  /* frames longer than this are a KL_ETOOBIG error */
    uint8_t hdr[2];
    size_t hdr_have;
    uint8_t *body;   /* malloc'd when a header announces a length */
    size_t need;
    size_t have;
    int failed;      /* sticky: after an error the framer accepts nothing */
} kl_framer_t;

/* Called for each complete frame; the body is only valid during the call.
 * A non-zero return stops feeding and is returned by kl_framer_feed. */
typedef int (*kl_frame_cb)(void *ud, const uint8_t *frame, size_t len);

/* An empty framer that accepts frames of up to max_len bytes (capped at
 * KL_FRAME_MAX). Cannot fail; release with kl_framer_free. */
void kl_framer_init(kl_framer_t *f, size_t max_len);
/* Feed len bytes of stream data. Calls cb once per complete frame.
 * Returns 0, KL_ETOOBIG (length over max_len), KL_EPROTO (zero-length
 * frame), KL_ENOMEM, or the callback's non-zero return. */
int kl_framer_feed(kl_framer_t *f, const uint8_t *data, size_t len, kl_frame_cb cb, void *ud);
/* 1 while a partial frame is buffered, else 0. */
int kl_framer_pending(const kl_framer_t *f);
/* Wipe and free the partial frame's buffer; the framer is empty (not
 * reset from an error) and may be freed again. */
void kl_framer_free(kl_framer_t *f);

/* Write the 2-byte header for a frame of len bytes: 0, or KL_ETOOBIG if
 * len > KL_FRAME_MAX. */
int kl_frame_header(size_t len, uint8_t hdr[2]);

#endif
