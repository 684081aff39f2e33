#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmdline/json.h"
#include "kollega/err.h"
#include "diag.h"

/* Read by the loop and the storage thread, written by a config reload. */
static _Atomic int min_level = KL_DIAG_INFO;
static _Atomic int format = KL_DIAG_TEXT;
static const char *NAMES[] = {"debug", "info", "warn", "error"};

void kl_diag_set_level(kl_diag_level_t level)
{
    atomic_store(&min_level, (int)level);
}

void kl_diag_set_format(kl_diag_format_t f)
{
    atomic_store(&format, (int)f);
}

int kl_diag_level_parse(const char *s, kl_diag_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, NAMES[i]) == 0) {
            *out = (kl_diag_level_t)i;
            return 0;
        }
    }
    return KL_EINVAL;
}

int kl_diag_format_parse(const char *s, kl_diag_format_t *out)
{
    if (strcmp(s, "text") == 0)
        *out = KL_DIAG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = KL_DIAG_JSON;
    else
        return KL_EINVAL;
    return 0;
}

int kl_diag_enabled(kl_diag_level_t level)
{
    return (int)level >= atomic_load(&min_level);
}

/* Fields of a connection line; NULL peer/user are left out. */
typedef struct fields {
    int has_conn;
    uint64_t conn;
    const char *peer, *user;
} fields_t;

/* Append to b (capacity cap, n used) and return the new length, at most
 * cap - 1. */
static size_t put(char *b, size_t cap, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t put(char *b, size_t cap, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(b + n, cap - n, fmt, ap);
    va_end(ap);
    if (m < 0)
        return n;
    return (size_t)m >= cap - n ? cap - 1 : n + (size_t)m;
}

/* The whole line is built first and written with one fputs, so lines of
 * the storage thread and the loop never interleave mid-line. */
static void emit(kl_diag_level_t level, const fields_t *fl, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void emit(kl_diag_level_t level, const fields_t *fl, const char *fmt, va_list ap)
{
    char msg[1024], ts[64];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
        msg[0] = '\0';
    if (atomic_load(&format) == KL_DIAG_JSON) {
        kl_json_t j;
        kl_json_init(&j);
        kl_json_obj_begin(&j, NULL);
        kl_json_str(&j, "ts", ts);
        kl_json_str(&j, "level", NAMES[level]);
        kl_json_str(&j, "msg", msg);
        if (fl && fl->has_conn)
            kl_json_uint(&j, "conn", fl->conn);
        if (fl && fl->peer)
            kl_json_str(&j, "peer", fl->peer);
        if (fl && fl->user)
            kl_json_str(&j, "user", fl->user);
        kl_json_obj_end(&j);
        if (kl_json_cstr(&j))
            fprintf(stderr, "%s\n", kl_json_cstr(&j));
        kl_json_free(&j);
        return;
    }
    char line[1400];
    size_t n = put(line, sizeof line, 0, "%s %s ", ts, NAMES[level]);
    if (fl && fl->has_conn)
        n = put(line, sizeof line, n, "conn=%llu ", (unsigned long long)fl->conn);
    if (fl && fl->peer)
        n = put(line, sizeof line, n, "peer=%s ", fl->peer);
    if (fl && fl->user)
        n = put(line, sizeof line, n, "user=%s ", fl->user);
    n = put(line, sizeof line, n, "%s\n", msg);
    if (n == sizeof line - 1)
        line[n - 1] = '\n'; /* cut short: still one line */
    fputs(line, stderr);
}

void kl_diag(kl_diag_level_t level, const char *fmt, ...)
{
    if (!kl_diag_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, NULL, fmt, ap);
    va_end(ap);
}

void kl_diag_conn(kl_diag_level_t level, uint64_t conn, const char *peer, const char *fmt, ...)
{
    if (!kl_diag_enabled(level))
        return;
    fields_t fl = {1, conn, kl_diag_enabled(KL_DIAG_DEBUG) ? (peer ? peer : "-") : NULL, NULL};
    va_list ap;
    va_start(ap, fmt);
    emit(level, &fl, fmt, ap);
    va_end(ap);
}

void kl_diag_user(kl_diag_level_t level, uint64_t conn, const char *peer, const char *user,
                 const char *fmt, ...)
{
    if (!kl_diag_enabled(level))
        return;
    int dbg = kl_diag_enabled(KL_DIAG_DEBUG);
    fields_t fl = {1, conn, dbg ? (peer ? peer : "-") : NULL, dbg && user && user[0] ? user : NULL};
    va_list ap;
    va_start(ap, fmt);
    emit(level, &fl, fmt, ap);
    va_end(ap);
}
