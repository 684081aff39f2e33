/* Sending to one user. See outbound.h. */
#include <stdlib.h>
#include <string.h>

#include "kollega/err.h"
#include "outbound.h"
#include "rpc.h"

int kl_out_send_content(kl_store_t *st, const kl_identity_t *me, kl_net_t *conn,
                        const char *peer, const uint8_t peer_ik[32], const kl_content_t *c,
                        uint64_t *seq)
{
    kl_prekey_bundle_t bundle;
    uint8_t *body = NULL;
    size_t blen = 0;
    int has = 0, r = KL_ENOTFOUND;
    /* Two tries: a session may vanish between the check and the encryption
     * (another kollega process confirmed a new key); then start afresh. */
    for (int attempt = 0; attempt < 2 && r == KL_ENOTFOUND; attempt++) {
        const kl_prekey_bundle_t *use = NULL;
        if ((r = kl_session_has(st, peer, peer_ik, &has)))
            return r;
        if (!has) {
            if ((r = kl_rpc_prekey_fetch(conn, peer, &bundle)))
                return r;
            use = &bundle;
        }
        r = kl_session_encrypt_content(st, me, peer, peer_ik, use, c, &body, &blen);
    }
    if (r)
        return r;
    r = kl_rpc_send(conn, peer, body, blen, 0, NULL, seq);
    free(body);
    return r;
}
