/* Unidentified delivery. See delivery.h. */
#include <string.h>

#include "delivery.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "rpc.h"
#include "util.h"

#define PUBLISHED "delivery_token_published"
/* The relay is reminded of the token this often, so one that lost it (a
 * restored database) takes unidentified messages again within a day. */
#define REPUBLISH_MS (24ull * 3600 * 1000)

int kl_delivery_own(kl_store_t *st, uint8_t token[32])
{
    int r = kl_store_secret_get(st, KL_DELIVERY_TOKEN_SECRET, token, 32);
    if (r != KL_ENOTFOUND)
        return r;
    if ((r = kl_store_begin(st)))
        return r;
    /* Another kollega process may have made one meanwhile: keep theirs. */
    r = kl_store_secret_get(st, KL_DELIVERY_TOKEN_SECRET, token, 32);
    if (r == KL_ENOTFOUND) {
        kl_random(token, 32);
        if ((r = kl_store_secret_put(st, KL_DELIVERY_TOKEN_SECRET, token, 32)) == 0)
            r = kl_store_set_u64(st, PUBLISHED, 0);
    }
    if (r) {
        kl_store_rollback(st);
        kl_memzero(token, 32);
        return r;
    }
    return kl_store_commit(st);
}

int kl_delivery_publish(kl_store_t *st, kl_net_t *conn)
{
    uint8_t token[32], hash[32];
    uint64_t done = 0, now = kl_now_ms();
    int r = kl_store_get_u64(st, PUBLISHED, &done);
    if (r == 0 && done && done <= now && now - done < REPUBLISH_MS)
        return 0;
    if (r && r != KL_ENOTFOUND)
        return r;
    if ((r = kl_delivery_own(st, token)))
        return r;
    kl_sha256(token, 32, hash);
    kl_memzero(token, sizeof token);
    if ((r = kl_rpc_delivery_token(conn, hash)))
        return r;
    if ((r = kl_store_begin(st)))
        return r;
    if ((r = kl_store_set_u64(st, PUBLISHED, now))) {
        kl_store_rollback(st);
        return r;
    }
    return kl_store_commit(st);
}
