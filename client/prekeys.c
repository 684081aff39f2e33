#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "prekeys.h"
#include "rpc.h"
#include "util.h"

/* Prekey ids come from one counter so no id is ever reused, even for a
 * prekey deleted long ago (a late message must never meet a new key). */
static int next_id(kl_store_t *st, uint32_t *id)
{
    uint64_t v = 1;
    int r = kl_store_get_u64(st, "next_prekey_id", &v);
    if (r && r != KL_ENOTFOUND)
        return r;
    if (v == 0 || v >= UINT32_MAX)
        return KL_ELIMIT;
    *id = (uint32_t)v;
    return kl_store_set_u64(st, "next_prekey_id", v + 1);
}

static int make_one(kl_store_t *st, int kind, uint64_t now, uint32_t *id, uint8_t pub[32])
{
    uint8_t priv[32];
    int r = next_id(st, id);
    if (r == 0) {
        kl_x_keypair(pub, priv);
        r = kl_store_prekey_put(st, *id, kind, pub, priv, now);
    }
    kl_memzero(priv, sizeof priv);
    return r;
}

int kl_prekeys_generate(kl_store_t *st, const kl_identity_t *me, size_t n_opk, int new_spk,
                        kl_prekey_batch_t *b)
{
    uint64_t now = kl_now_ms(), created = 0;
    int r;
    memset(b, 0, sizeof *b);
    if (n_opk > KL_OPK_BATCH)
        return KL_EINVAL;
    if ((r = kl_store_begin(st)))
        return r;
    r = kl_store_prekey_current_spk(st, &b->spk_id, b->spk_pub, &created);
    if (r == KL_ENOTFOUND || (r == 0 && new_spk))
        r = make_one(st, KL_PREKEY_SPK, now, &b->spk_id, b->spk_pub);
    for (size_t i = 0; r == 0 && i < n_opk; i++) {
        r = make_one(st, KL_PREKEY_OPK, now, &b->ids[i], b->pubs[i]);
        b->n = i + 1;
    }
    if (r == 0)
        r = kl_x3dh_spk_sign(me->sk, b->spk_id, b->spk_pub, b->spk_sig);
    r = kl_store_end(st, r);
    if (r)
        memset(b, 0, sizeof *b);
    return r;
}

int kl_prekeys_maintain(kl_store_t *st, const kl_identity_t *me, kl_net_t *c,
                        kl_prekey_upkeep_t *up)
{
    kl_rpc_prekey_count_t count;
    kl_prekey_batch_t *b = NULL;
    uint32_t spk_id = 0;
    uint8_t spk_pub[32];
    uint64_t created = 0, now = kl_now_ms();
    int r;

    kl_prekey_upkeep_t local;
    if (up == NULL)
        up = &local;
    memset(up, 0, sizeof *up);
    if ((r = kl_rpc_prekey_status(c, &count)))
        return r;
    uint32_t have = count.one_time;
    up->ran_out = count.ran_out;
    up->ran_out_since_ms = count.ran_out_since_ms;

    r = kl_store_prekey_current_spk(st, &spk_id, spk_pub, &created);
    if (r && r != KL_ENOTFOUND)
        return r;
    int rotate = r == KL_ENOTFOUND || now < created || now - created >= KL_SPK_ROTATE_MS;
    /* The relay clears ran_out at an upload of one-time prekeys, so
     * ran_out > 0 means none were uploaded since they ran out: refill (and
     * so clear it) even if another device's fetches left a few. */
    size_t n = have < KL_OPK_LOW || up->ran_out > 0 ? KL_OPK_BATCH : 0;
    if (!rotate && n == 0)
        return 0;
    b = malloc(sizeof *b);
    if (b == NULL)
        return KL_ENOMEM;
    if ((r = kl_prekeys_generate(st, me, n, rotate, b)) || (r = kl_rpc_prekey_upload(c, b)))
        goto out;
    up->uploaded = b->n;
    if (now > KL_SPK_KEEP_MS && (r = kl_store_begin(st)) == 0) {
        r = kl_store_prekey_prune_spk(st, now - KL_SPK_KEEP_MS);
        r = kl_store_end(st, r);
    }
out:
    free(b);
    return r;
}

int kl_prekeys_local_bundle(kl_store_t *st, const kl_identity_t *me, uint32_t opk_id,
                            kl_prekey_bundle_t *b)
{
    uint8_t priv[32];
    uint64_t created;
    int r;
    memset(b, 0, sizeof *b);
    memcpy(b->identity_key, me->pk, 32);
    if ((r = kl_store_prekey_current_spk(st, &b->spk_id, b->spk, &created)) ||
        (r = kl_x3dh_spk_sign(me->sk, b->spk_id, b->spk, b->spk_sig)))
        return r;
    if (opk_id) {
        r = kl_store_prekey_get(st, opk_id, KL_PREKEY_OPK, b->opk, priv);
        kl_memzero(priv, sizeof priv);
        if (r)
            return r;
        b->has_opk = 1;
        b->opk_id = opk_id;
    }
    return 0;
}
