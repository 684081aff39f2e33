/* Addresses (handle@relay, #handle@relay), HOST:PORT and invite tokens. All
 * parsers here take untrusted text (command lines, pasted tokens, frames)
 * and are strict: one canonical spelling is accepted, everything else is
 * KL_EINVAL, and nothing is written to the output on failure. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "kollega/addr.h"
#include "kollega/crypto.h"
#include "kollega/err.h"

#define INVITE_PREFIX "kollega:invite?"

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_b64url(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* handle = [a-z0-9][a-z0-9._-]{0,31}. */
int kl_handle_valid(const char *h)
{
    size_t n;
    if (h == NULL || !is_lower_alnum(h[0]))
        return 0;
    for (n = 1; h[n] != '\0'; n++) {
        if (n >= KL_HANDLE_MAX)
            return 0;
        if (!is_lower_alnum(h[n]) && h[n] != '.' && h[n] != '_' && h[n] != '-')
            return 0;
    }
    return 1;
}

/* Labels of n chars from allowed set, separated by single dots, each
 * non-empty and neither starting nor ending with '-'. */
static int dns_name_valid(const char *s, size_t n, int allow_upper)
{
    size_t label = 0;
    if (n == 0 || n > KL_RELAYNAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (c == '-') {
            if (label == 0)
                return 0;
        } else if (!is_lower_alnum(c) && !(allow_upper && c >= 'A' && c <= 'Z')) {
            return 0;
        }
        label++;
    }
    return label > 0 && s[n - 1] != '-';
}

/* 1..253 chars of [a-z0-9.-]; labels neither empty nor starting/ending
 * with '-'. */
int kl_relayname_valid(const char *name)
{
    if (name == NULL)
        return 0;
    return dns_name_valid(name, strnlen(name, KL_RELAYNAME_MAX + 1), 0);
}

/* "handle@relay" or "#handle@relay", exactly one '@', both parts valid.
 * 0 with *out filled, or KL_EINVAL (out untouched). */
int kl_addr_parse(const char *s, kl_addr_t *out)
{
    kl_addr_t a;
    const char *at;
    size_t hl, n;

    if (s == NULL || out == NULL)
        return KL_EINVAL;
    n = strnlen(s, KL_ADDR_MAX + 1);
    if (n > KL_ADDR_MAX)
        return KL_EINVAL;
    memset(&a, 0, sizeof a);
    if (s[0] == '#') {
        a.is_group = 1;
        s++;
    }
    at = strchr(s, '@');
    if (at == NULL || strchr(at + 1, '@') != NULL)
        return KL_EINVAL;
    hl = (size_t)(at - s);
    if (hl == 0 || hl > KL_HANDLE_MAX)
        return KL_EINVAL;
    memcpy(a.handle, s, hl);
    a.handle[hl] = '\0';
    if (!kl_handle_valid(a.handle) || !kl_relayname_valid(at + 1))
        return KL_EINVAL;
    strcpy(a.relay, at + 1); /* length checked by kl_relayname_valid */
    *out = a;
    return 0;
}

/* Back to text: KL_EINVAL for an invalid address, KL_ETOOBIG if cap is too
 * small (KL_ADDR_MAX + 1 always suffices). */
int kl_addr_format(const kl_addr_t *a, char *out, size_t cap)
{
    if (a == NULL || out == NULL || !kl_handle_valid(a->handle) || !kl_relayname_valid(a->relay))
        return KL_EINVAL;
    int n = snprintf(out, cap, "%s%s@%s", a->is_group ? "#" : "", a->handle, a->relay);
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0)
            out[0] = '\0';
        return KL_ETOOBIG;
    }
    return 0;
}

/* Decimal 1..65535 without sign or leading zeros, exactly n chars. */
static int port_parse(const char *s, size_t n, uint16_t *port)
{
    unsigned long v = 0;
    if (n == 0 || n > 5 || s[0] == '0')
        return KL_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return KL_EINVAL;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return KL_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

/* A host name (letters of either case, digits, '-', '.') or a dotted IPv4
 * address; an all-numeric name must really be IPv4, so "999.1.1.1" fails
 * here rather than at connect time. */
static int host_valid(const char *h, size_t n)
{
    char tmp[KL_HOST_MAX + 1];
    struct in_addr a4;
    int numeric = 1;
    if (!dns_name_valid(h, n, 1) || n > KL_HOST_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (h[i] != '.' && (h[i] < '0' || h[i] > '9'))
            numeric = 0;
    if (!numeric)
        return 1;
    memcpy(tmp, h, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET, tmp, &a4) == 1;
}

/* HOST:PORT, or [IPV6]:PORT (host written without the brackets). Returns
 * 0, KL_EINVAL (malformed, port 0 or > 65535) or KL_ETOOBIG (hostcap). */
int kl_hostport_parse(const char *s, char *host, size_t hostcap, uint16_t *port)
{
    char tmp[KL_HOST_MAX + 1];
    struct in6_addr a6;
    const char *h, *colon;
    size_t hl, n;
    uint16_t p;

    if (s == NULL || host == NULL || port == NULL)
        return KL_EINVAL;
    n = strnlen(s, KL_HOST_MAX + 9);
    if (n > KL_HOST_MAX + 8)
        return KL_EINVAL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return KL_EINVAL;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
        if (hl == 0 || hl >= sizeof tmp)
            return KL_EINVAL;
        memcpy(tmp, h, hl);
        tmp[hl] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return KL_EINVAL;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return KL_EINVAL;
        h = s;
        hl = (size_t)(colon - s);
        if (memchr(h, ':', hl) != NULL || !host_valid(h, hl))
            return KL_EINVAL;
    }
    if (port_parse(colon + 1, strlen(colon + 1), &p))
        return KL_EINVAL;
    if (hl + 1 > hostcap)
        return KL_ETOOBIG;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = p;
    return 0;
}

static int code_valid(const char *c, size_t n)
{
    if (n < KL_CODE_MIN || n > KL_CODE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_b64url(c[i]))
            return 0;
    return 1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One "name=value" field of an invite into inv; seen tracks duplicates. */
static int invite_field(const char *f, size_t n, kl_invite_t *inv, unsigned *seen)
{
    char val[KL_INVITE_MAX + 1];
    const char *eq = memchr(f, '=', n);
    size_t nl, vl;
    unsigned bit;

    if (eq == NULL)
        return KL_EINVAL;
    nl = (size_t)(eq - f);
    vl = n - nl - 1;
    if (vl == 0 || vl > KL_INVITE_MAX || memchr(eq + 1, '=', vl) != NULL)
        return KL_EINVAL;
    memcpy(val, eq + 1, vl);
    val[vl] = '\0';

    int r = KL_EINVAL;
    if (nl == 5 && memcmp(f, "relay", 5) == 0) {
        bit = 1;
        if (vl > KL_RELAYNAME_MAX || !kl_relayname_valid(val))
            goto out;
        memcpy(inv->relay, val, vl + 1);
    } else if (nl == 4 && memcmp(f, "addr", 4) == 0) {
        bit = 2;
        if (kl_hostport_parse(val, inv->host, sizeof inv->host, &inv->port))
            goto out;
    } else if (nl == 3 && memcmp(f, "key", 3) == 0) {
        uint8_t key[33];
        size_t kl = 0;
        bit = 4;
        /* One spare byte so an over-long key fails on its length. */
        if (kl_b64_decode(val, key, sizeof key, &kl) || kl != 32 || kl_is_zero(key, 32))
            goto out;
        memcpy(inv->key, key, 32);
    } else if (nl == 4 && memcmp(f, "code", 4) == 0) {
        bit = 8;
        if (!code_valid(val, vl))
            goto out;
        memcpy(inv->code, val, vl + 1);
    } else {
        goto out; /* unknown field */
    }
    if (*seen & bit)
        goto out;
    *seen |= bit;
    r = 0;
out:
    kl_memzero(val, sizeof val);
    return r;
}

/* kollega:invite?relay=NAME&addr=HOST:PORT&key=KEY&code=CODE, fields in any
 * order, each exactly once, nothing else; surrounding whitespace ignored.
 * KEY is 32 bytes of canonical unpadded base64url (not all zero), CODE
 * KL_CODE_MIN..KL_CODE_MAX base64url characters. 0 with *out filled, or
 * KL_EINVAL with *out untouched. The code is a secret: temporaries are
 * wiped. */
int kl_invite_parse(const char *s, kl_invite_t *out)
{
    kl_invite_t inv;
    unsigned seen = 0;
    size_t n, plen = strlen(INVITE_PREFIX);
    int r = KL_EINVAL;

    if (s == NULL || out == NULL)
        return KL_EINVAL;
    memset(&inv, 0, sizeof inv);
    n = strnlen(s, 4 * KL_INVITE_MAX);
    if (n >= 4 * KL_INVITE_MAX)
        goto out;
    while (n > 0 && is_space(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_space(s[n - 1]))
        n--;
    if (n > KL_INVITE_MAX || n < plen || memcmp(s, INVITE_PREFIX, plen) != 0)
        goto out;
    s += plen;
    n -= plen;
    while (n > 0) {
        const char *amp = memchr(s, '&', n);
        size_t fl = amp ? (size_t)(amp - s) : n;
        if (invite_field(s, fl, &inv, &seen))
            goto out;
        if (amp == NULL)
            break;
        s += fl + 1;
        n -= fl + 1;
        if (n == 0)
            goto out; /* trailing '&' */
    }
    if (seen != 15)
        goto out;
    *out = inv;
    r = 0;
out:
    kl_memzero(&inv, sizeof inv);
    return r;
}

/* The canonical token (relay, addr, key, code in that order; IPv6 hosts in
 * brackets). KL_EINVAL if any field is invalid, KL_ETOOBIG if cap is too
 * small (KL_INVITE_MAX + 1 always suffices). */
int kl_invite_format(const kl_invite_t *inv, char *out, size_t cap)
{
    char key[64];
    size_t hl;
    int v6, n;

    if (inv == NULL || out == NULL)
        return KL_EINVAL;
    hl = strnlen(inv->host, sizeof inv->host);
    v6 = memchr(inv->host, ':', hl) != NULL;
    if (!kl_relayname_valid(inv->relay) || hl == sizeof inv->host || inv->port == 0 ||
        !code_valid(inv->code, strnlen(inv->code, sizeof inv->code)) ||
        kl_is_zero(inv->key, 32))
        return KL_EINVAL;
    if (v6) {
        struct in6_addr a6;
        if (inet_pton(AF_INET6, inv->host, &a6) != 1)
            return KL_EINVAL;
    } else if (!host_valid(inv->host, hl)) {
        return KL_EINVAL;
    }
    if (kl_b64_encode(inv->key, 32, key, sizeof key))
        return KL_EINVAL;
    n = snprintf(out, cap, INVITE_PREFIX "relay=%s&addr=%s%s%s:%u&key=%s&code=%s", inv->relay,
                 v6 ? "[" : "", inv->host, v6 ? "]" : "", (unsigned)inv->port, key, inv->code);
    if (n < 0 || (size_t)n >= cap || (size_t)n > KL_INVITE_MAX) {
        kl_memzero(out, cap);
        return KL_ETOOBIG;
    }
    return 0;
}
