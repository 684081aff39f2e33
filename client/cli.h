/* Shared plumbing of the kollega commands: the home directory, the
 * passphrase, opening the store, connecting and authenticating to the
 * relay, printing messages and errors. Commands return the process exit
 * code: KL_EXIT_OK, KL_EXIT_FAIL (operational failure: relay unreachable or
 * refusing, wrong passphrase, key changed) or KL_EXIT_USAGE. Every error is
 * printed to stderr as "kollega: what happened; what to do next". */
#ifndef KOLLEGA_CLIENT_CLI_H
#define KOLLEGA_CLIENT_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cmdline/json.h"
#include "identity.h"
#include "net.h"
#include "store.h"

#define KL_EXIT_OK 0
#define KL_EXIT_FAIL 1
#define KL_EXIT_USAGE 2

#define KL_PATH_MAX 4096

typedef struct kl_cli {
    const char *home_opt;            /* --home, or NULL */
    int json;                        /* --json */
    char home[KL_PATH_MAX];
    char dbpath[KL_PATH_MAX + 32];
    kl_store_t *st;
    kl_identity_t me;
    kl_relay_info_t relay;
    volatile sig_atomic_t *stop;     /* set by SIGINT/SIGTERM in long commands */
} kl_cli_t;

/* Print "kollega: " + message + newline to stderr. */
void kl_cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A warning: "kollega: msg" on stderr (stdout flushed first). With --json,
 * also starts the JSON object {"warning": kind, ...} in *j and returns 1:
 * the caller adds its fields and prints it (kl_cli_json_line). Else 0
 * (j untouched). */
int kl_cli_warn(const kl_cli_t *cli, const char *kind, const char *msg, kl_json_t *j);

/* Resolve the home directory (--home, $KOLLEGA_HOME, $XDG_DATA_HOME/kollega,
 * ~/.local/share/kollega), made absolute, into cli->home and the store's
 * path into cli->dbpath. Exit code, errors said: KL_EXIT_USAGE when none
 * is set or the path is too long, KL_EXIT_FAIL when the current directory
 * cannot be read for a relative one. */
int kl_cli_resolve_home(kl_cli_t *cli);
/* Read the passphrase into buf (cap bytes, NUL-terminated; a longer typed
 * line is cut): $KOLLEGA_PASSPHRASE, else a no-echo prompt on /dev/tty when
 * stdin is a terminal (twice when confirm). Prints nothing else. Returns 0
 * or a kl_err: KL_EINVAL when there is no way to ask (the caller names
 * KOLLEGA_PASSPHRASE), KL_EPASS when the two differ, KL_ETOOBIG when the
 * variable does not fit buf, KL_EIO, KL_ENOMEM. */
int kl_cli_passphrase(char *buf, size_t cap, int confirm);
/* The new passphrase for `kollega passphrase`: $KOLLEGA_NEW_PASSPHRASE,
 * else asked twice without echo on the terminal. Like kl_cli_passphrase. */
int kl_cli_new_passphrase(char *buf, size_t cap);
/* The passphrase a store is to be protected with, asked twice, into
 * pass[KL_STORE_PASS_MAX]: for `kollega init` (change 0,
 * kl_cli_passphrase) or for `kollega passphrase` (change 1,
 * kl_cli_new_passphrase, whose refusals add that nothing was changed).
 * KL_EXIT_OK, else a refusal explained on stderr: KL_EXIT_FAIL when there
 * is none, the two differ or it cannot be read; KL_EXIT_USAGE when it is
 * empty. */
int kl_cli_choose_passphrase(char *pass, int change);
/* Open the store (asking for the passphrase if it has one) into cli->st
 * and load the identity into cli->me and cli->relay. Says on stderr when
 * opening strengthened the store's passphrase wrap. KL_EXIT_OK, or
 * KL_EXIT_FAIL with the error said; kl_cli_close releases what was opened,
 * also after a failure. */
int kl_cli_open(kl_cli_t *cli);
/* kl_cli_open with kl_store_open_flags flags; same exit codes. */
int kl_cli_open_flags(kl_cli_t *cli, unsigned flags);
/* Connect to the relay and authenticate as our address, then publish our
 * delivery token when due and run prekey upkeep (their failures are said
 * on stderr, never returned). KL_EXIT_OK with *conn (close with
 * kl_net_close), or KL_EXIT_FAIL with *conn NULL and the error said. */
int kl_cli_connect(kl_cli_t *cli, kl_net_t **conn);
/* Connect and run the Noise handshake with the pinned relay key, without
 * authenticating: for unidentified delivery (delivery.h). KL_EXIT_OK with
 * *conn (close with kl_net_close), or KL_EXIT_FAIL with *conn NULL and the
 * error said. */
int kl_cli_connect_anonymous(kl_cli_t *cli, kl_net_t **conn);
/* Print a failed relay interaction (kl_net_call result r while doing
 * `what`; conn may be NULL) with advice; returns KL_EXIT_FAIL. */
int kl_cli_relay_fail(kl_net_t *conn, int r, const char *what);
/* Wipe the identity's secret key and close the store (cli->st NULL after);
 * safe to call twice. */
void kl_cli_close(kl_cli_t *cli);

/* Validate a user address typed by the user: exit code, and *out gets the
 * canonical form. A group address is a usage error (2). */
int kl_cli_user_address(const char *s, char *out, size_t cap);

/* Start the JSON object j with its first field, key: value (the caller
 * adds the others and ends it with kl_cli_json_line). */
void kl_cli_json_begin(kl_json_t *j, const char *key, const char *value);
/* In the JSON object j, start an object {"address": address,
 * "identity_key": key in base64url} (a member, a publisher); the caller
 * ends it. */
void kl_cli_json_person(kl_json_t *j, const char *address, const uint8_t key[32]);
/* End the JSON object j, print it as one line, flush stdout and free j. */
void kl_cli_json_line(kl_json_t *j);
/* Start the JSON object about message m: {"id": m's id in hex, ... (the
 * caller adds its fields and ends it, kl_cli_json_line). */
void kl_cli_json_message(kl_json_t *j, const kl_message_t *m);

/* The text argument of a command that sends one (send, channel post):
 * arg itself (*input NULL), or for "-" all of stdin (kl_read_text: at most
 * KL_TEXT_MAX + 3 bytes read, into *input, malloc'd with KL_TEXT_MAX + 4
 * bytes: the caller wipes and frees it; *text points into it). 0 with
 * *text and *len, or KL_EXIT_FAIL when stdin cannot be read (said, naming
 * what). The caller checks the length. */
int kl_cli_text(const char *arg, const char *what, char **input, const char **text, size_t *len);
/* Wipe and free the *input of kl_cli_text (the text may be a secret
 * message); NULL is fine. It cannot fail. */
void kl_cli_text_free(char *input);

/* Print a stored message: a JSON line {"id","from","to","text","sent_at",
 * "direction","seq","stored_at"} (plus "group" = to for group messages)
 * with --json, else "[YYYY-MM-DD HH:MM] from: text" (incoming),
 * "[YYYY-MM-DD HH:MM] you -> to: text" (outgoing) or
 * "[YYYY-MM-DD HH:MM] [#group@relay] from: text" (group; from "you" for our
 * own). Flushes stdout. */
void kl_cli_print_message(const kl_cli_t *cli, const kl_message_t *m);

#endif
