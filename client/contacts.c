#include <stdio.h>
#include <string.h>

#include "contacts.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "util.h"

int kl_contacts_lookup(kl_conn_t *c, const char *address, int *exists, uint8_t key[32])
{
    Kollega__Relay__V1__Frame f = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Lookup lk = KOLLEGA__RELAY__V1__LOOKUP__INIT;
    kl_frame_t *resp = NULL;
    *exists = 0;
    lk.address = (char *)address;
    f.body_case = KOLLEGA__RELAY__V1__FRAME__BODY_LOOKUP;
    f.lookup = &lk;
    int r = kl_conn_call(c, &f, KOLLEGA__RELAY__V1__FRAME__BODY_LOOKUP_RESULT, &resp);
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

static int put_in_txn(kl_store_t *st, const kl_contact_t *c)
{
    int r = kl_store_begin(st);
    if (r)
        return r;
    r = kl_store_contact_put(st, c);
    if (r == 0)
        return kl_store_commit(st);
    kl_store_rollback(st);
    return r;
}

/* Flag c because key (from the relay or a message) differs from its pin. */
static int flag_changed(kl_store_t *st, kl_contact_t *c, const uint8_t key[32])
{
    c->key_changed = 1;
    c->has_pending = 1;
    memcpy(c->pending, key, 32);
    return put_in_txn(st, c);
}

/* Compare the relay's current key with the pinned one and flag on change. */
static int compare_pinned(kl_store_t *st, kl_contact_t *c, const uint8_t key[32])
{
    if (c->has_key && kl_memcmp(c->key, key, 32) == 0)
        return c->key_changed ? KL_EKEYCHANGED : 0;
    if (c->key_changed && c->has_pending && kl_memcmp(c->pending, key, 32) == 0)
        return KL_EKEYCHANGED;
    int r = flag_changed(st, c, key);
    return r ? r : KL_EKEYCHANGED;
}

static int pin_new(kl_store_t *st, const char *address, const uint8_t key[32], kl_contact_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->address, sizeof c->address, "%s", address);
    c->has_key = 1;
    memcpy(c->key, key, 32);
    c->added_at = kl_now_ms();
    return put_in_txn(st, c);
}

int kl_contacts_add(kl_store_t *st, kl_conn_t *conn, const char *address, kl_contact_t *c,
                    int *added)
{
    uint8_t key[32];
    int exists = 0;
    *added = 0;
    int r = kl_contacts_lookup(conn, address, &exists, key);
    if (r)
        return r;
    r = kl_store_contact_get(st, address, c);
    if (r == 0)
        return exists ? compare_pinned(st, c, key) : 0;
    if (r != KL_ENOTFOUND)
        return r;
    if (!exists)
        return KL_ENOTFOUND;
    r = pin_new(st, address, key, c);
    if (r == 0)
        *added = 1;
    return r;
}

int kl_contacts_check_send(kl_store_t *st, kl_conn_t *conn, const char *address,
                           kl_contact_t *c)
{
    int added = 0;
    int r = kl_contacts_add(st, conn, address, c, &added);
    if (r)
        return r;
    /* The relay no longer knows the user, but a pin exists: keep it. */
    if (!c->has_key || c->key_changed)
        return KL_EKEYCHANGED;
    return 0;
}

int kl_contacts_check_sender(kl_store_t *st, kl_conn_t *conn, const char *sender,
                             const uint8_t key[32], int *accept)
{
    kl_contact_t c;
    uint8_t relay_key[32];
    int exists = 0;
    *accept = 0;
    int r = kl_store_contact_get(st, sender, &c);
    if (r == 0) {
        if (c.has_key && kl_memcmp(c.key, key, 32) == 0) {
            *accept = 1;
            return 0;
        }
        if (c.key_changed && c.has_pending && kl_memcmp(c.pending, key, 32) == 0)
            return 0;
        return flag_changed(st, &c, key);
    }
    if (r != KL_ENOTFOUND)
        return r;
    /* First contact from someone unknown: trust the key only if the relay
     * vouches for it too; otherwise hold the message for verification. A
     * lookup lost to the network decides nothing: the caller retries. */
    int lr = conn ? kl_contacts_lookup(conn, sender, &exists, relay_key) : KL_EREFUSED;
    if (lr && lr != KL_EREFUSED && lr != KL_EPROTO)
        return KL_EAGAIN;
    if (lr == 0 && exists && kl_memcmp(relay_key, key, 32) == 0) {
        r = pin_new(st, sender, key, &c);
        if (r == 0)
            *accept = 1;
        return r;
    }
    memset(&c, 0, sizeof c);
    snprintf(c.address, sizeof c.address, "%s", sender);
    c.added_at = kl_now_ms();
    if (exists) {
        c.has_key = 1;
        memcpy(c.key, relay_key, 32);
    }
    return flag_changed(st, &c, key);
}

int kl_contacts_confirm(kl_store_t *st, const char *address, kl_contact_t *c)
{
    int r = kl_store_begin(st);
    if (r)
        return r;
    if ((r = kl_store_contact_get(st, address, c)))
        goto out;
    if (c->has_pending) {
        memcpy(c->key, c->pending, 32);
        c->has_key = 1;
        c->has_pending = 0;
        memset(c->pending, 0, 32);
        c->key_changed = 0;
        /* The old session belongs to the old key. */
        if ((r = kl_store_session_delete(st, address)))
            goto out;
    } else if (!c->has_key) {
        r = KL_ESTATE;
        goto out;
    }
    c->key_changed = 0;
    c->verified = 1;
    if ((r = kl_store_contact_put(st, c)))
        goto out;
    return kl_store_commit(st);
out:
    kl_store_rollback(st);
    return r;
}

int kl_contacts_check_log_key(kl_store_t *st, const char *address, const uint8_t key[32],
                              int *conflict)
{
    kl_contact_t c;
    *conflict = 0;
    int r = kl_store_contact_get(st, address, &c);
    if (r == KL_ENOTFOUND)
        return 0; /* no pin: nothing to compare, and nothing is written */
    if (r)
        return r;
    *conflict = !c.has_key || c.key_changed || kl_memcmp(c.key, key, 32) != 0;
    return 0;
}
