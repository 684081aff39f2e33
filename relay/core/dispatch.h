/* Frame handling, separate from sockets so it can be unit-tested and fuzzed
 * in-process. Given a connection's session and one decoded Frame,
 * kl_dispatch_frame produces an immediate reply, or a storage job whose
 * completion (kl_dispatch_complete) produces the reply later, plus whether
 * the connection must be closed after the reply is written.
 *
 * Rules (docs/DESIGN.md "Relay protocol"):
 *   - before authentication only ping, register, auth, and unidentified
 *     delivery: a send or lookup that carries a delivery token, to a user
 *     (never a group or channel: BAD_REQUEST + close). For a user of this
 *     relay the storage job checks the token against that user's token
 *     hash (a wrong token or an unknown user: FORBIDDEN + close); for a
 *     user of a federated relay the lookup is proxied with the token and
 *     that relay checks it, and a send is taken only after such a lookup
 *     confirmed the same token on this connection (else FORBIDDEN + close),
 *     its forward carrying the token for the peer to check again. Anything
 *     else is error{UNAUTHENTICATED} + close;
 *   - delivery_token (authenticated): set or clear the caller's token hash;
 *   - a body the relay never receives (ok, error, pong, sent, deliver,
 *     lookup_result, prekey_bundle, prekey_count) or request id 0 is
 *     error{BAD_REQUEST} + close;
 *   - register/auth on an authenticated session: error{BAD_REQUEST} + close;
 *   - a failed auth, or a register whose signature does not verify:
 *     error{UNAUTHENTICATED} + close; bad/used invite or taken handle:
 *     error{INVITE_INVALID} / error{CONFLICT}, the session stays open but the
 *     third failed register/auth attempt closes it;
 *   - over the token-bucket rate: error{RATE_LIMITED}, the request is dropped;
 *   - invalid arguments (lengths, addresses, sizes): an error reply, the
 *     connection stays open;
 *   - the database failing (commit error): error{UNAVAILABLE}, stays open. */
#ifndef KOLLEGA_RELAY_DISPATCH_H
#define KOLLEGA_RELAY_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "jobs/jobs.h"
#include "kollega/addr.h"
#include "kollega/wire.h"
#include "relay.pb-c.h"
#include "storage/storage.h"

/* Failed register/auth attempts after which a session is closed. */
#define KL_DISPATCH_MAX_ATTEMPTS 3
/* Fetch limits: 0 means the default, larger values are capped. */
#define KL_FETCH_DEFAULT 100
#define KL_FETCH_MAX 500
/* One-time prekeys accepted in one upload. */
#define KL_UPLOAD_MAX_OPKS 200
/* Largest body a relay may be configured to accept: one entry must always
 * fit in a deliver frame within KL_WIRE_MAX_FRAME. */
#define KL_MAX_BODY_LIMIT 65000
/* Byte budget of the entries in one deliver reply (see storage.h). */
#define KL_DELIVER_BUDGET (KL_WIRE_MAX_FRAME - 64)

/* What request handling needs to know of federation, given by the layer
 * above (fed/ fills it; core/ never calls into fed/): the configured peer
 * relay named relay, or NULL; and how many peers are configured. A zeroed
 * directory means no federation. Both run on the loop thread. */
typedef struct kl_peer_directory {
    const kl_storage_peer_t *(*find)(const void *ctx, const char *relay);
    size_t (*count)(const void *ctx);
    const void *ctx;
} kl_peer_directory_t;

typedef struct kl_dispatch_cfg {
    const char *relay_name;
    size_t max_body;          /* send.body limit, <= KL_MAX_BODY_LIMIT */
    uint32_t ttl_default_s;   /* send.ttl_s 0 means this */
    uint32_t ttl_max_s;       /* larger ttl_s are capped to this */
    kl_storage_quota_t quota; /* per inbox */
    uint32_t rate;            /* frames per second per connection */
    uint32_t burst;           /* bucket size */
    kl_peer_directory_t peers; /* federation peers; zeroed: none */
    uint32_t group_max_ops;   /* ops one group's log may hold (0: KL_GROUP_MAX_OPS_DEFAULT) */
    uint32_t groups_per_user; /* groups one identity may create (0: KL_GROUPS_PER_USER_DEFAULT) */
    /* One-time prekey limits (opk_limit.h), state on the loop; NULL: a
     * fetch always consumes one (unit tests of other rules). */
    struct kl_opk_limit *opk_limit;
    /* Unidentified sends per recipient (buckets.h; a token is taken only
     * when a send with a valid delivery token was stored); NULL: none. */
    struct kl_buckets *ud_limit;
} kl_dispatch_cfg_t;


/* Remote recipients an unauthenticated connection may write to after their
 * relay confirmed its token (kl_client_state_t.ud_ok). */
#define KL_UD_CONFIRMED 4

/* The protocol state of one connection. The server zeroes it, calls
 * kl_client_state_init and copies the Noise handshake hash into hh. */
typedef struct kl_client_state {
    uint8_t hh[64];
    int authed;
    int auth_pending;       /* a register/auth job is in flight */
    int failed_attempts;
    uint64_t user_id;
    uint64_t inbox;
    char handle[KL_HANDLE_MAX + 1];
    uint8_t identity_key[32];
    /* Unidentified delivery to users of other relays: the recipients whose
     * relay confirmed the token on this connection (a proxied lookup with
     * it), as SHA-256(address || token), the newest in ud_ok[ud_n % N]. */
    uint8_t ud_ok[KL_UD_CONFIRMED][32];
    uint32_t ud_n;
    uint64_t tokens_milli;  /* token bucket, in thousandths of a frame */
    uint64_t refill_ms;     /* time of the last refill */
} kl_client_state_t;

/* A reply Frame with room for every sub-message it may point to, so that
 * building one allocates nothing except the entry arrays of a deliver. */
typedef struct kl_reply {
    kl_frame_t frame;
    union {
        Kollega__Relay__V1__Ok ok;
        Kollega__Relay__V1__Error error;
        Kollega__Relay__V1__Pong pong;
        Kollega__Relay__V1__LookupResult lookup_result;
        Kollega__Relay__V1__Sent sent;
        Kollega__Relay__V1__Deliver deliver;
        Kollega__Relay__V1__PrekeyCount prekey_count;
        Kollega__Relay__V1__PrekeyBundle prekey_bundle;
        Kollega__Relay__V1__GroupOpAccepted group_op_accepted;
        Kollega__Relay__V1__GroupLog group_log;
        Kollega__Relay__V1__GroupListResult group_list_result;
        Kollega__Relay__V1__ChannelOpAccepted channel_op_accepted;
        Kollega__Relay__V1__ChannelLog channel_log;
        Kollega__Relay__V1__ChannelListResult channel_list_result;
    } body;
    Kollega__Relay__V1__SignedPrekey spk;
    Kollega__Relay__V1__OneTimePrekey opk;
    Kollega__Relay__V1__Entry *entries;      /* malloc'd for deliver */
    Kollega__Relay__V1__Entry **entry_ptrs;  /* malloc'd for deliver */
    char msg[160];                           /* error text */
    ProtobufCBinaryData *ops;                /* malloc'd for group_log */
    Kollega__Relay__V1__GroupInfo *infos;    /* malloc'd for group_list_result */
    Kollega__Relay__V1__GroupInfo **info_ptrs;
    Kollega__Relay__V1__ChannelInfo *cinfos;  /* malloc'd for channel_list_result */
    Kollega__Relay__V1__ChannelInfo **cinfo_ptrs;
} kl_reply_t;

typedef struct kl_dispatch_out {
    int has_reply;
    kl_reply_t reply;       /* valid when has_reply; may point into the job */
    kl_job_t *job;          /* a job to submit (kl_dispatch_frame) */
    int close;              /* close the connection after writing the reply */
    int has_push;           /* kl_dispatch_complete of a send: push to push_user */
    uint64_t push_user;
    kl_reply_t push;        /* deliver{entries: [the new entry]}, id 0 */
    /* Group pushes (a group message or an applied op): push to every live
     * connection of these users except the requesting one. push_users is
     * malloc'd (freed by kl_dispatch_out_free); push_group names the group
     * (points into the job) for the backpressure announcement. */
    uint64_t *push_users;
    size_t n_push_users;
    const char *push_group;
    /* Users of federation peers among the pushed (NUL-separated addresses,
     * point into the job): the server sends each peer one GroupNotify. */
    const char *notify;
    size_t n_notify;
    /* Channels: notify names peer relays (each gets one ChannelNotify for
     * push_group). */
    int notify_channel;
    const char *event;      /* static text for the connection log, or NULL */
} kl_dispatch_out_t;

/* Zero s and fill its frame-rate bucket (cfg->burst frames) as of now_ms. */
void kl_client_state_init(kl_client_state_t *s, const kl_dispatch_cfg_t *cfg, uint64_t now_ms);

/* Handle one decoded frame from the peer at now_ms (wall clock, ms).
 * Fills *out (zeroed first). On KL_ENOMEM nothing was done and the caller
 * closes the connection. The frame may be freed as soon as this returns. */
int kl_dispatch_frame(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s, const kl_frame_t *f,
                      uint64_t now_ms, kl_dispatch_out_t *out);

/* Turn a finished job of this session into a reply (and for a send, a
 * push). The reply and push may point into job: seal them before freeing
 * the job. */
void kl_dispatch_complete(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s, const kl_job_t *job,
                          kl_dispatch_out_t *out);

/* Check a finished auth job's signature against the user it found and
 * hh, the session's handshake hash, and record the outcome in
 * job->u.auth.verified, so kl_dispatch_complete does not verify again.
 * Touches nothing but the job: the server runs it on its thread pool,
 * since an Ed25519 verification is a large part of what a connect costs
 * the loop. Without it, kl_dispatch_complete verifies itself. */
void kl_dispatch_auth_verify(const uint8_t hh[64], kl_job_t *job);

/* An error reply for request id (for the server's own refusals). */
void kl_dispatch_error(kl_reply_t *r, uint32_t id, int code, const char *message);
/* lookup_result{address, exists, key} and prekey_bundle (address, b)
 * replies for request id, as a local user's are answered (also inside a
 * federation answer). They point into the arguments and r. */
void kl_dispatch_reply_lookup(kl_reply_t *r, uint32_t id, const char *address, int exists,
                              const uint8_t key[32]);
void kl_dispatch_reply_bundle(kl_reply_t *r, uint32_t id, const char *address,
                              const kl_prekey_bundle_t *b);

/* Release what a reply allocated (not the job). */
void kl_dispatch_out_free(kl_dispatch_out_t *out);

/* ERFA groups (dispatch_group.c), called by kl_dispatch_frame and
 * kl_dispatch_complete. Each returns 0 or KL_ENOMEM as they do. */
int kl_dispatch_group_request(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s,
                              const kl_frame_t *f, uint64_t now_ms, kl_dispatch_out_t *out);
void kl_dispatch_group_complete(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s,
                                const kl_job_t *job, kl_dispatch_out_t *out);
/* A group request of a federation peer's user (address user, identity key
 * key, as that relay vouches), under the rules of a local user: fills *out
 * (zeroed first) with an error reply or a job, as kl_dispatch_frame. */
int kl_dispatch_group_remote(const kl_dispatch_cfg_t *cfg, const char *user,
                             const uint8_t key[32], const kl_frame_t *f, kl_dispatch_out_t *out);
/* The reply to a KL_FED_OP_GROUP or KL_FED_OP_GROUP_LIST job. */
void kl_dispatch_group_fed_complete(const kl_job_t *job, kl_dispatch_out_t *out);
/* 1 if a group relay may answer a proxied request (Frame body case
 * request_body) with body case answer_body. */
int kl_dispatch_group_answer_ok(int request_body, int answer_body);
/* A request f of user (address, identity key) about target (a group or
 * channel of federation peer id peer) as a KL_FED_OP_GROUP job for that
 * relay: out->job, or TOO_LARGE in out; 0 or KL_ENOMEM. */
int kl_dispatch_proxy_job(const char *user, const uint8_t key[32], uint64_t peer,
                          const char *target, const kl_frame_t *f, kl_dispatch_out_t *out);
/* The announcement that tells a client to fetch group or channel address
 * ("#name@relay" or "!name@relay") again: with ops, group_log or
 * channel_log{address, more: true} without ops; else deliver{group or
 * channel: address, more: true}. In r, id 0; it points at address. */
void kl_dispatch_announce(kl_reply_t *r, const char *address, int ops);
/* Broadcast channels (dispatch_channel.c), likewise: a channel request
 * (kl_dispatch_is_channel) as kl_dispatch_frame, 0 or KL_ENOMEM; the
 * completion of a channel job as kl_dispatch_complete. */
int kl_dispatch_channel_request(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s,
                                const kl_frame_t *f, uint64_t now_ms, kl_dispatch_out_t *out);
void kl_dispatch_channel_complete(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s,
                                  const kl_job_t *job, kl_dispatch_out_t *out);
/* A channel request of a federation peer (proto/federation.proto
 * "ChannelNotify"): user is "handle@peer" for one of its users, or "@peer"
 * for the peer relay itself (key: its static key), as that relay vouches.
 * Fills *out (zeroed first) with an error reply or a job. */
int kl_dispatch_channel_remote(const kl_dispatch_cfg_t *cfg, const char *user,
                               const uint8_t key[32], const kl_frame_t *f, uint64_t now_ms,
                               kl_dispatch_out_t *out);
/* 1 if f is a channel request (channel body, or send/fetch/ack naming a
 * channel). */
int kl_dispatch_is_channel(const kl_frame_t *f);
/* 1 if the body is one the relay accepts from clients at all. */
int kl_dispatch_is_request(int body_case);

/* Pieces of a request shared by dispatch.c and dispatch_unidentified.c. */
/* Parse an address that must name a user of this relay. Returns 0 with
 * a->handle set, 1 for a user of another relay (fed_dispatch.c handles
 * it), or fills an error reply and returns -1. */
int kl_dispatch_local_user(const kl_dispatch_cfg_t *cfg, const char *address, kl_addr_t *a,
                           kl_dispatch_out_t *out, uint32_t id);
/* A send body within limits: 1, or 0 with the error in out. */
int kl_dispatch_body_ok(const kl_dispatch_cfg_t *cfg, const kl_frame_t *f,
                        kl_dispatch_out_t *out);
/* The storage job of send f to local user a (out->job); 0 or KL_ENOMEM. */
int kl_dispatch_send_job(const kl_dispatch_cfg_t *cfg, const kl_frame_t *f, const kl_addr_t *a,
                         uint64_t now_ms, kl_dispatch_out_t *out);
/* The storage job of lookup f of local user a (out->job); 0 or KL_ENOMEM. */
int kl_dispatch_lookup_job(const kl_frame_t *f, const kl_addr_t *a, kl_dispatch_out_t *out);

/* Unidentified delivery (dispatch_unidentified.c). A send or lookup with a
 * delivery token on a session that is not authenticated: fills out with an
 * error reply, a storage job (local recipient, token checked by the job)
 * or a federation job, as kl_dispatch_frame. */
int kl_dispatch_unidentified(const kl_dispatch_cfg_t *cfg, const kl_client_state_t *s,
                             const kl_frame_t *f, uint64_t now_ms, kl_dispatch_out_t *out);
/* delivery_token of an authenticated session: the job setting (or, empty,
 * clearing) its token hash in out->job, or a BAD_REQUEST reply when the
 * hash is neither empty nor 32 bytes. 0, or KL_ENOMEM (nothing done). */
int kl_dispatch_delivery_token(const kl_client_state_t *s, const kl_frame_t *f,
                               kl_dispatch_out_t *out);
/* The reply to a send or lookup whose token did not fit (or named no
 * user): FORBIDDEN, and the connection closes so tokens cannot be guessed
 * on it. */
void kl_dispatch_token_refused(const kl_job_t *job, kl_dispatch_out_t *out);
/* A token-carrying job came back: a stored send is charged to the
 * recipient's allowance; a proxied lookup its relay answered confirms the
 * token for session s (may be NULL for a local send). */
void kl_dispatch_unidentified_done(const kl_dispatch_cfg_t *cfg, kl_client_state_t *s,
                                   const kl_job_t *job);

/* fed_dispatch.c: a lookup, prekey_fetch or send for address a of another
 * relay (a job for the peer, or UNAVAILABLE "no federation peer for R"),
 * and the reply to such a job. 0, or KL_ENOMEM when the job could not be
 * made. */
int kl_fed_dispatch(const kl_dispatch_cfg_t *cfg, const kl_frame_t *f, const kl_addr_t *a,
                    uint64_t now_ms, kl_dispatch_out_t *out);
void kl_fed_dispatch_complete(const kl_job_t *job, kl_dispatch_out_t *out);

/* The configured peer relay named relay, or NULL (none, or no federation). */
const kl_storage_peer_t *kl_dispatch_peer(const kl_dispatch_cfg_t *cfg, const char *relay);
/* How many peers are configured (0 without federation). */
size_t kl_dispatch_peer_count(const kl_dispatch_cfg_t *cfg);

#endif
