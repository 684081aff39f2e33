/* The relay's diagnostics ("the relay's log" to its operator, --log-level):
 * one line per event on stderr, as text
 *   2025-03-01T12:00:00.123Z info conn=12 accepted
 * or, with kl_diag_set_format(KL_DIAG_JSON), one JSON object per line for
 * journald and log shippers:
 *   {"ts":"2025-03-01T12:00:00.123Z","level":"info","msg":"accepted","conn":12}
 *
 * What a line may hold depends on the level the relay runs at. At info
 * (and warn, error) lines carry events, counts, sizes and reasons only: no
 * user handle, no user address, no client IP:port, so a log kept for
 * months says how the relay behaved, not who used it when and from where.
 * Only when the relay runs at debug do connection lines add peer=IP:PORT
 * and user=HANDLE (kl_diag_conn / kl_diag_user drop them otherwise), for an
 * operator chasing one problem for a short while.
 * Callers must NEVER pass keys, message bodies, invite codes or
 * signatures, and must not put handles or client addresses in the format
 * text: those go through the peer/user arguments. */
#ifndef KOLLEGA_RELAY_DIAG_H
#define KOLLEGA_RELAY_DIAG_H

#include <stdint.h>

typedef enum kl_diag_level {
    KL_DIAG_DEBUG = 0,
    KL_DIAG_INFO = 1,
    KL_DIAG_WARN = 2,
    KL_DIAG_ERROR = 3,
} kl_diag_level_t;

typedef enum kl_diag_format {
    KL_DIAG_TEXT = 0,
    KL_DIAG_JSON = 1,
} kl_diag_format_t;

/* Lines below level are dropped (default KL_DIAG_INFO). Both settings may
 * change at any time (a config reload) while other threads log. */
void kl_diag_set_level(kl_diag_level_t level);
void kl_diag_set_format(kl_diag_format_t format);
/* "debug", "info", "warn", "error" -> 0, or KL_EINVAL. */
int kl_diag_level_parse(const char *s, kl_diag_level_t *out);
/* "text", "json" -> 0, or KL_EINVAL. */
int kl_diag_format_parse(const char *s, kl_diag_format_t *out);
int kl_diag_enabled(kl_diag_level_t level);

/* A relay-wide event. */
void kl_diag(kl_diag_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A connection event: conn id, and the peer "IP:PORT" (shown only when
 * the relay logs at debug). */
void kl_diag_conn(kl_diag_level_t level, uint64_t conn, const char *peer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with the connection's user handle (shown only at debug). */
void kl_diag_user(kl_diag_level_t level, uint64_t conn, const char *peer, const char *user,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
