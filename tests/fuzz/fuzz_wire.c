/* Frame decoding: kl_wire_open, i.e. Noise transport decryption and the
 * protobuf unpack of a Frame on its capped allocator, as the relay runs it
 * on every message after the handshake (and the client on every reply).
 *
 * Input: u8 mode | rest.
 *   mode even: rest is the plaintext; it is encrypted with the client's
 *     fixed transport, so decryption succeeds and the unpack sees exactly
 *     rest. A decoded Frame is sealed again (kl_wire_seal_alloc) and opened
 *     on the other side, and its re-encoding must be stable.
 *   mode odd: rest is the ciphertext as received; unless it is a genuine
 *     message it must be refused without moving the receive nonce. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kollega/err.h"
#include "kollega/noise.h"
#include "kollega/wire.h"
#include "relay.pb-c.h"

static uint8_t ct[KL_NOISE_MAX_MSG + KL_NOISE_TAG];

static uint8_t *pack(const kl_frame_t *f, size_t *len)
{
    *len = kollega__relay__v1__frame__get_packed_size(f);
    uint8_t *p = malloc(*len + 1);
    FUZZ_CHECK(p != NULL);
    FUZZ_CHECK(kollega__relay__v1__frame__pack(f, p) == *len);
    return p;
}

static void reseal(kl_noise_transport_t *relay, kl_noise_transport_t *client,
                   const kl_frame_t *f)
{
    uint8_t *wire = NULL, *a, *b;
    size_t wlen = 0, alen, blen;
    kl_frame_t *back = NULL;
    int r = kl_wire_seal_alloc(relay, f, &wire, &wlen);
    if (r != 0) {
        /* Only a frame whose re-encoding outgrew the limit may fail. */
        FUZZ_CHECK(r == KL_ETOOBIG);
        return;
    }
    FUZZ_CHECK(wlen >= 2 + KL_NOISE_TAG && (size_t)(wire[0] << 8 | wire[1]) == wlen - 2);
    FUZZ_CHECK(kl_wire_open(client, wire + 2, wlen - 2, &back) == 0);
    a = pack(f, &alen);
    b = pack(back, &blen);
    FUZZ_CHECK(alen == blen && memcmp(a, b, alen) == 0);
    FUZZ_CHECK(back->id == f->id && back->body_case == f->body_case);
    free(a);
    free(b);
    free(wire);
    kl_wire_free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kl_noise_transport_t c, r;
    kl_frame_t *f = NULL;
    size_t clen = 0;
    int rc;
    if (size == 0)
        return 0;
    fuzz_init();
    fuzz_transport_pair(&c, &r);
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    if (data[0] % 2 == 1) {
        /* Only a genuine message (a seed made with the fixed key) opens. */
        rc = kl_wire_open(&r, rest, n, &f);
        FUZZ_CHECK(rc == 0 ? f != NULL && r.recv.n == 1 : f == NULL && r.recv.n == 0);
        kl_wire_free(f);
        return 0;
    }
    if (n > KL_WIRE_MAX_FRAME)
        n = KL_WIRE_MAX_FRAME;
    FUZZ_CHECK(kl_noise_encrypt(&c, rest, n, ct, sizeof ct, &clen) == 0);
    rc = kl_wire_open(&r, ct, clen, &f);
    if (rc != 0) {
        FUZZ_CHECK(rc == KL_EPROTO && f == NULL);
        return 0;
    }
    FUZZ_CHECK(f != NULL && f->body_case != KOLLEGA__RELAY__V1__FRAME__BODY__NOT_SET);
    reseal(&r, &c, f);
    kl_wire_free(f);
    return 0;
}
