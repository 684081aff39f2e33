/* kollega-relay user list|remove|reset: the relay's members.
 *   list           handles, when each registered, what waits in its inbox
 *   remove HANDLE  delete the account; the handle is retired
 *   reset HANDLE   a one-use invite bound to HANDLE: registering with it
 *                  replaces the account's identity key (a lost device)
 * remove changes a running relay through its control socket (control.h),
 * so that its connections and caches follow; otherwise it holds the data
 * directory's lock and changes the database itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_admin.h"
#include "net/control.h"
#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage/storage_admin.h"

static int user_list(kl_cli_opts_t *o, const char *dir)
{
    kl_storage_t *st = NULL;
    kl_storage_user_info_t *v = NULL;
    size_t n = 0;
    char made[32];
    int r = kl_cli_open_state(o, dir, KL_STORAGE_READONLY, &st);
    if (r)
        return r;
    r = kl_storage_user_list(st, &v, &n);
    kl_storage_close(st);
    if (r)
        return kl_cli_fail_oper("cannot list users: %s", kl_strerror(r));
    kl_json_t j;
    if (o->json) {
        kl_cli_json_begin(&j);
        kl_json_arr_begin(&j, "users");
    } else if (n == 0) {
        printf("no users yet (invite one with kollega-relay invite --data %s)\n", dir);
    } else {
        printf("%-32s  %-20s  %8s  %10s\n", "HANDLE", "CREATED", "WAITING", "BYTES");
    }
    for (size_t i = 0; i < n; i++) {
        kl_admin_time(v[i].created_ms, made, sizeof made);
        if (o->json) {
            kl_json_obj_begin(&j, NULL);
            kl_json_str(&j, "handle", v[i].handle);
            kl_json_str(&j, "created_at", made);
            kl_json_uint(&j, "inbox_entries", v[i].entries);
            kl_json_uint(&j, "inbox_bytes", v[i].bytes);
            kl_json_obj_end(&j);
        } else {
            printf("%-32s  %-20s  %8llu  %10llu\n", v[i].handle, made,
                   (unsigned long long)v[i].entries, (unsigned long long)v[i].bytes);
        }
    }
    if (o->json) {
        kl_json_arr_end(&j);
        kl_cli_json_end(&j);
    }
    free(v);
    return 0;
}

static int user_remove(kl_cli_opts_t *o, const char *dir, const char *handle)
{
    kl_lock_holder_t h;
    unsigned long long dropped = 0;
    int running = 0, r = kl_cli_running(dir, &h, &running);
    if (r)
        return r;
    if (!running) {
        /* Hold the lock so that no relay starts on a half-changed
         * database; when one started since the check, ask it instead. */
        kl_storage_t *st = NULL;
        if ((r = kl_cli_lock(dir, 0)) != 0)
            return r;
        r = kl_cli_open_state(o, dir, 0, &st);
        if (r)
            return r;
        r = kl_storage_user_remove(st, handle, kl_server_wall_ms(), NULL);
        kl_storage_close(st);
    } else {
        char req[KL_CTL_REQ_MAX], resp[KL_CTL_RESP_MAX], v[32];
        snprintf(req, sizeof req, "user-remove %s", handle);
        r = kl_ctl_request(dir, req, resp, sizeof resp);
        if (r)
            return kl_cli_ctl_error(dir, r);
        if (strncmp(resp, "error not-found", 15) == 0)
            r = KL_ENOTFOUND;
        else if (strncmp(resp, "ok", 2) != 0)
            return kl_cli_fail_oper("the relay refused: %s", resp + (resp[0] == 'e' ? 6 : 0));
        else if (kl_ctl_field(resp, "disconnected", v, sizeof v) == 0)
            dropped = strtoull(v, NULL, 10);
    }
    if (r == KL_ENOTFOUND)
        return kl_cli_fail_oper("no user %s on this relay (see kollega-relay user list --data %s)",
                                handle, dir);
    if (r)
        return kl_cli_fail_oper("cannot remove %s: %s", handle, kl_strerror(r));
    if (o->json) {
        kl_json_t j;
        kl_cli_json_begin(&j);
        kl_json_str(&j, "removed", handle);
        kl_json_bool(&j, "relay_running", running);
        kl_json_uint(&j, "disconnected", dropped);
        kl_cli_json_end(&j);
    } else {
        printf("removed %s: account, inbox, prekeys and delivery token deleted", handle);
        if (running)
            printf(", %llu connection(s) closed", dropped);
        printf("\nthe handle %s is retired: no invite can register it again\n", handle);
    }
    return 0;
}

static int user_reset(kl_cli_opts_t *o, const char *dir, const char *handle)
{
    char token[KL_INVITE_MAX + 1], when[32];
    uint64_t ttl = KL_DEFAULT_INVITE_TTL, expires = 0;
    kl_storage_t *st = NULL;
    if (o->expires && (kl_admin_duration(o->expires, &ttl) != 0 || ttl > 365ull * 86400))
        return kl_cli_fail_usage("user", "--expires takes a duration like 30m, 12h or 7d (at most "
                                 "365d), got '%s'", o->expires);
    int r = kl_cli_open_state(o, dir, 0, &st);
    if (r)
        return r;
    r = kl_admin_invite_reset(st, handle, ttl, kl_server_wall_ms(), token, sizeof token,
                              &expires);
    kl_storage_close(st);
    if (r == KL_ENOTFOUND)
        return kl_cli_fail_oper("no user %s on this relay (see kollega-relay user list --data %s)",
                                handle, dir);
    if (r)
        return kl_cli_invite_error(dir, r);
    kl_cli_print_invite(o, token, 1, handle, expires);
    if (!o->json) {
        kl_admin_time(expires, when, sizeof when);
        fprintf(stderr,
                "one-time reset invite for %s, valid until %s. On the new device %s runs\n"
                "  kollega init --invite TOKEN --name %s\n"
                "which replaces the account's identity key (the old device is locked out then;\n"
                "what waited in the inbox is dropped). Contacts are told the key changed.\n",
                handle, when, handle, handle);
    }
    kl_memzero(token, sizeof token);
    return 0;
}

static int cmd_user(kl_cli_opts_t *o)
{
    char dir[KL_PATH_MAX];
    int r = kl_cli_data_dir(o, dir, sizeof dir);
    if (r)
        return r;
    const char *sub = o->nargs ? o->args[0] : NULL;
    if (sub == NULL)
        return kl_cli_fail_usage("user", "user needs a subcommand: list, remove HANDLE or reset "
                                 "HANDLE");
    if (o->expires && strcmp(sub, "reset") != 0)
        return kl_cli_fail_usage("user", "--expires is for user reset");
    if (strcmp(sub, "list") == 0 && o->nargs == 1)
        return user_list(o, dir);
    if ((strcmp(sub, "remove") == 0 || strcmp(sub, "reset") == 0) && o->nargs == 2) {
        if (!kl_handle_valid(o->args[1]))
            return kl_cli_fail_usage("user", "'%s' is not a handle (lower-case letters, digits, "
                                     "'-', '_' and '.')", o->args[1]);
        return sub[2] == 'm' ? user_remove(o, dir, o->args[1]) : user_reset(o, dir, o->args[1]);
    }
    return kl_cli_fail_usage("user", "expected user list, user remove HANDLE or user reset "
                             "HANDLE");
}

static void usage(void)
{
    printf("usage: kollega-relay user list --data DIR\n"
           "       kollega-relay user remove HANDLE --data DIR\n"
           "       kollega-relay user reset HANDLE --data DIR [--expires DURATION]\n"
           "  list              handles, when they registered, messages waiting for them\n"
           "  remove HANDLE     delete the account, its inbox, prekeys and delivery token,\n"
           "                    and disconnect it; the handle is retired for good\n"
           "  reset HANDLE      print a one-use invite for HANDLE only (a member who lost\n"
           "                    their device): `kollega init` with it and the same handle\n"
           "                    replaces the account's identity key\n"
           "  --expires D       lifetime of the reset invite (default 7d)\n");
    kl_cli_usage_common();
}

const kl_cli_cmd_t kl_cli_user = {"user", "list, remove or reset (lost device) the relay's users",
                                  usage, cmd_user};
