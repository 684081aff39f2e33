/* Broadcast channels in the client (docs/DESIGN.md "Broadcast channels";
 * include/kollega/channel.h for the rules).
 *
 * The client keeps, for every channel it owns, subscribes to or has
 * posted to, the channel's publisher log: every op, validated from index 0
 * with kl_channel_apply. Only ops that validate are stored; an op that does
 * not is ignored together with everything after it, with a warning, so a
 * relay can neither add a publisher nor remove one. Every post is checked
 * with kl_channel_post_open against that validated state: a forged post, or
 * one by a publisher that has been removed, is rejected with a warning
 * ("rejected a post on !x@y: <reason>") and neither stored nor shown.
 * Accepted posts are stored in the local history like messages (sealed,
 * peer = the channel, sender = the publisher's address, id = the post id,
 * so a post delivered twice is stored once), the channel cursor moves in
 * the same transaction, and the relay is acked only after that commit. */
#ifndef KOLLEGA_CLIENT_CHANNELS_H
#define KOLLEGA_CLIENT_CHANNELS_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "kollega/channel.h"
#include "store.h"
#include "sync.h"

/* ---- the store (store_channel.c; "store errors" as in store.h) ---- */
typedef struct kl_store_channel {
    char address[KL_ADDR_MAX + 1];
    uint64_t cursor;          /* highest post seq processed */
    int subscribed;           /* we subscribe (as far as we know) */
    int owned;                /* we created it */
} kl_store_channel_t;

/* The newest key epoch of the posts shown from chan, and the seq of the
 * post that showed it first (0, 0 when none); put inserts or replaces.
 * 0 or KL_EIO. */
int kl_store_channel_epoch_get(kl_store_t *st, const char *chan, uint64_t *epoch, uint64_t *seq);
int kl_store_channel_epoch_put(kl_store_t *st, const char *chan, uint64_t epoch, uint64_t seq);
/* Create the channel tables if missing (a no-op when they exist). 0 or
 * KL_EIO. */
int kl_store_channel_schema(kl_store_t *st);
/* get: KL_ENOTFOUND if there is no row; put inserts or replaces. Store
 * errors. */
int kl_store_channel_get(kl_store_t *st, const char *chan, kl_store_channel_t *c);
int kl_store_channel_put(kl_store_t *st, const kl_store_channel_t *c);
/* Every row in address order; a non-zero cb return stops and is returned;
 * store errors. */
int kl_store_channel_each(kl_store_t *st, int (*cb)(void *ud, const kl_store_channel_t *c),
                          void *ud);
/* The channel's ops and who got which of our channel keys (by epoch):
 * store.h kl_store_slog_*. */

/* Bound of kl_store_channel_key_put. */
#define KL_STORE_CHANNEL_KEYS 1024
/* Members-only channels: channel keys by (channel, epoch, sender identity
 * key), sealed like every secret of the store. put: at most
 * KL_STORE_CHANNEL_KEYS rows per channel (KL_ELIMIT beyond), an existing
 * row is kept (0). get: KL_ENOTFOUND when there is none. Store errors. */
int kl_store_channel_key_put(kl_store_t *st, const char *chan, uint64_t epoch,
                             const uint8_t sender[32], const uint8_t key[KL_CHANNEL_KEY]);
int kl_store_channel_key_get(kl_store_t *st, const char *chan, uint64_t epoch,
                             const uint8_t sender[32], uint8_t key[KL_CHANNEL_KEY]);
/* Bound of kl_store_channel_pending_put. */
#define KL_STORE_CHANNEL_PENDING 1000
/* Posts (SignedPost bytes, sealed) waiting for their epoch's key, by relay
 * seq. put: at most KL_STORE_CHANNEL_PENDING per channel (KL_ELIMIT), a
 * post already kept stays as it is, KL_EINVAL for an empty post or one over
 * KL_CHANNEL_MAX_POST. each: those with a seq above after (0: all) in seq
 * order, post valid during cb, whose first non-zero result stops and is
 * returned. delete: no error if missing. Store errors. */
int kl_store_channel_pending_put(kl_store_t *st, const char *chan, uint64_t seq,
                                 const uint8_t *post, size_t len);
int kl_store_channel_pending_each(kl_store_t *st, const char *chan, uint64_t after,
                                  int (*cb)(void *ud, uint64_t seq, const uint8_t *post,
                                            size_t len),
                                  void *ud);
int kl_store_channel_pending_delete(kl_store_t *st, const char *chan, uint64_t seq);

/* ---- the logic (channels.c) ---- */
typedef struct kl_chan {
    char address[KL_ADDR_MAX + 1];
    kl_channel_t *c;          /* validated state */
    kl_store_channel_t row;   /* the store row (zeroed, address set, if none yet) */
    int has_row;
    int invalid;              /* an op failed validation (warned) */
    int members_only_create;  /* kl_chan_submit of create: make it members-only */
} kl_chan_t;

/* "!name" -> "!name@<own relay>"; "!name@relay" checked, into out (cap).
 * 0, or KL_EINVAL for an invalid or non-canonical address or one that does
 * not fit. */
int kl_chan_address(const kl_cli_t *cli, const char *in, char *out, size_t cap);
/* The validated state from the store (creating the tables if needed);
 * x->row as stored, or fresh (has_row 0). 0 with x owning its state (free
 * with kl_chan_free; x->invalid set, with a warning, for a damaged store),
 * else x is freed: kl_channel_new's errors (KL_EINVAL, KL_ENOMEM), store
 * errors. kl_chan_free frees x->c (NULL is fine) and keeps the row. */
int kl_chan_load(kl_cli_t *cli, const char *address, kl_chan_t *x);
void kl_chan_free(kl_chan_t *x);
/* channel_fetch the ops after the local state, validate, store the valid
 * prefix (one transaction per fetched batch, at most 64 batches), warn
 * about the first invalid op (x->invalid). Relay refusals: KL_EREFUSED
 * (NOT_FOUND: no such channel); KL_EPROTO for a batch from beyond our next
 * index; connection errors as kl_net_call; store errors. */
int kl_chan_sync_ops(kl_cli_t *cli, kl_net_t *conn, kl_chan_t *x);
/* Build the op (kind, target) as us, submit it, and once accepted apply
 * and store it (with x's row); on CONFLICT (not for create) sync and retry
 * once. The op is not checked against the rules before it is sent (the
 * caller checks what it needs): one the relay accepted that does not
 * validate here sets x->invalid and *why and returns KL_EPROTO (nothing
 * stored). Else kl_channel_op_build's errors, relay refusals (KL_EREFUSED),
 * connection and store errors. */
int kl_chan_submit(kl_cli_t *cli, kl_net_t *conn, kl_chan_t *x, kl_channel_opkind_t kind,
                   const uint8_t target[32], const char *target_address,
                   kl_channel_verr_t *why);
/* Write x's row (inside or outside a transaction) and set x->has_row.
 * Store errors. */
int kl_chan_save_row(kl_cli_t *cli, kl_chan_t *x);

/* ---- members-only channels (channel_keys.c) ---- */
/* Keep a channel key received over a 1:1 session from sender (inside the
 * caller's transaction). Store errors only: a key that cannot be kept
 * (over the bound, an invalid channel address, epoch 0) is dropped (0). */
int kl_chan_store_key(kl_store_t *st, const char *chan, const uint8_t sender[32], uint64_t epoch,
                      const uint8_t key[KL_CHANNEL_KEY]);
/* The key of epoch for reading or posting: only one sent by the owner of
 * the validated log, and only while we are a member (KL_ESTATE otherwise,
 * or for a public channel); KL_ENOTFOUND when it has not arrived (or epoch
 * is 0 or beyond the log's); store errors. Wipe it after use. */
int kl_chan_key_get(kl_cli_t *cli, const kl_chan_t *x, uint64_t epoch,
                    uint8_t key[KL_CHANNEL_KEY]);
/* Owner only (KL_ESTATE otherwise, and for a public channel): the key of
 * the current epoch, made (random) and committed when missing (its own
 * transaction). Store errors (key zeroed then). Wipe it after use. */
int kl_chan_own_key(kl_cli_t *cli, const kl_chan_t *x, uint8_t key[KL_CHANNEL_KEY]);
/* Owner only (KL_ESTATE otherwise, as kl_chan_own_key): give the current
 * epoch's key to every member who does not have it yet (publishers and
 * added members; ourselves excepted); who could not be reached or whose
 * key conflicts with our pin is warned about and counted in *missing.
 * Otherwise store and connection errors only (a RATE_LIMITED refusal
 * among them: try again later). */
int kl_chan_distribute(kl_cli_t *cli, kl_net_t *conn, const kl_chan_t *x, size_t *missing);

/* The channel part of `receive`: for every channel the relay lists for us
 * (at most 512), sync ops, then fetch posts after our cursor, verify,
 * store, ack; owned members-only channels not listed get their keys handed
 * out; rows the relay no longer lists are marked unsubscribed. New posts
 * go to s->on_message. Stops at the first error: the relay's (KL_EREFUSED
 * for list, connection errors), or the store's (s->store_error set). */
int kl_chan_receive_all(kl_cli_t *cli, kl_net_t *conn, kl_sync_t *s);

/* Print a stored channel post (m->peer starts with '!'): with --json
 * {"id","channel","from","text","sent_at","verified":true,"seq",
 * "stored_at"}, else "[YYYY-MM-DD HH:MM] [!x@y] publisher: text". */
void kl_chan_print_post(const kl_cli_t *cli, const kl_message_t *m);
/* Warnings about a channel: signedlog.h kl_slog_warn. */

/* ---- the command (cmd_channel.c) ---- */
/* `kollega channel ...`: pos[0] is "channel", npos counts pos; backlog is
 * the --backlog value or NULL; members_only is --members-only (create
 * only). Exit code: KL_EXIT_USAGE for an unknown subcommand, wrong
 * arguments or options, or an invalid address or text; KL_EXIT_FAIL for a
 * refusal (not a publisher, not the owner) or a store, relay or key
 * failure (said on stderr). */
int kl_cmd_channel(kl_cli_t *cli, int npos, const char *const *pos, const char *backlog,
                   int members_only);
/* `kollega channel list` (cmd_channel_list.c): the relay's subscriptions
 * and our owned channels. Exit code: KL_EXIT_OK, or KL_EXIT_FAIL (store,
 * connection or relay failure; said on stderr). */
int kl_chan_cmd_list(kl_cli_t *cli);
/* The text of `kollega channel --help`. */
extern const char KL_CHANNEL_HELP[];

#endif
