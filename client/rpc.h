/* The client's requests to its relay (proto/relay.proto), each one function
 * with plain C arguments and results. These modules are the only client
 * code that builds or reads relay Frames, besides the connection itself
 * (net.c), so no command sees the generated protobuf types:
 *   rpc_account.c  registration, login, ping, lookups, delivery token, prekeys
 *   rpc_log.c      the message logs: send, fetch, ack, pushes
 *   rpc_oplog.c    the signed op logs of groups and channels, their lists,
 *                  channel subscriptions
 *
 * Every call sends one request on conn and waits for its answer
 * (kl_net_call): a refusal of the relay is KL_EREFUSED with
 * kl_net_relay_error() set (a kl_wire_err_t), an answer that does not fit
 * the request is KL_EPROTO, connection errors are as kl_net_call's; these
 * are "the usual errors" below. Arguments are only read (borrowed for
 * the call).
 *
 * A log is named by its address: NULL (or "") for our own inbox,
 * "#name@relay" for a group, "!name@relay" for a channel. */
#ifndef KOLLEGA_CLIENT_RPC_H
#define KOLLEGA_CLIENT_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/wire.h"
#include "kollega/x3dh.h"
#include "net.h"
#include "prekeys.h"

/* ---- account and keys (rpc_account.c) ---- */

/* register{handle, identity_key, invite_code, signature} -> ok. sig signs
 * kl_wire_register_msg for this connection. The usual errors. */
int kl_rpc_register(kl_net_t *conn, const char *handle, const uint8_t ik[32], const char *code,
                    const uint8_t sig[64]);
/* auth{address, signature} -> ok. sig signs kl_wire_auth_msg. The usual
 * errors. */
int kl_rpc_auth(kl_net_t *conn, const char *address, const uint8_t sig[64]);
/* ping{nonce} -> pong (its nonce not checked). The usual errors. */
int kl_rpc_ping(kl_net_t *conn, uint64_t nonce);
/* lookup{address[, delivery_token]} -> lookup_result: *exists, and key
 * when it does. token (32 bytes) may be NULL. KL_EPROTO for an answer
 * about another address or with a key that is not 32 bytes; the usual
 * errors. */
int kl_rpc_lookup(kl_net_t *conn, const char *address, const uint8_t *token, int *exists,
                  uint8_t key[32]);
/* delivery_token{token_hash} -> ok. The usual errors. */
int kl_rpc_delivery_token(kl_net_t *conn, const uint8_t hash[32]);
/* prekey_upload{signed prekey, one-time prekeys of b} -> ok. KL_ENOMEM;
 * the usual errors. */
int kl_rpc_prekey_upload(kl_net_t *conn, const kl_prekey_batch_t *b);

/* What prekey_status reports (relay.proto PrekeyCount). */
typedef struct kl_rpc_prekey_count {
    uint32_t one_time;         /* one-time prekeys left */
    uint32_t ran_out;          /* fetches that found none since the last upload */
    uint64_t ran_out_since_ms; /* the first of them; 0 when ran_out is 0 */
} kl_rpc_prekey_count_t;

/* prekey_status -> prekey_count (all zero when the answer has none, or on
 * failure). The usual errors. */
int kl_rpc_prekey_status(kl_net_t *conn, kl_rpc_prekey_count_t *out);
/* prekey_fetch{address} -> prekey_bundle, checked for form (not for its
 * signature: X3DH does that): 0 with *b (zeroed on failure), KL_ENOTFOUND
 * when address has published no signed prekey, KL_EPROTO for an answer
 * about someone else or with keys of the wrong size; the usual errors. */
int kl_rpc_prekey_fetch(kl_net_t *conn, const char *address, kl_prekey_bundle_t *b);

/* ---- message logs (rpc_log.c) ---- */

/* send{to, body[, group_index][, delivery_token]} -> *seq once the relay
 * has committed it (*seq set only on success). group_index 0 and token
 * NULL leave them out. The usual errors. */
int kl_rpc_send(kl_net_t *conn, const char *to, const uint8_t *body, size_t len,
                uint64_t group_index, const uint8_t *token, uint64_t *seq);

/* One entry of a log; body points into the batch that holds it. */
typedef struct kl_rpc_entry {
    uint64_t seq;
    uint64_t ts;               /* the relay's receive time, ms */
    const uint8_t *body;
    size_t len;
} kl_rpc_entry_t;

/* A deliver answer: its entries in seq order (entries without a seq left
 * out), and whether the relay holds more. Free with kl_rpc_batch_free. */
typedef struct kl_rpc_batch {
    kl_rpc_entry_t *entries;
    size_t n;
    int more;
    kl_frame_t *frame;         /* owns the bodies */
} kl_rpc_batch_t;

/* fetch{after[, limit]} of log -> its entries after `after` (limit 0: the
 * relay's own), into *out (kl_rpc_batch_take; free with kl_rpc_batch_free
 * on success, zeroed on failure). A deliver that names another log than
 * the one asked for counts as empty. KL_ENOMEM; the usual errors. */
int kl_rpc_fetch(kl_net_t *conn, const char *log, uint64_t after, uint32_t limit,
                 kl_rpc_batch_t *out);
/* Turn a deliver frame f (answer or push) about log into *out, which then
 * owns f: free with kl_rpc_batch_free. On failure f is freed already and
 * *out zeroed: KL_EPROTO if f is NULL or no deliver, KL_ENOMEM.
 * kl_rpc_batch_free frees the entries and the frame and zeroes b (a zeroed
 * batch is fine). */
int kl_rpc_batch_take(kl_frame_t *f, const char *log, kl_rpc_batch_t *out);
void kl_rpc_batch_free(kl_rpc_batch_t *b);
/* ack{seq} of log -> ok: the relay may drop the entries up to seq. The
 * usual errors. */
int kl_rpc_ack(kl_net_t *conn, const char *log, uint64_t seq);
/* 1 if push (a frame the relay sent unasked) says there is something to
 * fetch: log entries (deliver) or new ops (group_log, channel_log); else
 * 0. */
int kl_rpc_push_is_news(const kl_frame_t *push);

/* ---- signed op logs of groups and channels (rpc_oplog.c) ---- */

/* Bytes inside an answer. */
typedef struct kl_rpc_blob {
    const uint8_t *data;
    size_t len;
} kl_rpc_blob_t;

/* A group_log or channel_log answer. Free with kl_rpc_oplog_free. */
typedef struct kl_rpc_oplog {
    uint64_t from_index;       /* the index of ops[0] */
    kl_rpc_blob_t *ops;        /* SignedOp bytes */
    size_t n_ops;
    int more;
    uint64_t next_index;       /* the index the next op must have */
    uint8_t head[32];          /* SHA-256 of the last op (zero when not 32 bytes) */
    kl_frame_t *frame;         /* owns the ops */
} kl_rpc_oplog_t;

/* group_fetch / channel_fetch{log, from_index} -> the log's ops from
 * `from` on (log: a '#' group address; any other is taken as a channel's),
 * into *out (free with kl_rpc_oplog_free on success; freed and zeroed on
 * failure). KL_EPROTO for an answer about another log, KL_ENOMEM; the
 * usual errors. kl_rpc_oplog_free zeroes l (a zeroed one is fine). */
int kl_rpc_oplog_fetch(kl_net_t *conn, const char *log, uint64_t from, kl_rpc_oplog_t *out);
void kl_rpc_oplog_free(kl_rpc_oplog_t *l);
/* group_op / channel_op{signed_op} for log (by its sigil, as
 * kl_rpc_oplog_fetch) -> accepted. The usual errors (CONFLICT: another op
 * took that index). */
int kl_rpc_op_submit(kl_net_t *conn, const char *log, const uint8_t *op, size_t len);

/* One group or channel the relay lists for us. */
typedef struct kl_rpc_listed {
    const char *address;
    uint64_t next_index;
    uint64_t last_seq;         /* the last seq of its message log */
    uint64_t cursor;           /* channels: our cursor at the relay */
    int member;                /* groups: 1 member, 0 candidate */
} kl_rpc_listed_t;

/* The answer to group_list or channel_list (entries without an address
 * left out). Free with kl_rpc_list_free. */
typedef struct kl_rpc_list {
    kl_rpc_listed_t *v;
    size_t n;
    kl_frame_t *frame;         /* owns the addresses */
} kl_rpc_list_t;

/* group_list (sigil '#') or channel_list (any other sigil) -> *out (free
 * with kl_rpc_list_free on success; zeroed on failure). KL_ENOMEM; the
 * usual errors. kl_rpc_list_free zeroes l (a zeroed one is fine). */
int kl_rpc_list(kl_net_t *conn, char sigil, kl_rpc_list_t *out);
void kl_rpc_list_free(kl_rpc_list_t *l);
/* subscribe{channel, backlog} (on) or unsubscribe{channel} -> ok. The
 * usual errors. */
int kl_rpc_subscribe(kl_net_t *conn, const char *channel, int on, uint32_t backlog);

#endif
