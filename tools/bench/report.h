/* Results of one benchmark run and their two renderings: a few human lines
 * and one JSON line with the same keys for kollega-bench and mqtt-bench,
 * so tools/compare-mosquitto.sh can put them side by side. Also the /proc
 * readings both tools take of the server process (RSS, CPU time). */
#ifndef KOLLEGA_BENCH_REPORT_H
#define KOLLEGA_BENCH_REPORT_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "hist.h"

/* Error kinds: the relay's ErrorCode values 1..11 keep their numbers. */
enum kb_err_kind {
    KB_ERR_CONNECT = 12,  /* TCP connect or handshake failed */
    KB_ERR_CLOSED,        /* the server closed a working connection */
    KB_ERR_PROTOCOL,      /* an answer the bench cannot make sense of */
    KB_ERR_UNANSWERED,    /* a request still unanswered at the deadline */
    KB_ERR_MISSING,       /* acknowledged but never delivered by the deadline */
    KB_ERR_KINDS
};

/* One relay's storage around a broadcast run's measured phase. */
typedef struct kb_storage {
    const char *relay;       /* its name */
    uint64_t entries0, entries1, bytes0, bytes1; /* before, after */
    double entries_per_post, bytes_per_post;
} kb_storage_t;

typedef struct kb_result {
    const char *tool;        /* "kollega-bench" or "mqtt-bench" */
    const char *workload;
    const char *sync;        /* relay synchronous mode, or NULL */
    uint64_t pairs, window, body, messages, rate, conns;
    double duration_s;       /* latency: offered duration; idle: hold time */
    uint64_t sent_ok;        /* sends acknowledged (sent / PUBACK) */
    uint64_t delivered;      /* distinct messages delivered */
    uint64_t duplicates;     /* deliveries of a message already seen */
    uint64_t connects;       /* connect workload: completed connects */
    double elapsed_s;
    double throughput;       /* msg/s, or connects/s */
    uint64_t group_size, senders; /* group workload */
    double deliveries_per_s; /* group, broadcast: delivered / elapsed */
    uint64_t subscribers;    /* broadcast workload */
    int cross_relay;         /* direct over two federated relays */
    int storage_read;        /* broadcast: the relay's storage was read */
    double entries_per_post, bytes_per_post; /* broadcast: stored per post */
    kb_storage_t storage[2]; /* broadcast: each relay read (the channel's home first) */
    int n_storage;
    const kb_hist_t *ack;    /* send -> sent, or NULL */
    const kb_hist_t *delivery;
    const kb_hist_t *connect;
    uint64_t errors;
    uint64_t err_kind[KB_ERR_KINDS];
    pid_t server_pid;        /* 0: unknown, no server readings */
    uint64_t rss_kb, rss_peak_kb, rss_base_kb;
    double rss_per_conn_bytes; /* idle only */
    double server_cpu_pct, bench_cpu_pct;
} kb_result_t;

/* Zero r and name it (tool and workload are borrowed: they must outlive
 * r). */
void kb_result_init(kb_result_t *r, const char *tool, const char *workload);
/* Count one error of kind (a relay ErrorCode or kb_err_kind; another value
 * counts as KB_ERR_PROTOCOL). */
void kb_result_error(kb_result_t *r, int kind);
/* The name of an error kind ("RATE_LIMITED", "connect", ...; "unknown"
 * beyond them): a static string. */
const char *kb_err_name(int kind);
/* Print r to out: a few human lines, or one JSON line (then flushed). */
void kb_report_human(FILE *out, const kb_result_t *r);
void kb_report_json(FILE *out, const kb_result_t *r);

/* VmRSS and VmHWM of pid in KiB. 0 or -1 if unreadable. */
int kb_proc_rss(pid_t pid, uint64_t *rss_kb, uint64_t *hwm_kb);
/* utime + stime of pid in seconds (-1 if unreadable). */
double kb_proc_cpu_s(pid_t pid);
/* This process's user + system CPU time in seconds. */
double kb_self_cpu_s(void);
/* Monotonic clock in ns. */
uint64_t kb_now_ns(void);

#endif
