/* Requests about the account and its keys: register, auth, ping, lookup,
 * delivery token, prekeys. See rpc.h. */
#include <stdlib.h>
#include <string.h>

#include "kollega/err.h"
#include "rpc_int.h"

/* Send f and wait for an answer of body expect that the caller does not
 * read (ok, pong). */
static int call_plain(kl_net_t *conn, kl_frame_t *f, int expect)
{
    kl_frame_t *resp = NULL;
    int r = kl_net_call(conn, f, expect, &resp);
    kl_wire_free(resp);
    return r;
}

int kl_rpc_register(kl_net_t *conn, const char *handle, const uint8_t ik[32], const char *code,
                    const uint8_t sig[64])
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Register reg = KOLLEGA__RELAY__V1__REGISTER__INIT;
    reg.handle = (char *)handle;
    reg.identity_key = kl_rpc_bytes(ik, 32);
    reg.invite_code = (char *)code;
    reg.signature = kl_rpc_bytes(sig, 64);
    SET_BODY(f, register_, REGISTER, reg);
    return call_plain(conn, &f, BODY(OK));
}

int kl_rpc_auth(kl_net_t *conn, const char *address, const uint8_t sig[64])
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Auth a = KOLLEGA__RELAY__V1__AUTH__INIT;
    a.address = (char *)address;
    a.signature = kl_rpc_bytes(sig, 64);
    SET_BODY(f, auth, AUTH, a);
    return call_plain(conn, &f, BODY(OK));
}

int kl_rpc_ping(kl_net_t *conn, uint64_t nonce)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Ping p = KOLLEGA__RELAY__V1__PING__INIT;
    p.nonce = nonce;
    SET_BODY(f, ping, PING, p);
    return call_plain(conn, &f, BODY(PONG));
}

int kl_rpc_lookup(kl_net_t *conn, const char *address, const uint8_t *token, int *exists,
                  uint8_t key[32])
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Lookup lk = KOLLEGA__RELAY__V1__LOOKUP__INIT;
    kl_frame_t *resp = NULL;
    *exists = 0;
    lk.address = (char *)address;
    if (token)
        lk.delivery_token = kl_rpc_bytes(token, 32);
    SET_BODY(f, lookup, LOOKUP, lk);
    int r = kl_net_call(conn, &f, BODY(LOOKUP_RESULT), &resp);
    if (r)
        return r;
    const Kollega__Relay__V1__LookupResult *lr = resp->lookup_result;
    r = KL_EPROTO;
    /* The answer must be about the address we asked for. */
    if (lr == NULL || lr->address == NULL || strcmp(lr->address, address) != 0)
        goto out;
    if (lr->exists) {
        if (lr->identity_key.len != 32)
            goto out;
        memcpy(key, lr->identity_key.data, 32);
        *exists = 1;
    }
    r = 0;
out:
    kl_wire_free(resp);
    return r;
}

int kl_rpc_delivery_token(kl_net_t *conn, const uint8_t hash[32])
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__DeliveryToken dt = KOLLEGA__RELAY__V1__DELIVERY_TOKEN__INIT;
    dt.token_hash = kl_rpc_bytes(hash, 32);
    SET_BODY(f, delivery_token, DELIVERY_TOKEN, dt);
    return call_plain(conn, &f, BODY(OK));
}

int kl_rpc_prekey_upload(kl_net_t *conn, const kl_prekey_batch_t *b)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__PrekeyUpload up = KOLLEGA__RELAY__V1__PREKEY_UPLOAD__INIT;
    Kollega__Relay__V1__SignedPrekey spk = KOLLEGA__RELAY__V1__SIGNED_PREKEY__INIT;
    Kollega__Relay__V1__OneTimePrekey *opks = NULL, **ptrs = NULL;
    int r = KL_ENOMEM;

    if (b->n) {
        opks = calloc(b->n, sizeof *opks);
        ptrs = calloc(b->n, sizeof *ptrs);
        if (opks == NULL || ptrs == NULL)
            goto out;
    }
    for (size_t i = 0; i < b->n; i++) {
        Kollega__Relay__V1__OneTimePrekey init = KOLLEGA__RELAY__V1__ONE_TIME_PREKEY__INIT;
        opks[i] = init;
        opks[i].id = b->ids[i];
        opks[i].public_key = kl_rpc_bytes(b->pubs[i], 32);
        ptrs[i] = &opks[i];
    }
    spk.id = b->spk_id;
    spk.public_key = kl_rpc_bytes(b->spk_pub, 32);
    spk.signature = kl_rpc_bytes(b->spk_sig, 64);
    up.signed_prekey = &spk;
    up.n_one_time_prekeys = b->n;
    up.one_time_prekeys = ptrs;
    SET_BODY(f, prekey_upload, PREKEY_UPLOAD, up);
    r = call_plain(conn, &f, BODY(OK));
out:
    free(opks);
    free(ptrs);
    return r;
}

int kl_rpc_prekey_status(kl_net_t *conn, kl_rpc_prekey_count_t *out)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__PrekeyStatus ps = KOLLEGA__RELAY__V1__PREKEY_STATUS__INIT;
    kl_frame_t *resp = NULL;
    memset(out, 0, sizeof *out);
    SET_BODY(f, prekey_status, PREKEY_STATUS, ps);
    int r = kl_net_call(conn, &f, BODY(PREKEY_COUNT), &resp);
    if (r)
        return r;
    if (resp->prekey_count) {
        out->one_time = resp->prekey_count->one_time_prekeys;
        out->ran_out = resp->prekey_count->ran_out;
        out->ran_out_since_ms = out->ran_out ? resp->prekey_count->ran_out_since_ms : 0;
    }
    kl_wire_free(resp);
    return 0;
}

int kl_rpc_prekey_fetch(kl_net_t *conn, const char *address, kl_prekey_bundle_t *b)
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__PrekeyFetch pf = KOLLEGA__RELAY__V1__PREKEY_FETCH__INIT;
    kl_frame_t *resp = NULL;
    memset(b, 0, sizeof *b);
    pf.address = (char *)address;
    SET_BODY(f, prekey_fetch, PREKEY_FETCH, pf);
    int r = kl_net_call(conn, &f, BODY(PREKEY_BUNDLE), &resp);
    if (r)
        return r;
    const Kollega__Relay__V1__PrekeyBundle *pb = resp->prekey_bundle;
    if (pb == NULL || pb->address == NULL || strcmp(pb->address, address) != 0)
        r = KL_EPROTO;
    else
        r = kl_wire_prekey_bundle_get(pb, b);
    kl_wire_free(resp);
    return r;
}
