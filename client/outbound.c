/* Sending to one user. See outbound.h. */
#include <stdlib.h>
#include <string.h>

#include "kollega/err.h"
#include "outbound.h"

int kl_out_fetch_bundle(kl_net_t *conn, const char *addr, kl_prekey_bundle_t *b)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__PrekeyFetch pf = KOLLEGA__RELAY__V1__PREKEY_FETCH__INIT;
    kl_frame_t *resp = NULL;
    memset(b, 0, sizeof *b);
    pf.address = (char *)addr;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_PREKEY_FETCH;
    f.prekey_fetch = &pf;
    int r = kl_net_call(conn, &f, KOLLEGA__RELAY__V1__FRAME__BODY_PREKEY_BUNDLE, &resp);
    if (r)
        return r;
    const Kollega__Relay__V1__PrekeyBundle *pb = resp->prekey_bundle;
    const Kollega__Relay__V1__SignedPrekey *spk = pb ? pb->signed_prekey : NULL;
    const Kollega__Relay__V1__OneTimePrekey *opk = pb ? pb->one_time_prekey : NULL;
    r = KL_EPROTO;
    if (pb == NULL || pb->address == NULL || strcmp(pb->address, addr) != 0 ||
        pb->identity_key.len != 32)
        goto out;
    if (spk == NULL) {
        r = KL_ENOTFOUND;
        goto out;
    }
    if (spk->public_key.len != 32 || spk->signature.len != 64 ||
        (opk && opk->public_key.len != 32))
        goto out;
    memcpy(b->identity_key, pb->identity_key.data, 32);
    b->spk_id = spk->id;
    memcpy(b->spk, spk->public_key.data, 32);
    memcpy(b->spk_sig, spk->signature.data, 64);
    if (opk) {
        b->has_opk = 1;
        b->opk_id = opk->id;
        memcpy(b->opk, opk->public_key.data, 32);
    }
    r = 0;
out:
    kl_wire_free(resp);
    return r;
}

int kl_out_send_body(kl_net_t *conn, const char *to, const uint8_t *body, size_t len,
                     uint64_t *seq)
{
    return kl_out_send_group_body(conn, to, body, len, 0, seq);
}

/* send{to, body, [group_index], [delivery_token]} -> sent{seq}. */
static int send_frame(kl_net_t *conn, const char *to, const uint8_t *body, size_t len,
                      uint64_t group_index, const uint8_t *token, uint64_t *seq)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Send s = KOLLEGA__RELAY__V1__SEND__INIT;
    kl_frame_t *resp = NULL;
    s.group_index = group_index;
    if (token) {
        s.delivery_token.data = (uint8_t *)token;
        s.delivery_token.len = 32;
    }
    s.to = (char *)to;
    s.body.data = (uint8_t *)body;
    s.body.len = len;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_SEND;
    f.send = &s;
    int r = kl_net_call(conn, &f, KOLLEGA__RELAY__V1__FRAME__BODY_SENT, &resp);
    if (r == 0)
        *seq = resp->sent ? resp->sent->seq : 0;
    kl_wire_free(resp);
    return r;
}

int kl_out_send_group_body(kl_net_t *conn, const char *to, const uint8_t *body, size_t len,
                           uint64_t group_index, uint64_t *seq)
{
    return send_frame(conn, to, body, len, group_index, NULL, seq);
}

int kl_out_send_unidentified(kl_net_t *conn, const char *to, const uint8_t token[32],
                             const uint8_t *body, size_t len, uint64_t *seq)
{
    return send_frame(conn, to, body, len, 0, token, seq);
}

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
            if ((r = kl_out_fetch_bundle(conn, peer, &bundle)))
                return r;
            use = &bundle;
        }
        r = kl_session_encrypt_content(st, me, peer, peer_ik, use, c, &body, &blen);
    }
    if (r)
        return r;
    r = kl_out_send_body(conn, peer, body, blen, seq);
    free(body);
    return r;
}
