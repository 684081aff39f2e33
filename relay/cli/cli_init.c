/* kollega-relay init: create relay state (key, database) in a data
 * directory. serve calls kl_cli_init_dir too when it finds none. */
#include <stdio.h>
#include <string.h>

#include "cli_admin.h"
#include "kollega/err.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"

int kl_cli_init_dir(const kl_cli_opts_t *o, const char *dir, const char *name, int quiet)
{
    const char *listen = o->listen ? o->listen : KL_DEFAULT_LISTEN;
    int r = kl_admin_init(dir, name, listen, o->sync && strcmp(o->sync, "normal") == 0);
    if (r == KL_EREFUSED)
        return kl_cli_fail_oper("%s/relay.key is readable by other users: run chmod 600 %s/relay.key",
                         dir, dir);
    if (r)
        return kl_cli_fail_oper("cannot initialise relay state in %s: %s", dir, kl_strerror(r));
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
            return kl_cli_fail_oper("cannot record the advertised address: %s", kl_strerror(r));
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
        kl_cli_json_begin(&j);
        kl_json_str(&j, "name", name);
        kl_json_str(&j, "public_key", key);
        kl_json_str(&j, "listen", listen);
        kl_json_str(&j, "data", dir);
        kl_cli_json_end(&j);
    } else {
        printf("initialised relay %s in %s\npublic key: %s\nlisten: %s\n"
               "next: kollega-relay serve --data %s\n",
               name, dir, key, listen, dir);
    }
    return 0;
}

static int cmd_init(kl_cli_opts_t *o)
{
    char dir[KL_PATH_MAX];
    kl_admin_state_t state;
    int r = kl_cli_data_dir(o, dir, sizeof dir);
    if (r)
        return r;
    if (o->name == NULL)
        return kl_cli_fail_usage("init", "init needs --name NAME (the relay's DNS-style name, e.g. "
                                  "oslo.example.org)");
    if (!kl_relayname_valid(o->name))
        return kl_cli_fail_usage("init", "invalid relay name '%s': use lower-case letters, digits, '-' "
                                  "and '.'", o->name);
    if ((r = kl_cli_check_listen(o, o->listen, "--listen")) || (r = kl_cli_check_listen(o, o->advertise,
                                                                          "--advertise")))
        return r;
    if ((r = kl_cli_lock(dir, 1)) != 0)
        return r;
    r = kl_admin_state(dir, &state);
    if (r)
        return kl_cli_state_error(dir, r);
    if (state == KL_STATE_READY || state == KL_STATE_NO_KEY)
        return kl_cli_fail_oper("relay state already exists in %s: start it with kollega-relay serve "
                         "--data %s", dir, dir);
    return kl_cli_init_dir(o, dir, o->name, 0);
}


static void usage(void)
{
    printf("usage: kollega-relay init --data DIR --name NAME [--listen HOST:PORT]\n"
           "                          [--advertise HOST:PORT]\n"
           "  --name NAME       relay name; user addresses are handle@NAME\n"
           "  --listen H:P      address serve listens on (default %s)\n"
           "  --advertise H:P   address invite tokens give clients (default: the\n"
           "                    listen address). Needed when listening on 0.0.0.0 or ::\n"
           "                    (every interface): invite refuses to guess one then\n",
           KL_DEFAULT_LISTEN);
    kl_cli_usage_common();
}

const kl_cli_cmd_t kl_cli_init = {"init", "create relay state (key, database) in a data directory", usage, cmd_init};
