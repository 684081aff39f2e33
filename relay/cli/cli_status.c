/* kollega-relay status: the relay's name, key, addresses and counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_admin.h"
#include "net/control.h"
#include "kollega/err.h"
#include "cli_peer.h"
#include "kollega/addr.h"

/* What the running relay says of itself (control.h), when one runs. */
typedef struct live {
    int running, asked;
    long pid;
    char started[32], uptime[24], clients[24], links[24], version[32], why[160];
} live_t;

static int ask_relay(const char *dir, live_t *l)
{
    kl_lock_holder_t h;
    char resp[KL_CTL_RESP_MAX], pid[24] = "";
    memset(l, 0, sizeof *l);
    int r = kl_cli_running(dir, &h, &l->running);
    if (r || !l->running)
        return r;
    l->pid = h.pid;
    if (h.started)
        kl_admin_time(h.started * 1000, l->started, sizeof l->started);
    r = kl_ctl_request(dir, "status", resp, sizeof resp);
    if (r || strncmp(resp, "ok ", 3) != 0) {
        snprintf(l->why, sizeof l->why, "its control socket does not answer: %.100s",
                 r ? kl_strerror(r) : resp);
        return 0;
    }
    l->asked = 1;
    kl_ctl_field(resp, "pid", pid, sizeof pid);
    kl_ctl_field(resp, "uptime_s", l->uptime, sizeof l->uptime);
    kl_ctl_field(resp, "clients", l->clients, sizeof l->clients);
    kl_ctl_field(resp, "federation_links", l->links, sizeof l->links);
    kl_ctl_field(resp, "version", l->version, sizeof l->version);
    if (pid[0])
        l->pid = strtol(pid, NULL, 10);
    return 0;
}

static void live_json(kl_json_t *j, const live_t *l)
{
    kl_json_bool(j, "running", l->running);
    if (!l->running)
        return;
    kl_json_int(j, "pid", l->pid);
    kl_json_str(j, "started_at", l->started[0] ? l->started : NULL);
    if (!l->asked) {
        kl_json_str(j, "control_error", l->why);
        return;
    }
    kl_json_uint(j, "uptime_s", strtoull(l->uptime, NULL, 10));
    kl_json_uint(j, "clients", strtoull(l->clients, NULL, 10));
    kl_json_uint(j, "federation_links", strtoull(l->links, NULL, 10));
    kl_json_str(j, "version", l->version);
}

static void live_print(const live_t *l)
{
    if (!l->running) {
        printf("state           not running\n");
        return;
    }
    unsigned long long up = strtoull(l->uptime, NULL, 10);
    if (!l->asked) {
        printf("state           running (pid %ld); %s\n", l->pid, l->why);
        return;
    }
    printf("state           running (pid %ld, up %llud %02lluh%02llum%02llus, version %s)\n"
           "connections     %s clients, %s federation links\n",
           l->pid, up / 86400, up / 3600 % 24, up / 60 % 60, up % 60, l->version, l->clients,
           l->links);
}

static int cmd_status(kl_cli_opts_t *o)
{
    live_t live;
    char dir[KL_PATH_MAX], name[KL_RELAYNAME_MAX + 1] = "", key[64] = "";
    char listen[KL_STORAGE_META_MAX + 1] = "", addr[KL_STORAGE_META_MAX + 1] = "";
    char adv[KL_STORAGE_META_MAX + 1] = "";
    kl_storage_t *st = NULL;
    kl_storage_stats_t s;
    int r = kl_cli_data_dir(o, dir, sizeof dir);
    if (r)
        return r;
    if ((r = ask_relay(dir, &live)) != 0)
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
        kl_cli_json_begin(&j);
        kl_json_str(&j, "name", name);
        live_json(&j, &live);
        kl_json_str(&j, "public_key", key);
        kl_json_str(&j, "listen", listen);
        kl_json_str(&j, "address", addr[0] ? addr : NULL);
        kl_json_str(&j, "advertise", adv[0] ? adv : NULL);
        kl_json_uint(&j, "users", s.users);
        kl_json_uint(&j, "entries", s.entries);
        kl_json_uint(&j, "entry_bytes", s.bytes);
        kl_json_uint(&j, "active_invites", s.active_invites);
        kl_json_str(&j, "data", dir);
        kl_cli_peer_status(st, &j);
        kl_cli_json_end(&j);
    } else {
        printf("relay           %s\n", name);
        live_print(&live);
        printf("public key      %s\nlisten          %s\n", key, listen);
        if (addr[0])
            printf("last bound      %s\n", addr);
        if (adv[0])
            printf("advertised      %s\n", adv);
        printf("users           %llu\nstored entries  %llu (%llu bytes)\n"
               "active invites  %llu\ndata            %s\n",
               (unsigned long long)s.users, (unsigned long long)s.entries,
               (unsigned long long)s.bytes, (unsigned long long)s.active_invites, dir);
        kl_cli_peer_status(st, NULL);
    }
    kl_storage_close(st);
    return 0;
}

static void usage(void)
{
    printf("usage: kollega-relay status --data DIR\n");
    kl_cli_usage_common();
}

const kl_cli_cmd_t kl_cli_status = {"status", "show whether the relay runs, its name, key, address and counts", usage, cmd_status};
