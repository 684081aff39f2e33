/* The broadcast workload: one channel, S subscribers, P posts. Every
 * subscriber is one registered user with one connection; user 0 is the
 * channel's owner and only publisher. Setup (not measured): the owner
 * creates "!<prefix>c@relay" with a real signed create op (kl_channel_op_build
 * against its validated state, as a client does) and every subscriber
 * subscribes.
 *
 * Measured: the publisher keeps W posts outstanding until N posts are
 * acknowledged with `sent`; each post is a real SignedPost
 * (kl_channel_post_build) whose text carries its send time. The relay
 * stores each post ONCE and pushes it to every subscriber's connection, so
 * a run delivers N * S posts. Subscribers count each channel seq once (a
 * ring bitmap above their contiguous seq) and fetch after their contiguous
 * seq when the relay announces dropped pushes (deliver{channel, more}).
 * They do not ack during the measured phase, so that the relay still holds
 * every post when the run reads its storage (spawned relay only: entries
 * and bytes from `kollega-relay status --json` before and after; per post
 * this must not grow with S). Then every subscriber acks and the run ends.
 *
 * --cross-relay: two federated relays; the channel lives on the first (its
 * home), with the publisher and the first half of the subscribers. The
 * other half are users of the second relay and subscribe to the same
 * "!...c@<first>" there: that relay subscribes itself once at the home,
 * stores each post once in its mirror of the channel and announces it to
 * them with deliver{channel, more} (no entries), so they fetch after their
 * contiguous seq. Their seqs are the mirror log's own, not the home's: a
 * remote subscriber is done when it has counted every acknowledged post.
 * Storage is read on both relays: the target is one entry per post on
 * each, whatever S is.
 *
 * Post text: "kbt:" | send time (16 hex digits, ns) | counter (8 hex) |
 * padding to the body size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kollega/channel.h"
#include "kollega/err.h"
#include "relay.pb-c.h"
#include "spawn.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define FETCH_LIMIT 500
#define RING 65536u
#define MARK "kbt:"
#define MARK_LEN 4
#define STAMP_LEN (MARK_LEN + 16 + 8)

typedef struct brun brun_t;

typedef struct sub {
    brun_t *m;
    kb_conn_t *c;
    uint64_t contig, delivered;
    uint8_t *ring;           /* bit s % RING: seq s seen, for s in (contig, contig + RING) */
    int fetching, dead;
    int again;               /* more was announced while a fetch was out */
    int remote;              /* a user of the second relay (mirror seqs) */
} sub_t;

struct brun {
    kb_run_t *run;
    size_t S;
    kb_conn_t *conns;        /* [0] the publisher, [1..S] the subscribers */
    sub_t *subs;
    kl_channel_t *state;     /* the publisher's validated view */
    char address[KL_ADDR_MAX + 1];
    char self[KL_ADDR_MAX + 1];
    char *text;              /* post text buffer (body bytes + NUL) */
    /* publisher */
    uint64_t target, issued, ok, err, max_seq;
    uint64_t *slot_t;
    uint32_t *slot_id, *free_slots;
    uint32_t n_free, n_slots;
    uint16_t gen;
    int pub_dead;
    /* progress */
    uint64_t t0_ns, delivered;
    size_t subscribed;
    int setting_up, created, failed, done;
    uv_timer_t progress, deadline;
};

static void check_done(brun_t *m);

static int ring_test(const sub_t *p, uint64_t s)
{
    return (p->ring[(s % RING) / 8] >> (s % 8)) & 1;
}

static void ring_set(sub_t *p, uint64_t s, int v)
{
    uint8_t bit = (uint8_t)(1u << (s % 8));
    if (v)
        p->ring[(s % RING) / 8] |= bit;
    else
        p->ring[(s % RING) / 8] &= (uint8_t)~bit;
}

/* Mark seq s seen; 1 if new. */
static int seen(sub_t *p, uint64_t s)
{
    if (s <= p->contig || s >= p->contig + RING || ring_test(p, s))
        return 0;
    ring_set(p, s, 1);
    while (ring_test(p, p->contig + 1)) {
        ring_set(p, p->contig + 1, 0);
        p->contig++;
    }
    return 1;
}

static void setup_failed(brun_t *m, const char *why)
{
    kb_progress(m->run, "broadcast setup failed: %s", why);
    m->failed = 1;
    uv_stop(m->run->net.loop);
}

/* ---- setup: create, subscribe ------------------------------------------ */

static void create_channel(brun_t *m)
{
    kb_conn_t *c = &m->conns[0];
    uint8_t *op = NULL;
    size_t len = 0;
    int r = kl_channel_op_build(m->state, c->user->sk, c->user->pk, m->self, 0, KL_COP_CREATE,
                                NULL, NULL, &op, &len);
    if (r == 0)
        r = kl_channel_apply(m->state, op, len, NULL, NULL);
    if (r == 0) {
        Kollega__Relay__V1__ChannelOp co = KOLLEGA__RELAY__V1__CHANNEL_OP__INIT;
        kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
        co.signed_op.data = op;
        co.signed_op.len = len;
        fr.id = kb_conn_ctl_id(c);
        fr.body_case = BODY(CHANNEL_OP);
        fr.channel_op = &co;
        r = kb_conn_send(c, &fr);
    }
    free(op);
    if (r != 0)
        setup_failed(m, "cannot build or send the create op");
}

static void subscribe_all(brun_t *m)
{
    for (size_t i = 0; i < m->S; i++) {
        Kollega__Relay__V1__Subscribe s = KOLLEGA__RELAY__V1__SUBSCRIBE__INIT;
        kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
        s.channel = m->address;
        fr.id = kb_conn_ctl_id(m->subs[i].c);
        fr.body_case = BODY(SUBSCRIBE);
        fr.subscribe = &s;
        kb_conn_send(m->subs[i].c, &fr);
    }
}

/* ---- measured phase ---------------------------------------------------- */

static const char HEX[] = "0123456789abcdef";

static void put_hex(char *out, uint64_t v, int digits)
{
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        out[i] = HEX[v & 15];
}

static int get_hex(const uint8_t *in, int digits, uint64_t *v)
{
    *v = 0;
    for (int i = 0; i < digits; i++) {
        const char *d = memchr(HEX, in[i], 16);
        if (d == NULL || in[i] == '\0')
            return -1;
        *v = (*v << 4) | (uint64_t)(d - HEX);
    }
    return 0;
}

static int post_one(brun_t *m)
{
    kb_conn_t *c = &m->conns[0];
    uint32_t slot = m->free_slots[--m->n_free];
    uint32_t id = ((uint32_t)m->gen++ << 16) | (slot + 1);
    uint64_t t = kb_now_ns();
    uint8_t pid[16];
    uint8_t *post = NULL;
    size_t len = 0;
    memcpy(m->text, MARK, MARK_LEN);
    put_hex(m->text + MARK_LEN, t, 16);
    put_hex(m->text + MARK_LEN + 16, m->issued & 0xffffffffu, 8);
    kl_random(pid, sizeof pid);
    int r = kl_channel_post_build(m->state, c->user->sk, c->user->pk, m->self, pid,
                                  t / 1000000, m->text, &post, &len);
    if (r != 0) {
        m->free_slots[m->n_free++] = slot;
        return r;
    }
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = m->address;
    sd.body.data = post;
    sd.body.len = len;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.id = id;
    f.body_case = BODY(SEND);
    f.send = &sd;
    m->slot_t[slot] = t;
    m->slot_id[slot] = id;
    m->issued++;
    r = kb_conn_send(c, &f);
    free(post);
    return r;
}

static void pump(brun_t *m)
{
    while (!m->pub_dead && m->issued < m->target && m->n_free > 0)
        if (post_one(m) != 0)
            return;
}

static void send_fetch(sub_t *p)
{
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    fe.after = p->contig;
    fe.limit = FETCH_LIMIT;
    fe.channel = p->m->address;
    f.id = kb_conn_ctl_id(p->c);
    f.body_case = BODY(FETCH);
    f.fetch = &fe;
    p->fetching = 1;
    kb_conn_send(p->c, &f);
}

static void send_ack(sub_t *p)
{
    Kollega__Relay__V1__Ack a = KOLLEGA__RELAY__V1__ACK__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    a.seq = p->contig;
    a.channel = p->m->address;
    f.id = kb_conn_ctl_id(p->c);
    f.body_case = BODY(ACK);
    f.ack = &a;
    kb_conn_send(p->c, &f);
}

static void post_settled(brun_t *m, uint32_t id, uint64_t seq, int err_code)
{
    uint32_t slot = (id & 0xffffu) - 1;
    if ((id & 0xffffu) == 0 || slot >= m->n_slots || m->slot_id[slot] != id) {
        kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
        return;
    }
    m->slot_id[slot] = 0;
    m->free_slots[m->n_free++] = slot;
    if (err_code) {
        m->err++;
        kb_result_error(&m->run->res, err_code);
    } else {
        kb_hist_record(&m->run->ack, kb_now_ns() - m->slot_t[slot]);
        m->ok++;
        if (seq > m->max_seq)
            m->max_seq = seq;
    }
    pump(m);
    check_done(m);
}

/* The first MARK in b[0..len), or NULL. */
static const uint8_t *find_mark(const uint8_t *b, size_t len)
{
    for (size_t i = 0; i + MARK_LEN <= len; i++)
        if (b[i] == MARK[0] && memcmp(b + i, MARK, MARK_LEN) == 0)
            return b + i;
    return NULL;
}

static void on_deliver(sub_t *p, const kl_frame_t *f)
{
    brun_t *m = p->m;
    const Kollega__Relay__V1__Deliver *d = f->deliver;
    uint64_t now = kb_now_ns();
    if (d->channel == NULL || strcmp(d->channel, m->address) != 0) {
        kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
        return;
    }
    for (size_t i = 0; i < d->n_entries; i++) {
        const Kollega__Relay__V1__Entry *e = d->entries[i];
        const uint8_t *at = find_mark(e->body.data, e->body.len);
        uint64_t t = 0;
        if (at == NULL || (size_t)(e->body.data + e->body.len - at) < STAMP_LEN ||
            get_hex(at + MARK_LEN, 16, &t) != 0) {
            kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
            continue;
        }
        if (!seen(p, e->seq)) {
            m->run->res.duplicates++;
            continue;
        }
        kb_hist_record(&m->run->delivery, now > t ? now - t : 0);
        p->delivered++;
        m->delivered++;
    }
    /* An announcement that arrives while a fetch is out may be of posts
     * stored after that fetch was read: fetch again once it is answered. */
    if (f->id != 0)
        p->fetching = 0;
    if (d->more || (f->id != 0 && p->again)) {
        p->again = p->fetching;
        if (!p->fetching)
            send_fetch(p);
    }
    check_done(m);
}

static void on_ready(kb_conn_t *c)
{
    (void)c;
}

/* An error answer's kind for the result (relay codes keep their numbers). */
static int err_kind(const kl_frame_t *f)
{
    int code = (int)f->error->code;
    return code > 0 && code < (int)KB_ERR_CONNECT ? code : KB_ERR_PROTOCOL;
}

/* The publisher's connection (ud: the run). */
static void pub_frame(kb_conn_t *c, const kl_frame_t *f)
{
    brun_t *m = c->ud;
    int from_send = (f->id & 0xffffu) != 0;
    switch (f->body_case) {
    case BODY(CHANNEL_OP_ACCEPTED):
        if (m->setting_up && !m->created) {
            m->created = 1;
            subscribe_all(m);
        }
        break;
    case BODY(SENT):
        post_settled(m, f->id, f->sent->seq, 0);
        break;
    case BODY(ERROR):
        if (from_send) {
            post_settled(m, f->id, 0, err_kind(f));
        } else {
            kb_result_error(&m->run->res, err_kind(f));
            if (m->setting_up)
                setup_failed(m, f->error->message ? f->error->message : "refused");
        }
        break;
    default:
        kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
    }
}

/* A subscriber's connection (ud: its sub_t). */
static void sub_frame(kb_conn_t *c, const kl_frame_t *f)
{
    sub_t *p = c->ud;
    brun_t *m = p->m;
    switch (f->body_case) {
    case BODY(OK):
        if (m->setting_up && ++m->subscribed == m->S)
            uv_stop(m->run->net.loop);
        break;
    case BODY(DELIVER):
        on_deliver(p, f);
        break;
    case BODY(CHANNEL_LOG):
        break; /* ops pushed to subscribers */
    case BODY(ERROR):
        kb_result_error(&m->run->res, err_kind(f));
        if (m->setting_up)
            setup_failed(m, f->error->message ? f->error->message : "refused");
        if (f->id != 0)
            p->fetching = 0;
        break;
    default:
        kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
    }
}

static void pub_failed(kb_conn_t *c, int kind)
{
    brun_t *m = c->ud;
    kb_result_error(&m->run->res, kind);
    m->pub_dead = 1;
    if (m->setting_up)
        setup_failed(m, "the publisher's connection failed");
    check_done(m);
}

static void sub_failed(kb_conn_t *c, int kind)
{
    sub_t *p = c->ud;
    kb_result_error(&p->m->run->res, kind);
    p->dead = 1;
    if (p->m->setting_up)
        setup_failed(p->m, "a subscriber's connection failed");
    check_done(p->m);
}

static void on_closed(kb_conn_t *c)
{
    (void)c;
}

static const kb_conn_ops_t PUB_OPS = {on_ready, pub_frame, pub_failed, on_closed};
static const kb_conn_ops_t SUB_OPS = {on_ready, sub_frame, sub_failed, on_closed};

/* Done when every post is settled and every live subscriber has seen
 * every acknowledged post. */
static void check_done(brun_t *m)
{
    if (m->done || m->setting_up)
        return;
    if (!m->pub_dead && m->ok + m->err < m->target)
        return;
    for (size_t i = 0; i < m->S; i++) {
        const sub_t *p = &m->subs[i];
        if (!p->dead && (p->remote ? p->delivered < m->ok : p->contig < m->max_seq))
            return;
    }
    m->done = 1;
    uv_stop(m->run->net.loop);
}

static void on_progress(uv_timer_t *t)
{
    brun_t *m = t->data;
    double s = (double)(kb_now_ns() - m->t0_ns) / 1e9;
    kb_progress(m->run, "broadcast: %llu/%llu posts acknowledged, %llu delivered, %.0f "
                "deliveries/s", (unsigned long long)m->ok, (unsigned long long)m->target,
                (unsigned long long)m->delivered, s > 0 ? (double)m->delivered / s : 0);
}

static void on_deadline(uv_timer_t *t)
{
    brun_t *m = t->data;
    kb_progress(m->run, "broadcast: deadline reached, giving up on what is outstanding");
    if (m->setting_up)
        m->failed = 1;
    m->done = 1;
    uv_stop(m->run->net.loop);
}

static void brun_free(brun_t *m)
{
    for (size_t i = 0; m->subs && i < m->S; i++)
        free(m->subs[i].ring);
    free(m->subs);
    free(m->conns);
    free(m->slot_t);
    free(m->slot_id);
    free(m->free_slots);
    free(m->text);
    kl_channel_free(m->state);
}

static int brun_make(brun_t *m, const char *prefix)
{
    const kb_opts_t *o = m->run->o;
    snprintf(m->address, sizeof m->address, "!%.16sc@%s", prefix, m->run->net.relay_name);
    snprintf(m->self, sizeof m->self, "%s@%s", m->run->users[0].handle,
             m->run->net.relay_name);
    m->subs = calloc(m->S, sizeof *m->subs);
    m->slot_t = calloc(o->window, sizeof *m->slot_t);
    m->slot_id = calloc(o->window, sizeof *m->slot_id);
    m->free_slots = calloc(o->window, sizeof *m->free_slots);
    m->text = malloc(o->body + 1);
    if (!m->subs || !m->slot_t || !m->slot_id || !m->free_slots || !m->text ||
        kl_channel_new(&m->state, m->address) != 0)
        return KL_ENOMEM;
    memset(m->text, 'x', o->body);
    m->text[o->body] = '\0';
    m->n_slots = m->n_free = (uint32_t)o->window;
    for (uint32_t s = 0; s < m->n_slots; s++)
        m->free_slots[s] = m->n_slots - 1 - s;
    m->conns[0].ops = &PUB_OPS;
    m->conns[0].ud = m;
    for (size_t i = 0; i < m->S; i++) {
        sub_t *p = &m->subs[i];
        p->m = m;
        p->c = &m->conns[i + 1];
        p->c->ops = &SUB_OPS;
        p->c->ud = p;
        p->remote = m->run->net2_from && i + 1 >= m->run->net2_from;
        p->ring = calloc(RING / 8, 1);
        if (p->ring == NULL)
            return KL_ENOMEM;
    }
    return 0;
}

static void tally(brun_t *m)
{
    kb_result_t *r = &m->run->res;
    for (uint64_t n = m->ok + m->err; n < m->target; n++)
        kb_result_error(r, m->pub_dead ? KB_ERR_CLOSED : KB_ERR_UNANSWERED);
    for (size_t i = 0; i < m->S; i++)
        for (uint64_t n = m->subs[i].delivered; n < m->ok; n++)
            kb_result_error(r, KB_ERR_MISSING);
    r->sent_ok = m->ok;
    r->delivered = m->delivered;
    r->ack = &m->run->ack;
    r->delivery = &m->run->delivery;
}

/* Storage of the spawned relays (the channel's home first) into
 * run->res.storage, before (after = 0) or after the measured phase; the
 * number of relays read, 0 if any reading failed. */
static int read_storage(kb_run_t *run, int after)
{
    struct kb_relay *relays[2] = {run->relay, run->relay2};
    int n = 0;
    for (int i = 0; i < 2 && relays[i]; i++, n++) {
        kb_storage_t *s = &run->res.storage[i];
        uint64_t *e = after ? &s->entries1 : &s->entries0;
        uint64_t *b = after ? &s->bytes1 : &s->bytes0;
        s->relay = relays[i]->name;
        if (kb_relay_stored(relays[i], e, b) != 0)
            return 0;
    }
    return n;
}

/* Storage per post of each relay from the two readings; 0 if a reading
 * went backwards (nothing is reported then). */
static int storage_per_post(kb_result_t *r, int n, uint64_t posts)
{
    for (int i = 0; i < n; i++) {
        kb_storage_t *s = &r->storage[i];
        if (s->entries1 < s->entries0 || s->bytes1 < s->bytes0)
            return 0;
        s->entries_per_post = (double)(s->entries1 - s->entries0) / (double)posts;
        s->bytes_per_post = (double)(s->bytes1 - s->bytes0) / (double)posts;
    }
    r->n_storage = n;
    r->storage_read = 1;
    r->entries_per_post = r->storage[0].entries_per_post;
    r->bytes_per_post = r->storage[0].bytes_per_post;
    return n;
}

int kb_run_broadcast(kb_run_t *run)
{
    const kb_opts_t *o = run->o;
    brun_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return KL_ENOMEM;
    int rc = KL_ENOMEM;
    uv_loop_t *loop = run->net.loop;
    uv_timer_t *timers[] = {&m->progress, &m->deadline};
    int timers_on = 0;
    m->run = run;
    m->S = (size_t)o->subscribers;
    m->target = o->messages;
    size_t n = m->S + 1;
    m->conns = calloc(n, sizeof *m->conns);
    if (m->conns == NULL)
        goto out;
    if (kb_open_phase(run, n, 1, 256, m->conns, 0, NULL, "register") != n) {
        kb_progress(run, "not every user registered: giving up");
        kb_close_all(run, m->conns, n);
        rc = KL_EREFUSED;
        goto out;
    }
    /* The channel's name shares the users' random prefix: "<prefix>c". */
    char prefix[KL_HANDLE_MAX + 1];
    snprintf(prefix, sizeof prefix, "%s", run->users[0].handle);
    char *dash = strchr(prefix, '-');
    if (dash)
        dash[1] = '\0';
    if (brun_make(m, prefix) != 0) {
        kb_close_all(run, m->conns, n);
        goto out;
    }
    for (size_t i = 0; i < 2; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = m;
    }
    timers_on = 1;

    m->setting_up = 1;
    uv_timer_start(&m->deadline, on_deadline, (uint64_t)(o->timeout * 1000), 0);
    create_channel(m);
    if (!m->failed)
        uv_run(loop, UV_RUN_DEFAULT);
    uv_timer_stop(&m->deadline);
    m->setting_up = 0;
    if (m->failed || m->subscribed < m->S) {
        kb_progress(run, "only %zu of %zu subscribers subscribed: giving up", m->subscribed,
                    m->S);
        kb_close_all(run, m->conns, n);
        rc = KL_EREFUSED;
        goto out;
    }
    if (run->net2_from)
        kb_progress(run, "%s with %zu subscribers set up (%zu of them on %s)", m->address, m->S,
                    m->S + 1 - run->net2_from, run->net2.relay_name);
    else
        kb_progress(run, "%s with %zu subscribers set up", m->address, m->S);
    int n_storage = read_storage(run, 0);

    kb_meter_t meter;
    kb_meter_start(run, &meter);
    m->t0_ns = meter.t0_ns;
    uv_timer_start(&m->progress, on_progress, 2000, 2000);
    uv_timer_start(&m->deadline, on_deadline, (uint64_t)(o->timeout * 1000), 0);
    pump(m);
    check_done(m);
    if (!m->done)
        uv_run(loop, UV_RUN_DEFAULT);
    kb_meter_stop(run, &meter);
    if (run->res.elapsed_s > 0) {
        run->res.throughput = (double)m->ok / run->res.elapsed_s;
        run->res.deliveries_per_s = (double)m->delivered / run->res.elapsed_s;
    }
    for (size_t i = 0; i < 2; i++)
        uv_timer_stop(timers[i]);
    /* Every post is still held (nobody acked): what does one cost? */
    if (n_storage > 0 && m->ok > 0 && read_storage(run, 1) == n_storage &&
        storage_per_post(&run->res, n_storage, m->ok) == 0)
        kb_progress(run, "a relay's storage shrank during the run: not reported");
    for (size_t i = 0; i < m->S; i++)
        if (!m->subs[i].dead && m->subs[i].contig > 0)
            send_ack(&m->subs[i]);
    kb_run_for(run, 100);
    tally(m);
    kb_close_all(run, m->conns, n);
    rc = 0;
out:
    if (timers_on) {
        for (size_t i = 0; i < 2; i++)
            uv_close((uv_handle_t *)timers[i], NULL);
        uv_run(loop, UV_RUN_NOWAIT);
    }
    brun_free(m);
    free(m);
    return rc;
}
