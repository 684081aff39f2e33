/* Double Ratchet message decoding and state deserialisation.
 *
 * Input: u8 mode | rest.
 *   0  kl_ratchet_deserialize(rest); an accepted state must serialise back
 *      to exactly rest (the encoding is canonical).
 *   1  kl_ratchet_decrypt(rest) on the fixed session state of fuzz.h's
 *      ratchet fixture (B, holding skipped keys); a refused message must
 *      leave the state byte for byte as it was.
 *   2  a conversation between the fixture's A and B driven by the input:
 *      sends, deliveries in any order, replays, bit flips and state
 *      round trips. Every first delivery of a genuine message must decrypt
 *      to what was sent; every replay or flipped message must be refused
 *      and change nothing. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/ratchet.h"

#define MAX_MSGS 48
#define PT_MAX 255

typedef struct msg {
    uint8_t ct[PT_MAX + KL_RATCHET_OVERHEAD];
    size_t len;
    uint8_t pt[PT_MAX];
    size_t ptlen;
    int delivered;
} msg_t;

typedef struct queue {
    msg_t m[MAX_MSGS];
    size_t n;
} queue_t;

static uint8_t *snapshot(const kl_ratchet_t *r, size_t *len)
{
    uint8_t *p = NULL;
    FUZZ_CHECK(kl_ratchet_serialize(r, &p, len) == 0);
    return p;
}

static void expect_unchanged(const kl_ratchet_t *r, const uint8_t *before, size_t blen)
{
    size_t alen = 0;
    uint8_t *after = snapshot(r, &alen);
    FUZZ_CHECK(alen == blen && memcmp(after, before, blen) == 0);
    kl_free_wipe(after, alen);
}

static void mode_deserialize(const uint8_t *p, size_t n)
{
    kl_ratchet_t *r = NULL;
    if (kl_ratchet_deserialize(&r, p, n) != 0) {
        FUZZ_CHECK(r == NULL);
        return;
    }
    size_t len = 0;
    uint8_t *again = snapshot(r, &len);
    FUZZ_CHECK(len == n && memcmp(again, p, n) == 0);
    kl_free_wipe(again, len);
    kl_ratchet_free(r);
}

static void mode_decrypt(const uint8_t *p, size_t n)
{
    static uint8_t out[KL_NOISE_MAX_MSG];
    fuzz_ratchet_fx_t *F = fuzz_ratchet_get();
    kl_ratchet_t *b = NULL;
    size_t olen = 0;
    FUZZ_CHECK(kl_ratchet_deserialize(&b, F->b, F->b_len) == 0);
    int rc = kl_ratchet_decrypt(b, p, n, out, sizeof out, &olen);
    if (rc == 0) {
        FUZZ_CHECK(olen + KL_RATCHET_OVERHEAD == n);
        /* the same message again is a replay */
        uint8_t *snap;
        size_t slen = 0;
        snap = snapshot(b, &slen);
        FUZZ_CHECK(kl_ratchet_decrypt(b, p, n, out, sizeof out, &olen) == KL_ECRYPTO);
        expect_unchanged(b, snap, slen);
        kl_free_wipe(snap, slen);
    } else {
        FUZZ_CHECK(rc == KL_EPROTO || rc == KL_ECRYPTO || rc == KL_ELIMIT || rc == KL_ETOOBIG);
        expect_unchanged(b, F->b, F->b_len);
    }
    kl_ratchet_free(b);
}

static void send(kl_ratchet_t *from, queue_t *q, size_t len)
{
    if (q->n == MAX_MSGS)
        return;
    msg_t *m = &q->m[q->n];
    m->ptlen = len;
    for (size_t i = 0; i < len; i++)
        m->pt[i] = (uint8_t)(q->n * 31 + i);
    int rc = kl_ratchet_encrypt(from, m->pt, len, m->ct, sizeof m->ct, &m->len);
    if (rc == KL_ESTATE)
        return; /* no sending chain yet */
    FUZZ_CHECK(rc == 0 && m->len == len + KL_RATCHET_OVERHEAD);
    m->delivered = 0;
    q->n++;
}

static void deliver(kl_ratchet_t *to, queue_t *q, uint8_t pick, int flip)
{
    uint8_t ct[sizeof q->m[0].ct], out[PT_MAX];
    size_t olen = 0, slen = 0;
    if (q->n == 0)
        return;
    msg_t *m = &q->m[pick % q->n];
    memcpy(ct, m->ct, m->len);
    if (flip) {
        size_t bit = (size_t)pick * 131 % (m->len * 8);
        ct[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    uint8_t *snap = snapshot(to, &slen);
    int rc = kl_ratchet_decrypt(to, ct, m->len, out, sizeof out, &olen);
    if (flip || m->delivered) {
        FUZZ_CHECK(rc == KL_ECRYPTO || rc == KL_ELIMIT);
        expect_unchanged(to, snap, slen);
    } else {
        FUZZ_CHECK(rc == 0 && olen == m->ptlen && memcmp(out, m->pt, olen) == 0);
        m->delivered = 1;
    }
    kl_free_wipe(snap, slen);
}

static void roundtrip(kl_ratchet_t **r)
{
    size_t len = 0, len2 = 0;
    uint8_t *s = snapshot(*r, &len);
    kl_ratchet_t *back = NULL;
    FUZZ_CHECK(kl_ratchet_deserialize(&back, s, len) == 0);
    uint8_t *s2 = snapshot(back, &len2);
    FUZZ_CHECK(len == len2 && memcmp(s, s2, len) == 0);
    kl_free_wipe(s, len);
    kl_free_wipe(s2, len2);
    kl_ratchet_free(*r);
    *r = back;
}

static void mode_conversation(fuzz_in_t *in)
{
    static queue_t ab, ba;
    fuzz_ratchet_fx_t *F = fuzz_ratchet_get();
    kl_ratchet_t *a = NULL, *b = NULL;
    FUZZ_CHECK(kl_ratchet_deserialize(&a, F->a, F->a_len) == 0);
    FUZZ_CHECK(kl_ratchet_deserialize(&b, F->b, F->b_len) == 0);
    /* The fixture's messages still in flight from A to B. */
    ab.n = ba.n = 0;
    for (int i = 0; i < 3; i++) {
        msg_t *m = &ab.m[ab.n++];
        memcpy(m->ct, F->held[i], F->held_len[i]);
        m->len = F->held_len[i];
        m->ptlen = 0; /* plaintext not checked: set on first delivery */
        m->delivered = -1;
    }
    while (in->left > 0) {
        uint8_t op = fuzz_u8(in), arg = fuzz_u8(in);
        int flip = (op & 0x08) != 0;
        switch (op % 5) {
        case 0:
            send(a, &ab, arg);
            break;
        case 1:
            send(b, &ba, arg);
            break;
        case 2:
        case 3: {
            queue_t *q = op % 5 == 2 ? &ab : &ba;
            kl_ratchet_t *to = op % 5 == 2 ? b : a;
            if (q->n > 0 && q->m[arg % q->n].delivered == -1) {
                /* a fixture message: learn its plaintext on delivery */
                msg_t *m = &q->m[arg % q->n];
                uint8_t out[PT_MAX];
                size_t olen = 0;
                int rc = kl_ratchet_decrypt(to, m->ct, m->len, out, sizeof out, &olen);
                FUZZ_CHECK(rc == 0 && olen + KL_RATCHET_OVERHEAD == m->len);
                memcpy(m->pt, out, olen);
                m->ptlen = olen;
                m->delivered = 1;
                break;
            }
            deliver(to, q, arg, flip);
            break;
        }
        default:
            roundtrip(flip ? &a : &b);
            break;
        }
    }
    kl_ratchet_free(a);
    kl_ratchet_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    fuzz_init();
    fuzz_ratchet_get();
    fuzz_rng_reset(size);
    switch (fuzz_u8(&in) % 3) {
    case 0:
        mode_deserialize(in.p, in.left);
        break;
    case 1:
        mode_decrypt(in.p, in.left);
        break;
    default:
        mode_conversation(&in);
        break;
    }
    return 0;
}
