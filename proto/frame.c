#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/frame.h"

void kl_framer_init(kl_framer_t *f, size_t max_len)
{
    memset(f, 0, sizeof *f);
    f->max_len = max_len > KL_FRAME_MAX ? KL_FRAME_MAX : max_len;
}

int kl_frame_header(size_t len, uint8_t hdr[2])
{
    if (len > KL_FRAME_MAX)
        return KL_ETOOBIG;
    hdr[0] = (uint8_t)(len >> 8);
    hdr[1] = (uint8_t)len;
    return 0;
}

int kl_framer_pending(const kl_framer_t *f)
{
    return f->hdr_have > 0 || f->body != NULL;
}

void kl_framer_free(kl_framer_t *f)
{
    /* Frame bodies are Noise ciphertext, but wipe anyway: the same buffers
     * are cheap to clear and this keeps the rule "no stale wire bytes".
     * kl_free_wipe, not memset: a plain store right before free() is dead
     * to the compiler and may be dropped. */
    kl_free_wipe(f->body, f->need);
    f->body = NULL;
    f->hdr_have = 0;
    f->need = f->have = 0;
}

/* Copy what data has of the want bytes still missing at dst, and advance
 * past it. Returns the count copied. */
static size_t take(uint8_t *dst, size_t want, const uint8_t **data, size_t *len)
{
    size_t n = want < *len ? want : *len;
    memcpy(dst, *data, n);
    *data += n;
    *len -= n;
    return n;
}

/* Reassemble frames. The body buffer exists only between a header and the
 * end of its frame, so idle connections hold none, and it is never larger
 * than max_len: the length is checked before the allocation. */
int kl_framer_feed(kl_framer_t *f, const uint8_t *data, size_t len, kl_frame_cb cb, void *ud)
{
    if (f->failed)
        return KL_ESTATE;
    while (len > 0) {
        if (f->body == NULL) {
            f->hdr_have += take(f->hdr + f->hdr_have, 2 - f->hdr_have, &data, &len);
            if (f->hdr_have < 2)
                break;
            size_t n = ((size_t)f->hdr[0] << 8) | f->hdr[1];
            f->hdr_have = 0;
            if (n == 0) {
                f->failed = 1;
                return KL_EPROTO;
            }
            if (n > f->max_len) {
                f->failed = 1;
                return KL_ETOOBIG;
            }
            /* Fast path: the whole frame is already in this read. */
            if (len >= n) {
                int r = cb(ud, data, n);
                data += n;
                len -= n;
                if (r) {
                    f->failed = 1;
                    return r;
                }
                continue;
            }
            f->body = malloc(n);
            if (f->body == NULL) {
                f->failed = 1;
                return KL_ENOMEM;
            }
            f->need = n;
            f->have = 0;
        }
        f->have += take(f->body + f->have, f->need - f->have, &data, &len);
        if (f->have == f->need) {
            uint8_t *b = f->body;
            size_t n = f->need;
            f->body = NULL;
            f->need = f->have = 0;
            int r = cb(ud, b, n);
            kl_free_wipe(b, n);
            if (r) {
                f->failed = 1;
                return r;
            }
        }
    }
    return 0;
}
