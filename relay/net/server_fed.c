/* The server's side of federation: create the module from the stored peers
 * and wire its callbacks to storage, connections and pushes. */
#include <stdlib.h>

#include "kollega/err.h"
#include "base/diag.h"
#include "server_int.h"

static void fed_submit(void *ud, kl_job_t *job)
{
    kl_server_submit(ud, job);
}

static void fed_client_done(void *ud, kl_job_t *job)
{
    (void)ud;
    kl_conn_job_done(job->owner, job);
}

static void fed_push(void *ud, uint64_t user, const kl_frame_t *f)
{
    kl_server_push(ud, user, f);
}

static void fed_push_list(void *ud, const uint64_t *users, size_t n, const kl_frame_t *f,
                          const char *group)
{
    kl_server_push_list(ud, users, n, f, NULL, group);
}

const char *kl_server_fed_address(const kl_server_t *s)
{
    return s->fed_bound;
}

/* Create s->fed for peers[0..n) (and the federation port). */
static int fed_create(kl_server_t *s, const kl_storage_peer_t *peers, size_t n)
{
    kl_fed_cfg_t fc = {
        .loop = s->loop,
        .relay_name = s->relay_name,
        .static_sk = s->static_sk,
        .listen = s->cfg.fed_listen,
        .retry_max_ms = (s->cfg.fed_retry_max_s ? s->cfg.fed_retry_max_s : KL_FED_RETRY_MAX_S) *
                        1000u,
        .proxy_timeout_ms = KL_FED_PROXY_TIMEOUT_S * 1000u,
        .ttl_max_s = s->cfg.dispatch.ttl_max_s,
        .inbox_quota = s->cfg.dispatch.quota,
        .submit = fed_submit,
        .client_done = fed_client_done,
        .push = fed_push,
        .push_list = fed_push_list,
        .dispatch = &s->cfg.dispatch,
        .ud = s,
    };
    int r = kl_fed_new(&s->fed, &fc, peers, n, s->fed_bound, sizeof s->fed_bound);
    if (r) {
        kl_fed_stop(s->fed);
        return r;
    }
    s->cfg.dispatch.peers = kl_fed_directory(s->fed);
    if (n > 0)
        kl_diag(KL_DIAG_INFO, "federation: %zu peer(s)%s%s", n, s->fed_bound[0] ? ", links on " : "",
               s->fed_bound);
    return 0;
}

int kl_server_fed_new(kl_server_t *s, kl_storage_t *st)
{
    kl_storage_peer_t *peers = NULL;
    size_t n = 0;
    int r = kl_storage_fed_peer_list(st, &peers, &n);
    if (r)
        return r;
    if (n > 0 || (s->cfg.fed_listen && s->cfg.fed_listen[0]))
        r = fed_create(s, peers, n);
    free(peers);
    return r;
}

void kl_server_reload_peers(kl_server_t *s)
{
    kl_job_t *job = kl_server_job(s, KL_JOB_PEER_LIST,
                                  "federation: out of memory: peers not reloaded", NULL);
    if (job)
        kl_storeq_submit(s->q, job);
}

/* The peers as stored now: a relay that had none starts federation (its
 * links are outgoing only unless it was started with a federation port);
 * otherwise the module adds and removes the difference. */
void kl_server_peers_loaded(kl_server_t *s, kl_job_t *job)
{
    size_t added = 0, removed = 0;
    int r = job->result;
    if (r == 0 && s->stopping)
        return;
    if (r == 0 && s->fed == NULL && job->u.peers.n > 0) {
        r = fed_create(s, job->u.peers.list, job->u.peers.n);
        if (r == 0) {
            kl_fed_start(s->fed);
            added = job->u.peers.n;
        } else {
            s->fed_dead = s->fed; /* stopped; freed after the loop (its handles close) */
            s->fed = NULL;
            s->cfg.dispatch.peers = kl_fed_directory(NULL);
        }
    } else if (r == 0 && s->fed) {
        r = kl_fed_set_peers(s->fed, job->u.peers.list, job->u.peers.n, &added, &removed);
    }
    if (r)
        kl_diag(KL_DIAG_ERROR, "federation: cannot reload the peers: %s (the running ones stay)",
               kl_strerror(r));
    else
        kl_diag(KL_DIAG_INFO, "federation: %zu peer(s) added, %zu removed", added, removed);
}
