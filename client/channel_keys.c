/* Members-only channels in the client: channel keys (one per epoch, made
 * by the owner's client, handed to each member over the 1:1 sessions) and
 * the use of a received key. See channels.h and include/kollega/channel.h.
 *
 * Trust: a received key is stored with the identity key of its sender and
 * used only while that sender is the OWNER in our validated copy of the
 * channel's log and we are a member in it (kl_chan_key_get); a key from
 * anyone else is never used. The owner records whom it gave each epoch's
 * key (channel_key_sent), so a key that could not be sent (no prekeys, a
 * key conflict) is sent again at the owner's next `channel post`,
 * `channel member ...` or `receive`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "contacts.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "outbound.h"
#include "util.h"

int kl_chan_store_key(kl_store_t *st, const char *chan, const uint8_t sender[32], uint64_t epoch,
                      const uint8_t key[KL_CHANNEL_KEY])
{
    if (!kl_channel_addr_valid(chan) || epoch == 0)
        return 0; /* content decoding checked this: nothing to keep */
    int r = kl_store_channel_schema(st);
    if (r == 0)
        r = kl_store_channel_key_put(st, chan, epoch, sender, key);
    return r == KL_ELIMIT ? 0 : r; /* a flood of keys is dropped, not an error */
}

int kl_chan_key_get(kl_cli_t *cli, const kl_chan_t *x, uint64_t epoch,
                    uint8_t key[KL_CHANNEL_KEY])
{
    uint8_t owner[32];
    if (!kl_channel_members_only(x->c) || kl_channel_owner(x->c, owner) != 0 ||
        !kl_channel_is_member(x->c, cli->me.pk))
        return KL_ESTATE;
    if (epoch == 0 || epoch > kl_channel_epoch(x->c))
        return KL_ENOTFOUND;
    return kl_store_channel_key_get(cli->st, x->address, epoch, owner, key);
}

int kl_chan_own_key(kl_cli_t *cli, const kl_chan_t *x, uint8_t key[KL_CHANNEL_KEY])
{
    uint8_t owner[32];
    uint64_t epoch = kl_channel_epoch(x->c);
    if (!kl_channel_members_only(x->c) || kl_channel_owner(x->c, owner) != 0 ||
        kl_memcmp(owner, cli->me.pk, 32) != 0)
        return KL_ESTATE;
    int r = kl_store_channel_key_get(cli->st, x->address, epoch, owner, key);
    if (r != KL_ENOTFOUND)
        return r;
    /* A fresh random key for the new epoch: nobody removed before it was
     * made can read what it seals. */
    kl_random(key, KL_CHANNEL_KEY);
    if ((r = kl_store_begin(cli->st)) == 0) {
        r = kl_store_channel_key_put(cli->st, x->address, epoch, owner, key);
        r = r ? r : kl_store_commit(cli->st);
        if (r)
            kl_store_rollback(cli->st);
    }
    if (r)
        kl_memzero(key, KL_CHANNEL_KEY);
    return r;
}

/* Give the key of epoch to one member, once. *ok = 1 when it has it. */
static int give_key(kl_cli_t *cli, kl_net_t *conn, const kl_chan_t *x, uint64_t epoch,
                    const uint8_t key[KL_CHANNEL_KEY], const uint8_t mkey[32], const char *addr,
                    int *ok)
{
    kl_content_t ct;
    uint64_t seq = 0;
    int has = 0, conflict = 0;
    *ok = 0;
    int r = kl_store_slog_key_sent(cli->st, x->address, epoch, mkey, 0, &has);
    if (r || has) {
        *ok = has;
        return r;
    }
    if ((r = kl_contacts_check_log_key(cli->st, addr, mkey, &conflict)))
        return r;
    if (conflict) {
        kl_chan_warn(cli, x->address, "key_conflict",
                     "%s's identity key in %s differs from the one you pinned; they do not get "
                     "the channel key until you check it with `kollega contact verify %s`",
                     addr, x->address, addr);
        return 0;
    }
    memset(&ct, 0, sizeof ct);
    kl_random(ct.id, KL_MSG_ID);
    ct.sent_at = kl_now_ms();
    ct.text = (char *)"";
    snprintf(ct.to, sizeof ct.to, "%s", addr);
    ct.has_ckey = 1;
    snprintf(ct.ckey_channel, sizeof ct.ckey_channel, "%s", x->address);
    ct.ckey_epoch = epoch;
    memcpy(ct.ckey, key, KL_CHANNEL_KEY);
    r = kl_out_send_content(cli->st, &cli->me, conn, addr, mkey, &ct, &seq);
    kl_memzero(ct.ckey, sizeof ct.ckey);
    if (r == KL_ENOTFOUND || r == KL_EKEYCHANGED || r == KL_ECRYPTO ||
        (r == KL_EREFUSED && kl_net_relay_error(conn) != KL_WIRE_ERR_RATE_LIMITED)) {
        kl_chan_warn(cli, x->address, "key_not_sent",
                     "could not give the key of %s to %s (%s); they cannot read its posts until "
                     "this works (retried at your next post, member change or receive)",
                     x->address, addr,
                     r == KL_ENOTFOUND ? "they have published no prekeys" : kl_strerror(r));
        return 0;
    }
    if (r)
        return r;
    if ((r = kl_store_begin(cli->st)))
        return r;
    r = kl_store_slog_key_sent(cli->st, x->address, epoch, mkey, 1, NULL);
    r = r ? r : kl_store_commit(cli->st);
    if (r)
        kl_store_rollback(cli->st);
    *ok = r == 0;
    return r;
}

int kl_chan_distribute(kl_cli_t *cli, kl_net_t *conn, const kl_chan_t *x, size_t *missing)
{
    uint8_t key[KL_CHANNEL_KEY], mkey[32];
    char addr[256];
    uint64_t epoch = kl_channel_epoch(x->c);
    size_t np = kl_channel_publisher_count(x->c), na = kl_channel_added_count(x->c);
    *missing = 0;
    int r = kl_chan_own_key(cli, x, key);
    for (size_t i = 0; r == 0 && i < np + na; i++) {
        int ok = 0;
        if (i < np)
            r = kl_channel_publisher_at(x->c, i, mkey, addr);
        else
            r = kl_channel_added_at(x->c, i - np, mkey, addr);
        if (r)
            break;
        /* Ourselves, and an added member who also publishes (done above). */
        if (kl_memcmp(mkey, cli->me.pk, 32) == 0 ||
            (i >= np && kl_channel_is_publisher(x->c, mkey)))
            continue;
        r = give_key(cli, conn, x, epoch, key, mkey, addr, &ok);
        if (r == 0 && !ok)
            (*missing)++;
    }
    kl_memzero(key, sizeof key);
    return r;
}
