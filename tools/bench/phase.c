/* Opening many connections at a bounded concurrency (registration, idle
 * connections, connect storms), and the measurements around a workload. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct opener {
    kb_run_t *run;
    kb_conn_t *conns;        /* keep: one per attempt; else one per slot */
    int keep, do_register;
    uint64_t total, next, ready, failed;
    size_t par;
    uint64_t stop_ns;        /* no new attempts after this (0: none) */
    uint64_t t0_ns;
    kb_hist_t *lat;
    const char *label;
    int done;
} opener_t;

void kb_progress(const kb_run_t *run, const char *fmt, ...)
{
    if (run->o->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("kollega-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static const kb_conn_ops_t OPENER_OPS;

static int may_start(const opener_t *op)
{
    return op->next < op->total && (op->stop_ns == 0 || kb_now_ns() < op->stop_ns);
}

static void start_one(opener_t *op, kb_conn_t *c)
{
    uint64_t i = op->next++;
    const kb_user_t *u = &op->run->users[i % op->run->n_users];
    if (kb_conn_open(c, kb_user_net(op->run, i % op->run->n_users), u, op->do_register,
                     &OPENER_OPS, op) != 0) {
        kb_result_error(&op->run->res, KB_ERR_CONNECT);
        op->failed++;
    }
}

static void check_done(opener_t *op)
{
    if (op->done)
        return;
    uint64_t settled = op->ready + op->failed;
    int finished = op->keep ? settled == op->next && !may_start(op)
                            : kb_open_conns(op->run) == 0 && !may_start(op);
    if (finished) {
        op->done = 1;
        uv_stop(op->run->net.loop);
    }
}

/* keep: one more attempt on its own connection, as long as fewer than par
 * are in progress. */
static void refill_keep(opener_t *op)
{
    while (may_start(op) && op->next - op->ready - op->failed < op->par)
        start_one(op, &op->conns[op->next]);
}

static void on_ready(kb_conn_t *c)
{
    opener_t *op = c->ud;
    op->ready++;
    if (op->lat)
        kb_hist_record(op->lat, kb_now_ns() - c->started_ns);
    if (op->keep) {
        refill_keep(op);
        check_done(op);
    } else {
        kb_conn_close(c);
    }
}

static void on_frame(kb_conn_t *c, const kl_frame_t *f)
{
    (void)c;
    (void)f; /* nothing is asked before the phase ends */
}

static void on_failed(kb_conn_t *c, int kind)
{
    opener_t *op = c->ud;
    kb_result_error(&op->run->res, kind);
    if (c->state != KB_READY)
        op->failed++;
}

static void on_closed(kb_conn_t *c)
{
    opener_t *op = c->ud;
    if (op->keep) {
        refill_keep(op);
    } else if (!op->done && may_start(op)) {
        start_one(op, c);
    }
    check_done(op);
}

static const kb_conn_ops_t OPENER_OPS = {on_ready, on_frame, on_failed, on_closed};

static void on_progress(uv_timer_t *t)
{
    opener_t *op = t->data;
    double s = (double)(kb_now_ns() - op->t0_ns) / 1e9;
    kb_progress(op->run, "%s: %llu ready, %llu failed, %.0f/s", op->label,
                (unsigned long long)op->ready, (unsigned long long)op->failed,
                s > 0 ? (double)op->ready / s : 0);
}

static void on_stop_tick(uv_timer_t *t)
{
    opener_t *op = t->data;
    check_done(op); /* the stop time may have passed with no event */
}

/* The relay did not answer in time: give up on every attempt in progress. */
static void on_deadline(uv_timer_t *t)
{
    opener_t *op = t->data;
    size_t n = op->keep ? (size_t)op->next : (op->total < op->par ? (size_t)op->total : op->par);
    op->stop_ns = kb_now_ns();
    op->total = op->next;
    for (size_t i = 0; i < n; i++) {
        kb_conn_t *c = &op->conns[i];
        if (c->state == KB_IDLE || c->state == KB_CLOSING || c->state == KB_READY)
            continue;
        kb_result_error(&op->run->res, KB_ERR_UNANSWERED);
        op->failed++;
        kb_conn_close(c);
    }
    check_done(op);
}

uint64_t kb_open_phase(kb_run_t *run, uint64_t total, int do_register, size_t par,
                       kb_conn_t *conns, double stop_after_s, kb_hist_t *lat,
                       const char *label)
{
    opener_t op;
    memset(&op, 0, sizeof op);
    op.run = run;
    op.keep = conns != NULL;
    op.do_register = do_register;
    op.total = total;
    op.par = par ? par : 1;
    op.lat = lat;
    op.label = label;
    op.t0_ns = kb_now_ns();
    if (stop_after_s > 0)
        op.stop_ns = op.t0_ns + (uint64_t)(stop_after_s * 1e9);
    kb_conn_t *slots = NULL;
    if (op.keep) {
        op.conns = conns;
        refill_keep(&op);
    } else {
        size_t n = total < op.par ? (size_t)total : op.par;
        slots = calloc(n ? n : 1, sizeof *slots);
        if (slots == NULL)
            return 0;
        op.conns = slots;
        for (size_t i = 0; i < n && may_start(&op); i++)
            start_one(&op, &slots[i]);
    }
    uv_timer_t progress, stop_tick, deadline;
    uv_timer_init(run->net.loop, &progress);
    uv_timer_init(run->net.loop, &stop_tick);
    uv_timer_init(run->net.loop, &deadline);
    progress.data = stop_tick.data = deadline.data = &op;
    uv_timer_start(&progress, on_progress, 2000, 2000);
    if (op.stop_ns)
        uv_timer_start(&stop_tick, on_stop_tick, 50, 50);
    uv_timer_start(&deadline, on_deadline,
                   (uint64_t)((stop_after_s + run->o->timeout) * 1000), 0);
    check_done(&op);
    if (!op.done)
        uv_run(run->net.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&progress, NULL);
    uv_close((uv_handle_t *)&stop_tick, NULL);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(run->net.loop, UV_RUN_NOWAIT);
    free(slots);
    return op.ready;
}

static void quiet_ready(kb_conn_t *c)
{
    (void)c;
}

static void quiet_frame(kb_conn_t *c, const kl_frame_t *f)
{
    (void)c;
    (void)f;
}

static void quiet_failed(kb_conn_t *c, int kind)
{
    (void)c;
    (void)kind;
}

static void quiet_closed(kb_conn_t *c)
{
    (void)c;
}

const kb_conn_ops_t KB_QUIET_OPS = {quiet_ready, quiet_frame, quiet_failed, quiet_closed};

void kb_close_all(kb_run_t *run, kb_conn_t *conns, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        conns[i].ops = &KB_QUIET_OPS;
        kb_conn_close(&conns[i]);
    }
    kb_drain(run);
}

static void on_drain_tick(uv_timer_t *t)
{
    kb_run_t *run = t->data;
    if (kb_open_conns(run) == 0)
        uv_stop(run->net.loop);
}

void kb_drain(kb_run_t *run)
{
    uv_timer_t t;
    uv_timer_init(run->net.loop, &t);
    t.data = run;
    uv_timer_start(&t, on_drain_tick, 0, 10);
    uv_run(run->net.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(run->net.loop, UV_RUN_NOWAIT);
}

static void on_run_for(uv_timer_t *t)
{
    uv_stop(t->loop);
}

void kb_run_for(kb_run_t *run, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(run->net.loop, &t);
    uv_timer_start(&t, on_run_for, ms, 0);
    uv_run(run->net.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(run->net.loop, UV_RUN_NOWAIT);
}

void kb_meter_start(kb_run_t *run, kb_meter_t *m)
{
    m->t0_ns = kb_now_ns();
    m->relay_cpu0 = run->relay_pid > 0 ? kb_proc_cpu_s(run->relay_pid) : 0;
    m->self_cpu0 = kb_self_cpu_s();
}

void kb_meter_stop(kb_run_t *run, const kb_meter_t *m)
{
    kb_result_t *r = &run->res;
    r->elapsed_s = (double)(kb_now_ns() - m->t0_ns) / 1e9;
    double el = r->elapsed_s > 0 ? r->elapsed_s : 1e-9;
    r->bench_cpu_pct = (kb_self_cpu_s() - m->self_cpu0) / el * 100;
    if (run->relay_pid > 0) {
        r->server_pid = run->relay_pid;
        double c1 = kb_proc_cpu_s(run->relay_pid);
        if (c1 >= 0 && m->relay_cpu0 >= 0)
            r->server_cpu_pct = (c1 - m->relay_cpu0) / el * 100;
        kb_proc_rss(run->relay_pid, &r->rss_kb, &r->rss_peak_kb);
    }
}
