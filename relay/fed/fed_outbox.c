/* The outbox pump (per peer, on its outgoing link): read up to the window of
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
#include "kollega/err.h"
#include "base/diag.h"

#define FBODY(x) KOLLEGA__FEDERATION__V1__FED_FRAME__BODY_##x
#define FSTATUS(x) KOLLEGA__FEDERATION__V1__FORWARD_RESULT__STATUS__##x

void kl_fedout_pump(fed_peer_t *p)
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
    kl_fed_store(p->fed, job);
}

static void read_done(fed_peer_t *p, kl_job_t *job)
{
    kl_fed_job_t *fj = job->u.fed;
    fed_link_t *l = p->out;
    p->reading = 0;
    if (job->result != 0 || l == NULL || !l->ready || job->req_id != p->min_answer_id ||
        p->paused) {
        if (job->result == 0 && !p->paused)
            kl_fedout_pump(p); /* a new link (or generation) since: read again from its start */
        return;
    }
    for (size_t i = 0; i < fj->n && !l->closing; i++) {
        Kollega__Federation__V1__Forward *fw =
            kollega__federation__v1__forward__unpack(NULL, fj->entries[i].len,
                                                     fj->entries[i].body);
        if (fw == NULL) {
            kl_diag(KL_DIAG_ERROR, "federation: outbox entry %llu for %s is unreadable; skipped",
                   (unsigned long long)fj->entries[i].seq, p->cfg.name);
        } else {
            kl_fedframe_t fr = KOLLEGA__FEDERATION__V1__FED_FRAME__INIT;
            fw->origin_relay = (char *)p->fed->cfg.relay_name;
            fw->origin_epoch = p->cfg.epoch;
            fw->origin_seq = fj->entries[i].seq;
            fw->restart = p->restart_next;
            p->restart_next = 0;
            fr.id = kl_fed_next_id(p);
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
        kl_fedout_pump(p);
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
    kl_fed_store(p->fed, job);
}

void kl_fedout_forward_result(fed_peer_t *p, const kl_fedframe_t *fr)
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
            kl_diag(KL_DIAG_WARN, "federation: %s rejected outbox entry %llu: %s", p->cfg.name,
                   (unsigned long long)res->origin_seq, res->message ? res->message : "");
        if (res->origin_seq > p->ack_want)
            p->ack_want = res->origin_seq;
        p->retry_ms = FED_RESUME_MIN_MS;
        submit_ack(p);
        kl_fedout_pump(p);
        return;
    default: {
        /* RETRY: resume from this entry after a backoff, with restart. */
        uint64_t cap = p->fed->cfg.retry_max_ms;
        kl_diag(KL_DIAG_INFO, "federation: %s asks to retry from outbox entry %llu (%s)",
               p->cfg.name, (unsigned long long)res->origin_seq,
               res->message ? res->message : "");
        p->sent_upto = res->origin_seq > 0 ? res->origin_seq - 1 : 0;
        if (p->sent_upto < p->ack_want)
            p->sent_upto = p->ack_want;
        p->in_flight = 0;
        p->paused = 1;
        p->restart_next = 1;
        p->min_answer_id = kl_fed_next_id(p);
        kl_fed_peer_timer(p, p->retry_ms);
        p->retry_ms = (uint64_t)p->retry_ms * 2 > cap ? (uint32_t)cap : p->retry_ms * 2;
        return;
    }
    }
}

void kl_fedout_job_done(fed_peer_t *p, kl_job_t *job)
{
    if (job->u.fed->op == KL_FED_OP_OUT_READ) {
        if (!p->fed->stopping)
            read_done(p, job);
        else
            p->reading = 0;
        return;
    }
    p->acking = 0;
    if (job->result == 0 && job->u.fed->seq > p->ack_done)
        p->ack_done = job->u.fed->seq;
    submit_ack(p);
}
