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
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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

static int launch(kb_relay_t *r, const kb_spawn_cfg_t *cfg);

int kb_relay_spawn(kb_relay_t *r, const kb_spawn_cfg_t *cfg)
{
    char dir[PATH_MAX];
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
    return launch(r, cfg);
}

/* `serve` of r->dir/data (created on first start), reading the address
 * line it prints. */
static int launch(kb_relay_t *r, const kb_spawn_cfg_t *cfg)
{
    char log_path[300], line[1024], idle[24], listen[80];
    snprintf(log_path, sizeof log_path, "%s/relay.log", r->dir);
    snprintf(idle, sizeof idle, "%llu", (unsigned long long)cfg->idle_timeout_s);
    snprintf(listen, sizeof listen, "127.0.0.1:0");
    char data[300];
    snprintf(data, sizeof data, "%s/data", r->dir);
    /* A benchmark must lift the per-connection rate limit (it sends far
     * more than a person), the connection cap and the inbox quota (acks
     * trail the sends by a few ms); durability (--sync) stays as asked. */
    char fed[40];
    snprintf(fed, sizeof fed, "127.0.0.1:%u", (unsigned)cfg->fed_port);
    char *argv[] = {r->bin, "serve", "--data", data, "--name",
                    (char *)(cfg->name ? cfg->name : "bench.local"), "--listen", listen,
                    "--rate", "1000000", "--burst", "1000000", "--max-connections", "1000000",
                    "--quota-entries", "1000000", "--idle-timeout", idle,
                    "--sync", (char *)cfg->sync, "--log-level", (char *)cfg->log_level,
                    cfg->fed_port ? "--federation-listen" : NULL, fed,
                    "--federation-retry-max", "1", NULL};
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

/* The unsigned number after "\"key\":" in a JSON line, or -1. */
static int json_u64(const char *line, const char *key, uint64_t *out)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (p == NULL)
        return -1;
    p += strlen(pat);
    if (*p < '0' || *p > '9')
        return -1;
    *out = strtoull(p, NULL, 10);
    return 0;
}

int kb_relay_stored(kb_relay_t *r, uint64_t *entries, uint64_t *bytes)
{
    char data[300], line[4096], log_path[300];
    snprintf(data, sizeof data, "%s/data", r->dir);
    snprintf(log_path, sizeof log_path, "%s/relay.log", r->dir);
    char *argv[] = {r->bin, "status", "--json", "--data", data, NULL};
    int fd = -1, status = 0, rc = KL_EIO;
    pid_t pid = start(argv, log_path, &fd);
    if (pid < 0)
        return KL_EIO;
    if (read_line(fd, line, sizeof line, START_TIMEOUT_MS) == 0 &&
        json_u64(line, "entries", entries) == 0 && json_u64(line, "entry_bytes", bytes) == 0)
        rc = 0;
    close(fd);
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rc = KL_EIO;
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

/* Run argv to completion; its first stdout line into line (may be NULL).
 * 0 if it exited 0. */
static int run_cmd(kb_relay_t *r, char *const argv[], char *line, size_t cap)
{
    char log_path[300];
    int fd = -1, status = 0, rc = 0;
    snprintf(log_path, sizeof log_path, "%s/relay.log", r->dir);
    pid_t pid = start(argv, log_path, &fd);
    if (pid < 0)
        return KL_EIO;
    if (line && read_line(fd, line, cap, START_TIMEOUT_MS) != 0)
        rc = KL_EIO;
    close(fd);
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rc = KL_EIO;
    return rc;
}

/* A loopback port nobody listens on right now, for a relay to bind a
 * moment later: taken below the ephemeral range (32768 and up on Linux), so
 * that no other program's bind(0) or outgoing connection gets it in
 * between. 0 when none is found. */
static uint16_t free_port(void)
{
    static unsigned seed;
    if (seed == 0)
        seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    for (int i = 0; i < 500; i++) {
        struct sockaddr_in sa;
        uint16_t port = (uint16_t)(20000 + rand_r(&seed) % 12000);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0)
            return 0;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = htons(port);
        int ok = bind(s, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(s);
        if (ok)
            return port;
    }
    return 0;
}

/* `status --json` of r's data directory: 1 if its link to peer is up. */
static int link_up(kb_relay_t *r, const char *peer)
{
    char data[300], line[4096], want[400];
    snprintf(data, sizeof data, "%s/data", r->dir);
    char *argv[] = {r->bin, "status", "--json", "--data", data, NULL};
    if (run_cmd(r, argv, line, sizeof line) != 0)
        return 0;
    snprintf(want, sizeof want, "\"name\":\"%s\"", peer);
    const char *p = strstr(line, want);
    const char *end = p ? strchr(p, '}') : NULL;
    const char *up = p ? strstr(p, "\"link\":\"up\"") : NULL;
    return up != NULL && end != NULL && up < end;
}

/* bin and a fresh temporary directory for r, then `init` of its data. */
static int prepare(kb_relay_t *r, const kb_spawn_cfg_t *cfg, const char *name, char *key,
                   size_t keycap)
{
    char dir[PATH_MAX], data[300], line[4096];
    memset(r, 0, sizeof *r);
    r->out_fd = -1;
    if (cfg->bin)
        snprintf(r->bin, sizeof r->bin, "%s", cfg->bin);
    else if (self_dir(dir, sizeof dir) != 0 ||
             (size_t)snprintf(r->bin, sizeof r->bin, "%s/kollega-relay", dir) >= sizeof r->bin)
        return KL_EIO;
    const char *tmp = getenv("TMPDIR");
    snprintf(r->dir, sizeof r->dir, "%s/kollega-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (access(r->bin, X_OK) != 0 || mkdtemp(r->dir) == NULL) {
        r->dir[0] = '\0';
        return KL_EIO;
    }
    snprintf(data, sizeof data, "%s/data", r->dir);
    char *init[] = {r->bin, "init", "--data", data, "--name", (char *)name, "--listen",
                    "127.0.0.1:0", NULL};
    char *status[] = {r->bin, "status", "--json", "--data", data, NULL};
    if (run_cmd(r, init, NULL, 0) != 0 || run_cmd(r, status, line, sizeof line) != 0)
        return KL_EIO;
    const char *k = strstr(line, "\"public_key\":\"");
    if (k == NULL)
        return KL_EIO;
    k += strlen("\"public_key\":\"");
    size_t n = strcspn(k, "\"");
    if (n == 0 || n >= keycap)
        return KL_EIO;
    memcpy(key, k, n);
    key[n] = '\0';
    return 0;
}

static int peer_add(kb_relay_t *r, const char *name, uint16_t port, const char *key)
{
    char data[300], addr[40];
    snprintf(data, sizeof data, "%s/data", r->dir);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
    char *argv[] = {r->bin, "peer", "add", "--data", data, (char *)name, addr, (char *)key,
                    "--rate", "1000000", "--outbox-entries", "10000000", NULL};
    return run_cmd(r, argv, NULL, 0);
}

static int pair_try(kb_relay_t *a, kb_relay_t *b, const kb_spawn_cfg_t *cfg)
{
    static const char *const NAMES[2] = {"bench-a.local", "bench-b.local"};
    kb_relay_t *r[2] = {a, b};
    char key[2][64];
    uint16_t port[2] = {free_port(), free_port()};
    int rc = port[0] && port[1] && port[0] != port[1] ? 0 : KL_EIO;
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
    a->out_fd = b->out_fd = -1;
    for (int i = 0; i < 2 && rc == 0; i++)
        rc = prepare(r[i], cfg, NAMES[i], key[i], sizeof key[i]);
    for (int i = 0; i < 2 && rc == 0; i++)
        rc = peer_add(r[i], NAMES[1 - i], port[1 - i], key[1 - i]);
    if (rc != 0)
        fprintf(stderr, "kollega-bench: cannot set up two federated relays\n");
    for (int i = 0; i < 2 && rc == 0; i++) {
        kb_spawn_cfg_t c = *cfg;
        c.name = NAMES[i];
        c.fed_port = port[i];
        rc = launch(r[i], &c);
    }
    /* Sends before the links are up would only wait in the outbox: start
     * measuring once both are. */
    for (int t = 0; rc == 0 && t < 300 && !(link_up(a, NAMES[1]) && link_up(b, NAMES[0])); t++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (t == 299)
            rc = KL_EIO;
    }
    if (rc != 0) {
        fprintf(stderr, "kollega-bench: the two federated relays did not come up\n");
        if (a->dir[0])
            kb_relay_stop(a, 0);
        if (b->dir[0])
            kb_relay_stop(b, 0);
    }
    return rc;
}

int kb_relay_pair_spawn(kb_relay_t *a, kb_relay_t *b, const kb_spawn_cfg_t *cfg)
{
    /* The federation ports are picked free, then bound by the relays: in
     * between another process may take one (parallel tests). Try again
     * with new ports, a few times. */
    int rc = pair_try(a, b, cfg);
    for (int i = 0; rc != 0 && i < 3; i++) {
        fprintf(stderr, "kollega-bench: retrying with other federation ports\n");
        rc = pair_try(a, b, cfg);
    }
    return rc;
}
