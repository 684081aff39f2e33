/* A blocking client connection to a relay: TCP with timeouts, the Noise NK
 * handshake against the pinned relay key, L1 framing, and request/response
 * matching by frame id. Pushes (id 0) that arrive while a response is
 * awaited are queued for kl_net_wait_push. Every failure leaves a
 * sentence for the user in kl_net_error(). */
#ifndef KOLLEGA_CLIENT_NET_H
#define KOLLEGA_CLIENT_NET_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "kollega/wire.h"

#define KL_CONN_CONNECT_MS 10000
#define KL_CONN_REQUEST_MS 20000
/* Pushes kept while nobody reads them; beyond this they are dropped and
 * kl_net_take_missed() reports it (the caller then fetches). */
#define KL_CONN_MAX_QUEUED 64

typedef struct kl_net kl_net_t;

/* Connect to host:port and run the Noise NK handshake with relay_key.
 * Returns 0, or KL_EIO (unreachable, resolution failed, closed),
 * KL_ETIMEDOUT, KL_ECRYPTO (the relay does not hold relay_key), -EINTR
 * (stop flag set). On failure err (errcap bytes) gets a sentence for the
 * user. stop may be NULL; when it points at a non-zero value, waits end
 * with -EINTR. */
int kl_net_open(const char *host, uint16_t port, const uint8_t relay_key[32],
                 volatile sig_atomic_t *stop, kl_net_t **out, char *err, size_t errcap);
/* Close the socket and wipe the transport keys; NULL is fine. */
void kl_net_close(kl_net_t *c);
/* The Noise handshake hash (64 bytes) that auth/register signatures bind. */
const uint8_t *kl_net_handshake_hash(const kl_net_t *c);

/* Send req (its id is assigned here) and wait up to KL_CONN_REQUEST_MS for
 * the response. If the response's body is expect_case, returns 0 and *resp
 * (free with kl_wire_free). If the relay answered with an error frame,
 * returns KL_EREFUSED and kl_net_relay_error() gives its code; any other
 * body is KL_EPROTO. KL_EIO / KL_ETIMEDOUT / -EINTR as above. */
int kl_net_call(kl_net_t *c, kl_frame_t *req, int expect_case, kl_frame_t **resp);
/* Send a frame without waiting for an answer (id as given). */
int kl_net_send(kl_net_t *c, kl_frame_t *f);
/* The next push (id 0), waiting up to timeout_ms (-1: forever). 0 with
 * *push, KL_ETIMEDOUT, KL_EIO, -EINTR. */
int kl_net_wait_push(kl_net_t *c, int timeout_ms, kl_frame_t **push);
/* 1 once (then 0) if pushes were dropped because the queue was full. */
int kl_net_take_missed(kl_net_t *c);

/* The last failure as a sentence ("cannot reach relay ..."). */
const char *kl_net_error(const kl_net_t *c);
/* Code of the last relay error frame (a kl_wire_err_t, kollega/wire.h), or 0. */
int kl_net_relay_error(const kl_net_t *c);
/* The relay's message in that error frame ("" if none). */
const char *kl_net_relay_message(const kl_net_t *c);

#endif
