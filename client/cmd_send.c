/* `kollega send ADDRESS TEXT` (TEXT "-" reads stdin). `send #GROUP TEXT`
 * reads and checks TEXT the same way, then goes to cmd_group.c.
 *
 * Order of events, each step only after the previous one succeeded:
 *   connect: without authenticating when the recipient is a contact on our
 *     relay who gave us its delivery token (delivery.h), else as ourselves
 *   lookup (pin on first contact, refuse on a changed key)
 *   prekey_fetch when there is no session yet
 *   encrypt, COMMIT the advanced ratchet (a crash never reuses a key)
 *   send -> sent{seq} (the relay has committed it durably)
 *   store the message in our history; exit 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cmdline/json.h"
#include "contacts.h"
#include "delivery.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "rpc.h"
#include "session.h"
#include "util.h"

static int send_fail(kl_net_t *conn, int r, const char *addr)
{
    int code = r == KL_EREFUSED ? kl_net_relay_error(conn) : 0;
    if (code == KL_WIRE_ERR_QUOTA_EXCEEDED)
        kl_cli_err("the relay did not accept the message: the inbox of %s is full; try again "
                   "after they have received their messages", addr);
    else if (code == KL_WIRE_ERR_RATE_LIMITED)
        kl_cli_err("the relay asks you to slow down (RATE_LIMITED); try again in a moment");
    else
        kl_cli_relay_fail(conn, r, "deliver the message");
    return KL_EXIT_FAIL;
}

/* Check the text the user gave. Exit code. */
static int check_text(const char *text, size_t len)
{
    if (len == 0) {
        kl_cli_err("the message is empty; nothing was sent");
        return KL_EXIT_USAGE;
    }
    if (len > KL_TEXT_MAX) {
        kl_cli_err("the message is too long (%zu bytes; at most %u bytes fit in one message); "
                   "split it up", len, KL_TEXT_MAX);
        return KL_EXIT_USAGE;
    }
    if (!kl_utf8_valid(text, len)) {
        kl_cli_err("the message is not UTF-8 text; nothing was sent");
        return KL_EXIT_USAGE;
    }
    return KL_EXIT_OK;
}

/* The relay does not take the delivery token (it changed, or unidentified
 * delivery is off for that user). */
static int token_refused(kl_net_t *conn, int r)
{
    int code = r == KL_EREFUSED ? kl_net_relay_error(conn) : 0;
    return code == KL_WIRE_ERR_FORBIDDEN || code == KL_WIRE_ERR_UNAUTHENTICATED;
}

/* The relay takes no more unidentified messages to this user now: send
 * identified this time, keeping the token. */
static int unidentified_busy(kl_net_t *conn, int r)
{
    return r == KL_EREFUSED && kl_net_relay_error(conn) == KL_WIRE_ERR_RATE_LIMITED;
}

/* Go on over an authenticated connection (forgetting addr's token when
 * the relay refused it). Exit code. */
static int identify(kl_cli_t *cli, kl_net_t **conn, int *unid, const char *addr, int forget)
{
    kl_net_close(*conn);
    *conn = NULL;
    *unid = 0;
    if (forget && kl_store_begin(cli->st) == 0) {
        if (kl_store_peer_token_delete(cli->st, addr) == 0)
            kl_store_commit(cli->st);
        else
            kl_store_rollback(cli->st);
    }
    return kl_cli_connect(cli, conn);
}

static void print_sent(const kl_cli_t *cli, const kl_message_t *m, int unidentified)
{
    if (!cli->json) {
        printf("Sent to %s%s.\n", m->peer,
               unidentified ? " (the relay was not told who sent it)" : "");
        return;
    }
    kl_json_t j;
    kl_cli_json_message(&j, m);
    kl_json_str(&j, "to", m->peer);
    kl_json_uint(&j, "seq", m->seq);
    kl_json_uint(&j, "sent_at", m->sent_at);
    kl_json_bool(&j, "unidentified", unidentified);
    kl_cli_json_line(&j);
}

int kl_cmd_send(kl_cli_t *cli, const char *address, const char *arg)
{
    const char *text;
    char addr[KL_ADDR_MAX + 1];
    char *input = NULL;
    size_t len = 0, blen = 0;
    uint8_t *body = NULL;
    kl_net_t *conn = NULL;
    kl_contact_t c;
    kl_prekey_bundle_t bundle;
    kl_message_t m;
    uint8_t token[32];
    int unid = 0, m_unidentified = 0;
    int group = address[0] == '#';
    int rc = group ? 0 : kl_cli_user_address(address, addr, sizeof addr), r, has = 0, added = 0;
    if (rc)
        return rc;
    if ((rc = kl_cli_text(arg, "message", &input, &text, &len)))
        return rc;
    if ((rc = check_text(text, len)))
        goto out;
    if (group) {
        rc = kl_cmd_group_send(cli, address, text, len);
        goto out;
    }
    if ((rc = kl_cli_open(cli)))
        goto out;
    if (strcmp(addr, cli->me.address) == 0) {
        kl_cli_err("you cannot send messages to yourself");
        rc = KL_EXIT_USAGE;
        goto out;
    }
    /* A contact who gave us its delivery token is written to without
     * telling the relay who writes (delivery.h); anyone else, or when the
     * token no longer works, the identified way. */
    if (kl_store_peer_token_get(cli->st, addr, token) == 0)
        unid = 1;
    if ((rc = unid ? kl_cli_connect_anonymous(cli, &conn) : kl_cli_connect(cli, &conn)))
        goto out;
    rc = KL_EXIT_FAIL;
    r = kl_contacts_check_send_token(cli->st, conn, addr, unid ? token : NULL, &c);
    if (unid && token_refused(conn, r)) {
        if ((rc = identify(cli, &conn, &unid, addr, 1)))
            goto out;
        rc = KL_EXIT_FAIL;
        r = kl_contacts_check_send(cli->st, conn, addr, &c);
    }
    if (r == KL_EKEYCHANGED) {
        kl_cli_err("the identity key of %s changed; nothing was sent. Compare safety numbers "
                   "with `kollega contact verify %s` and run it with --confirm if they match",
                   addr, addr);
        goto out;
    }
    if (r == KL_ENOTFOUND) {
        kl_cli_err("the relay knows no user %s; check the address", addr);
        goto out;
    }
    /* The recipient's relay cannot be asked right now (federation link
     * down): a contact already pinned is sent to with the pinned key, and
     * our relay queues the message until the link is back. */
    if (r == KL_EREFUSED &&
        kl_net_relay_error(conn) == KL_WIRE_ERR_UNAVAILABLE &&
        kl_store_contact_get(cli->st, addr, &c) == 0 && c.has_key && !c.key_changed) {
        r = 0;
        /* Our relay takes an unidentified send to another relay's user only
         * after that relay confirmed the token: queue it identified, and
         * keep the token for next time. */
        if (unid && (rc = identify(cli, &conn, &unid, addr, 0)))
            goto out;
        rc = KL_EXIT_FAIL;
    }
    if (r) {
        kl_cli_relay_fail(conn, r, "look up the recipient");
        goto out;
    }

    memset(&m, 0, sizeof m);
    kl_random(m.id, KL_MSG_ID);
    m.sent_at = kl_now_ms();
    memcpy(m.peer, addr, sizeof m.peer);
    m.outgoing = 1;
    m.text = text;
    m.text_len = len;
    /* Two tries: a session may vanish between the check and the encryption
     * (another kollega process confirmed a new key); then start afresh. */
    for (int attempt = 0; attempt < 2; attempt++) {
        const kl_prekey_bundle_t *use = NULL;
        if ((r = kl_session_has(cli->st, addr, c.key, &has)))
            break;
        if (!has) {
            /* Prekeys are handed out to identified users only. */
            if (unid && (rc = identify(cli, &conn, &unid, addr, 0)))
                goto out;
            rc = KL_EXIT_FAIL;
            r = kl_rpc_prekey_fetch(conn, addr, &bundle);
            if (r == KL_ENOTFOUND) {
                kl_cli_err("%s has not published encryption keys yet; ask them to run "
                           "`kollega receive` once, then send again", addr);
                goto out;
            }
            if (r) {
                kl_cli_relay_fail(conn, r, "fetch the recipient's prekeys");
                goto out;
            }
            use = &bundle;
        }
        r = kl_session_encrypt(cli->st, &cli->me, addr, c.key, use, m.id, m.sent_at, text, len,
                               &body, &blen);
        if (r != KL_ENOTFOUND)
            break;
    }
    if (r == KL_EKEYCHANGED) {
        kl_cli_err("the relay offered keys of another identity for %s than the one you pinned; "
                   "nothing was sent", addr);
        goto out;
    }
    if (r == KL_ECRYPTO) {
        kl_cli_err("the prekeys of %s are not signed by their identity key; nothing was sent",
                   addr);
        goto out;
    }
    if (r == KL_ETOOBIG) {
        kl_cli_err("the message is too large once encrypted; shorten it");
        rc = KL_EXIT_USAGE;
        goto out;
    }
    if (r) {
        kl_cli_err("cannot encrypt the message (%s)", kl_strerror(r));
        goto out;
    }
    if (unid) {
        r = kl_rpc_send(conn, addr, body, blen, 0, token, &m.seq);
        if (token_refused(conn, r) || unidentified_busy(conn, r)) {
            if ((rc = identify(cli, &conn, &unid, addr, !unidentified_busy(conn, r))))
                goto out;
            rc = KL_EXIT_FAIL;
        } else if (r == 0) {
            m_unidentified = 1;
        }
    }
    if (!unid)
        r = kl_rpc_send(conn, addr, body, blen, 0, NULL, &m.seq);
    if (r) {
        send_fail(conn, r, addr);
        goto out;
    }
    m.stored_at = kl_now_ms();
    if ((r = kl_store_begin(cli->st)) == 0) {
        r = kl_store_message_add(cli->st, &m, &added);
        r = kl_store_end(cli->st, r);
    }
    if (r)
        kl_cli_err("the message was sent, but could not be saved in your history (%s)",
                   kl_strerror(r));
    print_sent(cli, &m, m_unidentified);
    rc = KL_EXIT_OK;
out:
    kl_memzero(token, sizeof token);
    kl_net_close(conn);
    free(body);
    if (input)
        kl_cli_text_free(input);
    return rc;
}
