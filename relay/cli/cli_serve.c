/* kollega-relay serve: run the relay (initialising the data directory
 * when it is empty). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "base/tcpaddr.h"
#include "cli_admin.h"
#include "net/control.h"
#include "cli.h"
#include "config.h"
#include "keyfile.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "base/diag.h"

/* Host name, lower-cased, if it is a valid relay name; else "localhost". */
static void default_name(char *out, size_t cap)
{
    char h[256];
    snprintf(out, cap, "localhost");
    if (gethostname(h, sizeof h) != 0)
        return;
    h[sizeof h - 1] = '\0';
    for (char *p = h; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (kl_relayname_valid(h) && strlen(h) < cap)
        memcpy(out, h, strlen(h) + 1);
}

/* Let the relay hold max_connections sockets plus its own files. */
static void raise_fd_limit(uint32_t conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)conns + 64;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        kl_diag(KL_DIAG_WARN, "open file limit %llu is below --max-connections %u: raise it "
               "(ulimit -n) or expect refused connections", (unsigned long long)rl.rlim_cur,
               conns);
}

static void print_serve(const kl_cli_opts_t *o, const char *bound, const char *name, const char *key,
                        const char *token, uint64_t expires, const char *no_invite,
                        const char *metrics)
{
    char when[32];
    kl_json_t j;
    if (o->json) {
        kl_cli_json_begin(&j);
        kl_json_str(&j, "event", "listening");
        kl_json_str(&j, "address", bound);
        kl_json_str(&j, "name", name);
        kl_json_str(&j, "public_key", key);
        if (metrics[0])
            kl_json_str(&j, "metrics_address", metrics);
        kl_cli_json_end(&j);
    } else {
        printf("listening on %s (relay %s, public key %s)\n", bound, name, key);
    }
    if (token[0]) {
        kl_admin_time(expires, when, sizeof when);
        if (o->json) {
            kl_cli_json_begin(&j);
            kl_json_str(&j, "event", "invite");
            kl_json_str(&j, "token", token);
            kl_json_uint(&j, "uses", 1);
            kl_json_str(&j, "expires_at", when);
            kl_cli_json_end(&j);
        } else {
            printf("invite (1 use, expires %s): %s\n", when, token);
        }
    }
    if (no_invite) {
        if (o->json) {
            kl_cli_json_begin(&j);
            kl_json_str(&j, "event", "no_invite");
            kl_json_str(&j, "reason", "listening on every interface without advertise");
            kl_json_str(&j, "run", no_invite);
            kl_cli_json_end(&j);
        } else {
            printf("no invite: this relay listens on every interface and does not know the "
                   "address clients reach it at; run: %s\n", no_invite);
        }
    }
    if (metrics[0] && !o->json)
        printf("metrics on http://%s/metrics\n", metrics);
    fflush(stdout);
}

/* Whether this start prints a first invite: the relay was just created, or
 * it has no users and no usable invite (otherwise nobody could join). A
 * running relay with users prints none, so tokens do not pile up in logs
 * of every restart. */
static int want_first_invite(kl_storage_t *st, int created)
{
    kl_storage_stats_t s;
    if (created)
        return 1;
    return kl_storage_stats(st, kl_server_wall_ms(), &s) == 0 && s.users == 0 &&
           s.active_invites == 0;
}

/* What a SIGHUP needs: the server, the options serve started with (the
 * settings that need a restart are compared with these), the options of
 * the last applied reload (NULL: none yet) and the file to re-read. */
typedef struct serve_ctx {
    kl_server_t *srv;
    const kl_cli_opts_t *start;
    kl_cli_opts_t *cur;
    const char *path;
} serve_ctx_t;

/* Keys whose value is bound at start (sockets, the database, the name). */
static int needs_restart(const char *key)
{
    static const char *const K[] = {"listen", "data", "name", "federation-listen", "sync",
                                    "advertise", "metrics-listen"};
    for (size_t i = 0; i < sizeof K / sizeof K[0]; i++)
        if (strcmp(key, K[i]) == 0)
            return 1;
    return 0;
}

static void apply_log(const kl_cli_opts_t *o)
{
    kl_diag_level_t level = KL_DIAG_INFO;
    kl_diag_format_t format = KL_DIAG_TEXT;
    if (o->log_level)
        kl_diag_level_parse(o->log_level, &level); /* checked when it was read */
    if (o->log_format)
        kl_diag_format_parse(o->log_format, &format);
    kl_diag_set_level(level);
    kl_diag_set_format(format);
}

/* SIGHUP: re-read the file serve started with, flags over it again, and
 * apply what can change live. A file that does not parse changes
 * nothing. */
static void on_reload(void *ud)
{
    serve_ctx_t *x = ud;
    char err[600], a[KL_PATH_MAX], b[KL_PATH_MAX];
    const kl_cli_opts_t *cur = x->cur ? x->cur : x->start;
    /* Peers live in the database (peer add/remove), not in the file. */
    kl_server_reload_peers(x->srv);
    if (x->path == NULL) {
        kl_diag(KL_DIAG_INFO, "config reload: serve started without a configuration file: no "
               "settings to re-read");
        return;
    }
    kl_cli_opts_t *n = calloc(1, sizeof *n);
    if (n == NULL) {
        kl_diag(KL_DIAG_ERROR, "config reload: out of memory; keeping the running settings");
        return;
    }
    kl_server_cfg_defaults(&n->cfg);
    n->cmd = "serve";
    n->argc = x->start->argc;
    n->argv = x->start->argv;
    if (kl_config_serve_opts(n, x->path, err, sizeof err) != 0) {
        kl_diag(KL_DIAG_ERROR, "config reload failed, keeping the running settings: %s", err);
        kl_cli_opts_release(n);
        free(n);
        return;
    }
    unsigned changed = 0, restart = 0;
    for (size_t i = 0; kl_cli_key(i); i++) {
        const char *k = kl_cli_key(i);
        const kl_cli_opts_t *was = needs_restart(k) ? x->start : cur;
        int ha = kl_cli_key_get(was, k, a, sizeof a) == 0;
        int hb = kl_cli_key_get(n, k, b, sizeof b) == 0;
        if (ha == hb && (!ha || strcmp(a, b) == 0))
            continue;
        if (needs_restart(k)) {
            kl_diag(KL_DIAG_WARN, "config reload: %s changed (%s -> %s) but needs a restart: "
                   "still %s until then", k, ha ? a : "unset", hb ? b : "unset", ha ? a : "unset");
            restart++;
            continue;
        }
        kl_diag(KL_DIAG_INFO, "config reload: %s %s -> %s", k, ha ? a : "(default)",
               hb ? b : "(default)");
        changed++;
    }
    if (kl_server_reconfigure(x->srv, &n->cfg) != 0) {
        kl_diag(KL_DIAG_ERROR, "config reload: the new limits are out of range; keeping the running "
               "settings");
        kl_cli_opts_release(n);
        free(n);
        return;
    }
    apply_log(n);
    if (n->max_db_bytes != cur->max_db_bytes)
        kl_server_set_max_bytes(x->srv, n->max_db_bytes);
    kl_diag(KL_DIAG_INFO, "config reload from %s: %u setting(s) applied, %u need a restart", x->path,
           changed, restart);
    if (x->cur) {
        kl_cli_opts_release(x->cur);
        free(x->cur);
    }
    x->cur = n;
}

static int serve(kl_cli_opts_t *o, serve_ctx_t *x)
{
    char dir[KL_PATH_MAX], path[KL_PATH_MAX], name[KL_RELAYNAME_MAX + 1], bound[300];
    char listen[KL_STORAGE_META_MAX + 1], host[KL_HOST_MAX + 1], key[64];
    char token[KL_INVITE_MAX + 1] = "";
    uint8_t pk[32], *sk = NULL;
    uint16_t port;
    uint64_t expires = 0;
    kl_storage_t *st = NULL;
    kl_server_t *srv = NULL;
    kl_admin_state_t state;
    kl_diag_level_t level = KL_DIAG_INFO;
    uv_loop_t loop;
    int r = kl_cli_data_dir(o, dir, sizeof dir), created = 0, rc = KL_EXIT_OPER;
    if (r)
        return r;
    int sync_normal = o->sync && strcmp(o->sync, "normal") == 0;
    if (o->sync && !sync_normal && strcmp(o->sync, "full") != 0)
        return kl_cli_fail_usage("serve", "--sync takes full or normal, got '%s'", o->sync);
    if (o->log_level && kl_diag_level_parse(o->log_level, &level) != 0)
        return kl_cli_fail_usage("serve", "--log-level takes debug, info, warn or error");
    apply_log(o);
    if ((r = kl_cli_check_listen(o, o->listen, "--listen")) ||
        (r = kl_cli_check_listen(o, o->advertise, "--advertise")) ||
        (r = kl_cli_check_listen(o, o->metrics_listen, "--metrics-listen")))
        return r;
    if (o->name && !kl_relayname_valid(o->name))
        return kl_cli_fail_usage("serve", "invalid relay name '%s': use lower-case letters, digits, "
                                   "'-' and '.'", o->name);
    if ((r = kl_cli_lock(dir, 1)) != 0) /* held until exit (cli_lock.c) */
        return r;
    r = kl_admin_state(dir, &state);
    if (r)
        return kl_cli_state_error(dir, r);
    if (state == KL_STATE_NONE || state == KL_STATE_PARTIAL) {
        if (o->name)
            snprintf(name, sizeof name, "%s", o->name);
        else
            default_name(name, sizeof name);
        r = kl_cli_init_dir(o, dir, name, 1);
        if (r)
            return r;
        created = 1;
        kl_diag(KL_DIAG_INFO, "initialised relay %s in %s", name, dir);
    }
    if (kl_admin_path(dir, KL_KEYFILE_NAME, path, sizeof path) != 0)
        return kl_cli_fail_oper("data directory path too long");
    r = kl_keyfile_load(path, &sk, pk);
    if (r == KL_EREFUSED)
        return kl_cli_fail_oper("refusing to use %s: it is accessible to other users; run chmod 600 %s",
                         path, path);
    if (r == KL_ENOTFOUND)
        return kl_cli_fail_oper("%s is missing: restore the relay key from your backup (clients have "
                         "pinned it)", path);
    if (r)
        return kl_cli_fail_oper("cannot load %s: %s%s", path, kl_strerror(r),
                         r == KL_EPROTO ? " (a relay key file holds exactly 32 bytes)" : "");
    r = kl_cli_open_state(o, dir, sync_normal ? KL_STORAGE_SYNC_NORMAL : 0, &st);
    if (r) {
        kl_secure_free(sk);
        return r;
    }
    rc = KL_EXIT_OPER;
    if (kl_storage_meta_get(st, "name", name, sizeof name) != 0) {
        kl_cli_fail_oper("cannot read the relay name from %s/relay.db", dir);
        goto out;
    }
    if (o->name && strcmp(o->name, name) != 0) {
        kl_cli_fail_oper("the relay in %s is named %s, not %s: drop --name, or use another --data",
                  dir, name, o->name);
        goto out;
    }
    if (o->max_db_bytes) {
        uint64_t cap = 0;
        if (kl_storage_set_max_bytes(st, o->max_db_bytes, &cap) != 0) {
            kl_cli_fail_oper("cannot apply --max-db-bytes to %s/relay.db", dir);
            goto out;
        }
        if (cap > o->max_db_bytes)
            kl_diag(KL_DIAG_WARN, "the database already holds %llu bytes, over --max-db-bytes: "
                   "new messages are refused until acks and expiry free space",
                   (unsigned long long)cap);
    }
    if (o->listen)
        snprintf(listen, sizeof listen, "%s", o->listen);
    else if (kl_storage_meta_get(st, "listen", listen, sizeof listen) != 0)
        snprintf(listen, sizeof listen, "%s", KL_DEFAULT_LISTEN);
    if (kl_listen_parse(listen, host, sizeof host, &port) != 0) {
        kl_cli_fail_oper("stored listen address '%s' is invalid: pass --listen HOST:PORT", listen);
        goto out;
    }
    kl_b64_encode(pk, 32, key, sizeof key);
    o->cfg.dispatch.relay_name = name;
    o->cfg.static_sk = sk;
    o->cfg.handle_signals = 1;
    o->cfg.on_reload = on_reload;
    o->cfg.reload_ud = x;
    char adv[KL_STORAGE_META_MAX + 1];
    int no_adv = kl_admin_wildcard(host) && o->advertise == NULL &&
                 kl_storage_meta_get(st, "advertise", adv, sizeof adv) != 0;
    if (no_adv)
        kl_diag(KL_DIAG_WARN, "listening on every interface (%s) without an advertised address: "
               "invites need the address clients reach this relay at; pass --advertise "
               "HOST:PORT (or set advertise in the config file)", listen);
    /* Federation port: given (and remembered), or the remembered one. */
    static char fedl[KL_STORAGE_META_MAX + 1];
    if (o->fed_listen && (kl_cli_check_listen(o, o->fed_listen, "--federation-listen") != 0 ||
                          kl_storage_meta_set(st, "federation_listen", o->fed_listen) != 0)) {
        kl_cli_fail_oper("cannot use --federation-listen %s", o->fed_listen);
        goto out;
    }
    if (o->fed_listen)
        snprintf(fedl, sizeof fedl, "%s", o->fed_listen);
    else if (kl_storage_meta_get(st, "federation_listen", fedl, sizeof fedl) != 0)
        fedl[0] = '\0';
    o->cfg.fed_listen = fedl[0] ? fedl : NULL;
    static char ctl[KL_PATH_MAX]; /* the control socket (control.h) */
    o->cfg.control_path = kl_admin_path(dir, KL_CTL_NAME, ctl, sizeof ctl) == 0 ? ctl : NULL;
    o->cfg.metrics_listen = o->metrics_listen;
    raise_fd_limit(o->cfg.max_connections);
    uv_loop_init(&loop);
    r = kl_server_new(&srv, &loop, &o->cfg);
    if (r) {
        kl_cli_fail_oper("cannot start the relay: %s", kl_strerror(r));
        goto out_loop;
    }
    r = kl_server_bind(srv, host, port, bound, sizeof bound);
    if (r) {
        kl_cli_fail_oper("cannot listen on %s: %s (another process may hold the port: pick another "
                  "--listen)", listen, kl_strerror(r));
        goto out_loop;
    }
    r = kl_storage_meta_set(st, "address", bound);
    if (r == 0)
        r = kl_storage_meta_set(st, "public_key", key);
    if (r == 0 && o->advertise)
        r = kl_storage_meta_set(st, "advertise", o->advertise);
    int first = r == 0 && want_first_invite(st, created);
    if (first && !no_adv)
        r = kl_admin_invite(st, 1, KL_DEFAULT_INVITE_TTL, kl_server_wall_ms(), token, sizeof token,
                            &expires);
    char run[KL_PATH_MAX + 80];
    snprintf(run, sizeof run, "kollega-relay invite --data %s --advertise HOST:PORT", dir);
    if (r == 0)
        r = kl_server_start(srv, st);
    if (r) {
        kl_cli_fail_oper("cannot start the relay: %s", kl_strerror(r));
        goto out_loop;
    }
    st = NULL; /* the storage thread owns it now */
    x->srv = srv;
    if (kl_server_fed_address(srv)[0])
        kl_diag(KL_DIAG_INFO, "federation links accepted on %s", kl_server_fed_address(srv));
    kl_diag(KL_DIAG_INFO, "relay %s listening on %s (max %u connections, body <= %zu bytes)", name,
           bound, o->cfg.max_connections, o->cfg.dispatch.max_body);
    print_serve(o, bound, name, key, token, expires, first && no_adv ? run : NULL,
                kl_server_metrics_address(srv));
    kl_memzero(token, sizeof token);
    uv_run(&loop, UV_RUN_DEFAULT);
    x->srv = NULL;
    kl_diag(KL_DIAG_INFO, "stopped");
    rc = 0;
out_loop:
    kl_server_free(srv);
    uv_loop_close(&loop);
out:
    kl_memzero(token, sizeof token);
    kl_storage_close(st);
    kl_secure_free(sk);
    return rc;
}

static int cmd_serve(kl_cli_opts_t *o)
{
    char err[600];
    serve_ctx_t x = {NULL, o, NULL, o->config ? o->config : kl_config_default_path()};
    if (x.path && kl_config_serve_opts(o, x.path, err, sizeof err) != 0) {
        fprintf(stderr, "kollega-relay: %s\n(check the file with: kollega-relay config check %s)\n",
                err, x.path);
        kl_cli_opts_release(o);
        return KL_EXIT_USAGE;
    }
    int r = serve(o, &x);
    if (x.cur) {
        kl_cli_opts_release(x.cur);
        free(x.cur);
    }
    kl_cli_opts_release(o);
    return r;
}

static void usage(void)
{
    printf("usage: kollega-relay serve --data DIR [--name NAME] [--listen HOST:PORT] [limits]\n"
           "  --config FILE            configuration file: a [relay] section with a key\n"
           "                           per option below, named without -- (e.g.\n"
           "                           max-body = 30000); flags win over it. Default:\n"
           "                           $%s when set (empty: none),\n"
           "                           else %s if it exists.\n"
           "                           SIGHUP re-reads it and applies the limits and\n"
           "                           log settings live (listen, data, name, sync,\n"
           "                           advertise and federation-listen need a\n"
           "                           restart), and reloads the federation peers\n"
           "  --name NAME              relay name when initialising (default: host name)\n"
           "  --listen H:P             listen address, port 0 = any free port\n"
           "                           (default: the one given to init, else %s)\n"
           "  --advertise H:P          address put in invite tokens (remembered); needed\n"
           "                           when listening on 0.0.0.0 or :: (every interface),\n"
           "                           else no invite can be made\n"
           "  --max-connections N      default 10000\n"
           "  --rate N / --burst N     frames per second per connection (2000 / 4000)\n"
           "  --idle-timeout S         close connections silent this long (300)\n"
           "  --handshake-timeout S    handshake + register/auth deadline (10)\n"
           "  --max-body BYTES         largest message body (61440, at most %d)\n"
           "  --quota-entries N        entries per inbox (10000)\n"
           "  --quota-bytes N          body bytes per inbox (67108864)\n"
           "  --write-queue BYTES      queued output per connection (1048576)\n"
           "  --ttl-default S          entry lifetime when the sender gives none, and\n"
           "                           the maximum (2592000 = 30 days)\n"
           "  --sync full|normal       fsync every commit (full, default) or not\n"
           "  --max-db-bytes N         cap the database file: when it is reached, sends\n"
           "                           get UNAVAILABLE while fetches and acks go on\n"
           "                           (default: no cap; set it below the disk's free\n"
           "                           space so the relay, not the disk, runs out first)\n"
           "  --log-level L            debug, info (default), warn, error. Below debug\n"
           "                           the log holds events and counts only: no user\n"
           "                           handle, no client IP:port (debug adds them)\n"
           "  --log-format F           text (default) or json (one object per line:\n"
           "                           ts, level, msg and fields such as conn)\n"
           "  --federation-listen H:P  accept peer relays' links here (remembered;\n"
           "                           default: none, only outgoing links)\n"
           "  --federation-retry-max S cap of the peer redial backoff (30)\n"
           "  One-time prekeys a prekey fetch may consume, each per --opk-window S\n"
           "  (3600); over any of them a bundle is served without one:\n"
           "  --opk-per-pair N         of one user, by one requester (1)\n"
           "  --opk-per-requester N    by one requester, all users (20)\n"
           "  --opk-per-target N       of one user, all requesters (30)\n"
           "  --opk-per-peer N         by the users of one peer relay together (200)\n"
           "  --unidentified-rate N    unidentified sends one user may receive per\n"
           "                           minute (60); over it senders must identify\n"
           "  --metrics-listen H:P     serve Prometheus metrics at http://H:P/metrics\n"
           "                           (default: off; use a loopback address such as\n"
           "                           127.0.0.1:9477, port 0 = any free port)\n",
           KL_CONFIG_ENV, KL_CONFIG_DEFAULT, KL_DEFAULT_LISTEN, KL_MAX_BODY_LIMIT);
    kl_cli_usage_common();
}

const kl_cli_cmd_t kl_cli_serve = {"serve", "run the relay (initialises the data directory if empty)", usage, cmd_serve};
