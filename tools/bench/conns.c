/* The connection workloads.
 *
 *   idle:    register C users (connections closed again), read the relay's
 *            RSS, open C connections that authenticate and then stay
 *            silent for T seconds, read the RSS again: the difference over
 *            C is the relay's memory per idle authenticated connection.
 *   connect: register K users, then K connections at a time each run TCP
 *            connect + Noise_NK + auth (Ed25519 verify in the relay) and
 *            close, for T seconds (or N connects): connects per second and
 *            the connect -> auth-ok latency. K = C gives a reconnect storm:
 *            C clients all coming back at once, as after a relay restart. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "kollega/err.h"

/* Registrations in flight: enough to keep the storage thread's group
 * commits full, few enough not to be a storm of their own. */
#define REGISTER_PAR 256
/* Idle connections being opened at once. */
#define IDLE_PAR 512

static void on_hold(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* A held connection the relay closed is an error of the idle workload. */
static void idle_failed(kb_conn_t *c, int kind)
{
    kb_run_t *run = c->ud;
    kb_result_error(&run->res, kind);
}

static void idle_frame(kb_conn_t *c, const kl_frame_t *f)
{
    (void)c;
    (void)f; /* nothing is asked; a push would be unexpected but harmless */
}

static void idle_closed(kb_conn_t *c)
{
    (void)c;
}

int kb_run_idle(kb_run_t *run)
{
    const kb_opts_t *o = run->o;
    kb_result_t *r = &run->res;
    uint64_t n = o->conns;
    uint64_t ok = kb_open_phase(run, n, 1, REGISTER_PAR, NULL, 0, NULL, "register");
    if (ok != n) {
        kb_progress(run, "only %llu of %llu users registered: giving up",
                    (unsigned long long)ok, (unsigned long long)n);
        return KL_EREFUSED;
    }
    kb_conn_t *conns = calloc(n, sizeof *conns);
    if (conns == NULL)
        return KL_ENOMEM;
    /* Let the relay settle (freed registration connections, WAL
     * checkpoint) before the baseline reading. */
    kb_run_for(run, 1000);
    uint64_t base = 0, hwm = 0;
    if (run->relay_pid > 0)
        kb_proc_rss(run->relay_pid, &base, &hwm);
    kb_meter_t meter;
    kb_meter_start(run, &meter);
    uint64_t held = kb_open_phase(run, n, 0, IDLE_PAR, conns, 0, &run->connect, "connect");
    double open_s = (double)(kb_now_ns() - meter.t0_ns) / 1e9;
    kb_progress(run, "idle: %llu connections authenticated in %.2f s, holding %.0f s",
                (unsigned long long)held, open_s, o->hold);
    kb_conn_ops_t ops = KB_QUIET_OPS;
    ops.frame = idle_frame;
    ops.failed = idle_failed;
    ops.closed = idle_closed;
    for (uint64_t i = 0; i < n; i++) {
        conns[i].ops = &ops;
        conns[i].ud = run;
    }
    uv_timer_t hold;
    uv_timer_init(run->net.loop, &hold);
    uv_timer_start(&hold, on_hold, (uint64_t)(o->hold * 1000), 0);
    uv_run(run->net.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&hold, NULL);
    uint64_t still = 0;
    for (uint64_t i = 0; i < n; i++)
        if (conns[i].state == KB_READY)
            still++;
    kb_meter_stop(run, &meter);
    r->connects = still;
    r->connect = &run->connect;
    r->throughput = open_s > 0 ? (double)held / open_s : 0;
    r->rss_base_kb = base;
    if (run->relay_pid > 0 && still > 0 && r->rss_kb > base)
        r->rss_per_conn_bytes = (double)(r->rss_kb - base) * 1024 / (double)still;
    kb_close_all(run, conns, (size_t)n);
    free(conns);
    return 0;
}

int kb_run_connect(kb_run_t *run)
{
    const kb_opts_t *o = run->o;
    kb_result_t *r = &run->res;
    uint64_t k = o->conns;
    uint64_t ok = kb_open_phase(run, k, 1, REGISTER_PAR, NULL, 0, NULL, "register");
    if (ok != k) {
        kb_progress(run, "only %llu of %llu users registered: giving up",
                    (unsigned long long)ok, (unsigned long long)k);
        return KL_EREFUSED;
    }
    kb_run_for(run, 200);
    kb_meter_t meter;
    kb_meter_start(run, &meter);
    uint64_t total = o->messages ? o->messages : UINT64_MAX;
    double stop = o->messages ? 0 : o->duration;
    r->connects = kb_open_phase(run, total, 0, (size_t)k, NULL, stop, &run->connect, "connect");
    kb_meter_stop(run, &meter);
    r->connect = &run->connect;
    r->throughput = r->elapsed_s > 0 ? (double)r->connects / r->elapsed_s : 0;
    return 0;
}
