/* The command-line side of the control socket (control.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "net/control.h"
#include "kollega/err.h"

static int wait_fd(int fd, short ev, int ms)
{
    struct pollfd p = {fd, ev, 0};
    int r;
    do
        r = poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    return r > 0 ? 0 : r == 0 ? KL_ETIMEDOUT : KL_EIO;
}

int kl_ctl_request(const char *dir, const char *req, char *resp, size_t cap)
{
    struct sockaddr_un sa;
    char path[KL_PATH_MAX], line[KL_CTL_REQ_MAX + 1];
    size_t got = 0;
    int r;
    if (cap == 0)
        return KL_EINVAL;
    resp[0] = '\0';
    if (kl_admin_path(dir, KL_CTL_NAME, path, sizeof path) != 0 ||
        strlen(path) >= sizeof sa.sun_path)
        return KL_ETOOBIG;
    int n = snprintf(line, sizeof line, "%s\n", req);
    if (n < 0 || (size_t)n >= sizeof line)
        return KL_ETOOBIG;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return KL_EIO;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        r = errno == ENOENT || errno == ECONNREFUSED ? KL_ENOTFOUND : KL_EIO;
        goto out;
    }
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = send(fd, line + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            r = KL_EIO;
            goto out;
        }
        off += (size_t)w;
    }
    for (;;) {
        if ((r = wait_fd(fd, POLLIN, KL_CTL_TIMEOUT_MS)) != 0)
            goto out;
        ssize_t k = recv(fd, resp + got, cap - 1 - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            r = KL_EIO; /* closed before a whole line */
            goto out;
        }
        got += (size_t)k;
        resp[got] = '\0';
        char *nl = memchr(resp, '\n', got);
        if (nl) {
            *nl = '\0';
            r = 0;
            goto out;
        }
        if (got + 1 >= cap) {
            r = KL_ETOOBIG;
            goto out;
        }
    }
out:
    close(fd);
    if (r)
        resp[0] = '\0';
    return r;
}

int kl_ctl_field(const char *resp, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = resp; (p = strstr(p, key)) != NULL; p += kl) {
        if ((p != resp && p[-1] != ' ') || p[kl] != '=')
            continue;
        const char *v = p + kl + 1;
        size_t n = strcspn(v, " ");
        if (n + 1 > cap)
            return KL_ETOOBIG;
        memcpy(out, v, n);
        out[n] = '\0';
        return 0;
    }
    return KL_ENOTFOUND;
}
