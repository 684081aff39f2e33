/* `kollega whoami` and `kollega contact add|list|verify|reject`. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "cmdline/json.h"
#include "contacts.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/safety.h"
#include "sync.h"
#include "util.h"

int kl_cmd_whoami(kl_cli_t *cli)
{
    char key[64], rkey[64], where[KL_HOST_MAX + 16];
    uint64_t held = 0, failed = 0, cursor = 0;
    int rc = kl_cli_open(cli);
    if (rc)
        return rc;
    kl_b64_encode(cli->me.pk, 32, key, sizeof key);
    kl_b64_encode(cli->relay.key, 32, rkey, sizeof rkey);
    snprintf(where, sizeof where, strchr(cli->relay.host, ':') ? "[%s]:%u" : "%s:%u",
             cli->relay.host, cli->relay.port);
    kl_store_held_count(cli->st, NULL, &held);
    kl_store_failure_count(cli->st, &failed);
    if (kl_store_get_u64(cli->st, "cursor", &cursor) != 0)
        cursor = 0;
    if (cli->json) {
        kl_json_t j;
        kl_cli_json_begin(&j, "address", cli->me.address);
        kl_json_str(&j, "identity_key", key);
        kl_json_str(&j, "relay", cli->relay.name);
        kl_json_str(&j, "relay_address", where);
        kl_json_str(&j, "relay_key", rkey);
        kl_json_str(&j, "home", cli->home);
        kl_json_uint(&j, "inbox_cursor", cursor);
        kl_json_uint(&j, "held_messages", held);
        kl_json_uint(&j, "failed_messages", failed);
        kl_cli_json_line(&j);
    } else {
        printf("address:      %s\n", cli->me.address);
        printf("identity key: %s\n", key);
        printf("relay:        %s at %s\n", cli->relay.name, where);
        printf("relay key:    %s\n", rkey);
        printf("home:         %s\n", cli->home);
        if (held)
            printf("held:         %llu message(s) from changed keys; see `kollega contact "
                   "list`\n", (unsigned long long)held);
        if (failed)
            printf("unreadable:   %llu message(s) could not be decrypted\n",
                   (unsigned long long)failed);
    }
    return KL_EXIT_OK;
}

/* Why a contact lookup failed, in the user's terms. */
static int contact_fail(kl_net_t *conn, int r, const char *address)
{
    if (r == KL_ENOTFOUND) {
        kl_cli_err("the relay knows no user %s; check the spelling", address);
        return KL_EXIT_FAIL;
    }
    if (r == KL_EKEYCHANGED) {
        kl_cli_err("the identity key of %s changed; compare safety numbers with `kollega "
                   "contact verify %s` and run it with --confirm if they match", address,
                   address);
        return KL_EXIT_FAIL;
    }
    return kl_cli_relay_fail(conn, r, "look up the contact");
}

static void contact_json(kl_json_t *j, const kl_contact_t *c)
{
    char key[64], pend[64];
    kl_cli_json_begin(j, "address", c->address);
    if (c->has_key) {
        kl_b64_encode(c->key, 32, key, sizeof key);
        kl_json_str(j, "identity_key", key);
    } else {
        kl_json_null(j, "identity_key");
    }
    kl_json_bool(j, "verified", c->verified && !c->key_changed);
    kl_json_bool(j, "key_changed", c->key_changed);
    if (c->has_pending) {
        kl_b64_encode(c->pending, 32, pend, sizeof pend);
        kl_json_str(j, "pending_identity_key", pend);
    }
    kl_json_uint(j, "added_at", c->added_at);
}

/* Check a person's address the user typed (into addr, KL_ADDR_MAX + 1
 * bytes) and open the store: someone else's. Exit code. */
static int open_other(kl_cli_t *cli, const char *address, char *addr)
{
    int rc = kl_cli_user_address(address, addr, KL_ADDR_MAX + 1);
    if (rc || (rc = kl_cli_open(cli)))
        return rc;
    if (strcmp(addr, cli->me.address) == 0) {
        kl_cli_err("%s is your own address", addr);
        return KL_EXIT_USAGE;
    }
    return KL_EXIT_OK;
}

int kl_cmd_contact_add(kl_cli_t *cli, const char *address)
{
    char addr[KL_ADDR_MAX + 1];
    kl_net_t *conn = NULL;
    kl_contact_t c;
    int added = 0;
    int rc = open_other(cli, address, addr);
    if (rc)
        return rc;
    if ((rc = kl_cli_connect(cli, &conn)))
        return rc;
    int r = kl_contacts_add(cli->st, conn, addr, &c, &added);
    if (r) {
        rc = contact_fail(conn, r, addr);
        goto out;
    }
    if (cli->json) {
        kl_json_t j;
        contact_json(&j, &c);
        kl_json_bool(&j, "added", added);
        kl_cli_json_line(&j);
    } else if (added) {
        printf("Added %s. Compare safety numbers with `kollega contact verify %s` when you "
               "can.\n", addr, addr);
    } else {
        printf("%s is already a contact.\n", addr);
    }
out:
    kl_net_close(conn);
    return rc;
}

static int list_one(void *ud, const kl_contact_t *c)
{
    const kl_cli_t *cli = ud;
    if (cli->json) {
        kl_json_t j;
        contact_json(&j, c);
        kl_cli_json_line(&j);
        return 0;
    }
    const char *state = c->key_changed ? "KEY CHANGED: verify before writing"
                        : c->verified  ? "verified"
                                       : "not verified";
    printf("%-40s %s\n", c->address, state);
    return 0;
}

int kl_cmd_contact_list(kl_cli_t *cli)
{
    int rc = kl_cli_open(cli);
    if (rc)
        return rc;
    int r = kl_store_contact_list(cli->st, list_one, cli);
    if (r) {
        kl_cli_err("cannot read the contacts (%s)", kl_strerror(r));
        return KL_EXIT_FAIL;
    }
    return KL_EXIT_OK;
}

static void print_verify(const kl_cli_t *cli, const kl_contact_t *c, const uint8_t key[32],
                         const char *number, uint64_t held, size_t released, int confirmed)
{
    char b64[64];
    kl_b64_encode(key, 32, b64, sizeof b64);
    if (cli->json) {
        kl_json_t j;
        kl_cli_json_begin(&j, "address", c->address);
        kl_json_str(&j, "identity_key", b64);
        kl_json_str(&j, "safety_number", number);
        kl_json_bool(&j, "verified", c->verified && !c->key_changed);
        kl_json_bool(&j, "key_changed", c->key_changed);
        kl_json_uint(&j, "held_messages", held);
        if (confirmed)
            kl_json_uint(&j, "released_messages", released);
        kl_cli_json_line(&j);
        return;
    }
    char disp[KL_SAFETY_DISPLAY];
    kl_safety_display(number, disp);
    if (c->key_changed)
        printf("WARNING: the identity key of %s is not the one you pinned at first contact.\n"
               "Sending is refused%s until you have compared the safety number below.\n\n",
               c->address, held ? " and messages from the new key are held" : "");
    printf("Safety number with %s:\n\n", c->address);
    /* 12 groups of 5 digits, shown as three rows of four groups. */
    for (int row = 0; row < 3; row++)
        printf("    %.23s\n", disp + row * 24);
    printf("\n");
    if (confirmed) {
        printf("%s is now verified.\n", c->address);
        if (released)
            printf("%zu held message(s) are now in your history: `kollega history %s`.\n",
                   released, c->address);
    } else if (c->verified && !c->key_changed) {
        printf("You have verified this contact.\n");
    } else {
        printf("Compare this number with %s in person or on a phone call (not through Kollega).\n"
               "If it is the same on both screens, run:\n\n"
               "    kollega contact verify %s --confirm\n",
               c->address, c->address);
    }
}

/* NUMBER as the user typed it (digits, spaces allowed) -> 60 digits in
 * out[KL_SAFETY_DIGITS + 1]; KL_EINVAL for anything else. */
static int number_parse(const char *in, char *out)
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ' ' || *p == '-')
            continue;
        if (*p < '0' || *p > '9' || n == KL_SAFETY_DIGITS)
            return KL_EINVAL;
        out[n++] = *p;
    }
    out[n] = '\0';
    return n == KL_SAFETY_DIGITS ? 0 : KL_EINVAL;
}

/* Decide whether --confirm may accept key: the number typed must be its
 * safety number, or (none typed) key must be the one whose number was
 * shown. An exit code when refused (message printed), else 0. */
static int may_confirm(const kl_contact_t *c, const uint8_t key[32], const char *number,
                       const char *typed)
{
    const char *a = c->address;
    if (typed) {
        char want[KL_SAFETY_DIGITS + 1];
        if (number_parse(typed, want) != 0) {
            kl_cli_err("NUMBER must be the 60-digit safety number (spaces allowed), got '%s'",
                       typed);
            return KL_EXIT_USAGE;
        }
        if (strcmp(want, number) != 0) {
            kl_cli_err("the number you gave is not the safety number of %s's current key; "
                       "nothing was confirmed. Run `kollega contact verify %s` and compare "
                       "again", a, a);
            return KL_EXIT_FAIL;
        }
        return 0;
    }
    if (!c->has_shown) {
        kl_cli_err("no safety number of %s was shown to you yet, so there is nothing to "
                   "confirm: run `kollega contact verify %s`, compare the number with %s, "
                   "then run it again with --confirm", a, a, a);
        return KL_EXIT_FAIL;
    }
    if (kl_memcmp(c->shown, key, 32) != 0) {
        kl_cli_err("the identity key of %s changed after its safety number was shown to you; "
                   "nothing was confirmed. Run `kollega contact verify %s` and compare the new "
                   "number", a, a);
        return KL_EXIT_FAIL;
    }
    return 0;
}

int kl_cmd_contact_verify(kl_cli_t *cli, const char *address, int confirm, const char *typed)
{
    char addr[KL_ADDR_MAX + 1], number[KL_SAFETY_DIGITS + 1];
    kl_contact_t c;
    kl_net_t *conn = NULL;
    uint8_t key[32];
    uint64_t held = 0;
    size_t released = 0;
    int added = 0;
    int rc = open_other(cli, address, addr);
    if (rc)
        return rc;
    int r = kl_store_contact_get(cli->st, addr, &c);
    if (r == KL_ENOTFOUND) {
        /* Not a contact yet: add it the way `contact add` does. */
        if ((rc = kl_cli_connect(cli, &conn)))
            return rc;
        r = kl_contacts_add(cli->st, conn, addr, &c, &added);
        if (r)
            rc = contact_fail(conn, r, addr);
        kl_net_close(conn);
        if (r)
            return rc;
    } else if (r) {
        kl_cli_err("cannot read the contact %s (%s)", addr, kl_strerror(r));
        return KL_EXIT_FAIL;
    }
    const uint8_t *cur = kl_contacts_current_key(&c);
    if (cur == NULL) {
        kl_cli_err("there is no identity key for %s to verify", addr);
        return KL_EXIT_FAIL;
    }
    memcpy(key, cur, 32);
    if ((r = kl_safety_number(cli->me.pk, cli->me.address, key, addr, number))) {
        kl_cli_err("cannot compute the safety number (%s)", kl_strerror(r));
        return KL_EXIT_FAIL;
    }
    if (confirm) {
        if ((rc = may_confirm(&c, key, number, typed)))
            return rc;
        if ((r = kl_contacts_confirm(cli->st, addr, key, &c))) {
            if (r == KL_ESTATE)
                kl_cli_err("the identity key of %s changed meanwhile; nothing was confirmed. "
                           "Run `kollega contact verify %s` and compare the new number", addr,
                           addr);
            else
                kl_cli_err("cannot confirm %s (%s)", addr, kl_strerror(r));
            return KL_EXIT_FAIL;
        }
        kl_sync_t s;
        memset(&s, 0, sizeof s);
        s.st = cli->st;
        s.me = &cli->me;
        if ((r = kl_sync_release_held(&s, addr, &released)))
            kl_cli_err("could not process the held messages from %s (%s)", addr,
                       kl_strerror(r));
    } else if ((r = kl_contacts_shown(cli->st, addr, key))) {
        kl_cli_err("cannot record which safety number was shown (%s)", kl_strerror(r));
        return KL_EXIT_FAIL;
    }
    kl_store_held_count(cli->st, addr, &held);
    print_verify(cli, &c, key, number, held, released, confirm);
    return KL_EXIT_OK;
}

int kl_cmd_contact_reject(kl_cli_t *cli, const char *address)
{
    char addr[KL_ADDR_MAX + 1];
    kl_contact_t c;
    uint64_t dropped = 0;
    int rc = kl_cli_user_address(address, addr, sizeof addr);
    if (rc || (rc = kl_cli_open(cli)))
        return rc;
    int r = kl_contacts_reject(cli->st, addr, &c, &dropped);
    if (r == KL_ENOTFOUND || r == KL_ESTATE) {
        kl_cli_err("%s has no new identity key waiting for your decision; nothing to reject",
                   addr);
        return KL_EXIT_FAIL;
    }
    if (r) {
        kl_cli_err("cannot reject the new key of %s (%s)", addr, kl_strerror(r));
        return KL_EXIT_FAIL;
    }
    if (cli->json) {
        kl_json_t j;
        kl_cli_json_begin(&j, "address", addr);
        kl_json_bool(&j, "rejected", 1);
        kl_json_uint(&j, "dropped_messages", dropped);
        kl_json_bool(&j, "contact_kept", c.has_key);
        kl_cli_json_line(&j);
    } else {
        printf("Rejected the new identity key of %s; %llu held message%s from it deleted.\n",
               addr, (unsigned long long)dropped, dropped == 1 ? "" : "s");
        if (c.has_key)
            printf("%s keeps the key you pinned before. If the relay keeps announcing the new "
                   "one, the contact is flagged again: talk to %s another way.\n", addr, addr);
        else
            printf("%s is no longer a contact.\n", addr);
    }
    return KL_EXIT_OK;
}
