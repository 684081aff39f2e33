/* One benchmark client connection to a kollega-relay on a libuv loop: TCP
 * connect, Noise_NK handshake as initiator, then register (a new user) or
 * auth (a registered one), then sealed frames both ways. Outgoing frames
 * are sealed into a per-connection buffer and written once per loop
 * iteration (many frames per write), the way a real client batches.
 *
 * Every connection of one run shares a kb_net_t (loop, relay address and
 * key, a read buffer). Callbacks run on the loop thread. */
#ifndef KOLLEGA_BENCH_KCONN_H
#define KOLLEGA_BENCH_KCONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/stream.h"
#include "kollega/wire.h"

typedef struct kb_conn kb_conn_t;

typedef struct kb_user {
    char handle[KL_HANDLE_MAX + 1];
    uint8_t pk[KL_ED_PK];
    uint8_t sk[KL_ED_SK];
} kb_user_t;

typedef struct kb_net {
    uv_loop_t *loop;
    struct sockaddr_storage addr;
    uint8_t relay_key[32];
    char relay_name[KL_RELAYNAME_MAX + 1];
    char code[KL_CODE_MAX + 1];   /* multi-use invite code for register */
    uint8_t rbuf[65536];          /* reads are synchronous on the loop */
    kb_conn_t *dirty;             /* connections with unwritten output */
    uv_idle_t flusher;            /* active while dirty is non-empty */
    int flusher_on;
    uint64_t open_conns;
} kb_net_t;

typedef struct kb_conn_ops {
    /* Registered or authenticated: the connection may send requests. */
    void (*ready)(kb_conn_t *c);
    /* A frame after ready; it is freed when this returns. */
    void (*frame)(kb_conn_t *c, const kl_frame_t *f);
    /* The connection failed or the relay closed it (kind: kb_err_kind or a
     * relay ErrorCode). The handle is closing; closed follows. */
    void (*failed)(kb_conn_t *c, int kind);
    /* The handle is closed: the owner may free or reuse the kb_conn_t. */
    void (*closed)(kb_conn_t *c);
} kb_conn_ops_t;

enum kb_conn_state { KB_IDLE, KB_CONNECTING, KB_HANDSHAKE, KB_AUTHING, KB_READY, KB_CLOSING };

struct kb_conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    kb_net_t *net;
    const kb_conn_ops_t *ops;
    void *ud;                 /* owner's */
    const kb_user_t *user;
    int do_register;
    enum kb_conn_state state;
    kl_stream_t st;           /* framing, Noise NK, transport (clock: uv_now) */
    uint32_t ctl_id;          /* ids of non-send requests: (ctl_id << 16) */
    uint32_t auth_id;         /* id of the register/auth request */
    uint8_t *obuf;
    size_t olen, ocap;
    kb_conn_t *dirty_next;
    int dirty;
    size_t inflight_bytes;    /* handed to uv_write, not yet written */
    uint64_t started_ns;      /* kb_conn_open time */
};

/* Zero n, resolve host:port (the first address getaddrinfo gives) and init
 * the flusher on loop. 0, or KL_EINVAL when host does not resolve (then n
 * holds no handle: do not kb_net_close it). The caller fills relay_key,
 * relay_name and code. */
int kb_net_init(kb_net_t *n, uv_loop_t *loop, const char *host, uint16_t port);
/* Close the flusher handle (call before the final uv_run that drains). */
void kb_net_close(kb_net_t *n);

/* Connect c (zeroed or closed before) for user: register with the net's
 * invite code when do_register, else auth. 0, a libuv error or KL_ENOMEM. */
int kb_conn_open(kb_conn_t *c, kb_net_t *n, const kb_user_t *user, int do_register,
                 const kb_conn_ops_t *ops, void *ud);
/* Seal f into the output buffer (written on this loop iteration).
 * 0, or a kl_err (the connection is then failing). */
int kb_conn_send(kb_conn_t *c, const kl_frame_t *f);
/* Request ids for non-send requests: (counter << 16), never 0. */
uint32_t kb_conn_ctl_id(kb_conn_t *c);
/* Close (no callbacks but closed). Safe to call twice. */
void kb_conn_close(kb_conn_t *c);

/* Make n fresh users with handles "<prefix><index>" and new Ed25519 keys
 * (the secret keys in u: the caller wipes them). 0, KL_EINVAL when a
 * handle would be too long or invalid, KL_ECRYPTO. */
int kb_users_make(kb_user_t *u, size_t n, const char *prefix);

#endif
