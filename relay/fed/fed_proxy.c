/* Proxied ops of local clients: a lookup, prekey fetch, group request or
 * group listing for another relay waits on that peer (fed_peer_t.waiting),
 * goes out on its outgoing link with a fresh id, and completes with the
 * peer's answer, or fails when the peer is unreachable or too slow (the
 * sweep, SWEEP_MS in fed.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fed_int.h"
#include "kollega/err.h"
#include "base/diag.h"

#define FBODY(x) KOLLEGA__FEDERATION__V1__FED_FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x

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

uint32_t kl_fed_next_id(fed_peer_t *p)
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
    fj->link_req = kl_fed_next_id(p);
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
    kl_fed_store(f, job);
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
    wait_add(p, job);
    if (p->out && p->out->ready && !f->stopping)
        proxy_send(p, job);
}

void kl_fedproxy_sweep(kl_fed_t *f, uint64_t now)
{
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

/* An answer to a proxied op on our outgoing link. */
void kl_fedproxy_answer(fed_peer_t *p, kl_fedframe_t *fr)
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
        bad = kl_wire_prekey_bundle_get(fr->prekey_bundle, &fj->bundle) != 0;
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

void kl_fedproxy_link_up(fed_peer_t *p)
{
    kl_fed_t *f = p->fed;
    for (kl_job_t *j = p->waiting.head; j; j = j->u.fed->wait_next) {
        j->u.fed->deadline_ms = uv_now(f->cfg.loop) + f->cfg.proxy_timeout_ms;
        proxy_send(p, j);
    }
}

void kl_fedproxy_link_down(fed_peer_t *p)
{
    kl_job_t *j = p->waiting.head;
    while (j) {
        kl_job_t *next = j->u.fed->wait_next;
        if (j->u.fed->link_req != 0)
            kl_fed_proxy_fail(p->fed, p, j, "went away during the request");
        j = next;
    }
}
