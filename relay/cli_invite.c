/* kollega-relay invite: one invite token for a new user. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kollega/err.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"

static int cmd_invite(kl_cli_opts_t *o)
{
    char dir[KL_PATH_MAX], token[KL_INVITE_MAX + 1], when[32];
    uint64_t ttl = KL_DEFAULT_INVITE_TTL, expires = 0;
    kl_storage_t *st = NULL;
    int r = kl_cli_data_dir(o, dir, sizeof dir);
    if (r)
        return r;
    if (o->expires && (kl_admin_duration(o->expires, &ttl) != 0 || ttl > 365ull * 86400))
        return kl_cli_fail_usage("invite", "--expires takes a duration like 30m, 12h or 7d (at most "
                                    "365d), got '%s'", o->expires);
    r = kl_cli_open_state(o, dir, 0, &st);
    if (r)
        return r;
    uint32_t uses = o->uses ? (uint32_t)o->uses : 1;
    if (o->advertise && kl_storage_meta_set(st, "advertise", o->advertise) != 0) {
        kl_storage_close(st);
        return kl_cli_fail_oper("cannot record --advertise %s in %s/relay.db", o->advertise, dir);
    }
    r = kl_admin_invite(st, uses, ttl, kl_server_wall_ms(), token, sizeof token, &expires);
    kl_storage_close(st);
    if (r == KL_ESTATE)
        return kl_cli_fail_oper("this relay listens on every interface (0.0.0.0 or ::), so an invite "
                                "cannot say where clients connect; give the address clients reach "
                                "it at (it is remembered):\n  kollega-relay invite --data %s "
                                "--advertise HOST:PORT\n(or set advertise = HOST:PORT in the "
                                "config file)", dir);
    if (r)
        return kl_cli_fail_oper("cannot create an invite: %s%s", kl_strerror(r),
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
        kl_cli_print_json(&j);
    } else {
        printf("%s\n", token);
    }
    kl_memzero(token, sizeof token);
    return 0;
}


static void usage(void)
{
    printf("usage: kollega-relay invite --data DIR [--uses N] [--expires DURATION]\n"
           "                    [--advertise HOST:PORT]\n"
           "  --uses N          registrations the invite admits (default 1)\n"
           "  --expires D       lifetime: 30m, 12h, 7d, or seconds (default 7d)\n"
           "  --advertise H:P   address the token gives clients, remembered for later\n"
           "                    invites (needed when serve listens on 0.0.0.0 or ::)\n");
    kl_cli_usage_common();
}

const kl_cli_cmd_t kl_cli_invite = {"invite", "print one invite token for a new user", usage, cmd_invite};
