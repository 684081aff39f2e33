/* kl-probe internals shared by kl_probe.c (connections, abuse modes, main)
 * and kl_probe_user.c (modes of a registered user: register, send loops,
 * receive, flood) and kl_probe_group.c (a hostile group member). A test
 * tool: it speaks the protocol from its own plain blocking sockets, the
 * well-formed part through a kl_stream and the malformed part as raw
 * bytes; only the group modes use the client library, for its e2e
 * building blocks (store, sender keys, content encoding), never for its
 * protocol logic. */
#ifndef KL_PROBE_H
#define KL_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "kollega/crypto.h"
#include "kollega/stream.h"
#include "kollega/wire.h"

/* pconn_recv results besides 0. */
#define PR_TIMEOUT 1
#define PR_CLOSED 2
#define PR_BAD 3

typedef struct pconn {
    int fd;
    kl_stream_t st;       /* NK initiator; kl_stream_hh(&st) once open */
    uint32_t next_id;
} pconn_t;

/* TCP connect to the relay named on the command line; 0 or -1. */
int pconn_connect(pconn_t *c);
/* Connect and run the Noise NK handshake; 0 or -1 (closed on failure). */
int pconn_open(pconn_t *c);
void pconn_close(pconn_t *c);
/* A fresh non-zero request id. */
uint32_t pconn_id(pconn_t *c);
/* Seal and send f: 0 or -1. */
int pconn_send(pconn_t *c, const kl_frame_t *f);
/* Receive one frame within timeout_ms (-1: forever) per read: 0 with
 * *out, or PR_TIMEOUT / PR_CLOSED / PR_BAD (a bad length, undecryptable or
 * undecodable; the connection then reads nothing more). */
int pconn_recv(pconn_t *c, int timeout_ms, kl_frame_t **out);
/* Send raw bytes: 0 or -1. */
int probe_send_all(int fd, const uint8_t *p, size_t n);

/* Print s as a JSON string (quotes included). */
void probe_json_str(const char *s);
/* 1 once stdin has reached EOF (poll only, never blocks). */
int probe_stdin_eof(void);
/* Sleep ms milliseconds. */
void probe_sleep_ms(int ms);

/* A registered user's key pair, as the register mode saves it. */
typedef struct probe_ident {
    uint8_t pk[KL_ED_PK];
    uint8_t sk[KL_ED_SK];
} probe_ident_t;

/* kl_probe_user.c helpers for other modes: load a key file (0 or -1);
 * connect and authenticate as address (0 or -1); send f with a fresh id
 * and wait for its answer, skipping pushes (0 with *rep, or -1). */
int probe_key_load(const char *path, probe_ident_t *id);
int probe_connect_user(pconn_t *c, const probe_ident_t *id, const char *address);
int probe_call(pconn_t *c, kl_frame_t *f, kl_frame_t **rep);

/* Authenticate as address with its Ed25519 secret key: 0, an ErrorCode
 * (> 0) when refused, -1 when the connection failed. */
int probe_auth(pconn_t *c, const uint8_t sk[64], const char *address);
/* Wait for the reply to request id, skipping pushes (the entries of
 * pushed deliver frames are counted into *pushed when not NULL): 0 with
 * *out, or a PR_ code. */
int probe_await(pconn_t *c, uint32_t id, kl_frame_t **out, long *pushed);

/* kl_probe_user.c: argv after MODE. Each returns the process exit code. */
int probe_register(int argc, char **argv);
int probe_sendloop(int argc, char **argv);
int probe_recv(int argc, char **argv);
int probe_flood(int argc, char **argv);
/* kl_probe_e2e.c: hostile end-to-end content (forged sealed senders). */
int probe_forge(int argc, char **argv);
/* A send on an unauthenticated connection with a delivery token. */
int probe_unidentified(int argc, char **argv);

/* kl_probe_group.c: a hostile group member played from a kollega home
 * (argv after MODE). Each returns the process exit code. */
int probe_group_invite(int argc, char **argv);
int probe_group_send(int argc, char **argv);
int probe_chan_post(int argc, char **argv);
int probe_drain(int argc, char **argv);

#endif
