/* Shared loopback-relay fixture of test_relay_server.c,
 * test_relay_server_group.c and test_relay_server_channel.c: the server loop
 * runs in a thread on 127.0.0.1:0 with a temporary database (relay name
 * "oslo.test"); the tests are blocking clients speaking Noise NK + Frames
 * through noise.h and wire.h. The library kl_test_relay_server_fixture
 * (relay_server_fixture.c). */
#ifndef KOLLEGA_TEST_RELAY_SERVER_FIXTURE_H
#define KOLLEGA_TEST_RELAY_SERVER_FIXTURE_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/frame.h"
#include "kollega/noise.h"
#include "kollega/wire.h"
#include "base/diag.h"
#include "net/server.h"
#include "storage/storage.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x

typedef struct relay {
    char dir[64];
    uv_loop_t loop;
    kl_server_t *srv;
    uv_thread_t thread;
    uint16_t port;
    uint8_t pk[32];
} relay_t;

typedef struct client {
    int fd;
    kl_noise_transport_t t;
    uint8_t ik_pk[32], ik_sk[64];
    uint32_t next_id;
} client_t;

/* Overrides for the next relay_start (0 = default); relay_start resets them. */
extern uint32_t opt_max_conns, opt_idle_s, opt_opk_per_pair;
extern size_t opt_write_queue;

/* Start a relay whose database holds the invite codes of the NULL-terminated
 * list invites, each good for uses registrations; handshake_timeout_s as in
 * kl_server_cfg_t. Stop it with relay_stop. */
relay_t *relay_start(uint32_t handshake_timeout_s, const char *const *invites, uint32_t uses);

/* Shut the relay down, join its thread, remove its directory, free r. */
void relay_stop(relay_t *r);
int send_all(int fd, const uint8_t *p, size_t n);

/* A TCP connection to r with a 5 s receive timeout (no handshake). */
int raw_connect(relay_t *r);

/* Connect c to r with a fresh identity key and run the Noise NK handshake. */
void client_connect(relay_t *r, client_t *c);
void client_close(client_t *c);

/* Next frame from the relay, or NULL when the connection closed. */
kl_frame_t *recv_frame(client_t *c);

/* Send f; the next frame must be its reply (the caller frees it). */
kl_frame_t *request(client_t *c, kl_frame_t *f);
void expect_ok(kl_frame_t *r);
void expect_error(kl_frame_t *r, int code);

/* Register c's identity key as handle with invite code; the reply. */
kl_frame_t *do_register(client_t *c, const char *handle, const char *code);

/* Log in a second connection as c's user (handle on this relay). */
void do_auth(relay_t *r, client_t *c2, const client_t *c, const char *handle);

/* A ping's pong must be the very next frame: nothing was pushed before. */
void expect_nothing_pushed(client_t *c);

/* The next frame must be a push (id 0) of body_case; the caller frees it. */
kl_frame_t *expect_push(client_t *c, int body_case);


/* The next n frames c gets must be replies of body_case. */
void expect_replies(client_t *c, int n, int body_case);

/* Read the deliver pushes of c, a client behind a full write queue for
 * whom n entries were stored, until all n were pushed or a push without
 * entries announced (more) that pushes were dropped; check (or NULL) is
 * called on each push. Returns the number of entries pushed; *announced is
 * 1 if the announcement came. */
int read_pushes(client_t *c, int n, void (*check)(const kl_frame_t *p), int *announced);

/* Send fe as a fetch from c and return its reply (the caller frees it);
 * pushes (id 0) that arrive before the reply are skipped. */
kl_frame_t *fetch_past_pushes(client_t *c, Kollega__Relay__V1__Fetch *fe);

#endif
