/* TCP addresses: listen address parsing and printable handle addresses (tcpaddr.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "kollega/addr.h"
#include "kollega/err.h"
#include "tcpaddr.h"

int kl_tcp_name(const uv_tcp_t *tcp, int local, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    memset(&ss, 0, sizeof ss);
    int r = local ? uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len)
                  : uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len);
    if (r) {
        snprintf(out, cap, "?:0");
        return r;
    }
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%u", ip, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
        snprintf(out, cap, "%s:%u", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
    return 0;
}

int kl_listen_parse(const char *s, char *host, size_t cap, uint16_t *port)
{
    /* kl_hostport_parse refuses port 0, which `--listen HOST:0` (ephemeral)
     * needs: parse a copy with port 1 and put the 0 back. */
    char tmp[KL_HOST_MAX + 16];
    size_t n = strlen(s);
    if (n + 1 > sizeof tmp)
        return KL_EINVAL;
    memcpy(tmp, s, n + 1);
    int zero = n >= 2 && strcmp(tmp + n - 2, ":0") == 0;
    if (zero)
        tmp[n - 1] = '1';
    int r = kl_hostport_parse(tmp, host, cap, port);
    if (r == 0 && zero)
        *port = 0;
    return r;
}
