/* The federation part of a storage job (kl_job_t kind KL_JOB_FED; u.fed
 * points at one of these, allocated apart so that other jobs stay small
 * and freed with the job): which operation, its inputs and its outputs. Some
 * operations never reach the storage thread: the proxied lookup and prekey
 * fetch of a client go to the federation module (fed.c), which completes
 * them when the peer answers or the wait times out. */
#ifndef KOLLEGA_RELAY_FED_JOB_H
#define KOLLEGA_RELAY_FED_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/addr.h"
#include "kollega/x3dh.h"
#include "storage/storage.h"

/* Forwards handled by one deliver job (and so in flight on one link):
 * each deliver job is one commit at the receiver, so this bounds a link's
 * throughput (docs/PERFORMANCE.md "Federation": 64 -> 128 took cross-relay direct from
 * ~14,000 to ~19,000 msg/s; larger gained nothing here). */
#define KL_FED_BATCH 128

typedef enum kl_fed_op {
    /* From a client connection (owner = the connection). */
    KL_FED_OP_SEND = 1,    /* append to the peer's outbox (storage) */
    KL_FED_OP_LOOKUP,      /* proxied lookup (network, fed.c) */
    KL_FED_OP_PREKEY,      /* proxied prekey fetch (network, fed.c) */
    /* Internal to the federation module (owner = a link or NULL). */
    KL_FED_OP_OUT_READ,    /* read a peer's outbox after a seq */
    KL_FED_OP_OUT_ACK,     /* advance a peer's outbox cursor (deletes entries) */
    KL_FED_OP_IN_DELIVER,  /* store forwards from a peer (dedupe + inbox) */
    KL_FED_OP_IN_LOOKUP,   /* answer a peer's lookup */
    KL_FED_OP_IN_PREKEY,   /* answer a peer's prekey fetch */
    KL_FED_OP_STATE,       /* record a link state for `status` */
    /* Groups with members on several relays (fed_group.c). */
    KL_FED_OP_GROUP,       /* client: a group request proxied to the group's relay */
    KL_FED_OP_GROUP_LIST,  /* client: group_list asked of each peer, then local (storage) */
    KL_FED_OP_IN_GROUP,    /* a peer's proxied group request (storage: the inner job) */
    KL_FED_OP_IN_NOTIFY,   /* a peer's GroupNotify: handles -> user ids (storage) */
    /* Broadcast channels across relays (fed_channel.c). */
    KL_FED_OP_CHAN_SUB,    /* client: subscribe at the home relay, then mirror here (storage) */
    KL_FED_OP_MIRROR,      /* one mirror's sync round, step by step (network and storage) */
    KL_FED_OP_MIRROR_LIST, /* the mirrors of a peer's channels (storage) */
} kl_fed_op_t;

/* The steps of a MIRROR job's sync round (fed_channel.c). */
enum {
    KL_MIRROR_READ = 1, /* storage: the mirror row */
    KL_MIRROR_UNSUB,    /* home: unsubscribe (no local subscriber left) */
    KL_MIRROR_DEACT,    /* storage: mark the mirror inactive */
    KL_MIRROR_POSTS,    /* home: fetch posts after the watermark */
    KL_MIRROR_OPS,      /* home: channel_fetch from the mirror's next index */
    KL_MIRROR_STORE,    /* storage: validate and store (jobs_cmirror.c) */
    KL_MIRROR_ACK,      /* home: ack the watermark */
    KL_MIRROR_RESUB,    /* home: subscribe again (it no longer had us) */
};

/* Log pages a client's subscribe to a peer's channel fetches at most
 * before the membership check (a page holds hundreds of ops). */
#define KL_MIRROR_SUB_PAGES 64

/* Outcome of one forward (the ForwardResult statuses). */
enum { KL_FED_STORED = 1, KL_FED_DUPLICATE, KL_FED_REJECTED, KL_FED_RETRY };

typedef struct kl_fed_fwd {
    uint64_t seq;                   /* origin seq */
    char handle[KL_HANDLE_MAX + 1]; /* recipient on this relay */
    uint8_t *body;                  /* malloc'd copy, freed with the job */
    size_t len;
    uint32_t frame_id;              /* id of the forward frame (echoed) */
    int restart;                    /* the forward's restart flag */
    uint64_t expires_ms;
    int has_token;                  /* unidentified: stored only if the token fits */
    uint8_t token[32];
    int status;                     /* out: KL_FED_* */
    uint64_t recipient;             /* out (STORED): user id, for the push */
    uint64_t inbox_seq;             /* out (STORED) */
} kl_fed_fwd_t;

typedef struct kl_fed_job {
    kl_fed_op_t op;
    uint64_t peer;                     /* peer id (storage row) */
    uint64_t outbox;                   /* the peer's outbox log */
    char address[KL_ADDR_MAX + 1];     /* remote address (client ops, echoed) */
    char handle[KL_HANDLE_MAX + 1];    /* local handle (IN_LOOKUP / IN_PREKEY) */
    uint32_t link_req;                 /* request id on the link to answer */
    /* SEND: the packed Forward, in the job's own allocation. out: seq */
    const uint8_t *data;
    size_t len;
    uint64_t expires_ms;
    kl_storage_quota_t quota;
    uint64_t seq;
    /* OUT_READ in: after, limit. out: entries (packed Forwards), more.
     * OUT_ACK in: seq. */
    uint64_t after;
    uint32_t limit;
    kl_storage_entry_t *entries;
    size_t n;
    int more;
    /* IN_DELIVER: origin relay (in address), epoch and forwards. A
     * forward whose status is set before the job runs (REJECTED:
     * malformed; RETRY: over the link's rate or the link is blocked) is
     * not stored but keeps its place in the order. */
    uint64_t epoch;
    kl_fed_fwd_t *fwd;                 /* KL_FED_BATCH of them, IN_DELIVER jobs only */
    size_t n_fwd;
    kl_storage_quota_t inbox_quota;
    uint64_t ttl_max_ms;
    /* IN_PREKEY in: the limits let the requester consume a one-time
     * prekey (opk_limit.h). */
    int take_opk;
    /* LOOKUP / IN_LOOKUP in, SEND: the recipient's delivery token of an
     * unidentified request (relay.proto Send.delivery_token). */
    int has_token;
    uint8_t token[32];
    /* LOOKUP / IN_LOOKUP out. PREKEY / IN_PREKEY out: bundle. */
    int exists;
    uint8_t identity_key[32];
    kl_prekey_bundle_t bundle;
    /* Proxied ops: the peer's refusal (relay ErrorCode, 0 = none). */
    int err_code;
    char err_msg[160];
    /* STATE in */
    char state[16];
    /* PREKEY: the requesting user's address (sent as the fetch's
     * requester). GROUP / GROUP_LIST / IN_GROUP: the requesting user's address and its
     * identity key (in identity_key). GROUP: the packed request Frame in
     * data/len, the group in address; out: the home relay's answer. */
    char user[KL_ADDR_MAX + 1];
    int req_body;                      /* GROUP: the request's Frame body case */
    struct ProtobufCMessage *reply;    /* a relay Frame (unpacked), freed with the job */
    /* GROUP_LIST: peers asked so far (index into the peer table), then
     * listed = 1 and the job runs the local list on storage; infos are the
     * groups found (remote ones first), malloc'd. user_id: the local user. */
    size_t list_at;
    int listed;
    uint64_t user_id;
    kl_storage_ginfo_t *infos;
    size_t n_infos;
    /* IN_GROUP: the group job run on behalf of the peer's user. */
    struct kl_job *inner;
    /* IN_NOTIFY in: the group (address), ops flag, NUL-separated handles
     * (malloc'd) of n_names users; out: their ids (0: no such user). */
    int ops;
    char *names;
    size_t n_names;
    uint64_t *ids;
    /* CHAN_SUB: address (channel), user_id, limit (backlog); listed = 1
     * once the home relay said Ok. MIRROR: address, step, the home
     * relay's answers (reply: the posts' deliver, reply2: the ops'
     * channel_log), the mirror row (m_*), refused posts (m_refused) and
     * the first reason (err_msg), local
     * subscribers to push to (ids, n_names). MIRROR_LIST: names, n_names. */
    int step;
    struct ProtobufCMessage *reply2;
    uint64_t m_home_seq, m_next_index, m_subs, m_acked;
    int m_active, m_exists, m_more, m_full, m_resub;
    int m_partial;                     /* STORE: the mirror's log is behind the home's */
    int m_pages;                       /* CHAN_SUB: log pages fetched */
    int m_stalled;                     /* STORE: the home relay served an op we refuse */
    int m_progress;                    /* STORE: the watermark or the log moved */
    size_t m_refused;                  /* STORE: posts refused this round */
    uint64_t deadline_ms;              /* proxied ops: uv_now deadline */
    struct kl_job *wait_next;          /* fed.c's list of waiting proxied ops */
} kl_fed_job_t;

/* jobs_cmirror.c (storage thread): a CHAN_SUB's local half, a MIRROR's
 * READ, DEACTIVATE and STORE steps. 0 or a storage error. */
int kl_job_mirror_sub(kl_storage_t *st, kl_fed_job_t *fj, uint64_t now_ms);
int kl_job_mirror_read(kl_storage_t *st, kl_fed_job_t *fj);
int kl_job_mirror_deactivate(kl_storage_t *st, kl_fed_job_t *fj);
int kl_job_mirror_store(kl_storage_t *st, kl_fed_job_t *fj, uint64_t now_ms);

#endif
