#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

static const char *const NAMES[KB_ERR_KINDS] = {
    "unspecified", "BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT",
    "TOO_LARGE", "RATE_LIMITED", "QUOTA_EXCEEDED", "INVITE_INVALID", "UNAVAILABLE", "INTERNAL",
    "connect", "closed", "protocol", "unanswered", "missing_delivery",
};

const char *kb_err_name(int kind)
{
    return kind >= 0 && kind < KB_ERR_KINDS ? NAMES[kind] : "unknown";
}

void kb_result_init(kb_result_t *r, const char *tool, const char *workload)
{
    memset(r, 0, sizeof *r);
    r->tool = tool;
    r->workload = workload;
}

void kb_result_error(kb_result_t *r, int kind)
{
    if (kind < 0 || kind >= KB_ERR_KINDS)
        kind = KB_ERR_PROTOCOL;
    r->err_kind[kind]++;
    r->errors++;
}

uint64_t kb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int kb_proc_rss(pid_t pid, uint64_t *rss_kb, uint64_t *hwm_kb)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long v;
        if (sscanf(line, "VmRSS: %llu kB", &v) == 1) {
            *rss_kb = v;
            found |= 1;
        } else if (sscanf(line, "VmHWM: %llu kB", &v) == 1) {
            *hwm_kb = v;
            found |= 2;
        }
    }
    fclose(f);
    return found == 3 ? 0 : -1;
}

/* Fields 14 and 15 of /proc/PID/stat, after the ")" that ends the command
 * name (which may itself hold spaces and parentheses). */
double kb_proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                            &ut, &st) != 2)
        return -1;
    long tck = sysconf(_SC_CLK_TCK);
    return (double)(ut + st) / (double)(tck > 0 ? tck : 100);
}

double kb_self_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void human_hist(FILE *out, const char *label, const kb_hist_t *h)
{
    if (h == NULL)
        return;
    if (h->count == 0) {
        fprintf(out, "  %-16s no samples\n", label);
        return;
    }
    fprintf(out, "  %-16s p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  (%llu samples)\n",
            label, ms(kb_hist_quantile(h, 0.50)), ms(kb_hist_quantile(h, 0.90)),
            ms(kb_hist_quantile(h, 0.99)), ms(h->max), (unsigned long long)h->count);
}

void kb_report_human(FILE *out, const kb_result_t *r)
{
    fprintf(out, "%s %s:", r->tool, r->workload);
    if (r->pairs)
        fprintf(out, " %llu %s,", (unsigned long long)r->pairs, r->group_size ? "groups" : "pairs");
    if (r->window)
        fprintf(out, " window %llu,", (unsigned long long)r->window);
    if (r->body)
        fprintf(out, " body %llu B,", (unsigned long long)r->body);
    if (r->rate)
        fprintf(out, " offered %llu msg/s,", (unsigned long long)r->rate);
    if (r->messages)
        fprintf(out, " %llu %s,", (unsigned long long)r->messages,
                strcmp(r->workload, "connect") == 0 ? "connects" : "messages");
    if (r->group_size)
        fprintf(out, " groups of %llu, %llu senders each,", (unsigned long long)r->group_size,
                (unsigned long long)r->senders);
    if (r->subscribers)
        fprintf(out, " %llu subscribers,", (unsigned long long)r->subscribers);
    if (r->conns)
        fprintf(out, " %llu connections%s,", (unsigned long long)r->conns,
                strcmp(r->workload, "connect") == 0 ? " at a time" : "");
    if (r->cross_relay)
        fputs(" across two federated relays,", out);
    if (r->sync)
        fprintf(out, " sync=%s", r->sync);
    fputc('\n', out);
    if (strcmp(r->workload, "connect") == 0) {
        fprintf(out, "  %-16s %.0f connects/s (%llu connects in %.2f s)\n", "throughput",
                r->throughput, (unsigned long long)r->connects, r->elapsed_s);
    } else if (strcmp(r->workload, "idle") == 0) {
        fprintf(out, "  %-16s %llu connections held %.0f s\n", "idle",
                (unsigned long long)r->connects, r->duration_s);
    } else {
        fprintf(out, "  %-16s %.0f msg/s (%llu acknowledged, %llu delivered in %.2f s)\n",
                "throughput", r->throughput, (unsigned long long)r->sent_ok,
                (unsigned long long)r->delivered, r->elapsed_s);
        if (r->group_size)
            fprintf(out, "  %-16s %.0f deliveries/s (each message to %llu members)\n",
                    "fan-out", r->deliveries_per_s, (unsigned long long)r->group_size - 1);
        if (r->subscribers)
            fprintf(out, "  %-16s %.0f deliveries/s (each post to %llu subscribers)\n",
                    "fan-out", r->deliveries_per_s, (unsigned long long)r->subscribers);
        if (r->storage_read && r->n_storage < 2)
            fprintf(out, "  %-16s %.2f entries and %.0f bytes stored per post\n", "storage",
                    r->entries_per_post, r->bytes_per_post);
        for (int i = 0; r->n_storage > 1 && i < r->n_storage; i++) {
            const kb_storage_t *s = &r->storage[i];
            fprintf(out, "  %-16s %s: %.2f entries and %.0f bytes per post (entries %llu -> "
                         "%llu, bytes %llu -> %llu)\n", i ? "" : "storage", s->relay,
                    s->entries_per_post, s->bytes_per_post, (unsigned long long)s->entries0,
                    (unsigned long long)s->entries1, (unsigned long long)s->bytes0,
                    (unsigned long long)s->bytes1);
        }
    }
    human_hist(out, "send -> sent", r->ack);
    human_hist(out, "send -> deliver", r->delivery);
    human_hist(out, "connect -> auth", r->connect);
    fprintf(out, "  %-16s %llu", "errors", (unsigned long long)r->errors);
    for (int k = 0; k < KB_ERR_KINDS; k++)
        if (r->err_kind[k])
            fprintf(out, " %s=%llu", NAMES[k], (unsigned long long)r->err_kind[k]);
    if (r->duplicates)
        fprintf(out, " (and %llu duplicate deliveries)", (unsigned long long)r->duplicates);
    fputc('\n', out);
    if (r->server_pid > 0) {
        fprintf(out, "  %-16s RSS %.1f MiB (peak %.1f MiB), CPU %.0f%%; bench CPU %.0f%%\n",
                "server", (double)r->rss_kb / 1024, (double)r->rss_peak_kb / 1024,
                r->server_cpu_pct, r->bench_cpu_pct);
        if (r->rss_per_conn_bytes > 0)
            fprintf(out, "  %-16s %.0f bytes per idle connection (RSS %.1f -> %.1f MiB)\n",
                    "memory", r->rss_per_conn_bytes, (double)r->rss_base_kb / 1024,
                    (double)r->rss_kb / 1024);
    } else {
        fprintf(out, "  %-16s bench CPU %.0f%% (no server PID: pass --relay-pid for RSS/CPU)\n",
                "cpu", r->bench_cpu_pct);
    }
}

static void json_hist(FILE *out, const char *key, const kb_hist_t *h)
{
    if (h == NULL)
        return;
    fprintf(out, ",\"%s_samples\":%llu,\"%s_p50_us\":%.1f,\"%s_p90_us\":%.1f,"
                 "\"%s_p99_us\":%.1f,\"%s_max_us\":%.1f",
            key, (unsigned long long)h->count, key, (double)kb_hist_quantile(h, 0.50) / 1e3, key,
            (double)kb_hist_quantile(h, 0.90) / 1e3, key,
            (double)kb_hist_quantile(h, 0.99) / 1e3, key, (double)h->max / 1e3);
}

void kb_report_json(FILE *out, const kb_result_t *r)
{
    fprintf(out, "{\"tool\":\"%s\",\"workload\":\"%s\"", r->tool, r->workload);
    if (r->sync)
        fprintf(out, ",\"sync\":\"%s\"", r->sync);
    fprintf(out, ",\"pairs\":%llu,\"window\":%llu,\"body\":%llu,\"messages\":%llu,"
                 "\"rate\":%llu,\"conns\":%llu,\"duration_s\":%.3f",
            (unsigned long long)r->pairs, (unsigned long long)r->window,
            (unsigned long long)r->body, (unsigned long long)r->messages,
            (unsigned long long)r->rate, (unsigned long long)r->conns, r->duration_s);
    fprintf(out, ",\"sent_ok\":%llu,\"delivered\":%llu,\"duplicates\":%llu,\"connects\":%llu"
                 ",\"elapsed_s\":%.3f,\"throughput\":%.1f",
            (unsigned long long)r->sent_ok, (unsigned long long)r->delivered,
            (unsigned long long)r->duplicates, (unsigned long long)r->connects, r->elapsed_s,
            r->throughput);
    if (r->group_size)
        fprintf(out, ",\"group_size\":%llu,\"senders\":%llu,\"deliveries_per_s\":%.1f",
                (unsigned long long)r->group_size, (unsigned long long)r->senders,
                r->deliveries_per_s);
    if (r->cross_relay)
        fputs(",\"cross_relay\":true", out);
    if (r->subscribers)
        fprintf(out, ",\"subscribers\":%llu,\"deliveries_per_s\":%.1f",
                (unsigned long long)r->subscribers, r->deliveries_per_s);
    if (r->storage_read)
        fprintf(out, ",\"entries_per_post\":%.3f,\"bytes_per_post\":%.1f", r->entries_per_post,
                r->bytes_per_post);
    for (int i = 0; i < r->n_storage; i++) {
        const kb_storage_t *s = &r->storage[i];
        fprintf(out, "%s{\"relay\":\"%s\",\"entries_before\":%llu,\"entries_after\":%llu,"
                     "\"bytes_before\":%llu,\"bytes_after\":%llu,\"entries_per_post\":%.3f,"
                     "\"bytes_per_post\":%.1f}%s",
                i ? "," : ",\"storage\":[", s->relay, (unsigned long long)s->entries0,
                (unsigned long long)s->entries1, (unsigned long long)s->bytes0,
                (unsigned long long)s->bytes1, s->entries_per_post, s->bytes_per_post,
                i + 1 == r->n_storage ? "]" : "");
    }
    json_hist(out, "ack", r->ack);
    json_hist(out, "delivery", r->delivery);
    json_hist(out, "connect", r->connect);
    fprintf(out, ",\"errors\":%llu,\"error_kinds\":{", (unsigned long long)r->errors);
    int first = 1;
    for (int k = 0; k < KB_ERR_KINDS; k++) {
        if (r->err_kind[k] == 0)
            continue;
        fprintf(out, "%s\"%s\":%llu", first ? "" : ",", NAMES[k],
                (unsigned long long)r->err_kind[k]);
        first = 0;
    }
    fputc('}', out);
    if (r->server_pid > 0) {
        fprintf(out, ",\"server_pid\":%ld,\"server_rss_kb\":%llu,\"server_rss_peak_kb\":%llu"
                     ",\"server_cpu_pct\":%.1f",
                (long)r->server_pid, (unsigned long long)r->rss_kb,
                (unsigned long long)r->rss_peak_kb, r->server_cpu_pct);
        if (r->rss_per_conn_bytes > 0)
            fprintf(out, ",\"server_rss_base_kb\":%llu,\"rss_per_conn_bytes\":%.0f",
                    (unsigned long long)r->rss_base_kb, r->rss_per_conn_bytes);
    } else {
        fputs(",\"server_pid\":null", out);
    }
    fprintf(out, ",\"bench_cpu_pct\":%.1f}\n", r->bench_cpu_pct);
    fflush(out);
}
