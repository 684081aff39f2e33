/* The metrics endpoint: a minimal HTTP responder on the relay's loop that
 * answers GET /metrics with the text a callback renders, and nothing else.
 *
 * Why hand-written: the request is one line we compare against a constant,
 * the answer is one buffer, and the connection closes after it. The
 * Debian-packaged HTTP server libraries (libmicrohttpd and the like) bring
 * threads and an event loop of their own, which would then read the
 * relay's state from another thread; libuv has no HTTP layer. So this file
 * keeps everything on the loop thread, with hard limits instead:
 *   - at most KL_METRICS_HTTP_CONNS connections at once (more are accepted
 *     and closed at once),
 *   - a request (line and headers) of at most KL_METRICS_HTTP_REQ_MAX
 *     bytes, held in the connection's own fixed buffer (no allocation a
 *     peer controls; a longer one gets 431),
 *   - KL_METRICS_HTTP_TIMEOUT_MS for the whole exchange, read and write,
 *     after which the connection is closed whatever its state,
 *   - one response per connection (Connection: close, no keep-alive), no
 *     request body is ever read.
 * A slow or hostile scraper can therefore hold at most a few small buffers
 * for a few seconds, and never delays the loop. */
#ifndef KOLLEGA_RELAY_METRICS_HTTP_H
#define KOLLEGA_RELAY_METRICS_HTTP_H

#include <stddef.h>
#include <uv.h>

#define KL_METRICS_HTTP_CONNS 8
#define KL_METRICS_HTTP_REQ_MAX 4096
#define KL_METRICS_HTTP_TIMEOUT_MS 10000

typedef struct kl_metrics_http kl_metrics_http_t;

/* Render the body of a 200 answer: *body malloc'd (the responder frees
 * it), *len its length. 0, or an error (the scraper gets 500). */
typedef int (*kl_metrics_http_render_cb)(void *ud, char **body, size_t *len);

/* Listen on addr (port 0: any free port) on loop. bound gets "HOST:PORT"
 * ("[V6]:PORT"), *loopback 1 when the bound address is a loopback one.
 * 0, KL_ENOMEM, or a libuv error (UV_EADDRINUSE, ...). */
int kl_metrics_http_start(kl_metrics_http_t **out, uv_loop_t *loop, const struct sockaddr *addr,
                          kl_metrics_http_render_cb cb, void *ud, char *bound, size_t cap,
                          int *loopback);
/* Close the listener and every connection; the module frees itself once
 * libuv has released the handles (the loop must run). NULL is fine. */
void kl_metrics_http_stop(kl_metrics_http_t *h);

#endif
