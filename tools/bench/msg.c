/* The message workloads. Each of P pairs has a sender connection and a
 * recipient connection (users registered for the run).
 *
 *   direct:  closed loop; each sender keeps W sends outstanding until N
 *            messages (over all pairs) are acknowledged with `sent`.
 *   latency: open loop at R msg/s over all pairs: message j of pair k is
 *            due at t0 + (j*P + k)/R and its latencies are measured from
 *            that due time, not from when it could be sent, so queuing in
 *            the relay (or the bench) is not hidden (coordinated omission).
 *
 * A send's request id carries its slot (low 16 bits, 1..65535) and a
 * generation (high 16 bits), so `sent` and `error` replies find their send
 * time without a search. Recipients take `deliver` pushes, count each seq
 * once, ack the highest seq every ACK_EVERY entries or ACK_MS, and fetch
 * after their last seq when the relay says it dropped pushes (more=1). */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kollega/err.h"
#include "relay.pb-c.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define ACK_EVERY 64
#define ACK_MS 5
#define LATENCY_SLOTS 4096
#define FETCH_LIMIT 500

typedef struct msgrun msgrun_t;

typedef struct pair {
    msgrun_t *m;
    uint32_t index;
    kb_conn_t *snd, *rcv;
    char to[KL_ADDR_MAX + 1];
    uint8_t *body;
    uint64_t target, issued, ok, err;
    uint64_t delivered, last_seq, acked_seq, unacked;
    int fetching, dead;
    uint64_t *slot_t;        /* send time (ns) per slot */
    uint32_t *slot_id;       /* request id per slot, 0 = free */
    uint32_t *free_slots;
    uint32_t n_free, n_slots;
    uint16_t gen;
} pair_t;

struct msgrun {
    kb_run_t *run;
    int open_loop;
    pair_t *pairs;
    size_t n_pairs;
    kb_conn_t *conns;        /* 2P: senders then recipients */
    uint64_t t0_ns;          /* open loop schedule origin */
    double ns_per_msg;       /* open loop: 1e9 / R */
    uint64_t total_ok, total_delivered, total_target;
    int done;
    uv_timer_t ack_timer, tick, progress, deadline;
};

static void check_done(msgrun_t *m);

static uint64_t due_ns(const msgrun_t *m, const pair_t *p, uint64_t j)
{
    return m->t0_ns + (uint64_t)(((double)j * (double)m->n_pairs + p->index) * m->ns_per_msg);
}

static int send_one(pair_t *p, uint64_t t_ns)
{
    uint32_t slot = p->free_slots[--p->n_free];
    uint32_t id = ((uint32_t)p->gen++ << 16) | (slot + 1);
    uint64_t counter = p->issued;
    memcpy(p->body, &t_ns, 8);
    memcpy(p->body + 8, &p->index, 4);
    memcpy(p->body + 12, &counter, 8);
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = p->to;
    sd.body.data = p->body;
    sd.body.len = p->m->run->o->body;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.id = id;
    f.body_case = BODY(SEND);
    f.send = &sd;
    p->slot_t[slot] = t_ns;
    p->slot_id[slot] = id;
    p->issued++;
    return kb_conn_send(p->snd, &f);
}

/* Send what the window (direct) or the schedule (latency) allows. */
static void pump(pair_t *p)
{
    msgrun_t *m = p->m;
    if (p->dead)
        return;
    uint64_t now = kb_now_ns();
    while (p->issued < p->target && p->n_free > 0) {
        uint64_t t = now;
        if (m->open_loop) {
            t = due_ns(m, p, p->issued);
            if (t > now)
                break;
        }
        if (send_one(p, t) != 0)
            return;
    }
}

static void send_ack(pair_t *p)
{
    Kollega__Relay__V1__Ack a = KOLLEGA__RELAY__V1__ACK__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    a.seq = p->last_seq;
    f.id = kb_conn_ctl_id(p->rcv);
    f.body_case = BODY(ACK);
    f.ack = &a;
    p->acked_seq = p->last_seq;
    p->unacked = 0;
    kb_conn_send(p->rcv, &f);
}

static void send_fetch(pair_t *p)
{
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    fe.after = p->last_seq;
    fe.limit = FETCH_LIMIT;
    f.id = kb_conn_ctl_id(p->rcv);
    f.body_case = BODY(FETCH);
    f.fetch = &fe;
    p->fetching = 1;
    kb_conn_send(p->rcv, &f);
}

/* A reply to a send: find its slot by the id. */
static void send_settled(pair_t *p, uint32_t id, int err_code)
{
    msgrun_t *m = p->m;
    uint32_t slot = (id & 0xffffu) - 1;
    if ((id & 0xffffu) == 0 || slot >= p->n_slots || p->slot_id[slot] != id) {
        kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
        return;
    }
    p->slot_id[slot] = 0;
    p->free_slots[p->n_free++] = slot;
    if (err_code) {
        p->err++;
        kb_result_error(&m->run->res, err_code);
    } else {
        kb_hist_record(&m->run->ack, kb_now_ns() - p->slot_t[slot]);
        p->ok++;
        m->total_ok++;
    }
    pump(p);
    check_done(m);
}

static void on_deliver(pair_t *p, const kl_frame_t *f)
{
    msgrun_t *m = p->m;
    const Kollega__Relay__V1__Deliver *d = f->deliver;
    uint64_t now = kb_now_ns();
    for (size_t i = 0; i < d->n_entries; i++) {
        const Kollega__Relay__V1__Entry *e = d->entries[i];
        if (e->seq <= p->last_seq) {
            m->run->res.duplicates++;
            continue;
        }
        p->last_seq = e->seq;
        uint64_t t;
        uint32_t idx;
        if (e->body.len != m->run->o->body) {
            kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
            continue;
        }
        memcpy(&t, e->body.data, 8);
        memcpy(&idx, e->body.data + 8, 4);
        if (idx != p->index) {
            kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
            continue;
        }
        kb_hist_record(&m->run->delivery, now > t ? now - t : 0);
        p->delivered++;
        p->unacked++;
        m->total_delivered++;
    }
    if (p->unacked >= ACK_EVERY)
        send_ack(p);
    if (f->id != 0)
        p->fetching = 0;
    if (d->more && !p->fetching)
        send_fetch(p);
    check_done(m);
}

static void on_ready(kb_conn_t *c)
{
    (void)c; /* connections are ready before the workload takes them */
}

static void on_frame(kb_conn_t *c, const kl_frame_t *f)
{
    pair_t *p = c->ud;
    msgrun_t *m = p->m;
    int from_send = (f->id & 0xffffu) != 0;
    switch (f->body_case) {
    case BODY(SENT):
        if (c == p->snd)
            send_settled(p, f->id, 0);
        else
            kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
        break;
    case BODY(ERROR):
        if (c == p->snd && from_send) {
            int code = (int)f->error->code > 0 && (int)f->error->code < (int)KB_ERR_CONNECT
                           ? (int)f->error->code : KB_ERR_PROTOCOL;
            send_settled(p, f->id, code);
        } else {
            kb_result_error(&m->run->res, (int)f->error->code);
            if (c == p->rcv && f->id != 0)
                p->fetching = 0;
        }
        break;
    case BODY(DELIVER):
        if (c == p->rcv)
            on_deliver(p, f);
        else
            kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
        break;
    case BODY(OK):
        break; /* an ack's answer */
    default:
        kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
    }
}

static void on_failed(kb_conn_t *c, int kind)
{
    pair_t *p = c->ud;
    kb_result_error(&p->m->run->res, kind);
    p->dead = 1;
    kb_conn_close(p->snd);
    kb_conn_close(p->rcv);
    check_done(p->m);
}

static void on_closed(kb_conn_t *c)
{
    (void)c;
}

static const kb_conn_ops_t MSG_OPS = {on_ready, on_frame, on_failed, on_closed};

static void check_done(msgrun_t *m)
{
    if (m->done)
        return;
    for (size_t i = 0; i < m->n_pairs; i++) {
        const pair_t *p = &m->pairs[i];
        if (!p->dead && (p->ok + p->err < p->target || p->delivered < p->ok))
            return;
    }
    m->done = 1;
    uv_stop(m->run->net.loop);
}

static void on_ack_timer(uv_timer_t *t)
{
    msgrun_t *m = t->data;
    for (size_t i = 0; i < m->n_pairs; i++)
        if (!m->pairs[i].dead && m->pairs[i].last_seq > m->pairs[i].acked_seq)
            send_ack(&m->pairs[i]);
}

static void on_tick(uv_timer_t *t)
{
    msgrun_t *m = t->data;
    for (size_t i = 0; i < m->n_pairs; i++)
        pump(&m->pairs[i]);
}

static void on_progress(uv_timer_t *t)
{
    msgrun_t *m = t->data;
    double s = (double)(kb_now_ns() - m->t0_ns) / 1e9;
    kb_progress(m->run, "%s: %llu/%llu acknowledged, %llu delivered, %.0f msg/s",
                m->run->o->workload, (unsigned long long)m->total_ok,
                (unsigned long long)m->total_target, (unsigned long long)m->total_delivered,
                s > 0 ? (double)m->total_ok / s : 0);
}

static void on_deadline(uv_timer_t *t)
{
    msgrun_t *m = t->data;
    kb_progress(m->run, "%s: deadline reached, giving up on what is outstanding",
                m->run->o->workload);
    m->done = 1;
    uv_stop(m->run->net.loop);
}

static void pairs_free(msgrun_t *m)
{
    for (size_t i = 0; m->pairs && i < m->n_pairs; i++) {
        free(m->pairs[i].body);
        free(m->pairs[i].slot_t);
        free(m->pairs[i].slot_id);
        free(m->pairs[i].free_slots);
    }
    free(m->pairs);
    free(m->conns);
}

static int pairs_make(msgrun_t *m, uint64_t total, uint32_t slots)
{
    const kb_opts_t *o = m->run->o;
    m->pairs = calloc(m->n_pairs, sizeof *m->pairs);
    if (m->pairs == NULL)
        return KL_ENOMEM;
    for (size_t i = 0; i < m->n_pairs; i++) {
        pair_t *p = &m->pairs[i];
        p->m = m;
        p->index = (uint32_t)i;
        p->snd = &m->conns[i];
        p->rcv = &m->conns[m->n_pairs + i];
        p->target = total / m->n_pairs + (i < total % m->n_pairs ? 1 : 0);
        snprintf(p->to, sizeof p->to, "%s@%s", m->run->users[m->n_pairs + i].handle,
                 kb_user_net(m->run, m->n_pairs + i)->relay_name);
        p->body = malloc(o->body);
        p->slot_t = calloc(slots, sizeof *p->slot_t);
        p->slot_id = calloc(slots, sizeof *p->slot_id);
        p->free_slots = calloc(slots, sizeof *p->free_slots);
        if (!p->body || !p->slot_t || !p->slot_id || !p->free_slots)
            return KL_ENOMEM;
        kl_random(p->body, o->body);
        p->n_slots = p->n_free = slots;
        for (uint32_t s = 0; s < slots; s++)
            p->free_slots[s] = slots - 1 - s;
        p->snd->ops = p->rcv->ops = &MSG_OPS;
        p->snd->ud = p->rcv->ud = p;
    }
    return 0;
}

/* What was not settled by the deadline counts as errors. */
static void tally(msgrun_t *m)
{
    kb_result_t *r = &m->run->res;
    for (size_t i = 0; i < m->n_pairs; i++) {
        const pair_t *p = &m->pairs[i];
        for (uint64_t k = p->ok + p->err; k < p->target; k++)
            kb_result_error(r, p->dead ? KB_ERR_CLOSED : KB_ERR_UNANSWERED);
        for (uint64_t k = p->delivered; k < p->ok; k++)
            kb_result_error(r, KB_ERR_MISSING);
    }
    r->sent_ok = m->total_ok;
    r->delivered = m->total_delivered;
    r->ack = &m->run->ack;
    r->delivery = &m->run->delivery;
}

static int run_msgs(kb_run_t *run, int open_loop)
{
    const kb_opts_t *o = run->o;
    msgrun_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return KL_ENOMEM;
    int rc = KL_ENOMEM;
    m->run = run;
    m->open_loop = open_loop;
    m->n_pairs = o->pairs;
    m->total_target = open_loop ? (uint64_t)((double)o->rate * o->duration) : o->messages;
    if (open_loop && o->messages)
        m->total_target = o->messages;
    m->conns = calloc(2 * m->n_pairs, sizeof *m->conns);
    if (m->conns == NULL)
        goto out;
    uint64_t ready = kb_open_phase(run, 2 * m->n_pairs, 1, 256, m->conns, 0, NULL, "register");
    if (ready != 2 * m->n_pairs) {
        kb_progress(run, "only %llu of %llu users registered: giving up",
                    (unsigned long long)ready, (unsigned long long)(2 * m->n_pairs));
        kb_close_all(run, m->conns, 2 * m->n_pairs);
        rc = KL_EREFUSED;
        goto out;
    }
    if (pairs_make(m, m->total_target, open_loop ? LATENCY_SLOTS : (uint32_t)o->window) != 0) {
        kb_close_all(run, m->conns, 2 * m->n_pairs);
        goto out;
    }

    uv_loop_t *loop = run->net.loop;
    uv_timer_t *timers[] = {&m->ack_timer, &m->tick, &m->progress, &m->deadline};
    for (size_t i = 0; i < 4; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = m;
    }
    kb_meter_t meter;
    kb_meter_start(run, &meter);
    m->t0_ns = meter.t0_ns;
    m->ns_per_msg = open_loop ? 1e9 / (double)o->rate : 0;
    uv_timer_start(&m->ack_timer, on_ack_timer, ACK_MS, ACK_MS);
    uv_timer_start(&m->progress, on_progress, 2000, 2000);
    double limit = o->timeout + (open_loop ? (double)m->total_target / (double)o->rate : 0);
    uv_timer_start(&m->deadline, on_deadline, (uint64_t)(limit * 1000), 0);
    if (open_loop)
        uv_timer_start(&m->tick, on_tick, 1, 1);
    for (size_t i = 0; i < m->n_pairs; i++)
        pump(&m->pairs[i]);
    check_done(m);
    if (!m->done)
        uv_run(loop, UV_RUN_DEFAULT);
    kb_meter_stop(run, &meter);
    if (run->res.elapsed_s > 0)
        run->res.throughput = (double)m->total_ok / run->res.elapsed_s;
    for (size_t i = 0; i < 4; i++)
        uv_timer_stop(timers[i]);
    /* Leave the inboxes empty: ack what arrived, then close. */
    for (size_t i = 0; i < m->n_pairs; i++)
        if (!m->pairs[i].dead && m->pairs[i].last_seq > m->pairs[i].acked_seq)
            send_ack(&m->pairs[i]);
    kb_run_for(run, 100);
    tally(m);
    kb_close_all(run, m->conns, 2 * m->n_pairs);
    for (size_t i = 0; i < 4; i++)
        uv_close((uv_handle_t *)timers[i], NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    rc = 0;
out:
    pairs_free(m);
    free(m);
    return rc;
}

int kb_run_direct(kb_run_t *run)
{
    return run_msgs(run, 0);
}

int kb_run_latency(kb_run_t *run)
{
    return run_msgs(run, 1);
}
