/* The control socket of a running relay (DATA/control.sock): how the admin
 * commands reach the `serve` process that owns the data directory.
 *
 * A unix stream socket, mode 0600 in the 0700 data directory, and the
 * relay also checks that the connecting process runs as its own user
 * (SO_PEERCRED). One request per connection, one line each way:
 *
 *   request   VERB [ARGUMENT]\n             at most KL_CTL_REQ_MAX bytes
 *   response  ok KEY=VALUE ...\n            at most KL_CTL_RESP_MAX bytes
 *             error CODE message\n
 *
 * Verbs: "status" (ok pid= started= uptime_s= clients= federation_links=
 * version=) and "user-remove HANDLE" (ok user= disconnected=, or error
 * not-found). Values hold no spaces. The relay side is server_ctl.c; this
 * is the command-line side (ctl_client.c), plain blocking sockets. */
#ifndef KOLLEGA_RELAY_CONTROL_H
#define KOLLEGA_RELAY_CONTROL_H

#include <stddef.h>

#define KL_CTL_NAME "control.sock"
#define KL_CTL_REQ_MAX 256
#define KL_CTL_RESP_MAX 1024
/* How long the command line waits for an answer. */
#define KL_CTL_TIMEOUT_MS 15000

/* Send req (one line, without its newline) to the relay of dir and read
 * its answer line into resp (without the newline). 0; KL_ENOTFOUND when
 * nothing listens there; KL_ETIMEDOUT; KL_ETOOBIG when the path does not
 * fit a unix socket address; KL_EIO otherwise. */
int kl_ctl_request(const char *dir, const char *req, char *resp, size_t cap);
/* The value of KEY=VALUE in a response line, copied into out. 0 or
 * KL_ENOTFOUND (KL_ETOOBIG when it does not fit). */
int kl_ctl_field(const char *resp, const char *key, char *out, size_t cap);

#endif
