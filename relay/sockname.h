/* The printable address of a TCP handle (sockname.c): "IP:PORT", or
 * "[IPv6]:PORT", for listeners (what was bound) and connections (who is on
 * the other end, for debug logs). */
#ifndef KOLLEGA_RELAY_SOCKNAME_H
#define KOLLEGA_RELAY_SOCKNAME_H

#include <stddef.h>
#include <uv.h>

/* The local (local != 0) or the peer's address of tcp into out. On failure
 * out holds "?:0" and the libuv error is returned. */
int kl_tcp_name(const uv_tcp_t *tcp, int local, char *out, size_t cap);

#endif
