/* Printable addresses of TCP handles (sockname.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "sockname.h"

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
