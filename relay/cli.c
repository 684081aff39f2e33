/* kollega-relay: the options every command shares and how they are parsed
 * (cli.h). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kollega/err.h"

static const char *USAGE_COMMON =
    "  --data DIR        data directory (default $KOLLEGA_RELAY_DATA, else\n"
    "                    $XDG_DATA_HOME/kollega-relay, else ~/.local/share/kollega-relay)\n"
    "  --json            machine-readable output (JSON)\n"
    "  --help            this help\n";

void kl_cli_usage_common(void)
{
    fputs(USAGE_COMMON, stdout);
}

void kl_cli_print_json(kl_json_t *j)
{
    printf("%s\n", kl_json_cstr(j) ? kl_json_cstr(j) : "{}");
    kl_json_free(j);
}

int kl_cli_fail_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("kollega-relay: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nrun 'kollega-relay %s%s--help' for usage\n", cmd ? cmd : "",
            cmd ? " " : "");
    return KL_EXIT_USAGE;
}

int kl_cli_fail_oper(const char *fmt, ...)
{
    va_list ap;
    fputs("kollega-relay: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return KL_EXIT_OPER;
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

static void set_num(kl_cli_opts_t *o, const char *flag, uint64_t v)
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
    {"--data", "init serve invite status user backup restore", offsetof(kl_cli_opts_t, data)},
    {"--name", "init serve", offsetof(kl_cli_opts_t, name)},
    {"--listen", "init serve", offsetof(kl_cli_opts_t, listen)},
    {"--advertise", "init serve", offsetof(kl_cli_opts_t, advertise)},
    {"--expires", "invite user", offsetof(kl_cli_opts_t, expires)},
    {"--sync", "serve", offsetof(kl_cli_opts_t, sync)},
    {"--log-level", "serve", offsetof(kl_cli_opts_t, log_level)},
    {"--federation-listen", "serve", offsetof(kl_cli_opts_t, fed_listen)},
};

/* Options come after the command, as "--flag VALUE" or "--flag=VALUE". */
int kl_cli_parse(int argc, char **argv, kl_cli_opts_t *o)
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
        if (strcmp(a, "--force") == 0 && takes("backup restore", cmd)) {
            o->force = 1;
            continue;
        }
        if (a[0] != '-' && takes("invite user backup restore", cmd) &&
            o->nargs < (int)(sizeof o->args / sizeof o->args[0])) {
            o->args[o->nargs++] = a;
            continue;
        }
        char flag[64];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        size_t fl = eq ? (size_t)(eq - a) : strlen(a);
        if (strncmp(a, "--", 2) != 0 || fl >= sizeof flag)
            return kl_cli_fail_usage(cmd, "unexpected argument '%s'", a);
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
                return kl_cli_fail_usage(cmd, "%s does not take %s", cmd, flag);
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return kl_cli_fail_usage(cmd, "%s needs a value", flag);
            if (is_str) {
                *(const char **)((char *)o + STRS[k].off) = val;
            } else {
                const num_opt_t *n = &NUMS[k - sizeof STRS / sizeof STRS[0]];
                uint64_t v;
                if (parse_u64(val, n->min, n->max, &v) != 0)
                    return kl_cli_fail_usage(cmd, "%s must be a whole number from %llu to %llu", flag,
                                      (unsigned long long)n->min, (unsigned long long)n->max);
                set_num(o, flag, v);
            }
            known = 1;
            break;
        }
        if (!known)
            return kl_cli_fail_usage(cmd, "unknown option %s", flag);
    }
    return 0;
}

int kl_cli_data_dir(const kl_cli_opts_t *o, char *dir, size_t cap)
{
    int r = kl_admin_data_dir(o->data, dir, cap);
    if (r == KL_ENOTFOUND)
        return kl_cli_fail_usage(o->cmd, "no data directory: pass --data DIR or set KOLLEGA_RELAY_DATA");
    if (r)
        return kl_cli_fail_usage(o->cmd, "data directory path too long");
    return 0;
}

int kl_cli_state_error(const char *dir, int r)
{
    return kl_cli_fail_oper("cannot read relay state in %s: %s (check the directory's permissions)", dir,
                     kl_strerror(r));
}

int kl_cli_check_listen(const kl_cli_opts_t *o, const char *v, const char *flag)
{
    char host[KL_HOST_MAX + 1];
    uint16_t port;
    if (v && kl_admin_listen_parse(v, host, sizeof host, &port) != 0)
        return kl_cli_fail_usage(o->cmd, "%s must be HOST:PORT or [IPv6]:PORT, got '%s'", flag, v);
    return 0;
}

int kl_cli_open_state(const kl_cli_opts_t *o, const char *dir, int flags, kl_storage_t **st)
{
    char db[KL_PATH_MAX];
    kl_admin_state_t state;
    int r = kl_admin_state(dir, &state);
    if (r)
        return kl_cli_state_error(dir, r);
    if (state == KL_STATE_NONE || state == KL_STATE_PARTIAL)
        return kl_cli_fail_oper("no relay state in %s: run kollega-relay init --data %s --name NAME",
                         dir, dir);
    if (state == KL_STATE_NO_KEY && strcmp(o->cmd, "serve") == 0)
        return kl_cli_fail_oper("%s/relay.db exists but %s/relay.key is missing: restore the key from "
                         "your backup (clients have pinned it)", dir, dir);
    r = kl_admin_path(dir, KL_DB_NAME, db, sizeof db);
    if (r == 0)
        r = kl_storage_open(st, db, flags);
    if (r)
        return kl_cli_fail_oper("cannot open %s: %s", db, kl_strerror(r));
    return 0;
}

