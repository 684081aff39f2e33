/* The group half of `receive`: group_list, then per group its ops,
 * notices, key distribution, its message log after our cursor (each entry
 * through kl_grp_entry in group_msg.c), pending entries, retention; and
 * forgetting a group's keys after we left. See group.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "rpc.h"
#include "store_group.h"
#include "util.h"

#define FETCH_LIMIT 100
#define MAX_FETCH_ROUNDS 1000
#define DAY_MS (24ull * 3600ull * 1000ull)
/* A relay keeps a group's entries at most this long when the group sets
 * no retention (its default TTL). */
#define KEY_TTL_DAYS 30ull
/* Groups one receive visits beyond those the relay lists. */
#define MAX_KNOWN 256

/* Fetch the group's log after our cursor; each entry is stored (message,
 * pending or failure) before the batch is acked. */
static int fetch_log(kl_grp_rx_t *c, kl_net_t *conn)
{
    for (int round = 0; round < MAX_FETCH_ROUNDS; round++) {
        kl_store_group_t row;
        kl_rpc_batch_t b;
        uint64_t top = 0;
        /* No row yet: cursor 0, from the start. */
        int r = kl_store_group_row(c->cli->st, c->x->address, &row);
        if (r || (r = kl_rpc_fetch(conn, c->x->address, row.cursor, FETCH_LIMIT, &b)))
            return r;
        int more = b.more && b.n > 0;
        for (size_t i = 0; r == 0 && i < b.n; i++) {
            const kl_rpc_entry_t *e = &b.entries[i];
            r = kl_grp_entry(c, e->seq, e->ts, e->body, e->len);
            if (r == 0 && e->seq > top)
                top = e->seq;
        }
        kl_rpc_batch_free(&b);
        if (top) {
            int ar = kl_rpc_ack(conn, c->x->address, top);
            r = r ? r : ar;
        }
        if (r || !more || top <= row.cursor)
            return r;
    }
    return 0;
}

static int keep_key_of(void *ud, const uint8_t owner[32])
{
    return kl_group_was_member(((const kl_grp_t *)ud)->g, owner, NULL);
}

/* Retention: messages older than the group's retention leave history, and
 * the keys of departed members go once nobody can send us what they wrote
 * (the group's retention, else the relay's default TTL), or once the log
 * no longer remembers them (KL_GROUP_MAX_DEPARTED). */
static int purge(kl_cli_t *cli, const kl_grp_t *x)
{
    uint32_t days = kl_group_retention_days(x->g);
    uint64_t now = kl_now_ms(), n = 0;
    uint64_t keep_ms = (days ? days : KEY_TTL_DAYS) * DAY_MS;
    int r = kl_store_begin(cli->st);
    if (r)
        return r;
    if (days && now >= days * DAY_MS)
        r = kl_store_group_purge(cli->st, x->address, now - days * DAY_MS, &n);
    if (r == 0 && !x->invalid && kl_group_next_index(x->g) > 0)
        r = kl_store_senderkey_prune(cli->st, x->address, now > keep_ms ? now - keep_ms : 0,
                                     keep_key_of, (void *)x);
    r = kl_store_end(cli->st, r);
    return r;
}

static int retention_cb(void *ud, const kl_store_group_t *g)
{
    kl_cli_t *cli = ud;
    kl_grp_t x;
    int r = kl_grp_load(cli, g->address, &x);
    if (r)
        return r;
    r = purge(cli, &x);
    kl_grp_free(&x);
    return r;
}

int kl_grp_retention_all(kl_cli_t *cli)
{
    return kl_store_group_each(cli->st, retention_cb, cli);
}

/* Notices shown once: invited, admitted, removed. */
static int notices(kl_cli_t *cli, kl_grp_t *x)
{
    kl_store_group_t row;
    int r = kl_store_group_get(cli->st, x->address, &row);
    if (r)
        return r == KL_ENOTFOUND ? 0 : r;
    uint32_t before = row.notified;
    int member = kl_group_role_of(x->g, cli->me.pk) != KL_ROLE_NONE;
    int candidate = 0;
    kl_group_candidate_t cd;
    for (size_t i = 0; i < kl_group_candidate_count(x->g); i++)
        if (kl_group_candidate_at(x->g, i, &cd) == 0 && kl_memcmp(cd.key, cli->me.pk, 32) == 0)
            candidate = 1;
    if (candidate && x->invited_by[0] && !(row.notified & KL_GNOTE_INVITED)) {
        kl_grp_notice(cli, x->address, "invited", x->invited_by,
                      "You were invited to %s by %s. It becomes yours once the members agree; "
                      "see `kollega group members %s`.", x->address, x->invited_by, x->address);
        row.notified |= KL_GNOTE_INVITED;
    }
    if (member && x->admitted && !(row.notified & KL_GNOTE_ADMITTED)) {
        kl_grp_notice(cli, x->address, "admitted", NULL,
                      "You are now a member of %s; write with `kollega send %s TEXT`.",
                      x->address, x->address);
        row.notified |= KL_GNOTE_ADMITTED;
    }
    if (!member && x->removed && !(row.notified & KL_GNOTE_LEFT)) {
        kl_grp_notice(cli, x->address, "removed", x->removed_by,
                      "You were removed from %s by %s.", x->address, x->removed_by);
        row.notified |= KL_GNOTE_LEFT;
    }
    if (row.notified == before)
        return 0;
    if ((r = kl_store_begin(cli->st)))
        return r;
    r = kl_store_group_put(cli->st, &row);
    r = kl_store_end(cli->st, r);
    return r;
}

/* One group: ops, notices, keys, log, pending, retention. listed_member:
 * the relay lists us as a member (so it lets us fetch the log). */
static int receive_group(kl_cli_t *cli, kl_net_t *conn, kl_sync_t *s, const char *grp,
                         int listed_member)
{
    kl_grp_t x;
    kl_grp_rx_t c;
    size_t left = 0;
    int r = kl_grp_load(cli, grp, &x);
    if (r)
        return r;
    r = kl_grp_sync_ops(cli, conn, &x);
    if (r == KL_EREFUSED) {
        /* Not (or no longer) allowed to read this group's log. */
        r = 0;
    } else if (r == 0) {
        r = notices(cli, &x);
        if (r == 0 && listed_member)
            r = kl_grp_distribute(cli, conn, &x);
        memset(&c, 0, sizeof c);
        c.cli = cli;
        c.s = s;
        c.x = &x;
        c.conn = conn;
        if (r == 0 && listed_member) {
            r = fetch_log(&c, conn);
            /* Removed between group_list and the fetch: nothing to read. */
            if (r == KL_EREFUSED)
                r = 0;
        }
        if (r == 0)
            r = kl_grp_retry_pending(&c, &left);
        int gone = kl_group_role_of(x.g, cli->me.pk) == KL_ROLE_NONE;
        if (r == 0 && (c.pending_new || (left && gone)))
            kl_grp_warn(cli, grp, "undecryptable",
                        "%zu message%s cannot be decrypted (no sender key from %s author%s); "
                        "kept and retried when keys arrive", left, left == 1 ? "" : "s",
                        left == 1 ? "its" : "their", left == 1 ? "" : "s");
        if (r == 0 && c.failed)
            kl_grp_warn(cli, grp, "undecryptable", "%zu message%s could not be decrypted",
                        c.failed, c.failed == 1 ? "" : "s");
        if (r == 0 && c.dropped)
            kl_grp_warn(cli, grp, "pending_dropped",
                        "%llu undecryptable message%s dropped: at most %d are kept per group",
                        (unsigned long long)c.dropped, c.dropped == 1 ? " was" : "s were",
                        KL_GPENDING_MAX);
        if (r == 0 && x.invalid == 0 && x.fork_index)
            kl_grp_warn(cli, grp, "fork",
                        "the relay showed you two different operations at index %llu of this "
                        "group (a fork): it shows members different histories. Nothing is sent "
                        "and no group key is given in this group; start a new group with the "
                        "members you trust", (unsigned long long)(x.fork_index - 1));
        /* Gone from the group: its keys and pending entries are of no use. */
        if (r == 0 && gone && (x.removed || x.left))
            r = kl_grp_forget(cli, grp);
    }
    if (r == 0)
        r = purge(cli, &x);
    kl_grp_free(&x);
    return r;
}

int kl_grp_forget(kl_cli_t *cli, const char *grp)
{
    int r = kl_store_begin(cli->st);
    if (r)
        return r;
    r = kl_store_group_forget(cli->st, grp);
    r = kl_store_end(cli->st, r);
    return r;
}

int kl_grp_know_listed(kl_cli_t *cli, kl_net_t *conn)
{
    kl_rpc_list_t l;
    int r = kl_rpc_list(conn, '#', &l);
    if (r)
        return r;
    for (size_t i = 0; r == 0 && i < l.n && i < MAX_KNOWN; i++) {
        kl_store_group_t row;
        char addr[KL_ADDR_MAX + 1];
        if (kl_grp_address(cli, l.v[i].address, addr, sizeof addr))
            continue;
        if ((r = kl_store_group_get(cli->st, addr, &row)) == KL_ENOTFOUND &&
            (r = kl_store_begin(cli->st)) == 0)
            r = kl_store_end(cli->st, kl_store_group_add(cli->st, addr));
    }
    kl_rpc_list_free(&l);
    return r;
}

typedef struct known {
    size_t n;
    char (*addr)[KL_ADDR_MAX + 1];
} known_t;

static int collect_known(void *ud, const kl_store_group_t *g)
{
    known_t *k = ud;
    if (k->n >= MAX_KNOWN)
        return 0;
    memcpy(k->addr[k->n++], g->address, KL_ADDR_MAX + 1);
    return 0;
}

int kl_grp_receive_all(kl_cli_t *cli, kl_net_t *conn, kl_sync_t *s)
{
    kl_rpc_list_t l;
    known_t k;
    int r = kl_rpc_list(conn, '#', &l);
    if (r)
        return r;
    memset(&k, 0, sizeof k);
    k.addr = calloc(MAX_KNOWN, sizeof *k.addr);
    if (k.addr == NULL) {
        kl_rpc_list_free(&l);
        return KL_ENOMEM;
    }
    /* Groups we know but the relay no longer lists (we left or were
     * removed) are visited too, so their last ops and notices arrive. */
    r = kl_store_group_each(cli->st, collect_known, &k);
    for (size_t i = 0; r == 0 && i < l.n; i++) {
        char addr[KL_ADDR_MAX + 1];
        if (kl_grp_address(cli, l.v[i].address, addr, sizeof addr))
            continue;
        r = receive_group(cli, conn, s, addr, l.v[i].member);
        for (size_t j = 0; j < k.n; j++)
            if (strcmp(k.addr[j], addr) == 0)
                k.addr[j][0] = '\0';
    }
    for (size_t j = 0; r == 0 && j < k.n; j++)
        if (k.addr[j][0])
            r = receive_group(cli, conn, s, k.addr[j], 0);
    free(k.addr);
    kl_rpc_list_free(&l);
    return r;
}
