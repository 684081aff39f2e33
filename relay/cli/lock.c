#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "kollega/err.h"
#include "lock.h"

static void read_holder(int fd, kl_lock_holder_t *h)
{
    char buf[64];
    memset(h, 0, sizeof *h);
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return;
    buf[n] = '\0';
    long pid = 0;
    unsigned long long started = 0;
    if (sscanf(buf, "%ld %llu", &pid, &started) >= 1 && pid > 0) {
        h->pid = pid;
        h->started = started;
    }
}

int kl_lock_acquire(const char *dir, int *fd, kl_lock_holder_t *holder)
{
    char path[KL_PATH_MAX], line[64];
    *fd = -1;
    memset(holder, 0, sizeof *holder);
    if (kl_admin_path(dir, KL_LOCK_NAME, path, sizeof path) != 0)
        return KL_ETOOBIG;
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (f < 0)
        return KL_EIO;
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        if (busy)
            read_holder(f, holder);
        close(f);
        return busy ? KL_EEXIST : KL_EIO;
    }
    /* Ours now: whatever a dead holder wrote is replaced. */
    int n = snprintf(line, sizeof line, "%ld %llu\n", (long)getpid(),
                     (unsigned long long)time(NULL));
    if (ftruncate(f, 0) != 0 || pwrite(f, line, (size_t)n, 0) != n) {
        close(f);
        return KL_EIO;
    }
    *fd = f;
    return 0;
}

int kl_lock_probe(const char *dir, int *held, kl_lock_holder_t *holder)
{
    char path[KL_PATH_MAX];
    *held = 0;
    memset(holder, 0, sizeof *holder);
    if (kl_admin_path(dir, KL_LOCK_NAME, path, sizeof path) != 0)
        return KL_ETOOBIG;
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (f < 0)
        return errno == ENOENT ? 0 : KL_EIO;
    /* A shared lock is enough to learn whether an exclusive one is held,
     * and never disturbs the holder. */
    if (flock(f, LOCK_SH | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        if (busy) {
            *held = 1;
            read_holder(f, holder);
        }
        close(f);
        return busy ? 0 : KL_EIO;
    }
    close(f);
    return 0;
}
