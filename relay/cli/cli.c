/* kollega-relay: the options every command shares and how they are parsed
 * (cli.h). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/tcpaddr.h"
#include "cli.h"
#include "kollega/addr.h"
#include "kollega/err.h"
#include "base/diag.h"

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

void kl_cli_json_begin(kl_json_t *j)
{
    kl_json_init(j);
    kl_json_obj_begin(j, NULL);
}

void kl_cli_json_end(kl_json_t *j)
{
    kl_json_obj_end(j);
    kl_cli_print_json(j);
}

/* "kollega-relay: " and the message on stderr, without a newline. */
static void say(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static void say(const char *fmt, va_list ap)
{
    fputs("kollega-relay: ", stderr);
    vfprintf(stderr, fmt, ap);
}

int kl_cli_fail_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nrun 'kollega-relay %s%s--help' for usage\n", cmd ? cmd : "",
            cmd ? " " : "");
    return KL_EXIT_USAGE;
}

int kl_cli_fail_oper(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(fmt, ap);
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

/* A numeric option and the field of kl_cli_opts_t it sets (a uint32_t, a
 * size_t or a uint64_t): its flag, its config key and config check all set
 * or read that field through set_num and get_num. */
typedef struct num_opt {
    const char *flag;
    const char *cmds; /* commands that take it, space separated */
    uint64_t min, max;
    size_t off, size;
} num_opt_t;

#define O(f) offsetof(kl_cli_opts_t, f), sizeof(((kl_cli_opts_t *)0)->f)
static const num_opt_t NUMS[] = {
    {"--uses", "invite", 1, 1000000, O(uses)},
    {"--max-connections", "serve", 1, 1000000, O(cfg.max_connections)},
    {"--rate", "serve", 1, 1000000, O(cfg.dispatch.rate)},
    {"--burst", "serve", 1, 1000000, O(cfg.dispatch.burst)},
    {"--idle-timeout", "serve", 1, 86400, O(cfg.idle_timeout_s)},
    {"--handshake-timeout", "serve", 1, 3600, O(cfg.handshake_timeout_s)},
    {"--max-body", "serve", 1, KL_MAX_BODY_LIMIT, O(cfg.dispatch.max_body)},
    {"--quota-entries", "serve", 1, 100000000, O(cfg.dispatch.quota.max_entries)},
    {"--quota-bytes", "serve", 1, 1ull << 40, O(cfg.dispatch.quota.max_bytes)},
    {"--write-queue", "serve", 65536, 1u << 30, O(cfg.write_queue)},
    /* also sets ttl_max_s (set_num) */
    {"--ttl-default", "serve", 60, 10u * 365 * 86400, O(cfg.dispatch.ttl_default_s)},
    {"--max-db-bytes", "serve", 1u << 20, 1ull << 50, O(max_db_bytes)},
    {"--federation-retry-max", "serve", 1, 3600, O(cfg.fed_retry_max_s)},
    {"--opk-window", "serve", 1, KL_OPK_WINDOW_S_MAX, O(cfg.opk.window_s)},
    {"--opk-per-pair", "serve", 1, KL_OPK_PER_MAX, O(cfg.opk.per_pair)},
    {"--opk-per-requester", "serve", 1, KL_OPK_PER_MAX, O(cfg.opk.per_requester)},
    {"--opk-per-target", "serve", 1, KL_OPK_PER_MAX, O(cfg.opk.per_target)},
    {"--opk-per-peer", "serve", 1, KL_OPK_PER_MAX, O(cfg.opk.per_peer)},
    {"--unidentified-rate", "serve", 1, KL_UD_PER_MIN_MAX, O(cfg.ud_per_min)},
};
#undef O
_Static_assert(sizeof(size_t) == sizeof(uint32_t) || sizeof(size_t) == sizeof(uint64_t),
               "set_num and get_num read a size_t as a uint32_t or a uint64_t");

static int takes(const char *cmds, const char *cmd)
{
    size_t n = strlen(cmd);
    for (const char *p = cmds; (p = strstr(p, cmd)) != NULL; p += n)
        if ((p == cmds || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
            return 1;
    return 0;
}

/* Set n's field to v (within n's range, so it fits the field: a size_t is
 * as wide as a uint32_t or a uint64_t). */
static void set_num(kl_cli_opts_t *o, const num_opt_t *n, uint64_t v)
{
    char *p = (char *)o + n->off;
    uint32_t v32 = (uint32_t)v;
    if (n->size == sizeof v32)
        memcpy(p, &v32, sizeof v32);
    else
        memcpy(p, &v, sizeof v);
    if (n->off == offsetof(kl_cli_opts_t, cfg.dispatch.ttl_default_s))
        o->cfg.dispatch.ttl_max_s = v32;
}

/* The value of n's field (the effective one: default, file or flag), for
 * config check and reload. */
static uint64_t get_num(const kl_cli_opts_t *o, const num_opt_t *n)
{
    const char *p = (const char *)o + n->off;
    uint32_t v32;
    uint64_t v64;
    if (n->size == sizeof v32) {
        memcpy(&v32, p, sizeof v32);
        return v32;
    }
    memcpy(&v64, p, sizeof v64);
    return v64;
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
    {"--advertise", "init serve invite", offsetof(kl_cli_opts_t, advertise)},
    {"--expires", "invite user", offsetof(kl_cli_opts_t, expires)},
    {"--sync", "serve", offsetof(kl_cli_opts_t, sync)},
    {"--log-level", "serve", offsetof(kl_cli_opts_t, log_level)},
    {"--federation-listen", "serve", offsetof(kl_cli_opts_t, fed_listen)},
    {"--config", "serve", offsetof(kl_cli_opts_t, config)},
    {"--log-format", "serve", offsetof(kl_cli_opts_t, log_format)},
    {"--metrics-listen", "serve", offsetof(kl_cli_opts_t, metrics_listen)},
};
#define NSTRS (sizeof STRS / sizeof STRS[0])
#define NNUMS (sizeof NUMS / sizeof NUMS[0])
_Static_assert(NSTRS <= KL_CLI_FILE_STRS, "kl_cli_opts_t.file_strs holds every string option");

/* What a string option's value must be, or NULL when v is fine. The same
 * check runs for the flag and for its key in a config file. */
static const char *check_str(const char *flag, const char *v)
{
    char host[KL_HOST_MAX + 1];
    uint16_t port;
    kl_diag_level_t lv;
    kl_diag_format_t lf;
    if (v[0] == '\0')
        return "a value";
    if (strcmp(flag, "--sync") == 0 && strcmp(v, "full") != 0 && strcmp(v, "normal") != 0)
        return "full or normal";
    if (strcmp(flag, "--log-level") == 0 && kl_diag_level_parse(v, &lv) != 0)
        return "debug, info, warn or error";
    if (strcmp(flag, "--log-format") == 0 && kl_diag_format_parse(v, &lf) != 0)
        return "text or json";
    if ((strcmp(flag, "--listen") == 0 || strcmp(flag, "--advertise") == 0 ||
         strcmp(flag, "--federation-listen") == 0 || strcmp(flag, "--metrics-listen") == 0) &&
        kl_listen_parse(v, host, sizeof host, &port) != 0)
        return "HOST:PORT or [IPv6]:PORT";
    if (strcmp(flag, "--advertise") == 0 && kl_admin_wildcard(host))
        return "the HOST:PORT clients reach this relay at (not 0.0.0.0 or ::)";
    if (strcmp(flag, "--name") == 0 && !kl_relayname_valid(v))
        return "a relay name (lower-case letters, digits, '-' and '.')";
    return NULL;
}

/* Set option flag to val. 0; KL_ENOTFOUND: no such option; KL_EINVAL: a
 * bad value, *expect says what it must be. copy: strings are copied into o
 * (a config file's buffer does not outlive its parsing). */
static int set_opt(kl_cli_opts_t *o, const char *flag, const char *val, int copy, char *expect,
                   size_t cap)
{
    for (size_t k = 0; k < NSTRS; k++) {
        if (strcmp(flag, STRS[k].flag) != 0)
            continue;
        const char *why = check_str(flag, val);
        if (why) {
            snprintf(expect, cap, "%s", why);
            return KL_EINVAL;
        }
        if (copy) {
            char *dup = strdup(val);
            if (dup == NULL) {
                snprintf(expect, cap, "memory for the value");
                return KL_EINVAL;
            }
            free(o->file_strs[k]);
            o->file_strs[k] = dup;
            val = dup;
        }
        *(const char **)((char *)o + STRS[k].off) = val;
        return 0;
    }
    for (size_t k = 0; k < NNUMS; k++) {
        uint64_t v;
        if (strcmp(flag, NUMS[k].flag) != 0)
            continue;
        if (parse_u64(val, NUMS[k].min, NUMS[k].max, &v) != 0) {
            snprintf(expect, cap, "a whole number from %llu to %llu",
                     (unsigned long long)NUMS[k].min, (unsigned long long)NUMS[k].max);
            return KL_EINVAL;
        }
        set_num(o, &NUMS[k], v);
        return 0;
    }
    return KL_ENOTFOUND;
}

/* Every serve option but --config has a key: NUMS first, then STRS (the
 * order keys are listed in). */
static const char *key_flag(size_t i)
{
    for (size_t k = 0; k < NNUMS + NSTRS; k++) {
        const char *f = k < NNUMS ? NUMS[k].flag : STRS[k - NNUMS].flag;
        const char *cmds = k < NNUMS ? NUMS[k].cmds : STRS[k - NNUMS].cmds;
        if (!takes(cmds, "serve") || strcmp(f, "--config") == 0)
            continue;
        if (i-- == 0)
            return f;
    }
    return NULL;
}

const char *kl_cli_key(size_t i)
{
    const char *f = key_flag(i);
    return f ? f + 2 : NULL;
}

int kl_cli_key_set(kl_cli_opts_t *o, const char *key, const char *val, char *expect, size_t cap)
{
    char flag[64];
    if (strlen(key) + 3 > sizeof flag || strcmp(key, "config") == 0)
        return KL_ENOTFOUND;
    snprintf(flag, sizeof flag, "--%s", key);
    for (size_t i = 0; key_flag(i); i++)
        if (strcmp(key_flag(i), flag) == 0)
            return set_opt(o, flag, val, 1, expect, cap);
    return KL_ENOTFOUND;
}

int kl_cli_key_get(const kl_cli_opts_t *o, const char *key, char *out, size_t cap)
{
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", key);
    for (size_t k = 0; k < NSTRS; k++) {
        if (strcmp(flag, STRS[k].flag) != 0)
            continue;
        const char *v = *(const char *const *)((const char *)o + STRS[k].off);
        if (v == NULL)
            return KL_ENOTFOUND;
        snprintf(out, cap, "%s", v);
        return 0;
    }
    for (size_t k = 0; k < NNUMS; k++) {
        if (strcmp(flag, NUMS[k].flag) != 0)
            continue;
        uint64_t v = get_num(o, &NUMS[k]);
        if (v == 0)
            return KL_ENOTFOUND; /* 0 is "not set" (--max-db-bytes: no cap) */
        snprintf(out, cap, "%llu", (unsigned long long)v);
        return 0;
    }
    return KL_ENOTFOUND;
}

int kl_cli_key_range(const char *key, uint64_t *min, uint64_t *max)
{
    for (size_t k = 0; k < NNUMS; k++) {
        if (strncmp(NUMS[k].flag, "--", 2) == 0 && strcmp(NUMS[k].flag + 2, key) == 0) {
            *min = NUMS[k].min;
            *max = NUMS[k].max;
            return 0;
        }
    }
    return KL_ENOTFOUND;
}

void kl_cli_opts_release(kl_cli_opts_t *o)
{
    for (size_t k = 0; k < KL_CLI_FILE_STRS; k++) {
        free(o->file_strs[k]);
        o->file_strs[k] = NULL;
    }
}

/* Commands that take positional arguments (after or among the options). */
static const char *const POSITIONAL_CMDS = "config invite user backup restore";

/* Options come after the command, as "--flag VALUE" or "--flag=VALUE". */
int kl_cli_parse(int argc, char **argv, kl_cli_opts_t *o)
{
    const char *cmd = o->cmd;
    o->argc = argc;
    o->argv = argv;
    o->nargs = 0;
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
        if (strncmp(a, "--", 2) != 0 && takes(POSITIONAL_CMDS, cmd)) {
            if (o->nargs == KL_CLI_ARGS_MAX)
                return kl_cli_fail_usage(cmd, "too many arguments ('%s')", a);
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
        const char *cmds = NULL;
        for (size_t k = 0; k < NSTRS + NNUMS && cmds == NULL; k++)
            if (strcmp(flag, k < NSTRS ? STRS[k].flag : NUMS[k - NSTRS].flag) == 0)
                cmds = k < NSTRS ? STRS[k].cmds : NUMS[k - NSTRS].cmds;
        if (cmds == NULL)
            return kl_cli_fail_usage(cmd, "unknown option %s", flag);
        if (!takes(cmds, cmd))
            return kl_cli_fail_usage(cmd, "%s does not take %s", cmd, flag);
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return kl_cli_fail_usage(cmd, "%s needs a value", flag);
        char expect[96];
        if (set_opt(o, flag, val, 0, expect, sizeof expect) != 0)
            return kl_cli_fail_usage(cmd, "%s must be %s, got '%s'", flag, expect, val);
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
    if (v && kl_listen_parse(v, host, sizeof host, &port) != 0)
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


int kl_cli_invite_error(const char *dir, int r)
{
    if (r == KL_ESTATE)
        return kl_cli_fail_oper("this relay listens on every interface (0.0.0.0 or ::), so an "
                                "invite cannot say where clients connect; give the address "
                                "clients reach it at (it is remembered):\n  kollega-relay invite "
                                "--data %s --advertise HOST:PORT\n(or set advertise = HOST:PORT "
                                "in the config file)", dir);
    return kl_cli_fail_oper("cannot create an invite: %s%s", kl_strerror(r),
                            r == KL_EIO ? " (is the disk full, or the database locked too long?)"
                                        : "");
}

void kl_cli_print_invite(const kl_cli_opts_t *o, const char *token, uint32_t uses,
                         const char *handle, uint64_t expires_ms)
{
    char when[32];
    if (!o->json) {
        printf("%s\n", token);
        return;
    }
    kl_json_t j;
    kl_admin_time(expires_ms, when, sizeof when);
    kl_cli_json_begin(&j);
    kl_json_str(&j, "token", token);
    if (handle)
        kl_json_str(&j, "handle", handle);
    else
        kl_json_uint(&j, "uses", uses);
    kl_json_str(&j, "expires_at", when);
    kl_cli_json_end(&j);
}
