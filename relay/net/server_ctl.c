/* The relay side of the control socket (control.h): a unix socket served
 * on the relay's loop, for the admin commands of the same user (or root). Requests
 * are small and capped (KL_CTL_REQ_MAX, one per connection); a request
 * that needs storage becomes a job on the storage thread like any client
 * request, so that it runs on the relay's own connection and updates what
 * that connection caches (the route cache, group push lists). */
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "kollega/addr.h"
#include "base/dlist.h"
#include "kollega/err.h"
#include "kollega/version.h"
#include "base/diag.h"
#include "server_int.h"

typedef struct ctl_client ctl_client_t;

struct kl_ctl {
    kl_server_t *srv;
    uv_pipe_t listener;
    ctl_client_t *clients;
    unsigned open;       /* the listener and clients not yet freed */
    int stopping;
    char path[108];
};

struct ctl_client {
    uv_pipe_t pipe;
    struct kl_ctl *ctl;
    ctl_client_t *prev, *next;
    char buf[KL_CTL_REQ_MAX];
    size_t n;
    int closing;         /* uv_close called */
    int closed;          /* its close callback ran */
    int job;             /* a storage job of it is in flight */
    int answered;        /* a reply is written or being written */
};

typedef struct ctl_write {
    uv_write_t req;
    ctl_client_t *cl;
    char text[KL_CTL_RESP_MAX];
} ctl_write_t;

static void ctl_release(struct kl_ctl *ctl)
{
    if (--ctl->open == 0 && ctl->stopping) {
        ctl->srv->ctl = NULL;
        free(ctl);
    }
}

/* A client goes once its handle is closed and no job refers to it. */
static void client_maybe_free(ctl_client_t *cl)
{
    if (!cl->closed || cl->job)
        return;
    struct kl_ctl *ctl = cl->ctl;
    KL_DLIST_UNLINK(ctl->clients, cl);
    free(cl);
    ctl_release(ctl);
}

static void on_client_closed(uv_handle_t *h)
{
    ctl_client_t *cl = h->data;
    cl->closed = 1;
    client_maybe_free(cl);
}

static void client_close(ctl_client_t *cl)
{
    if (cl->closing)
        return;
    cl->closing = 1;
    uv_close((uv_handle_t *)&cl->pipe, on_client_closed);
}

static void on_written(uv_write_t *req, int status)
{
    ctl_write_t *w = req->data;
    (void)status;
    client_close(w->cl);
    free(w);
}

/* Answer with one line and close after it is written. */
static void reply(ctl_client_t *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(ctl_client_t *cl, const char *fmt, ...)
{
    if (cl->closing || cl->answered)
        return;
    cl->answered = 1;
    uv_read_stop((uv_stream_t *)&cl->pipe);
    ctl_write_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        client_close(cl);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->text, sizeof w->text - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof w->text - 1)
        n = snprintf(w->text, sizeof w->text, "error internal response too long");
    w->text[n++] = '\n';
    w->req.data = w;
    w->cl = cl;
    uv_buf_t b = uv_buf_init(w->text, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&cl->pipe, &b, 1, on_written) != 0) {
        free(w);
        client_close(cl);
    }
}

unsigned kl_server_drop_user(kl_server_t *s, uint64_t user, const kl_conn_t *except,
                             const char *reason)
{
    unsigned n = 0;
    s->admin_gen++;
    kl_conn_t *c = s->map[kl_server_bucket(s, user)];
    while (c) {
        kl_conn_t *next = c->map_next; /* closing takes c out of the map */
        if (c->sess.user_id == user && c != except && !c->closing) {
            kl_conn_close(c, reason);
            n++;
        }
        c = next;
    }
    return n;
}

static void do_status(ctl_client_t *cl)
{
    kl_server_t *s = cl->ctl->srv;
    unsigned clients = 0;
    for (kl_conn_t *c = s->conns; c; c = c->next)
        clients += !c->closing;
    uint64_t now = kl_server_wall_ms();
    reply(cl, "ok pid=%ld started=%llu uptime_s=%llu clients=%u federation_links=%zu version=%s",
          (long)getpid(), (unsigned long long)(s->started_ms / 1000),
          (unsigned long long)(now > s->started_ms ? (now - s->started_ms) / 1000 : 0), clients,
          kl_fed_link_count(s->fed), KL_VERSION);
}

static void do_remove(ctl_client_t *cl, const char *handle)
{
    kl_server_t *s = cl->ctl->srv;
    if (!kl_handle_valid(handle)) {
        reply(cl, "error usage not a valid handle");
        return;
    }
    int oom = 0;
    kl_job_t *job = kl_server_job(s, KL_JOB_USER_REMOVE, NULL, &oom);
    if (job == NULL) {
        reply(cl, oom ? "error internal out of memory"
                      : "error stopping the relay is shutting down");
        return;
    }
    snprintf(job->u.remove.handle, sizeof job->u.remove.handle, "%s", handle);
    job->u.remove.ctl = cl;
    cl->job = 1;
    kl_storeq_submit(s->q, job);
}

void kl_server_ctl_job_done(kl_server_t *s, kl_job_t *job)
{
    ctl_client_t *cl = job->u.remove.ctl;
    unsigned dropped = 0;
    if (job->result == 0) {
        dropped = kl_server_drop_user(s, job->u.remove.user, NULL, "account removed");
        kl_diag(KL_DIAG_INFO, "an account was removed by the operator (%u connections closed)",
               dropped);
    }
    if (job->result == 0)
        reply(cl, "ok user=%llu disconnected=%u", (unsigned long long)job->u.remove.user, dropped);
    else if (job->result == KL_ENOTFOUND)
        reply(cl, "error not-found no such user");
    else
        reply(cl, "error storage %s", kl_strerror(job->result));
    cl->job = 0;
    kl_job_free(job);
    client_maybe_free(cl);
}

static void handle_line(ctl_client_t *cl, char *line)
{
    char *arg = strchr(line, ' ');
    if (arg)
        *arg++ = '\0';
    if (strcmp(line, "status") == 0 && arg == NULL)
        do_status(cl);
    else if (strcmp(line, "user-remove") == 0 && arg != NULL)
        do_remove(cl, arg);
    else
        reply(cl, "error usage unknown request");
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    ctl_client_t *cl = h->data;
    (void)suggested;
    *b = uv_buf_init(cl->buf + cl->n, (unsigned)(sizeof cl->buf - cl->n));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    ctl_client_t *cl = st->data;
    (void)b;
    if (nread < 0) {
        client_close(cl);
        return;
    }
    cl->n += (size_t)nread;
    char *nl = memchr(cl->buf, '\n', cl->n);
    if (nl) {
        /* One request per connection: nothing after its line is read. */
        uv_read_stop(st);
        *nl = '\0';
        handle_line(cl, cl->buf);
    } else if (cl->n == sizeof cl->buf) {
        reply(cl, "error usage request too long");
    }
}

/* The relay's own user, or root: root can read relay.key and the database
 * anyway, and it is who runs the admin commands of a packaged relay (whose
 * user systemd allocates at each start). */
static int same_user(uv_pipe_t *p)
{
    uv_os_fd_t fd;
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (uv_fileno((uv_handle_t *)p, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof cr)
        return 0;
    return cr.uid == geteuid() || cr.uid == 0;
}

static void on_connection(uv_stream_t *l, int status)
{
    struct kl_ctl *ctl = l->data;
    if (status < 0 || ctl->stopping)
        return;
    ctl_client_t *cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return;
    cl->ctl = ctl;
    uv_pipe_init(l->loop, &cl->pipe, 0);
    cl->pipe.data = cl;
    KL_DLIST_PUSH(ctl->clients, cl);
    ctl->open++;
    if (uv_accept(l, (uv_stream_t *)&cl->pipe) != 0) {
        client_close(cl);
        return;
    }
    if (!same_user(&cl->pipe)) {
        kl_diag(KL_DIAG_WARN, "control socket: refused a process of another user");
        reply(cl, "error denied not the relay's user");
        return;
    }
    if (uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read) != 0)
        client_close(cl);
}

int kl_server_ctl_start(kl_server_t *s, const char *path)
{
    struct kl_ctl *ctl = calloc(1, sizeof *ctl);
    if (ctl == NULL)
        return KL_ENOMEM;
    if (strlen(path) >= sizeof ctl->path) {
        free(ctl);
        return KL_ETOOBIG;
    }
    memcpy(ctl->path, path, strlen(path) + 1);
    ctl->srv = s;
    /* The caller holds the data directory's lock, so a socket file here is
     * a dead relay's. */
    unlink(path);
    uv_pipe_init(s->loop, &ctl->listener, 0);
    ctl->listener.data = ctl;
    ctl->open = 1;
    int r = uv_pipe_bind(&ctl->listener, path);
    if (r == 0)
        r = chmod(path, 0600) == 0 ? 0 : KL_EIO;
    if (r == 0)
        r = uv_listen((uv_stream_t *)&ctl->listener, 16, on_connection);
    s->ctl = ctl;
    if (r) {
        kl_server_ctl_stop(s);
        return r;
    }
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    ctl_release(h->data);
}

void kl_server_ctl_stop(kl_server_t *s)
{
    struct kl_ctl *ctl = s->ctl;
    if (ctl == NULL || ctl->stopping)
        return;
    ctl->stopping = 1;
    unlink(ctl->path);
    for (ctl_client_t *cl = ctl->clients; cl; cl = cl->next)
        client_close(cl);
    uv_close((uv_handle_t *)&ctl->listener, on_listener_closed);
}
