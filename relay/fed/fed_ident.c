/* Who is on the other end of a federation link. The initiator sends a
 * hint (include/kollega/fedhint.h) in front of Noise_KK message 1; the
 * responder finds the peer it names with keyed hashes only and then tries
 * exactly that peer's key. Without the hint a responder would have to try
 * message 1 against every configured peer key (2 X25519 each), so any
 * stranger reaching the federation port could make it spend 2 DH per
 * configured peer per attempt. The hint keys are derived once at start
 * (one DH per peer), live in guarded memory and are wiped at exit
 * (kl_fed_free). */
#include <string.h>

#include "fed_int.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/fedhint.h"

int kl_fed_hint_keys(kl_fed_t *f)
{
    uint8_t *keys = kl_secure_alloc(f->n_peers ? f->n_peers * KL_FEDHINT_KEY : 1);
    if (keys == NULL)
        return KL_ENOMEM;
    for (size_t i = 0; i < f->n_peers; i++) {
        uint8_t *k = keys + i * KL_FEDHINT_KEY;
        /* A peer key whose DH with ours is zero (a low-order point) can
         * never complete a handshake; a random hint key makes sure no one
         * can name that peer either. */
        if (kl_fedhint_key(f->cfg.static_sk, f->peers[i]->cfg.key, k) != 0)
            kl_random(k, KL_FEDHINT_KEY);
        f->peers[i]->index = i;
    }
    if (f->hint_keys)
        kl_secure_free(f->hint_keys);
    f->hint_keys = keys;
    return 0;
}

const uint8_t *kl_fed_hint_key(const kl_fed_t *f, size_t i)
{
    return f->hint_keys + i * KL_FEDHINT_KEY;
}

uint64_t kl_fed_hs_tries(const kl_fed_t *f)
{
    return f->hs_tries;
}

int kl_fed_hello(fed_peer_t *p, kl_noise_hs_t *hs, uint8_t *out, size_t cap, size_t *outlen)
{
    kl_fed_t *f = p->fed;
    size_t mlen = 0;
    if (cap < KL_FEDHINT_LEN)
        return KL_ETOOBIG;
    int r = kl_noise_hs_write(hs, NULL, 0, out + KL_FEDHINT_LEN, cap - KL_FEDHINT_LEN, &mlen);
    if (r == 0)
        r = kl_fedhint_make(f->hint_keys + p->index * KL_FEDHINT_KEY,
                            out + KL_FEDHINT_LEN, mlen, out);
    if (r == 0)
        *outlen = KL_FEDHINT_LEN + mlen;
    return r;
}

fed_peer_t *kl_fed_identify(kl_fed_t *f, const uint8_t *msg, size_t len, kl_noise_hs_t **hs)
{
    uint8_t payload[FED_HS_MAX];
    size_t plen = 0;
    if (len < KL_FEDHINT_LEN)
        return NULL;
    long i = kl_fedhint_find(f->hint_keys, f->n_peers, msg, msg + KL_FEDHINT_LEN,
                             len - KL_FEDHINT_LEN);
    if (i < 0)
        return NULL;
    kl_noise_config_t nc = {.pattern = KL_NOISE_KK,
                            .initiator = 0,
                            .prologue = (const uint8_t *)KL_PROLOGUE_FEDERATION,
                            .prologue_len = strlen(KL_PROLOGUE_FEDERATION),
                            .s = f->cfg.static_sk,
                            .rs = f->peers[i]->cfg.key};
    kl_noise_hs_t *h = NULL;
    if (kl_noise_hs_new(&h, &nc) != 0)
        return NULL;
    f->hs_tries++;
    if (kl_noise_hs_read(h, msg + KL_FEDHINT_LEN, len - KL_FEDHINT_LEN, payload, sizeof payload,
                         &plen) != 0 ||
        plen != 0) {
        kl_noise_hs_free(h);
        return NULL;
    }
    *hs = h;
    return f->peers[i];
}
