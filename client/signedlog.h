/* What the client's two signed-log features share: ERFA groups (group*.c,
 * cmd_group*.c) and broadcast channels (channels.c, channel_keys.c,
 * cmd_channel*.c). Each keeps a validated local copy of a log of signed
 * ops, replayed from the store, extended by batches the relay delivers,
 * and hands its members keys over the 1:1 sessions; the rules of each
 * kind (which ops validate, who gets which key, what the user is told)
 * stay in its own files and reach the shared code through kl_slog_t. */
#ifndef KOLLEGA_CLIENT_SIGNEDLOG_H
#define KOLLEGA_CLIENT_SIGNEDLOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "cmdline/json.h"
#include "rpc.h"
#include "session.h"

/* Complete an address typed by the user for a log whose addresses start
 * with sigil ('#' for groups, '!' for channels): "#name" becomes
 * "#name@<home relay>", "#name@relay" is copied as it is. Returns 0, or
 * KL_EINVAL if in does not start with sigil or the result does not fit
 * full[cap]. Only the form is completed: the caller validates the result. */
int kl_slog_complete(const kl_cli_t *cli, const char *in, char sigil, char *full, size_t cap);

/* A warning about the log at addr: "kollega: <msg>" on stderr (msg names
 * the log), and with --json also {"warning": kind, "group" or "channel":
 * addr, "message": msg} on stdout. kl_slog_vwarn with prefix set says
 * "kollega: <addr>: <msg>" on stderr instead, for messages that do not
 * name the log. */
void kl_slog_warn(const kl_cli_t *cli, const char *addr, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void kl_slog_vwarn(const kl_cli_t *cli, const char *addr, const char *kind, int prefix,
                   const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

/* A log as the shared code sees it: its address, the feature's own state
 * and the rules of its kind. */
typedef struct kl_slog {
    const char *address;
    void *state;                 /* the feature's: a group's or a channel's context */
    int *invalid;                /* set once an op does not validate */
    /* The index the next op must have. */
    uint64_t (*next_index)(const void *state);
    /* Validate op against the state and apply it: NULL, or why it does
     * not validate (static text). */
    const char *(*apply)(kl_cli_t *cli, void *state, const uint8_t *op, size_t len);
    /* Warn that op idx the relay delivered does not validate (why). */
    void (*invalid_op)(kl_cli_t *cli, void *state, uint64_t idx, const char *why);
    /* Inside kl_slog_take's transaction, before the first op (begin) and
     * after each op is stored (stored): the kind's own bookkeeping. NULL:
     * none. Store errors roll the transaction back. */
    int (*begin)(kl_cli_t *cli, void *state);
    int (*stored)(kl_cli_t *cli, void *state);
} kl_slog_t;

/* Replay the stored ops of l into its (fresh) state. An op that does not
 * validate, or is stored out of order, means a damaged store: it and
 * everything after it are ignored, with the warning "invalid_stored_op",
 * and *l->invalid is set. Store errors only. */
int kl_slog_replay(kl_cli_t *cli, const kl_slog_t *l);
/* In one transaction (KL_ESTATE inside the caller's), apply ops[0..n) of a
 * batch the relay delivered (the first must have the log's next index) and
 * store each: the first op that does not validate stops it, with
 * l->invalid_op's warning, and sets *l->invalid (the ops before it are
 * kept). *applied counts the stored ops. Store errors only: nothing is
 * kept then and *applied is 0, but l's state has moved on (reload it). */
int kl_slog_take(kl_cli_t *cli, const kl_slog_t *l, const kl_rpc_blob_t *ops, size_t n,
                 size_t *applied);
/* Store op idx, already applied to l's state (an op we built and the relay
 * accepted), in one transaction with the kind's begin and stored hooks.
 * Store errors only (KL_EEXIST if idx is stored already; KL_ESTATE inside
 * the caller's transaction). */
int kl_slog_store(kl_cli_t *cli, const kl_slog_t *l, uint64_t idx, const uint8_t *op, size_t len);

/* Entries copied out of the store (those waiting for a key), so they can
 * be handled while the store changes under them. */
#define KL_SLOG_BATCH 64
typedef struct kl_slog_batch {
    size_t n;
    uint64_t seq[KL_SLOG_BATCH];
    uint64_t ts[KL_SLOG_BATCH];
    uint8_t *body[KL_SLOG_BATCH];
    size_t len[KL_SLOG_BATCH];
} kl_slog_batch_t;
/* Copy one entry into b (an empty body is skipped): 0, 1 when b is full
 * (the entry is not taken: a store loop stops there), KL_ENOMEM. */
int kl_slog_batch_add(kl_slog_batch_t *b, uint64_t seq, uint64_t ts, const uint8_t *body,
                      size_t len);
/* Wipe and free the copies; b is empty again. */
void kl_slog_batch_clear(kl_slog_batch_t *b);

/* What became of handing a member one of our keys (kl_slog_give_key). */
typedef enum kl_slog_give {
    KL_SLOG_HAD,                 /* the store says it went before */
    KL_SLOG_GIVEN,               /* sent now, and recorded */
    KL_SLOG_CONFLICT,            /* the member's key in the log is not the one we pinned */
    KL_SLOG_UNREACHABLE,         /* not now: no prekeys, a changed key, a refusal */
} kl_slog_give_t;

/* Hand the member (address maddr, identity key mkey from the validated
 * log) our key `key` of log (a sender key id, a channel key epoch) over
 * the 1:1 session, once: ct carries the key (the kind's part filled in;
 * its id, time, empty text and recipient are set here). After the relay
 * took it, kl_store_slog_key_sent records it. 0 with *out; for
 * KL_SLOG_UNREACHABLE *err is why (KL_ENOTFOUND: no prekeys). Other
 * store and connection errors are returned (RATE_LIMITED among them: the
 * caller stops and tries again later). */
int kl_slog_give_key(kl_cli_t *cli, kl_net_t *conn, const char *log, uint64_t key,
                     const uint8_t mkey[32], const char *maddr, kl_content_t *ct,
                     kl_slog_give_t *out, int *err);

#endif
