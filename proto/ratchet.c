/* The Double Ratchet (Signal's specification, revision 1) for 1:1 sessions.
 * KDFs, header layout and AEAD are fixed in include/kollega/ratchet.h.
 *
 * Memory: the state lives in sodium_malloc'd (guarded, mlocked where the
 * system allows) memory and is wiped when freed. Skipped message keys, under
 * (the sender's ratchet key, N), live in the store of proto/skipped.h, which
 * grows on demand up to KL_RATCHET_MAX_STORED entries, so a session that
 * never sees out-of-order delivery costs a few hundred bytes, not the
 * 136 KiB of a full store. It keeps them in arrival order (oldest first),
 * and serialisation writes them in that order.
 *
 * Decryption is transactional. Everything a message would change (root key,
 * chains, counters, a new ratchet key pair, newly skipped keys) is computed
 * into a staged copy of the small part of the state and a staging array of
 * new skipped keys; only once the AEAD tag has verified is it all committed.
 * A forged, replayed or over-long-gap message therefore leaves the session
 * exactly as it was, and the genuine message still decrypts afterwards. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/buf.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/hkdf.h"
#include "kollega/ratchet.h"
#include "kollega/x3dh.h"
#include "skipped.h"

#define RK_INFO "kollega-ratchet-v1"
#define MSG_INFO "kollega-msg-v1"
#define AD_LEN (KL_X3DH_AD + KL_RATCHET_HEADER)

/* Magic, then format version 1. */
static const uint8_t SER_HEAD[5] = {'K', 'L', 'R', 'T', 1};
#define F_DHR 0x01u
#define F_CKS 0x02u
#define F_CKR 0x04u
/* Everything before the skipped keys (their count is in kl_skipped_wire_len). */
#define SER_FIXED (4 + 1 + 64 + 32 + 32 + 32 + 1 + 32 + 32 + 32 + 4 + 4 + 4)

_Static_assert(KL_X3DH_AD == 64, "ratchet AD assumes the 64-byte X3DH AD");
_Static_assert(KL_RATCHET_MAX_STORED >= 2 * KL_RATCHET_MAX_SKIP,
               "one message may skip MAX_SKIP keys in two chains");

/* The part of the state a decryption may change, besides skipped keys. It is
 * small, so a decryption stages a full copy of it. */
typedef struct core {
    uint8_t rk[32];
    uint8_t dhs_priv[32];
    uint8_t dhs_pub[32];
    uint8_t dhr[32];
    uint8_t cks[32];
    uint8_t ckr[32];
    uint32_t ns, nr, pn;
    uint8_t has_dhr, has_cks, has_ckr;
} core_t;

struct kl_ratchet {
    uint8_t ad[KL_X3DH_AD];
    core_t c;
    kl_skipped_t skipped; /* chain = the sender's ratchet public key */
};

/* RK', CK = HKDF(salt = RK, ikm = dh_out, info "kollega-ratchet-v1", 64). */
static int kdf_rk(uint8_t rk[32], const uint8_t dh_out[32], uint8_t ck[32])
{
    uint8_t okm[64];
    int r = kl_hkdf_sha256(rk, 32, dh_out, 32, (const uint8_t *)RK_INFO, sizeof RK_INFO - 1, okm,
                           sizeof okm);
    if (r == 0) {
        memcpy(rk, okm, 32);
        memcpy(ck, okm + 32, 32);
    }
    sodium_memzero(okm, sizeof okm);
    return r;
}

/* One step of the root chain: RK, chain = KDF_RK(RK, DH(our ratchet key,
 * the peer's)), the sending or the receiving chain key; *has set once it
 * holds. */
static int root_step(core_t *c, uint8_t chain[32], uint8_t *has)
{
    uint8_t dh_out[32];
    int rc = kl_dh(c->dhs_priv, c->dhr, dh_out);
    if (rc == 0)
        rc = kdf_rk(c->rk, dh_out, chain);
    if (rc == 0)
        *has = 1;
    sodium_memzero(dh_out, sizeof dh_out);
    return rc;
}

/* key 32 || nonce 24 = HKDF(salt = 32 zero bytes, ikm = MK, "kollega-msg-v1"). */
static int message_keys(const uint8_t mk[32], uint8_t keys[KL_AEAD_KEY + KL_AEAD_NONCE])
{
    static const uint8_t zeros[32];
    return kl_hkdf_sha256(zeros, sizeof zeros, mk, 32, (const uint8_t *)MSG_INFO,
                          sizeof MSG_INFO - 1, keys, KL_AEAD_KEY + KL_AEAD_NONCE);
}

/* AEAD over the body with AD = X3DH AD || header; header is msg[0..40). */
static int open_with(const uint8_t ad[KL_X3DH_AD], const uint8_t mk[32], const uint8_t *msg,
                     size_t len, uint8_t *out)
{
    uint8_t keys[KL_AEAD_KEY + KL_AEAD_NONCE];
    uint8_t full_ad[AD_LEN];
    int r = message_keys(mk, keys);
    if (r)
        goto out;
    memcpy(full_ad, ad, KL_X3DH_AD);
    memcpy(full_ad + KL_X3DH_AD, msg, KL_RATCHET_HEADER);
    r = kl_aead_open(keys, keys + KL_AEAD_KEY, full_ad, sizeof full_ad, msg + KL_RATCHET_HEADER,
                     len - KL_RATCHET_HEADER, out) == 0
            ? 0
            : KL_ECRYPTO;
out:
    sodium_memzero(keys, sizeof keys);
    return r;
}

static kl_ratchet_t *ratchet_new(const uint8_t ad[KL_X3DH_AD])
{
    kl_ratchet_t *r = kl_secure_alloc(sizeof *r);
    if (r == NULL)
        return NULL;
    sodium_memzero(r, sizeof *r);
    kl_skipped_init(&r->skipped, KL_RATCHET_MAX_STORED);
    if (ad != NULL)
        memcpy(r->ad, ad, KL_X3DH_AD);
    return r;
}

/* Create the initiator's state after X3DH: a fresh ratchet key pair, and a
 * first DH ratchet step against the responder's signed prekey, so the
 * initiator can send at once. KL_ECRYPTO if peer_ratchet_pub is a
 * low-order point, KL_ENOMEM. The caller still owns and wipes sk. */
int kl_ratchet_init_initiator(kl_ratchet_t **out, const uint8_t sk[32],
                              const uint8_t peer_ratchet_pub[32], const uint8_t ad[64])
{
    int rc = KL_ENOMEM;
    kl_ratchet_t *r = ratchet_new(ad);

    *out = NULL;
    if (r == NULL)
        goto out;
    kl_x_keypair(r->c.dhs_pub, r->c.dhs_priv);
    memcpy(r->c.dhr, peer_ratchet_pub, 32);
    r->c.has_dhr = 1;
    memcpy(r->c.rk, sk, 32);
    rc = root_step(&r->c, r->c.cks, &r->c.has_cks);
    if (rc)
        goto out;
    *out = r;
    r = NULL;
out:
    kl_ratchet_free(r);
    return rc;
}

/* Create the responder's state after X3DH: its signed prekey pair is the
 * first ratchet key pair and the root key is SK; it can only send after the
 * first message arrives (kl_ratchet_encrypt returns KL_ESTATE until then).
 * KL_EINVAL if spk_pub is not the public key of spk_priv, KL_ENOMEM. */
int kl_ratchet_init_responder(kl_ratchet_t **out, const uint8_t sk[32],
                              const uint8_t spk_priv[32], const uint8_t spk_pub[32],
                              const uint8_t ad[64])
{
    uint8_t check[32];
    kl_ratchet_t *r;

    *out = NULL;
    if (kl_x_public(spk_priv, check) != 0 || sodium_memcmp(check, spk_pub, 32) != 0)
        return KL_EINVAL;
    r = ratchet_new(ad);
    if (r == NULL)
        return KL_ENOMEM;
    memcpy(r->c.dhs_priv, spk_priv, 32);
    memcpy(r->c.dhs_pub, spk_pub, 32);
    memcpy(r->c.rk, sk, 32);
    *out = r;
    return 0;
}

/* Encrypt len bytes of pt into out = header || ciphertext || tag; out needs
 * len + KL_RATCHET_OVERHEAD bytes (KL_ETOOBIG) and must not overlap pt.
 * KL_ESTATE if no sending chain exists yet (responder before the first
 * message), KL_ELIMIT when the chain's counter is exhausted. The sending
 * chain advances only on success. */
int kl_ratchet_encrypt(kl_ratchet_t *r, const uint8_t *pt, size_t len, uint8_t *out,
                       size_t cap, size_t *outlen)
{
    int rc;
    uint8_t ck[32];
    uint8_t mk[32];
    uint8_t keys[KL_AEAD_KEY + KL_AEAD_NONCE];
    uint8_t full_ad[AD_LEN];

    if (!r->c.has_cks)
        return KL_ESTATE;
    if (r->c.ns == UINT32_MAX)
        return KL_ELIMIT;
    if (len > SIZE_MAX - KL_RATCHET_OVERHEAD || cap < len + KL_RATCHET_OVERHEAD)
        return KL_ETOOBIG;
    memcpy(ck, r->c.cks, 32);
    kl_chain_kdf(ck, mk);
    rc = message_keys(mk, keys);
    if (rc)
        goto out;
    memcpy(out, r->c.dhs_pub, 32);
    kl_put_u32(out + 32, r->c.pn);
    kl_put_u32(out + 36, r->c.ns);
    memcpy(full_ad, r->ad, KL_X3DH_AD);
    memcpy(full_ad + KL_X3DH_AD, out, KL_RATCHET_HEADER);
    rc = kl_aead_seal(keys, keys + KL_AEAD_KEY, full_ad, sizeof full_ad, pt, len,
                      out + KL_RATCHET_HEADER);
    if (rc)
        goto out;
    memcpy(r->c.cks, ck, 32);
    r->c.ns++;
    *outlen = len + KL_RATCHET_OVERHEAD;
out:
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(mk, sizeof mk);
    sodium_memzero(keys, sizeof keys);
    return rc;
}

/* Advance the staged receiving chain to message number `until`, staging
 * every skipped key. Refuses (KL_ELIMIT) a gap over KL_RATCHET_MAX_SKIP,
 * checked before any work, as in the specification's SkipMessageKeys. */
static int skip_keys(core_t *c, uint32_t until, kl_skipped_stage_t *st)
{
    if ((uint64_t)until > (uint64_t)c->nr + KL_RATCHET_MAX_SKIP)
        return KL_ELIMIT;
    if (!c->has_ckr)
        return 0;
    return kl_skipped_stage_chain(st, c->dhr, c->ckr, &c->nr, until);
}

/* One DH ratchet step on the staged core for a new peer ratchet key: derive
 * the receiving chain from DH(our key, theirs), then a fresh key pair and the
 * sending chain from DH(new key, theirs). */
static int dh_ratchet(core_t *c, const uint8_t dh[32])
{
    c->pn = c->ns;
    c->ns = 0;
    c->nr = 0;
    memcpy(c->dhr, dh, 32);
    c->has_dhr = 1;
    int rc = root_step(c, c->ckr, &c->has_ckr);
    if (rc)
        return rc;
    kl_x_keypair(c->dhs_pub, c->dhs_priv);
    return root_step(c, c->cks, &c->has_cks);
}

/* Decrypt msg = header || ciphertext into out (len - KL_RATCHET_OVERHEAD
 * bytes; KL_ETOOBIG if cap is smaller; out must not overlap msg).
 * KL_EPROTO if shorter than KL_RATCHET_OVERHEAD or N is UINT32_MAX;
 * KL_ELIMIT if PN or N would skip more than KL_RATCHET_MAX_SKIP keys;
 * KL_ECRYPTO if tampered, forged or replayed (a message whose key was
 * already used or evicted); KL_ENOMEM. On any failure the state is exactly
 * as before. */
int kl_ratchet_decrypt(kl_ratchet_t *r, const uint8_t *msg, size_t len, uint8_t *out,
                       size_t cap, size_t *outlen)
{
    int rc = KL_EPROTO;
    const uint8_t *dh = msg;
    uint32_t pn, n;
    size_t idx;
    core_t c;
    kl_skipped_stage_t st;
    uint8_t mk[32];

    sodium_memzero(&c, sizeof c);
    sodium_memzero(mk, sizeof mk);
    /* Room for the keys of two chains: what one message may skip. */
    kl_skipped_stage_init(&st, 2 * KL_RATCHET_MAX_SKIP);
    if (len < KL_RATCHET_OVERHEAD)
        goto out;
    rc = KL_ETOOBIG;
    if (cap < len - KL_RATCHET_OVERHEAD)
        goto out;
    pn = kl_get_u32(msg + 32);
    n = kl_get_u32(msg + 36);
    /* N + 1 becomes the receiving counter; keep it representable. */
    rc = KL_EPROTO;
    if (n == UINT32_MAX)
        goto out;

    /* A key kept for a message that arrived out of order: decrypting with it
     * changes nothing but the removal of that one key. */
    idx = kl_skipped_find(&r->skipped, dh, n);
    if (idx != SIZE_MAX) {
        rc = open_with(r->ad, r->skipped.e[idx].mk, msg, len, out);
        if (rc)
            goto out;
        kl_skipped_remove(&r->skipped, idx);
        *outlen = len - KL_RATCHET_OVERHEAD;
        goto out;
    }

    c = r->c;
    if (!c.has_dhr || memcmp(dh, c.dhr, 32) != 0) {
        rc = skip_keys(&c, pn, &st);
        if (rc)
            goto out;
        rc = dh_ratchet(&c, dh);
        if (rc)
            goto out;
    }
    rc = skip_keys(&c, n, &st);
    if (rc)
        goto out;
    /* Behind the chain and not among the skipped keys: its key was used
     * (a replay) or evicted. Either way it can no longer be read. */
    rc = KL_ECRYPTO;
    if (n < c.nr || !c.has_ckr)
        goto out;
    kl_chain_kdf(c.ckr, mk);
    c.nr++;
    rc = open_with(r->ad, mk, msg, len, out);
    if (rc)
        goto out;

    rc = kl_skipped_commit(&r->skipped, &st);
    if (rc) {
        sodium_memzero(out, len - KL_RATCHET_OVERHEAD);
        goto out;
    }
    r->c = c;
    *outlen = len - KL_RATCHET_OVERHEAD;
    rc = 0;
out:
    sodium_memzero(&c, sizeof c);
    sodium_memzero(mk, sizeof mk);
    kl_skipped_stage_free(&st);
    return rc;
}

/* Serialise the state, format version 1 (all integers big-endian):
 *   "KLRT" | u8 version=1 | AD 64 | RK 32 | DHs priv 32 | DHs pub 32 |
 *   u8 flags (1 DHr, 2 CKs, 4 CKr) | DHr 32 | CKs 32 | CKr 32 (absent = zeros) |
 *   u32 Ns | u32 Nr | u32 PN | u32 count | count x (DH 32 | u32 N | MK 32)
 * Skipped keys are written oldest first. *out is malloc'd and holds secrets:
 * release it with kl_free_wipe(*out, *len). KL_ENOMEM. */
int kl_ratchet_serialize(const kl_ratchet_t *r, uint8_t **out, size_t *len)
{
    int rc = 0;
    size_t total = SER_FIXED + kl_skipped_wire_len(&r->skipped, 1);
    uint8_t flags = (uint8_t)((r->c.has_dhr ? F_DHR : 0) | (r->c.has_cks ? F_CKS : 0) |
                              (r->c.has_ckr ? F_CKR : 0));
    uint8_t *p = malloc(total);
    kl_writer_t w;

    *out = NULL;
    *len = 0;
    if (p == NULL)
        return KL_ENOMEM;
    kl_writer_init(&w, p, total);
    rc |= kl_writer_bytes(&w, SER_HEAD, sizeof SER_HEAD);
    rc |= kl_writer_bytes(&w, r->ad, KL_X3DH_AD);
    rc |= kl_writer_bytes(&w, r->c.rk, 32);
    rc |= kl_writer_bytes(&w, r->c.dhs_priv, 32);
    rc |= kl_writer_bytes(&w, r->c.dhs_pub, 32);
    rc |= kl_writer_u8(&w, flags);
    rc |= kl_writer_bytes(&w, r->c.dhr, 32);
    rc |= kl_writer_bytes(&w, r->c.cks, 32);
    rc |= kl_writer_bytes(&w, r->c.ckr, 32);
    rc |= kl_writer_u32(&w, r->c.ns);
    rc |= kl_writer_u32(&w, r->c.nr);
    rc |= kl_writer_u32(&w, r->c.pn);
    rc |= kl_skipped_write(&r->skipped, &w, 1);
    /* The size is computed above from the same fields; a mismatch is a bug. */
    if (rc != 0 || w.off != total) {
        kl_free_wipe(p, total);
        return KL_EINVAL;
    }
    *out = p;
    *len = total;
    return 0;
}

/* Read `n` bytes that must be all zero when the flag says the field is absent. */
static int read_opt(kl_reader_t *rd, uint8_t dst[32], int present)
{
    if (kl_reader_bytes(rd, dst, 32) != 0)
        return KL_EPROTO;
    if (!present && !sodium_is_zero(dst, 32))
        return KL_EPROTO;
    return 0;
}

/* Restore a state written by kl_ratchet_serialize. Only the canonical
 * encoding is accepted: KL_EPROTO for a wrong magic or version, unknown or
 * impossible flag combinations, non-zero absent fields, a ratchet public key
 * that does not match its private key, more than KL_RATCHET_MAX_STORED
 * skipped keys, a count that does not match the remaining length (checked
 * before allocating), or trailing bytes. KL_ENOMEM. */
int kl_ratchet_deserialize(kl_ratchet_t **out, const uint8_t *in, size_t len)
{
    int rc = KL_EPROTO;
    kl_reader_t rd;
    uint8_t flags, check[32];
    uint32_t count;
    kl_ratchet_t *r = NULL;

    *out = NULL;
    r = ratchet_new(NULL);
    if (r == NULL)
        return KL_ENOMEM;
    kl_reader_init(&rd, in, len);
    if (kl_reader_expect(&rd, SER_HEAD, sizeof SER_HEAD) != 0)
        goto out;
    if (kl_reader_bytes(&rd, r->ad, KL_X3DH_AD) != 0 || kl_reader_bytes(&rd, r->c.rk, 32) != 0 ||
        kl_reader_bytes(&rd, r->c.dhs_priv, 32) != 0 ||
        kl_reader_bytes(&rd, r->c.dhs_pub, 32) != 0 || kl_reader_u8(&rd, &flags) != 0)
        goto out;
    /* The only reachable combinations: fresh responder (none), initiator
     * before any reply (DHr + CKs), and any state after a receive (all). */
    if (flags != 0 && flags != (F_DHR | F_CKS) && flags != (F_DHR | F_CKS | F_CKR))
        goto out;
    r->c.has_dhr = (flags & F_DHR) != 0;
    r->c.has_cks = (flags & F_CKS) != 0;
    r->c.has_ckr = (flags & F_CKR) != 0;
    if (read_opt(&rd, r->c.dhr, r->c.has_dhr) != 0 || read_opt(&rd, r->c.cks, r->c.has_cks) != 0 ||
        read_opt(&rd, r->c.ckr, r->c.has_ckr) != 0)
        goto out;
    if (kl_reader_u32(&rd, &r->c.ns) != 0 || kl_reader_u32(&rd, &r->c.nr) != 0 ||
        kl_reader_u32(&rd, &r->c.pn) != 0 || kl_reader_u32(&rd, &count) != 0)
        goto out;
    if (kl_x_public(r->c.dhs_priv, check) != 0 || memcmp(check, r->c.dhs_pub, 32) != 0)
        goto out;
    rc = kl_skipped_read(&r->skipped, &rd, count, 1);
    if (rc)
        goto out;
    *out = r;
    r = NULL;
    rc = 0;
out:
    sodium_memzero(check, sizeof check);
    kl_ratchet_free(r);
    return rc;
}

/* Wipe and free the state (NULL is fine). */
void kl_ratchet_free(kl_ratchet_t *r)
{
    if (r == NULL)
        return;
    kl_skipped_free(&r->skipped);
    kl_secure_free(r);
}
