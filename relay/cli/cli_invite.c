/* kollega-relay invite: one invite token for a new user. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "storage/storage_admin.h"
#include "kollega/err.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"

static int invite_list(kl_cli_opts_t *o, const char *dir)
{
    kl_storage_t *st = NULL;
    kl_storage_invite_info_t *v = NULL;
    size_t n = 0;
    char made[32], ends[32];
    int r = kl_cli_open_state(o, dir, 0, &st);
    if (r)
        return r;
    r = kl_storage_invite_list(st, kl_server_wall_ms(), &v, &n);
    kl_storage_close(st);
    if (r)
        return kl_cli_fail_oper("cannot list invites: %s", kl_strerror(r));
    kl_json_t j;
    if (o->json) {
        kl_cli_json_begin(&j);
        kl_json_arr_begin(&j, "invites");
    } else if (n == 0) {
        printf("no active invites (create one with kollega-relay invite --data %s)\n", dir);
    } else {
        printf("%-12s  %4s  %-20s  %-20s  %s\n", "ID", "USES", "CREATED", "EXPIRES", "FOR");
    }
    for (size_t i = 0; i < n; i++) {
        kl_admin_time(v[i].created_ms, made, sizeof made);
        kl_admin_time(v[i].expires_ms, ends, sizeof ends);
        if (o->json) {
            kl_json_obj_begin(&j, NULL);
            kl_json_str(&j, "id", v[i].id);
            kl_json_uint(&j, "uses_left", v[i].uses_left);
            kl_json_str(&j, "created_at", made);
            kl_json_str(&j, "expires_at", ends);
            kl_json_str(&j, "reset_for", v[i].handle[0] ? v[i].handle : NULL);
            kl_json_obj_end(&j);
        } else {
            printf("%-12s  %4u  %-20s  %-20s  %s\n", v[i].id, v[i].uses_left, made, ends,
                   v[i].handle[0] ? v[i].handle : "anyone");
        }
    }
    if (o->json) {
        kl_json_arr_end(&j);
        kl_cli_json_end(&j);
    }
    free(v);
    return 0;
}

static int invite_revoke(kl_cli_opts_t *o, const char *dir, const char *id)
{
    kl_storage_t *st = NULL;
    int r = kl_cli_open_state(o, dir, 0, &st);
    if (r)
        return r;
    r = kl_storage_invite_revoke(st, id, kl_server_wall_ms());
    kl_storage_close(st);
    if (r == KL_EINVAL)
        return kl_cli_fail_usage("invite", "'%s' is not an invite id: give at least %d of the "
                                 "hex digits that invite list shows", id, KL_INVITE_ID_MIN);
    if (r == KL_ENOTFOUND)
        return kl_cli_fail_oper("no active invite has an id starting with %s (see kollega-relay "
                                "invite list --data %s)", id, dir);
    if (r == KL_EEXIST)
        return kl_cli_fail_oper("several active invites have ids starting with %s: give more of "
                                "the id (see kollega-relay invite list)", id);
    if (r)
        return kl_cli_fail_oper("cannot revoke the invite: %s", kl_strerror(r));
    if (o->json) {
        kl_json_t j;
        kl_cli_json_begin(&j);
        kl_json_str(&j, "revoked", id);
        kl_cli_json_end(&j);
    } else {
        printf("revoked invite %s: it can no longer register anyone\n", id);
    }
    return 0;
}

static int cmd_invite(kl_cli_opts_t *o)
{
    char dir[KL_PATH_MAX], token[KL_INVITE_MAX + 1];
    uint64_t ttl = KL_DEFAULT_INVITE_TTL, expires = 0;
    kl_storage_t *st = NULL;
    int r = kl_cli_data_dir(o, dir, sizeof dir);
    if (r)
        return r;
    const char *sub = o->nargs ? o->args[0] : NULL;
    if (sub && (o->uses || o->expires))
        return kl_cli_fail_usage("invite", "--uses and --expires are for creating an invite");
    if (sub && strcmp(sub, "list") == 0 && o->nargs == 1)
        return invite_list(o, dir);
    if (sub && strcmp(sub, "revoke") == 0 && o->nargs == 2)
        return invite_revoke(o, dir, o->args[1]);
    if (sub && strcmp(sub, "revoke") == 0)
        return kl_cli_fail_usage("invite", "invite revoke takes one ID (see invite list)");
    if (sub)
        return kl_cli_fail_usage("invite", "unexpected argument '%s' (invite, invite list, "
                                 "invite revoke ID)", sub);
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
    if (r)
        return kl_cli_invite_error(dir, r);
    kl_cli_print_invite(o, token, uses, NULL, expires);
    kl_memzero(token, sizeof token);
    return 0;
}


static void usage(void)
{
    printf("usage: kollega-relay invite --data DIR [--uses N] [--expires DURATION]\n"
           "                    [--advertise HOST:PORT]\n"
           "       kollega-relay invite list --data DIR\n"
           "       kollega-relay invite revoke ID --data DIR\n"
           "  (no subcommand)   print a new invite token\n"
           "  list              active invites: id, uses left, created, expires, and the\n"
           "                    handle of a reset invite (user reset); never the token\n"
           "  revoke ID         delete the invite whose id starts with ID (4+ hex digits)\n"
           "  --uses N          registrations the invite admits (default 1)\n"
           "  --expires D       lifetime: 30m, 12h, 7d, or seconds (default 7d)\n"
           "  --advertise H:P   address the token gives clients, remembered for later\n"
           "                    invites (needed when serve listens on 0.0.0.0 or ::)\n");
    kl_cli_usage_common();
}

const kl_cli_cmd_t kl_cli_invite = {"invite", "print an invite token for a new user; list or revoke invites", usage, cmd_invite};
