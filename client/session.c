/* X3DH + Double Ratchet sessions and the e2e message layers. See session.h.
 *
 * Layers of one 1:1 message, inside out:
 *   Content{id, sent_at, text, to}  packed, padded to 256-byte blocks
 *   ratchet message (header || ciphertext)
 *   Envelope{prekey, X3DH parameters while the peer has not replied, ratchet}
 *   Sealed{sender_address, sender_identity_key, envelope}
 *   crypto_box_seal to the recipient's identity key -> send.body
 *
 * A session record (sealed in the store under the peer's address) is
 *   u8 version | u8 flags | peer_ik[32] | ek[32] | u32 spk_id | u8 has_opk |
 *   u32 opk_id | u32 len | serialized ratchet | u32 prev_len | previous record
 * (the session this one replaced, in the same layout with prev_len 0), and
 * flag PREKEY set while we initiated and have not heard back: until
 * then every envelope repeats the X3DH parameters so the peer can start
 * its side from whichever message arrives first. */
#include <stdlib.h>
#include <string.h>

#include "kollega/addr.h"
#include "kollega/buf.h"
#include "kollega/channel.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/ratchet.h"
#include "kollega/sealed.h"
#include "session.h"
#include "util.h"

#define SESS_VERSION 1
#define SESS_PREKEY 0x01
#define SESS_FIXED (2 + 32 + 32 + 4 + 1 + 4 + 4)
/* A serialized ratchet holds at most KL_RATCHET_MAX_STORED skipped keys;
 * anything far larger in the store is corruption, not a state. */
#define SESS_MAX (1u << 20)

typedef struct sess sess_t;
struct sess {
    uint8_t flags;
    uint8_t peer_ik[32];
    uint8_t ek[32];
    uint32_t spk_id;
    uint8_t has_opk;
    uint32_t opk_id;
    kl_ratchet_t *r;
    sess_t *prev;                /* the session this one replaced, or NULL */
};

static void sess_free(sess_t *s)
{
    if (s->prev) {
        sess_free(s->prev);
        free(s->prev);
    }
    kl_ratchet_free(s->r);
    kl_memzero(s, sizeof *s);
}

/* Parse one record; nested is 1 for the previous session inside a record,
 * which may not hold another. */
static int sess_parse(kl_reader_t *rd, sess_t *s, int nested)
{
    uint8_t ver = 0;
    uint32_t rlen = 0, plen = 0;
    const uint8_t *rp = NULL, *pp = NULL;
    if (kl_reader_u8(rd, &ver) || ver != SESS_VERSION || kl_reader_u8(rd, &s->flags) ||
        kl_reader_bytes(rd, s->peer_ik, 32) || kl_reader_bytes(rd, s->ek, 32) ||
        kl_reader_u32(rd, &s->spk_id) || kl_reader_u8(rd, &s->has_opk) ||
        kl_reader_u32(rd, &s->opk_id) || kl_reader_u32(rd, &rlen) ||
        kl_reader_view(rd, &rp, rlen) || kl_reader_u32(rd, &plen) ||
        kl_reader_view(rd, &pp, plen) || (nested && plen))
        return KL_EPROTO;
    int r = kl_ratchet_deserialize(&s->r, rp, rlen);
    if (r || plen == 0)
        return r;
    if ((s->prev = calloc(1, sizeof *s->prev)) == NULL)
        return KL_ENOMEM;
    kl_reader_t sub;
    kl_reader_init(&sub, pp, plen);
    if ((r = sess_parse(&sub, s->prev, 1)) == 0 && kl_reader_left(&sub) != 0)
        r = KL_EPROTO;
    return r;
}

static int sess_decode(const uint8_t *rec, size_t len, sess_t *s)
{
    kl_reader_t rd;
    memset(s, 0, sizeof *s);
    if (len > 2 * SESS_MAX)
        return KL_EPROTO;
    kl_reader_init(&rd, rec, len);
    int r = sess_parse(&rd, s, 0);
    if (r == 0 && kl_reader_left(&rd) != 0)
        r = KL_EPROTO;
    if (r)
        sess_free(s);
    return r;
}

/* Encode s and the session it replaced into one malloc'd record. */
static int sess_encode(const sess_t *s, uint8_t **rec, size_t *len)
{
    uint8_t *ser[2] = {NULL, NULL};
    size_t slen[2] = {0, 0};
    const sess_t *part[2] = {s, s->prev};
    kl_writer_t w;
    uint8_t *out = NULL;
    size_t n = 0;
    int r = 0;
    *rec = NULL;
    *len = 0;
    for (int i = 0; i < 2 && part[i] && r == 0; i++) {
        r = kl_ratchet_serialize(part[i]->r, &ser[i], &slen[i]);
        if (r == 0 && slen[i] > SESS_MAX)
            r = KL_ETOOBIG;
    }
    if (r)
        goto out;
    size_t inner = s->prev ? SESS_FIXED + slen[1] + 4 : 0;
    n = SESS_FIXED + slen[0] + 4 + inner;
    if ((out = malloc(n)) == NULL) {
        r = KL_ENOMEM;
        goto out;
    }
    kl_writer_init(&w, out, n);
    for (int i = 0; i < 2 && part[i] && r == 0; i++) {
        const sess_t *p = part[i];
        if (kl_writer_u8(&w, SESS_VERSION) || kl_writer_u8(&w, p->flags) ||
            kl_writer_bytes(&w, p->peer_ik, 32) || kl_writer_bytes(&w, p->ek, 32) ||
            kl_writer_u32(&w, p->spk_id) || kl_writer_u8(&w, p->has_opk) ||
            kl_writer_u32(&w, p->opk_id) || kl_writer_u32(&w, (uint32_t)slen[i]) ||
            kl_writer_bytes(&w, ser[i], slen[i]) ||
            kl_writer_u32(&w, (uint32_t)(i == 0 ? inner : 0)))
            r = KL_EPROTO;
    }
    if (r == 0 && w.off != n)
        r = KL_EPROTO;
out:
    for (int i = 0; i < 2; i++)
        kl_free_wipe(ser[i], slen[i]);
    if (r) {
        kl_free_wipe(out, n);
        return r;
    }
    *rec = out;
    *len = n;
    return 0;
}

/* Load the session with peer if its peer key is peer_ik. KL_ENOTFOUND if
 * there is none, only one for another key, or one that no longer opens or
 * parses: a damaged session is replaced by a new X3DH session rather than
 * blocking the conversation for good. */
static int sess_load(kl_store_t *st, const char *peer, const uint8_t peer_ik[32], sess_t *s)
{
    uint8_t *rec = NULL;
    size_t len = 0;
    memset(s, 0, sizeof *s);
    int r = kl_store_session_get(st, peer, &rec, &len);
    if (r == KL_ECRYPTO || r == KL_EPROTO)
        return KL_ENOTFOUND;
    if (r)
        return r;
    r = sess_decode(rec, len, s);
    kl_free_wipe(rec, len);
    if (r == KL_EPROTO)
        r = KL_ENOTFOUND;
    if (r == 0 && kl_memcmp(s->peer_ik, peer_ik, 32) != 0) {
        sess_free(s);
        r = KL_ENOTFOUND;
    }
    return r;
}

int kl_session_has(kl_store_t *st, const char *peer, const uint8_t peer_ik[32], int *has)
{
    sess_t s;
    *has = 0;
    int r = sess_load(st, peer, peer_ik, &s);
    if (r == 0) {
        *has = 1;
        sess_free(&s);
    }
    return r == KL_ENOTFOUND ? 0 : r;
}

int kl_content_pack(const kl_content_t *c, uint8_t **out, size_t *cap, size_t *outlen)
{
    Kollega__E2e__V1__Content m = KOLLEGA__E2E__V1__CONTENT__INIT;
    Kollega__E2e__V1__SenderKeyDistribution skd = KOLLEGA__E2E__V1__SENDER_KEY_DISTRIBUTION__INIT;
    Kollega__E2e__V1__ChannelKey ck = KOLLEGA__E2E__V1__CHANNEL_KEY__INIT;
    *out = NULL;
    if (c->text_len > KL_TEXT_MAX)
        return KL_ETOOBIG;
    char *t = malloc(c->text_len + 1);
    if (t == NULL)
        return KL_ENOMEM;
    if (c->text_len)
        memcpy(t, c->text, c->text_len);
    t[c->text_len] = '\0';
    m.id.data = (uint8_t *)c->id;
    m.id.len = KL_MSG_ID;
    m.sent_at = c->sent_at;
    m.text = t;
    m.to = (char *)c->to;
    if (c->has_dist) {
        skd.group = (char *)c->dist_group;
        skd.epoch = c->dist_epoch;
        skd.dist.data = (uint8_t *)c->dist;
        skd.dist.len = KL_SENDERKEY_DIST;
        m.sender_key = &skd;
    }
    if (c->has_ckey) {
        ck.channel = (char *)c->ckey_channel;
        ck.epoch = c->ckey_epoch;
        ck.key.data = (uint8_t *)c->ckey;
        ck.key.len = 32;
        m.channel_key = &ck;
    }
    if (c->has_token) {
        m.delivery_token.data = (uint8_t *)c->token;
        m.delivery_token.len = 32;
    }
    if (c->group_index) {
        m.group_index = c->group_index;
        m.group_head.data = (uint8_t *)c->group_head;
        m.group_head.len = 32;
    }
    size_t n = kollega__e2e__v1__content__get_packed_size(&m);
    size_t total = n + KL_PAD_BLOCK;
    uint8_t *buf = malloc(total);
    int r = KL_ENOMEM;
    if (buf) {
        kollega__e2e__v1__content__pack(&m, buf);
        r = kl_pad(buf, n, total, outlen);
        if (r)
            kl_free_wipe(buf, total);
        else {
            *out = buf;
            *cap = total;
        }
    }
    kl_free_wipe(t, c->text_len + 1);
    return r;
}

void kl_content_free(kl_content_t *c)
{
    if (c->text)
        kl_free_wipe(c->text, c->text_len + 1);
    kl_memzero(c, sizeof *c);
}

int kl_content_unpack(const uint8_t *pt, size_t len, kl_content_t *c)
{
    size_t ulen = 0;
    kl_addr_t ga;
    memset(c, 0, sizeof *c);
    if (kl_unpad(pt, len, &ulen) != 0)
        return KL_EPROTO;
    Kollega__E2e__V1__Content *m = kollega__e2e__v1__content__unpack(NULL, ulen, pt);
    if (m == NULL)
        return KL_EPROTO;
    int r = KL_EPROTO;
    size_t tlen = m->text ? strlen(m->text) : 0;
    size_t tolen = m->to ? strlen(m->to) : 0;
    if (m->id.len != KL_MSG_ID || tolen == 0 || tolen > KL_ADDR_MAX || tlen > KL_TEXT_MAX)
        goto out;
    if (m->sender_key) {
        const Kollega__E2e__V1__SenderKeyDistribution *d = m->sender_key;
        size_t glen = d->group ? strlen(d->group) : 0;
        if (glen == 0 || glen > KL_ADDR_MAX || kl_addr_parse(d->group, &ga) != 0 ||
            !ga.is_group || d->dist.len != KL_SENDERKEY_DIST)
            goto out;
        c->has_dist = 1;
        memcpy(c->dist_group, d->group, glen);
        c->dist_epoch = d->epoch;
        memcpy(c->dist, d->dist.data, KL_SENDERKEY_DIST);
    }
    if (m->channel_key) {
        const Kollega__E2e__V1__ChannelKey *k = m->channel_key;
        size_t clen = k->channel ? strlen(k->channel) : 0;
        if (clen == 0 || clen > KL_ADDR_MAX || !kl_channel_addr_valid(k->channel) ||
            k->epoch == 0 || k->key.len != 32)
            goto out;
        c->has_ckey = 1;
        memcpy(c->ckey_channel, k->channel, clen);
        c->ckey_epoch = k->epoch;
        memcpy(c->ckey, k->key.data, 32);
    }
    if (m->group_index && m->group_head.len != 32)
        goto out;
    if (m->delivery_token.len != 0 && m->delivery_token.len != 32)
        goto out;
    if (m->delivery_token.len == 32) {
        c->has_token = 1;
        memcpy(c->token, m->delivery_token.data, 32);
    }
    if (m->group_index) {
        c->group_index = m->group_index;
        memcpy(c->group_head, m->group_head.data, 32);
    }
    memcpy(c->id, m->id.data, KL_MSG_ID);
    memcpy(c->to, m->to, tolen);
    c->sent_at = m->sent_at;
    /* Text from a peer is shown to the user and written as JSON: make it
     * well-formed UTF-8 whatever the sender put there. */
    r = kl_utf8_sanitize(m->text ? m->text : "", tlen, &c->text, &c->text_len);
out:
    if (m->text)
        kl_memzero(m->text, tlen);
    if (m->sender_key && m->sender_key->dist.data)
        kl_memzero(m->sender_key->dist.data, m->sender_key->dist.len);
    if (m->channel_key && m->channel_key->key.data)
        kl_memzero(m->channel_key->key.data, m->channel_key->key.len);
    if (m->delivery_token.data)
        kl_memzero(m->delivery_token.data, m->delivery_token.len);
    kollega__e2e__v1__content__free_unpacked(m, NULL);
    if (r)
        kl_memzero(c, sizeof *c);
    return r;
}

/* Wrap a ratchet message into Envelope and Sealed and seal it to peer_ik. */
static int seal_envelope(const kl_identity_t *me, const sess_t *s, const uint8_t peer_ik[32],
                         const uint8_t *rmsg, size_t rlen, uint8_t **body, size_t *body_len)
{
    Kollega__E2e__V1__Envelope env = KOLLEGA__E2E__V1__ENVELOPE__INIT;
    Kollega__E2e__V1__Sealed sealed = KOLLEGA__E2E__V1__SEALED__INIT;
    env.ratchet.data = (uint8_t *)rmsg;
    env.ratchet.len = rlen;
    if (s->flags & SESS_PREKEY) {
        env.prekey = 1;
        env.ephemeral_key.data = (uint8_t *)s->ek;
        env.ephemeral_key.len = 32;
        env.spk_id = s->spk_id;
        env.has_opk = s->has_opk;
        env.opk_id = s->opk_id;
    }
    sealed.sender_address = (char *)me->address;
    sealed.sender_identity_key.data = (uint8_t *)me->pk;
    sealed.sender_identity_key.len = 32;
    sealed.envelope = &env;
    size_t n = kollega__e2e__v1__sealed__get_packed_size(&sealed);
    if (n + KL_SEAL_OVERHEAD > KL_BODY_MAX)
        return KL_ETOOBIG;
    uint8_t *pt = malloc(n);
    uint8_t *out = malloc(n + KL_SEAL_OVERHEAD);
    int r = KL_ENOMEM;
    if (pt && out) {
        kollega__e2e__v1__sealed__pack(&sealed, pt);
        r = kl_sealed_seal(peer_ik, pt, n, out, n + KL_SEAL_OVERHEAD, body_len);
    }
    free(pt);
    if (r)
        free(out);
    else
        *body = out;
    return r;
}

int kl_session_encrypt(kl_store_t *st, const kl_identity_t *me, const char *peer,
                       const uint8_t peer_ik[32], const kl_prekey_bundle_t *bundle,
                       const uint8_t id[KL_MSG_ID], uint64_t sent_at, const char *text,
                       size_t text_len, uint8_t **body, size_t *body_len)
{
    kl_content_t c;
    memset(&c, 0, sizeof c);
    if (strlen(peer) > KL_ADDR_MAX)
        return KL_EINVAL;
    memcpy(c.id, id, KL_MSG_ID);
    c.sent_at = sent_at;
    c.text = (char *)text;
    c.text_len = text_len;
    memcpy(c.to, peer, strlen(peer) + 1);
    return kl_session_encrypt_content(st, me, peer, peer_ik, bundle, &c, body, body_len);
}

int kl_session_encrypt_content(kl_store_t *st, const kl_identity_t *me, const char *peer,
                               const uint8_t peer_ik[32], const kl_prekey_bundle_t *bundle,
                               const kl_content_t *c, uint8_t **body, size_t *body_len)
{
    sess_t s;
    kl_content_t own;
    uint8_t sk[32], ad[KL_X3DH_AD];
    uint8_t *pt = NULL, *rmsg = NULL, *rec = NULL;
    size_t ptcap = 0, ptlen = 0, rlen = 0, reclen = 0, rcap = 0;
    int r;

    *body = NULL;
    *body_len = 0;
    memset(&s, 0, sizeof s);
    memset(&own, 0, sizeof own);
    if (c->text_len > KL_TEXT_MAX)
        return KL_ETOOBIG;
    if ((r = kl_store_begin(st)))
        return r;
    r = sess_load(st, peer, peer_ik, &s);
    if (r == KL_ENOTFOUND) {
        if (bundle == NULL)
            goto out;
        if (kl_memcmp(bundle->identity_key, peer_ik, 32) != 0) {
            r = KL_EKEYCHANGED;
            goto out;
        }
        if ((r = kl_x3dh_initiate(me->sk, me->pk, bundle, sk, s.ek, ad)) ||
            (r = kl_ratchet_init_initiator(&s.r, sk, bundle->spk, ad)))
            goto out;
        s.flags = SESS_PREKEY;
        memcpy(s.peer_ik, peer_ik, 32);
        s.spk_id = bundle->spk_id;
        s.has_opk = bundle->has_opk ? 1 : 0;
        s.opk_id = bundle->has_opk ? bundle->opk_id : 0;
    } else if (r) {
        goto out;
    }
    if (!c->has_token) {
        /* Our delivery token rides along with everything we send 1:1. */
        own = *c;
        int tr = kl_store_secret_get(st, KL_DELIVERY_TOKEN_SECRET, own.token, 32);
        if (tr && tr != KL_ENOTFOUND) {
            r = tr;
            goto out;
        }
        own.has_token = tr == 0;
        c = &own;
    }
    if ((r = kl_content_pack(c, &pt, &ptcap, &ptlen)))
        goto out;
    rcap = ptlen + KL_RATCHET_OVERHEAD;
    if ((rmsg = malloc(rcap)) == NULL) {
        r = KL_ENOMEM;
        goto out;
    }
    if ((r = kl_ratchet_encrypt(s.r, pt, ptlen, rmsg, rcap, &rlen)) ||
        (r = seal_envelope(me, &s, peer_ik, rmsg, rlen, body, body_len)) ||
        (r = sess_encode(&s, &rec, &reclen)) ||
        (r = kl_store_session_put(st, peer, rec, reclen)))
        goto out;
    r = kl_store_commit(st);
out:
    if (r) {
        kl_store_rollback(st);
        free(*body);
        *body = NULL;
        *body_len = 0;
    }
    kl_memzero(&own, sizeof own);
    kl_memzero(sk, sizeof sk);
    kl_free_wipe(pt, ptcap);
    free(rmsg);
    kl_free_wipe(rec, reclen);
    sess_free(&s);
    return r;
}

int kl_session_open(const kl_identity_t *me, const uint8_t *body, size_t len, kl_inbound_t *in)
{
    kl_addr_t a;
    char canon[KL_ADDR_MAX + 1];
    memset(in, 0, sizeof *in);
    if (len <= KL_SEAL_OVERHEAD || len > KL_BODY_MAX + 1024)
        return KL_EPROTO;
    size_t cap = len - KL_SEAL_OVERHEAD, n = 0;
    uint8_t *pt = malloc(cap);
    if (pt == NULL)
        return KL_ENOMEM;
    int r = kl_sealed_open(me->pk, me->sk, body, len, pt, cap, &n);
    if (r == 0) {
        in->sealed = kollega__e2e__v1__sealed__unpack(NULL, n, pt);
        if (in->sealed == NULL)
            r = KL_EPROTO;
    }
    kl_free_wipe(pt, cap);
    if (r)
        return r;
    Kollega__E2e__V1__Sealed *s = in->sealed;
    /* The claimed sender must be a canonical user address with a 32-byte
     * key; who it really is gets proven by the ratchet decryption. */
    if (s->sender_address == NULL || kl_addr_parse(s->sender_address, &a) != 0 || a.is_group ||
        kl_addr_format(&a, canon, sizeof canon) != 0 || strcmp(canon, s->sender_address) != 0 ||
        s->sender_identity_key.len != 32 || s->envelope == NULL) {
        kl_inbound_free(in);
        return KL_EPROTO;
    }
    memcpy(in->sender, canon, strlen(canon) + 1);
    memcpy(in->sender_ik, s->sender_identity_key.data, 32);
    return 0;
}

void kl_inbound_free(kl_inbound_t *in)
{
    if (in->sealed)
        kollega__e2e__v1__sealed__free_unpacked(in->sealed, NULL);
    memset(in, 0, sizeof *in);
}

/* Start the responder side of X3DH from a prekey envelope and decrypt. */
static int respond(kl_store_t *st, const kl_identity_t *me, const kl_inbound_t *in,
                   const Kollega__E2e__V1__Envelope *env, sess_t *s, uint8_t *pt, size_t cap,
                   size_t *ptlen)
{
    uint8_t spk_pub[32], spk_priv[32], opk_pub[32], opk_priv[32], sk[32], ad[KL_X3DH_AD];
    int r = KL_EPROTO;
    memset(s, 0, sizeof *s);
    if (env->ephemeral_key.len != 32)
        goto out;
    if ((r = kl_store_prekey_get(st, env->spk_id, KL_PREKEY_SPK, spk_pub, spk_priv)))
        goto out;
    if (env->has_opk &&
        (r = kl_store_prekey_get(st, env->opk_id, KL_PREKEY_OPK, opk_pub, opk_priv)))
        goto out;
    if ((r = kl_x3dh_respond(me->sk, me->pk, spk_priv, env->has_opk ? opk_priv : NULL,
                             in->sender_ik, env->ephemeral_key.data, sk, ad)) ||
        (r = kl_ratchet_init_responder(&s->r, sk, spk_priv, spk_pub, ad)) ||
        (r = kl_ratchet_decrypt(s->r, env->ratchet.data, env->ratchet.len, pt, cap, ptlen)))
        goto out;
    memcpy(s->peer_ik, in->sender_ik, 32);
out:
    if (r)
        sess_free(s);
    kl_memzero(spk_priv, sizeof spk_priv);
    kl_memzero(opk_priv, sizeof opk_priv);
    kl_memzero(sk, sizeof sk);
    return r;
}

/* Move the current session (without its own predecessor) into *slot. */
static int keep_as_prev(sess_t *cur, sess_t **slot)
{
    sess_t *p = malloc(sizeof *p);
    if (p == NULL)
        return KL_ENOMEM;
    if (cur->prev) {
        sess_free(cur->prev);
        free(cur->prev);
    }
    *p = *cur;
    p->prev = NULL;
    memset(cur, 0, sizeof *cur);
    *slot = p;
    return 0;
}

/* Decryption tries, in order: the current session; the session it
 * replaced; and for a prekey envelope a new responder session. Keeping the
 * replaced session resolves simultaneous initiation: when both sides
 * started a session at once, each side's "current" is the other's, and
 * the first message that decrypts with the kept one makes it current
 * again, so the two converge on one session. A failed ratchet decryption
 * leaves a state untouched, so trying costs nothing. */
int kl_session_decrypt(kl_store_t *st, const kl_identity_t *me, const kl_inbound_t *in,
                       kl_decrypted_t *out)
{
    const Kollega__E2e__V1__Envelope *env = in->sealed->envelope;
    sess_t s, fresh;
    uint8_t *pt = NULL;
    size_t cap = env->ratchet.len, ptlen = 0;
    int r, have;

    memset(out, 0, sizeof *out);
    memset(&s, 0, sizeof s);
    memset(&fresh, 0, sizeof fresh);
    if (cap <= KL_RATCHET_OVERHEAD || cap > KL_BODY_MAX)
        return KL_EPROTO;
    if ((pt = malloc(cap)) == NULL)
        return KL_ENOMEM;
    r = sess_load(st, in->sender, in->sender_ik, &s);
    if (r && r != KL_ENOTFOUND)
        goto out;
    have = r == 0;
    r = KL_ENOTFOUND;
    if (have) {
        r = kl_ratchet_decrypt(s.r, env->ratchet.data, env->ratchet.len, pt, cap, &ptlen);
        if (r && s.prev &&
            kl_ratchet_decrypt(s.prev->r, env->ratchet.data, env->ratchet.len, pt, cap,
                               &ptlen) == 0) {
            /* The kept session is the live one: swap the two. */
            sess_t *old = s.prev;
            s.prev = NULL;
            if ((r = keep_as_prev(&s, &old->prev)) != 0) {
                sess_free(old);
                free(old);
                goto out;
            }
            s = *old;
            free(old);
        }
        if (r == 0)
            s.flags &= (uint8_t)~SESS_PREKEY; /* the peer has our session now */
    }
    if (r && env->prekey && env->ephemeral_key.len == 32) {
        int used = 0;
        if ((r = kl_store_x3dh_used_has(st, env->spk_id, env->ephemeral_key.data, &used)))
            goto out;
        r = used ? KL_EREPLAY : KL_ENOTFOUND;
    }
    if (r == KL_ENOTFOUND && env->prekey) {
        /* No usable session, or both sides started one at once: this
         * message starts a new session, which becomes current. */
        r = respond(st, me, in, env, &fresh, pt, cap, &ptlen);
        if (r == 0) {
            if (have && (r = keep_as_prev(&s, &fresh.prev)))
                goto out;
            sess_free(&s);
            s = fresh;
            memset(&fresh, 0, sizeof fresh);
            out->new_session = 1;
            out->used_opk = env->has_opk ? 1 : 0;
            out->opk_id = env->opk_id;
            out->start_spk_id = env->spk_id;
            memcpy(out->start_ek, env->ephemeral_key.data, 32);
        }
    }
    if (r)
        goto out;
    if ((r = kl_content_unpack(pt, ptlen, &out->content)) ||
        (r = sess_encode(&s, &out->session, &out->session_len)))
        goto out;
out:
    if (r)
        kl_decrypted_free(out);
    kl_free_wipe(pt, cap);
    sess_free(&s);
    sess_free(&fresh);
    return r;
}

int kl_session_apply(kl_store_t *st, const char *peer, const kl_decrypted_t *d)
{
    int r = kl_store_session_put(st, peer, d->session, d->session_len);
    if (r == 0 && d->used_opk)
        r = kl_store_prekey_delete(st, d->opk_id, KL_PREKEY_OPK);
    if (r == 0 && d->new_session)
        r = kl_store_x3dh_used_add(st, d->start_spk_id, d->start_ek, kl_now_ms());
    return r;
}

void kl_decrypted_free(kl_decrypted_t *d)
{
    kl_content_free(&d->content);
    kl_free_wipe(d->session, d->session_len);
    memset(d, 0, sizeof *d);
}
