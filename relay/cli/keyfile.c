#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyfile.h"
#include "kollega/crypto.h"
#include "kollega/err.h"

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return KL_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync the directory holding path so the rename itself is durable. */
static int sync_dir(const char *path)
{
    char tmp[4096];
    if (strlen(path) >= sizeof tmp)
        return KL_EIO;
    memcpy(tmp, path, strlen(path) + 1);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return KL_EIO;
    int r = fsync(fd) == 0 ? 0 : KL_EIO;
    close(fd);
    return r;
}

int kl_keyfile_create(const char *path, uint8_t pk[32])
{
    int r = KL_EIO, fd = -1;
    uint8_t sk[32];
    char tmp[4096];
    if (access(path, F_OK) == 0)
        return KL_EEXIST;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return KL_EIO;
    kl_x_keypair(pk, sk);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    if (write_all(fd, sk, sizeof sk) != 0 || fsync(fd) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    /* link() instead of rename() so that a key that appeared meanwhile is
     * never replaced: losing a relay key cuts every client off. */
    if (link(tmp, path) != 0) {
        r = errno == EEXIST ? KL_EEXIST : KL_EIO;
        goto out;
    }
    r = sync_dir(path);
out:
    kl_memzero(sk, sizeof sk);
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return r;
}

int kl_keyfile_load(const char *path, uint8_t **skp, uint8_t pk[32])
{
    int r = KL_EIO;
    uint8_t *sk = NULL;
    struct stat st;
    *skp = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? KL_ENOTFOUND : errno == ELOOP ? KL_EREFUSED : KL_EIO;
    if (fstat(fd, &st) != 0)
        goto out;
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        r = KL_EREFUSED;
        goto out;
    }
    if (st.st_size != 32) {
        r = KL_EPROTO;
        goto out;
    }
    sk = kl_secure_alloc(32);
    if (sk == NULL) {
        r = KL_ENOMEM;
        goto out;
    }
    size_t have = 0;
    while (have < 32) {
        ssize_t n = read(fd, sk + have, 32 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        have += (size_t)n;
    }
    if (kl_x_public(sk, pk) != 0) {
        r = KL_EPROTO;
        goto out;
    }
    *skp = sk;
    sk = NULL;
    r = 0;
out:
    if (sk)
        kl_secure_free(sk);
    close(fd);
    return r;
}
