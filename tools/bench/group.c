/* The group workload: P groups of G members, every member one registered
 * user with one connection. Setup (not measured): member 0 of each group
 * creates "#<prefix>g<i>@relay" with a real signed create op (policy
 * facilitators) and invites the others one op at a time (each invite by a
 * facilitator admits at once), exactly as a client builds ops
 * (kl_group_op_build against its validated state).
 *
 * Measured: the first S members of each group keep W sends outstanding to
 * the group until N messages (over all groups) are acknowledged with
 * `sent`. The relay pushes each message to the G-1 other members (not to
 * the sending connection), so a run delivers N * (G-1) messages. Members
 * count each group seq once (a ring bitmap above their contiguous seq), ack
 * their contiguous seq every ACK_EVERY entries or ACK_MS (50: each ack is
 * a storage job in the relay), count their own
 * messages (known from `sent`) as seen without counting a delivery, and
 * fetch the group's log after their contiguous seq when the relay
 * announces dropped pushes (deliver{group, more}).
 *
 * Body: send time (ns) | group index (u32) | sender member (u32) | counter
 * (u32) | random. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kollega/err.h"
#include "kollega/group.h"
#include "relay.pb-c.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define ACK_EVERY 64
#define ACK_MS 50
#define FETCH_LIMIT 500
#define RING 65536u

typedef struct grun grun_t;
typedef struct grp grp_t;

typedef struct member {
    grp_t *g;
    uint32_t index;          /* in the group */
    kb_conn_t *c;
    /* setup */
    /* sending (index < S) */
    uint8_t *body;
    uint64_t target, issued, ok, err;
    uint64_t *slot_t;
    uint32_t *slot_id, *free_slots;
    uint32_t n_free, n_slots;
    uint16_t gen;
    /* receiving */
    uint64_t contig, acked, unacked, delivered;
    uint8_t *ring;           /* bit s % RING: seq s seen, for s in (contig, contig + RING) */
    int fetching, dead;
} member_t;

struct grp {
    grun_t *m;
    uint32_t index;
    char address[KL_ADDR_MAX + 33]; /* room for the compiler's worst case */
    member_t *members;
    kl_group_t *state;       /* member 0's validated view, for building ops */
    uint32_t invited;        /* setup: members invited so far */
    int ready, failed;
    uint64_t sent_total;     /* messages acknowledged to any sender */
};

struct grun {
    kb_run_t *run;
    uint32_t G, S;
    grp_t *groups;
    size_t n_groups;
    kb_conn_t *conns;
    uint64_t t0_ns, total_ok, total_delivered, total_target, expected_deliveries;
    size_t groups_ready;
    int setting_up, done;
    uv_timer_t ack_timer, progress, deadline;
};

static void check_done(grun_t *m);

static int ring_test(const member_t *p, uint64_t s)
{
    return (p->ring[(s % RING) / 8] >> (s % 8)) & 1;
}

static void ring_set(member_t *p, uint64_t s, int v)
{
    uint8_t bit = (uint8_t)(1u << (s % 8));
    if (v)
        p->ring[(s % RING) / 8] |= bit;
    else
        p->ring[(s % RING) / 8] &= (uint8_t)~bit;
}

/* Mark seq s seen; 1 if new. */
static int seen(member_t *p, uint64_t s)
{
    if (s <= p->contig || s >= p->contig + RING || ring_test(p, s))
        return 0;
    ring_set(p, s, 1);
    while (ring_test(p, p->contig + 1)) {
        ring_set(p, p->contig + 1, 0);
        p->contig++;
        p->unacked++;
    }
    return 1;
}

/* ---- setup: create and invite ------------------------------------------ */

static int submit_op(grp_t *g, const kl_group_opdesc_t *d)
{
    member_t *f = &g->members[0];
    uint8_t *op = NULL;
    size_t len = 0;
    char self[KL_ADDR_MAX + 1];
    snprintf(self, sizeof self, "%s@%s", f->c->user->handle, g->m->run->net.relay_name);
    int r = kl_group_op_build(g->state, f->c->user->sk, f->c->user->pk, self, 0, d, &op, &len);
    if (r == 0)
        r = kl_group_apply(g->state, op, len, NULL, NULL);
    if (r == 0) {
        Kollega__Relay__V1__GroupOp go = KOLLEGA__RELAY__V1__GROUP_OP__INIT;
        kl_frame_t fr = KOLLEGA__RELAY__V1__FRAME__INIT;
        go.signed_op.data = op;
        go.signed_op.len = len;
        fr.id = kb_conn_ctl_id(f->c);
        fr.body_case = BODY(GROUP_OP);
        fr.group_op = &go;
        r = kb_conn_send(f->c, &fr);
    }
    free(op);
    return r;
}

/* The next setup op of g (create, then one invite per member). */
static void setup_next(grp_t *g)
{
    kl_group_opdesc_t d;
    memset(&d, 0, sizeof d);
    if (g->invited == 0) {
        d.kind = KL_GOP_CREATE;
        d.policy = KL_POLICY_FACILITATORS;
    } else if (g->invited < g->m->G) {
        const kb_user_t *u = g->members[g->invited].c->user;
        d.kind = KL_GOP_INVITE;
        memcpy(d.target, u->pk, 32);
        d.has_target = 1;
        snprintf(d.target_address, sizeof d.target_address, "%.32s@%.200s", u->handle,
                 g->m->run->net.relay_name);
    } else {
        g->ready = 1;
        g->m->groups_ready++;
        if (g->m->groups_ready == g->m->n_groups)
            uv_stop(g->m->run->net.loop);
        return;
    }
    g->invited++;
    if (submit_op(g, &d) != 0) {
        g->failed = 1;
        kb_result_error(&g->m->run->res, KB_ERR_PROTOCOL);
        uv_stop(g->m->run->net.loop);
    }
}

/* ---- measured phase ---------------------------------------------------- */

static int send_one(member_t *p)
{
    grp_t *g = p->g;
    uint32_t slot = p->free_slots[--p->n_free];
    uint32_t id = ((uint32_t)p->gen++ << 16) | (slot + 1);
    uint64_t t = kb_now_ns();
    uint32_t counter = (uint32_t)p->issued;
    memcpy(p->body, &t, 8);
    memcpy(p->body + 8, &g->index, 4);
    memcpy(p->body + 12, &p->index, 4);
    memcpy(p->body + 16, &counter, 4);
    Kollega__Relay__V1__Send sd = KOLLEGA__RELAY__V1__SEND__INIT;
    sd.to = g->address;
    sd.group_index = kl_group_next_index(g->state); /* the view every member sends under */
    sd.body.data = p->body;
    sd.body.len = g->m->run->o->body;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    f.id = id;
    f.body_case = BODY(SEND);
    f.send = &sd;
    p->slot_t[slot] = t;
    p->slot_id[slot] = id;
    p->issued++;
    return kb_conn_send(p->c, &f);
}

static void pump(member_t *p)
{
    while (!p->dead && p->issued < p->target && p->n_free > 0)
        if (send_one(p) != 0)
            return;
}

static void send_ack(member_t *p)
{
    Kollega__Relay__V1__Ack a = KOLLEGA__RELAY__V1__ACK__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    a.seq = p->contig;
    a.group = p->g->address;
    f.id = kb_conn_ctl_id(p->c);
    f.body_case = BODY(ACK);
    f.ack = &a;
    p->acked = p->contig;
    p->unacked = 0;
    kb_conn_send(p->c, &f);
}

static void send_fetch(member_t *p)
{
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    kl_frame_t f = KOLLEGA__RELAY__V1__FRAME__INIT;
    fe.after = p->contig;
    fe.limit = FETCH_LIMIT;
    fe.group = p->g->address;
    f.id = kb_conn_ctl_id(p->c);
    f.body_case = BODY(FETCH);
    f.fetch = &fe;
    p->fetching = 1;
    kb_conn_send(p->c, &f);
}

static void send_settled(member_t *p, uint32_t id, uint64_t seq, int err_code)
{
    grun_t *m = p->g->m;
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
        p->g->sent_total++;
        m->total_ok++;
        seen(p, seq); /* its own message: seen, not delivered */
    }
    pump(p);
    check_done(m);
}

static void on_deliver(member_t *p, const kl_frame_t *f)
{
    grun_t *m = p->g->m;
    const Kollega__Relay__V1__Deliver *d = f->deliver;
    uint64_t now = kb_now_ns();
    if (strcmp(d->group, p->g->address) != 0) {
        kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
        return;
    }
    for (size_t i = 0; i < d->n_entries; i++) {
        const Kollega__Relay__V1__Entry *e = d->entries[i];
        uint64_t t;
        uint32_t gi, from;
        if (e->body.len != m->run->o->body) {
            kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
            continue;
        }
        memcpy(&t, e->body.data, 8);
        memcpy(&gi, e->body.data + 8, 4);
        memcpy(&from, e->body.data + 12, 4);
        if (gi != p->g->index || from >= m->G) {
            kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
            continue;
        }
        if (!seen(p, e->seq)) {
            if (from != p->index)
                m->run->res.duplicates++;
            continue;
        }
        if (from == p->index) {
            /* Fetched back after a drop: its own. The relay never pushes a
             * message to the connection that sent it. */
            if (f->id == 0)
                kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
            continue;
        }
        kb_hist_record(&m->run->delivery, now > t ? now - t : 0);
        p->delivered++;
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
    (void)c;
}

static void on_frame(kb_conn_t *c, const kl_frame_t *f)
{
    member_t *p = c->ud;
    grp_t *g = p->g;
    grun_t *m = g->m;
    int from_send = (f->id & 0xffffu) != 0;
    switch (f->body_case) {
    case BODY(GROUP_OP_ACCEPTED):
        if (m->setting_up && p->index == 0)
            setup_next(g);
        break;
    case BODY(GROUP_LOG):
        break; /* ops of the setup, pushed to the members */
    case BODY(SENT):
        send_settled(p, f->id, f->sent->seq, 0);
        break;
    case BODY(ERROR):
        if (from_send) {
            int code = (int)f->error->code > 0 && (int)f->error->code < (int)KB_ERR_CONNECT
                           ? (int)f->error->code : KB_ERR_PROTOCOL;
            send_settled(p, f->id, 0, code);
        } else {
            kb_result_error(&m->run->res, (int)f->error->code);
            if (m->setting_up) {
                kb_progress(m->run, "group setup refused: %s", f->error->message);
                g->failed = 1;
                uv_stop(m->run->net.loop);
            }
            if (f->id != 0)
                p->fetching = 0;
        }
        break;
    case BODY(DELIVER):
        on_deliver(p, f);
        break;
    case BODY(OK):
        break;
    default:
        kb_result_error(&m->run->res, KB_ERR_PROTOCOL);
    }
}

static void on_failed(kb_conn_t *c, int kind)
{
    member_t *p = c->ud;
    kb_result_error(&p->g->m->run->res, kind);
    p->dead = 1;
    if (p->g->m->setting_up) {
        p->g->failed = 1;
        uv_stop(p->g->m->run->net.loop);
    }
    check_done(p->g->m);
}

static void on_closed(kb_conn_t *c)
{
    (void)c;
}

static const kb_conn_ops_t GROUP_OPS = {on_ready, on_frame, on_failed, on_closed};

/* Done when every sender settled its target and every live member has
 * seen every message its group got acknowledged. */
static void check_done(grun_t *m)
{
    if (m->done || m->setting_up)
        return;
    for (size_t i = 0; i < m->n_groups; i++) {
        grp_t *g = &m->groups[i];
        for (uint32_t k = 0; k < m->G; k++) {
            const member_t *p = &g->members[k];
            if (p->dead)
                continue;
            if (p->ok + p->err < p->target)
                return;
            if (p->contig < g->sent_total)
                return;
        }
    }
    m->done = 1;
    uv_stop(m->run->net.loop);
}

static void on_ack_timer(uv_timer_t *t)
{
    grun_t *m = t->data;
    for (size_t i = 0; i < m->n_groups; i++)
        for (uint32_t k = 0; k < m->G; k++) {
            member_t *p = &m->groups[i].members[k];
            if (!p->dead && p->contig > p->acked)
                send_ack(p);
        }
}

static void on_progress(uv_timer_t *t)
{
    grun_t *m = t->data;
    double s = (double)(kb_now_ns() - m->t0_ns) / 1e9;
    kb_progress(m->run, "group: %llu/%llu acknowledged, %llu delivered, %.0f msg/s, %.0f "
                "deliveries/s", (unsigned long long)m->total_ok,
                (unsigned long long)m->total_target, (unsigned long long)m->total_delivered,
                s > 0 ? (double)m->total_ok / s : 0,
                s > 0 ? (double)m->total_delivered / s : 0);
}

static void on_deadline(uv_timer_t *t)
{
    grun_t *m = t->data;
    kb_progress(m->run, "group: deadline reached, giving up on what is outstanding");
    m->done = 1;
    uv_stop(m->run->net.loop);
}

static void groups_free(grun_t *m)
{
    for (size_t i = 0; m->groups && i < m->n_groups; i++) {
        grp_t *g = &m->groups[i];
        for (uint32_t k = 0; g->members && k < m->G; k++) {
            member_t *p = &g->members[k];
            free(p->body);
            free(p->slot_t);
            free(p->slot_id);
            free(p->free_slots);
            free(p->ring);
        }
        free(g->members);
        kl_group_free(g->state);
    }
    free(m->groups);
    free(m->conns);
}

static int groups_make(grun_t *m, const char *prefix)
{
    const kb_opts_t *o = m->run->o;
    uint64_t senders = (uint64_t)m->n_groups * m->S;
    m->groups = calloc(m->n_groups, sizeof *m->groups);
    if (m->groups == NULL)
        return KL_ENOMEM;
    for (size_t i = 0; i < m->n_groups; i++) {
        grp_t *g = &m->groups[i];
        g->m = m;
        g->index = (uint32_t)i;
        snprintf(g->address, sizeof g->address, "#%.16sg%zu@%s", prefix, i,
                 m->run->net.relay_name);
        g->members = calloc(m->G, sizeof *g->members);
        if (g->members == NULL || kl_group_new(&g->state, g->address) != 0)
            return KL_ENOMEM;
        for (uint32_t k = 0; k < m->G; k++) {
            member_t *p = &g->members[k];
            p->g = g;
            p->index = k;
            p->c = &m->conns[i * m->G + k];
            p->c->ops = &GROUP_OPS;
            p->c->ud = p;
            p->ring = calloc(RING / 8, 1);
            if (p->ring == NULL)
                return KL_ENOMEM;
            if (k >= m->S)
                continue;
            uint64_t si = i * m->S + k;
            p->target = m->total_target / senders + (si < m->total_target % senders ? 1 : 0);
            p->body = malloc(o->body);
            p->slot_t = calloc(o->window, sizeof *p->slot_t);
            p->slot_id = calloc(o->window, sizeof *p->slot_id);
            p->free_slots = calloc(o->window, sizeof *p->free_slots);
            if (!p->body || !p->slot_t || !p->slot_id || !p->free_slots)
                return KL_ENOMEM;
            kl_random(p->body, o->body);
            p->n_slots = p->n_free = (uint32_t)o->window;
            for (uint32_t s = 0; s < p->n_slots; s++)
                p->free_slots[s] = p->n_slots - 1 - s;
        }
    }
    return 0;
}

static void tally(grun_t *m)
{
    kb_result_t *r = &m->run->res;
    for (size_t i = 0; i < m->n_groups; i++) {
        const grp_t *g = &m->groups[i];
        for (uint32_t k = 0; k < m->G; k++) {
            const member_t *p = &g->members[k];
            for (uint64_t n = p->ok + p->err; n < p->target; n++)
                kb_result_error(r, p->dead ? KB_ERR_CLOSED : KB_ERR_UNANSWERED);
            /* Every message of the group but its own should have arrived. */
            uint64_t own = p->ok;
            uint64_t want = g->sent_total > own ? g->sent_total - own : 0;
            for (uint64_t n = p->delivered; n < want; n++)
                kb_result_error(r, KB_ERR_MISSING);
        }
    }
    r->sent_ok = m->total_ok;
    r->delivered = m->total_delivered;
    r->ack = &m->run->ack;
    r->delivery = &m->run->delivery;
}

int kb_run_group(kb_run_t *run)
{
    const kb_opts_t *o = run->o;
    grun_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return KL_ENOMEM;
    int rc = KL_ENOMEM;
    uv_loop_t *loop = run->net.loop;
    uv_timer_t *timers[] = {&m->ack_timer, &m->progress, &m->deadline};
    int timers_on = 0;
    m->run = run;
    m->G = (uint32_t)o->group_size;
    m->S = (uint32_t)o->senders;
    m->n_groups = o->pairs;
    m->total_target = o->messages;
    size_t n = m->n_groups * m->G;
    m->conns = calloc(n, sizeof *m->conns);
    if (m->conns == NULL)
        goto out;
    if (kb_open_phase(run, n, 1, 256, m->conns, 0, NULL, "register") != n) {
        kb_progress(run, "not every user registered: giving up");
        kb_close_all(run, m->conns, n);
        rc = KL_EREFUSED;
        goto out;
    }
    /* The group handles share the users' random prefix: "<prefix>g<i>". */
    char prefix[KL_HANDLE_MAX + 1];
    snprintf(prefix, sizeof prefix, "%s", run->users[0].handle);
    char *dash = strchr(prefix, '-');
    if (dash)
        dash[1] = '\0';
    if (groups_make(m, prefix) != 0) {
        kb_close_all(run, m->conns, n);
        goto out;
    }
    for (size_t i = 0; i < 3; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = m;
    }
    timers_on = 1;

    /* Setup: every group at once, one op round trip at a time each. */
    m->setting_up = 1;
    uv_timer_start(&m->deadline, on_deadline, (uint64_t)(o->timeout * 1000), 0);
    for (size_t i = 0; i < m->n_groups; i++)
        setup_next(&m->groups[i]);
    if (m->groups_ready < m->n_groups)
        uv_run(loop, UV_RUN_DEFAULT);
    uv_timer_stop(&m->deadline);
    m->setting_up = 0;
    if (m->groups_ready < m->n_groups) {
        kb_progress(run, "only %zu of %zu groups were set up: giving up", m->groups_ready,
                    m->n_groups);
        kb_close_all(run, m->conns, n);
        rc = KL_EREFUSED;
        goto out;
    }
    kb_run_for(run, 50); /* let the setup's group_log pushes arrive */
    kb_progress(run, "%zu groups of %u members set up", m->n_groups, m->G);

    kb_meter_t meter;
    kb_meter_start(run, &meter);
    m->t0_ns = meter.t0_ns;
    uv_timer_start(&m->ack_timer, on_ack_timer, ACK_MS, ACK_MS);
    uv_timer_start(&m->progress, on_progress, 2000, 2000);
    uv_timer_start(&m->deadline, on_deadline, (uint64_t)(o->timeout * 1000), 0);
    for (size_t i = 0; i < m->n_groups; i++)
        for (uint32_t k = 0; k < m->S; k++)
            pump(&m->groups[i].members[k]);
    check_done(m);
    if (!m->done)
        uv_run(loop, UV_RUN_DEFAULT);
    kb_meter_stop(run, &meter);
    if (run->res.elapsed_s > 0) {
        run->res.throughput = (double)m->total_ok / run->res.elapsed_s;
        run->res.deliveries_per_s = (double)m->total_delivered / run->res.elapsed_s;
    }
    for (size_t i = 0; i < 3; i++)
        uv_timer_stop(timers[i]);
    on_ack_timer(&m->ack_timer); /* leave the logs empty */
    kb_run_for(run, 100);
    tally(m);
    kb_close_all(run, m->conns, n);
    rc = 0;
out:
    if (timers_on) {
        for (size_t i = 0; i < 3; i++)
            uv_close((uv_handle_t *)timers[i], NULL);
        uv_run(loop, UV_RUN_NOWAIT);
    }
    groups_free(m);
    free(m);
    return rc;
}
