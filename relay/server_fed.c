/* The server's side of federation: create the module from the stored peers
 * and wire its callbacks to storage, connections and pushes. */
#include <stdlib.h>

#include "kollega/err.h"
#include "log.h"
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

int kl_server_fed_new(kl_server_t *s, kl_storage_t *st)
{
    kl_storage_peer_t *peers = NULL;
    size_t n = 0;
    int r = kl_storage_fed_peer_list(st, &peers, &n);
    if (r)
        return r;
    if (n == 0 && (s->cfg.fed_listen == NULL || s->cfg.fed_listen[0] == '\0')) {
        free(peers);
        return 0;
    }
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
    r = kl_fed_new(&s->fed, &fc, peers, n, s->fed_bound, sizeof s->fed_bound);
    free(peers);
    if (r) {
        kl_fed_stop(s->fed);
        return r;
    }
    s->cfg.dispatch.fed = s->fed;
    if (n > 0)
        kl_log(KL_LOG_INFO, "federation: %zu peer(s)%s%s", n, s->fed_bound[0] ? ", links on " : "",
               s->fed_bound);
    return 0;
}
