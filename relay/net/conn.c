/* One client connection, from accept to free.
 *
 *   accept -> Noise NK handshake (responder, prologue "kollega/1")
 *          -> transport: each L1 frame is one sealed Frame, handed to
 *             dispatch; replies and pushes are sealed and queued
 *          -> finishing (after an error that ends the session: flush the
 *             error frame, send FIN, discard input until EOF or linger)
 *          -> closing (uv_close on the socket and the timer)
 *          -> freed, once both handles are closed AND no storage job still
 *             refers to the connection (a job completing for a closed
 *             connection is dropped, except that a committed send still
 *             pushes to its recipient).
 *
 * The protocol itself (framing, the Noise handshake and transport, the
 * idle deadline) is c->st, a kl_stream; this file is its I/O. A
 * connection holds no read buffer while idle (the server's shared buffer
 * serves every read; the stream allocates only for a partial frame), and
 * the handshake state is freed once its answer is queued. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "kollega/err.h"
#include "kollega/wire.h"
#include "base/diag.h"
#include "server_int.h"
#include "base/tcpaddr.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x

/* on_frame's "stop feeding": the connection is finishing or closed. */
#define STOP 1

/* Write coalescing. Every frame a connection gets during one loop turn
 * (replies, pushes, the handshake answer) is sealed straight into one
 * growing buffer, c->out, and the connection joins the server's flush
 * list; kl_conn_flush_all hands each buffer to the kernel with a single
 * uv_write. Under load a storage batch completes dozens of jobs of one
 * connection at once, so this turns dozens of write(2) calls, each
 * pushing one small TCP segment through the stack, into one. Frames are
 * sealed in the order they are sent (the Noise nonce order) and buffers
 * are written in flush order, so the byte stream is unchanged. The buffer
 * counts in wq_bytes from the moment a frame is sealed, so the
 * write-queue cap means exactly what it did with one write per frame. An
 * idle connection holds no buffer. */
typedef struct kl_outbuf {
    uv_write_t req;
    kl_conn_t *c;
    size_t len, cap;
    uint8_t data[];
} kl_outbuf_t;

/* First allocation of an output buffer: a few replies or pushes fit. */
#define OUT_MIN 2048
/* Largest output buffer (one loop turn's frames for one connection). */
#define OUT_MAX (UINT32_MAX / 4)

static void update_reading(kl_conn_t *c);
static void on_timer(uv_timer_t *t);

static void flush_unlink(kl_conn_t *c)
{
    kl_server_t *s = c->srv;
    if (c->fl_prev)
        c->fl_prev->fl_next = c->fl_next;
    else if (s->flush_head == c)
        s->flush_head = c->fl_next;
    if (c->fl_next)
        c->fl_next->fl_prev = c->fl_prev;
    c->fl_prev = c->fl_next = NULL;
}

/* Room for n more bytes at the end of c->out (allocated and put on the
 * flush list on first use, doubled as needed); NULL when out of memory or
 * absurdly large. The caller adds what it wrote to out->len. */
static uint8_t *out_reserve(kl_conn_t *c, size_t n)
{
    kl_outbuf_t *o = c->out;
    size_t used = o ? o->len : 0;
    if (used > OUT_MAX || n > OUT_MAX - used)
        return NULL; /* uv_buf_t lengths are unsigned; cap doubling stays in range */
    if (o == NULL || used + n > o->cap) {
        size_t cap = o ? o->cap : OUT_MIN;
        while (cap < used + n)
            cap *= 2;
        kl_outbuf_t *no = realloc(o, sizeof *no + cap);
        if (no == NULL)
            return NULL;
        if (o == NULL) {
            kl_server_t *s = c->srv;
            no->c = c;
            no->len = 0;
            c->fl_prev = NULL;
            c->fl_next = s->flush_head;
            if (s->flush_head)
                s->flush_head->fl_prev = c;
            s->flush_head = c;
        }
        no->cap = cap;
        c->out = no;
    }
    return c->out->data + c->out->len;
}

/* Forget frames sealed and not yet written (the connection is closing). */
static void out_drop(kl_conn_t *c)
{
    if (c->out == NULL)
        return;
    flush_unlink(c);
    c->wq_bytes -= c->out->len;
    free(c->out);
    c->out = NULL;
}

static void maybe_free(kl_conn_t *c)
{
    if (!c->closing || c->open_handles > 0 || c->jobs > 0 || c->hs_work != NULL)
        return;
    for (size_t i = 0; i < c->n_backlog; i++)
        kl_wire_free(c->backlog[i]);
    kl_stream_free(&c->st);
    kl_conn_missed_free(c);
    kl_server_conn_freed(c->srv, c);
    kl_free_wipe(c, sizeof *c);
}

static void on_handle_closed(uv_handle_t *h)
{
    kl_conn_t *c = h->data;
    c->open_handles--;
    maybe_free(c);
}

void kl_conn_close(kl_conn_t *c, const char *reason)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->close_reason = reason;
    out_drop(c);
    if (c->sess.authed)
        kl_diag_user(KL_DIAG_INFO, c->id, c->peer, c->sess.handle, "closed (%s)", reason);
    else
        kl_diag_conn(KL_DIAG_INFO, c->id, c->peer, "closed (%s)", reason);
    kl_server_map_remove(c->srv, c);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status; /* the connection closes on EOF or the linger timer */
}

/* A finishing connection whose last reply is written: send FIN and wait
 * (reading to discard) for the peer's EOF or the linger timer. Closing at
 * once could turn unread input into a RST that destroys the reply. */
static void send_fin(kl_conn_t *c)
{
    if (c->shutdown_sent)
        return;
    c->shutdown_sent = 1;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        kl_conn_close(c, c->close_reason);
}

/* End the session after the reply already queued: no more requests are
 * processed, pushes stop, the connection closes when flushed. */
static void finish(kl_conn_t *c, const char *reason)
{
    if (c->closing || c->finishing)
        return;
    c->finishing = 1;
    c->close_reason = reason;
    kl_server_map_remove(c->srv, c);
    uv_timer_start(&c->timer, on_timer, KL_CONN_LINGER_MS, 0);
    if (c->wq_bytes == 0)
        send_fin(c);
    update_reading(c);
}

static void on_write(uv_write_t *req, int status)
{
    kl_outbuf_t *o = (kl_outbuf_t *)req;
    kl_conn_t *c = o->c;
    size_t cap = c->srv->cfg.write_queue;
    c->wq_bytes -= o->len;
    free(o);
    if (c->closing)
        return;
    if (status < 0) {
        kl_conn_close(c, "write failed");
        return;
    }
    if (c->finishing) {
        if (c->wq_bytes == 0)
            send_fin(c);
        return;
    }
    /* The queue drained after pushes were dropped for backpressure: one
     * empty push (id 0, more) tells the client to fetch what it missed. */
    if (c->missed && c->wq_bytes <= cap / 2) {
        c->missed = 0;
        Kollega__Relay__V1__Deliver d = KOLLEGA__RELAY__V1__DELIVER__INIT;
        kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
        d.more = 1;
        f.body_case = BODY(DELIVER);
        f.deliver = &d;
        kl_conn_send(c, &f, 0);
    }
    if (c->missed_groups && c->wq_bytes <= cap / 2)
        kl_conn_announce_groups(c);
    update_reading(c);
}

/* Hand c's sealed frames to libuv in one write. */
static void flush(kl_conn_t *c)
{
    kl_outbuf_t *o = c->out;
    flush_unlink(c);
    c->out = NULL;
    if (o->len == 0) {
        free(o);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)o->data, (unsigned)o->len);
    int r = uv_write(&o->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (r != 0) {
        c->wq_bytes -= o->len;
        free(o);
        kl_conn_close(c, "write failed");
    }
}

void kl_conn_flush_all(kl_server_t *s)
{
    while (s->flush_head)
        flush(s->flush_head);
}

/* len bytes were written at the end of c->out: account for them. */
static void out_commit(kl_conn_t *c, size_t len)
{
    c->out->len += len;
    c->wq_bytes += len;
    update_reading(c);
}

/* Seal a frame into c's write buffer: f, or (f NULL) the n bytes of an
 * already packed frame pt (kl_conn_send_packed). */
static void send_sealed(kl_conn_t *c, const kl_frame_t *f, const uint8_t *pt, size_t n,
                        int is_push)
{
    if (c->closing || c->finishing || !c->transport_ready)
        return;
    if (is_push && c->wq_bytes > c->srv->cfg.write_queue) {
        c->missed = 1;
        return;
    }
    if (f != NULL)
        n = kollega__relay__v1__frame__get_packed_size(f);
    if (n > KL_WIRE_MAX_FRAME) {
        kl_diag_conn(KL_DIAG_ERROR, c->id, c->peer, "cannot seal a frame: %s",
                    kl_strerror(KL_ETOOBIG));
        kl_conn_close(c, "internal error");
        return;
    }
    uint8_t *p = out_reserve(c, KL_WIRE_SIZE(n));
    if (p == NULL) {
        kl_conn_close(c, "out of memory");
        return;
    }
    size_t len = 0;
    uint64_t now = uv_now(c->srv->loop);
    int r = f != NULL ? kl_stream_seal_frame(&c->st, f, n, p, KL_WIRE_SIZE(n), &len, now)
                      : kl_stream_seal(&c->st, pt, n, p, KL_WIRE_SIZE(n), &len, now);
    if (r != 0) {
        kl_diag_conn(KL_DIAG_ERROR, c->id, c->peer, "cannot seal a frame: %s", kl_strerror(r));
        kl_conn_close(c, "internal error");
        return;
    }
    out_commit(c, len);
    if (f != NULL && f->body_case == BODY(ERROR) && f->error != NULL)
        kl_metrics_error_sent(c->srv->metrics, (unsigned)f->error->code);
}

void kl_conn_send(kl_conn_t *c, const kl_frame_t *f, int is_push)
{
    send_sealed(c, f, NULL, 0, is_push);
}

void kl_conn_send_packed(kl_conn_t *c, const uint8_t *pt, size_t n, int is_push)
{
    send_sealed(c, NULL, pt, n, is_push);
}

/* An error reply, then the end of the session. */
static void send_error_finish(kl_conn_t *c, uint32_t id, int code, const char *msg,
                              const char *reason)
{
    kl_reply_t r;
    kl_dispatch_error(&r, id, code, msg);
    kl_diag_conn(KL_DIAG_INFO, c->id, c->peer, "refused: %s", msg);
    kl_conn_send(c, &r.frame, 0);
    finish(c, reason);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    kl_conn_t *c = h->data;
    kl_server_t *s = c->srv;
    (void)hint;
    if (s->rbuf_busy) {
        *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
        return;
    }
    s->rbuf_busy = 1;
    *buf = uv_buf_init((char *)s->rbuf, sizeof s->rbuf);
}

/* Reading pauses while the write queue is over its cap, while too many
 * jobs are in flight, while the handshake is on the thread pool, and
 * while a register/auth is being checked (frames
 * already received then wait in the backlog, so a client may pipeline
 * requests behind its auth). It resumes below half the cap. A finishing
 * connection reads to discard until EOF. */
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void update_reading(kl_conn_t *c)
{
    if (c->closing)
        return;
    size_t cap = c->srv->cfg.write_queue;
    int busy = c->jobs >= KL_CONN_JOBS_SOFT || c->sess.auth_pending || c->hs_work != NULL;
    int pause = c->wq_bytes > cap || busy;
    int resume = c->wq_bytes <= cap / 2 && !busy;
    if (c->finishing) {
        pause = 0;
        resume = 1;
    }
    if (c->reading && pause) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    } else if (!c->reading && resume) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
        else
            kl_conn_close(c, "read failed");
    }
}

/* Dispatch one decoded frame (owned here). STOP when the connection is
 * finishing or closed afterwards. */
static int process(kl_conn_t *c, kl_frame_t *f)
{
    kl_server_t *s = c->srv;
    kl_dispatch_out_t out;
    int r = kl_dispatch_frame(&s->cfg.dispatch, &c->sess, f, kl_server_wall_ms(), &out);
    kl_wire_free(f);
    if (r != 0) {
        kl_conn_close(c, "out of memory");
        return STOP;
    }
    /* A fetch of a few bytes can produce a reply of ~64 KiB, and every
     * frame of one read is dispatched even after reading pauses. So each
     * fetch in flight counts as a full reply against the write-queue cap
     * (one is always allowed): otherwise a client pipelining fetches
     * without reading could make the relay queue KL_CONN_JOBS_HARD full
     * replies, many times the cap. */
    int too_many = out.job && c->jobs >= KL_CONN_JOBS_HARD;
    if (out.job && KL_JOB_IS_FETCH(out.job->kind) && c->fetches > 0 &&
        c->wq_bytes + (size_t)(c->fetches + 1) * KL_DELIVER_BUDGET > s->cfg.write_queue)
        too_many = 1;
    if (too_many) {
        /* Only reachable by a client that ignores backpressure. */
        uint32_t id = out.job->req_id;
        if (out.job->kind == KL_JOB_REGISTER || out.job->kind == KL_JOB_AUTH)
            c->sess.auth_pending = 0;
        kl_job_free(out.job);
        out.job = NULL;
        out.has_reply = 1;
        kl_dispatch_error(&out.reply, id, CODE(RATE_LIMITED),
                          "too many requests in flight: wait for replies");
    }
    if (out.job) {
        if (out.job->kind == KL_JOB_AUTH)
            c->auth_gen = s->admin_gen;
        out.job->owner = c;
        c->jobs++;
        if (KL_JOB_IS_FETCH(out.job->kind))
            c->fetches++;
        kl_server_submit(s, out.job);
    }
    if (out.has_reply)
        kl_conn_send(c, &out.reply.frame, 0);
    if (out.close && out.has_reply && out.reply.frame.body_case == BODY(ERROR))
        kl_diag_conn(KL_DIAG_INFO, c->id, c->peer, "refused: %s", out.reply.msg);
    int close = out.close;
    kl_dispatch_out_free(&out);
    if (close)
        finish(c, "protocol error");
    if (c->closing || c->finishing)
        return STOP;
    update_reading(c);
    return 0;
}

static void drain_backlog(kl_conn_t *c)
{
    while (c->n_backlog > 0 && !c->sess.auth_pending && !c->closing && !c->finishing) {
        kl_frame_t *f = c->backlog[0];
        c->n_backlog--;
        memmove(c->backlog, c->backlog + 1, c->n_backlog * sizeof c->backlog[0]);
        if (process(c, f) == STOP)
            break;
    }
}

/* The Noise handshake runs on libuv's thread pool: its three X25519
 * operations are most of what a connect costs the relay, and on the loop
 * thread they used one core only. The stream holds message 1 (it is
 * configured to defer it) and the worker answers it with
 * kl_stream_handshake; meanwhile nothing on the loop touches c->st:
 * reading pauses until the work is back (an NK client has nothing to send
 * before the answer anyway), nothing is sealed before transport_ready, and
 * the connection is not freed while the work is out (maybe_free). */
typedef struct hs_work {
    uv_work_t req;
    kl_conn_t *c;
    int r;
} hs_work_t;

/* Worker thread: NK responder, read "e, es", answer "e, ee", split. */
static void hs_run(uv_work_t *req)
{
    hs_work_t *w = req->data;
    w->r = kl_stream_handshake(&w->c->st);
}

static void hs_done(uv_work_t *req, int status)
{
    hs_work_t *w = req->data;
    kl_conn_t *c = w->c;
    int r = status != 0 ? KL_ESTATE : w->r;
    free(w);
    c->hs_work = NULL;
    if (c->closing || c->finishing) {
        maybe_free(c);
        return;
    }
    if (r != 0) {
        kl_diag_conn(KL_DIAG_INFO, c->id, c->peer, "handshake failed: %s", kl_strerror(r));
        kl_conn_close(c, "handshake failed");
        return;
    }
    size_t n = kl_stream_pending(&c->st), len = 0;
    uint8_t *out = out_reserve(c, n);
    if (out == NULL || kl_stream_take(&c->st, out, n, &len) != 0) {
        kl_conn_close(c, "out of memory");
        return;
    }
    memcpy(c->sess.hh, kl_stream_hh(&c->st), sizeof c->sess.hh);
    c->transport_ready = 1;
    kl_diag_conn(KL_DIAG_INFO, c->id, c->peer, "handshake done");
    out_commit(c, len); /* resumes reading */
}

/* The stream holds the client's first message: hand it to the thread pool. */
static void handshake(kl_conn_t *c)
{
    hs_work_t *w = malloc(sizeof *w);
    if (w == NULL) {
        kl_conn_close(c, "out of memory");
        return;
    }
    w->req.data = w;
    w->c = c;
    w->r = 0;
    if (uv_queue_work(c->srv->loop, &w->req, hs_run, hs_done) != 0) {
        free(w);
        kl_conn_close(c, "handshake failed");
        return;
    }
    c->hs_work = w;
    update_reading(c);
}

/* One decoded frame (owned here). */
static int on_frame(kl_conn_t *c, kl_frame_t *f)
{
    kl_metrics_frame_received(c->srv->metrics, (unsigned)f->body_case);
    if (c->sess.auth_pending) {
        if (c->n_backlog == KL_CONN_BACKLOG) {
            uint32_t id = f->id;
            kl_wire_free(f);
            send_error_finish(c, id, CODE(BAD_REQUEST),
                              "too many requests before authentication completed",
                              "backlog overflow");
            return STOP;
        }
        c->backlog[c->n_backlog++] = f;
        return 0;
    }
    return process(c, f);
}

/* The stream's input failed (its reason is a static phrase). Before the
 * handshake nothing can be answered. After it a bad L1 length or an
 * undecodable frame is answered, sealed, before the end; a frame that
 * failed decryption is not: nothing can be said on a broken channel. */
static void stream_failed(kl_conn_t *c, int err, const char *reason)
{
    if (c->transport_ready && (err == KL_ETOOBIG || err == KL_EPROTO))
        send_error_finish(c, 0, CODE(BAD_REQUEST), reason, reason);
    else
        kl_conn_close(c, reason);
}

static int on_event(void *ud, kl_stream_event_t *ev)
{
    kl_conn_t *c = ud;
    if (c->closing || c->finishing) {
        if (ev->type == KL_STREAM_EV_FRAME)
            kl_wire_free(ev->frame);
        return STOP;
    }
    switch (ev->type) {
    case KL_STREAM_EV_HANDSHAKE: /* answered once the feed is over (on_read) */
    case KL_STREAM_EV_READY:     /* only kl_stream_handshake completes it here */
        return 0;
    case KL_STREAM_EV_FRAME:
        return on_frame(c, ev->frame);
    case KL_STREAM_EV_ERROR:
        stream_failed(c, ev->err, ev->reason);
        return STOP;
    }
    return STOP;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    kl_conn_t *c = st->data;
    c->srv->rbuf_busy = 0;
    (void)buf;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        kl_conn_close(c, nread == UV_EOF ? "peer closed" : "read error");
        return;
    }
    if (c->finishing)
        return; /* discard until EOF */
    (void)kl_stream_feed(&c->st, (const uint8_t *)buf->base, (size_t)nread,
                         uv_now(c->srv->loop), on_event, c); /* failures: on_event */
    if (!c->closing && !c->finishing && c->hs_work == NULL && kl_stream_held(&c->st))
        handshake(c);
}

static void on_timer(uv_timer_t *t)
{
    kl_conn_t *c = t->data;
    kl_server_t *s = c->srv;
    if (c->closing)
        return;
    if (c->finishing) {
        kl_conn_close(c, c->close_reason);
        return;
    }
    if (!c->sess.authed) {
        kl_conn_close(c, c->transport_ready ? "authentication timeout" : "handshake timeout");
        return;
    }
    uint64_t now = uv_now(s->loop), next = 0;
    if (kl_stream_tick(&c->st, now, &next) == KL_ETIMEDOUT) {
        kl_conn_close(c, "idle timeout");
        return;
    }
    uv_timer_start(&c->timer, on_timer, next - now, 0);
}

/* The Ed25519 verification of an auth, like the handshake, runs on the
 * thread pool (kl_dispatch_auth_verify touches the job only); the job then
 * comes back through kl_conn_job_done. The job still counts in c->jobs
 * meanwhile, so the connection is not freed under it. */
typedef struct auth_work {
    uv_work_t req;
    kl_conn_t *c;
    kl_job_t *job;
    uint8_t hh[64];
} auth_work_t;

static void auth_run(uv_work_t *req)
{
    auth_work_t *w = req->data;
    kl_dispatch_auth_verify(w->hh, w->job);
}

static void auth_done(uv_work_t *req, int status)
{
    auth_work_t *w = req->data;
    kl_conn_t *c = w->c;
    kl_job_t *job = w->job;
    if (status != 0 || job->u.auth.verified == 0)
        job->u.auth.verified = -1; /* cancelled: never counts as verified */
    kl_free_wipe(w, sizeof *w);
    kl_conn_job_done(c, job);
}

/* 1 if the job went to the thread pool, 0 to finish it here. */
static int auth_offload(kl_conn_t *c, kl_job_t *job)
{
    if (job->kind != KL_JOB_AUTH || job->result != 0 || job->u.auth.verified != 0 ||
        c->closing || c->finishing)
        return 0;
    auth_work_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return 0;
    w->req.data = w;
    w->c = c;
    w->job = job;
    memcpy(w->hh, c->sess.hh, sizeof w->hh);
    if (uv_queue_work(c->srv->loop, &w->req, auth_run, auth_done) != 0) {
        kl_free_wipe(w, sizeof *w);
        return 0;
    }
    return 1;
}

void kl_conn_job_done(kl_conn_t *c, kl_job_t *job)
{
    kl_server_t *s = c->srv;
    kl_dispatch_out_t out;
    if (auth_offload(c, job))
        return;
    int was_authed = c->sess.authed;
    /* An account was removed or re-keyed since this auth read it: what it
     * read may be stale, so the client is asked to retry. */
    if (job->kind == KL_JOB_AUTH && job->result == 0 && c->auth_gen != s->admin_gen)
        job->result = KL_EIO;
    c->jobs--;
    if (KL_JOB_IS_FETCH(job->kind))
        c->fetches--;
    kl_dispatch_complete(&s->cfg.dispatch, &c->sess, job, &out);
    if (!c->closing && !c->finishing) {
        if (out.has_reply)
            kl_conn_send(c, &out.reply.frame, 0);
        if (out.event && c->sess.authed && !was_authed)
            kl_diag_user(KL_DIAG_INFO, c->id, c->peer, c->sess.handle, "%s", out.event);
        else if (out.event)
            kl_diag_conn(KL_DIAG_INFO, c->id, c->peer, "%s", out.event);
        if (c->sess.authed && !was_authed) {
            kl_server_map_add(s, c);
            kl_stream_keepalive(&c->st, (uint64_t)s->cfg.idle_timeout_s * 1000, 0);
            uv_timer_start(&c->timer, on_timer, (uint64_t)s->cfg.idle_timeout_s * 1000, 0);
        }
    }
    /* A committed send pushes to its recipient even if the sender is gone. */
    if (out.has_push && out.push_users)
        kl_server_push_list(s, out.push_users, out.n_push_users, &out.push.frame, c,
                            out.push_group);
    else if (out.has_push)
        kl_server_push(s, out.push_user, &out.push.frame);
    if (out.has_push && out.n_notify && out.notify_channel) /* mirrors (fed_channel.c) */
        kl_fed_channel_notify(s->fed, out.push_group, out.notify, out.n_notify);
    else if (out.has_push && out.n_notify) /* group members on other relays (fed_group.c) */
        kl_fed_group_notify(s->fed, out.push_group, out.notify, out.n_notify,
                            out.push.frame.body_case == KOLLEGA__RELAY__V1__FRAME__BODY_GROUP_LOG);
    /* A reset invite gave this account a new key: the old key's
     * connections go. */
    if (job->kind == KL_JOB_REGISTER && job->result == 0 && job->u.reg.user.rekeyed)
        kl_diag(KL_DIAG_INFO, "an account's identity key was replaced (%u old connections closed)",
               kl_server_drop_user(s, job->u.reg.user.id, c, "identity key replaced"));
    int close = out.close;
    kl_dispatch_out_free(&out);
    kl_job_free(job);
    if (c->closing) {
        maybe_free(c);
        return;
    }
    if (close) {
        finish(c, "authentication failed");
        return;
    }
    update_reading(c);
    drain_backlog(c);
}

static void free_handle(uv_handle_t *h)
{
    free(h->data);
}

/* Accept and close at once: over the connection limit, shutting down, or
 * out of memory. Accepting (rather than leaving the connection in the
 * kernel backlog) keeps libuv from reporting it again and again. */
static void refuse(kl_server_t *s, const char *why)
{
    uv_tcp_t *tcp = malloc(sizeof *tcp);
    if (tcp == NULL)
        return;
    uv_tcp_init(s->loop, tcp);
    tcp->data = tcp;
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)tcp) == 0)
        kl_diag(KL_DIAG_WARN, "refused a connection: %s", why);
    uv_close((uv_handle_t *)tcp, free_handle);
}

void kl_conn_accept(kl_server_t *s)
{
    if (s->stopping) {
        refuse(s, "shutting down");
        return;
    }
    if (s->n_conns >= s->cfg.max_connections) {
        refuse(s, "at max connections");
        return;
    }
    kl_conn_t *c = calloc(1, sizeof *c);
    kl_stream_config_t sc = {.pattern = KL_NOISE_NK,
                             .initiator = 0,
                             .prologue = (const uint8_t *)KL_PROLOGUE_CLIENT,
                             .prologue_len = strlen(KL_PROLOGUE_CLIENT),
                             .s = s->static_sk,
                             .hs_max = KL_CONN_HS_MAX,
                             .frame_max = KL_FRAME_MAX,
                             .defer = 1};
    if (c == NULL || kl_stream_init(&c->st, &sc, uv_now(s->loop)) != 0) {
        if (c != NULL)
            kl_stream_free(&c->st);
        free(c);
        refuse(s, "out of memory");
        return;
    }
    uv_tcp_t *tcp = &c->tcp;
    uv_tcp_init(s->loop, tcp);
    tcp->data = c;
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)tcp) != 0) {
        kl_stream_free(&c->st);
        uv_close((uv_handle_t *)tcp, free_handle);
        return;
    }
    c->srv = s;
    c->id = ++s->next_conn_id;
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    uv_timer_init(s->loop, &c->timer);
    kl_client_state_init(&c->sess, &s->cfg.dispatch, kl_server_wall_ms());
    /* Link first: every later failure goes through kl_conn_close. */
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    c->linked = 1;
    kl_tcp_name(tcp, 0, c->peer, sizeof c->peer);
    kl_diag_conn(KL_DIAG_INFO, c->id, c->peer, "accepted");
    uv_tcp_nodelay(tcp, 1);
    uv_timer_start(&c->timer, on_timer, (uint64_t)s->cfg.handshake_timeout_s * 1000, 0);
    update_reading(c);
}
