/* Noise Protocol Framework, revision 34: Noise_{NN,NK,KK,IK,XX}[psk0] with
 * 25519, ChaChaPoly and BLAKE2b. The handshake is a generic state machine
 * driven by token tables (e, s, ee, es, se, ss, psk), in the manner of the
 * spec's HandshakeState, so the same code path runs for every pattern and is
 * checked by every vector. All handshake secrets live in one heap block
 * that is wiped when the handshake fails, completes or is freed.
 *
 * Why plain malloc and not sodium_malloc: a handshake state lives for one
 * round trip, and the guarded allocation (mmap, two guard pages, mprotect,
 * mlock, and the reverse on free) was about 30 % of a relay's CPU per
 * connect. Every path that frees the block wipes it first (hs_release), so
 * what the guard pages bought was protection against overflows into or out
 * of a block that lives for milliseconds; long-lived secrets (ratchets,
 * sender keys) stay in guarded memory. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/err.h"
#include "kollega/noise.h"

#define DHLEN 32
#define HASHLEN 64
#define BLOCKLEN 128
#define NONCE_MAX UINT64_MAX /* reserved by the spec: never used */

enum token { T_END = 0, T_E, T_S, T_EE, T_ES, T_SE, T_SS, T_PSK };

#define MAX_MSGS 3
#define MAX_TOKENS 5

/* One handshake pattern. need_* say which static keys each role must bring
 * to kl_noise_hs_new: its own (s) and a pre-known remote one (rs, exactly the
 * keys of the other side's pre-message). */
typedef struct pattern_def {
    const char *name;
    uint8_t pre_i_s;  /* "-> s" pre-message */
    uint8_t pre_r_s;  /* "<- s" pre-message */
    uint8_t need_s_i;
    uint8_t need_s_r;
    uint8_t nmsgs;
    uint8_t msgs[MAX_MSGS][MAX_TOKENS];
} pattern_def_t;

static const pattern_def_t patterns[] = {
    [KL_NOISE_NN] = {"NN", 0, 0, 0, 0, 2, {{T_E}, {T_E, T_EE}}},
    [KL_NOISE_NK] = {"NK", 0, 1, 0, 1, 2, {{T_E, T_ES}, {T_E, T_EE}}},
    [KL_NOISE_KK] = {"KK", 1, 1, 1, 1, 2, {{T_E, T_ES, T_SS}, {T_E, T_EE, T_SE}}},
    [KL_NOISE_IK] = {"IK", 0, 1, 1, 1, 2, {{T_E, T_ES, T_S, T_SS}, {T_E, T_EE, T_SE}}},
    [KL_NOISE_XX] = {"XX", 0, 0, 1, 1, 3, {{T_E}, {T_E, T_EE, T_S, T_ES}, {T_S, T_SE}}},
};

struct kl_noise_hs {
    /* SymmetricState */
    uint8_t ck[HASHLEN];
    uint8_t h[HASHLEN];
    /* CipherState of the handshake */
    uint8_t k[KL_NOISE_KEY];
    uint64_t n;
    int has_k;
    /* Keys */
    uint8_t s[DHLEN], s_pub[DHLEN];
    uint8_t e[DHLEN], e_pub[DHLEN];
    uint8_t rs[DHLEN], re[DHLEN];
    uint8_t psk[32];
    int has_s, has_e, fixed_e, has_rs, has_re;
    /* Progress */
    const pattern_def_t *pat;
    int initiator;
    int psk0;
    int msg;    /* index of the next message */
    int dead;   /* a failure happened: every later call is KL_ESTATE */
    int split;  /* transport already derived */
};

/* ---- primitives ------------------------------------------------------- */

static void hash2(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                  uint8_t out[HASHLEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, HASHLEN);
    crypto_generichash_update(&st, a, alen);
    if (blen > 0)
        crypto_generichash_update(&st, b, blen);
    crypto_generichash_final(&st, out, HASHLEN);
    sodium_memzero(&st, sizeof st);
}

/* HMAC (RFC 2104) over BLAKE2b-512 with its 128-byte block, as the Noise
 * spec defines HMAC-HASH; not BLAKE2b's own keyed mode. The message is the
 * concatenation d1 || d2 so HKDF needs no temporary buffer. */
static void hmac_blake2b(const uint8_t *key, size_t keylen, const uint8_t *d1, size_t l1,
                         const uint8_t *d2, size_t l2, uint8_t out[HASHLEN])
{
    uint8_t kb[BLOCKLEN], pad[BLOCKLEN], inner[HASHLEN];
    crypto_generichash_state st;

    memset(kb, 0, sizeof kb);
    if (keylen > BLOCKLEN)
        hash2(key, keylen, NULL, 0, kb);
    else
        memcpy(kb, key, keylen);

    for (size_t i = 0; i < BLOCKLEN; i++)
        pad[i] = kb[i] ^ 0x36;
    crypto_generichash_init(&st, NULL, 0, HASHLEN);
    crypto_generichash_update(&st, pad, BLOCKLEN);
    if (l1 > 0)
        crypto_generichash_update(&st, d1, l1);
    if (l2 > 0)
        crypto_generichash_update(&st, d2, l2);
    crypto_generichash_final(&st, inner, HASHLEN);

    for (size_t i = 0; i < BLOCKLEN; i++)
        pad[i] = kb[i] ^ 0x5c;
    crypto_generichash_init(&st, NULL, 0, HASHLEN);
    crypto_generichash_update(&st, pad, BLOCKLEN);
    crypto_generichash_update(&st, inner, HASHLEN);
    crypto_generichash_final(&st, out, HASHLEN);

    sodium_memzero(kb, sizeof kb);
    sodium_memzero(pad, sizeof pad);
    sodium_memzero(inner, sizeof inner);
    sodium_memzero(&st, sizeof st);
}

/* Noise HKDF(chaining_key, ikm, num_outputs) with 2 or 3 outputs (o3 NULL
 * for two). Outputs may alias ck. */
static void noise_hkdf(const uint8_t ck[HASHLEN], const uint8_t *ikm, size_t ikmlen,
                       uint8_t o1[HASHLEN], uint8_t o2[HASHLEN], uint8_t *o3)
{
    uint8_t tk[HASHLEN], t1[HASHLEN], t2[HASHLEN];
    const uint8_t one = 1, two = 2, three = 3;

    hmac_blake2b(ck, HASHLEN, ikm, ikmlen, NULL, 0, tk);
    hmac_blake2b(tk, HASHLEN, &one, 1, NULL, 0, t1);
    hmac_blake2b(tk, HASHLEN, t1, HASHLEN, &two, 1, t2);
    if (o3 != NULL)
        hmac_blake2b(tk, HASHLEN, t2, HASHLEN, &three, 1, o3);
    memcpy(o1, t1, HASHLEN);
    memcpy(o2, t2, HASHLEN);
    sodium_memzero(tk, sizeof tk);
    sodium_memzero(t1, sizeof t1);
    sodium_memzero(t2, sizeof t2);
}

/* ChaChaPoly with the Noise nonce: 32 zero bits, then n little-endian. */
static void make_nonce(uint64_t n, uint8_t nonce[12])
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

static void cc_encrypt(const uint8_t k[KL_NOISE_KEY], uint64_t n, const uint8_t *ad,
                       size_t adlen, const uint8_t *pt, size_t len, uint8_t *out)
{
    uint8_t nonce[12];
    make_nonce(n, nonce);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, pt, len, ad, adlen, NULL, nonce, k);
}

static int cc_decrypt(const uint8_t k[KL_NOISE_KEY], uint64_t n, const uint8_t *ad,
                      size_t adlen, const uint8_t *ct, size_t len, uint8_t *out)
{
    uint8_t nonce[12];
    make_nonce(n, nonce);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, len, ad, adlen, nonce,
                                                  k) != 0)
        return KL_ECRYPTO;
    return 0;
}

/* ---- SymmetricState --------------------------------------------------- */

static void mix_hash(kl_noise_hs_t *hs, const uint8_t *data, size_t len)
{
    hash2(hs->h, HASHLEN, data, len, hs->h);
}

static void mix_key(kl_noise_hs_t *hs, const uint8_t *ikm, size_t len)
{
    uint8_t tk[HASHLEN];
    noise_hkdf(hs->ck, ikm, len, hs->ck, tk, NULL);
    memcpy(hs->k, tk, KL_NOISE_KEY); /* truncate HASHLEN 64 to 32 */
    hs->n = 0;
    hs->has_k = 1;
    sodium_memzero(tk, sizeof tk);
}

static void mix_key_and_hash(kl_noise_hs_t *hs, const uint8_t *ikm, size_t len)
{
    uint8_t th[HASHLEN], tk[HASHLEN];
    noise_hkdf(hs->ck, ikm, len, hs->ck, th, tk);
    mix_hash(hs, th, HASHLEN);
    memcpy(hs->k, tk, KL_NOISE_KEY);
    hs->n = 0;
    hs->has_k = 1;
    sodium_memzero(th, sizeof th);
    sodium_memzero(tk, sizeof tk);
}

/* EncryptAndHash: out gets len (+16 once a key exists) bytes; returns that
 * count. The handshake never gets near the reserved nonce (at most a handful
 * of messages). */
static size_t encrypt_and_hash(kl_noise_hs_t *hs, const uint8_t *pt, size_t len, uint8_t *out)
{
    size_t olen = len;
    if (hs->has_k) {
        cc_encrypt(hs->k, hs->n, hs->h, HASHLEN, pt, len, out);
        hs->n++;
        olen += KL_NOISE_TAG;
    } else if (len > 0 && out != pt) {
        memmove(out, pt, len);
    }
    mix_hash(hs, out, olen);
    return olen;
}

/* DecryptAndHash of len ciphertext bytes. The next h (over the ciphertext)
 * is computed before decrypting, so out may even alias ct. */
static int decrypt_and_hash(kl_noise_hs_t *hs, const uint8_t *ct, size_t len, uint8_t *out)
{
    uint8_t nh[HASHLEN];
    int r = 0;
    hash2(hs->h, HASHLEN, ct, len, nh);
    if (hs->has_k) {
        r = cc_decrypt(hs->k, hs->n, hs->h, HASHLEN, ct, len, out);
        if (r == 0)
            hs->n++;
    } else if (len > 0 && out != ct) {
        memmove(out, ct, len);
    }
    if (r == 0)
        memcpy(hs->h, nh, HASHLEN);
    sodium_memzero(nh, sizeof nh);
    return r;
}

/* ---- HandshakeState --------------------------------------------------- */

/* Kill the handshake: wipe every secret, keep only the "dead" flag. */
static void hs_kill(kl_noise_hs_t *hs)
{
    const pattern_def_t *pat = hs->pat;
    sodium_memzero(hs, sizeof *hs);
    hs->pat = pat;
    hs->dead = 1;
}

static int hs_finished(const kl_noise_hs_t *hs)
{
    return hs->msg >= hs->pat->nmsgs;
}

/* Message msg is written by the initiator when msg is even. */
static int hs_writes_next(const kl_noise_hs_t *hs)
{
    return (hs->msg % 2 == 0) == (hs->initiator != 0);
}

/* Bytes the next message needs besides the payload, and whether the payload
 * is encrypted then (adds the tag). Simulates when the key appears. */
static size_t msg_fixed_len(const kl_noise_hs_t *hs, size_t *payload_tag)
{
    const uint8_t *tok = hs->pat->msgs[hs->msg];
    int has_k = hs->has_k;
    size_t n = 0;

    if (hs->psk0 && hs->msg == 0)
        has_k = 1;
    for (int i = 0; i < MAX_TOKENS && tok[i] != T_END; i++) {
        switch (tok[i]) {
        case T_E:
            n += DHLEN;
            if (hs->psk0)
                has_k = 1;
            break;
        case T_S:
            n += DHLEN + (has_k ? KL_NOISE_TAG : 0);
            break;
        default:
            has_k = 1;
            break;
        }
    }
    *payload_tag = has_k ? KL_NOISE_TAG : 0;
    return n;
}

/* The DH for ee/es/se/ss from this side's point of view, mixed into the
 * key. Fails (KL_ECRYPTO) on a low-order remote point. */
static int hs_dh(kl_noise_hs_t *hs, int tok)
{
    const uint8_t *mine, *theirs;
    uint8_t out[DHLEN];
    int r;
    int i = hs->initiator;

    switch (tok) {
    case T_EE: mine = hs->e; theirs = hs->re; break;
    case T_ES: mine = i ? hs->e : hs->s; theirs = i ? hs->rs : hs->re; break;
    case T_SE: mine = i ? hs->s : hs->e; theirs = i ? hs->re : hs->rs; break;
    default: mine = hs->s; theirs = hs->rs; break;
    }
    r = crypto_scalarmult(out, mine, theirs) == 0 ? 0 : KL_ECRYPTO;
    if (r == 0)
        mix_key(hs, out, DHLEN);
    sodium_memzero(out, sizeof out);
    return r;
}

/* The tokens of the next message, after mixing in the PSK first when it
 * is psk0 and this is the first message. */
static const uint8_t *msg_tokens(kl_noise_hs_t *hs)
{
    if (hs->psk0 && hs->msg == 0)
        mix_key_and_hash(hs, hs->psk, sizeof hs->psk);
    return hs->pat->msgs[hs->msg];
}

/* The "e" token's public key, sent or received: into the hash, and with a
 * PSK into the key as well. */
static void mix_e(kl_noise_hs_t *hs, const uint8_t e_pub[DHLEN])
{
    mix_hash(hs, e_pub, DHLEN);
    if (hs->psk0)
        mix_key(hs, e_pub, DHLEN);
}

/* Wipe the whole state, then free it; NULL is fine. */
static void hs_release(kl_noise_hs_t *hs)
{
    if (hs == NULL)
        return;
    sodium_memzero(hs, sizeof *hs);
    free(hs);
}

int kl_noise_hs_new(kl_noise_hs_t **out, const kl_noise_config_t *cfg)
{
    kl_noise_hs_t *hs = NULL;
    char name[64];
    int r = KL_EINVAL;
    int need_s, need_rs;

    *out = NULL;
    if (sodium_init() < 0)
        return KL_ECRYPTO;
    if (cfg == NULL || (unsigned)cfg->pattern > KL_NOISE_XX)
        return KL_EINVAL;
    const pattern_def_t *pat = &patterns[cfg->pattern];
    need_s = cfg->initiator ? pat->need_s_i : pat->need_s_r;
    need_rs = cfg->initiator ? pat->pre_r_s : pat->pre_i_s;
    if ((need_s && cfg->s == NULL) || (need_rs && cfg->rs == NULL) ||
        (cfg->psk0 && cfg->psk == NULL) || (cfg->prologue == NULL && cfg->prologue_len > 0))
        return KL_EINVAL;

    hs = calloc(1, sizeof *hs);
    if (hs == NULL)
        return KL_ENOMEM;
    hs->pat = pat;
    hs->initiator = cfg->initiator != 0;
    hs->psk0 = cfg->psk0 != 0;

    if (need_s) {
        memcpy(hs->s, cfg->s, DHLEN);
        if (crypto_scalarmult_base(hs->s_pub, hs->s) != 0)
            goto out;
        hs->has_s = 1;
    }
    if (need_rs) {
        memcpy(hs->rs, cfg->rs, DHLEN);
        hs->has_rs = 1;
    }
    if (cfg->e != NULL) {
        memcpy(hs->e, cfg->e, DHLEN);
        hs->fixed_e = 1;
    }
    if (hs->psk0)
        memcpy(hs->psk, cfg->psk, sizeof hs->psk);

    /* InitializeSymmetric: every name we build is at most 64 bytes, so h is
     * the name zero-padded, never its hash. */
    memset(name, 0, sizeof name);
    int nl = snprintf(name, sizeof name, "Noise_%s%s_25519_ChaChaPoly_BLAKE2b", pat->name,
                      hs->psk0 ? "psk0" : "");
    if (nl < 0 || (size_t)nl > HASHLEN)
        goto out;
    memcpy(hs->h, name, HASHLEN);
    memcpy(hs->ck, hs->h, HASHLEN);
    mix_hash(hs, cfg->prologue, cfg->prologue_len);

    /* Pre-messages: the initiator's keys first, then the responder's. */
    if (pat->pre_i_s)
        mix_hash(hs, hs->initiator ? hs->s_pub : hs->rs, DHLEN);
    if (pat->pre_r_s)
        mix_hash(hs, hs->initiator ? hs->rs : hs->s_pub, DHLEN);

    *out = hs;
    hs = NULL;
    r = 0;
out:
    hs_release(hs);
    return r;
}

/* Write the next handshake message: tokens, then the (encrypted once a key
 * exists) payload. The exact length is known before anything changes, so a
 * too-small buffer is KL_ETOOBIG with the handshake intact. */
int kl_noise_hs_write(kl_noise_hs_t *hs, const uint8_t *payload, size_t plen, uint8_t *out,
                      size_t cap, size_t *outlen)
{
    size_t tag, need, off = 0;
    int r = 0;

    if (hs == NULL || hs->dead || hs_finished(hs) || !hs_writes_next(hs))
        return KL_ESTATE;
    if (payload == NULL && plen > 0)
        return KL_EINVAL;
    need = msg_fixed_len(hs, &tag);
    if (plen > KL_NOISE_MAX_MSG || need + tag + plen > KL_NOISE_MAX_MSG ||
        need + tag + plen > cap)
        return KL_ETOOBIG;

    const uint8_t *tok = msg_tokens(hs);
    for (int i = 0; i < MAX_TOKENS && tok[i] != T_END; i++) {
        switch (tok[i]) {
        case T_E:
            if (!hs->fixed_e)
                randombytes_buf(hs->e, DHLEN);
            if (crypto_scalarmult_base(hs->e_pub, hs->e) != 0) {
                r = KL_ECRYPTO;
                goto out;
            }
            hs->has_e = 1;
            memcpy(out + off, hs->e_pub, DHLEN);
            off += DHLEN;
            mix_e(hs, hs->e_pub);
            break;
        case T_S:
            off += encrypt_and_hash(hs, hs->s_pub, DHLEN, out + off);
            break;
        default:
            r = hs_dh(hs, tok[i]);
            if (r)
                goto out;
            break;
        }
    }
    off += encrypt_and_hash(hs, payload, plen, out + off);
    hs->msg++;
    *outlen = off;
out:
    if (r) {
        sodium_memzero(out, cap);
        hs_kill(hs);
    }
    return r;
}

/* Read the peer's next message. KL_EPROTO if it is shorter than the
 * pattern's tokens (+ tag) or longer than 65535, KL_ETOOBIG if its payload
 * does not fit cap, KL_ECRYPTO if authentication or a DH fails. Every
 * failure wipes and kills the handshake: a half-mixed symmetric state must
 * never be used again, and a peer gets no second try. */
int kl_noise_hs_read(kl_noise_hs_t *hs, const uint8_t *msg, size_t len, uint8_t *payload,
                     size_t cap, size_t *plen)
{
    size_t tag, need, off = 0, pl;
    int r = KL_EPROTO;

    if (hs == NULL || hs->dead || hs_finished(hs) || hs_writes_next(hs))
        return KL_ESTATE;
    need = msg_fixed_len(hs, &tag);
    if (msg == NULL || len < need + tag || len > KL_NOISE_MAX_MSG)
        goto out;
    pl = len - need - tag;
    if (pl > cap || (payload == NULL && pl > 0)) {
        r = KL_ETOOBIG;
        goto out;
    }

    const uint8_t *tok = msg_tokens(hs);
    for (int i = 0; i < MAX_TOKENS && tok[i] != T_END; i++) {
        switch (tok[i]) {
        case T_E:
            memcpy(hs->re, msg + off, DHLEN);
            off += DHLEN;
            hs->has_re = 1;
            mix_e(hs, hs->re);
            break;
        case T_S: {
            size_t sl = DHLEN + (hs->has_k ? KL_NOISE_TAG : 0);
            uint8_t rs[DHLEN];
            r = decrypt_and_hash(hs, msg + off, sl, rs);
            if (r == 0) {
                memcpy(hs->rs, rs, DHLEN);
                hs->has_rs = 1;
            }
            sodium_memzero(rs, sizeof rs);
            if (r)
                goto out;
            off += sl;
            break;
        }
        default:
            r = hs_dh(hs, tok[i]);
            if (r)
                goto out;
            break;
        }
    }
    r = decrypt_and_hash(hs, msg + off, len - off, payload);
    if (r)
        goto out;
    hs->msg++;
    *plen = pl;
out:
    if (r) {
        if (payload != NULL && cap > 0)
            sodium_memzero(payload, cap);
        hs_kill(hs);
    }
    return r;
}

int kl_noise_hs_done(const kl_noise_hs_t *hs)
{
    return hs != NULL && !hs->dead && hs_finished(hs);
}

int kl_noise_hs_my_turn(const kl_noise_hs_t *hs)
{
    return hs != NULL && !hs->dead && !hs_finished(hs) && hs_writes_next(hs);
}

int kl_noise_hs_remote_static(const kl_noise_hs_t *hs, uint8_t rs[32])
{
    if (hs == NULL || hs->dead || !hs->has_rs)
        return KL_ESTATE;
    memcpy(rs, hs->rs, DHLEN);
    return 0;
}

/* Split: two CipherStates from ck, the initiator sending with the first.
 * Allowed once; afterwards the chaining key and ephemeral keys are wiped, so
 * the handshake object can no longer derive anything. */
int kl_noise_hs_split(kl_noise_hs_t *hs, kl_noise_transport_t *t)
{
    uint8_t k1[HASHLEN], k2[HASHLEN];

    if (hs == NULL || hs->dead || !hs_finished(hs) || hs->split)
        return KL_ESTATE;
    noise_hkdf(hs->ck, NULL, 0, k1, k2, NULL);
    memset(t, 0, sizeof *t);
    memcpy(hs->initiator ? t->send.k : t->recv.k, k1, KL_NOISE_KEY);
    memcpy(hs->initiator ? t->recv.k : t->send.k, k2, KL_NOISE_KEY);
    memcpy(t->hh, hs->h, HASHLEN);
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    sodium_memzero(hs->ck, sizeof hs->ck);
    sodium_memzero(hs->k, sizeof hs->k);
    sodium_memzero(hs->e, sizeof hs->e);
    sodium_memzero(hs->s, sizeof hs->s);
    sodium_memzero(hs->psk, sizeof hs->psk);
    hs->split = 1;
    return 0;
}

void kl_noise_hs_free(kl_noise_hs_t *hs)
{
    hs_release(hs);
}

/* ---- transport -------------------------------------------------------- */

/* Encrypt one transport message with the next send nonce. KL_ETOOBIG if the
 * plaintext exceeds KL_NOISE_MAX_PT or cap; KL_ELIMIT once the nonce space is
 * exhausted (n = 2^64-1 is reserved), after which the session must end. */
int kl_noise_encrypt(kl_noise_transport_t *t, const uint8_t *pt, size_t len, uint8_t *out,
                     size_t cap, size_t *outlen)
{
    if (t == NULL || out == NULL || (pt == NULL && len > 0))
        return KL_EINVAL;
    if (len > KL_NOISE_MAX_PT || cap < len + KL_NOISE_TAG)
        return KL_ETOOBIG;
    if (t->send.n == NONCE_MAX)
        return KL_ELIMIT;
    cc_encrypt(t->send.k, t->send.n, NULL, 0, pt, len, out);
    t->send.n++;
    *outlen = len + KL_NOISE_TAG;
    return 0;
}

/* Decrypt one transport message with the next receive nonce. The nonce
 * advances only on success, so a forged or replayed message changes
 * nothing (the caller closes the connection anyway). */
int kl_noise_decrypt(kl_noise_transport_t *t, const uint8_t *ct, size_t len, uint8_t *out,
                     size_t cap, size_t *outlen)
{
    if (t == NULL || ct == NULL)
        return KL_EINVAL;
    if (len < KL_NOISE_TAG)
        return KL_EPROTO;
    if (len > KL_NOISE_MAX_MSG || cap < len - KL_NOISE_TAG)
        return KL_ETOOBIG;
    if (t->recv.n == NONCE_MAX)
        return KL_ELIMIT;
    if (cc_decrypt(t->recv.k, t->recv.n, NULL, 0, ct, len, out) != 0)
        return KL_ECRYPTO;
    t->recv.n++;
    *outlen = len - KL_NOISE_TAG;
    return 0;
}

void kl_noise_transport_wipe(kl_noise_transport_t *t)
{
    if (t != NULL)
        sodium_memzero(t, sizeof *t);
}
