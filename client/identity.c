#include <stdio.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "identity.h"

int kl_identity_generate(kl_identity_t *id, const char *address)
{
    kl_addr_t a;
    memset(id, 0, sizeof *id);
    if (kl_addr_parse(address, &a) != 0 || a.is_group)
        return KL_EINVAL;
    if (kl_addr_format(&a, id->address, sizeof id->address) != 0)
        return KL_EINVAL;
    id->sk = kl_secure_alloc(KL_ED_SK);
    if (id->sk == NULL)
        return KL_ENOMEM;
    int r = kl_sign_keypair(id->pk, id->sk);
    if (r)
        kl_identity_wipe(id);
    return r;
}

int kl_identity_save(kl_store_t *st, const kl_identity_t *id, const kl_relay_info_t *relay)
{
    uint8_t rec[KL_ED_PK + KL_ED_SK];
    char port[8];
    int r;
    memcpy(rec, id->pk, KL_ED_PK);
    memcpy(rec + KL_ED_PK, id->sk, KL_ED_SK);
    snprintf(port, sizeof port, "%u", relay->port);
    if ((r = kl_store_secret_put(st, "identity", rec, sizeof rec)) ||
        (r = kl_store_secret_put(st, "relay_key", relay->key, 32)) ||
        (r = kl_store_set_str(st, "address", id->address)) ||
        (r = kl_store_set_str(st, "relay_name", relay->name)) ||
        (r = kl_store_set_str(st, "relay_host", relay->host)) ||
        (r = kl_store_set_u64(st, "relay_port", relay->port)))
        goto out;
out:
    kl_memzero(rec, sizeof rec);
    return r;
}

int kl_identity_load(kl_store_t *st, kl_identity_t *id, kl_relay_info_t *relay)
{
    uint8_t rec[KL_ED_PK + KL_ED_SK];
    uint8_t check[KL_ED_PK];
    uint64_t port = 0;
    int r;
    memset(id, 0, sizeof *id);
    r = kl_store_get_str(st, "address", id->address, sizeof id->address);
    if (r)
        return r == KL_ENOTFOUND ? KL_ENOTFOUND : r;
    id->sk = kl_secure_alloc(KL_ED_SK);
    if (id->sk == NULL)
        return KL_ENOMEM;
    if ((r = kl_store_secret_get(st, "identity", rec, sizeof rec)))
        goto out;
    memcpy(id->pk, rec, KL_ED_PK);
    memcpy(id->sk, rec + KL_ED_PK, KL_ED_SK);
    /* libsodium's Ed25519 secret key ends with its public key. */
    memcpy(check, id->sk + 32, KL_ED_PK);
    if (kl_memcmp(check, id->pk, KL_ED_PK) != 0) {
        r = KL_ECRYPTO;
        goto out;
    }
    if (relay) {
        memset(relay, 0, sizeof *relay);
        if ((r = kl_store_secret_get(st, "relay_key", relay->key, 32)) ||
            (r = kl_store_get_str(st, "relay_name", relay->name, sizeof relay->name)) ||
            (r = kl_store_get_str(st, "relay_host", relay->host, sizeof relay->host)) ||
            (r = kl_store_get_u64(st, "relay_port", &port)))
            goto out;
        if (port == 0 || port > 65535) {
            r = KL_EPROTO;
            goto out;
        }
        relay->port = (uint16_t)port;
    }
out:
    kl_memzero(rec, sizeof rec);
    if (r)
        kl_identity_wipe(id);
    return r;
}

void kl_identity_wipe(kl_identity_t *id)
{
    if (id->sk)
        kl_secure_free(id->sk);
    id->sk = NULL;
}
