/* nftw() is XSI. */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kollega/err.h"
#include "spawn.h"

#define START_TIMEOUT_MS 30000

/* The directory of this executable, from /proc/self/exe. */
static int self_dir(char *out, size_t cap)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return KL_EIO;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash == NULL)
        return KL_EIO;
    *slash = '\0';
    if ((size_t)snprintf(out, cap, "%s", buf) >= cap)
        return KL_ETOOBIG;
    return 0;
}

/* Run argv with stdout to a pipe (returned in *out_fd) and stderr to the
 * file err_path (appended). The child dies with us (PR_SET_PDEATHSIG). */
static pid_t start(char *const argv[], const char *err_path, int *out_fd)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int e = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (e >= 0) {
            dup2(e, 2);
            close(e);
        }
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        fprintf(stderr, "kollega-bench: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(p[1]);
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    *out_fd = p[0];
    return pid;
}

/* One line from fd (blocking up to timeout_ms); 0, or -1 on EOF/timeout. */
static int read_line(int fd, char *line, size_t cap, int timeout_ms)
{
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, timeout_ms) <= 0)
            return -1;
        ssize_t r = read(fd, line + n, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    return 0;
}

static void log_tail(const kb_relay_t *r)
{
    char path[300], buf[4096];
    snprintf(path, sizeof path, "%s/relay.log", r->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0, SEEK_SET);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    fprintf(stderr, "kollega-bench: --- end of the relay's log (%s) ---\n%s", path, buf);
}

int kb_relay_spawn(kb_relay_t *r, const kb_spawn_cfg_t *cfg)
{
    char dir[PATH_MAX], log_path[300], line[1024], idle[24], listen[80];
    memset(r, 0, sizeof *r);
    r->out_fd = -1;
    if (cfg->bin) {
        snprintf(r->bin, sizeof r->bin, "%s", cfg->bin);
    } else {
        if (self_dir(dir, sizeof dir) != 0 ||
            (size_t)snprintf(r->bin, sizeof r->bin, "%s/kollega-relay", dir) >= sizeof r->bin) {
            fprintf(stderr, "kollega-bench: cannot find my own directory: pass --relay-bin\n");
            return KL_EIO;
        }
    }
    if (access(r->bin, X_OK) != 0) {
        fprintf(stderr, "kollega-bench: no relay binary at %s (build kollega-relay, or pass "
                        "--relay-bin PATH)\n", r->bin);
        return KL_ENOTFOUND;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(r->dir, sizeof r->dir, "%s/kollega-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(r->dir) == NULL) {
        fprintf(stderr, "kollega-bench: cannot create a temporary directory: %s\n",
                strerror(errno));
        r->dir[0] = '\0';
        return KL_EIO;
    }
    snprintf(log_path, sizeof log_path, "%s/relay.log", r->dir);
    snprintf(idle, sizeof idle, "%llu", (unsigned long long)cfg->idle_timeout_s);
    snprintf(listen, sizeof listen, "127.0.0.1:0");
    char data[300];
    snprintf(data, sizeof data, "%s/data", r->dir);
    /* A benchmark must lift the per-connection rate limit (it sends far
     * more than a person), the connection cap and the inbox quota (acks
     * trail the sends by a few ms); durability (--sync) stays as asked. */
    char *argv[] = {r->bin, "serve", "--data", data, "--name", "bench.local", "--listen", listen,
                    "--rate", "1000000", "--burst", "1000000", "--max-connections", "1000000",
                    "--quota-entries", "1000000", "--idle-timeout", idle,
                    "--sync", (char *)cfg->sync, "--log-level", (char *)cfg->log_level, NULL};
    r->pid = start(argv, log_path, &r->out_fd);
    if (r->pid < 0) {
        fprintf(stderr, "kollega-bench: fork: %s\n", strerror(errno));
        return KL_EIO;
    }
    /* "listening on HOST:PORT (relay NAME, public key KEY)" */
    char bound[80];
    if (read_line(r->out_fd, line, sizeof line, START_TIMEOUT_MS) != 0 ||
        sscanf(line, "listening on %79s (relay %253[^,], public key %63[^)])", bound, r->name,
               r->key) != 3 ||
        kl_hostport_parse(bound, r->host, sizeof r->host, &r->port) != 0) {
        fprintf(stderr, "kollega-bench: the relay did not report its address\n");
        kb_relay_stop(r, 0);
        return KL_EIO;
    }
    return 0;
}

int kb_relay_invite(kb_relay_t *r, uint64_t uses, char *code, size_t cap)
{
    char data[300], n[24], line[KL_INVITE_MAX + 64], log_path[300];
    snprintf(data, sizeof data, "%s/data", r->dir);
    snprintf(n, sizeof n, "%llu", (unsigned long long)uses);
    snprintf(log_path, sizeof log_path, "%s/relay.log", r->dir);
    char *argv[] = {r->bin, "invite", "--data", data, "--uses", n, "--expires", "1d", NULL};
    int fd = -1, status = 0, rc = KL_EIO;
    pid_t pid = start(argv, log_path, &fd);
    if (pid < 0)
        return KL_EIO;
    kl_invite_t inv;
    if (read_line(fd, line, sizeof line, START_TIMEOUT_MS) == 0 &&
        kl_invite_parse(line, &inv) == 0 && strlen(inv.code) < cap) {
        memcpy(code, inv.code, strlen(inv.code) + 1);
        rc = 0;
    }
    close(fd);
    waitpid(pid, &status, 0);
    if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "kollega-bench: kollega-relay invite failed\n");
        rc = KL_EIO;
    }
    memset(line, 0, sizeof line);
    return rc;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int kb_relay_stop(kb_relay_t *r, int keep)
{
    int rc = 0, status = 0;
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        int waited = 0;
        for (;;) {
            pid_t w = waitpid(r->pid, &status, WNOHANG);
            if (w == r->pid)
                break;
            if (w < 0 && errno != EINTR) {
                status = 0;
                break;
            }
            if (waited >= 30000) {
                fprintf(stderr, "kollega-bench: the relay did not stop in 30 s: killing it\n");
                kill(r->pid, SIGKILL);
                waitpid(r->pid, &status, 0);
                rc = -1;
                break;
            }
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            waited += 10;
        }
        if (rc == 0)
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (rc != 0) {
            fprintf(stderr, "kollega-bench: the relay exited with status %d\n", rc);
            log_tail(r);
        }
        r->pid = 0;
    }
    if (r->out_fd >= 0)
        close(r->out_fd);
    r->out_fd = -1;
    if (r->dir[0] && !keep)
        nftw(r->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    else if (r->dir[0])
        fprintf(stderr, "kollega-bench: kept %s\n", r->dir);
    r->dir[0] = '\0';
    return rc;
}
