/* Noise handshake and transport reads with fixed keys.
 *
 * Input: u8 mode | rest. Modes:
 *   0  relay (NK responder) reads rest as message 1, then answers and
 *      splits exactly as relay/conn.c does;
 *   1  client (NK initiator) has sent message 1 and reads rest as message 2;
 *   2  federation (KK responder) reads rest as message 1;
 *   3  federation (KK initiator) has sent message 1, reads rest as message 2;
 *   4  transport: rest is records u8 flags | u16 len | len bytes; flag 1
 *      encrypts the bytes first (a genuine message), flag 2 then flips one
 *      bit; every genuine message must decrypt to itself, every other one
 *      must fail without moving the receive nonce;
 *   5  a whole NK handshake with input payloads and an optional bit flip
 *      in either message: without the flip both sides must agree on the
 *      payloads, the handshake hash and the keys; with it, the read fails. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kollega/err.h"
#include "kollega/noise.h"

#define HS_PAYLOAD_MAX 128 /* the relay's KL_CONN_HS_MAX */

/* The responder's side of a handshake, as the relay runs it. */
static void respond(kl_noise_pattern_t p, const uint8_t *msg, size_t len)
{
    uint8_t payload[HS_PAYLOAD_MAX], out[HS_PAYLOAD_MAX + 64];
    size_t plen = 0, olen = 0;
    kl_noise_transport_t t;
    kl_noise_hs_t *hs = fuzz_hs_make(p, 0);
    int r = kl_noise_hs_read(hs, msg, len, payload, sizeof payload, &plen);
    if (r == 0) {
        FUZZ_CHECK(plen <= sizeof payload && kl_noise_hs_my_turn(hs));
        FUZZ_CHECK(kl_noise_hs_write(hs, NULL, 0, out, sizeof out, &olen) == 0);
        FUZZ_CHECK(kl_noise_hs_done(hs) && kl_noise_hs_split(hs, &t) == 0);
        FUZZ_CHECK(kl_noise_hs_split(hs, &t) == KL_ESTATE);
    } else {
        /* A failed read kills the handshake for good. */
        FUZZ_CHECK(r == KL_EPROTO || r == KL_ECRYPTO || r == KL_ETOOBIG);
        FUZZ_CHECK(kl_noise_hs_read(hs, msg, len, payload, sizeof payload, &plen) == KL_ESTATE);
        FUZZ_CHECK(kl_noise_hs_write(hs, NULL, 0, out, sizeof out, &olen) == KL_ESTATE);
    }
    kl_noise_hs_free(hs);
}

static void initiate(kl_noise_pattern_t p, const uint8_t *msg, size_t len)
{
    uint8_t m1[128], payload[HS_PAYLOAD_MAX];
    size_t l1 = 0, plen = 0;
    kl_noise_transport_t t;
    kl_noise_hs_t *hs = fuzz_hs_make(p, 1);
    FUZZ_CHECK(kl_noise_hs_write(hs, NULL, 0, m1, sizeof m1, &l1) == 0);
    int r = kl_noise_hs_read(hs, msg, len, payload, sizeof payload, &plen);
    if (r == 0)
        FUZZ_CHECK(kl_noise_hs_done(hs) && kl_noise_hs_split(hs, &t) == 0);
    else
        FUZZ_CHECK(!kl_noise_hs_done(hs) && kl_noise_hs_split(hs, &t) == KL_ESTATE);
    kl_noise_hs_free(hs);
}

static void transport(fuzz_in_t *in)
{
    kl_noise_transport_t c, r;
    static uint8_t ct[KL_NOISE_MAX_MSG + 16], pt[KL_NOISE_MAX_MSG + 16];
    fuzz_transport_pair(&c, &r);
    while (in->left > 0) {
        uint8_t flags = fuzz_u8(in);
        size_t want = fuzz_u16(in), n = 0, clen = 0, plen = 0;
        const uint8_t *b = fuzz_bytes(in, want, &n);
        int genuine = 0;
        if ((flags & 1) && n <= KL_NOISE_MAX_PT) {
            FUZZ_CHECK(kl_noise_encrypt(&c, b, n, ct, sizeof ct, &clen) == 0);
            genuine = 1;
        } else {
            memcpy(ct, b, n);
            clen = n;
        }
        if ((flags & 2) && clen > 0) {
            size_t bit = ((size_t)flags >> 2) * 7919u % (clen * 8);
            ct[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            genuine = 0;
        }
        uint64_t nonce = r.recv.n;
        int rc = kl_noise_decrypt(&r, ct, clen, pt, sizeof pt, &plen);
        if (genuine) {
            FUZZ_CHECK(rc == 0 && plen == n && memcmp(pt, b, n) == 0);
            FUZZ_CHECK(r.recv.n == nonce + 1);
        } else {
            FUZZ_CHECK(rc != 0 && r.recv.n == nonce);
            if (flags & 1)
                c.send.n--; /* resynchronise: the relay would have closed */
        }
    }
    kl_noise_transport_wipe(&c);
    kl_noise_transport_wipe(&r);
}

static void roundtrip(fuzz_in_t *in)
{
    uint8_t flip = fuzz_u8(in), split = fuzz_u8(in);
    size_t l1 = 0, l2 = 0, n1, n2, plen = 0;
    const uint8_t *p1 = fuzz_bytes(in, split, &n1);
    const uint8_t *p2 = fuzz_bytes(in, in->left, &n2);
    uint8_t m1[600], m2[KL_NOISE_MAX_MSG], got[KL_NOISE_MAX_MSG];
    kl_noise_transport_t ti, tr;
    if (n2 > KL_NOISE_MAX_MSG - 64)
        n2 = KL_NOISE_MAX_MSG - 64;
    kl_noise_hs_t *i = fuzz_hs_make(KL_NOISE_NK, 1), *r = fuzz_hs_make(KL_NOISE_NK, 0);
    FUZZ_CHECK(kl_noise_hs_write(i, p1, n1, m1, sizeof m1, &l1) == 0);
    if (flip & 1)
        m1[(flip >> 1) % l1] ^= 0x20;
    int rc = kl_noise_hs_read(r, m1, l1, got, sizeof got, &plen);
    if (flip & 1) {
        FUZZ_CHECK(rc == KL_ECRYPTO);
        goto out;
    }
    FUZZ_CHECK(rc == 0 && plen == n1 && (n1 == 0 || memcmp(got, p1, n1) == 0));
    FUZZ_CHECK(kl_noise_hs_write(r, p2, n2, m2, sizeof m2, &l2) == 0);
    if (flip & 0x80)
        m2[((size_t)flip * 31) % l2] ^= 0x01;
    rc = kl_noise_hs_read(i, m2, l2, got, sizeof got, &plen);
    if (flip & 0x80) {
        FUZZ_CHECK(rc == KL_ECRYPTO);
        goto out;
    }
    FUZZ_CHECK(rc == 0 && plen == n2 && (n2 == 0 || memcmp(got, p2, n2) == 0));
    FUZZ_CHECK(kl_noise_hs_split(i, &ti) == 0 && kl_noise_hs_split(r, &tr) == 0);
    FUZZ_CHECK(memcmp(ti.hh, tr.hh, sizeof ti.hh) == 0);
    FUZZ_CHECK(memcmp(ti.send.k, tr.recv.k, 32) == 0 && memcmp(ti.recv.k, tr.send.k, 32) == 0);
out:
    kl_noise_hs_free(i);
    kl_noise_hs_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    fuzz_init();
    fuzz_rng_reset(size);
    switch (fuzz_u8(&in) % 6) {
    case 0:
        respond(KL_NOISE_NK, in.p, in.left);
        break;
    case 1:
        initiate(KL_NOISE_NK, in.p, in.left);
        break;
    case 2:
        respond(KL_NOISE_KK, in.p, in.left);
        break;
    case 3:
        initiate(KL_NOISE_KK, in.p, in.left);
        break;
    case 4:
        transport(&in);
        break;
    default:
        roundtrip(&in);
        break;
    }
    return 0;
}
