/* Shared plumbing of the kollega commands. See cli.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "channels.h"
#include "cli.h"
#include "cmdline/json.h"
#include "delivery.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "prekeys.h"
#include "rpc.h"
#include "signedlog.h"
#include "util.h"

void kl_cli_err(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("kollega: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int kl_cli_resolve_home(kl_cli_t *cli)
{
    const char *v;
    int n = -1;
    if (cli->home_opt && cli->home_opt[0])
        n = snprintf(cli->home, sizeof cli->home, "%s", cli->home_opt);
    else if ((v = getenv("KOLLEGA_HOME")) && v[0])
        n = snprintf(cli->home, sizeof cli->home, "%s", v);
    else if ((v = getenv("XDG_DATA_HOME")) && v[0])
        n = snprintf(cli->home, sizeof cli->home, "%s/kollega", v);
    else if ((v = getenv("HOME")) && v[0])
        n = snprintf(cli->home, sizeof cli->home, "%s/.local/share/kollega", v);
    if (n < 0) {
        kl_cli_err("cannot tell where your Kollega data lives: give --home DIR or set "
                   "KOLLEGA_HOME");
        return KL_EXIT_USAGE;
    }
    /* An absolute path, so what we print (and a later `cd`) cannot mislead. */
    if (cli->home[0] != '/') {
        char cwd[KL_PATH_MAX], rel[KL_PATH_MAX];
        memcpy(rel, cli->home, sizeof rel);
        if (getcwd(cwd, sizeof cwd) == NULL) {
            kl_cli_err("cannot determine the current directory; give --home as an absolute "
                       "path");
            return KL_EXIT_FAIL;
        }
        n = snprintf(cli->home, sizeof cli->home, "%s/%s", cwd, rel);
    }
    if ((size_t)n >= sizeof cli->home) {
        kl_cli_err("the home directory path is too long");
        return KL_EXIT_USAGE;
    }
    snprintf(cli->dbpath, sizeof cli->dbpath, "%s/%s", cli->home, KL_STORE_FILE);
    return KL_EXIT_OK;
}

/* One line from the terminal without echo. */
static int prompt_tty(const char *prompt, char *buf, size_t cap)
{
    struct termios old, quiet;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return KL_EINVAL;
    int r = KL_EIO, restore = 0;
    /* Echo off before the prompt appears, so nothing typed after it is
     * shown or flushed away. */
    if (tcgetattr(fd, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        quiet.c_lflag |= ICANON;
        if (tcsetattr(fd, TCSAFLUSH, &quiet) == 0)
            restore = 1;
    }
    if (write(fd, prompt, strlen(prompt)) < 0)
        goto out;
    size_t n = 0;
    char ch = 0;
    for (;;) {
        ssize_t k = read(fd, &ch, 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0 || ch == '\n')
            break;
        if (n + 1 < cap)
            buf[n++] = ch;
    }
    kl_memzero(&ch, sizeof ch);
    buf[n] = '\0';
    r = 0;
out:
    if (restore)
        tcsetattr(fd, TCSADRAIN, &old);
    ssize_t w = write(fd, "\n", 1);
    (void)w;
    close(fd);
    return r;
}

/* A secret from the environment variable env, else a no-echo prompt on
 * the terminal (asked twice when again is not NULL; KL_EPASS if the two
 * differ). */
static int ask_secret(const char *env, const char *prompt, const char *again_prompt, char *buf,
                      size_t cap)
{
    const char *v = getenv(env);
    if (v) {
        if (strlen(v) >= cap)
            return KL_ETOOBIG;
        memcpy(buf, v, strlen(v) + 1);
        return 0;
    }
    /* Prompt only for an interactive user: a script with stdin redirected
     * must get the error telling it about the variable, not hang. */
    if (!isatty(STDIN_FILENO))
        return KL_EINVAL;
    int r = prompt_tty(prompt, buf, cap);
    if (r || again_prompt == NULL)
        return r;
    char *again = kl_secure_alloc(cap);
    if (again == NULL)
        return KL_ENOMEM;
    r = prompt_tty(again_prompt, again, cap);
    if (r == 0 && strcmp(buf, again) != 0)
        r = KL_EPASS;
    kl_secure_free(again);
    return r;
}

int kl_cli_passphrase(char *buf, size_t cap, int confirm)
{
    return ask_secret("KOLLEGA_PASSPHRASE", "Passphrase for your Kollega store: ",
                      confirm ? "Repeat the passphrase: " : NULL, buf, cap);
}

int kl_cli_new_passphrase(char *buf, size_t cap)
{
    return ask_secret("KOLLEGA_NEW_PASSPHRASE", "New passphrase for your Kollega store: ",
                      "Repeat the new passphrase: ", buf, cap);
}

int kl_cli_choose_passphrase(char *pass, int change)
{
    int r = change ? kl_cli_new_passphrase(pass, KL_STORE_PASS_MAX)
                   : kl_cli_passphrase(pass, KL_STORE_PASS_MAX, 1);
    if (r == KL_EINVAL)
        kl_cli_err(change ? "no new passphrase: set KOLLEGA_NEW_PASSPHRASE (or run in a terminal "
                            "to be asked), or use --no-passphrase to remove it; nothing was "
                            "changed"
                          : "no passphrase: set KOLLEGA_PASSPHRASE (or run in a terminal to be "
                            "asked), or use --no-passphrase to keep your keys unprotected");
    else if (r == KL_EPASS)
        kl_cli_err(change ? "the two new passphrases did not match; nothing was changed, run "
                            "`kollega passphrase` again"
                          : "the two passphrases did not match; run init again");
    else if (r)
        kl_cli_err(change ? "cannot read the new passphrase (%s); nothing was changed"
                          : "cannot read the passphrase (%s)", kl_strerror(r));
    if (r)
        return KL_EXIT_FAIL;
    if (pass[0] == '\0') {
        kl_cli_err("an empty passphrase protects nothing; choose one, or use --no-passphrase%s",
                   change ? "; nothing was changed" : "");
        return KL_EXIT_USAGE;
    }
    return KL_EXIT_OK;
}

static int pass_cb(void *ud, char *buf, size_t cap)
{
    (void)ud;
    return kl_cli_passphrase(buf, cap, 0);
}

int kl_cli_open(kl_cli_t *cli)
{
    return kl_cli_open_flags(cli, 0);
}

int kl_cli_open_flags(kl_cli_t *cli, unsigned flags)
{
    int r = kl_store_open_flags(cli->dbpath, pass_cb, cli, flags, &cli->st);
    switch (r) {
    case 0:
        break;
    case KL_ELIMIT:
        kl_cli_err("the store %s asks for a passphrase derivation beyond what this kollega runs "
                   "(over 1 GiB of memory or 16 passes): the file was altered, or written by a "
                   "newer kollega; update kollega or restore the file from a backup",
                   cli->dbpath);
        return KL_EXIT_FAIL;
    case KL_ENOTFOUND:
        kl_cli_err("there is no Kollega identity in %s yet; create one with `kollega init "
                   "--invite TOKEN --name NAME` (or give --home DIR)", cli->home);
        return KL_EXIT_FAIL;
    case KL_EPASS:
        kl_cli_err("wrong passphrase for the store in %s; nothing was changed, try again",
                   cli->home);
        return KL_EXIT_FAIL;
    case KL_EINVAL:
        kl_cli_err("the store in %s is protected by a passphrase and there is no terminal to "
                   "ask for it: set KOLLEGA_PASSPHRASE", cli->home);
        return KL_EXIT_FAIL;
    case KL_EPROTO:
        kl_cli_err("%s is not a Kollega store this version can read", cli->dbpath);
        return KL_EXIT_FAIL;
    default:
        kl_cli_err("cannot open the store %s (%s)", cli->dbpath, kl_strerror(r));
        return KL_EXIT_FAIL;
    }
    /* Said once: the store is re-wrapped only while its wrap is weak. On
     * stderr, so --json output stays one clean object. KL_ESTATE: another
     * kollega re-wrapped it meanwhile, nothing to say. */
    r = kl_store_upgraded(cli->st);
    if (r == 1)
        kl_cli_err("your store in %s is now sealed under stronger passphrase protection "
                   "(Argon2id, 256 MiB); your passphrase stays the same", cli->home);
    else if (r < 0 && r != KL_ESTATE)
        kl_cli_err("could not strengthen the passphrase protection of %s (%s); it opens as "
                   "before, and the next kollega command tries again", cli->dbpath,
                   kl_strerror(r));
    r = kl_identity_load(cli->st, &cli->me, &cli->relay);
    if (r) {
        kl_cli_err("the store %s holds no usable identity (%s); an earlier init may have "
                   "failed: move the file away and run `kollega init` again",
                   cli->dbpath, kl_strerror(r));
        return KL_EXIT_FAIL;
    }
    return KL_EXIT_OK;
}

void kl_cli_close(kl_cli_t *cli)
{
    kl_identity_wipe(&cli->me);
    kl_store_close(cli->st);
    cli->st = NULL;
}

int kl_cli_relay_fail(kl_net_t *conn, int r, const char *what)
{
    if (r == -EINTR) {
        kl_cli_err("interrupted while trying to %s", what);
    } else if (r == KL_EREFUSED) {
        const char *msg = kl_net_relay_message(conn);
        kl_cli_err("the relay refused to %s (%s%s%s)", what,
                   kl_wire_error_name(kl_net_relay_error(conn)), msg[0] ? ": " : "", msg);
    } else if (conn) {
        kl_cli_err("could not %s: %s; try again later", what, kl_net_error(conn));
    } else {
        kl_cli_err("could not %s (%s)", what, kl_strerror(r));
    }
    return KL_EXIT_FAIL;
}

int kl_cli_warn(const kl_cli_t *cli, const char *kind, const char *msg, kl_json_t *j)
{
    fflush(stdout);
    fprintf(stderr, "kollega: %s\n", msg);
    if (!cli->json)
        return 0;
    kl_cli_json_begin(j, "warning", kind);
    return 1;
}

/* Prekey upkeep on every authenticated connection, so that a user whose
 * one-time prekeys were used up refills at their next command of any
 * kind. When the relay says they ran out, the user is told (stderr, and a
 * JSON warning line with --json): people who started a conversation with
 * them meanwhile did so without one. A failure here does not fail the
 * command: it is reported and retried at the next connection. */
static void prekey_upkeep(kl_cli_t *cli, kl_net_t *conn)
{
    kl_prekey_upkeep_t up;
    char msg[512], when[64];
    int r = kl_prekeys_maintain(cli->st, &cli->me, conn, &up);
    if (r && r != -EINTR)
        kl_cli_relay_fail(conn, r, "publish new prekeys (others may not be able to start "
                                   "conversations with you until this works; it is retried "
                                   "at your next command)");
    if (up.ran_out == 0)
        return;
    kl_format_time(up.ran_out_since_ms, when, sizeof when);
    if (r == 0)
        snprintf(msg, sizeof msg,
                 "your one-time prekeys ran out %u time%s since %s (conversations started "
                 "with you then had weaker protection for their first messages); %zu new "
                 "ones were uploaded",
                 up.ran_out, up.ran_out == 1 ? "" : "s", when, up.uploaded);
    else
        snprintf(msg, sizeof msg,
                 "your one-time prekeys ran out %u time%s since %s, and new ones could not "
                 "be uploaded yet: run any kollega command again later",
                 up.ran_out, up.ran_out == 1 ? "" : "s", when);
    kl_json_t j;
    if (!kl_cli_warn(cli, "prekeys_ran_out", msg, &j))
        return;
    kl_json_uint(&j, "ran_out", up.ran_out);
    kl_json_uint(&j, "since", up.ran_out_since_ms);
    kl_json_uint(&j, "uploaded", r == 0 ? up.uploaded : 0);
    kl_json_str(&j, "message", msg);
    kl_cli_json_line(&j);
}

int kl_cli_connect_anonymous(kl_cli_t *cli, kl_net_t **conn)
{
    char err[512];
    *conn = NULL;
    int r = kl_net_open(cli->relay.host, cli->relay.port, cli->relay.key, cli->stop, conn, err,
                         sizeof err);
    if (r) {
        if (r == -EINTR)
            kl_cli_err("interrupted while connecting to the relay");
        else
            kl_cli_err("%s", err);
        return KL_EXIT_FAIL;
    }
    return KL_EXIT_OK;
}

int kl_cli_connect(kl_cli_t *cli, kl_net_t **conn)
{
    uint8_t msg[128], sig[KL_SIG];
    size_t mlen = 0;
    int r = kl_cli_connect_anonymous(cli, conn);
    if (r)
        return r;
    if ((r = kl_wire_auth_msg(kl_net_handshake_hash(*conn), msg, sizeof msg, &mlen)) ||
        (r = kl_sign(cli->me.sk, msg, mlen, sig)))
        goto fail;
    r = kl_rpc_auth(*conn, cli->me.address, sig);
    if (r == KL_EREFUSED && kl_net_relay_error(*conn) == KL_WIRE_ERR_UNAUTHENTICATED) {
        kl_cli_err("the relay %s does not accept %s (UNAUTHENTICATED); was the relay reset, or "
                   "is this the right --home?", cli->relay.name, cli->me.address);
        goto out;
    }
    if (r == 0) {
        /* Our contacts may write to us without identifying themselves:
         * the relay must know our delivery token (once per token). */
        int d = kl_delivery_publish(cli->st, *conn);
        if (d && d != KL_EREFUSED && d != KL_EIO && d != KL_ETIMEDOUT)
            kl_cli_err("could not record your delivery token (%s); contacts write to you "
                       "the identified way until it works", kl_strerror(d));
        prekey_upkeep(cli, *conn);
        return KL_EXIT_OK;
    }
fail:
    kl_cli_relay_fail(*conn, r, "log in to the relay");
out:
    kl_net_close(*conn);
    *conn = NULL;
    return KL_EXIT_FAIL;
}

int kl_cli_user_address(const char *s, char *out, size_t cap)
{
    kl_addr_t a;
    if (s[0] == '#') {
        kl_cli_err("'%s' is a group; a person's address is needed here (like "
                   "kari@oslo.example.org)", s);
        return KL_EXIT_USAGE;
    }
    if (kl_addr_parse(s, &a) != 0 || a.is_group || kl_addr_format(&a, out, cap) != 0) {
        kl_cli_err("'%s' is not a Kollega address; addresses look like kari@oslo.example.org",
                   s);
        return KL_EXIT_USAGE;
    }
    return KL_EXIT_OK;
}

void kl_cli_json_begin(kl_json_t *j, const char *key, const char *value)
{
    kl_json_init(j);
    kl_json_obj_begin(j, NULL);
    kl_json_str(j, key, value);
}

void kl_cli_json_person(kl_json_t *j, const char *address, const uint8_t key[32])
{
    char k[64];
    kl_b64_encode(key, 32, k, sizeof k);
    kl_json_obj_begin(j, NULL);
    kl_json_str(j, "address", address);
    kl_json_str(j, "identity_key", k);
}

void kl_cli_json_line(kl_json_t *j)
{
    kl_json_obj_end(j);
    if (kl_json_cstr(j))
        printf("%s\n", kl_json_cstr(j));
    fflush(stdout);
    kl_json_free(j);
}

void kl_cli_json_message(kl_json_t *j, const kl_message_t *m)
{
    char hex[2 * KL_MSG_ID + 1];
    kl_hex_encode(m->id, KL_MSG_ID, hex, sizeof hex);
    kl_cli_json_begin(j, "id", hex);
}

void kl_cli_text_free(char *input)
{
    if (input)
        kl_free_wipe(input, KL_TEXT_MAX + 4); /* kl_read_text's whole buffer */
}

int kl_cli_text(const char *arg, const char *what, char **input, const char **text, size_t *len)
{
    *input = NULL;
    *text = arg;
    *len = strlen(arg);
    if (strcmp(arg, "-") != 0)
        return 0;
    int r = kl_read_text(stdin, KL_TEXT_MAX, input, len);
    if (r) {
        kl_cli_err("cannot read the %s from stdin (%s)", what, kl_strerror(r));
        return KL_EXIT_FAIL;
    }
    *text = *input;
    return 0;
}

void kl_cli_print_message(const kl_cli_t *cli, const kl_message_t *m)
{
    if (m->peer[0] == '!') { /* a broadcast channel post (channels.c) */
        kl_chan_print_post(cli, m);
        return;
    }
    int group = m->peer[0] == '#';
    const char *from = m->outgoing ? cli->me.address : group ? m->sender : m->peer;
    const char *to = m->outgoing || group ? m->peer : cli->me.address;
    if (cli->json) {
        kl_json_t j;
        kl_cli_json_message(&j, m);
        kl_json_str(&j, "from", from);
        kl_json_str(&j, "to", to);
        kl_json_strn(&j, "text", m->text, m->text_len);
        kl_json_uint(&j, "sent_at", m->sent_at);
        kl_json_str(&j, "direction", m->outgoing ? "out" : "in");
        kl_json_uint(&j, "seq", m->seq);
        kl_json_uint(&j, "stored_at", m->stored_at);
        if (group)
            kl_json_str(&j, "group", m->peer);
        kl_cli_json_line(&j);
        return;
    }
    char when[32];
    kl_format_time(m->sent_at, when, sizeof when);
    if (group)
        printf("[%s] [%s] %s: ", when, m->peer, m->outgoing ? "you" : from);
    else if (m->outgoing)
        printf("[%s] you -> %s: ", when, to);
    else
        printf("[%s] %s: ", when, from);
    kl_print_safe(stdout, m->text, m->text_len, "    ");
    putchar('\n');
    fflush(stdout);
}
