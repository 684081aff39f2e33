/* Federation: peers, the outbox pump, proxied ops and inbound requests.
 * See fed.h for the module's place, proto/federation.proto for the wire
 * semantics, fed_link.c for one link's socket and handshake, fed_peers.c for
 * the set of configured peers.
 *
 * Outbox pump (per peer, on its outgoing link): read up to the window of
 * entries after the last one sent (a storage job), send each as a Forward,
 * and on each in-order answer advance the outbox cursor (a storage job that
 * deletes acknowledged entries; acks are coalesced, one job in flight). A
 * RETRY rewinds to that entry, waits a backoff and resumes with restart set.
 * When the link drops, everything unanswered is simply sent again on the
 * next link: the receiver's watermark makes that exactly-once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fed_int.h"
#include "kollega/crypto.h"
#include "kollega/err.h"
#include "base/log.h"
#include "base/tcpaddr.h"

#define RBODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define FBODY(x) KOLLEGA__FEDERATION__V1__FED_FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x
#define FSTATUS(x) KOLLEGA__FEDERATION__V1__FORWARD_RESULT__STATUS__##x
#define SWEEP_MS 200

static void pump(fed_peer_t *p);

uint64_t kl_fed_now_ms(void)
{
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) != 0)
        return 0;
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void submit(kl_fed_t *f, kl_job_t *job)
{
    job->now_ms = kl_fed_now_ms();
    f->cfg.submit(f->cfg.ud, job);
}

void kl_fed_store(kl_fed_t *f, kl_job_t *job)
{
    submit(f, job);
}

static void record_state(fed_peer_t *p, const char *state)
{
    if (p->removed || (p->state && strcmp(p->state, state) == 0))
        return;
    p->state = state;
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_STATE, 0, NULL);
    if (job == NULL)
        return; /* status shows an older state */
    job->u.fed->peer = p->cfg.id;
    snprintf(job->u.fed->state, sizeof job->u.fed->state, "%s", state);
    submit(p->fed, job);
}

/* ---- proxied ops of local clients ---- */

static void wait_remove(fed_wait_t *w, kl_job_t *job)
{
    kl_job_t *prev = NULL;
    for (kl_job_t *j = w->head; j; prev = j, j = j->u.fed->wait_next) {
        if (j != job)
            continue;
        if (prev)
            prev->u.fed->wait_next = j->u.fed->wait_next;
        else
            w->head = j->u.fed->wait_next;
        if (w->tail == j)
            w->tail = prev;
        j->u.fed->wait_next = NULL;
        return;
    }
}

static void list_next(kl_fed_t *f, kl_job_t *job);

void kl_fed_proxy_fail(kl_fed_t *f, fed_peer_t *p, kl_job_t *job, const char *why)
{
    wait_remove(&p->waiting, job);
    if (job->u.fed->op == KL_FED_OP_GROUP_LIST) {
        list_next(f, job); /* group_list leaves out a peer it cannot ask */
        return;
    }
    if (job->u.fed->op == KL_FED_OP_MIRROR) {
        kl_fedchan_answer(p, job, NULL);
        return;
    }
    job->u.fed->err_code = CODE(UNAVAILABLE);
    snprintf(job->u.fed->err_msg, sizeof job->u.fed->err_msg, "relay %.60s %.50s: retry later",
             p->cfg.name, why);
    f->cfg.client_done(f->cfg.ud, job);
}

static uint32_t next_id(fed_peer_t *p)
{
    if (++p->next_id == 0)
        p->next_id = 1;
    return p->next_id;
}

static void proxy_send(fed_peer_t *p, kl_job_t *job)
{
    kl_fedframe_t fr = KOLLEGA__FEDERATION__V1__FED_FRAME__INIT;
    Kollega__Relay__V1__Lookup lk = KOLLEGA__RELAY__V1__LOOKUP__INIT;
    Kollega__Relay__V1__PrekeyFetch pf = KOLLEGA__RELAY__V1__PREKEY_FETCH__INIT;
    kl_fed_job_t *fj = job->u.fed;
    fj->link_req = next_id(p);
    fr.id = fj->link_req;
    if (fj->op == KL_FED_OP_GROUP || fj->op == KL_FED_OP_GROUP_LIST) {
        kl_fedgroup_send(p, job, fr.id);
        return;
    }
    if (fj->op == KL_FED_OP_MIRROR || fj->op == KL_FED_OP_CHAN_SUB) {
        kl_fedchan_send(p, job, fr.id);
        return;
    }
    if (fj->op == KL_FED_OP_LOOKUP) {
        lk.address = fj->address;
        if (fj->has_token) {
            lk.delivery_token.data = fj->token;
            lk.delivery_token.len = 32;
        }
        fr.body_case = FBODY(LOOKUP);
        fr.lookup = &lk;
    } else {
        pf.address = fj->address;
        pf.requester = fj->user;
        fr.body_case = FBODY(PREKEY_FETCH);
        fr.prekey_fetch = &pf;
    }
    kl_fedlink_send(p->out, &fr);
}

int kl_fed_is_proxy(const kl_job_t *job)
{
    return job->kind == KL_JOB_FED &&
           (job->u.fed->op == KL_FED_OP_LOOKUP || job->u.fed->op == KL_FED_OP_PREKEY ||
            job->u.fed->op == KL_FED_OP_GROUP ||
            ((job->u.fed->op == KL_FED_OP_GROUP_LIST || job->u.fed->op == KL_FED_OP_CHAN_SUB) &&
             !job->u.fed->listed));
}

size_t kl_fed_link_count(const kl_fed_t *f)
{
    size_t n = 0;
    for (const fed_link_t *l = f ? f->links : NULL; l; l = l->next)
        n += l->ready && !l->closing;
    return n;
}

static void wait_add(fed_peer_t *p, kl_job_t *job)
{
    job->u.fed->wait_next = NULL;
    if (p->waiting.tail)
        p->waiting.tail->u.fed->wait_next = job;
    else
        p->waiting.head = job;
    p->waiting.tail = job;
}

/* group_list: ask the next peer whose link is up; after the last, list
 * the local groups (storage) and hand the job back to the client. */
static void list_next(kl_fed_t *f, kl_job_t *job)
{
    kl_fed_job_t *fj = job->u.fed;
    fj->link_req = 0;
    while (!f->stopping && fj->list_at < f->n_peers) {
        fed_peer_t *p = f->peers[fj->list_at++];
        if (p->out == NULL || !p->out->ready || p->out->closing)
            continue;
        fj->deadline_ms = uv_now(f->cfg.loop) + f->cfg.proxy_timeout_ms;
        wait_add(p, job);
        proxy_send(p, job);
        return;
    }
    fj->listed = 1;
    if (f->stopping) {
        job->result = KL_EIO;
        f->cfg.client_done(f->cfg.ud, job);
        return;
    }
    submit(f, job);
}

void kl_fed_submit(kl_fed_t *f, kl_job_t *job)
{
    if (job->u.fed->op == KL_FED_OP_GROUP_LIST) {
        list_next(f, job);
        return;
    }
    fed_peer_t *p = kl_fed_peer_by_id(f, job->u.fed->peer);
    kl_fed_job_t *fj = job->u.fed;
    /* Unknown peer cannot happen (dispatch checked); the sweep answers it
     * like a timeout so that the client never gets a re-entrant reply. */
    /* While the link is down the wait is short (a link about to come back
     * still makes it); once sent, the peer has the full timeout. */
    int up = p && p->out && p->out->ready;
    uint32_t wait = f->cfg.proxy_timeout_ms;
    fj->deadline_ms = uv_now(f->cfg.loop) + (p == NULL ? 0 : up || wait < 1000 ? wait : 1000);
    /* (dispatch found the peer by name in this loop turn, and a removed
     * peer is found among the retired ones: one always exists.) */
    if (p == NULL)
        p = f->n_peers ? f->peers[0] : f->retired[0];
    fj->wait_next = NULL;
    if (p->waiting.tail)
        p->waiting.tail->u.fed->wait_next = job;
    else
        p->waiting.head = job;
    p->waiting.tail = job;
    if (p->out && p->out->ready && !f->stopping)
        proxy_send(p, job);
}

static void on_sweep(uv_timer_t *t)
{
    kl_fed_t *f = t->data;
    uint64_t now = uv_now(f->cfg.loop);
    kl_fedchan_sweep(f, now);
    for (size_t i = 0; i < f->n_peers + f->n_retired; i++) {
        fed_peer_t *p = i < f->n_peers ? f->peers[i] : f->retired[i - f->n_peers];
        kl_job_t *j = p->waiting.head;
        while (j) {
            kl_job_t *next = j->u.fed->wait_next;
            if (j->u.fed->deadline_ms <= now)
                kl_fed_proxy_fail(f, p, j, j->u.fed->link_req ? "did not answer in time"
                                                         : "is not reachable now");
            j = next;
        }
    }
}

static kl_job_t *proxy_find(fed_peer_t *p, uint32_t id)
{
    for (kl_job_t *j = p->waiting.head; j; j = j->u.fed->wait_next)
        if (j->u.fed->link_req == id)
            return j;
    return NULL;
}

static int copy_bundle(kl_prekey_bundle_t *b, const Kollega__Relay__V1__PrekeyBundle *pb)
{
    const Kollega__Relay__V1__SignedPrekey *spk = pb->signed_prekey;
    const Kollega__Relay__V1__OneTimePrekey *opk = pb->one_time_prekey;
    if (pb->identity_key.len != 32 || spk == NULL || spk->public_key.len != 32 ||
        spk->signature.len != 64 || (opk && opk->public_key.len != 32))
        return KL_EPROTO;
    memset(b, 0, sizeof *b);
    memcpy(b->identity_key, pb->identity_key.data, 32);
    b->spk_id = spk->id;
    memcpy(b->spk, spk->public_key.data, 32);
    memcpy(b->spk_sig, spk->signature.data, 64);
    if (opk) {
        b->has_opk = 1;
        b->opk_id = opk->id;
        memcpy(b->opk, opk->public_key.data, 32);
    }
    return 0;
}

/* An answer to a proxied op on our outgoing link. */
static void proxy_answer(fed_peer_t *p, kl_fedframe_t *fr)
{
    kl_job_t *job = proxy_find(p, fr->id);
    if (job == NULL)
        return; /* timed out already */
    kl_fed_job_t *fj = job->u.fed;
    int bad = 0;
    if (fj->op == KL_FED_OP_MIRROR || fj->op == KL_FED_OP_CHAN_SUB) {
        wait_remove(&p->waiting, job);
        kl_fedchan_answer(p, job, fr);
        return;
    }
    if (fj->op == KL_FED_OP_GROUP || fj->op == KL_FED_OP_GROUP_LIST) {
        if (fr->body_case == FBODY(ERROR) && fj->op == KL_FED_OP_GROUP) {
            fj->err_code = fr->error->code ? (int)fr->error->code : CODE(UNAVAILABLE);
            snprintf(fj->err_msg, sizeof fj->err_msg, "%.60s: %.60s", p->cfg.name,
                     fr->error->message ? fr->error->message : "refused");
        } else if (fr->body_case != FBODY(GROUP_REPLY) || kl_fedgroup_answer(p, job, fr) != 0) {
            bad = fj->op == KL_FED_OP_GROUP;
        }
        wait_remove(&p->waiting, job);
        if (fj->op == KL_FED_OP_GROUP_LIST) {
            list_next(p->fed, job);
            return;
        }
    } else if (fr->body_case == FBODY(ERROR)) {
        fj->err_code = fr->error->code ? (int)fr->error->code : CODE(UNAVAILABLE);
        snprintf(fj->err_msg, sizeof fj->err_msg, "%.60s: %.60s", p->cfg.name,
                 fr->error->message ? fr->error->message : "refused");
    } else if (fr->body_case == FBODY(LOOKUP_RESULT) && fj->op == KL_FED_OP_LOOKUP) {
        const Kollega__Relay__V1__LookupResult *lr = fr->lookup_result;
        fj->exists = lr->exists && lr->identity_key.len == 32;
        bad = lr->exists && lr->identity_key.len != 32;
        if (fj->exists)
            memcpy(fj->identity_key, lr->identity_key.data, 32);
    } else if (fr->body_case == FBODY(PREKEY_BUNDLE) && fj->op == KL_FED_OP_PREKEY) {
        bad = copy_bundle(&fj->bundle, fr->prekey_bundle) != 0;
    } else {
        bad = 1;
    }
    if (bad) {
        fj->err_code = CODE(UNAVAILABLE);
        snprintf(fj->err_msg, sizeof fj->err_msg, "relay %.60s sent a malformed answer",
                 p->cfg.name);
    }
    wait_remove(&p->waiting, job);
    p->fed->cfg.client_done(p->fed->cfg.ud, job);
}

/* ---- links up and down, dialling ---- */

static void on_peer_timer(uv_timer_t *t);

void kl_fed_redial_later(fed_peer_t *p)
{
    kl_fed_t *f = p->fed;
    p->out = NULL;
    if (f->stopping || p->removed)
        return;
    record_state(p, "down");
    /* Jitter: wait between half and all of the backoff, so that relays
     * restarted together do not redial in lockstep. */
    uint32_t d = p->backoff_ms / 2 + kl_random_u32() % (p->backoff_ms / 2 + 1);
    uint64_t cap = f->cfg.retry_max_ms;
    p->backoff_ms = (uint64_t)p->backoff_ms * 2 > cap ? (uint32_t)cap : p->backoff_ms * 2;
    uv_timer_start(&p->timer, on_peer_timer, d, 0);
}

void kl_fed_dial(fed_peer_t *p)
{
    if (p->fed->stopping || p->removed || p->out || p->resolving)
        return;
    record_state(p, "connecting");
    kl_fedlink_dial(p);
}

static void on_peer_timer(uv_timer_t *t)
{
    fed_peer_t *p = t->data;
    if (p->out == NULL) {
        kl_fed_dial(p);
        return;
    }
    if (p->paused) {
        p->paused = 0;
        pump(p);
    }
}

void kl_fed_link_up(fed_link_t *l)
{
    fed_peer_t *p = l->peer;
    kl_fed_t *f = l->fed;
    if (!l->outgoing) {
        kl_log(KL_LOG_INFO, "federation: inbound link from %s up", p->cfg.name);
        kl_log(KL_LOG_DEBUG, "federation: inbound link from %s comes from %s", p->cfg.name,
               l->where);
        if (p->in && p->in != l)
            kl_fedlink_close(p->in, "replaced by a new link");
        p->in = l;
        l->tokens_milli = (uint64_t)(p->cfg.rate ? p->cfg.rate : FED_RATE_DEFAULT) * 2000;
        l->refill_ms = uv_now(f->cfg.loop);
        /* The peer is (back) up: do not wait out our backoff to reach it. */
        if (p->out == NULL && !p->resolving) {
            uv_timer_stop(&p->timer);
            p->backoff_ms = KL_FED_RETRY_MIN_MS;
            kl_fed_dial(p);
        }
        return;
    }
    kl_log(KL_LOG_INFO, "federation: link to %s (%s) up", p->cfg.name, p->cfg.addr);
    record_state(p, "up");
    kl_fedchan_link_up(p);
    p->backoff_ms = KL_FED_RETRY_MIN_MS;
    p->retry_ms = FED_RESUME_MIN_MS;
    p->sent_upto = p->ack_want;
    p->in_flight = 0;
    p->paused = 0;
    p->restart_next = 0;
    p->min_answer_id = next_id(p);
    uv_timer_stop(&p->timer);
    for (kl_job_t *j = p->waiting.head; j; j = j->u.fed->wait_next) {
        j->u.fed->deadline_ms = uv_now(f->cfg.loop) + f->cfg.proxy_timeout_ms;
        proxy_send(p, j);
    }
    pump(p);
}

void kl_fed_link_down(fed_link_t *l)
{
    fed_peer_t *p = l->peer;
    if (p == NULL)
        return;
    if (!l->outgoing) {
        if (p->in == l)
            p->in = NULL;
        return;
    }
    if (p->out != l)
        return;
    /* Sent proxied ops will get no answer on this link. */
    kl_job_t *j = p->waiting.head;
    while (j) {
        kl_job_t *next = j->u.fed->wait_next;
        if (j->u.fed->link_req != 0)
            kl_fed_proxy_fail(l->fed, p, j, "went away during the request");
        j = next;
    }
    p->in_flight = 0;
    p->paused = 0;
    kl_fed_redial_later(p);
}

/* ---- outbox pump ---- */

static void pump(fed_peer_t *p)
{
    fed_link_t *l = p->out;
    if (l == NULL || !l->ready || l->closing || p->paused || p->reading || p->fed->stopping ||
        p->removed ||
        p->in_flight >= KL_FED_WINDOW || l->wq_bytes > FED_WQ_CAP)
        return;
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_OUT_READ, 0, NULL);
    if (job == NULL)
        return; /* the next answer or kick pumps again */
    job->owner = p;
    job->req_id = p->min_answer_id; /* which link generation asked */
    job->u.fed->peer = p->cfg.id;
    job->u.fed->outbox = p->cfg.outbox;
    job->u.fed->after = p->sent_upto;
    job->u.fed->limit = KL_FED_WINDOW - p->in_flight;
    p->reading = 1;
    p->kicked = 0;
    submit(p->fed, job);
}

static void read_done(fed_peer_t *p, kl_job_t *job)
{
    kl_fed_job_t *fj = job->u.fed;
    fed_link_t *l = p->out;
    p->reading = 0;
    if (job->result != 0 || l == NULL || !l->ready || job->req_id != p->min_answer_id ||
        p->paused) {
        if (job->result == 0 && !p->paused)
            pump(p); /* a new link (or generation) since: read again from its start */
        return;
    }
    for (size_t i = 0; i < fj->n && !l->closing; i++) {
        Kollega__Federation__V1__Forward *fw =
            kollega__federation__v1__forward__unpack(NULL, fj->entries[i].len,
                                                     fj->entries[i].body);
        if (fw == NULL) {
            kl_log(KL_LOG_ERROR, "federation: outbox entry %llu for %s is unreadable; skipped",
                   (unsigned long long)fj->entries[i].seq, p->cfg.name);
        } else {
            kl_fedframe_t fr = KOLLEGA__FEDERATION__V1__FED_FRAME__INIT;
            fw->origin_relay = (char *)p->fed->cfg.relay_name;
            fw->origin_epoch = p->cfg.epoch;
            fw->origin_seq = fj->entries[i].seq;
            fw->restart = p->restart_next;
            p->restart_next = 0;
            fr.id = next_id(p);
            fr.body_case = FBODY(FORWARD);
            fr.forward = fw;
            kl_fedlink_send(l, &fr);
            fw->origin_relay = NULL; /* not the unpacker's to free */
            kollega__federation__v1__forward__free_unpacked(fw, NULL);
            p->in_flight++;
        }
        p->sent_upto = fj->entries[i].seq;
    }
    if ((fj->n > 0 && fj->more) || p->kicked)
        pump(p);
}

static void submit_ack(fed_peer_t *p)
{
    if (p->acking || p->ack_want <= p->ack_done || p->fed->stopping || p->removed)
        return;
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_OUT_ACK, 0, NULL);
    if (job == NULL)
        return;
    job->owner = p;
    job->u.fed->peer = p->cfg.id;
    job->u.fed->outbox = p->cfg.outbox;
    job->u.fed->seq = p->ack_want;
    p->acking = 1;
    submit(p->fed, job);
}

static void on_forward_result(fed_peer_t *p, const kl_fedframe_t *fr)
{
    const Kollega__Federation__V1__ForwardResult *res = fr->forward_result;
    if ((int32_t)(fr->id - p->min_answer_id) < 0)
        return; /* an answer to a forward sent before the last rewind */
    if (p->in_flight > 0)
        p->in_flight--;
    switch (res->status) {
    case FSTATUS(STORED):
    case FSTATUS(DUPLICATE):
    case FSTATUS(REJECTED):
        if (res->status == FSTATUS(REJECTED))
            kl_log(KL_LOG_WARN, "federation: %s rejected outbox entry %llu: %s", p->cfg.name,
                   (unsigned long long)res->origin_seq, res->message ? res->message : "");
        if (res->origin_seq > p->ack_want)
            p->ack_want = res->origin_seq;
        p->retry_ms = FED_RESUME_MIN_MS;
        submit_ack(p);
        pump(p);
        return;
    default: {
        /* RETRY: resume from this entry after a backoff, with restart. */
        uint64_t cap = p->fed->cfg.retry_max_ms;
        kl_log(KL_LOG_INFO, "federation: %s asks to retry from outbox entry %llu (%s)",
               p->cfg.name, (unsigned long long)res->origin_seq,
               res->message ? res->message : "");
        p->sent_upto = res->origin_seq > 0 ? res->origin_seq - 1 : 0;
        if (p->sent_upto < p->ack_want)
            p->sent_upto = p->ack_want;
        p->in_flight = 0;
        p->paused = 1;
        p->restart_next = 1;
        p->min_answer_id = next_id(p);
        uv_timer_start(&p->timer, on_peer_timer, p->retry_ms, 0);
        p->retry_ms = (uint64_t)p->retry_ms * 2 > cap ? (uint32_t)cap : p->retry_ms * 2;
        return;
    }
    }
}

/* ---- frames, completions, lifecycle ---- */

void kl_fed_on_frame(fed_link_t *l, kl_fedframe_t *fr)
{
    if (!l->outgoing) {
        kl_fedin_frame(l, fr);
        return;
    }
    fed_peer_t *p = l->peer;
    switch (fr->body_case) {
    case FBODY(FORWARD_RESULT):
        on_forward_result(p, fr);
        break;
    case FBODY(LOOKUP_RESULT):
    case FBODY(PREKEY_BUNDLE):
    case FBODY(ERROR):
    case FBODY(GROUP_REPLY):
        proxy_answer(p, fr);
        break;
    case FBODY(PONG):
        break;
    default:
        kl_fedlink_close(l, "unexpected frame on an outgoing link");
        break;
    }
}

int kl_fed_job_done(kl_fed_t *f, kl_job_t *job)
{
    kl_fed_job_t *fj = job->u.fed;
    fed_peer_t *p = NULL;
    switch (fj->op) {
    case KL_FED_OP_SEND:
        /* A client's message is in the outbox: send it (the client's
         * connection gets the job next, for its `sent`). */
        p = kl_fed_peer_by_id(f, fj->peer);
        if (job->result == 0 && p) {
            p->kicked = 1;
            pump(p);
        }
        return 0;
    case KL_FED_OP_LOOKUP:
    case KL_FED_OP_PREKEY:
    case KL_FED_OP_GROUP:
    case KL_FED_OP_GROUP_LIST:
        return 0;
    case KL_FED_OP_CHAN_SUB:
        return kl_fedchan_sub_stored(f, job);
    case KL_FED_OP_MIRROR:
    case KL_FED_OP_MIRROR_LIST:
        kl_fedchan_stored(f, job);
        return 1; /* the module's own: freed or reused there */
    case KL_FED_OP_OUT_READ:
        p = job->owner;
        if (!f->stopping)
            read_done(p, job);
        else
            p->reading = 0;
        break;
    case KL_FED_OP_OUT_ACK:
        p = job->owner;
        p->acking = 0;
        if (job->result == 0 && fj->seq > p->ack_done)
            p->ack_done = fj->seq;
        submit_ack(p);
        break;
    case KL_FED_OP_IN_DELIVER:
    case KL_FED_OP_IN_LOOKUP:
    case KL_FED_OP_IN_PREKEY:
    case KL_FED_OP_IN_GROUP:
    case KL_FED_OP_IN_NOTIFY:
        kl_fedin_job_done(job->owner, job);
        return 1; /* freed there */
    case KL_FED_OP_STATE:
        break;
    }
    kl_job_free(job);
    return 1;
}

static void on_listen(uv_stream_t *s, int status)
{
    kl_fed_t *f = s->data;
    if (status < 0 || f->stopping)
        return;
    kl_fedlink_accept(f);
}

static int fed_bind(kl_fed_t *f, char *bound, size_t cap)
{
    char host[KL_HOST_MAX + 1];
    uint16_t port = 0;
    struct sockaddr_storage ss;
    if (kl_listen_parse(f->cfg.listen, host, sizeof host, &port) != 0)
        return KL_EINVAL;
    memset(&ss, 0, sizeof ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return KL_EINVAL;
    uv_tcp_init(f->cfg.loop, &f->listener);
    f->listener.data = f;
    f->listening = 1;
    int r = uv_tcp_bind(&f->listener, (const struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&f->listener, 64, on_listen);
    return r ? r : kl_tcp_name(&f->listener, 1, bound, cap);
}

int kl_fed_new(kl_fed_t **out, const kl_fed_cfg_t *cfg, const kl_storage_peer_t *peers,
               size_t n, char *bound, size_t cap)
{
    *out = NULL;
    if (cap > 0)
        bound[0] = '\0';
    kl_fed_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return KL_ENOMEM;
    f->cfg = *cfg;
    if (f->cfg.retry_max_ms < KL_FED_RETRY_MIN_MS)
        f->cfg.retry_max_ms = KL_FED_RETRY_MIN_MS;
    f->peers = calloc(n ? n : 1, sizeof *f->peers);
    int r = f->peers ? 0 : KL_ENOMEM;
    for (size_t i = 0; i < n && r == 0; i++)
        if ((f->peers[i] = calloc(1, sizeof **f->peers)) == NULL)
            r = KL_ENOMEM;
    if (r == 0) {
        f->n_peers = n;
        for (size_t i = 0; i < n; i++)
            f->peers[i]->cfg = peers[i];
        r = kl_fed_hint_keys(f);
    }
    if (r) {
        for (size_t i = 0; f->peers && i < n; i++)
            free(f->peers[i]);
        free(f->peers);
        free(f);
        return r;
    }
    for (size_t i = 0; i < n; i++)
        kl_fed_peer_init(f, f->peers[i]);
    uv_timer_init(f->cfg.loop, &f->sweep);
    f->sweep.data = f;
    *out = f;
    if (cfg->listen && cfg->listen[0])
        return fed_bind(f, bound, cap);
    return 0;
}

void kl_fed_set_limits(kl_fed_t *f, uint32_t retry_max_ms, uint32_t ttl_max_s,
                       const kl_storage_quota_t *quota)
{
    if (f == NULL)
        return;
    f->cfg.retry_max_ms = retry_max_ms < KL_FED_RETRY_MIN_MS ? KL_FED_RETRY_MIN_MS : retry_max_ms;
    f->cfg.ttl_max_s = ttl_max_s;
    f->cfg.inbox_quota = *quota;
}

void kl_fed_start(kl_fed_t *f)
{
    f->started = 1;
    uv_timer_start(&f->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    for (size_t i = 0; i < f->n_peers; i++)
        kl_fed_dial(f->peers[i]);
}

static void on_closed_nothing(uv_handle_t *h)
{
    (void)h;
}

void kl_fed_stop(kl_fed_t *f)
{
    if (f == NULL || f->stopping)
        return;
    for (size_t i = 0; i < f->n_peers && f->started; i++)
        record_state(f->peers[i], "stopped");
    f->stopping = 1;
    for (size_t i = 0; i < f->n_peers + f->n_retired; i++) {
        fed_peer_t *p = i < f->n_peers ? f->peers[i] : f->retired[i - f->n_peers];
        while (p->waiting.head)
            kl_fed_proxy_fail(f, p, p->waiting.head, "cannot be asked: this relay is shutting down");
        if (!p->removed) /* a removed peer's timer is closed already */
            uv_close((uv_handle_t *)&p->timer, on_closed_nothing);
        if (p->resolving)
            uv_cancel((uv_req_t *)&p->gai);
    }
    uv_close((uv_handle_t *)&f->sweep, on_closed_nothing);
    if (f->listening)
        uv_close((uv_handle_t *)&f->listener, on_closed_nothing);
    for (fed_link_t *l = f->links; l; l = l->next)
        kl_fedlink_close(l, "relay shutting down");
}

void kl_fed_free(kl_fed_t *f)
{
    if (f == NULL)
        return;
    /* Links still listed were never released by the loop (it did not run
     * after kl_fed_stop): free them here. */
    while (f->links) {
        fed_link_t *l = f->links;
        l->open_handles = 0;
        l->jobs = 0;
        l->closing = 1;
        kl_fedlink_maybe_free(l);
    }
    kl_fedchan_free(f);
    kl_secure_free(f->hint_keys);
    for (size_t i = 0; i < f->n_peers; i++)
        free(f->peers[i]);
    for (size_t i = 0; i < f->n_retired; i++)
        free(f->retired[i]);
    free(f->peers);
    free(f->retired);
    free(f);
}
