/* kollega-relay status: the relay's name, key, addresses and counts. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kollega/err.h"
#include "fed_cli.h"
#include "kollega/addr.h"

static int cmd_status(kl_cli_opts_t *o)
{
    char dir[KL_PATH_MAX], name[KL_RELAYNAME_MAX + 1] = "", key[64] = "";
    char listen[KL_STORAGE_META_MAX + 1] = "", addr[KL_STORAGE_META_MAX + 1] = "";
    char adv[KL_STORAGE_META_MAX + 1] = "";
    kl_storage_t *st = NULL;
    kl_storage_stats_t s;
    int r = kl_cli_data_dir(o, dir, sizeof dir);
    if (r)
        return r;
    r = kl_cli_open_state(o, dir, KL_STORAGE_READONLY, &st);
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
        return kl_cli_fail_oper("cannot read relay status in %s: %s", dir, kl_strerror(r));
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
        kl_cli_print_json(&j);
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

static void usage(void)
{
    printf("usage: kollega-relay status --data DIR\n");
    kl_cli_usage_common();
}

const kl_cli_cmd_t kl_cli_status = {"status", "show the relay's name, key, address and counts", usage, cmd_status};
