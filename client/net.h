/* A blocking client connection to a relay: TCP with timeouts, the Noise NK
 * handshake against the pinned relay key, L1 framing, and request/response
 * matching by frame id. Pushes (id 0) that arrive while a response is
 * awaited are queued for kl_net_wait_push. A failure of the connection or
 * of a request leaves a sentence for the user in kl_net_error() (a stop
 * (-EINTR) and a push wait that timed out leave none). Once the relay
 * closed the connection, a write failed, or the relay sent bytes that do
 * not decrypt or parse, the connection is dead: later sends and reads fail
 * with KL_EIO (pushes queued before are still handed out). One kl_net_t is
 * used by one thread. */
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
 * Returns 0 with *out (close with kl_net_close), or, with *out NULL,
 * KL_EIO (unreachable, resolution failed, closed), KL_ETIMEDOUT (10 s for
 * connect and handshake together), KL_ECRYPTO (the relay does not hold
 * relay_key, or broke the handshake), -EINTR (stop flag set), KL_ENOMEM.
 * On failure err (errcap bytes; may be NULL) gets a sentence for the user.
 * stop may be NULL; when it points at a non-zero value, waits end with
 * -EINTR; it must live as long as the connection. */
int kl_net_open(const char *host, uint16_t port, const uint8_t relay_key[32],
                 volatile sig_atomic_t *stop, kl_net_t **out, char *err, size_t errcap);
/* Close the socket and wipe the transport keys; NULL is fine. */
void kl_net_close(kl_net_t *c);
/* The Noise handshake hash (64 bytes) that auth/register signatures bind;
 * it points into c, valid until kl_net_close. */
const uint8_t *kl_net_handshake_hash(const kl_net_t *c);

/* Send req (its id is assigned here, in req; req stays the caller's) and
 * wait up to KL_CONN_REQUEST_MS for the response. If the response's body
 * is expect_case, returns 0 and *resp (free with kl_wire_free). If the
 * relay answered with an error frame, returns KL_EREFUSED and
 * kl_net_relay_error() gives its code; any other body is KL_EPROTO (*resp
 * NULL on every failure). kl_net_send's errors; KL_EIO / KL_ETIMEDOUT /
 * -EINTR / KL_ECRYPTO / KL_EPROTO from reading as above. */
int kl_net_call(kl_net_t *c, kl_frame_t *req, int expect_case, kl_frame_t **resp);
/* Seal and write a frame without waiting for an answer (id as given; f
 * stays the caller's). KL_ETOOBIG over KL_WIRE_MAX_FRAME, KL_ENOMEM,
 * kl_stream_seal_frame's errors, KL_EIO (the connection is dead or the
 * write failed), KL_ETIMEDOUT (the relay stopped reading), -EINTR. */
int kl_net_send(kl_net_t *c, kl_frame_t *f);
/* The next push (id 0), queued or read, waiting up to timeout_ms (-1:
 * forever; 0: only one already queued). 0 with *push (free with
 * kl_wire_free), else *push NULL and KL_ETIMEDOUT, KL_EIO, KL_ECRYPTO,
 * KL_EPROTO, -EINTR. */
int kl_net_wait_push(kl_net_t *c, int timeout_ms, kl_frame_t **push);
/* 1 once (then 0) if pushes were dropped because the queue was full (or
 * memory ran out); 0 otherwise. Cannot fail. */
int kl_net_take_missed(kl_net_t *c);

/* The last failure as a sentence ("cannot reach relay ..."), or
 * "connection failed" when none was recorded: a string inside c (or
 * static), valid until kl_net_close (the next failure rewrites it). */
const char *kl_net_error(const kl_net_t *c);
/* Code of the last relay error frame (a kl_wire_err_t, kollega/wire.h), or
 * 0 if none came yet; a later success does not clear it, so read it only
 * after KL_EREFUSED. */
int kl_net_relay_error(const kl_net_t *c);
/* The relay's message in that error frame ("" if none), printable ASCII
 * only: it points into c, valid until kl_net_close (the next error frame
 * rewrites it). */
const char *kl_net_relay_message(const kl_net_t *c);

#endif
