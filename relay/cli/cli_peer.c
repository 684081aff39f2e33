/* kollega-relay peer add|list|remove, and the peers part of `status`.
 *   peer add    --data DIR NAME HOST:PORT KEY [--outbox-entries N]
 *               [--outbox-bytes N] [--rate N]
 *   peer list   --data DIR
 *   peer remove --data DIR NAME
 * HOST:PORT is the peer's federation port (its serve --federation-listen),
 * KEY its relay public key (base64url, as its `status` prints). A running
 * serve applies changes on SIGHUP (or at its next start). */
#include <errno.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "cli.h"
#include "cli_peer.h"
#include "cmdline/json.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "storage/storage_cmirror.h"
#include "storage/storage_fed.h"

#define EXIT_OPER 1
#define EXIT_USAGE 2

static const char *USAGE =
    "usage: kollega-relay peer add    --data DIR NAME HOST:PORT KEY [--outbox-entries N]\n"
    "                                 [--outbox-bytes N] [--rate N]\n"
    "       kollega-relay peer list   --data DIR\n"
    "       kollega-relay peer remove --data DIR NAME\n"
    "Federation peers: relays this relay exchanges messages with (Noise_KK links).\n"
    "  NAME               the peer relay's name (its users are handle@NAME)\n"
    "  HOST:PORT          the peer's federation port (its serve --federation-listen)\n"
    "  KEY                the peer relay's public key (its `kollega-relay status`);\n"
    "                     a key that starts with - is taken as it is (or put -- before it)\n"
    "  --outbox-entries N messages queued for the peer at most (default 100000)\n"
    "  --outbox-bytes N   bytes queued for the peer at most (default 268435456)\n"
    "  --rate N           frames per second the peer may send us (default 2000)\n"
    "  --data DIR         data directory (default $KOLLEGA_RELAY_DATA, else\n"
    "                     $XDG_DATA_HOME/kollega-relay, else\n"
    "                     ~/.local/share/kollega-relay)\n"
    "  --json             machine-readable output (JSON)\n"
    "  --help             this help\n"
    "A running `kollega-relay serve` applies changes when it gets SIGHUP\n"
    "(kill -HUP PID, systemctl reload), or at its next start.\n";

static int usage_err(const char *msg, const char *arg)
{
    fprintf(stderr, "kollega-relay: %s%s%s\nrun 'kollega-relay peer --help' for usage\n", msg,
            arg ? " " : "", arg ? arg : "");
    return EXIT_USAGE;
}

/* 1 if a is shaped like a relay public key (43 base64url characters): such
 * an argument is a positional even when it starts with "--", since a key
 * may (one in 4096) and no option is shaped like one. */
static int key_shaped(const char *a)
{
    size_t n = strlen(a);
    if (n != 43)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)a[i]) && a[i] != '-' && a[i] != '_')
            return 0;
    return 1;
}

static int num(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Channel mirrors with peer p (storage_cmirror.h). */
typedef struct mstats {
    uint64_t mirrors, mirrored, lag;
} mstats_t;

static void peer_json(kl_json_t *j, const kl_storage_peer_t *p, const mstats_t *m)
{
    char key[64];
    kl_b64_encode(p->key, 32, key, sizeof key);
    kl_json_obj_begin(j, NULL);
    kl_json_str(j, "name", p->name);
    kl_json_str(j, "address", p->addr);
    kl_json_str(j, "key", key);
    kl_json_str(j, "link", p->state[0] ? p->state : "never started");
    if (p->state_ms) {
        char when[32];
        kl_admin_time(p->state_ms, when, sizeof when);
        kl_json_str(j, "link_since", when);
    }
    kl_json_uint(j, "outbox", p->depth);
    kl_json_uint(j, "outbox_bytes", p->depth_bytes);
    kl_json_uint(j, "outbox_max_entries", p->quota.max_entries);
    kl_json_uint(j, "outbox_max_bytes", p->quota.max_bytes);
    kl_json_uint(j, "rate", p->rate);
    kl_json_uint(j, "channel_mirrors", m->mirrors);
    kl_json_uint(j, "mirrored_channels", m->mirrored);
    kl_json_uint(j, "mirror_lag", m->lag);
    kl_json_obj_end(j);
}

int kl_cli_peer_status(kl_storage_t *st, kl_json_t *j)
{
    kl_storage_peer_t *v = NULL;
    size_t n = 0;
    int r = kl_storage_fed_peer_list(st, &v, &n);
    if (r)
        return r;
    if (j)
        kl_json_arr_begin(j, "peers");
    for (size_t i = 0; i < n && r == 0; i++) {
        mstats_t m;
        r = kl_storage_cmirror_stats(st, v[i].name, &m.mirrors, &m.mirrored, &m.lag);
        if (r)
            break;
        if (j) {
            peer_json(j, &v[i], &m);
            continue;
        }
        printf("peer            %s at %s: link %s, outbox %llu (%llu bytes)\n", v[i].name,
               v[i].addr, v[i].state[0] ? v[i].state : "never started",
               (unsigned long long)v[i].depth, (unsigned long long)v[i].depth_bytes);
        if (m.mirrors || m.mirrored)
            printf("                channels: %llu of theirs mirrored here; %llu of ours mirrored "
                   "there, %llu post(s) not taken yet\n",
                   (unsigned long long)m.mirrors, (unsigned long long)m.mirrored,
                   (unsigned long long)m.lag);
    }
    if (j)
        kl_json_arr_end(j);
    free(v);
    return r;
}

static int open_db(const char *data, int flags, kl_storage_t **st)
{
    char dir[KL_PATH_MAX], db[KL_PATH_MAX];
    kl_admin_state_t state;
    if (kl_admin_data_dir(data, dir, sizeof dir) != 0)
        return usage_err("no data directory: pass --data DIR or set KOLLEGA_RELAY_DATA", NULL);
    if (kl_admin_state(dir, &state) != 0 || state != KL_STATE_READY) {
        fprintf(stderr, "kollega-relay: no relay state in %s: run kollega-relay init --data %s "
                "--name NAME\n", dir, dir);
        return EXIT_OPER;
    }
    int r = kl_admin_path(dir, KL_DB_NAME, db, sizeof db);
    if (r == 0)
        r = kl_storage_open(st, db, flags);
    if (r) {
        fprintf(stderr, "kollega-relay: cannot open %s: %s\n", db, kl_strerror(r));
        return EXIT_OPER;
    }
    return 0;
}

int kl_cli_peer_main(int argc, char **argv)
{
    const char *data = NULL, *pos[4] = {NULL};
    size_t npos = 0;
    int json = 0;
    kl_storage_peer_t p;
    memset(&p, 0, sizeof p);
    p.quota.max_entries = 100000;
    p.quota.max_bytes = 256ull << 20;
    p.rate = 2000;
    int options = 1; /* until "--": everything after it is a positional */
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        uint64_t v = 0;
        if (!options || a[0] != '-' || key_shaped(a)) {
            if (npos >= 4)
                return usage_err("unexpected argument", a);
            pos[npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options = 0;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--data") == 0 || strcmp(a, "--outbox-entries") == 0 ||
                   strcmp(a, "--outbox-bytes") == 0 || strcmp(a, "--rate") == 0) {
            if (i + 1 >= argc)
                return usage_err(a, "needs a value");
            const char *val = argv[++i];
            if (strcmp(a, "--data") == 0)
                data = val;
            else if (strcmp(a, "--rate") == 0 && num(val, 1, 1000000, &v) == 0)
                p.rate = (uint32_t)v;
            else if (strcmp(a, "--outbox-entries") == 0 && num(val, 1, 100000000, &v) == 0)
                p.quota.max_entries = v;
            else if (strcmp(a, "--outbox-bytes") == 0 && num(val, 65536, 1ull << 40, &v) == 0)
                p.quota.max_bytes = v;
            else
                return usage_err("invalid value for", a);
        } else if (strncmp(a, "--", 2) == 0) {
            return usage_err("unknown option", a);
        } else if (npos < 4) {
            pos[npos++] = a; /* "-" alone, or a single-dash word */
        } else {
            return usage_err("unexpected argument", a);
        }
    }
    if (npos == 0)
        return usage_err("peer needs a subcommand: add, list or remove", NULL);
    if (kl_crypto_init() != 0)
        return EXIT_OPER;
    const char *sub = pos[0];
    kl_storage_t *st = NULL;
    int rc;
    if (strcmp(sub, "list") == 0) {
        if (npos != 1)
            return usage_err("peer list takes no arguments", NULL);
        if ((rc = open_db(data, KL_STORAGE_READONLY, &st)))
            return rc;
        kl_json_t j;
        kl_cli_json_begin(&j);
        int r = kl_cli_peer_status(st, json ? &j : NULL);
        if (r == 0 && json)
            kl_cli_json_end(&j);
        else
            kl_json_free(&j);
        kl_storage_close(st);
        if (r) {
            fprintf(stderr, "kollega-relay: cannot list peers: %s\n", kl_strerror(r));
            return EXIT_OPER;
        }
        return 0;
    }
    if (strcmp(sub, "remove") == 0) {
        if (npos != 2)
            return usage_err("usage: peer remove --data DIR NAME", NULL);
        if ((rc = open_db(data, 0, &st)))
            return rc;
        int r = kl_storage_fed_peer_remove(st, pos[1]);
        kl_storage_close(st);
        if (r) {
            fprintf(stderr, "kollega-relay: cannot remove peer %s: %s\n", pos[1],
                    r == KL_ENOTFOUND ? "no such peer (see peer list)" : kl_strerror(r));
            return EXIT_OPER;
        }
        printf(json ? "{\"removed\":\"%s\"}\n" : "removed peer %s (send serve SIGHUP to apply)\n",
               pos[1]);
        return 0;
    }
    if (strcmp(sub, "add") != 0)
        return usage_err("unknown peer subcommand (add, list, remove):", sub);
    if (npos != 4)
        return usage_err("usage: peer add --data DIR NAME HOST:PORT KEY", NULL);
    char host[KL_HOST_MAX + 1];
    uint16_t port = 0;
    size_t klen = 0;
    if (!kl_relayname_valid(pos[1]))
        return usage_err("invalid relay name", pos[1]);
    if (strlen(pos[2]) > KL_FED_HOSTPORT_MAX ||
        kl_hostport_parse(pos[2], host, sizeof host, &port) != 0)
        return usage_err("HOST:PORT expected, got", pos[2]);
    if (kl_b64_decode(pos[3], p.key, sizeof p.key, &klen) != 0 || klen != 32)
        return usage_err("KEY must be a relay public key (43 characters of base64url), got",
                         pos[3]);
    snprintf(p.name, sizeof p.name, "%s", pos[1]);
    snprintf(p.addr, sizeof p.addr, "%s", pos[2]);
    if ((rc = open_db(data, 0, &st)))
        return rc;
    int r = kl_storage_fed_peer_add(st, &p);
    kl_storage_close(st);
    if (r) {
        fprintf(stderr, "kollega-relay: cannot add peer %s: %s\n", pos[1],
                r == KL_EEXIST  ? "it is already configured (peer remove it first)"
                : r == KL_ELIMIT ? "too many peers"
                                 : kl_strerror(r));
        return EXIT_OPER;
    }
    if (json) {
        kl_json_t j;
        mstats_t none = {0, 0, 0}; /* a new peer: nothing mirrored yet */
        kl_json_init(&j);
        peer_json(&j, &p, &none);
        kl_cli_print_json(&j);
    } else {
        printf("added peer %s at %s (send serve SIGHUP to apply)\n", p.name, p.addr);
    }
    return 0;
}
