/* `kollega channel list` (channels.h): the relay's subscriptions and the
 * channels we own, each with its validated publishers and, for a
 * members-only channel, its key epoch and added members. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "cmdline/json.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "rpc.h"
#include "signedlog.h"
#include "util.h"

/* ---- list ---------------------------------------------------------------- */

/* Channels one list shows (the relay lists at most 256 subscriptions). */
#define LIST_MAX 512

typedef struct item {
    char address[KL_ADDR_MAX + 1];
    int subscribed, owned;
    uint64_t last_seq, cursor;
} item_t;

typedef struct items {
    item_t *v;
    size_t n, cap;
} items_t;

static item_t *item_get(items_t *it, const char *address)
{
    for (size_t i = 0; i < it->n; i++)
        if (strcmp(it->v[i].address, address) == 0)
            return &it->v[i];
    if (it->n == it->cap)
        return NULL;
    item_t *x = &it->v[it->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->address, sizeof x->address, "%s", address);
    return x;
}

static int collect_owned(void *ud, const kl_store_channel_t *c)
{
    if (c->owned) {
        item_t *x = item_get(ud, c->address);
        if (x)
            x->owned = 1;
    }
    return 0;
}

/* The members part of a list item (ends the publishers array). */
static void print_members(kl_cli_t *cli, const kl_chan_t *x, kl_json_t *j)
{
    int mo = x != NULL && kl_channel_members_only(x->c);
    size_t n = mo ? kl_channel_added_count(x->c) : 0;
    if (cli->json) {
        kl_json_arr_end(j);
        kl_json_bool(j, "members_only", mo);
        if (mo)
            kl_json_uint(j, "epoch", kl_channel_epoch(x->c));
        kl_json_arr_begin(j, "members");
    } else if (mo) {
        printf("    members only (key epoch %llu)\n", (unsigned long long)kl_channel_epoch(x->c));
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t key[32];
        char a[256];
        if (kl_channel_added_at(x->c, i, key, a) != 0)
            continue;
        if (cli->json) {
            kl_cli_json_person(j, a, key);
            kl_json_obj_end(j);
        } else {
            printf("    member %s\n", a);
        }
    }
    if (cli->json)
        kl_json_arr_end(j);
}

static void print_item(kl_cli_t *cli, kl_net_t *conn, const item_t *it)
{
    kl_chan_t x;
    uint8_t owner[32];
    memset(&x, 0, sizeof x);
    int ok = kl_chan_load(cli, it->address, &x) == 0;
    if (ok && kl_chan_sync_ops(cli, conn, &x) != 0)
        kl_cli_err("cannot read the publishers of %s: %s", it->address, kl_net_error(conn));
    size_t np = ok ? kl_channel_publisher_count(x.c) : 0;
    int has_owner = ok && kl_channel_owner(x.c, owner) == 0;
    kl_json_t j;
    if (cli->json) {
        kl_cli_json_begin(&j, "channel", it->address);
        kl_json_bool(&j, "subscribed", it->subscribed);
        kl_json_bool(&j, "owned", it->owned);
        kl_json_uint(&j, "last_seq", it->last_seq);
        kl_json_uint(&j, "cursor", it->cursor);
        kl_json_bool(&j, "valid", ok && !x.invalid);
        kl_json_arr_begin(&j, "publishers");
    } else {
        printf("%s%s%s\n", it->address, it->owned ? "  (owner: you)" : "",
               it->subscribed ? "  subscribed" : "");
    }
    for (size_t i = 0; i < np; i++) {
        uint8_t key[32];
        char a[256];
        if (kl_channel_publisher_at(x.c, i, key, a) != 0)
            continue;
        int is_owner = has_owner && kl_memcmp(key, owner, 32) == 0;
        if (cli->json) {
            kl_cli_json_person(&j, a, key);
            kl_json_bool(&j, "owner", is_owner);
            kl_json_obj_end(&j);
        } else {
            printf("    publisher %s%s\n", a, is_owner ? " (owner)" : "");
        }
    }
    print_members(cli, ok ? &x : NULL, &j);
    if (cli->json)
        kl_cli_json_line(&j);
    if (ok)
        kl_chan_free(&x);
}

int kl_chan_cmd_list(kl_cli_t *cli)
{
    kl_net_t *conn = NULL;
    kl_rpc_list_t l = {NULL, 0, NULL};
    items_t it = {NULL, 0, LIST_MAX};
    int rc = kl_cli_open(cli), r;
    if (rc)
        return rc;
    if ((rc = kl_cli_connect(cli, &conn)))
        return rc;
    it.v = calloc(it.cap, sizeof *it.v);
    if (it.v == NULL || (r = kl_store_channel_schema(cli->st)) != 0) {
        kl_cli_err("out of memory or cannot read your store");
        rc = KL_EXIT_FAIL;
        goto out;
    }
    if ((r = kl_rpc_list(conn, '!', &l))) {
        rc = kl_cli_relay_fail(conn, r, "list your subscriptions");
        goto out;
    }
    for (size_t i = 0; i < l.n; i++) {
        char addr[KL_ADDR_MAX + 1];
        item_t *x;
        if (kl_chan_address(cli, l.v[i].address, addr, sizeof addr) != 0 ||
            (x = item_get(&it, addr)) == NULL)
            continue;
        x->subscribed = 1;
        x->last_seq = l.v[i].last_seq;
        x->cursor = l.v[i].cursor;
    }
    if ((r = kl_store_channel_each(cli->st, collect_owned, &it))) {
        kl_cli_err("cannot read your channels from the store (%s)", kl_strerror(r));
        rc = KL_EXIT_FAIL;
        goto out;
    }
    for (size_t i = 0; i < it.n; i++)
        print_item(cli, conn, &it.v[i]);
    if (it.n == 0 && !cli->json)
        printf("No channels: subscribe with `kollega channel subscribe !NAME@RELAY`.\n");
out:
    kl_rpc_list_free(&l);
    free(it.v);
    kl_net_close(conn);
    return rc;
}

