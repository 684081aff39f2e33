/* kollega-bench internals shared by main.c and the workload files. */
#ifndef KOLLEGA_BENCH_BENCH_H
#define KOLLEGA_BENCH_BENCH_H

#include <stdint.h>
#include <sys/types.h>

#include "hist.h"
#include "kconn.h"
#include "report.h"

/* Bytes at the start of every body: send time (ns, CLOCK_MONOTONIC), pair
 * index, per-pair counter; the rest is random. */
#define KB_BODY_HDR 20

typedef struct kb_opts {
    const char *workload;
    int spawn, json, quiet, keep;
    int cross;                      /* --cross-relay: direct, broadcast over two relays */
    const char *relay, *key, *invite, *relay_bin, *sync, *relay_log_level;
    pid_t relay_pid;
    uint64_t pairs, window, body, messages, rate, conns;
    uint64_t group_size, senders;   /* group: members per group, senders per group */
    uint64_t subscribers;           /* broadcast: subscribers of the channel */
    double duration, hold, timeout;
} kb_opts_t;

/* A run's shared state: the net, the relay PID for /proc readings, and the
 * users registered for it (handles "<prefix><i>"). */
struct kb_relay;

typedef struct kb_run {
    kb_net_t net;
    const kb_opts_t *o;
    pid_t relay_pid;
    struct kb_relay *relay;         /* the spawned relay, or NULL */
    struct kb_relay *relay2;        /* --cross-relay: the second one, or NULL */
    /* --cross-relay: users from net2_from on connect to net2 (the second
     * relay); 0: every user connects to net. */
    kb_net_t net2;
    size_t net2_from;
    kb_user_t *users;
    size_t n_users;
    kb_hist_t ack, delivery, connect; /* results point at these */
    kb_result_t res;
} kb_run_t;

/* The net of user i, and the relay name of its address. */
static inline kb_net_t *kb_user_net(kb_run_t *run, size_t i)
{
    return run->net2_from && i >= run->net2_from ? &run->net2 : &run->net;
}
/* Connections open on the run's nets. */
static inline uint64_t kb_open_conns(const kb_run_t *run)
{
    return run->net.open_conns + (run->net2_from ? run->net2.open_conns : 0);
}

/* Open connections for users[i % n_users], i = 0.. total-1 (or until
 * stop_after_s, if > 0), at most par at once. With conns (total entries,
 * the caller's): they stay open once ready, and the caller must give them
 * its own ops/ud (or KB_QUIET_OPS) before it runs the loop again; without,
 * each connection closes as soon as it is ready and its slot opens the
 * next. lat (optional) gets connect->ready times. Returns the number of
 * connections that became ready; failures are counted in run->res. label
 * names the phase in progress lines. */
uint64_t kb_open_phase(kb_run_t *run, uint64_t total, int do_register, size_t par,
                       kb_conn_t *conns, double stop_after_s, kb_hist_t *lat,
                       const char *label);

/* Callbacks that do nothing, for connections being wound down. */
extern const kb_conn_ops_t KB_QUIET_OPS;
/* Close n connections (whatever their owner was) and drain the loop. */
void kb_close_all(kb_run_t *run, kb_conn_t *conns, size_t n);

/* Run the loop until every connection is closed (after kb_conn_close). */
void kb_drain(kb_run_t *run);
/* Run the loop for ms milliseconds (to let queued writes go out). */
void kb_run_for(kb_run_t *run, uint64_t ms);

/* Server readings at the start and end of a measured interval. */
typedef struct kb_meter {
    uint64_t t0_ns;
    double relay_cpu0, self_cpu0;
} kb_meter_t;
/* Take the start readings into m: the monotonic time, the relay's CPU time
 * (when run->relay_pid > 0) and ours. */
void kb_meter_start(kb_run_t *run, kb_meter_t *m);
/* Fill elapsed_s, CPU percentages and RSS of run->res. */
void kb_meter_stop(kb_run_t *run, const kb_meter_t *m);

/* The workloads (usage() in main.c): each registers its users, sets up
 * what it needs (groups, a channel), measures into run->res (errors
 * counted there, not returned) and closes its connections. 0 once the
 * measured phase ran; KL_EREFUSED when not every user registered or the
 * setup did not complete; KL_ENOMEM. On the loop thread. */
int kb_run_direct(kb_run_t *run);
int kb_run_latency(kb_run_t *run);
int kb_run_idle(kb_run_t *run);
int kb_run_connect(kb_run_t *run);
int kb_run_group(kb_run_t *run);
int kb_run_broadcast(kb_run_t *run);

/* A progress line on stderr (unless quiet). */
void kb_progress(const kb_run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
