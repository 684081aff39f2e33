/* Address, HOST:PORT and invite-token parsing (proto/addr.c). The input is
 * one string (cut at its first NUL) given to every parser; whatever a parser
 * accepts must format back to exactly the input (addresses), or to a
 * canonical form that parses to the same value (host:port, invites).
 *
 * Input: u8 host buffer size | the string. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kollega/addr.h"
#include "kollega/err.h"

static void check_addr(const char *s)
{
    kl_addr_t a, b;
    char out[KL_ADDR_MAX + 1];
    memset(&a, 0x5a, sizeof a);
    b = a;
    if (kl_addr_parse(s, &a) != 0) {
        FUZZ_CHECK(memcmp(&a, &b, sizeof a) == 0); /* untouched on failure */
        return;
    }
    FUZZ_CHECK(kl_handle_valid(a.handle) && kl_relayname_valid(a.relay));
    FUZZ_CHECK(kl_addr_format(&a, out, sizeof out) == 0);
    FUZZ_CHECK(strcmp(out, s) == 0);
    /* too small a buffer is refused, never truncated silently */
    FUZZ_CHECK(kl_addr_format(&a, out, strlen(s)) == KL_ETOOBIG && out[0] == '\0');
}

static void check_hostport(const char *s, size_t hostcap)
{
    char host[KL_HOST_MAX + 1], canon[KL_HOST_MAX + 16], host2[KL_HOST_MAX + 1];
    uint16_t port = 0, port2 = 0;
    if (hostcap > sizeof host)
        hostcap = sizeof host;
    int rc = kl_hostport_parse(s, host, hostcap, &port);
    if (rc != 0) {
        FUZZ_CHECK(rc == KL_EINVAL || rc == KL_ETOOBIG);
        return;
    }
    FUZZ_CHECK(port != 0 && strlen(host) < hostcap && strlen(host) > 0);
    int v6 = strchr(host, ':') != NULL;
    snprintf(canon, sizeof canon, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
             (unsigned)port);
    FUZZ_CHECK(strcmp(canon, s) == 0);
    FUZZ_CHECK(kl_hostport_parse(canon, host2, sizeof host2, &port2) == 0);
    FUZZ_CHECK(port2 == port && strcmp(host2, host) == 0);
}

static void check_invite(const char *s)
{
    kl_invite_t a, b, c;
    char out[KL_INVITE_MAX + 1];
    memset(&a, 0x5a, sizeof a);
    b = a;
    if (kl_invite_parse(s, &a) != 0) {
        FUZZ_CHECK(memcmp(&a, &b, sizeof a) == 0);
        return;
    }
    FUZZ_CHECK(kl_invite_format(&a, out, sizeof out) == 0);
    FUZZ_CHECK(kl_invite_parse(out, &c) == 0);
    FUZZ_CHECK(strcmp(a.relay, c.relay) == 0 && strcmp(a.host, c.host) == 0);
    FUZZ_CHECK(a.port == c.port && memcmp(a.key, c.key, 32) == 0);
    FUZZ_CHECK(strcmp(a.code, c.code) == 0);
    /* the canonical token is no longer than the one parsed */
    FUZZ_CHECK(strlen(out) <= strlen(s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t hostcap = data[0];
    char *s = malloc(size);
    if (s == NULL)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    check_addr(s);
    check_hostport(s, hostcap);
    check_invite(s);
    FUZZ_CHECK(kl_handle_valid(s) == 0 || strlen(s) <= KL_HANDLE_MAX);
    FUZZ_CHECK(kl_relayname_valid(s) == 0 || strlen(s) <= KL_RELAYNAME_MAX);
    free(s);
    return 0;
}
