#include <stdio.h>
#include <string.h>

#include "contacts.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "rpc.h"
#include "util.h"

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

static int add_with(kl_store_t *st, kl_net_t *conn, const char *address,
                    const uint8_t *token, kl_contact_t *c, int *added)
{
    uint8_t key[32];
    int exists = 0;
    *added = 0;
    int r = kl_rpc_lookup(conn, address, token, &exists, key);
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

int kl_contacts_add(kl_store_t *st, kl_net_t *conn, const char *address, kl_contact_t *c,
                    int *added)
{
    return add_with(st, conn, address, NULL, c, added);
}

int kl_contacts_check_send(kl_store_t *st, kl_net_t *conn, const char *address,
                           kl_contact_t *c)
{
    return kl_contacts_check_send_token(st, conn, address, NULL, c);
}

int kl_contacts_check_send_token(kl_store_t *st, kl_net_t *conn, const char *address,
                                 const uint8_t *token, kl_contact_t *c)
{
    int added = 0;
    int r = add_with(st, conn, address, token, c, &added);
    if (r)
        return r;
    /* The relay no longer knows the user, but a pin exists: keep it. */
    if (!c->has_key || c->key_changed)
        return KL_EKEYCHANGED;
    return 0;
}

int kl_contacts_vouch(kl_net_t *conn, const char *address, const uint8_t key[32],
                      int *vouched)
{
    uint8_t relay_key[32];
    int exists = 0;
    *vouched = 0;
    if (conn == NULL)
        return KL_EAGAIN;
    int r = kl_rpc_lookup(conn, address, NULL, &exists, relay_key);
    if (r == KL_EREFUSED) {
        /* NOT_FOUND, BAD_REQUEST or FORBIDDEN is an answer ("no such
         * user"); a relay that cannot answer now (its peer link is down,
         * it is busy) decides nothing. */
        int code = kl_net_relay_error(conn);
        if (code != KL_WIRE_ERR_NOT_FOUND && code != KL_WIRE_ERR_BAD_REQUEST &&
            code != KL_WIRE_ERR_FORBIDDEN)
            return KL_EAGAIN;
        return 0;
    }
    if (r == KL_EPROTO)
        return 0; /* an answer about another address vouches for nothing */
    if (r)
        return r; /* our own connection failed: the caller stops here */
    *vouched = exists && kl_memcmp(relay_key, key, 32) == 0;
    return 0;
}

int kl_contacts_on_proven(kl_store_t *st, const char *sender, const uint8_t key[32],
                          int *accept)
{
    kl_contact_t c;
    *accept = 0;
    int r = kl_store_contact_get(st, sender, &c);
    if (r == KL_ENOTFOUND) {
        r = pin_new(st, sender, key, &c);
        if (r == 0)
            *accept = 1;
        return r;
    }
    if (r)
        return r;
    if (c.has_key && kl_memcmp(c.key, key, 32) == 0) {
        *accept = 1;
        return 0;
    }
    if (c.key_changed && c.has_pending && kl_memcmp(c.pending, key, 32) == 0)
        return 0;
    return flag_changed(st, &c, key);
}

const uint8_t *kl_contacts_current_key(const kl_contact_t *c)
{
    if (c->has_pending && (c->key_changed || !c->has_key))
        return c->pending;
    return c->has_key ? c->key : NULL;
}

int kl_contacts_shown(kl_store_t *st, const char *address, const uint8_t key[32])
{
    kl_contact_t c;
    int r = kl_store_begin(st);
    if (r)
        return r;
    if ((r = kl_store_contact_get(st, address, &c)) == 0 &&
        !(c.has_shown && kl_memcmp(c.shown, key, 32) == 0)) {
        c.has_shown = 1;
        memcpy(c.shown, key, 32);
        r = kl_store_contact_put(st, &c);
    }
    return kl_store_end(st, r);
}

int kl_contacts_confirm(kl_store_t *st, const char *address, const uint8_t expect[32],
                        kl_contact_t *c)
{
    int r = kl_store_begin(st);
    if (r)
        return r;
    if ((r = kl_store_contact_get(st, address, c)))
        goto out;
    /* The key being confirmed must still be the one whose safety number
     * the user compared: one that arrived since is refused. */
    const uint8_t *cur = kl_contacts_current_key(c);
    if (cur == NULL || kl_memcmp(cur, expect, 32) != 0) {
        r = KL_ESTATE;
        goto out;
    }
    if (cur == c->pending) {
        uint64_t dropped = 0;
        memcpy(c->key, c->pending, 32);
        c->has_key = 1;
        c->has_pending = 0;
        memset(c->pending, 0, 32);
        /* The old session belongs to the old key; messages held from keys
         * announced before this one and never confirmed go too. */
        if ((r = kl_store_session_delete(st, address)) ||
            (r = kl_store_peer_token_delete(st, address)) ||
            (r = kl_store_held_drop(st, address, c->key, &dropped)))
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

int kl_contacts_reject(kl_store_t *st, const char *address, kl_contact_t *c, uint64_t *dropped)
{
    *dropped = 0;
    int r = kl_store_begin(st);
    if (r)
        return r;
    if ((r = kl_store_contact_get(st, address, c)))
        goto out;
    if (!c->has_pending) {
        r = KL_ESTATE;
        goto out;
    }
    if ((r = kl_store_held_drop(st, address, c->has_key ? c->key : NULL, dropped)))
        goto out;
    c->has_pending = 0;
    memset(c->pending, 0, 32);
    c->has_shown = 0;
    memset(c->shown, 0, 32);
    c->key_changed = 0;
    /* Back to the pinned key; a contact that never had one has nothing
     * left to keep. */
    r = c->has_key ? kl_store_contact_put(st, c) : kl_store_contact_delete(st, address);
    if (r)
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
