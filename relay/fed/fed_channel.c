/* Broadcast channels across relays (proto/federation.proto
 * "ChannelNotify"; storage in storage_cmirror.h, storage-thread steps in
 * jobs_cmirror.c).
 *
 * Home relay: kl_fed_channel_notify sends each peer that mirrors a channel
 * ONE ChannelNotify per committed post or op. A peer's requests for its
 * mirrors arrive as GroupProxy frames with user "" (kl_fedgroup_in_proxy).
 *
 * Mirror relay: a client's subscribe to a peer's channel is a CHAN_SUB
 * job: subscribe{channel, backlog} as this relay at the home relay, then
 * (storage) the mirror row and the client's local subscription, then a
 * sync. A sync round of one mirror is one MIRROR job going through the
 * steps of fed_job.h: read the mirror row; with no local subscriber left,
 * unsubscribe at home and mark it inactive; else fetch the posts after
 * the watermark, then the ops after the mirror's next index (posts first:
 * every post taken was accepted at home under a prefix of the ops we then
 * hold), validate and store (one transaction, watermark included), ack the
 * watermark at home, and announce deliver{channel, more} to the live
 * connections of the local subscribers. A round repeats while the home
 * relay has more, or a notice came in meanwhile (at most one round per
 * mirror at a time). A failed round is retried after MIRROR_RETRY_MS while
 * the link is up; every link-up syncs every active mirror of that peer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dispatch.h"
#include "fed_int.h"
#include "kollega/channel.h"
#include "kollega/err.h"
#include "base/diag.h"

#define RBODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define FBODY(x) KOLLEGA__FEDERATION__V1__FED_FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x
/* Mirrors being synced at once (each a few hundred bytes). */
#define MIRRORS_MAX 4096
#define MIRROR_RETRY_MS 5000
/* A re-subscribe after the home relay lost us reads back this far (the
 * watermark drops what we have already). */
#define RESUB_BACKLOG 10000

typedef struct fed_mirror {
    fed_peer_t *p;
    char address[KL_ADDR_MAX + 1];
    int busy;                  /* a round is running */
    int again;                 /* a notice came in during the round */
    uint64_t retry_at;         /* uv_now of a retry, 0: none */
} fed_mirror_t;

/* ---- the home relay ---- */

void kl_fed_channel_notify(kl_fed_t *f, const char *channel, const char *relays, size_t n)
{
    if (f == NULL || f->stopping)
        return;
    const char *name = relays;
    for (size_t i = 0; i < n; i++, name += strlen(name) + 1) {
        for (size_t k = 0; k < f->n_peers; k++) {
            fed_peer_t *p = f->peers[k];
            if (strcmp(p->cfg.name, name) != 0 || p->out == NULL || !p->out->ready)
                continue;
            kl_fedframe_t fr = KOLLEGA__FEDERATION__V1__FED_FRAME__INIT;
            Kollega__Federation__V1__ChannelNotify cn =
                KOLLEGA__FEDERATION__V1__CHANNEL_NOTIFY__INIT;
            cn.channel = (char *)channel;
            fr.body_case = FBODY(CHANNEL_NOTIFY);
            fr.channel_notify = &cn;
            kl_fedlink_send(p->out, &fr);
        }
    }
}

/* ---- mirrors ---- */

static fed_mirror_t *find(kl_fed_t *f, const fed_peer_t *p, const char *address)
{
    for (size_t i = 0; i < f->n_mirrors; i++)
        if (f->mirrors[i].p == p && strcmp(f->mirrors[i].address, address) == 0)
            return &f->mirrors[i];
    return NULL;
}

static void start(kl_fed_t *f, fed_mirror_t *m)
{
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_MIRROR, 0, NULL);
    if (job == NULL) {
        m->retry_at = uv_now(f->cfg.loop) + MIRROR_RETRY_MS;
        return;
    }
    kl_fed_job_t *fj = job->u.fed;
    fj->peer = m->p->cfg.id;
    snprintf(fj->address, sizeof fj->address, "%s", m->address);
    fj->step = KL_MIRROR_READ;
    m->busy = 1;
    m->again = 0;
    m->retry_at = 0;
    kl_fed_store(f, job);
}

/* Sync address (a channel of p) now, or after the running round. */
static void kick(kl_fed_t *f, fed_peer_t *p, const char *address)
{
    if (f->stopping || strlen(address) > KL_ADDR_MAX)
        return;
    fed_mirror_t *m = find(f, p, address);
    if (m == NULL) {
        if (f->n_mirrors >= MIRRORS_MAX) {
            if (!f->mirrors_warned++)
                kl_diag(KL_DIAG_WARN, "federation: %zu channel mirrors syncing at once; more "
                       "wait for a later notice or link-up", f->n_mirrors);
            p->mirror_resync = 1;
            return;
        }
        fed_mirror_t *nm = realloc(f->mirrors, (f->n_mirrors + 1) * sizeof *nm);
        if (nm == NULL)
            return; /* synced at the next notice or link-up */
        f->mirrors = nm;
        m = &f->mirrors[f->n_mirrors++];
        memset(m, 0, sizeof *m);
        m->p = p;
        snprintf(m->address, sizeof m->address, "%s", address);
    }
    if (m->busy) {
        m->again = 1;
        return;
    }
    start(f, m);
}

/* The round of job ended (failed: retry later while the link is up). */
static void finish(kl_fed_t *f, kl_job_t *job, int failed)
{
    fed_peer_t *p = kl_fed_peer_by_id(f, job->u.fed->peer);
    fed_mirror_t *m = p ? find(f, p, job->u.fed->address) : NULL;
    int full = job->u.fed->m_full;
    kl_job_free(job);
    if (m == NULL)
        return;
    m->busy = 0;
    if (f->stopping)
        return;
    if (m->again) {
        start(f, m);
        return;
    }
    if ((failed || full) && p->out && p->out->ready) {
        m->retry_at = uv_now(f->cfg.loop) + MIRROR_RETRY_MS;
        return;
    }
    *m = f->mirrors[--f->n_mirrors]; /* done: forget it */
}

/* Send the job's next request to the home relay. */
static void ask(kl_fed_t *f, kl_job_t *job, int step)
{
    job->u.fed->step = step;
    kl_fed_submit(f, job);
}

static void stored_round(kl_fed_t *f, kl_job_t *job)
{
    kl_fed_job_t *fj = job->u.fed;
    const fed_peer_t *p = kl_fed_peer_by_id(f, fj->peer);
    const char *home = p ? p->cfg.name : "its relay";
    if (job->result != 0) {
        finish(f, job, 1);
        return;
    }
    switch (fj->step) {
    case KL_MIRROR_READ:
        /* No mirror (a subscribe that failed after the home relay said
         * Ok), or one without subscribers: unsubscribe there. */
        if (fj->m_exists && !fj->m_active)
            finish(f, job, 0);
        else
            ask(f, job, !fj->m_exists || fj->m_subs == 0 ? KL_MIRROR_UNSUB : KL_MIRROR_POSTS);
        return;
    case KL_MIRROR_DEACT:
        kl_diag(KL_DIAG_INFO, "federation: no subscriber of %s here: unsubscribed at %s",
               fj->address, home);
        finish(f, job, 0);
        return;
    case KL_MIRROR_STORE:
        break;
    default:
        finish(f, job, 1);
        return;
    }
    if (fj->m_refused > 0 || fj->err_msg[0])
        kl_diag(KL_DIAG_WARN, "channel %s from relay %s: %s (%zu post(s) refused this round)",
               fj->address, home, fj->err_msg, fj->m_refused);
    if (fj->n_names > 0 && f->cfg.push_list) {
        kl_reply_t r;
        kl_dispatch_announce(&r, fj->address, 0);
        f->cfg.push_list(f->cfg.ud, fj->ids, fj->n_names, &r.frame, fj->address);
    }
    free(fj->ids);
    fj->ids = NULL;
    fj->n_names = 0;
    ask(f, job, KL_MIRROR_ACK); /* after the commit: the home relay may drop them */
}

void kl_fedchan_stored(kl_fed_t *f, kl_job_t *job)
{
    kl_fed_job_t *fj = job->u.fed;
    if (f->stopping) {
        kl_job_free(job);
        return;
    }
    if (fj->op == KL_FED_OP_MIRROR) {
        stored_round(f, job);
        return;
    }
    /* MIRROR_LIST: a link-up */
    fed_peer_t *p = kl_fed_peer_by_id(f, fj->peer);
    const char *a = fj->names;
    for (size_t i = 0; p && job->result == 0 && i < fj->n_names; i++, a += strlen(a) + 1)
        kick(f, p, a);
    kl_job_free(job);
}

int kl_fedchan_sub_stored(kl_fed_t *f, kl_job_t *job)
{
    kl_fed_job_t *fj = job->u.fed;
    fed_peer_t *p = kl_fed_peer_by_id(f, fj->peer);
    if (job->result == 0 && fj->m_more && p && !f->stopping) {
        /* The next page of the home relay's log first. */
        protobuf_c_message_free_unpacked(fj->reply2, NULL);
        fj->reply2 = NULL;
        fj->m_pages++;
        fj->step = KL_MIRROR_OPS;
        kl_fed_submit(f, job);
        return 1;
    }
    /* Subscribed: sync. Refused or failed here after the home relay said
     * Ok: the round finds no local subscriber and unsubscribes there. */
    if (p && !f->stopping)
        kick(f, p, fj->address);
    return 0;
}

void kl_fedchan_link_up(fed_peer_t *p)
{
    kl_fed_t *f = p->fed;
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_MIRROR_LIST, 0, NULL);
    if (job == NULL || f->stopping) {
        kl_job_free(job);
        return;
    }
    job->u.fed->peer = p->cfg.id;
    snprintf(job->u.fed->address, sizeof job->u.fed->address, "%s", p->cfg.name);
    kl_fed_store(f, job);
}

void kl_fedchan_sweep(kl_fed_t *f, uint64_t now)
{
    for (size_t i = 0; i < f->n_mirrors; i++) {
        fed_mirror_t *m = &f->mirrors[i];
        if (!m->busy && m->retry_at && m->retry_at <= now)
            start(f, m);
    }
    /* Notices dropped (over the link's rate, or too many mirrors at
     * once): sync every mirror of that peer, at most every retry period. */
    for (size_t i = 0; i < f->n_peers; i++) {
        fed_peer_t *p = f->peers[i];
        if (p->mirror_resync && now >= p->mirror_resync_at && p->out && p->out->ready) {
            p->mirror_resync = 0;
            p->mirror_resync_at = now + MIRROR_RETRY_MS;
            kl_fedchan_link_up(p);
        }
    }
    if (f->n_mirrors < MIRRORS_MAX / 2)
        f->mirrors_warned = 0;
}

void kl_fedchan_resync_later(fed_peer_t *p)
{
    p->mirror_resync = 1;
}

void kl_fedchan_in_notify(fed_link_t *l, const kl_fedframe_t *fr)
{
    const char *c = fr->channel_notify->channel;
    const char *at = strrchr(c, '@');
    if (strlen(c) > KL_ADDR_MAX || !kl_channel_addr_valid(c) || at == NULL ||
        strcmp(at + 1, l->peer->cfg.name) != 0)
        return; /* a relay notifies only of its own channels */
    kick(l->fed, l->peer, c);
}

void kl_fedchan_free(kl_fed_t *f)
{
    free(f->mirrors);
    f->mirrors = NULL;
    f->n_mirrors = 0;
}

/* ---- requests to the home relay, and its answers ---- */

void kl_fedchan_send(fed_peer_t *p, kl_job_t *job, uint32_t id)
{
    kl_fed_job_t *fj = job->u.fed;
    kl_frame_t req = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__Subscribe sub = KOLLEGA__RELAY__V1__SUBSCRIBE__INIT;
    Kollega__Relay__V1__Unsubscribe uns = KOLLEGA__RELAY__V1__UNSUBSCRIBE__INIT;
    Kollega__Relay__V1__Fetch fe = KOLLEGA__RELAY__V1__FETCH__INIT;
    Kollega__Relay__V1__ChannelFetch cf = KOLLEGA__RELAY__V1__CHANNEL_FETCH__INIT;
    Kollega__Relay__V1__Ack ack = KOLLEGA__RELAY__V1__ACK__INIT;
    req.id = 1;
    if ((fj->op == KL_FED_OP_CHAN_SUB && fj->step == 0) || fj->step == KL_MIRROR_RESUB) {
        sub.channel = fj->address;
        sub.backlog = fj->op == KL_FED_OP_CHAN_SUB ? fj->limit : RESUB_BACKLOG;
        req.body_case = RBODY(SUBSCRIBE);
        req.subscribe = &sub;
    } else if (fj->step == KL_MIRROR_UNSUB) {
        uns.channel = fj->address;
        req.body_case = RBODY(UNSUBSCRIBE);
        req.unsubscribe = &uns;
    } else if (fj->step == KL_MIRROR_POSTS) {
        fe.channel = fj->address;
        fe.after = fj->m_home_seq;
        fe.limit = KL_FETCH_MAX;
        req.body_case = RBODY(FETCH);
        req.fetch = &fe;
    } else if (fj->step == KL_MIRROR_OPS) {
        cf.channel = fj->address;
        cf.from_index = fj->m_next_index;
        req.body_case = RBODY(CHANNEL_FETCH);
        req.channel_fetch = &cf;
    } else {
        ack.channel = fj->address;
        ack.seq = fj->m_home_seq;
        req.body_case = RBODY(ACK);
        req.ack = &ack;
    }
    kl_fed_proxy_send(p, id, "", NULL, &req); /* this relay itself */
}

/* The answer's relay Frame (taken from fr), or NULL with *err set when it
 * is an error or does not fit the request. */
static kl_frame_t *take_answer(kl_fedframe_t *fr, int want, int *code, const char **msg)
{
    *code = CODE(UNAVAILABLE);
    *msg = "did not answer in time";
    if (fr == NULL)
        return NULL;
    if (fr->body_case == FBODY(ERROR)) {
        *code = fr->error->code ? (int)fr->error->code : CODE(UNAVAILABLE);
        *msg = fr->error->message ? fr->error->message : "refused";
        return NULL;
    }
    kl_frame_t *a = fr->body_case == FBODY(GROUP_REPLY) ? fr->group_reply : NULL;
    if (a && a->body_case == RBODY(ERROR) && a->error) {
        *code = a->error->code ? (int)a->error->code : CODE(UNAVAILABLE);
        *msg = a->error->message ? a->error->message : "refused";
        return NULL;
    }
    if (a == NULL || (int)a->body_case != want) {
        *msg = "sent a malformed answer";
        return NULL;
    }
    fr->group_reply = NULL;
    fr->body_case = KOLLEGA__FEDERATION__V1__FED_FRAME__BODY__NOT_SET;
    return a;
}

/* A client's subscribe: Ok from the home relay, then its publisher log
 * (so that the mirror checks a members-only channel's membership before
 * the first subscription), then the mirror here (storage). */
static void sub_answer(fed_peer_t *p, kl_job_t *job, kl_fedframe_t *fr)
{
    kl_fed_job_t *fj = job->u.fed;
    int code;
    const char *msg;
    int first = fj->step == 0;
    kl_frame_t *a = take_answer(fr, first ? RBODY(OK) : RBODY(CHANNEL_LOG), &code, &msg);
    if (a && first) {
        kollega__relay__v1__frame__free_unpacked(a, NULL);
        fj->step = KL_MIRROR_OPS;
        fj->m_next_index = 0; /* then from where the mirror's log ends */
        kl_fed_submit(p->fed, job);
        return;
    }
    if (a) {
        fj->reply2 = (ProtobufCMessage *)a;
        fj->listed = 1; /* subscribed at home: now the mirror here */
        kl_fed_store(p->fed, job);
        return;
    }
    fj->err_code = code;
    snprintf(fj->err_msg, sizeof fj->err_msg, "%.60s: %.90s", p->cfg.name, msg);
    if (!first) /* subscribed there, but no mirror here: a round undoes it */
        kick(p->fed, p, fj->address);
    p->fed->cfg.client_done(p->fed->cfg.ud, job);
}

void kl_fedchan_answer(fed_peer_t *p, kl_job_t *job, kl_fedframe_t *fr)
{
    kl_fed_t *f = p->fed;
    kl_fed_job_t *fj = job->u.fed;
    int code;
    const char *msg;
    if (fj->op == KL_FED_OP_CHAN_SUB) {
        sub_answer(p, job, fr);
        return;
    }
    if (f->stopping) {
        finish(f, job, 1);
        return;
    }
    int want = fj->step == KL_MIRROR_POSTS ? RBODY(DELIVER)
               : fj->step == KL_MIRROR_OPS ? RBODY(CHANNEL_LOG)
                                           : RBODY(OK);
    kl_frame_t *a = take_answer(fr, want, &code, &msg);
    if (a == NULL && fj->step == KL_MIRROR_POSTS && code == CODE(FORBIDDEN) && !fj->m_resub++) {
        /* The home relay lost our subscription (its operator, a restore):
         * subscribe again, then read on from the watermark. */
        ask(f, job, KL_MIRROR_RESUB);
        return;
    }
    if (a == NULL && code == CODE(NOT_FOUND) && fj->step != KL_MIRROR_UNSUB) {
        kl_diag(KL_DIAG_WARN, "federation: %s no longer exists at %s: not syncing it", fj->address,
               p->cfg.name);
        finish(f, job, 0);
        return;
    }
    if (a == NULL && !(fj->step == KL_MIRROR_UNSUB && code == CODE(NOT_FOUND))) {
        kl_diag(KL_DIAG_WARN, "federation: syncing %s with %s: %s (retrying)", fj->address,
               p->cfg.name, msg);
        finish(f, job, 1);
        return;
    }
    switch (fj->step) {
    case KL_MIRROR_POSTS:
        if (fj->reply)
            protobuf_c_message_free_unpacked(fj->reply, NULL);
        fj->reply = (ProtobufCMessage *)a;
        ask(f, job, KL_MIRROR_OPS);
        return;
    case KL_MIRROR_OPS: {
        if (fj->reply2)
            protobuf_c_message_free_unpacked(fj->reply2, NULL);
        fj->reply2 = (ProtobufCMessage *)a;
        const kl_dispatch_cfg_t *cfg = f->cfg.dispatch;
        uint32_t ttl = cfg ? cfg->ttl_default_s : f->cfg.ttl_max_s;
        fj->step = KL_MIRROR_STORE;
        fj->quota = cfg ? cfg->quota : f->cfg.inbox_quota;
        fj->ttl_max_ms = (uint64_t)ttl * 1000;
        kl_fed_store(f, job);
        return;
    }
    case KL_MIRROR_UNSUB:
        if (a)
            kollega__relay__v1__frame__free_unpacked(a, NULL);
        fj->step = KL_MIRROR_DEACT;
        kl_fed_store(f, job);
        return;
    case KL_MIRROR_RESUB:
        kollega__relay__v1__frame__free_unpacked(a, NULL);
        ask(f, job, KL_MIRROR_POSTS);
        return;
    default: { /* ACK */
        kollega__relay__v1__frame__free_unpacked(a, NULL);
        /* The home relay holds more: another round at once while rounds
         * make progress; a round that moved nothing (a log we refuse, a
         * full mirror log, a home relay that says "more" and sends none)
         * is retried after MIRROR_RETRY_MS. */
        fed_mirror_t *m = find(f, p, fj->address);
        int later = fj->m_stalled || fj->m_full || (fj->m_more && !fj->m_progress);
        if (m && fj->m_more && !later)
            m->again = 1;
        finish(f, job, later);
        return;
    }
    }
}
