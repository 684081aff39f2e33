/* kollega-relay: the data directory's lock as the commands use it. */
#include <stdio.h>

#include "cli_admin.h"
#include "net/control.h"
#include "kollega/err.h"

static int lock_fd = -1; /* held until the process exits */

int kl_cli_lock(const char *dir, int create)
{
    kl_lock_holder_t h;
    if (lock_fd >= 0)
        return 0;
    if (create && kl_admin_mkdir(dir) != 0)
        return kl_cli_fail_oper("cannot create the data directory %s (check its parent's "
                                "permissions)", dir);
    int r = kl_lock_acquire(dir, &lock_fd, &h);
    if (r == KL_EEXIST && h.pid > 0)
        return kl_cli_fail_oper("a relay is already running on %s (pid %ld); stop it first or "
                                "use another --data", dir, h.pid);
    if (r == KL_EEXIST)
        return kl_cli_fail_oper("%s is locked by another kollega-relay process; wait for it to "
                                "finish, or stop it", dir);
    if (r)
        return kl_cli_fail_oper("cannot lock %s/%s: %s (check the directory's permissions)", dir,
                                KL_LOCK_NAME, kl_strerror(r));
    return 0;
}

int kl_cli_running(const char *dir, kl_lock_holder_t *holder, int *running)
{
    int r = kl_lock_probe(dir, running, holder);
    if (r)
        return kl_cli_fail_oper("cannot check %s/%s: %s (check the directory's permissions)", dir,
                                KL_LOCK_NAME, kl_strerror(r));
    return 0;
}

int kl_cli_ctl_error(const char *dir, int r)
{
    if (r == KL_ETOOBIG)
        return kl_cli_fail_oper("the relay on %s is running, but the path of its control socket "
                                "is too long for a unix socket: stop the relay to do this, or "
                                "move the data directory to a shorter path", dir);
    return kl_cli_fail_oper("the relay on %s is running, but its control socket %s/%s does not "
                            "answer (%s): check the relay's log, or stop it and retry", dir, dir,
                            KL_CTL_NAME, kl_strerror(r));
}
