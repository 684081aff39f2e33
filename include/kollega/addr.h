/* Addresses (handle@relay, #group@relay) and invite tokens
 * (kollega:invite?relay=NAME&addr=HOST:PORT&key=RELAY_PUBKEY&code=SECRET). */
#ifndef KOLLEGA_ADDR_H
#define KOLLEGA_ADDR_H

#include <stddef.h>
#include <stdint.h>

#define KL_HANDLE_MAX 32
#define KL_RELAYNAME_MAX 253
#define KL_ADDR_MAX (1 + KL_HANDLE_MAX + 1 + KL_RELAYNAME_MAX)
#define KL_HOST_MAX 253
#define KL_CODE_MIN 16
#define KL_CODE_MAX 64
#define KL_INVITE_MAX 512

typedef struct kl_addr {
    int is_group;                      /* 1 for #handle@relay */
    char handle[KL_HANDLE_MAX + 1];
    char relay[KL_RELAYNAME_MAX + 1];
} kl_addr_t;

/* handle = [a-z0-9][a-z0-9._-]{0,31}. 1 if h is one, else 0 (NULL too). */
int kl_handle_valid(const char *h);
/* Relay name: 1..253 chars of [a-z0-9.-], labels not starting/ending with
 * '-' nor empty. 1 if name is one, else 0 (NULL too). */
int kl_relayname_valid(const char *name);
/* Parse "handle@relay" or "#handle@relay" into the caller's *out.
 * KL_EINVAL if malformed. */
int kl_addr_parse(const char *s, kl_addr_t *out);
/* Format back into out, NUL-terminated: KL_EINVAL for an invalid address,
 * KL_ETOOBIG if cap is too small (KL_ADDR_MAX + 1 always suffices). */
int kl_addr_format(const kl_addr_t *a, char *out, size_t cap);

typedef struct kl_invite {
    char relay[KL_RELAYNAME_MAX + 1];
    char host[KL_HOST_MAX + 1];        /* name, IPv4, or IPv6 without brackets */
    uint16_t port;
    uint8_t key[32];                   /* relay static X25519 public key */
    char code[KL_CODE_MAX + 1];        /* base64url secret */
} kl_invite_t;

/* Parse HOST:PORT or [V6]:PORT: the host (a name, IPv4, or IPv6 without
 * brackets) NUL-terminated into host, the port (1..65535) into *port.
 * KL_EINVAL if malformed, KL_ETOOBIG if the host does not fit hostcap. */
int kl_hostport_parse(const char *s, char *host, size_t hostcap, uint16_t *port);
/* Parse one invite token line (surrounding whitespace allowed) into the
 * caller's *out. KL_EINVAL with no partial output on any malformed,
 * missing or duplicated field. */
int kl_invite_parse(const char *s, kl_invite_t *out);
/* The token line of inv into out, NUL-terminated (an IPv6 host in
 * brackets). KL_EINVAL if any field is invalid, KL_ETOOBIG if cap is too
 * small (KL_INVITE_MAX + 1 always suffices). */
int kl_invite_format(const kl_invite_t *inv, char *out, size_t cap);

#endif
