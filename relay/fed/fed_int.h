/* Internals shared by fed.c (peers, outbox pump, proxied ops, inbound
 * requests) and fed_link.c (one link's socket, Noise KK handshake and
 * framing). Not for other modules. */
#ifndef KOLLEGA_RELAY_FED_INT_H
#define KOLLEGA_RELAY_FED_INT_H

#include <uv.h>

#include "fed.h"
#include "fed_peer.h"
#include "federation.pb-c.h"
#include "kollega/noise.h"
#include "kollega/stream.h"

/* Deadline for TCP connect + handshake. */
#define FED_HS_TIMEOUT_MS 10000
/* Bytes queued on a link before the pump waits. */
#define FED_WQ_CAP (4u << 20)
/* Unidentified inbound connections at once (each costs at most one
 * handshake try, 2 DH, to identify: fed_ident.c). */
#define FED_MAX_PENDING_IN 16
/* First wait before resuming after a RETRY answer. */
#define FED_RESUME_MIN_MS 500
/* Inbound frames per second per link: burst is twice the rate. */
#define FED_RATE_DEFAULT 2000

typedef struct fed_link fed_link_t;

struct fed_link {
    uv_tcp_t tcp;
    uv_timer_t timer;            /* connect + handshake deadline */
    uv_connect_t creq;
    kl_fed_t *fed;
    fed_peer_t *peer;            /* NULL until an inbound handshake names it */
    fed_link_t *next;            /* fed->links */
    int outgoing;
    int open_handles;
    int closing;
    int ready;                   /* handshake done */
    uint32_t jobs;               /* storage jobs owned by this link */
    char where[64];              /* peer address for the log */
    kl_stream_t st;              /* framing, Noise_KK, deadline (clock: uv_now) */
    size_t wq_bytes;
    /* inbound side */
    uint64_t tokens_milli, refill_ms;
    int blocked;                 /* answered RETRY: refuse until a restart forward */
    kl_job_t *filling;           /* forwards waiting for the next deliver job */
    int delivering;              /* a deliver job is in flight */
};

typedef struct fed_wait {
    kl_job_t *head, *tail;
} fed_wait_t;

struct fed_peer {
    kl_storage_peer_t cfg;
    kl_fed_t *fed;
    size_t index;                /* in fed->peers and fed->hint_keys */
    int removed;                 /* no longer configured (kl_fed_set_peers): never dialled */
    fed_link_t *out;             /* outgoing link (connecting or up) */
    fed_link_t *in;              /* newest identified inbound link */
    uv_timer_t timer;            /* redial, and resume after RETRY */
    uv_getaddrinfo_t gai;
    int resolving;
    uint32_t backoff_ms;
    uint32_t retry_ms;           /* resume-after-RETRY backoff */
    const char *state;           /* last recorded: "connecting", "up", "down" */
    /* outbox pump (outgoing link) */
    uint64_t sent_upto;          /* highest seq sent on this link */
    uint32_t in_flight;          /* forwards without an answer */
    int reading;                 /* an OUT_READ job is in flight */
    int kicked;                  /* new entries committed while reading */
    int paused;                  /* waiting out a RETRY */
    int restart_next;            /* the next forward carries restart */
    uint32_t min_answer_id;      /* answers to older frame ids are stale */
    int acking;                  /* an OUT_ACK job is in flight */
    uint64_t ack_want, ack_done;
    uint32_t next_id;
    fed_wait_t waiting;          /* proxied ops (sent or not) */
    int mirror_resync;           /* channel notices were dropped: sync all (fed_channel.c) */
    uint64_t mirror_resync_at;
};

struct kl_fed {
    kl_fed_cfg_t cfg;
    uv_tcp_t listener;
    int listening;
    uv_timer_t sweep;            /* proxied-op deadlines */
    int started;                 /* kl_fed_start ran: storage jobs may be submitted */
    int stopping;
    fed_peer_t **peers;          /* the configured peers */
    size_t n_peers;
    /* Peers removed while running (kl_fed_set_peers). Kept until the
     * module is freed: storage jobs, links closing and channel mirrors may
     * still point at them, and find them "down" instead of freed. */
    fed_peer_t **retired;
    size_t n_retired;
    fed_link_t *links;
    uint32_t pending_in;
    uint8_t *hint_keys;          /* KL_FEDHINT_KEY per peer, guarded memory (fed_ident.c) */
    uint64_t hs_tries;           /* Noise handshakes tried on inbound links (tests) */
    struct fed_mirror *mirrors;  /* channel mirrors being synced (fed_channel.c) */
    size_t n_mirrors;
    int mirrors_warned;
};

/* fed_link.c */
void kl_fedlink_dial(fed_peer_t *p);
void kl_fedlink_accept(kl_fed_t *f);
void kl_fedlink_close(fed_link_t *l, const char *why);
/* Seal and queue one frame; closes the link on failure. */
void kl_fedlink_send(fed_link_t *l, const kl_fedframe_t *fr);
/* The link has no job left and is closed: free it if its handles are. */
void kl_fedlink_maybe_free(fed_link_t *l);

/* fed.c, called by fed_link.c */
void kl_fed_link_up(fed_link_t *l);
void kl_fed_link_down(fed_link_t *l);
/* Dialling p failed before a link existed: try again after the backoff. */
void kl_fed_redial_later(fed_peer_t *p);
void kl_fed_on_frame(fed_link_t *l, kl_fedframe_t *fr);
/* fed_in.c: a frame on an inbound link; a storage job of an inbound link
 * finished (the job is freed there). */
void kl_fedin_frame(fed_link_t *l, kl_fedframe_t *fr);
void kl_fedin_job_done(fed_link_t *l, kl_job_t *job);
/* fed_in.c: an error answer on an inbound link; a storage job owned by it. */
void kl_fedin_send_error(fed_link_t *l, uint32_t id, int code, const char *msg);
/* A job of op answering request id on link l (its link_req set), or NULL
 * after answering UNAVAILABLE "out of memory: retry later". */
kl_job_t *kl_fedin_job(fed_link_t *l, uint32_t id, kl_fed_op_t op);
void kl_fedin_submit(fed_link_t *l, kl_job_t *job);
/* fed_group.c (groups with members on several relays). Send a GROUP or
 * GROUP_LIST job's request as a GroupProxy with frame id. */
void kl_fedgroup_send(fed_peer_t *p, kl_job_t *job, uint32_t id);
/* Send request req to peer p as a GroupProxy (fed_group.c) with FedFrame
 * id id: on behalf of user (its identity key key), or with user "" and key
 * NULL of this relay itself (a channel mirror). */
void kl_fed_proxy_send(fed_peer_t *p, uint32_t id, const char *user, const uint8_t *key,
                       kl_frame_t *req);
/* On an inbound link: a GroupProxy / GroupNotify of the peer, and the
 * completion of the storage job it became (freed there). */
void kl_fedgroup_in_proxy(fed_link_t *l, const kl_fedframe_t *fr);
void kl_fedgroup_in_notify(fed_link_t *l, const kl_fedframe_t *fr);
void kl_fedgroup_in_done(fed_link_t *l, kl_job_t *job);

/* fed.c: dial p unless it is connected, resolving or removed; fail a
 * proxied op waiting on p (off its wait list, answered to the client). */
void kl_fed_dial(fed_peer_t *p);
void kl_fed_proxy_fail(kl_fed_t *f, fed_peer_t *p, kl_job_t *job, const char *why);
/* fed_peers.c: the timer and backoffs of a new peer p of f. */
void kl_fed_peer_init(kl_fed_t *f, fed_peer_t *p);

/* fed.c: (re)start peer p's timer: in ms it redials (no link) or resumes a
 * paused outbox pump. */
void kl_fed_peer_timer(fed_peer_t *p, uint64_t ms);
/* fed_outbox.c: the outbox pump of peer p (see there). pump: send what the
 * window allows (no-op while paused, reading or the link is not ready);
 * forward_result: a peer's answer to one Forward; job_done: an
 * KL_FED_OP_OUT_READ or _OUT_ACK job came back from storage. */
void kl_fedout_pump(fed_peer_t *p);
void kl_fedout_forward_result(fed_peer_t *p, const kl_fedframe_t *fr);
void kl_fedout_job_done(fed_peer_t *p, kl_job_t *job);
/* fed_proxy.c: proxied ops (see there). next_id: the next frame id on p's
 * outgoing link (never 0); answer: a peer's answer to a proxied op;
 * link_up: send every waiting op on p's new link; link_down: fail the ops
 * sent on the link that went; sweep: fail ops past their deadline. */
uint32_t kl_fed_next_id(fed_peer_t *p);
void kl_fedproxy_answer(fed_peer_t *p, kl_fedframe_t *fr);
void kl_fedproxy_link_up(fed_peer_t *p);
void kl_fedproxy_link_down(fed_peer_t *p);
void kl_fedproxy_sweep(kl_fed_t *f, uint64_t now);
/* fed.c: a job of the module to storage (kl_fed_job_done gets it back). */
void kl_fed_store(kl_fed_t *f, kl_job_t *job);
/* fed.c: the wall clock in ms since the epoch (0 if unreadable). */
uint64_t kl_fed_now_ms(void);

/* fed_channel.c (broadcast channels across relays, mirror model). Send a
 * MIRROR step's or a CHAN_SUB's request as a GroupProxy of the relay
 * itself with frame id; take its answer (fr NULL: failed or timed out; the
 * job is off the wait list). */
void kl_fedchan_send(fed_peer_t *p, kl_job_t *job, uint32_t id);
void kl_fedchan_answer(fed_peer_t *p, kl_job_t *job, kl_fedframe_t *fr);
/* A CHAN_SUB back from storage: 1 if it goes on (another page of the log),
 * 0 when it goes to the client. A MIRROR or MIRROR_LIST back from storage
 * (the module's own). */
int kl_fedchan_sub_stored(kl_fed_t *f, kl_job_t *job);
void kl_fedchan_stored(kl_fed_t *f, kl_job_t *job);
/* Our link to p is up: sync every mirror of p's channels. */
void kl_fedchan_link_up(fed_peer_t *p);
/* A notice of p was dropped: sync all its mirrors at the next sweep. */
void kl_fedchan_resync_later(fed_peer_t *p);
/* Retry mirrors whose sync failed (the sweep timer). */
void kl_fedchan_sweep(kl_fed_t *f, uint64_t now);
/* Inbound: a peer's ChannelNotify (its channel requests are GroupProxy
 * frames: kl_fedgroup_in_proxy). */
void kl_fedchan_in_notify(fed_link_t *l, const kl_fedframe_t *fr);
void kl_fedchan_free(kl_fed_t *f);

#endif
