/* `kollega channel create|publisher add|publisher remove|post|subscribe|
 * unsubscribe|list ...` (channels.h has the model).
 *
 * Every command that acts on one channel opens the store, connects, brings
 * the local copy of the channel's publisher log up to date (validating
 * every op) and checks the rules against it before anything is sent: only
 * the owner changes publishers, only a current publisher posts. A
 * publisher's key is looked up through the relay and pinned like a contact
 * (a changed key is refused until verified). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "cmd.h"
#include "cmdline/json.h"
#include "contacts.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "rpc.h"
#include "signedlog.h"
#include "util.h"

const char KL_CHANNEL_HELP[] =
    "Usage: kollega channel create !NAME [--members-only]\n"
    "       kollega channel publisher add !NAME ADDRESS\n"
    "       kollega channel publisher remove !NAME ADDRESS\n"
    "       kollega channel member add !NAME ADDRESS\n"
    "       kollega channel member remove !NAME ADDRESS\n"
    "       kollega channel post !NAME TEXT\n"
    "       kollega channel subscribe !NAME@RELAY [--backlog N]\n"
    "       kollega channel unsubscribe !NAME@RELAY\n"
    "       kollega channel list\n\n"
    "A broadcast channel !NAME@RELAY carries announcements: posts are signed by a\n"
    "publisher and stored once at the relay for all subscribers. !NAME alone means a\n"
    "channel on your own relay. Who may publish is a signed log kept by the channel's\n"
    "owner that every subscriber's kollega checks; a post that does not verify against it\n"
    "is rejected with a warning and never shown.\n"
    "A public channel's posts are signed, not secret. A members-only channel\n"
    "(--members-only) is readable by its members only: the owner, the publishers and\n"
    "the members the owner adds. Posts are encrypted with a channel key that the owner's\n"
    "kollega sends each member end-to-end; the relay stores ciphertext and lets only\n"
    "members subscribe. Removing a member or a publisher starts a new key that the\n"
    "removed one never gets (it keeps what it already read). A post whose key has not\n"
    "arrived yet is kept, with a warning, and shown by the `receive` that brings the key.\n"
    "create       makes you the channel's owner and first publisher.\n"
    "publisher add / remove   (owner only) lets ADDRESS post, or stops it; ADDRESS's key\n"
    "             is looked up at the relay and pinned like a contact.\n"
    "member add / remove      (owner only, members-only channels) lets ADDRESS read the\n"
    "             channel, or stops it.\n"
    "post         publishes TEXT (- reads it from stdin); you must be a publisher.\n"
    "subscribe    follows a channel from now on; --backlog N also fetches up to N of the\n"
    "             latest posts the relay still holds.\n"
    "unsubscribe  stops following it.\n"
    "list         shows your subscriptions and the channels you own, with publishers.\n"
    "`kollega receive` shows posts as \"[!NAME@RELAY] publisher: text\"; `kollega history\n"
    "!NAME@RELAY` shows them again.\n"
    "--json prints one object per command ({channel, action, ...}); `list --json` one\n"
    "object per channel: {channel, subscribed, owned, owner, last_seq, cursor,\n"
    "members_only, epoch, publishers: [{address, identity_key}], members: [{address,\n"
    "identity_key}]}; received posts are {id, channel, from, text, sent_at, verified,\n"
    "seq, stored_at}.\n";

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage(const char *fmt, ...)
{
    va_list ap;
    fputs("kollega: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("; see `kollega channel --help`\n", stderr);
    return KL_EXIT_USAGE;
}

/* The syntax of a channel argument, before the store is open. */
static int chan_syntax(const char *s)
{
    char full[KL_ADDR_MAX + 2];
    if (s[0] != '!')
        return usage("expected a channel like !news or !news@relay (got '%s')", s);
    int n = snprintf(full, sizeof full, "%s%s", s, strchr(s, '@') ? "" : "@relay.example");
    if (n < 0 || (size_t)n >= sizeof full || !kl_channel_addr_valid(full))
        return usage("'%s' is not a channel address: !NAME or !NAME@RELAY, NAME of a-z 0-9 . _ -",
                     s);
    return 0;
}

/* Open the store and resolve the channel address. Exit code. */
static int open_chan(kl_cli_t *cli, const char *name, char *addr)
{
    int rc = kl_cli_open(cli);
    if (rc)
        return rc;
    if (kl_chan_address(cli, name, addr, KL_ADDR_MAX + 1) != 0)
        return usage("'%s' is not a channel address", name);
    return 0;
}

/* A refusal of the relay for an action on chan. Exit code. */
static int chan_fail(kl_net_t *conn, int r, const char *chan, const char *what)
{
    char w[KL_ADDR_MAX + 64];
    if (r == KL_EREFUSED && kl_net_relay_error(conn) == KL_WIRE_ERR_NOT_FOUND &&
        strstr(kl_net_relay_message(conn), "no such channel")) {
        kl_cli_err("there is no channel %s at its relay; check the name, or create it with "
                   "`kollega channel create`", chan);
        return KL_EXIT_FAIL;
    }
    snprintf(w, sizeof w, "%s %s", what, chan);
    return kl_cli_relay_fail(conn, r, w);
}

/* Connect and load + sync chan. need: the channel must exist. Exit code. */
static int prepare(kl_cli_t *cli, const char *addr, kl_net_t **conn, kl_chan_t *x, int need)
{
    int rc = kl_cli_connect(cli, conn);
    if (rc)
        return rc;
    int r = kl_chan_load(cli, addr, x);
    if (r) {
        kl_cli_err("cannot read %s from your store (%s)", addr, kl_strerror(r));
        return KL_EXIT_FAIL;
    }
    r = kl_chan_sync_ops(cli, *conn, x);
    if (r == KL_EREFUSED && !need && kl_net_relay_error(*conn) == KL_WIRE_ERR_NOT_FOUND)
        return 0;
    if (r)
        return chan_fail(*conn, r, addr, "read the publishers of");
    if (x->invalid) {
        kl_cli_err("the publisher log of %s is invalid (see above); refusing to act on it", addr);
        return KL_EXIT_FAIL;
    }
    return 0;
}

static int cmd_create(kl_cli_t *cli, const char *name, int members_only)
{
    char addr[KL_ADDR_MAX + 1];
    kl_net_t *conn = NULL;
    kl_chan_t x;
    kl_channel_verr_t why;
    memset(&x, 0, sizeof x);
    int rc = open_chan(cli, name, addr);
    if (rc == 0)
        rc = prepare(cli, addr, &conn, &x, 0);
    if (rc)
        goto out;
    if (kl_channel_next_index(x.c) > 0) {
        kl_cli_err("%s already exists", addr);
        rc = KL_EXIT_FAIL;
        goto out;
    }
    x.members_only_create = members_only;
    int r = kl_chan_submit(cli, conn, &x, KL_COP_CREATE, NULL, NULL, &why);
    if (r == KL_EREFUSED && kl_net_relay_error(conn) == KL_WIRE_ERR_CONFLICT) {
        kl_cli_err("%s already exists", addr);
        rc = KL_EXIT_FAIL;
        goto out;
    }
    if (r) {
        rc = r == KL_EREFUSED ? chan_fail(conn, r, addr, "create")
                              : (kl_cli_err("cannot create %s (%s)", addr, kl_strerror(r)),
                                 KL_EXIT_FAIL);
        goto out;
    }
    x.row.owned = 1;
    if (members_only) { /* the key of epoch 1, kept for the members to come */
        uint8_t key[KL_CHANNEL_KEY];
        r = kl_chan_own_key(cli, &x, key);
        kl_memzero(key, sizeof key);
    }
    if (r || (r = kl_chan_save_row(cli, &x))) {
        kl_cli_err("created %s but cannot record it in your store (%s)", addr, kl_strerror(r));
        rc = KL_EXIT_FAIL;
        goto out;
    }
    if (cli->json) {
        kl_json_t j;
        kl_cli_json_begin(&j, "channel", addr);
        kl_json_str(&j, "action", "create");
        kl_json_str(&j, "owner", cli->me.address);
        kl_json_bool(&j, "members_only", members_only);
        kl_cli_json_line(&j);
    } else {
        printf("Created %s%s; you are its owner and first publisher.%s\n", addr,
               members_only ? " (members only)" : "",
               members_only ? " Add readers with `kollega channel member add`." : "");
    }
out:
    kl_chan_free(&x);
    kl_net_close(conn);
    return rc;
}

/* The index of address among the n entries that at() reads from x (the
 * publishers or the added members), its key in key; -1 if it is none. */
static int find(const kl_chan_t *x, size_t n,
                int (*at)(const kl_channel_t *c, size_t i, uint8_t key[32], char address[256]),
                const char *address, uint8_t key[32])
{
    for (size_t i = 0; i < n; i++) {
        char a[256];
        if (at(x->c, i, key, a) == 0 && strcmp(a, address) == 0)
            return (int)i;
    }
    return -1;
}

static int find_publisher(const kl_chan_t *x, const char *address, uint8_t key[32])
{
    return find(x, kl_channel_publisher_count(x->c), kl_channel_publisher_at, address, key);
}

static int find_added(const kl_chan_t *x, const char *address, uint8_t key[32])
{
    return find(x, kl_channel_added_count(x->c), kl_channel_added_at, address, key);
}

/* The key of a new publisher or member: looked up at the relay and pinned
 * like a contact. Exit code. */
static int lookup_key(kl_cli_t *cli, kl_net_t *conn, const char *target, uint8_t key[32])
{
    kl_contact_t c;
    int added = 0;
    int r = kl_contacts_add(cli->st, conn, target, &c, &added);
    if (r == KL_ENOTFOUND) {
        kl_cli_err("the relay knows no user %s; check the address", target);
        return KL_EXIT_FAIL;
    }
    if (r == KL_EKEYCHANGED) {
        kl_cli_err("the identity key of %s has changed; compare safety numbers with "
                   "`kollega contact verify %s` first", target, target);
        return KL_EXIT_FAIL;
    }
    if (r)
        return kl_cli_relay_fail(conn, r, "look up the key");
    memcpy(key, c.key, 32);
    return 0;
}

/* Local checks of `channel publisher|member add|remove`: the target's key
 * (looked up for an add) or an error. Exit code. */
static int roster_check(kl_cli_t *cli, kl_net_t *conn, const kl_chan_t *x, int member, int add,
                        const char *addr, const char *target, uint8_t key[32])
{
    uint8_t owner[32];
    if (kl_channel_owner(x->c, owner) != 0 || kl_memcmp(owner, cli->me.pk, 32) != 0) {
        kl_cli_err("only the owner of %s can change its %s", addr,
                   member ? "members" : "publishers");
        return KL_EXIT_FAIL;
    }
    if (member && !kl_channel_members_only(x->c)) {
        kl_cli_err("%s is a public channel: anyone may subscribe, it has no members to manage",
                   addr);
        return KL_EXIT_FAIL;
    }
    int at = member ? find_added(x, target, key) : find_publisher(x, target, key);
    if (add) {
        if (at >= 0 || (member && find_publisher(x, target, key) >= 0)) {
            kl_cli_err(member ? "%s is already a member of %s" : "%s already publishes on %s",
                       target, addr);
            return KL_EXIT_FAIL;
        }
        return lookup_key(cli, conn, target, key);
    }
    if (at < 0) {
        kl_cli_err(member ? "%s is not an added member of %s" : "%s is not a publisher of %s",
                   target, addr);
        return KL_EXIT_FAIL;
    }
    if (kl_memcmp(key, owner, 32) == 0) {
        kl_cli_err("the owner of %s cannot be removed", addr);
        return KL_EXIT_FAIL;
    }
    return 0;
}

/* `channel publisher|member add|remove !x ADDRESS`; in a members-only
 * channel the owner then hands out the channel key (a new one after a
 * removal) to every member who lacks it. */
static int cmd_roster(kl_cli_t *cli, int member, const char *sub, const char *name,
                      const char *who)
{
    char addr[KL_ADDR_MAX + 1], target[KL_ADDR_MAX + 1];
    uint8_t key[32];
    kl_net_t *conn = NULL;
    kl_chan_t x;
    kl_channel_verr_t why;
    size_t missing = 0;
    int add = strcmp(sub, "add") == 0;
    kl_channel_opkind_t kind = member ? (add ? KL_COP_ADD_MEMBER : KL_COP_REMOVE_MEMBER)
                                      : (add ? KL_COP_ADD_PUBLISHER : KL_COP_REMOVE_PUBLISHER);
    memset(&x, 0, sizeof x);
    int rc = kl_cli_user_address(who, target, sizeof target), r;
    if (rc == 0)
        rc = open_chan(cli, name, addr);
    if (rc == 0)
        rc = prepare(cli, addr, &conn, &x, 1);
    if (rc == 0)
        rc = roster_check(cli, conn, &x, member, add, addr, target, key);
    if (rc)
        goto out;
    r = kl_chan_submit(cli, conn, &x, kind, key, add ? target : NULL, &why);
    if (r) {
        rc = r == KL_EREFUSED ? chan_fail(conn, r, addr,
                                          member ? "change the members of"
                                                 : "change the publishers of")
                              : (kl_cli_err("cannot change %s (%s)", addr,
                                            why ? kl_channel_verr_str(why) : kl_strerror(r)),
                                 KL_EXIT_FAIL);
        goto out;
    }
    if (kl_channel_members_only(x.c) && (r = kl_chan_distribute(cli, conn, &x, &missing))) {
        rc = kl_cli_relay_fail(conn, r, "send the channel key");
        goto out;
    }
    if (cli->json) {
        char k[64];
        kl_json_t j;
        kl_b64_encode(key, 32, k, sizeof k);
        kl_cli_json_begin(&j, "channel", addr);
        kl_json_str(&j, "action", member ? (add ? "member_add" : "member_remove")
                                         : (add ? "publisher_add" : "publisher_remove"));
        kl_json_str(&j, member ? "member" : "publisher", target);
        kl_json_str(&j, "identity_key", k);
        kl_json_uint(&j, "publishers", kl_channel_publisher_count(x.c));
        if (kl_channel_members_only(x.c)) {
            kl_json_uint(&j, "members", kl_channel_added_count(x.c));
            kl_json_uint(&j, "epoch", kl_channel_epoch(x.c));
            kl_json_uint(&j, "key_missing", missing);
        }
        kl_cli_json_line(&j);
    } else if (member) {
        printf("%s %s %s.\n", target, add ? "can now read" : "can no longer read", addr);
    } else {
        printf("%s %s %s.\n", target, add ? "can now post on" : "can no longer post on", addr);
    }
    if (!cli->json && kl_channel_members_only(x.c) && !add)
        printf("A new channel key (epoch %llu) went to the remaining members.\n",
               (unsigned long long)kl_channel_epoch(x.c));
out:
    kl_chan_free(&x);
    kl_net_close(conn);
    return rc;
}

/* Build the post of a members-only channel, sealed under the current
 * epoch's key (the owner first hands out keys not yet delivered). Exit
 * code. */
static int sealed_post(kl_cli_t *cli, kl_net_t *conn, const kl_chan_t *x, const kl_message_t *m,
                       const char *text, uint8_t **body, size_t *blen)
{
    uint8_t key[KL_CHANNEL_KEY], owner[32];
    size_t missing = 0;
    uint64_t epoch = kl_channel_epoch(x->c);
    int owned = kl_channel_owner(x->c, owner) == 0 && kl_memcmp(owner, cli->me.pk, 32) == 0;
    int r = owned ? kl_chan_distribute(cli, conn, x, &missing) : 0;
    if (r)
        return kl_cli_relay_fail(conn, r, "send the channel key");
    r = owned ? kl_chan_own_key(cli, x, key) : kl_chan_key_get(cli, x, epoch, key);
    if (r == KL_ENOTFOUND) {
        kl_cli_err("you do not have the key of %s for its current epoch (%llu) yet; the owner's "
                   "kollega sends it: run `kollega receive` and try again", x->address,
                   (unsigned long long)epoch);
        return KL_EXIT_FAIL;
    }
    if (r == 0)
        r = kl_channel_post_build_sealed(x->c, cli->me.sk, cli->me.pk, cli->me.address, m->id,
                                         m->sent_at, key, epoch, text, body, blen);
    kl_memzero(key, sizeof key);
    if (r == KL_ETOOBIG) {
        kl_cli_err("the post is too long for a channel (at most about 48 KiB); split it up");
        return KL_EXIT_USAGE;
    }
    if (r) {
        kl_cli_err("cannot encrypt and sign the post (%s)", kl_strerror(r));
        return KL_EXIT_FAIL;
    }
    return 0;
}

static int cmd_post(kl_cli_t *cli, const char *name, const char *arg)
{
    const char *text;
    char addr[KL_ADDR_MAX + 1];
    char *input = NULL;
    uint8_t *body = NULL;
    size_t len = 0, blen = 0;
    kl_net_t *conn = NULL;
    kl_chan_t x;
    kl_message_t m;
    memset(&x, 0, sizeof x);
    memset(&m, 0, sizeof m);
    int rc = kl_cli_text(arg, "post", &input, &text, &len), r;
    if (rc)
        return rc;
    if (len == 0 || len > KL_TEXT_MAX || !kl_utf8_valid(text, len) || memchr(text, 0, len)) {
        kl_cli_err(len == 0 ? "the post is empty; nothing was sent"
                   : len > KL_TEXT_MAX ? "the post is too long; split it up"
                                       : "the post is not UTF-8 text; nothing was sent");
        rc = KL_EXIT_USAGE;
        goto out;
    }
    if ((rc = open_chan(cli, name, addr)) || (rc = prepare(cli, addr, &conn, &x, 1)))
        goto out;
    if (!kl_channel_is_publisher(x.c, cli->me.pk)) {
        kl_cli_err("you are not a publisher of %s; its owner can add you with `kollega channel "
                   "publisher add`", addr);
        rc = KL_EXIT_FAIL;
        goto out;
    }
    kl_random(m.id, KL_MSG_ID);
    m.sent_at = kl_now_ms();
    if (kl_channel_members_only(x.c)) {
        if ((rc = sealed_post(cli, conn, &x, &m, text, &body, &blen)))
            goto out;
        r = 0;
    } else {
        r = kl_channel_post_build(x.c, cli->me.sk, cli->me.pk, cli->me.address, m.id, m.sent_at,
                                  text, &body, &blen);
    }
    if (r) {
        if (r == KL_ETOOBIG)
            kl_cli_err("the post is too long for a channel (at most about 48 KiB); split it up");
        else
            kl_cli_err("cannot sign the post (%s)", kl_strerror(r));
        rc = r == KL_ETOOBIG ? KL_EXIT_USAGE : KL_EXIT_FAIL;
        goto out;
    }
    if ((r = kl_rpc_send(conn, addr, body, blen, 0, NULL, &m.seq))) {
        rc = chan_fail(conn, r, addr, "publish on");
        goto out;
    }
    /* Our own post goes into our history as posts of others do (same id,
     * so receiving it as a subscriber later adds nothing). */
    snprintf(m.peer, sizeof m.peer, "%s", addr);
    snprintf(m.sender, sizeof m.sender, "%s", cli->me.address);
    m.stored_at = kl_now_ms();
    m.text = text;
    m.text_len = len;
    int added = 0;
    if ((r = kl_chan_save_row(cli, &x)) || (r = kl_store_message_add(cli->st, &m, &added)))
        kl_cli_err("published, but cannot keep the post in your history (%s)", kl_strerror(r));
    if (cli->json) {
        kl_json_t j;
        kl_cli_json_message(&j, &m);
        kl_json_str(&j, "channel", addr);
        kl_json_uint(&j, "seq", m.seq);
        kl_json_uint(&j, "sent_at", m.sent_at);
        kl_cli_json_line(&j);
    } else {
        printf("Posted on %s.\n", addr);
    }
out:
    free(body);
    kl_cli_text_free(input);
    kl_chan_free(&x);
    kl_net_close(conn);
    return rc;
}

/* Our cursor on addr according to channel_list (0 if not listed). */
static int relay_cursor(kl_net_t *conn, const char *addr, uint64_t *cursor, int *listed)
{
    kl_rpc_list_t l;
    *cursor = 0;
    *listed = 0;
    int r = kl_rpc_list(conn, '!', &l);
    if (r)
        return r;
    for (size_t i = 0; i < l.n; i++)
        if (strcmp(l.v[i].address, addr) == 0) {
            *cursor = l.v[i].cursor;
            *listed = 1;
        }
    kl_rpc_list_free(&l);
    return 0;
}

static int cmd_subscribe(kl_cli_t *cli, const char *name, int on, long backlog)
{
    char addr[KL_ADDR_MAX + 1];
    kl_net_t *conn = NULL;
    kl_chan_t x;
    memset(&x, 0, sizeof x);
    int rc = open_chan(cli, name, addr), r, listed = 0;
    uint64_t cursor = 0;
    if (rc == 0)
        rc = prepare(cli, addr, &conn, &x, 1);
    if (rc)
        goto out;
    r = kl_rpc_subscribe(conn, addr, on, (uint32_t)backlog);
    if (r == KL_EREFUSED && !on && kl_net_relay_error(conn) == KL_WIRE_ERR_NOT_FOUND) {
        kl_cli_err("you do not subscribe to %s", addr);
        rc = KL_EXIT_FAIL;
        goto out;
    }
    if (r == 0 && on)
        r = relay_cursor(conn, addr, &cursor, &listed);
    if (r) {
        rc = chan_fail(conn, r, addr, on ? "subscribe to" : "unsubscribe from");
        goto out;
    }
    x.row.subscribed = on;
    if (on && listed)
        x.row.cursor = cursor;
    if ((r = kl_chan_save_row(cli, &x))) {
        kl_cli_err("cannot record the subscription in your store (%s)", kl_strerror(r));
        rc = KL_EXIT_FAIL;
        goto out;
    }
    if (cli->json) {
        kl_json_t j;
        kl_cli_json_begin(&j, "channel", addr);
        kl_json_str(&j, "action", on ? "subscribe" : "unsubscribe");
        if (on) {
            kl_json_uint(&j, "publishers", kl_channel_publisher_count(x.c));
            kl_json_uint(&j, "cursor", cursor);
        }
        kl_cli_json_line(&j);
    } else if (on) {
        printf("Subscribed to %s (%zu publisher%s); `kollega receive` shows its posts.\n", addr,
               kl_channel_publisher_count(x.c), kl_channel_publisher_count(x.c) == 1 ? "" : "s");
    } else {
        printf("Unsubscribed from %s.\n", addr);
    }
out:
    kl_chan_free(&x);
    kl_net_close(conn);
    return rc;
}

int kl_cmd_channel(kl_cli_t *cli, int npos, const char *const *pos, const char *backlog,
                   int members_only)
{
    const char *sub = npos > 1 ? pos[1] : "";
    long n = 0;
    int rc;
    if (backlog && strcmp(sub, "subscribe") != 0)
        return usage("--backlog belongs to `channel subscribe`");
    if (members_only && strcmp(sub, "create") != 0)
        return usage("--members-only belongs to `channel create`");
    if (strcmp(sub, "list") == 0) {
        if (npos != 2)
            return usage("channel list takes no arguments (got '%s')", pos[2]);
        return kl_chan_cmd_list(cli);
    }
    if (strcmp(sub, "publisher") == 0 || strcmp(sub, "member") == 0) {
        const char *op = npos > 2 ? pos[2] : "";
        if (strcmp(op, "add") != 0 && strcmp(op, "remove") != 0)
            return usage("channel %s needs add or remove (got '%s')", sub, op);
        if (npos != 5)
            return usage("channel %s %s needs !NAME and ADDRESS", sub, op);
        if ((rc = chan_syntax(pos[3])))
            return rc;
        return cmd_roster(cli, strcmp(sub, "member") == 0, op, pos[3], pos[4]);
    }
    int create = strcmp(sub, "create") == 0, post = strcmp(sub, "post") == 0;
    int subscribe = strcmp(sub, "subscribe") == 0, unsub = strcmp(sub, "unsubscribe") == 0;
    if (!create && !post && !subscribe && !unsub)
        return usage("channel needs create, publisher, member, post, subscribe, unsubscribe "
                     "or list (got '%s')", sub);
    if (npos != (post ? 4 : 3))
        return usage(post ? "channel %s needs !NAME and TEXT (use - to read TEXT from stdin)"
                          : "channel %s needs exactly one !NAME", sub);
    if ((rc = chan_syntax(pos[2])))
        return rc;
    if (backlog) {
        char *end = NULL;
        n = strtol(backlog, &end, 10);
        if (backlog[0] == '\0' || *end != '\0' || n < 0 || n > 10000)
            return usage("--backlog needs a whole number from 0 to 10000, not '%s'", backlog);
    }
    if (create)
        return cmd_create(cli, pos[2], members_only);
    if (post)
        return cmd_post(cli, pos[2], pos[3]);
    return cmd_subscribe(cli, pos[2], subscribe, n);
}
