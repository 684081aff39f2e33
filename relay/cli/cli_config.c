/* kollega-relay config check [FILE]: validate a configuration file and
 * print the settings serve would run with (before its flags). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "kollega/err.h"

/* What serve does for a text key left unset. */
static const char *unset_text(const char *key)
{
    static const char *const T[][2] = {
        {"data", "$KOLLEGA_RELAY_DATA, else ~/.local/share/kollega-relay"},
        {"name", "the name in the data directory (the host name at first start)"},
        {"listen", "the address given to init, else " KL_DEFAULT_LISTEN},
        {"advertise", "the remembered one, else the listen address"},
        {"sync", "full"},
        {"log-level", "info"},
        {"log-format", "text"},
        {"federation-listen", "the remembered one, else none"},
        {"metrics-listen", "off"},
        {"max-db-bytes", "no cap"},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (strcmp(key, T[i][0]) == 0)
            return T[i][1];
    return "the built-in default";
}

static int cmd_config(kl_cli_opts_t *o)
{
    char err[512], v[KL_PATH_MAX];
    uint64_t set = 0;
    if (o->nargs < 1 || strcmp(o->args[0], "check") != 0)
        return kl_cli_fail_usage("config", "config needs a subcommand: config check [FILE]");
    if (o->nargs > 2)
        return kl_cli_fail_usage("config", "config check takes one FILE, got '%s' too",
                                 o->args[2]);
    const char *path = o->nargs == 2 ? o->args[1] : kl_config_default_path();
    if (path == NULL)
        return kl_cli_fail_usage("config", "no FILE given and no %s (nor $%s): name the file to "
                                 "check", KL_CONFIG_DEFAULT, KL_CONFIG_ENV);
    int r = kl_config_load(o, path, &set, err, sizeof err);
    if (r) {
        if (o->json) {
            kl_json_t j;
            kl_cli_json_begin(&j);
            kl_json_str(&j, "file", path);
            kl_json_bool(&j, "valid", 0);
            kl_json_str(&j, "error", err);
            kl_cli_json_end(&j);
        }
        fprintf(stderr, "kollega-relay: %s\n", err);
        kl_cli_opts_release(o);
        return KL_EXIT_USAGE;
    }
    kl_json_t j;
    if (o->json) {
        kl_cli_json_begin(&j);
        kl_json_str(&j, "file", path);
        kl_json_bool(&j, "valid", 1);
        kl_json_obj_begin(&j, "settings");
    } else {
        printf("%s is valid; serve would run with (flags given to serve win over these):\n",
               path);
    }
    for (size_t i = 0; kl_cli_key(i); i++) {
        const char *key = kl_cli_key(i);
        uint64_t min, max;
        int num = kl_cli_key_range(key, &min, &max) == 0;
        int has = kl_cli_key_get(o, key, v, sizeof v) == 0;
        const char *from = set & (1ull << i) ? "file" : "default";
        if (o->json) {
            kl_json_obj_begin(&j, key);
            if (!has) {
                kl_json_null(&j, "value");
                kl_json_str(&j, "unset_means", unset_text(key));
            }
            else if (num)
                kl_json_uint(&j, "value", strtoull(v, NULL, 10));
            else
                kl_json_str(&j, "value", v);
            kl_json_str(&j, "from", from);
            kl_json_obj_end(&j);
        } else {
            printf("  %-20s = %s%s%s\n", key, has ? v : "(", has ? "" : unset_text(key),
                   set & (1ull << i) ? "" : has ? "  (default)" : ")");
        }
    }
    if (o->json) {
        kl_json_obj_end(&j);
        kl_cli_json_end(&j);
    }
    kl_cli_opts_release(o);
    return 0;
}

static void usage(void)
{
    printf("usage: kollega-relay config check [FILE] [--json]\n"
           "  Check a configuration file for serve and print the settings it gives\n"
           "  (every key, from the file or the default). Exit 0 when it is valid, 2\n"
           "  when it is not (the error names the file, line and key).\n"
           "  FILE defaults to the file serve reads by default: $%s\n"
           "  when set (empty: none), else %s.\n"
           "  --json            one object: file, valid, settings {key: {value, from}}\n"
           "                    (or error)\n"
           "  --help            this help\n",
           KL_CONFIG_ENV, KL_CONFIG_DEFAULT);
}

const kl_cli_cmd_t kl_cli_config = {"config", "check a configuration file (config check FILE)", usage,
                                    cmd_config};
