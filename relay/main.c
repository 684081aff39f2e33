/* kollega-relay: the admin CLI and the server entry point.
 *   init   --data DIR --name NAME [--listen HOST:PORT] [--advertise HOST:PORT]
 *   serve  --data DIR [--name NAME] [--listen HOST:PORT] [limits...]
 *   invite --data DIR [--uses N] [--expires DURATION]
 *   status --data DIR
 * Every command takes --help and --json. Exit codes: 0 ok, 1 operational
 * failure, 2 usage error. Errors go to stderr and say what to do next. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "admin.h"
#include "fed_cli.h"
#include "keyfile.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/json.h"
#include "kollega/version.h"
#include "log.h"
#include "server.h"

#define EXIT_OPER 1
#define EXIT_USAGE 2
#define DEFAULT_INVITE_TTL (7u * 86400)

typedef struct opts {
    const char *cmd;
    const char *data, *name, *listen, *advertise, *expires, *sync, *log_level;
    const char *fed_listen;
    int json, help;
    uint64_t uses;
    uint64_t max_db_bytes;
    kl_server_cfg_t cfg;
} opts_t;

static const char *USAGE_MAIN =
    "usage: kollega-relay COMMAND [options]\n"
    "commands:\n"
    "  init    create relay state (key, database) in a data directory\n"
    "  serve   run the relay (initialises the data directory if empty)\n"
    "  invite  print one invite token for a new user\n"
    "  status  show the relay's name, key, address and counts\n"
    "  peer    add, list or remove federation peers (other relays)\n"
    "run kollega-relay COMMAND --help for the options of a command;\n"
    "kollega-relay --version [--json] prints the version\n";

static const char *USAGE_COMMON =
    "  --data DIR        data directory (default $KOLLEGA_RELAY_DATA, else\n"
    "                    $XDG_DATA_HOME/kollega-relay, else ~/.local/share/kollega-relay)\n"
    "  --json            machine-readable output (JSON)\n"
    "  --help            this help\n";

static void usage(const char *cmd)
{
    if (strcmp(cmd, "init") == 0)
        printf("usage: kollega-relay init --data DIR --name NAME [--listen HOST:PORT]\n"
               "                          [--advertise HOST:PORT]\n"
               "  --name NAME       relay name; user addresses are handle@NAME\n"
               "  --listen H:P      address serve listens on (default %s)\n"
               "  --advertise H:P   address invite tokens give clients (default: the\n"
               "                    listen address; NAME:PORT when listening on 0.0.0.0 or ::)\n",
               KL_DEFAULT_LISTEN);
    else if (strcmp(cmd, "serve") == 0)
        printf("usage: kollega-relay serve --data DIR [--name NAME] [--listen HOST:PORT] [limits]\n"
               "  --name NAME              relay name when initialising (default: host name)\n"
               "  --listen H:P             listen address, port 0 = any free port\n"
               "                           (default: the one given to init, else %s)\n"
               "  --advertise H:P          address put in invite tokens (remembered)\n"
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
               "  --log-level L            debug, info (default), warn, error\n"
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
               "                           minute (60); over it senders must identify\n",
               KL_DEFAULT_LISTEN, KL_MAX_BODY_LIMIT);
    else if (strcmp(cmd, "invite") == 0)
        printf("usage: kollega-relay invite --data DIR [--uses N] [--expires DURATION]\n"
               "  --uses N          registrations the invite admits (default 1)\n"
               "  --expires D       lifetime: 30m, 12h, 7d, or seconds (default 7d)\n");
    else if (strcmp(cmd, "status") == 0)
        printf("usage: kollega-relay status --data DIR\n");
    else {
        fputs(USAGE_MAIN, stdout);
        return;
    }
    fputs(USAGE_COMMON, stdout);
}

static int fail_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("kollega-relay: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nrun 'kollega-relay %s%s--help' for usage\n", cmd ? cmd : "",
            cmd ? " " : "");
    return EXIT_USAGE;
}

static int fail_oper(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail_oper(const char *fmt, ...)
{
    va_list ap;
    fputs("kollega-relay: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_OPER;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

typedef struct num_opt {
    const char *flag;
    const char *cmds; /* commands that take it, space separated */
    uint64_t min, max;
} num_opt_t;

static const num_opt_t NUMS[] = {
    {"--uses", "invite", 1, 1000000},
    {"--max-connections", "serve", 1, 1000000},
    {"--rate", "serve", 1, 1000000},
    {"--burst", "serve", 1, 1000000},
    {"--idle-timeout", "serve", 1, 86400},
    {"--handshake-timeout", "serve", 1, 3600},
    {"--max-body", "serve", 1, KL_MAX_BODY_LIMIT},
    {"--quota-entries", "serve", 1, 100000000},
    {"--quota-bytes", "serve", 1, 1ull << 40},
    {"--write-queue", "serve", 65536, 1u << 30},
    {"--ttl-default", "serve", 60, 10u * 365 * 86400},
    {"--max-db-bytes", "serve", 1u << 20, 1ull << 50},
    {"--federation-retry-max", "serve", 1, 3600},
    {"--opk-window", "serve", 1, KL_OPK_WINDOW_S_MAX},
    {"--opk-per-pair", "serve", 1, KL_OPK_PER_MAX},
    {"--opk-per-requester", "serve", 1, KL_OPK_PER_MAX},
    {"--opk-per-target", "serve", 1, KL_OPK_PER_MAX},
    {"--opk-per-peer", "serve", 1, KL_OPK_PER_MAX},
    {"--unidentified-rate", "serve", 1, KL_UD_PER_MIN_MAX},
};

static int takes(const char *cmds, const char *cmd)
{
    size_t n = strlen(cmd);
    for (const char *p = cmds; (p = strstr(p, cmd)) != NULL; p += n)
        if ((p == cmds || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
            return 1;
    return 0;
}

static void set_num(opts_t *o, const char *flag, uint64_t v)
{
    kl_server_cfg_t *c = &o->cfg;
    if (strcmp(flag, "--uses") == 0)
        o->uses = v;
    else if (strcmp(flag, "--max-connections") == 0)
        c->max_connections = (uint32_t)v;
    else if (strcmp(flag, "--rate") == 0)
        c->dispatch.rate = (uint32_t)v;
    else if (strcmp(flag, "--burst") == 0)
        c->dispatch.burst = (uint32_t)v;
    else if (strcmp(flag, "--idle-timeout") == 0)
        c->idle_timeout_s = (uint32_t)v;
    else if (strcmp(flag, "--handshake-timeout") == 0)
        c->handshake_timeout_s = (uint32_t)v;
    else if (strcmp(flag, "--max-body") == 0)
        c->dispatch.max_body = (size_t)v;
    else if (strcmp(flag, "--quota-entries") == 0)
        c->dispatch.quota.max_entries = v;
    else if (strcmp(flag, "--quota-bytes") == 0)
        c->dispatch.quota.max_bytes = v;
    else if (strcmp(flag, "--write-queue") == 0)
        c->write_queue = (size_t)v;
    else if (strcmp(flag, "--ttl-default") == 0)
        c->dispatch.ttl_default_s = c->dispatch.ttl_max_s = (uint32_t)v;
    else if (strcmp(flag, "--max-db-bytes") == 0)
        o->max_db_bytes = v;
    else if (strcmp(flag, "--federation-retry-max") == 0)
        c->fed_retry_max_s = (uint32_t)v;
    else if (strcmp(flag, "--opk-window") == 0)
        c->opk.window_s = (uint32_t)v;
    else if (strcmp(flag, "--opk-per-pair") == 0)
        c->opk.per_pair = (uint32_t)v;
    else if (strcmp(flag, "--opk-per-requester") == 0)
        c->opk.per_requester = (uint32_t)v;
    else if (strcmp(flag, "--opk-per-target") == 0)
        c->opk.per_target = (uint32_t)v;
    else if (strcmp(flag, "--opk-per-peer") == 0)
        c->opk.per_peer = (uint32_t)v;
    else if (strcmp(flag, "--unidentified-rate") == 0)
        c->ud_per_min = (uint32_t)v;
}

typedef struct str_opt {
    const char *flag;
    const char *cmds;
    size_t off;
} str_opt_t;

static const str_opt_t STRS[] = {
    {"--data", "init serve invite status", offsetof(opts_t, data)},
    {"--name", "init serve", offsetof(opts_t, name)},
    {"--listen", "init serve", offsetof(opts_t, listen)},
    {"--advertise", "init serve", offsetof(opts_t, advertise)},
    {"--expires", "invite", offsetof(opts_t, expires)},
    {"--sync", "serve", offsetof(opts_t, sync)},
    {"--log-level", "serve", offsetof(opts_t, log_level)},
    {"--federation-listen", "serve", offsetof(opts_t, fed_listen)},
};

/* Options come after the command, as "--flag VALUE" or "--flag=VALUE". */
static int parse(int argc, char **argv, opts_t *o)
{
    const char *cmd = o->cmd;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = 1;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        char flag[64];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        size_t fl = eq ? (size_t)(eq - a) : strlen(a);
        if (strncmp(a, "--", 2) != 0 || fl >= sizeof flag)
            return fail_usage(cmd, "unexpected argument '%s'", a);
        memcpy(flag, a, fl);
        flag[fl] = '\0';
        int known = 0;
        for (size_t k = 0; k < sizeof STRS / sizeof STRS[0] + sizeof NUMS / sizeof NUMS[0]; k++) {
            int is_str = k < sizeof STRS / sizeof STRS[0];
            const char *f = is_str ? STRS[k].flag : NUMS[k - sizeof STRS / sizeof STRS[0]].flag;
            const char *cmds =
                is_str ? STRS[k].cmds : NUMS[k - sizeof STRS / sizeof STRS[0]].cmds;
            if (strcmp(flag, f) != 0)
                continue;
            if (!takes(cmds, cmd))
                return fail_usage(cmd, "%s does not take %s", cmd, flag);
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return fail_usage(cmd, "%s needs a value", flag);
            if (is_str) {
                *(const char **)((char *)o + STRS[k].off) = val;
            } else {
                const num_opt_t *n = &NUMS[k - sizeof STRS / sizeof STRS[0]];
                uint64_t v;
                if (parse_u64(val, n->min, n->max, &v) != 0)
                    return fail_usage(cmd, "%s must be a whole number from %llu to %llu", flag,
                                      (unsigned long long)n->min, (unsigned long long)n->max);
                set_num(o, flag, v);
            }
            known = 1;
            break;
        }
        if (!known)
            return fail_usage(cmd, "unknown option %s", flag);
    }
    return 0;
}

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

static int data_dir(const opts_t *o, char *dir, size_t cap)
{
    int r = kl_admin_data_dir(o->data, dir, cap);
    if (r == KL_ENOTFOUND)
        return fail_usage(o->cmd, "no data directory: pass --data DIR or set KOLLEGA_RELAY_DATA");
    if (r)
        return fail_usage(o->cmd, "data directory path too long");
    return 0;
}

static int state_error(const char *dir, int r)
{
    return fail_oper("cannot read relay state in %s: %s (check the directory's permissions)", dir,
                     kl_strerror(r));
}

static int check_listen(const opts_t *o, const char *v, const char *flag)
{
    char host[KL_HOST_MAX + 1];
    uint16_t port;
    if (v && kl_admin_listen_parse(v, host, sizeof host, &port) != 0)
        return fail_usage(o->cmd, "%s must be HOST:PORT or [IPv6]:PORT, got '%s'", flag, v);
    return 0;
}

static int do_init(const opts_t *o, const char *dir, const char *name, int quiet)
{
    const char *listen = o->listen ? o->listen : KL_DEFAULT_LISTEN;
    int r = kl_admin_init(dir, name, listen, o->sync && strcmp(o->sync, "normal") == 0);
    if (r == KL_EREFUSED)
        return fail_oper("%s/relay.key is readable by other users: run chmod 600 %s/relay.key",
                         dir, dir);
    if (r)
        return fail_oper("cannot initialise relay state in %s: %s", dir, kl_strerror(r));
    if (o->advertise) {
        char db[KL_PATH_MAX];
        kl_storage_t *st = NULL;
        r = kl_admin_path(dir, KL_DB_NAME, db, sizeof db);
        if (r == 0)
            r = kl_storage_open(&st, db, 0);
        if (r == 0)
            r = kl_storage_meta_set(st, "advertise", o->advertise);
        kl_storage_close(st);
        if (r)
            return fail_oper("cannot record the advertised address: %s", kl_strerror(r));
    }
    if (quiet)
        return 0;
    char db[KL_PATH_MAX], key[64] = "";
    kl_storage_t *st = NULL;
    if (kl_admin_path(dir, KL_DB_NAME, db, sizeof db) == 0 &&
        kl_storage_open(&st, db, KL_STORAGE_READONLY) == 0)
        kl_storage_meta_get(st, "public_key", key, sizeof key);
    kl_storage_close(st);
    if (o->json) {
        kl_json_t j;
        kl_json_init(&j);
        kl_json_obj_begin(&j, NULL);
        kl_json_str(&j, "name", name);
        kl_json_str(&j, "public_key", key);
        kl_json_str(&j, "listen", listen);
        kl_json_str(&j, "data", dir);
        kl_json_obj_end(&j);
        printf("%s\n", kl_json_cstr(&j) ? kl_json_cstr(&j) : "{}");
        kl_json_free(&j);
    } else {
        printf("initialised relay %s in %s\npublic key: %s\nlisten: %s\n"
               "next: kollega-relay serve --data %s\n",
               name, dir, key, listen, dir);
    }
    return 0;
}

static int cmd_init(const opts_t *o)
{
    char dir[KL_PATH_MAX];
    kl_admin_state_t state;
    int r = data_dir(o, dir, sizeof dir);
    if (r)
        return r;
    if (o->name == NULL)
        return fail_usage("init", "init needs --name NAME (the relay's DNS-style name, e.g. "
                                  "oslo.example.org)");
    if (!kl_relayname_valid(o->name))
        return fail_usage("init", "invalid relay name '%s': use lower-case letters, digits, '-' "
                                  "and '.'", o->name);
    if ((r = check_listen(o, o->listen, "--listen")) || (r = check_listen(o, o->advertise,
                                                                          "--advertise")))
        return r;
    r = kl_admin_state(dir, &state);
    if (r)
        return state_error(dir, r);
    if (state == KL_STATE_READY || state == KL_STATE_NO_KEY)
        return fail_oper("relay state already exists in %s: start it with kollega-relay serve "
                         "--data %s", dir, dir);
    return do_init(o, dir, o->name, 0);
}

/* Open the database of a ready data directory (or explain what to do). */
static int open_state(const opts_t *o, const char *dir, int flags, kl_storage_t **st)
{
    char db[KL_PATH_MAX];
    kl_admin_state_t state;
    int r = kl_admin_state(dir, &state);
    if (r)
        return state_error(dir, r);
    if (state == KL_STATE_NONE || state == KL_STATE_PARTIAL)
        return fail_oper("no relay state in %s: run kollega-relay init --data %s --name NAME",
                         dir, dir);
    if (state == KL_STATE_NO_KEY && strcmp(o->cmd, "serve") == 0)
        return fail_oper("%s/relay.db exists but %s/relay.key is missing: restore the key from "
                         "your backup (clients have pinned it)", dir, dir);
    r = kl_admin_path(dir, KL_DB_NAME, db, sizeof db);
    if (r == 0)
        r = kl_storage_open(st, db, flags);
    if (r)
        return fail_oper("cannot open %s: %s", db, kl_strerror(r));
    return 0;
}

static int cmd_invite(const opts_t *o)
{
    char dir[KL_PATH_MAX], token[KL_INVITE_MAX + 1], when[32];
    uint64_t ttl = DEFAULT_INVITE_TTL, expires = 0;
    kl_storage_t *st = NULL;
    int r = data_dir(o, dir, sizeof dir);
    if (r)
        return r;
    if (o->expires && (kl_admin_duration(o->expires, &ttl) != 0 || ttl > 365ull * 86400))
        return fail_usage("invite", "--expires takes a duration like 30m, 12h or 7d (at most "
                                    "365d), got '%s'", o->expires);
    r = open_state(o, dir, 0, &st);
    if (r)
        return r;
    uint32_t uses = o->uses ? (uint32_t)o->uses : 1;
    r = kl_admin_invite(st, uses, ttl, kl_server_wall_ms(), token, sizeof token, &expires);
    kl_storage_close(st);
    if (r)
        return fail_oper("cannot create an invite: %s%s", kl_strerror(r),
                         r == KL_EIO ? " (is the disk full, or the database locked too long?)"
                                     : "");
    kl_admin_time(expires, when, sizeof when);
    if (o->json) {
        kl_json_t j;
        kl_json_init(&j);
        kl_json_obj_begin(&j, NULL);
        kl_json_str(&j, "token", token);
        kl_json_uint(&j, "uses", uses);
        kl_json_str(&j, "expires_at", when);
        kl_json_obj_end(&j);
        printf("%s\n", kl_json_cstr(&j) ? kl_json_cstr(&j) : "{}");
        kl_json_free(&j);
    } else {
        printf("%s\n", token);
    }
    kl_memzero(token, sizeof token);
    return 0;
}

static int cmd_status(const opts_t *o)
{
    char dir[KL_PATH_MAX], name[KL_RELAYNAME_MAX + 1] = "", key[64] = "";
    char listen[KL_STORAGE_META_MAX + 1] = "", addr[KL_STORAGE_META_MAX + 1] = "";
    char adv[KL_STORAGE_META_MAX + 1] = "";
    kl_storage_t *st = NULL;
    kl_storage_stats_t s;
    int r = data_dir(o, dir, sizeof dir);
    if (r)
        return r;
    r = open_state(o, dir, KL_STORAGE_READONLY, &st);
    if (r)
        return r;
    r = kl_storage_meta_get(st, "name", name, sizeof name);
    if (r == 0)
        r = kl_storage_meta_get(st, "public_key", key, sizeof key);
    kl_storage_meta_get(st, "listen", listen, sizeof listen);
    kl_storage_meta_get(st, "address", addr, sizeof addr);
    kl_storage_meta_get(st, "advertise", adv, sizeof adv);
    if (r == 0)
        r = kl_storage_stats(st, kl_server_wall_ms(), &s);
    if (r) {
        kl_storage_close(st);
        return fail_oper("cannot read relay status in %s: %s", dir, kl_strerror(r));
    }
    if (o->json) {
        kl_json_t j;
        kl_json_init(&j);
        kl_json_obj_begin(&j, NULL);
        kl_json_str(&j, "name", name);
        kl_json_str(&j, "public_key", key);
        kl_json_str(&j, "listen", listen);
        kl_json_str(&j, "address", addr[0] ? addr : NULL);
        kl_json_str(&j, "advertise", adv[0] ? adv : NULL);
        kl_json_uint(&j, "users", s.users);
        kl_json_uint(&j, "entries", s.entries);
        kl_json_uint(&j, "entry_bytes", s.bytes);
        kl_json_uint(&j, "active_invites", s.active_invites);
        kl_json_str(&j, "data", dir);
        kl_fed_cli_status(st, &j);
        kl_json_obj_end(&j);
        printf("%s\n", kl_json_cstr(&j) ? kl_json_cstr(&j) : "{}");
        kl_json_free(&j);
    } else {
        printf("relay           %s\npublic key      %s\nlisten          %s\n", name, key, listen);
        if (addr[0])
            printf("last bound      %s\n", addr);
        if (adv[0])
            printf("advertised      %s\n", adv);
        printf("users           %llu\nstored entries  %llu (%llu bytes)\n"
               "active invites  %llu\ndata            %s\n",
               (unsigned long long)s.users, (unsigned long long)s.entries,
               (unsigned long long)s.bytes, (unsigned long long)s.active_invites, dir);
        kl_fed_cli_status(st, NULL);
    }
    kl_storage_close(st);
    return 0;
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
        kl_log(KL_LOG_WARN, "open file limit %llu is below --max-connections %u: raise it "
               "(ulimit -n) or expect refused connections", (unsigned long long)rl.rlim_cur,
               conns);
}

static void print_serve(const opts_t *o, const char *bound, const char *name, const char *key,
                        const char *token, uint64_t expires)
{
    char when[32];
    kl_json_t j;
    if (o->json) {
        kl_json_init(&j);
        kl_json_obj_begin(&j, NULL);
        kl_json_str(&j, "event", "listening");
        kl_json_str(&j, "address", bound);
        kl_json_str(&j, "name", name);
        kl_json_str(&j, "public_key", key);
        kl_json_obj_end(&j);
        printf("%s\n", kl_json_cstr(&j) ? kl_json_cstr(&j) : "{}");
        kl_json_free(&j);
    } else {
        printf("listening on %s (relay %s, public key %s)\n", bound, name, key);
    }
    if (token[0]) {
        kl_admin_time(expires, when, sizeof when);
        if (o->json) {
            kl_json_init(&j);
            kl_json_obj_begin(&j, NULL);
            kl_json_str(&j, "event", "invite");
            kl_json_str(&j, "token", token);
            kl_json_uint(&j, "uses", 1);
            kl_json_str(&j, "expires_at", when);
            kl_json_obj_end(&j);
            printf("%s\n", kl_json_cstr(&j) ? kl_json_cstr(&j) : "{}");
            kl_json_free(&j);
        } else {
            printf("invite (1 use, expires %s): %s\n", when, token);
        }
    }
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

static int cmd_serve(opts_t *o)
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
    kl_log_level_t level = KL_LOG_INFO;
    uv_loop_t loop;
    int r = data_dir(o, dir, sizeof dir), created = 0, rc = EXIT_OPER;
    if (r)
        return r;
    int sync_normal = o->sync && strcmp(o->sync, "normal") == 0;
    if (o->sync && !sync_normal && strcmp(o->sync, "full") != 0)
        return fail_usage("serve", "--sync takes full or normal, got '%s'", o->sync);
    if (o->log_level && kl_log_level_parse(o->log_level, &level) != 0)
        return fail_usage("serve", "--log-level takes debug, info, warn or error");
    kl_log_set_level(level);
    if ((r = check_listen(o, o->listen, "--listen")) ||
        (r = check_listen(o, o->advertise, "--advertise")))
        return r;
    if (o->name && !kl_relayname_valid(o->name))
        return fail_usage("serve", "invalid relay name '%s': use lower-case letters, digits, "
                                   "'-' and '.'", o->name);
    r = kl_admin_state(dir, &state);
    if (r)
        return state_error(dir, r);
    if (state == KL_STATE_NONE || state == KL_STATE_PARTIAL) {
        if (o->name)
            snprintf(name, sizeof name, "%s", o->name);
        else
            default_name(name, sizeof name);
        r = do_init(o, dir, name, 1);
        if (r)
            return r;
        created = 1;
        kl_log(KL_LOG_INFO, "initialised relay %s in %s", name, dir);
    }
    if (kl_admin_path(dir, KL_KEYFILE_NAME, path, sizeof path) != 0)
        return fail_oper("data directory path too long");
    r = kl_keyfile_load(path, &sk, pk);
    if (r == KL_EREFUSED)
        return fail_oper("refusing to use %s: it is accessible to other users; run chmod 600 %s",
                         path, path);
    if (r == KL_ENOTFOUND)
        return fail_oper("%s is missing: restore the relay key from your backup (clients have "
                         "pinned it)", path);
    if (r)
        return fail_oper("cannot load %s: %s%s", path, kl_strerror(r),
                         r == KL_EPROTO ? " (a relay key file holds exactly 32 bytes)" : "");
    r = open_state(o, dir, sync_normal ? KL_STORAGE_SYNC_NORMAL : 0, &st);
    if (r) {
        kl_secure_free(sk);
        return r;
    }
    rc = EXIT_OPER;
    if (kl_storage_meta_get(st, "name", name, sizeof name) != 0) {
        fail_oper("cannot read the relay name from %s/relay.db", dir);
        goto out;
    }
    if (o->name && strcmp(o->name, name) != 0) {
        fail_oper("the relay in %s is named %s, not %s: drop --name, or use another --data",
                  dir, name, o->name);
        goto out;
    }
    if (o->max_db_bytes) {
        uint64_t cap = 0;
        if (kl_storage_set_max_bytes(st, o->max_db_bytes, &cap) != 0) {
            fail_oper("cannot apply --max-db-bytes to %s/relay.db", dir);
            goto out;
        }
        if (cap > o->max_db_bytes)
            kl_log(KL_LOG_WARN, "the database already holds %llu bytes, over --max-db-bytes: "
                   "new messages are refused until acks and expiry free space",
                   (unsigned long long)cap);
    }
    if (o->listen)
        snprintf(listen, sizeof listen, "%s", o->listen);
    else if (kl_storage_meta_get(st, "listen", listen, sizeof listen) != 0)
        snprintf(listen, sizeof listen, "%s", KL_DEFAULT_LISTEN);
    if (kl_admin_listen_parse(listen, host, sizeof host, &port) != 0) {
        fail_oper("stored listen address '%s' is invalid: pass --listen HOST:PORT", listen);
        goto out;
    }
    kl_b64_encode(pk, 32, key, sizeof key);
    o->cfg.dispatch.relay_name = name;
    o->cfg.static_sk = sk;
    o->cfg.handle_signals = 1;
    /* Federation port: given (and remembered), or the remembered one. */
    static char fedl[KL_STORAGE_META_MAX + 1];
    if (o->fed_listen && (check_listen(o, o->fed_listen, "--federation-listen") != 0 ||
                          kl_storage_meta_set(st, "federation_listen", o->fed_listen) != 0)) {
        fail_oper("cannot use --federation-listen %s", o->fed_listen);
        goto out;
    }
    if (o->fed_listen)
        snprintf(fedl, sizeof fedl, "%s", o->fed_listen);
    else if (kl_storage_meta_get(st, "federation_listen", fedl, sizeof fedl) != 0)
        fedl[0] = '\0';
    o->cfg.fed_listen = fedl[0] ? fedl : NULL;
    raise_fd_limit(o->cfg.max_connections);
    uv_loop_init(&loop);
    r = kl_server_new(&srv, &loop, &o->cfg);
    if (r) {
        fail_oper("cannot start the relay: %s", kl_strerror(r));
        goto out_loop;
    }
    r = kl_server_bind(srv, host, port, bound, sizeof bound);
    if (r) {
        fail_oper("cannot listen on %s: %s (another process may hold the port: pick another "
                  "--listen)", listen, kl_strerror(r));
        goto out_loop;
    }
    r = kl_storage_meta_set(st, "address", bound);
    if (r == 0)
        r = kl_storage_meta_set(st, "public_key", key);
    if (r == 0 && o->advertise)
        r = kl_storage_meta_set(st, "advertise", o->advertise);
    if (r == 0 && want_first_invite(st, created))
        r = kl_admin_invite(st, 1, DEFAULT_INVITE_TTL, kl_server_wall_ms(), token, sizeof token,
                            &expires);
    if (r == 0)
        r = kl_server_start(srv, st);
    if (r) {
        fail_oper("cannot start the relay: %s", kl_strerror(r));
        goto out_loop;
    }
    st = NULL; /* the storage thread owns it now */
    if (kl_server_fed_address(srv)[0])
        kl_log(KL_LOG_INFO, "federation links accepted on %s", kl_server_fed_address(srv));
    kl_log(KL_LOG_INFO, "relay %s listening on %s (max %u connections, body <= %zu bytes)", name,
           bound, o->cfg.max_connections, o->cfg.dispatch.max_body);
    print_serve(o, bound, name, key, token, expires);
    kl_memzero(token, sizeof token);
    uv_run(&loop, UV_RUN_DEFAULT);
    kl_log(KL_LOG_INFO, "stopped");
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

int main(int argc, char **argv)
{
    int vr = kl_version_cli("kollega-relay", argc, argv);
    if (vr >= 0)
        return vr;
    opts_t o;
    memset(&o, 0, sizeof o);
    kl_server_cfg_defaults(&o.cfg);
    umask(077); /* database, WAL and key files are private */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(USAGE_MAIN, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    o.cmd = argv[1];
    if (strcmp(o.cmd, "peer") == 0)
        return kl_fed_cli_main(argc, argv);
    if (strcmp(o.cmd, "init") && strcmp(o.cmd, "serve") && strcmp(o.cmd, "invite") &&
        strcmp(o.cmd, "status"))
        return fail_usage(NULL, "unknown command '%s' (init, serve, invite, status)", o.cmd);
    int r = parse(argc, argv, &o);
    if (r)
        return r;
    if (o.help) {
        usage(o.cmd);
        return 0;
    }
    if (kl_crypto_init() != 0)
        return fail_oper("cannot initialise libsodium");
    if (strcmp(o.cmd, "init") == 0)
        return cmd_init(&o);
    if (strcmp(o.cmd, "serve") == 0)
        return cmd_serve(&o);
    if (strcmp(o.cmd, "invite") == 0)
        return cmd_invite(&o);
    return cmd_status(&o);
}
