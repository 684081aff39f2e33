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
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "signedlog.h"

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
        r = kl_store_end(cli->st, r);
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
    kl_content_t ct = {.has_ckey = 1, .ckey_epoch = epoch};
    kl_slog_give_t out;
    int err = 0;
    snprintf(ct.ckey_channel, sizeof ct.ckey_channel, "%s", x->address);
    memcpy(ct.ckey, key, KL_CHANNEL_KEY);
    int r = kl_slog_give_key(cli, conn, x->address, epoch, mkey, addr, &ct, &out, &err);
    kl_memzero(ct.ckey, sizeof ct.ckey);
    *ok = r == 0 && (out == KL_SLOG_HAD || out == KL_SLOG_GIVEN);
    if (r == 0 && out == KL_SLOG_CONFLICT)
        kl_slog_warn(cli, x->address, "key_conflict",
                     "%s's identity key in %s differs from the one you pinned; they do not get "
                     "the channel key until you check it with `kollega contact verify %s`",
                     addr, x->address, addr);
    else if (r == 0 && out == KL_SLOG_UNREACHABLE)
        kl_slog_warn(cli, x->address, "key_not_sent",
                     "could not give the key of %s to %s (%s); they cannot read its posts until "
                     "this works (retried at your next post, member change or receive)",
                     x->address, addr,
                     err == KL_ENOTFOUND ? "they have published no prekeys" : kl_strerror(err));
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
