/* ERFA groups in the client (docs/DESIGN.md "Groups", "Group governance").
 *
 * Governance (group.c): the client keeps every op of each group it belongs
 * to or is a candidate of, and validates the whole chain with
 * kl_group_apply from index 0. Only ops that validate are stored; an op
 * that does not is ignored together with everything after it, and the user
 * is told. Group commands build ops against the validated local state,
 * check them locally (so refusals are explained before the relay is
 * asked), submit them with group_op and, on CONFLICT, fetch the new ops,
 * re-validate and retry once.
 *
 * Messages (group_msg.c): each member has, per group, its own sender key
 * (kl_senderkey), made lazily and remade whenever the group epoch differs
 * from the epoch it was made for (after a remove or leave). It is sent to
 * every other current member over the 1:1 sessions (e2e Content.sender_key)
 * once per member and key. A group message body is exactly the
 * kl_senderkey_encrypt output with AD = group address || sender identity
 * key over a padded Content{id, sent_at, text, to = group}; the relay never
 * learns who wrote it. The receiver tries the received keys with the
 * message's key_id whose owner is or was a member in its validated state
 * (kl_group_was_member); the message is its author's only if the author
 * was a member at the view it is bound to (Content.group_index, required)
 * and the key's epoch is the group's epoch there, so a farewell before a
 * leave is read and nothing written after an exit is. Keys of departed
 * members are kept for the group's retention (group_recv.c). An entry no
 * key opens yet is kept (sealed) and retried when new keys arrive.
 *
 * View check: every group message carries the author's view of the log
 * (Content.group_index = its next_index, group_head = its head), and the
 * relay gets the same index in Send.group_index (it refuses the message with
 * CONFLICT if a remove or leave came later: the author catches up, rotates
 * and retries once). A receiver that decrypts a message from beyond its
 * own log first fetches the ops; if its head at that index then differs
 * from group_head, or the relay still withholds the ops, the message is
 * not shown and the author's client is said (once per author) to claim
 * another history: either it misbehaves or the relay shows members
 * different histories. That is the author's dispute (store_group.h); it
 * ends when a later message of the author agrees, or when the author
 * leaves or is removed. Sending and key distribution go on: a member can
 * sign any claim, so a claim is no proof.
 *
 * Fork (kl_grp_blocked): declared only on the relay's own proof: a log it
 * delivers that fails validation (invalid), or two different validly
 * signed ops it delivered for the same index (every sync asks again for
 * our last op and compares). Then nothing is sent to the group and no key
 * is given in it.
 *
 * "Store errors" are store.h's; "connection errors" kl_net_call's. */
#ifndef KOLLEGA_CLIENT_GROUP_H
#define KOLLEGA_CLIENT_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "kollega/group.h"
#include "kollega/senderkey.h"
#include "sync.h"

typedef struct kl_grp {
    char address[KL_ADDR_MAX + 1];
    kl_group_t *g;                         /* validated state */
    int invalid;                           /* the relay delivered an op that failed */
    char invited_by[KL_ADDR_MAX + 1];      /* who invited us, if anyone */
    int admitted;                          /* an op admitted us (not the creator) */
    int removed;                           /* we were removed */
    char removed_by[KL_ADDR_MAX + 1];
    int left;                              /* we left */
    uint64_t relay_next;                   /* from the last GroupLog */
    uint8_t relay_head[32];
    uint8_t (*heads)[32];                  /* heads[i]: the log head after op i */
    size_t nheads, heads_cap;
    uint64_t fork_index;                   /* 0, or 1 + the index where the relay proved a fork */
} kl_grp_t;

/* The log head a member saw when its next_index was `index` (the head after
 * op index - 1) in our validated log: 0, or KL_ENOTFOUND when our log is
 * shorter (or index is 0). */
int kl_grp_head_at(const kl_grp_t *x, uint64_t index, uint8_t out[32]);
/* 1 when the group must not be written to or given keys: our copy of the
 * log is invalid (the relay delivered a bad op) or the relay proved a fork
 * (two different signed ops for one index); 0 otherwise. */
int kl_grp_blocked(const kl_grp_t *x);

/* "#name" -> "#name@<own relay>", "#name@relay" checked, into out (cap).
 * 0, or KL_EINVAL for an invalid or non-canonical address or one that does
 * not fit. */
int kl_grp_address(const kl_cli_t *cli, const char *in, char *out, size_t cap);

/* The validated state from the store (ops replayed from index 0; a
 * damaged store sets x->invalid, with a warning) and the fork mark of the
 * group row. 0 with x owning its state (free with kl_grp_free, which may be
 * called again), else x is freed: kl_group_new's errors (KL_EINVAL,
 * KL_ENOMEM), store errors. */
int kl_grp_load(kl_cli_t *cli, const char *address, kl_grp_t *x);
void kl_grp_free(kl_grp_t *x);

/* group_fetch the ops after the local state (from our last op: the relay
 * must give that one back unchanged, else it proved a fork: stored, warned,
 * x->fork_index), validate, store the valid prefix (one transaction per
 * fetched batch, at most 256 batches), warn about the first invalid op
 * (x->invalid). Also keeps the relay's next index and head in x.
 * KL_EREFUSED with the relay's code for refusals (NOT_FOUND: no such
 * group), KL_EPROTO for a batch that does not start where asked,
 * connection and store errors. */
int kl_grp_sync_ops(kl_cli_t *cli, kl_net_t *conn, kl_grp_t *x);

/* Build op d against x's state, validate it locally (*why on refusal:
 * KL_ESTATE returned, nothing sent), submit it, store it; on CONFLICT sync
 * and retry once (KL_ECRYPTO if the log then proves invalid). ev describes
 * the applied op. Relay refusals: KL_EREFUSED (x reloaded from the store);
 * kl_group_op_build's, connection and store errors. */
int kl_grp_submit(kl_cli_t *cli, kl_net_t *conn, kl_grp_t *x, const kl_group_opdesc_t *d,
                  kl_group_event_t *ev, kl_group_verr_t *why);

/* `group request`: ask to join a group we are not named in (built from the
 * relay's next index and head), retried once on CONFLICT, then sync the
 * log we are now named in. KL_ENOTFOUND when the relay has no such group,
 * KL_EEXIST when we are a member or candidate already, KL_ESTATE when the
 * rules refuse it; kl_grp_sync_ops's and kl_grp_submit's errors. */
int kl_grp_request(kl_cli_t *cli, kl_net_t *conn, kl_grp_t *x, kl_group_event_t *ev);

/* Warn about something in a group: stderr, or with --json a JSON object
 * {"warning", "group", "message"} on stdout. */
void kl_grp_warn(const kl_cli_t *cli, const char *grp, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A notice for the user ("you were invited ..."): stdout, or a JSON
 * object {"event", "group", "message", [by]} with --json. */
void kl_grp_notice(const kl_cli_t *cli, const char *grp, const char *event, const char *by,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- group_msg.c ---- */

/* Send text to the group: rotate our sender key if the epoch changed,
 * distribute it to members that lack it, encrypt, commit the advanced key,
 * send (on CONFLICT: sync and retry once), store in history (*m, text
 * borrowed; a failure to store is said, not returned). KL_ESTATE: not a
 * member; KL_ECRYPTO: the group is blocked (kl_grp_blocked); KL_ETOOBIG:
 * too large once encrypted; relay refusals (KL_EREFUSED), connection and
 * store errors. */
int kl_grp_send(kl_cli_t *cli, kl_net_t *conn, kl_grp_t *x, const char *text, size_t len,
                kl_message_t *m);
/* Give our current sender key to every current member that lacks it (only
 * while it is valid for the current epoch, we are a member and the group is
 * not blocked; else nothing, 0). Members who cannot be reached or whose
 * key conflicts with our pin are warned about, not errors; connection
 * errors (a RATE_LIMITED refusal among them) and store errors stop it. */
int kl_grp_distribute(kl_cli_t *cli, kl_net_t *conn, kl_grp_t *x);

/* Our sender key for the group's current epoch (*k, kl_senderkey_free;
 * NULL on failure): with create, made and committed (own transaction) when
 * there is none or the epoch moved on since it was made; without,
 * KL_ENOTFOUND then. kl_senderkey_new's and store errors. */
int kl_grp_own_key(kl_cli_t *cli, const kl_grp_t *x, int create, kl_senderkey_t **k);
/* Encrypt text with k as a group message (*body malloc'd, for send.body;
 * free() it; NULL on failure) and commit k's advanced chain (own
 * transaction); *m describes the outgoing message (id, sent_at, peer,
 * sender; text borrowed). No network. KL_ETOOBIG over KL_BODY_MAX,
 * KL_ENOMEM, kl_senderkey_encrypt's and store errors. */
int kl_grp_seal(kl_cli_t *cli, const kl_grp_t *x, kl_senderkey_t *k, const char *text,
                size_t len, kl_message_t *m, uint8_t **body, size_t *blen);

/* Receiving one group's entries. */
typedef struct kl_grp_rx {
    kl_cli_t *cli;
    kl_sync_t *s;                /* on_message, stored count */
    kl_grp_t *x;
    kl_net_t *conn;             /* to fetch ops a message refers to; NULL offline */
    size_t stored, pending_new, failed;
    size_t refused;              /* messages whose author claimed another history */
    uint64_t dropped;            /* pending entries dropped over KL_GPENDING_MAX */
} kl_grp_rx_t;
/* Process one entry of x's log (skipped at or below the group cursor):
 * decrypt with a key of a member (now or before) and store the message
 * after the view check, or keep it as pending (no key yet), or count a
 * failure; the group cursor moves in the same transaction. Errors: store
 * failures, and the connection errors of fetching the ops a message refers
 * to (kl_grp_sync_ops; a refusal is none). */
int kl_grp_entry(kl_grp_rx_t *c, uint64_t seq, uint64_t ts, const uint8_t *body, size_t len);
/* Retry all pending entries in seq order (read 32 at a time, so later ones
 * are retried even behind entries whose key never comes), each through the
 * view check like a fresh one; *left = how many stay pending. Errors as
 * kl_grp_entry's, KL_ENOMEM. */
int kl_grp_retry_pending(kl_grp_rx_t *c, size_t *left);

/* Store a received distribution record (called by sync.c inside its
 * transaction): owner's key for grp, kept as first seen. A key for a group
 * we have no row for (never listed for us, never fetched) is ignored (0,
 * nothing stored). kl_senderkey_import's errors, store errors. */
int kl_grp_store_dist(kl_store_t *st, const char *grp, const uint8_t owner[32], uint64_t epoch,
                      const uint8_t *dist, size_t len);

/* The group part of `receive`: group_list, then per group (those listed,
 * and those we have a row for but the relay no longer lists) ops, notices,
 * key distribution, the message log after our cursor (acked after each
 * batch's commits), pending entries, retention. New messages go to
 * s->on_message. Stops at the first error: relay refusals of group_list,
 * connection and store errors, KL_ENOMEM. */
int kl_grp_receive_all(kl_cli_t *cli, kl_net_t *conn, kl_sync_t *s);

/* Before the inbox is read: a group row for every group the relay lists
 * for us (member or candidate; at most 256), so the sender keys the inbox
 * carries for them are accepted (kl_grp_store_dist). Relay refusals,
 * connection and store errors. */
int kl_grp_know_listed(kl_cli_t *cli, kl_net_t *conn);

/* We left or were removed: drop grp's sender keys, distribution records,
 * pending entries and disputes (kl_store_group_forget) in one transaction.
 * Store errors. */
int kl_grp_forget(kl_cli_t *cli, const char *grp);

/* For every group row: delete messages and pending entries older than the
 * group's retention from the store, and received keys no longer needed
 * (one transaction per group). Stops at the first error: store errors,
 * kl_grp_load's. */
int kl_grp_retention_all(kl_cli_t *cli);

#endif
