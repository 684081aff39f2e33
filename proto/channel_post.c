/* Broadcast channels: building and verifying posts, and sealing the text
 * of a members-only channel's post under its channel key (contract in
 * include/kollega/channel.h). Pure: no I/O, no state but the validated
 * channel passed in. */
#include <stdlib.h>
#include <string.h>

#include "channel.pb-c.h"
#include "channel_int.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/sealed.h"
#include "pbcanon.h"

/* The largest AD: context, channel address, epoch, id. */
#define AD_MAX (sizeof KL_CHANNEL_KEY_CONTEXT - 1 + KL_CH_ADDR_CAP + 8 + 16)

static size_t make_ad(const char *channel, uint64_t epoch, const uint8_t id[16], uint8_t *ad)
{
    size_t n = sizeof KL_CHANNEL_KEY_CONTEXT - 1, cl = strlen(channel);
    memcpy(ad, KL_CHANNEL_KEY_CONTEXT, n);
    memcpy(ad + n, channel, cl);
    n += cl;
    for (int i = 7; i >= 0; i--)
        ad[n++] = (uint8_t)(epoch >> (8 * i));
    memcpy(ad + n, id, 16);
    return n + 16;
}

static int seal_args_ok(const uint8_t *key, const char *channel, const uint8_t *id,
                        const uint8_t *buf, uint8_t **out, size_t *outlen)
{
    return key != NULL && channel != NULL && strnlen(channel, KL_CH_ADDR_CAP) < KL_CH_ADDR_CAP &&
           id != NULL && buf != NULL && out != NULL && outlen != NULL;
}

int kl_channel_seal(const uint8_t key[KL_CHANNEL_KEY], const char *channel, uint64_t epoch,
                    const uint8_t id[16], const uint8_t *pt, size_t len, uint8_t **out,
                    size_t *outlen)
{
    uint8_t ad[AD_MAX];
    size_t padded = 0;
    if (out != NULL)
        *out = NULL;
    if (!seal_args_ok(key, channel, id, pt, out, outlen))
        return KL_EINVAL;
    /* Padded like every other end-to-end plaintext (kl_pad), so the relay
     * learns a post's length only to KL_PAD_BLOCK. */
    if (len > KL_CHANNEL_MAX_POST - KL_PAD_BLOCK - KL_CHANNEL_SEAL_OVERHEAD)
        return KL_ETOOBIG;
    size_t adlen = make_ad(channel, epoch, id, ad);
    size_t cap = len + KL_PAD_BLOCK + KL_CHANNEL_SEAL_OVERHEAD;
    uint8_t *b = malloc(cap);
    if (b == NULL)
        return KL_ENOMEM;
    uint8_t *body = b + KL_AEAD_NONCE;
    memcpy(body, pt, len);
    int r = kl_pad(body, len, len + KL_PAD_BLOCK, &padded);
    if (r == 0) {
        kl_random(b, KL_AEAD_NONCE);
        r = kl_aead_seal(key, b, ad, adlen, body, padded, body);
    }
    if (r) {
        kl_free_wipe(b, cap);
        return r;
    }
    *out = b;
    *outlen = padded + KL_CHANNEL_SEAL_OVERHEAD;
    return 0;
}

int kl_channel_unseal(const uint8_t key[KL_CHANNEL_KEY], const char *channel, uint64_t epoch,
                      const uint8_t id[16], const uint8_t *ct, size_t len, uint8_t **out,
                      size_t *outlen)
{
    uint8_t ad[AD_MAX];
    if (out != NULL)
        *out = NULL;
    if (!seal_args_ok(key, channel, id, ct, out, outlen))
        return KL_EINVAL;
    if (len < KL_CHANNEL_SEAL_OVERHEAD)
        return KL_EPROTO;
    if (len > KL_CHANNEL_MAX_POST)
        return KL_ETOOBIG;
    size_t adlen = make_ad(channel, epoch, id, ad);
    size_t n = len - KL_CHANNEL_SEAL_OVERHEAD, tlen = 0;
    uint8_t *b = malloc(n + 1), *t = NULL;
    if (b == NULL)
        return KL_ENOMEM;
    int r = kl_aead_open(key, ct, ad, adlen, ct + KL_AEAD_NONCE, len - KL_AEAD_NONCE, b);
    if (r == 0)
        r = kl_unpad(b, n, &tlen);
    if (r == 0 && (t = malloc(tlen + 1)) == NULL)
        r = KL_ENOMEM;
    if (r == 0) {
        memcpy(t, b, tlen);
        t[tlen] = 0;
        *out = t;
        *outlen = tlen;
    }
    kl_free_wipe(b, n + 1);
    return r;
}

/* Fill and sign a Post: text, or ciphertext + epoch. */
static int build(const kl_channel_t *c, const uint8_t sk[64], const uint8_t pk[32],
                 const char *address, const uint8_t id[16], uint64_t ts, const char *text,
                 const uint8_t *ct, size_t ctlen, uint64_t epoch, uint8_t **out, size_t *outlen)
{
    Kollega__Channel__V1__Post post = KOLLEGA__CHANNEL__V1__POST__INIT;
    uint8_t key[32], pid[16];
    size_t i = kl_ch_find_pub(c, pk);
    if (i == SIZE_MAX || strcmp(c->pub[i].address, address) != 0)
        return KL_ESTATE;
    memcpy(key, pk, 32);
    memcpy(pid, id, 16);
    post.channel = (char *)c->address;
    post.publisher.data = key;
    post.publisher.len = 32;
    post.publisher_address = (char *)address;
    post.id.data = pid;
    post.id.len = 16;
    post.ts = ts;
    post.text = (char *)text;
    post.ciphertext.data = (uint8_t *)ct;
    post.ciphertext.len = ctlen;
    post.epoch = epoch;
    return kl_pb_sign_wrap(&post.base, KL_CHANNEL_POST_CONTEXT, KL_CHANNEL_MAX_POST, sk, out,
                           outlen);
}

int kl_channel_post_build(const kl_channel_t *c, const uint8_t sk[64], const uint8_t pk[32],
                          const char *address, const uint8_t id[16], uint64_t ts,
                          const char *text, uint8_t **out, size_t *outlen)
{
    if (out != NULL)
        *out = NULL;
    if (c == NULL || sk == NULL || pk == NULL || id == NULL || text == NULL || out == NULL ||
        outlen == NULL || !kl_ch_user_addr_ok(address))
        return KL_EINVAL;
    if (c->members_only)
        return KL_ESTATE;
    return build(c, sk, pk, address, id, ts, text, NULL, 0, 0, out, outlen);
}

int kl_channel_post_build_sealed(const kl_channel_t *c, const uint8_t sk[64],
                                 const uint8_t pk[32], const char *address,
                                 const uint8_t id[16], uint64_t ts,
                                 const uint8_t key[KL_CHANNEL_KEY], uint64_t epoch,
                                 const char *text, uint8_t **out, size_t *outlen)
{
    uint8_t *ct = NULL;
    size_t ctlen = 0;
    if (out != NULL)
        *out = NULL;
    if (c == NULL || sk == NULL || pk == NULL || id == NULL || text == NULL || key == NULL ||
        out == NULL || outlen == NULL || !kl_ch_user_addr_ok(address))
        return KL_EINVAL;
    if (!c->members_only || epoch == 0 || epoch > c->epoch)
        return KL_ESTATE;
    int r = kl_channel_seal(key, c->address, epoch, id, (const uint8_t *)text, strlen(text),
                            &ct, &ctlen);
    if (r == 0)
        r = build(c, sk, pk, address, id, ts, "", ct, ctlen, epoch, out, outlen);
    free(ct);
    return r;
}

/* The post's own fields against the channel's kind: text in a public
 * channel, ciphertext of a known epoch in a members-only one. */
static kl_channel_verr_t kind_rules(const kl_channel_t *c, const Kollega__Channel__V1__Post *p)
{
    if (!c->members_only)
        return p->ciphertext.len != 0 || p->epoch != 0 ? KL_CV_PUBLIC : KL_CV_OK;
    if (p->text[0] != '\0' || p->ciphertext.len < KL_CHANNEL_SEAL_OVERHEAD)
        return KL_CV_MALFORMED;
    return p->epoch == 0 || p->epoch > c->epoch ? KL_CV_EPOCH : KL_CV_OK;
}

/* Copy the verified fields into out. KL_ENOMEM, or 0. */
static int fill(const Kollega__Channel__V1__Post *p, kl_channel_post_t *out)
{
    out->text_len = strlen(p->text);
    out->text = malloc(out->text_len + 1);
    if (out->text == NULL)
        return KL_ENOMEM;
    memcpy(out->text, p->text, out->text_len + 1);
    if (p->ciphertext.len > 0) {
        out->ciphertext = malloc(p->ciphertext.len);
        if (out->ciphertext == NULL)
            return KL_ENOMEM;
        memcpy(out->ciphertext, p->ciphertext.data, p->ciphertext.len);
        out->ciphertext_len = p->ciphertext.len;
    }
    out->epoch = p->epoch;
    strcpy(out->publisher_address, p->publisher_address); /* length checked */
    memcpy(out->id, p->id.data, 16);
    out->ts = p->ts;
    return 0;
}

int kl_channel_post_open(const kl_channel_t *c, const uint8_t *in, size_t len,
                         kl_channel_post_t *out, kl_channel_verr_t *why)
{
    kl_pb_signed_t sp;
    const Kollega__Channel__V1__Post *p;
    kl_channel_verr_t w = KL_CV_MALFORMED;
    size_t i;
    int r = 0;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (c == NULL || out == NULL) {
        if (why != NULL)
            *why = w;
        return KL_EINVAL;
    }
    p = kl_pb_unpack_signed(&sp, &kollega__channel__v1__post__descriptor, in, len,
                            KL_CHANNEL_MAX_POST);
    if (p == NULL || !kl_pb_key32(&p->publisher, out->publisher) || p->id.len != 16 ||
        !kl_ch_user_addr_ok(p->publisher_address) || p->text == NULL)
        goto out;
    w = KL_CV_WRONG_CHANNEL;
    if (p->channel == NULL || strcmp(p->channel, c->address) != 0)
        goto out;
    w = kind_rules(c, p);
    if (w != KL_CV_OK)
        goto out;
    w = KL_CV_NOT_PUBLISHER;
    i = kl_ch_find_pub(c, out->publisher);
    if (i == SIZE_MAX || strcmp(c->pub[i].address, p->publisher_address) != 0)
        goto out;
    w = KL_CV_SIGNATURE;
    if (kl_pb_signed_verify(&sp, out->publisher, KL_CHANNEL_POST_CONTEXT, KL_CHANNEL_MAX_POST) != 0)
        goto out;
    w = KL_CV_OK;
    r = fill(p, out);
out:
    kl_pb_signed_free(&sp);
    if (w != KL_CV_OK || r != 0)
        kl_channel_post_clear(out);
    if (why != NULL)
        *why = w; /* KL_CV_OK with KL_ENOMEM: no verdict, may be retried */
    return r ? r : kl_ch_err_of(w);
}

int kl_channel_post_unseal(const char *channel, kl_channel_post_t *p,
                           const uint8_t key[KL_CHANNEL_KEY])
{
    uint8_t *pt = NULL;
    size_t n = 0;
    if (p == NULL || channel == NULL || key == NULL || p->ciphertext == NULL)
        return KL_EINVAL;
    int r = kl_channel_unseal(key, channel, p->epoch, p->id, p->ciphertext, p->ciphertext_len,
                              &pt, &n);
    if (r)
        return r;
    if (memchr(pt, 0, n) != NULL) {
        kl_free_wipe(pt, n + 1);
        return KL_EPROTO;
    }
    if (p->text != NULL)
        kl_free_wipe(p->text, p->text_len + 1);
    p->text = (char *)pt;
    p->text_len = n;
    return 0;
}

void kl_channel_post_clear(kl_channel_post_t *p)
{
    if (p == NULL)
        return;
    if (p->text != NULL)
        kl_free_wipe(p->text, p->text_len + 1);
    free(p->ciphertext);
    memset(p, 0, sizeof *p);
}
