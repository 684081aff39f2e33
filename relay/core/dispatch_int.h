/* Request and reply pieces shared by the files of core/ (dispatch.c, dispatch_account.c,
 * dispatch_group.c, dispatch_channel.c, dispatch_oplog.c, fed_dispatch.c,
 * dispatch_unidentified.c); private to this folder. */
#ifndef KOLLEGA_RELAY_DISPATCH_INT_H
#define KOLLEGA_RELAY_DISPATCH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "dispatch.h"

/* ---- replies (dispatch.c) ---------------------------------------------- */

/* An error reply in out (has_reply), closing the connection after it when
 * close is set. */
void kl_dispatch_fail(kl_dispatch_out_t *out, uint32_t id, int code, const char *message,
                      int close);
/* A zeroed reply frame with request id id. */
void kl_dispatch_reply_init(kl_reply_t *r, uint32_t id);
/* A failed job's storage error: UNAVAILABLE (retry) for KL_EIO and
 * KL_ENOMEM, INTERNAL for anything else. */
void kl_dispatch_storage_failed(kl_dispatch_out_t *out, uint32_t id, int err);
/* The reply after an allocation failed: whatever out held is freed, then
 * UNAVAILABLE "the relay is out of memory: retry later". */
void kl_dispatch_oom(kl_dispatch_out_t *out, uint32_t id);
/* A deliver frame over e[0..n) (the entry structs are allocated, their
 * bodies point into e): 0 or KL_ENOMEM. */
int kl_dispatch_build_deliver(kl_reply_t *r, uint32_t id, const kl_storage_entry_t *e,
                              size_t n, int more);
/* Replies in out: ok{}; sent{seq}. */
void kl_dispatch_ok(kl_dispatch_out_t *out, uint32_t id);
void kl_dispatch_sent(kl_dispatch_out_t *out, uint32_t id, uint64_t seq);
/* sent{seq} to job's request, and in out->push deliver{entries: [the entry
 * seq of body, at the job's time]} (id 0): 1, or 0 when the push could not
 * be built (it is best effort: the entry is durable and will be fetched);
 * it never fails otherwise. The push points into body. */
int kl_dispatch_sent_push(kl_dispatch_out_t *out, const kl_job_t *job, uint64_t seq,
                          const uint8_t *body, size_t len);

/* ---- requests (dispatch.c) --------------------------------------------- */

/* What a read asks of a log: a group_fetch or channel_fetch (ops from
 * from_index: KL_DISPATCH_READ_OPS), a fetch (entries after `after`, at
 * most limit, 0 meaning KL_FETCH_DEFAULT and more than KL_FETCH_MAX
 * capped: KL_DISPATCH_READ_ENTRIES) or an ack (up to seq:
 * KL_DISPATCH_READ_ACK), with the reply's byte budget. Only the fields the
 * request has are set. -1 for any other request. */
#define KL_DISPATCH_READ_OPS 0
#define KL_DISPATCH_READ_ENTRIES 1
#define KL_DISPATCH_READ_ACK 2
/* Returns the KL_DISPATCH_READ_* kind, or -1 (nothing set); cannot fail. */
int kl_dispatch_read_args(const kl_frame_t *f, uint64_t *from, uint32_t *limit,
                          size_t *max_bytes);
/* The expiry of a 1:1 send asking ttl_s (0: the relay's default; capped
 * at its maximum). */
uint64_t kl_dispatch_send_expiry(const kl_dispatch_cfg_t *cfg, uint32_t ttl_s, uint64_t now_ms);

/* ---- groups and channels (dispatch_oplog.c) ---------------------------- */

/* Who asks about a group or channel: a session of this relay, or a
 * federation peer's user "handle@peer" (or, for channels, the peer relay
 * itself "@peer") as that relay vouches. */
typedef struct kl_dispatch_caller {
    uint64_t user;           /* 0 for a remote caller (the job resolves it) */
    const char *address;     /* handle@relay, or "@peer" */
    const uint8_t *key;      /* identity key (a peer relay's static key), 32 bytes */
    const char *remote;      /* the address again for a remote caller, else NULL */
} kl_dispatch_caller_t;

/* The caller for session s's user (self: its address, KL_ADDR_MAX + 1
 * bytes, which c points to). */
void kl_dispatch_session_caller(const kl_dispatch_cfg_t *cfg, const kl_client_state_t *s,
                                char self[KL_ADDR_MAX + 1], kl_dispatch_caller_t *c);

/* What a signed op says of itself (kl_group_op_peek, kl_channel_op_peek). */
typedef struct kl_dispatch_peek {
    uint64_t index;
    uint8_t actor[32];
    char actor_address[256];
    char target[256];        /* the group or channel it is an op of */
} kl_dispatch_peek_t;

/* What differs between groups and channels in the requests they share
 * (KL_DISPATCH_GROUP in dispatch_group.c, KL_DISPATCH_CHANNEL in
 * dispatch_channel.c). */
typedef struct kl_dispatch_kind {
    int channel;             /* 0 for groups, 1 for channels */
    const char *noun;        /* "group", "channel" */
    char sigil;              /* '#', '!' */
    size_t max_op;           /* KL_GROUP_MAX_OP, KL_CHANNEL_MAX_OP */
    /* 0 when address is one of this kind (a filled, relay part usable). */
    int (*parse)(const char *address, kl_addr_t *a);
    /* Decode and verify a SignedOp as kl_*_op_peek does (its errors). */
    int (*peek)(const uint8_t *op, size_t len, kl_dispatch_peek_t *out);
    kl_job_kind_t op_job;    /* the job of an op */
    kl_job_kind_t read_job[3]; /* the jobs of reads, by KL_DISPATCH_READ_* */
    /* A job of kind for caller c about address, with a copy of data[0..len)
     * in it (NULL when out of memory). */
    kl_job_t *(*new_job)(kl_job_kind_t kind, const kl_dispatch_caller_t *c, const char *address,
                         const uint8_t *data, size_t len);
    /* Set the arguments of an op (from: its index) or read job. */
    void (*set_read)(kl_job_t *job, uint64_t from, uint32_t limit, size_t max_bytes);
} kl_dispatch_kind_t;

extern const kl_dispatch_kind_t KL_DISPATCH_GROUP;
extern const kl_dispatch_kind_t KL_DISPATCH_CHANNEL;

/* Where the group or channel at address lives: 0 on this relay; 1 on the
 * federation peer *peer, asked by a local caller (proxy it); else an error
 * reply in out (malformed: BAD_REQUEST; a remote caller's about another
 * relay: BAD_REQUEST; a local caller's about a relay that is not a peer:
 * UNAVAILABLE "no federation peer for R") and -1. */
int kl_dispatch_home(const kl_dispatch_cfg_t *cfg, const kl_dispatch_kind_t *k,
                     const kl_dispatch_caller_t *c, const char *address, kl_dispatch_out_t *out,
                     uint32_t id, const kl_storage_peer_t **peer);
/* A group_op or channel_op f with signed op b from c: its length, its
 * signature (checked here, statelessly, so that an op that cannot be
 * genuine never reaches the storage thread), its target and its actor (the
 * caller's key and address, else FORBIDDEN) are checked; then out->job is
 * the kind's op job (k->op_job, from = the op's index) for an op of this
 * relay, or a proxy job for a peer's. 0 or KL_ENOMEM. */
int kl_dispatch_op(const kl_dispatch_cfg_t *cfg, const kl_dispatch_kind_t *k,
                   const kl_dispatch_caller_t *c, const kl_frame_t *f,
                   const ProtobufCBinaryData *b, kl_dispatch_out_t *out);
/* If f is a read (kl_dispatch_read_args), its job for c about address in
 * out->job, and 0 or KL_ENOMEM; else 1 and nothing done. */
int kl_dispatch_read_job(const kl_dispatch_kind_t *k, const kl_dispatch_caller_t *c,
                         const char *address, const kl_frame_t *f, kl_dispatch_out_t *out);
/* A request of a federation peer's caller c about a group or channel of
 * this relay: handle (the kind's request function) runs when allowed (else
 * BAD_REQUEST refused) and a send's body is within limits; out is zeroed
 * first and freed again on KL_ENOMEM. */
int kl_dispatch_remote(const kl_dispatch_cfg_t *cfg, const kl_dispatch_caller_t *c,
                       const kl_frame_t *f, uint64_t now_ms, int allowed, const char *refused,
                       int (*handle)(const kl_dispatch_cfg_t *, const kl_dispatch_caller_t *,
                                     const kl_frame_t *, uint64_t, kl_dispatch_out_t *),
                       kl_dispatch_out_t *out);
/* The ops of a group_log or channel_log reply: one (op, oplen) or the
 * bodies of e[0..n), in r->ops (allocated; they point into op or e). The
 * count, or -1 when out of memory. */
long kl_dispatch_log_ops(kl_reply_t *r, const kl_storage_entry_t *e, size_t n,
                         const uint8_t *op, size_t oplen);
/* The group or channel (of kind k) a request names, by the request's
 * body: NULL for a body that names none of that kind. */
const char *kl_dispatch_target(const kl_dispatch_kind_t *k, const kl_frame_t *f);
/* Hand a finished group or channel job's push list o to out when the push
 * frame was built (best effort: a push that cannot be built is lost, the
 * data is durable and will be fetched). address names the group or channel
 * (it must outlive out); for a channel o->notify names peer relays, for a
 * group users on them. */
void kl_dispatch_take_push(kl_dispatch_out_t *out, const kl_dispatch_kind_t *k,
                           const kl_oplog_out_t *o, const char *address, int built);
/* The replies of a group send or channel post stored as seq (sent{seq}, and
 * deliver{address, [the entry]} pushed to o's list), and of a read
 * (deliver{address, o's entries}). They point into the job. */
void kl_dispatch_log_sent(kl_dispatch_out_t *out, const kl_dispatch_kind_t *k, const kl_job_t *job,
                          uint64_t seq, const uint8_t *body, size_t len, const kl_oplog_out_t *o,
                          const char *address);
void kl_dispatch_log_read(kl_dispatch_out_t *out, const kl_dispatch_kind_t *k, uint32_t id,
                          const kl_oplog_out_t *o, const char *address);
/* The error reply of a failed group or channel job (result) that both
 * kinds give alike: no such one (NOT_FOUND), a create of an existing one
 * (CONFLICT), an op that does not continue the log (KL_ESTATE: CONFLICT,
 * with next_index), else a storage failure. */
void kl_dispatch_log_failed(const kl_dispatch_kind_t *k, uint32_t id, int result,
                            const char *address, uint64_t next_index, kl_dispatch_out_t *out);

/* ---- account and keys (dispatch_account.c) ---------------------------- */

/* Requests: register, auth, prekey upload and fetch (f carries that body,
 * s the connection's state). Each returns 0 with out holding a reply or a
 * storage job; a malformed or refused request is an error reply in out
 * (register and auth count failed attempts in s and set out->close at the
 * third). KL_ENOMEM when the job could not be allocated; a prekey fetch
 * for a peer relay's user returns what kl_fed_dispatch returns. */
int kl_dispatch_register(kl_client_state_t *s, const kl_frame_t *f, kl_dispatch_out_t *out);
int kl_dispatch_auth(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s, const kl_frame_t *f,
                     kl_dispatch_out_t *out);
int kl_dispatch_prekey_upload(kl_client_state_t *s, const kl_frame_t *f, kl_dispatch_out_t *out);
int kl_dispatch_prekey_fetch(const kl_dispatch_cfg_t *cfg, const kl_client_state_t *s,
                             const kl_frame_t *f, uint64_t now_ms, kl_dispatch_out_t *out);
/* Completions of their storage jobs: the reply in out (and for register
 * and auth the connection becomes that user in s); they cannot fail. */
void kl_dispatch_complete_register(kl_client_state_t *s, const kl_job_t *job,
                                   kl_dispatch_out_t *out);
void kl_dispatch_complete_auth(kl_client_state_t *s, const kl_job_t *job, kl_dispatch_out_t *out);
void kl_dispatch_complete_prekey_fetch(const kl_job_t *job, kl_dispatch_out_t *out);

#endif
