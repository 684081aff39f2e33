/* Sender keys for group messages; the construction is fixed in
 * include/kollega/senderkey.h.
 *
 * Memory: the state lives in sodium_malloc'd (guarded) memory and is wiped
 * when freed; a receiving state's skipped message keys live in the store of
 * proto/skipped.h (one chain, so under the all-zero chain id), which grows
 * on demand up to KL_SENDERKEY_MAX_SKIP entries, oldest (lowest n) first,
 * evicting the oldest beyond that.
 *
 * Decryption verifies the signature first: it binds the whole message and
 * the caller's ad to the chain's signing key, which only the sender holds,
 * so a member who knows the chain key (every receiver does) still cannot
 * forge a message in another member's name. Then the chain is advanced on
 * a staged copy, the keys it skips are staged, and only once the AEAD tag
 * has verified is anything committed: a forged, replayed, reordered-beyond-
 * the-bound or tampered message leaves the state exactly as it was. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/buf.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/hkdf.h"
#include "kollega/senderkey.h"
#include "skipped.h"

#define MSG_INFO "kollega-senderkey-v1"
#define SIG_CTX "kollega-senderkey-msg-v1"
#define SIG_CTX_LEN (sizeof SIG_CTX - 1)
#define HDR 8

/* Magic, then format version 1. */
static const uint8_t SER_HEAD[5] = {'K', 'L', 'S', 'K', 1};
#define F_OWN 0x01u
/* Everything before the skipped keys (their count is in kl_skipped_wire_len). */
#define SER_FIXED (4 + 1 + 1 + 4 + 4 + 32 + 32 + 64)

/* The chain id of every skipped key: a state has one chain. */
static const uint8_t ONE_CHAIN[32];

struct kl_senderkey {
    uint32_t key_id;
    uint32_t n;          /* own: next to send; receiving: next in the chain */
    uint8_t ck[32];      /* CK_n */
    uint8_t sign_pk[32];
    uint8_t sign_sk[64]; /* own chain only; zeros when receiving */
    int own;
    kl_skipped_t skipped; /* increasing n */
};

/* key 32 || nonce 24 = HKDF(salt 32 zero bytes, ikm MK, "kollega-senderkey-v1"). */
static int message_keys(const uint8_t mk[32], uint8_t keys[KL_AEAD_KEY + KL_AEAD_NONCE])
{
    static const uint8_t zeros[32];
    return kl_hkdf_sha256(zeros, sizeof zeros, mk, 32, (const uint8_t *)MSG_INFO,
                          sizeof MSG_INFO - 1, keys, KL_AEAD_KEY + KL_AEAD_NONCE);
}

/* ad || key_id || n, malloc'd into *full (adlen + 8 bytes). */
static int aead_ad(const uint8_t *ad, size_t adlen, const uint8_t hdr[HDR], uint8_t **full)
{
    if (adlen > SIZE_MAX - HDR - 1)
        return KL_ETOOBIG;
    *full = malloc(adlen + HDR);
    if (*full == NULL)
        return KL_ENOMEM;
    if (adlen > 0)
        memcpy(*full, ad, adlen);
    memcpy(*full + adlen, hdr, HDR);
    return 0;
}

/* The signed bytes: "kollega-senderkey-msg-v1" || ad || body (everything
 * before the signature), malloc'd into *out with its length. */
static int sig_input(const uint8_t *ad, size_t adlen, const uint8_t *body, size_t blen,
                     uint8_t **out, size_t *len)
{
    if (adlen > SIZE_MAX / 2 || blen > SIZE_MAX / 2 - SIG_CTX_LEN)
        return KL_ETOOBIG;
    *len = SIG_CTX_LEN + adlen + blen;
    *out = malloc(*len);
    if (*out == NULL)
        return KL_ENOMEM;
    memcpy(*out, SIG_CTX, SIG_CTX_LEN);
    if (adlen > 0)
        memcpy(*out + SIG_CTX_LEN, ad, adlen);
    memcpy(*out + SIG_CTX_LEN + adlen, body, blen);
    return 0;
}

static kl_senderkey_t *state_new(void)
{
    kl_senderkey_t *s = kl_secure_alloc(sizeof *s);
    if (s != NULL) {
        sodium_memzero(s, sizeof *s);
        kl_skipped_init(&s->skipped, KL_SENDERKEY_MAX_SKIP);
    }
    return s;
}

/* A new own chain: random CK_0 and a fresh Ed25519 signing key pair.
 * KL_ENOMEM, KL_ECRYPTO. */
int kl_senderkey_new(kl_senderkey_t **out, uint32_t key_id)
{
    kl_senderkey_t *s;

    if (out == NULL)
        return KL_EINVAL;
    *out = NULL;
    s = state_new();
    if (s == NULL)
        return KL_ENOMEM;
    s->key_id = key_id;
    s->own = 1;
    randombytes_buf(s->ck, sizeof s->ck);
    if (crypto_sign_keypair(s->sign_pk, s->sign_sk) != 0) {
        kl_senderkey_free(s);
        return KL_ECRYPTO;
    }
    *out = s;
    return 0;
}

/* Encrypt len bytes of pt as message n of the own chain into out (len +
 * KL_SENDERKEY_OVERHEAD bytes; must not overlap pt). KL_ESTATE for a
 * receiving state, KL_ELIMIT when the counter is exhausted, KL_ETOOBIG,
 * KL_ENOMEM. The chain advances only on success. */
int kl_senderkey_encrypt(kl_senderkey_t *s, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                         size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    uint8_t ck[32], mk[32], keys[KL_AEAD_KEY + KL_AEAD_NONCE];
    uint8_t *full_ad = NULL, *signed_in = NULL;
    size_t signed_len = 0, body;
    int r;

    if (s == NULL || out == NULL || outlen == NULL || (pt == NULL && len > 0) ||
        (ad == NULL && adlen > 0))
        return KL_EINVAL;
    if (!s->own)
        return KL_ESTATE;
    if (s->n == UINT32_MAX)
        return KL_ELIMIT;
    if (len > SIZE_MAX - KL_SENDERKEY_OVERHEAD || cap < len + KL_SENDERKEY_OVERHEAD)
        return KL_ETOOBIG;
    body = HDR + len + KL_AEAD_TAG;
    memcpy(ck, s->ck, 32);
    kl_chain_kdf(ck, mk);
    r = message_keys(mk, keys);
    if (r)
        goto out;
    kl_put_u32(out, s->key_id);
    kl_put_u32(out + 4, s->n);
    r = aead_ad(ad, adlen, out, &full_ad);
    if (r)
        goto out;
    r = kl_aead_seal(keys, keys + KL_AEAD_KEY, full_ad, adlen + HDR, pt, len, out + HDR);
    if (r)
        goto out;
    r = sig_input(ad, adlen, out, body, &signed_in, &signed_len);
    if (r)
        goto out;
    if (crypto_sign_detached(out + body, NULL, signed_in, signed_len, s->sign_sk) != 0) {
        r = KL_ECRYPTO;
        goto out;
    }
    memcpy(s->ck, ck, 32);
    s->n++;
    *outlen = body + KL_SIG;
    r = 0;
out:
    if (r)
        sodium_memzero(out, len + KL_SENDERKEY_OVERHEAD);
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(mk, sizeof mk);
    sodium_memzero(keys, sizeof keys);
    free(full_ad);
    free(signed_in);
    return r;
}

/* key_id | n | CK_n | signing public key: the chain from its current
 * position on. Holds CK: the caller wipes it after sending it. */
int kl_senderkey_export(const kl_senderkey_t *s, uint8_t out[KL_SENDERKEY_DIST])
{
    if (s == NULL || out == NULL)
        return KL_EINVAL;
    kl_put_u32(out, s->key_id);
    kl_put_u32(out + 4, s->n);
    memcpy(out + 8, s->ck, 32);
    memcpy(out + 40, s->sign_pk, 32);
    return 0;
}

/* A receiving state from a distribution record of exactly
 * KL_SENDERKEY_DIST bytes. KL_EPROTO for a wrong length or a signing key
 * that is not a valid Ed25519 point (small-order points included);
 * KL_ENOMEM. */
int kl_senderkey_import(kl_senderkey_t **out, const uint8_t *dist, size_t len)
{
    kl_senderkey_t *s;

    if (out == NULL)
        return KL_EINVAL;
    *out = NULL;
    if (dist == NULL || len != KL_SENDERKEY_DIST)
        return KL_EPROTO;
    if (!crypto_core_ed25519_is_valid_point(dist + 40))
        return KL_EPROTO;
    s = state_new();
    if (s == NULL)
        return KL_ENOMEM;
    s->key_id = kl_get_u32(dist);
    s->n = kl_get_u32(dist + 4);
    memcpy(s->ck, dist + 8, 32);
    memcpy(s->sign_pk, dist + 40, 32);
    *out = s;
    return 0;
}

/* The key_id of a message, to pick the receiving state. KL_EPROTO if the
 * message is shorter than KL_SENDERKEY_OVERHEAD. */
int kl_senderkey_msg_key_id(const uint8_t *msg, size_t len, uint32_t *key_id)
{
    if (msg == NULL || key_id == NULL)
        return KL_EINVAL;
    if (len < KL_SENDERKEY_OVERHEAD)
        return KL_EPROTO;
    *key_id = kl_get_u32(msg);
    return 0;
}

static int open_with(const uint8_t mk[32], const uint8_t *full_ad, size_t full_adlen,
                     const uint8_t *ct, size_t ctlen, uint8_t *out)
{
    uint8_t keys[KL_AEAD_KEY + KL_AEAD_NONCE];
    int r = message_keys(mk, keys);
    if (r == 0)
        r = kl_aead_open(keys, keys + KL_AEAD_KEY, full_ad, full_adlen, ct, ctlen, out) == 0
                ? 0
                : KL_ECRYPTO;
    sodium_memzero(keys, sizeof keys);
    return r;
}

/* Decrypt msg with a receiving state into out (len - KL_SENDERKEY_OVERHEAD
 * bytes; must not overlap msg). KL_EPROTO if shorter than the overhead or n
 * is UINT32_MAX; KL_ENOTFOUND if the key_id is another chain's; KL_ESTATE
 * for an own chain; KL_ETOOBIG if cap is short; KL_ECRYPTO for a bad
 * signature, tampering, a replay or a message older than the imported
 * position; KL_ELIMIT if it would skip more than KL_SENDERKEY_MAX_SKIP
 * keys; KL_ENOMEM. The state is unchanged on any failure. */
int kl_senderkey_decrypt(kl_senderkey_t *s, const uint8_t *ad, size_t adlen, const uint8_t *msg,
                         size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    uint8_t ck[32], mk[32];
    uint8_t *full_ad = NULL, *signed_in = NULL;
    kl_skipped_stage_t st;
    size_t signed_len = 0, body, ptlen, gap = 0, idx;
    uint32_t n, next;
    int r;

    if (s == NULL || msg == NULL || out == NULL || outlen == NULL || (ad == NULL && adlen > 0))
        return KL_EINVAL;
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(mk, sizeof mk);
    kl_skipped_stage_init(&st, 0);
    r = KL_EPROTO;
    if (len < KL_SENDERKEY_OVERHEAD)
        goto out;
    r = KL_ESTATE;
    if (s->own)
        goto out;
    r = KL_ENOTFOUND;
    if (kl_get_u32(msg) != s->key_id)
        goto out;
    ptlen = len - KL_SENDERKEY_OVERHEAD;
    body = len - KL_SIG;
    r = KL_ETOOBIG;
    if (cap < ptlen)
        goto out;
    n = kl_get_u32(msg + 4);
    r = KL_EPROTO;
    if (n == UINT32_MAX)
        goto out;

    r = sig_input(ad, adlen, msg, body, &signed_in, &signed_len);
    if (r)
        goto out;
    r = KL_ECRYPTO;
    if (crypto_sign_verify_detached(msg + body, signed_in, signed_len, s->sign_pk) != 0)
        goto out;
    r = aead_ad(ad, adlen, msg, &full_ad);
    if (r)
        goto out;

    if (n < s->n) {
        /* Behind the chain: only a key kept for a message that arrived out
         * of order opens it; a used or pre-import key is gone. */
        r = KL_ECRYPTO;
        idx = kl_skipped_find(&s->skipped, ONE_CHAIN, n);
        if (idx == SIZE_MAX)
            goto out;
        r = open_with(s->skipped.e[idx].mk, full_ad, adlen + HDR, msg + HDR, body - HDR, out);
        if (r)
            goto out;
        kl_skipped_remove(&s->skipped, idx);
        *outlen = ptlen;
        goto out;
    }

    gap = (size_t)(n - s->n);
    r = KL_ELIMIT;
    if (gap > KL_SENDERKEY_MAX_SKIP)
        goto out;
    kl_skipped_stage_init(&st, gap);
    memcpy(ck, s->ck, 32);
    next = s->n;
    r = kl_skipped_stage_chain(&st, ONE_CHAIN, ck, &next, n);
    if (r)
        goto out;
    kl_chain_kdf(ck, mk);
    r = open_with(mk, full_ad, adlen + HDR, msg + HDR, body - HDR, out);
    if (r)
        goto out;
    r = kl_skipped_commit(&s->skipped, &st);
    if (r) {
        sodium_memzero(out, ptlen);
        goto out;
    }
    memcpy(s->ck, ck, 32);
    s->n = n + 1;
    *outlen = ptlen;
    r = 0;
out:
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(mk, sizeof mk);
    kl_skipped_stage_free(&st);
    free(full_ad);
    free(signed_in);
    return r;
}

uint32_t kl_senderkey_id(const kl_senderkey_t *s)
{
    return s->key_id;
}

/* Serialise, format version 1 (integers big-endian):
 *   "KLSK" | u8 version=1 | u8 flags (1 = own chain) | u32 key_id | u32 n |
 *   CK 32 | signing pub 32 | signing secret 64 (zeros when receiving) |
 *   u32 count | count x (u32 n | MK 32), increasing n
 * *out is malloc'd and holds secrets: kl_free_wipe(*out, *len). */
int kl_senderkey_serialize(const kl_senderkey_t *s, uint8_t **out, size_t *len)
{
    size_t total;
    uint8_t *p;
    kl_writer_t w;
    int rc = 0;

    if (out == NULL || len == NULL)
        return KL_EINVAL;
    *out = NULL;
    *len = 0;
    if (s == NULL)
        return KL_EINVAL;
    total = SER_FIXED + kl_skipped_wire_len(&s->skipped, 0);
    p = malloc(total);
    if (p == NULL)
        return KL_ENOMEM;
    kl_writer_init(&w, p, total);
    rc |= kl_writer_bytes(&w, SER_HEAD, sizeof SER_HEAD);
    rc |= kl_writer_u8(&w, s->own ? F_OWN : 0);
    rc |= kl_writer_u32(&w, s->key_id);
    rc |= kl_writer_u32(&w, s->n);
    rc |= kl_writer_bytes(&w, s->ck, 32);
    rc |= kl_writer_bytes(&w, s->sign_pk, 32);
    rc |= kl_writer_bytes(&w, s->sign_sk, 64);
    rc |= kl_skipped_write(&s->skipped, &w, 0);
    if (rc != 0 || w.off != total) {
        kl_free_wipe(p, total);
        return KL_EINVAL;
    }
    *out = p;
    *len = total;
    return 0;
}

/* Restore a state written by kl_senderkey_serialize. Only the canonical
 * encoding is accepted: KL_EPROTO for a wrong magic or version, unknown
 * flags, an own chain whose signing secret does not derive its public key
 * or that holds skipped keys, a receiving chain with a non-zero secret or
 * an invalid signing key, more than KL_SENDERKEY_MAX_SKIP skipped keys or
 * a count that does not match the remaining length (checked before
 * allocating), skipped keys not strictly increasing and below n, or
 * trailing bytes. KL_ENOMEM. */
int kl_senderkey_deserialize(kl_senderkey_t **out, const uint8_t *in, size_t len)
{
    kl_senderkey_t *s;
    kl_reader_t rd;
    uint8_t flags, pk[32], sk[64];
    uint32_t count;
    int rc = KL_EPROTO;

    if (out == NULL)
        return KL_EINVAL;
    *out = NULL;
    if (in == NULL)
        return KL_EPROTO;
    s = state_new();
    if (s == NULL)
        return KL_ENOMEM;
    kl_reader_init(&rd, in, len);
    if (kl_reader_expect(&rd, SER_HEAD, sizeof SER_HEAD) != 0)
        goto out;
    if (kl_reader_u8(&rd, &flags) != 0 || (flags & ~F_OWN) != 0)
        goto out;
    s->own = (flags & F_OWN) != 0;
    if (kl_reader_u32(&rd, &s->key_id) != 0 || kl_reader_u32(&rd, &s->n) != 0 ||
        kl_reader_bytes(&rd, s->ck, 32) != 0 || kl_reader_bytes(&rd, s->sign_pk, 32) != 0 ||
        kl_reader_bytes(&rd, s->sign_sk, 64) != 0 || kl_reader_u32(&rd, &count) != 0)
        goto out;
    if (s->own) {
        /* The secret key is seed || public key: both halves must agree. */
        if (crypto_sign_seed_keypair(pk, sk, s->sign_sk) != 0 ||
            sodium_memcmp(sk, s->sign_sk, 64) != 0 || memcmp(pk, s->sign_pk, 32) != 0 ||
            count != 0)
            goto out;
    } else if (!sodium_is_zero(s->sign_sk, 64) ||
               !crypto_core_ed25519_is_valid_point(s->sign_pk)) {
        goto out;
    }
    rc = kl_skipped_read(&s->skipped, &rd, count, 0);
    if (rc)
        goto out;
    rc = KL_EPROTO;
    for (size_t i = 0; i < s->skipped.n; i++) {
        const kl_skipped_key_t *e = &s->skipped.e[i];
        if (e->n >= s->n || (i > 0 && e->n <= e[-1].n))
            goto out;
    }
    *out = s;
    s = NULL;
    rc = 0;
out:
    sodium_memzero(sk, sizeof sk);
    kl_senderkey_free(s);
    return rc;
}

/* Wipe and free (NULL is fine). */
void kl_senderkey_free(kl_senderkey_t *s)
{
    if (s == NULL)
        return;
    kl_skipped_free(&s->skipped);
    kl_secure_free(s);
}
