/* L1 framing (kl_framer): the stream is fed in input-chosen chunks and the
 * frames delivered must be exactly those a one-shot reference parse of the
 * whole stream finds, with the same error at the same place; afterwards
 * the framer must refuse everything (sticky failure).
 *
 * Input: u8 chunk seed | u16 max_len | stream bytes. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kollega/err.h"
#include "kollega/frame.h"

#define STOP_BYTE 0xEE /* a frame starting with it makes the callback stop */
#define STOP_CODE 77

typedef struct ref_frame {
    size_t off, len;
} ref_frame_t;

typedef struct ctx {
    const uint8_t *stream;
    const ref_frame_t *frames;
    size_t n_frames, next;
} ctx_t;

/* Reference parse of the whole stream. Returns the error the framer must
 * report (0 if none) and sets *pending for a trailing partial frame. */
static int reference(const uint8_t *s, size_t n, size_t max_len, ref_frame_t *out,
                     size_t *count, int *pending)
{
    size_t pos = 0;
    *count = 0;
    *pending = 0;
    if (max_len > KL_FRAME_MAX)
        max_len = KL_FRAME_MAX;
    while (pos < n) {
        if (n - pos < 2) {
            *pending = 1;
            return 0;
        }
        size_t len = (size_t)s[pos] << 8 | s[pos + 1];
        if (len == 0)
            return KL_EPROTO;
        if (len > max_len)
            return KL_ETOOBIG;
        if (n - pos - 2 < len) {
            *pending = 1;
            return 0;
        }
        out[*count].off = pos + 2;
        out[(*count)++].len = len;
        if (s[pos + 2] == STOP_BYTE)
            return STOP_CODE;
        pos += 2 + len;
    }
    return 0;
}

static int on_frame(void *ud, const uint8_t *frame, size_t len)
{
    ctx_t *c = ud;
    FUZZ_CHECK(c->next < c->n_frames);
    const ref_frame_t *rf = &c->frames[c->next++];
    FUZZ_CHECK(len == rf->len && len > 0);
    FUZZ_CHECK(memcmp(frame, c->stream + rf->off, len) == 0);
    return frame[0] == STOP_BYTE ? STOP_CODE : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    uint32_t seed = fuzz_u8(&in);
    size_t max_len = fuzz_u16(&in);
    const uint8_t *stream = in.p;
    size_t n = in.left;
    int pending = 0;
    size_t count = 0;
    ref_frame_t *frames = malloc((n / 3 + 1) * sizeof *frames);
    if (frames == NULL)
        return 0;
    int want = reference(stream, n, max_len, frames, &count, &pending);

    kl_framer_t f;
    ctx_t c = {stream, frames, count, 0};
    kl_framer_init(&f, max_len);
    size_t pos = 0;
    int got = 0;
    while (pos < n) {
        /* Chunk sizes from a small LCG: many tiny reads and some large. */
        seed = seed * 1103515245u + 12345u;
        size_t chunk = (seed >> 16) % 8 == 0 ? (seed >> 8) % 70000 : (seed >> 16) % 5;
        if (chunk == 0)
            chunk = 1;
        if (chunk > n - pos)
            chunk = n - pos;
        got = kl_framer_feed(&f, stream + pos, chunk, on_frame, &c);
        pos += chunk;
        if (got != 0)
            break;
    }
    FUZZ_CHECK(got == want);
    FUZZ_CHECK(c.next == count);
    if (got != 0) {
        uint8_t more[3] = {0, 1, 'x'};
        FUZZ_CHECK(kl_framer_feed(&f, more, sizeof more, on_frame, &c) == KL_ESTATE);
    } else {
        FUZZ_CHECK(kl_framer_pending(&f) == pending);
    }
    kl_framer_free(&f);
    FUZZ_CHECK(!kl_framer_pending(&f));
    free(frames);
    return 0;
}
