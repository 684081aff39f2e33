/* Storage jobs: one struct per request that needs the database. The loop
 * (dispatch) fills the inputs, the storage thread runs kl_job_run inside a
 * group-commit batch and fills the outputs, the loop turns the result into a
 * reply (kl_dispatch_complete). A job never touches sockets or loop state,
 * so it can be moved between threads freely. */
#ifndef KOLLEGA_RELAY_JOBS_H
#define KOLLEGA_RELAY_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/addr.h"
#include "kollega/x3dh.h"
#include "chan_job.h"
#include "fed_job.h"
#include "oplog_job.h"
#include "storage/storage.h"
#include "storage/storage_fed.h"

typedef enum kl_job_kind {
    KL_JOB_REGISTER = 1,
    KL_JOB_AUTH,
    KL_JOB_LOOKUP,
    KL_JOB_PREKEY_UPLOAD,
    KL_JOB_PREKEY_FETCH,
    KL_JOB_PREKEY_STATUS,
    KL_JOB_SEND,
    KL_JOB_FETCH,
    KL_JOB_ACK,
    KL_JOB_EXPIRE,
    KL_JOB_TOKEN_SET,    /* delivery_token: store the caller's token hash */
    KL_JOB_USER_REMOVE,  /* the operator removes a user (server_ctl.c) */
    KL_JOB_MAX_BYTES,    /* a new database cap (a config reload) */
    KL_JOB_PEER_LIST,    /* the federation peers (a config reload) */
    KL_JOB_STATS,        /* metrics: counts of users, entries, outboxes (reads only) */
    /* Federation (fed_jobs.c): u.fed->op says what. */
    KL_JOB_FED = 64,
    /* ERFA groups (jobs_group.c) */
    KL_JOB_GROUP_OP,     /* group_op: validate against the stored log, store */
    KL_JOB_GROUP_FETCH,  /* group_fetch: ops from an index */
    KL_JOB_GROUP_LIST,   /* group_list */
    KL_JOB_GROUP_SEND,   /* send to "#name@relay" */
    KL_JOB_GROUP_READ,   /* fetch with group: entries of the group's log */
    KL_JOB_GROUP_ACK,    /* ack with group */
    /* Broadcast channels (jobs_channel.c) */
    KL_JOB_CHAN_OP = 96, /* channel_op: validate against the stored log, store */
    KL_JOB_CHAN_FETCH,   /* channel_fetch: ops from an index */
    KL_JOB_CHAN_SUB,     /* subscribe */
    KL_JOB_CHAN_UNSUB,   /* unsubscribe */
    KL_JOB_CHAN_LIST,    /* channel_list */
    KL_JOB_CHAN_POST,    /* send to "!name@relay": verify the post, store it once */
    KL_JOB_CHAN_READ,    /* fetch with channel */
    KL_JOB_CHAN_ACK,     /* ack with channel */
} kl_job_kind_t;

/* ERFA group bounds (jobs_group.c): past them a group op is refused with
 * KL_ELIMIT (QUOTA_EXCEEDED). kl_dispatch_cfg_t may set others. */
#define KL_GROUP_MAX_OPS_DEFAULT 4096
#define KL_GROUPS_PER_USER_DEFAULT 64

/* 1 for the kinds whose reply may be a full frame (~64 KiB): inbox and
 * group fetches, which the connection counts against its write queue. */
#define KL_JOB_IS_FETCH(k) \
    ((k) == KL_JOB_FETCH || (k) == KL_JOB_GROUP_READ || (k) == KL_JOB_GROUP_FETCH || \
     (k) == KL_JOB_CHAN_READ || (k) == KL_JOB_CHAN_FETCH)
/* 1 for the KL_JOB_GROUP_* kinds. */
#define KL_JOB_IS_GROUP(k) ((k) >= KL_JOB_GROUP_OP && (k) <= KL_JOB_GROUP_ACK)
/* 1 for the KL_JOB_CHAN_* kinds. */
#define KL_JOB_IS_CHAN(k) ((k) >= KL_JOB_CHAN_OP && (k) <= KL_JOB_CHAN_ACK)

typedef struct kl_job {
    struct kl_job *next;    /* queue link, owned by whoever holds the job */
    kl_job_kind_t kind;
    void *owner;            /* the server's connection, NULL for internal jobs */
    uint32_t req_id;        /* request id to echo */
    uint64_t now_ms;        /* wall-clock time the request arrived */
    int result;             /* set by kl_job_run: 0 or a kl_err from storage.h */
    union {
        struct { /* in: handle, identity key, code. out: user */
            char handle[KL_HANDLE_MAX + 1];
            uint8_t identity_key[32];
            char code[KL_CODE_MAX + 1];
            kl_storage_user_t user;
        } reg;
        struct { /* in: handle, signature (checked on completion). out: user */
            char handle[KL_HANDLE_MAX + 1];
            uint8_t signature[64];
            kl_storage_user_t user;
            int verified; /* 0: not checked yet; 1 / -1: the signature was checked
                           * off the loop (kl_dispatch_auth_verify) and did / did not
                           * verify */
        } auth;
        struct { /* in: address (echoed), handle, [token]. out: exists, identity key */
            char address[KL_ADDR_MAX + 1];
            char handle[KL_HANDLE_MAX + 1];
            int has_token;           /* unidentified: answered only if token fits */
            uint8_t token[32];
            int exists;
            uint8_t identity_key[32];
        } lookup;
        struct { /* in only */
            uint64_t user;
            int has_spk;
            uint32_t spk_id;
            uint8_t spk[32];
            uint8_t spk_sig[64];
            kl_storage_opk_t *opks; /* malloc'd, freed with the job */
            size_t n_opks;
        } upload;
        struct { /* in: address (echoed), handle, take_opk. out: bundle */
            char address[KL_ADDR_MAX + 1];
            char handle[KL_HANDLE_MAX + 1];
            int take_opk;  /* the limits let the requester consume a one-time prekey */
            kl_prekey_bundle_t bundle;
        } pfetch;
        struct { /* in: user. out: count and ran-out record */
            uint64_t user;
            kl_storage_prekey_status_t status;
        } pstatus;
        struct { /* in: recipient handle, body, expiry, quota. out: seq, recipient id */
            char handle[KL_HANDLE_MAX + 1];
            const uint8_t *body; /* points into the job's own allocation */
            size_t len;
            uint64_t expires_ms;
            kl_storage_quota_t quota;
            uint64_t seq;
            uint64_t recipient;
            int has_token;       /* unidentified: stored only if the token fits */
            uint8_t token[32];   /* (else the job fails with KL_ECRYPTO) */
        } send;
        struct { /* in only: the caller, its token hash (has = 0 clears it) */
            uint64_t user;
            int has;
            uint8_t hash[32];
        } token_set;
        struct { /* in: log, after, limit, byte budget. out: entries, more */
            uint64_t log;
            uint64_t after;
            uint32_t limit;
            size_t max_bytes;
            kl_storage_entry_t *entries;
            size_t n;
            int more;
        } fetch;
        struct { /* in only */
            uint64_t log;
            uint64_t reader;
            uint64_t seq;
        } ack;
        struct { /* in: handle, the control client asking. out: the removed user */
            char handle[KL_HANDLE_MAX + 1];
            void *ctl;
            uint64_t user;
        } remove;
        struct { /* in: max. out: deleted, more */
            uint32_t max;
            uint64_t deleted;
            int more;
        } expire;
        struct { /* in: max. out: effective (kl_storage_set_max_bytes) */
            uint64_t max;
            uint64_t effective;
        } max_bytes;
        struct { /* out: every peer (kl_storage_fed_peer_list), freed with the job */
            struct kl_storage_peer *list;
            size_t n;
        } peers;
        struct { /* every group job: see jobs_group.c for which fields each uses */
            /* in */
            char address[KL_ADDR_MAX + 1]; /* the group */
            uint64_t user;                 /* the caller */
            const char *relay_name;        /* this relay (outlives the job) */
            const char *remote;            /* caller on another relay (its address), or NULL:
                                            * user is resolved from it and remote_key */
            const uint8_t *remote_key;
            const uint8_t *data;           /* op or message body, in the job's allocation */
            size_t len;
            uint64_t from;                 /* fetch: from_index; read: after; ack: seq */
            uint32_t limit;
            size_t max_bytes;
            uint32_t ttl_s;                /* send: asked ttl (0 = the group's) */
            uint32_t ttl_default_s, ttl_max_s;
            kl_storage_quota_t quota;
            uint64_t group_index;          /* send: the sender's next_index (relay.proto) */
            uint32_t max_ops;              /* op: ops the group's log may hold */
            uint32_t max_created;          /* op (create): groups one identity may create */
            /* out */
            int verr;                      /* op: kl_group_verr_t of a refusal */
            int admitted;                  /* op: candidates this op admitted */
            int state;                     /* the caller's KL_GSTATE_* */
            kl_storage_group_t group;      /* the row after the job */
            uint64_t seq;                  /* send: the entry's seq */
            kl_oplog_out_t out;            /* entries, and whom to push to (op, send) */
            kl_storage_ginfo_t *infos;     /* list */
            size_t n_infos;
        } group;
        struct { /* out only: storage counts, every peer with its outbox depth */
            kl_storage_stats_t stats;
            kl_storage_peer_t *peers; /* malloc'd, freed with the job */
            size_t n_peers;
        } stats;
        struct kl_fed_job *fed; /* KL_JOB_FED: fed_job.h, freed with the job */
        kl_chan_job_t chan;     /* KL_JOB_CHAN_*: chan_job.h */
    } u;
} kl_job_t;

/* A zeroed job of kind with room for extra bytes after it (a send body);
 * NULL on allocation failure. *extra (if not NULL) points at that room. */
kl_job_t *kl_job_new(kl_job_kind_t kind, size_t extra_len, uint8_t **extra);
/* 0 when the job needs no savepoint of its own in a batch: it writes at
 * most one statement (atomic by itself), so when it fails nothing of it is
 * left to undo. A 1:1 send is such a job: a cached (or read) route and one
 * insert. 1 for every other kind. */
int kl_job_needs_savepoint(const kl_job_t *job);
/* Run the job against st and store the outcome in job->result (and the
 * kind's outputs). Called on the storage thread, inside a batch. */
void kl_job_run(kl_job_t *job, kl_storage_t *st);
/* The batch this job ran in did not commit: drop the outputs and set
 * result to err, so nothing uncommitted is ever reported. */
void kl_job_fail(kl_job_t *job, int err);
/* The group kinds (jobs_group.c): run (the storage thread, from kl_job_run,
 * which stores the return in job->result and drops the outputs when it is
 * nonzero): 0, a refusal (KL_EREFUSED, KL_ENOTFOUND, KL_ESTATE ... as
 * jobs_group.c's results say) or a storage error; KL_EINVAL for a kind
 * that is not a group kind. And drop their outputs. */
int kl_job_run_group(kl_job_t *job, kl_storage_t *st);
void kl_job_drop_group(kl_job_t *job);
/* The channel kinds (jobs_channel.c): run and drop outputs, likewise
 * (kl_job_run_group): 0, a refusal as jobs_channel.c's results say, or a
 * storage error. */
int kl_job_run_channel(kl_job_t *job, kl_storage_t *st);
void kl_job_drop_channel(kl_job_t *job);
struct kl_channel;
/* The validated state of stored channel c (the cache's, or a replay of its
 * ops then cached, as kl_oplog_state): owned by the cache on the storage
 * thread, the caller must not free it. *out NULL only on error: KL_EIO for
 * a log longer than storage takes or that no longer validates, else a
 * storage error (KL_ENOMEM ...). */
int kl_job_channel_state(kl_storage_t *st, const char *address, const kl_storage_channel_t *c,
                         struct kl_channel **out);
/* Validate op (index `index`) against stored channel c at address (found
 * 0: no row yet) and store it, with what it changes (a removed member's
 * subscription), as a channel_op does: 0 with *c the row after it;
 * KL_ENOTFOUND / KL_EEXIST / KL_ESTATE / KL_ELIMIT as kl_oplog_op_state;
 * a refusal by the rules as jobs_channel.c's results, with *verr the
 * kl_channel_verr_t (nonzero only then); or a storage error. */
int kl_job_channel_op(kl_storage_t *st, const char *address, int found,
                      kl_storage_channel_t *c, uint64_t index, const uint8_t *op, size_t len,
                      int *verr);
/* After an op that removed key (address as the state had it) from the
 * members of members-only channel c: drop the subscription and cursor of
 * the local user with that handle and key, if any (a member of another
 * relay is dropped by that relay's mirror). Storage errors only. */
int kl_job_channel_drop_member(kl_storage_t *st, const kl_storage_channel_t *c,
                               const uint8_t key[32], const char *address);
/* Wipe (the job may hold an invite code) and free; NULL is fine. */
void kl_job_free(kl_job_t *job);

/* fed_jobs.c: a KL_JOB_FED job with its u.fed part (zeroed, op set) and
 * extra bytes of room (*extra), or NULL. */
kl_job_t *kl_fed_job_new(kl_fed_op_t op, size_t extra_len, uint8_t **extra);
/* jobs.c hooks: run on the storage thread (0, a storage error, KL_ECRYPTO
 * for an inbound lookup whose delivery token does not fit, KL_EINVAL for
 * an unknown op; kl_job_run stores it in job->result), drop outputs, free
 * u.fed. */
int kl_fed_job_run(kl_job_t *job, kl_storage_t *st);
void kl_fed_job_drop(kl_job_t *job);
void kl_fed_job_free_part(kl_job_t *job);

#endif
