/* kollega-bench: a load generator that speaks the real Kollega protocol
 * (Noise_NK, protobuf frames, registered users, opaque bodies) to a
 * kollega-relay, on one libuv loop. See usage() and the other files of
 * tools/bench. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"
#include "cmdline/version.h"
#include "kollega/err.h"
#include "spawn.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

static void usage(FILE *out)
{
    fputs(
        "usage: kollega-bench [options] WORKLOAD\n"
        "workloads:\n"
        "  direct    P sender->recipient pairs, W sends outstanding each, N messages\n"
        "  latency   open loop at R msg/s for T seconds over P pairs\n"
        "  idle      C authenticated idle connections held T seconds: relay RSS each\n"
        "  connect   connects per second (TCP + Noise_NK + auth), C at a time, T seconds\n"
        "  group     P groups of G members, S of them sending with window W, N messages\n"
        "  broadcast one channel, S subscribers, one publisher with window W, N posts;\n"
        "            with --spawn also the relay's storage per post\n"
        "relay:\n"
        "  --spawn               start a relay on a free port in a temporary directory\n"
        "  --cross-relay         (spawn, direct, broadcast) start two federated relays:\n"
        "                        direct: senders on one, recipients on the other;\n"
        "                        broadcast: the channel, its publisher and the first\n"
        "                        half of the subscribers on one, the other half on the\n"
        "                        other; storage per post of each (RSS/CPU: the first)\n"
        "  --sync full|normal    (spawn) relay commit mode (default full)\n"
        "  --relay-bin PATH      (spawn) default: kollega-relay next to kollega-bench\n"
        "  --relay-log-level L   (spawn) relay --log-level (default info)\n"
        "  --keep                (spawn) keep the temporary directory and relay log\n"
        "  --invite TOKEN        a running relay: a multi-use invite with enough uses\n"
        "                        for every user of the run (kollega-relay invite --uses N)\n"
        "  --relay HOST:PORT     override the invite's address\n"
        "  --key KEY             override the invite's relay key\n"
        "  --relay-pid PID       read that relay's RSS and CPU time from /proc\n"
        "workload:\n"
        "  -P, --pairs N         pairs (100); group: groups (20)\n"
        "  -G, --group-size N    group: members per group (10)\n"
        "  -S, --senders N       group: members of each group that send (2);\n"
        "                        broadcast: subscribers (100)\n"
        "  -W, --window N        direct, group: outstanding sends per sender (16)\n"
        "  -B, --body N          body bytes, at least 20 (256)\n"
        "  -N, --messages N      direct, group: messages in all (200000); broadcast: posts\n"
        "                        (1000); latency: R*T;\n"
        "                        connect: connects in all instead of T seconds\n"
        "  -R, --rate N          latency: offered msg/s (10000)\n"
        "  -T, --duration S      latency, connect: seconds (10); idle: hold time (10)\n"
        "  -C, --conns N         idle: connections (15000); connect: at a time (100)\n"
        "      --timeout S       give up on what is outstanding after S more seconds (120)\n"
        "output:\n"
        "  --json                one JSON line on stdout instead of the human lines\n"
        "  --quiet               no progress lines on stderr\n"
        "  --version             print the version (with --json: as JSON)\n"
        "exit: 0 no errors, 1 errors or failure, 2 usage\n", out);
}

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
    va_list ap;
    fputs("kollega-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nrun 'kollega-bench --help' for usage\n", stderr);
    return EXIT_USAGE;
}

static int num(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int secs(const char *s, double *out)
{
    char *end = NULL;
    if (s == NULL)
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v > 0) || v > 86400)
        return -1;
    *out = v;
    return 0;
}

typedef struct numflag {
    const char *s, *l;
    uint64_t min, max;
    size_t off;
} numflag_t;

static const numflag_t NUMS[] = {
    {"-P", "--pairs", 1, 100000, offsetof(kb_opts_t, pairs)},
    {"-W", "--window", 1, 65535, offsetof(kb_opts_t, window)},
    {"-B", "--body", KB_BODY_HDR, 65000, offsetof(kb_opts_t, body)},
    {"-N", "--messages", 1, 1000000000, offsetof(kb_opts_t, messages)},
    {"-R", "--rate", 1, 10000000, offsetof(kb_opts_t, rate)},
    {"-C", "--conns", 1, 1000000, offsetof(kb_opts_t, conns)},
    {"-G", "--group-size", 2, 256, offsetof(kb_opts_t, group_size)},
    {"-S", "--senders", 1, 1000000, offsetof(kb_opts_t, senders)},
};

static int parse(int argc, char **argv, kb_opts_t *o, int *help)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int matched = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *help = 1;
            return 0;
        }
        if (a[0] != '-') {
            if (o->workload)
                return bad("one workload only, got '%s' too", a);
            o->workload = a;
            continue;
        }
        for (size_t k = 0; k < sizeof NUMS / sizeof NUMS[0]; k++) {
            if (strcmp(a, NUMS[k].s) != 0 && strcmp(a, NUMS[k].l) != 0)
                continue;
            if (num(v, NUMS[k].min, NUMS[k].max, (uint64_t *)((char *)o + NUMS[k].off)) != 0)
                return bad("%s needs a whole number in range", a);
            matched = 1;
            i++;
            break;
        }
        if (matched)
            continue;
        if (strcmp(a, "--spawn") == 0) {
            o->spawn = 1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if (strcmp(a, "--cross-relay") == 0) {
            o->cross = 1;
        } else if (strcmp(a, "--keep") == 0) {
            o->keep = 1;
        } else if (strcmp(a, "-T") == 0 || strcmp(a, "--duration") == 0 ||
                   strcmp(a, "--hold") == 0) {
            if (secs(v, &o->duration) != 0)
                return bad("%s needs seconds (> 0)", a);
            i++;
        } else if (strcmp(a, "--timeout") == 0) {
            if (secs(v, &o->timeout) != 0)
                return bad("%s needs seconds (> 0)", a);
            i++;
        } else if (strcmp(a, "--relay-pid") == 0) {
            uint64_t pid;
            if (num(v, 1, 1u << 30, &pid) != 0)
                return bad("%s needs a process id", a);
            o->relay_pid = (pid_t)pid;
            i++;
        } else if (v && strcmp(a, "--relay") == 0) {
            o->relay = argv[++i];
        } else if (v && strcmp(a, "--key") == 0) {
            o->key = argv[++i];
        } else if (v && strcmp(a, "--invite") == 0) {
            o->invite = argv[++i];
        } else if (v && strcmp(a, "--relay-bin") == 0) {
            o->relay_bin = argv[++i];
        } else if (v && strcmp(a, "--sync") == 0) {
            o->sync = argv[++i];
            if (strcmp(o->sync, "full") != 0 && strcmp(o->sync, "normal") != 0)
                return bad("--sync takes full or normal, got '%s'", o->sync);
        } else if (v && strcmp(a, "--relay-log-level") == 0) {
            o->relay_log_level = argv[++i];
        } else {
            return bad("unknown option or missing value: %s", a);
        }
    }
    return 0;
}

/* Sockets for thousands of connections: the soft limit goes up to the
 * hard one (a spawned relay inherits it). */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static uint64_t nofile(void)
{
    struct rlimit rl;
    return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (uint64_t)rl.rlim_cur : 0;
}

/* A handle prefix unique to this run, so runs against one relay do not
 * collide: "b" + 5 random [a-z0-9] + "-". */
static void make_prefix(char out[8])
{
    static const char A[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    out[0] = 'b';
    for (int i = 1; i < 6; i++)
        out[i] = A[kl_random_u32() % (sizeof A - 1)];
    out[6] = '-';
    out[7] = '\0';
}

/* Relay name, address, key and invite code from --invite, --relay, --key. */
static int external_relay(const kb_opts_t *o, kl_invite_t *inv)
{
    if (o->invite == NULL || kl_invite_parse(o->invite, inv) != 0) {
        fprintf(stderr, "kollega-bench: pass --spawn, or --invite TOKEN for a running relay "
                        "(make one with: kollega-relay invite --uses N)\n");
        return EXIT_USAGE;
    }
    if (o->relay && kl_hostport_parse(o->relay, inv->host, sizeof inv->host, &inv->port) != 0)
        return bad("--relay must be HOST:PORT, got '%s'", o->relay);
    if (o->key) {
        size_t n = 0;
        if (kl_b64_decode(o->key, inv->key, sizeof inv->key, &n) != 0 || n != 32)
            return bad("--key must be the relay's base64url public key, got '%s'", o->key);
    }
    return 0;
}

static uint64_t users_needed(const kb_opts_t *o)
{
    if (strcmp(o->workload, "direct") == 0 || strcmp(o->workload, "latency") == 0)
        return 2 * o->pairs;
    if (strcmp(o->workload, "group") == 0)
        return o->pairs * o->group_size;
    if (strcmp(o->workload, "broadcast") == 0)
        return o->subscribers + 1;
    return o->conns;
}

static int run_workload(kb_run_t *run)
{
    const char *w = run->o->workload;
    if (strcmp(w, "direct") == 0)
        return kb_run_direct(run);
    if (strcmp(w, "latency") == 0)
        return kb_run_latency(run);
    if (strcmp(w, "idle") == 0)
        return kb_run_idle(run);
    if (strcmp(w, "group") == 0)
        return kb_run_group(run);
    if (strcmp(w, "broadcast") == 0)
        return kb_run_broadcast(run);
    return kb_run_connect(run);
}

static void fill_params(kb_result_t *r, const kb_opts_t *o)
{
    const char *w = o->workload;
    r->sync = o->spawn ? o->sync : NULL;
    r->cross_relay = o->cross;
    if (strcmp(w, "direct") == 0 || strcmp(w, "latency") == 0) {
        r->pairs = o->pairs;
        r->body = o->body;
    }
    if (strcmp(w, "group") == 0) {
        r->pairs = o->pairs;
        r->body = o->body;
        r->window = o->window;
        r->messages = o->messages;
        r->group_size = o->group_size;
        r->senders = o->senders;
    } else if (strcmp(w, "broadcast") == 0) {
        r->body = o->body;
        r->window = o->window;
        r->messages = o->messages;
        r->subscribers = o->subscribers;
    } else if (strcmp(w, "direct") == 0) {
        r->window = o->window;
        r->messages = o->messages;
    } else if (strcmp(w, "latency") == 0) {
        r->rate = o->rate;
        r->duration_s = o->duration;
        r->messages = o->messages ? o->messages : (uint64_t)((double)o->rate * o->duration);
    } else {
        r->conns = o->conns;
        r->duration_s = o->duration;
        if (strcmp(w, "connect") == 0)
            r->messages = o->messages;
    }
}

int main(int argc, char **argv)
{
    int vr = kl_version_cli("kollega-bench", argc, argv);
    if (vr >= 0)
        return vr;
    kb_opts_t o;
    int help = 0;
    memset(&o, 0, sizeof o);
    int r = parse(argc, argv, &o, &help);
    if (r)
        return r;
    if (help) {
        usage(stdout);
        return 0;
    }
    if (o.workload == NULL) {
        usage(stderr);
        return EXIT_USAGE;
    }
    int idle = strcmp(o.workload, "idle") == 0;
    int group = strcmp(o.workload, "group") == 0;
    int broadcast = strcmp(o.workload, "broadcast") == 0;
    if (!idle && !group && !broadcast && strcmp(o.workload, "connect") &&
        strcmp(o.workload, "direct") && strcmp(o.workload, "latency"))
        return bad("unknown workload '%s' (direct, latency, idle, connect, group, broadcast)",
                   o.workload);
    if (broadcast) {
        o.subscribers = o.senders ? o.senders : 100;
        o.senders = 0;
        o.messages = o.messages ? o.messages : 1000;
    }
    o.pairs = o.pairs ? o.pairs : group ? 20 : 100;
    o.group_size = o.group_size ? o.group_size : 10;
    o.senders = o.senders ? o.senders : broadcast ? 0 : 2;
    if (group && o.senders > 256)
        return bad("group: -S is at most 256");
    if (group && o.senders > o.group_size)
        return bad("group: -S %llu senders in groups of -G %llu", (unsigned long long)o.senders,
                   (unsigned long long)o.group_size);
    if (group && o.messages == 0)
        o.messages = 200000;
    if (group && o.messages < o.pairs * o.senders)
        return bad("%s: need at least one message per sender", "group");
    o.window = o.window ? o.window : 16;
    o.body = o.body ? o.body : 256;
    o.rate = o.rate ? o.rate : 10000;
    o.conns = o.conns ? o.conns : idle ? 15000 : 100;
    o.duration = o.duration > 0 ? o.duration : 10;
    o.hold = o.duration;
    o.timeout = o.timeout > 0 ? o.timeout : 120;
    o.sync = o.sync ? o.sync : "full";
    o.relay_log_level = o.relay_log_level ? o.relay_log_level : "info";
    if (strcmp(o.workload, "direct") == 0 && o.messages == 0)
        o.messages = 200000;
    if (strcmp(o.workload, "direct") == 0 && o.messages < o.pairs)
        return bad("%s: need at least one message per pair", "direct");
    if (o.cross && (!o.spawn || (strcmp(o.workload, "direct") != 0 && !broadcast)))
        return bad("--cross-relay goes with --spawn and the direct or broadcast workload");
    if (o.cross && broadcast && o.subscribers < 2)
        return bad("broadcast --cross-relay needs -S 2 or more (half on each relay)");

    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    if (kl_crypto_init() != 0) {
        fprintf(stderr, "kollega-bench: cannot initialise libsodium\n");
        return EXIT_FAIL;
    }
    static kb_run_t run; /* histograms and read buffer, off the stack */
    uv_loop_t loop;
    kb_relay_t relay, relay2;
    kl_invite_t inv, inv2;
    int rc = EXIT_FAIL, spawned = 0;
    memset(&relay, 0, sizeof relay);
    memset(&relay2, 0, sizeof relay2);
    memset(&inv, 0, sizeof inv);
    memset(&inv2, 0, sizeof inv2);
    run.o = &o;
    kb_result_init(&run.res, "kollega-bench", o.workload);
    kb_hist_init(&run.ack);
    kb_hist_init(&run.delivery);
    kb_hist_init(&run.connect);
    fill_params(&run.res, &o);
    run.n_users = (size_t)users_needed(&o);
    if (run.n_users + 64 > nofile())
        kb_progress(&run, "open file limit %llu is below the %zu connections this run needs",
                    (unsigned long long)nofile(), run.n_users);
    uv_loop_init(&loop);
    if (o.spawn) {
        kb_spawn_cfg_t sc = {o.relay_bin, o.sync, o.relay_log_level,
                             (uint64_t)(o.duration + o.timeout + 300), NULL, 0};
        size_t n = 0;
        if (o.cross ? kb_relay_pair_spawn(&relay, &relay2, &sc) != 0
                    : kb_relay_spawn(&relay, &sc) != 0)
            goto out;
        spawned = 1 + o.cross;
        if (o.cross) {
            snprintf(inv2.relay, sizeof inv2.relay, "%s", relay2.name);
            snprintf(inv2.host, sizeof inv2.host, "%s", relay2.host);
            inv2.port = relay2.port;
            if (kl_b64_decode(relay2.key, inv2.key, sizeof inv2.key, &n) != 0 || n != 32 ||
                kb_relay_invite(&relay2, run.n_users, inv2.code, sizeof inv2.code) != 0) {
                fprintf(stderr, "kollega-bench: cannot set up the second relay\n");
                goto out;
            }
            kb_progress(&run, "second relay pid %ld on %s:%u (data in %s)", (long)relay2.pid,
                        inv2.host, (unsigned)inv2.port, relay2.dir);
            run.relay2 = &relay2;
        }
        run.relay_pid = relay.pid;
        run.relay = &relay;
        snprintf(inv.relay, sizeof inv.relay, "%s", relay.name);
        snprintf(inv.host, sizeof inv.host, "%s", relay.host);
        inv.port = relay.port;
        if (kl_b64_decode(relay.key, inv.key, sizeof inv.key, &n) != 0 || n != 32 ||
            kb_relay_invite(&relay, run.n_users, inv.code, sizeof inv.code) != 0) {
            fprintf(stderr, "kollega-bench: cannot set up the spawned relay\n");
            goto out;
        }
        kb_progress(&run, "relay pid %ld on %s:%u (sync=%s, data in %s)", (long)relay.pid,
                    inv.host, (unsigned)inv.port, o.sync, relay.dir);
    } else {
        int e = external_relay(&o, &inv);
        if (e) {
            rc = e;
            goto out;
        }
        run.relay_pid = o.relay_pid;
    }
    if (kb_net_init(&run.net, &loop, inv.host, inv.port) != 0) {
        fprintf(stderr, "kollega-bench: cannot resolve %s\n", inv.host);
        goto out;
    }
    memcpy(run.net.relay_key, inv.key, 32);
    snprintf(run.net.relay_name, sizeof run.net.relay_name, "%s", inv.relay);
    snprintf(run.net.code, sizeof run.net.code, "%s", inv.code);
    if (o.cross) {
        if (kb_net_init(&run.net2, &loop, inv2.host, inv2.port) != 0) {
            fprintf(stderr, "kollega-bench: cannot resolve %s\n", inv2.host);
            goto out_net;
        }
        memcpy(run.net2.relay_key, inv2.key, 32);
        snprintf(run.net2.relay_name, sizeof run.net2.relay_name, "%s", inv2.relay);
        snprintf(run.net2.code, sizeof run.net2.code, "%s", inv2.code);
        /* direct: the recipients; broadcast: the second half of the
         * subscribers (users 1..S, user 0 publishes). */
        run.net2_from = broadcast ? (size_t)(1 + o.subscribers - o.subscribers / 2)
                                  : (size_t)o.pairs;
    }
    run.users = calloc(run.n_users, sizeof *run.users);
    char prefix[8];
    make_prefix(prefix);
    if (run.users == NULL || kb_users_make(run.users, run.n_users, prefix) != 0) {
        fprintf(stderr, "kollega-bench: cannot make %zu users\n", run.n_users);
        goto out_net;
    }
    r = run_workload(&run);
    if (r == 0) {
        if (o.json)
            kb_report_json(stdout, &run.res);
        else
            kb_report_human(stdout, &run.res);
        rc = run.res.errors ? EXIT_FAIL : 0;
    } else {
        fprintf(stderr, "kollega-bench: %s workload failed: %s\n", o.workload, kl_strerror(r));
    }
out_net:
    kb_net_close(&run.net);
    if (run.net2_from)
        kb_net_close(&run.net2);
    uv_run(&loop, UV_RUN_DEFAULT);
out:
    if (spawned && kb_relay_stop(&relay, o.keep) != 0)
        rc = EXIT_FAIL;
    if (spawned > 1 && kb_relay_stop(&relay2, o.keep) != 0)
        rc = EXIT_FAIL;
    kl_memzero(&inv, sizeof inv);
    kl_memzero(&inv2, sizeof inv2);
    if (run.users) {
        kl_memzero(run.users, run.n_users * sizeof *run.users);
        free(run.users);
    }
    kl_memzero(run.net.code, sizeof run.net.code);
    kl_memzero(run.net2.code, sizeof run.net2.code);
    uv_loop_close(&loop);
    return rc;
}
