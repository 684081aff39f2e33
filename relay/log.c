#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kollega/err.h"
#include "log.h"

static kl_log_level_t min_level = KL_LOG_INFO;
static const char *NAMES[] = {"debug", "info", "warn", "error"};

void kl_log_set_level(kl_log_level_t level)
{
    min_level = level;
}

int kl_log_level_parse(const char *s, kl_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, NAMES[i]) == 0) {
            *out = (kl_log_level_t)i;
            return 0;
        }
    }
    return KL_EINVAL;
}

int kl_log_enabled(kl_log_level_t level)
{
    return level >= min_level;
}

/* The whole line is built first and written with one fputs, so lines of
 * the storage thread and the loop never interleave mid-line. */
static void emit(kl_log_level_t level, const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void emit(kl_log_level_t level, const char *prefix, const char *fmt, va_list ap)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, NAMES[level], prefix);
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = m < 0 ? (size_t)n : strnlen(line, sizeof line - 1);
    line[len] = '\n'; /* len <= sizeof line - 2: vsnprintf was given one byte less */
    line[len + 1] = '\0';
    fputs(line, stderr);
}

void kl_log(kl_log_level_t level, const char *fmt, ...)
{
    if (!kl_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, "", fmt, ap);
    va_end(ap);
}

void kl_log_conn(kl_log_level_t level, uint64_t conn, const char *peer, const char *fmt, ...)
{
    if (!kl_log_enabled(level))
        return;
    char prefix[128];
    snprintf(prefix, sizeof prefix, "conn=%llu peer=%s ", (unsigned long long)conn,
             peer ? peer : "-");
    va_list ap;
    va_start(ap, fmt);
    emit(level, prefix, fmt, ap);
    va_end(ap);
}
