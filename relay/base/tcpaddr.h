/* TCP addresses (tcpaddr.c): parsing a listen address, and the printable
 * address of a TCP handle: "IP:PORT", or "[IPv6]:PORT", for listeners (what
 * was bound) and connections (who is on the other end, for debug logs). */
#ifndef KOLLEGA_RELAY_TCPADDR_H
#define KOLLEGA_RELAY_TCPADDR_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* The local (local != 0) or the peer's address of tcp into out. On failure
 * out holds "?:0" and the libuv error is returned. */
int kl_tcp_name(const uv_tcp_t *tcp, int local, char *out, size_t cap);

/* Parse a listen address HOST:PORT / [V6]:PORT where PORT may be 0, as
 * kl_hostport_parse (host NUL-terminated into host, the port into *port):
 * KL_EINVAL if malformed or longer than a host and port can be,
 * KL_ETOOBIG if the host does not fit cap. */
int kl_listen_parse(const char *s, char *host, size_t cap, uint16_t *port);

#endif
