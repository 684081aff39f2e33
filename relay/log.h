/* The relay's log: one line per event on stderr,
 *   2025-03-01T12:00:00.123Z info conn=12 peer=127.0.0.1:53422 accepted
 * Connection events carry conn= and peer=; relay-wide events carry neither.
 * Callers must NEVER pass keys, message bodies, invite codes or signatures:
 * only handles, addresses of peers, sizes, counts and reasons. */
#ifndef KOLLEGA_RELAY_LOG_H
#define KOLLEGA_RELAY_LOG_H

#include <stdint.h>

typedef enum kl_log_level {
    KL_LOG_DEBUG = 0,
    KL_LOG_INFO = 1,
    KL_LOG_WARN = 2,
    KL_LOG_ERROR = 3,
} kl_log_level_t;

/* Lines below level are dropped (default KL_LOG_INFO). */
void kl_log_set_level(kl_log_level_t level);
/* "debug", "info", "warn", "error" -> 0, or KL_EINVAL. */
int kl_log_level_parse(const char *s, kl_log_level_t *out);
int kl_log_enabled(kl_log_level_t level);

/* A relay-wide event. */
void kl_log(kl_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A connection event: conn id and peer "IP:PORT". */
void kl_log_conn(kl_log_level_t level, uint64_t conn, const char *peer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
