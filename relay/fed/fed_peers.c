/* Federation: the set of configured peers (fed.c runs the links, the
 * outbox pump and proxied ops over it). Peers are read at start
 * (kl_fed_new) and replaced on a reload (kl_fed_set_peers); each is
 * allocated on its own because timers, links, storage jobs and channel
 * mirrors point at it, and a removed one is retired, not freed, until the
 * module is (see fed_int.h). */
#include <stdlib.h>
#include <string.h>

#include "fed_int.h"
#include "kollega/err.h"
#include "base/diag.h"


static void on_closed_nothing(uv_handle_t *h)
{
    (void)h;
}

fed_peer_t *kl_fed_peer_by_id(kl_fed_t *f, uint64_t id)
{
    for (size_t i = 0; i < f->n_peers; i++)
        if (f->peers[i]->cfg.id == id)
            return f->peers[i];
    for (size_t i = 0; i < f->n_retired; i++)
        if (f->retired[i]->cfg.id == id)
            return f->retired[i];
    return NULL;
}

fed_peer_t *kl_fed_peer_at(const kl_fed_t *f, size_t i)
{
    return f->peers[i];
}

const kl_storage_peer_t *kl_fed_peer_cfg(const fed_peer_t *p)
{
    return &p->cfg;
}

int kl_fed_peer_removed(const fed_peer_t *p)
{
    return p->removed != 0;
}

size_t kl_fed_peer_count(const kl_fed_t *f)
{
    return f ? f->n_peers : 0;
}

const char *kl_fed_peer_link(const kl_fed_t *f, size_t i, int *up)
{
    const fed_peer_t *p = f->peers[i];
    *up = p->out != NULL && p->out->ready && !p->out->closing;
    return p->cfg.name;
}

static const kl_storage_peer_t *dir_find(const void *ctx, const char *relay)
{
    return kl_fed_peer(ctx, relay);
}

static size_t dir_count(const void *ctx)
{
    return kl_fed_peer_count(ctx);
}

kl_peer_directory_t kl_fed_directory(const kl_fed_t *f)
{
    kl_peer_directory_t d = {0};
    if (f) {
        d.find = dir_find;
        d.count = dir_count;
        d.ctx = f;
    }
    return d;
}

const kl_storage_peer_t *kl_fed_peer(const kl_fed_t *f, const char *relay)
{
    if (f == NULL)
        return NULL;
    for (size_t i = 0; i < f->n_peers; i++)
        if (strcmp(f->peers[i]->cfg.name, relay) == 0)
            return &f->peers[i]->cfg;
    return NULL;
}

void kl_fed_peer_init(kl_fed_t *f, fed_peer_t *p)
{
    p->fed = f;
    p->backoff_ms = KL_FED_RETRY_MIN_MS;
    p->retry_ms = FED_RESUME_MIN_MS;
    uv_timer_init(f->cfg.loop, &p->timer);
    p->timer.data = p;
}

static int same_peer(const kl_storage_peer_t *a, const kl_storage_peer_t *b)
{
    return a->id == b->id && strcmp(a->name, b->name) == 0 && strcmp(a->addr, b->addr) == 0 &&
           memcmp(a->key, b->key, sizeof a->key) == 0;
}

/* p is no longer configured: fail what waits for it, stop redialling,
 * close its links, and keep it among the retired (see fed_int.h). */
static void retire(kl_fed_t *f, fed_peer_t *p)
{
    kl_diag(KL_DIAG_INFO, "federation: peer %s removed", p->cfg.name);
    p->removed = 1;
    while (p->waiting.head)
        kl_fed_proxy_fail(f, p, p->waiting.head, "is no longer a peer of this relay");
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_closed_nothing);
    if (p->resolving)
        uv_cancel((uv_req_t *)&p->gai);
    for (fed_link_t *l = f->links; l; l = l->next)
        if (l->peer == p)
            kl_fedlink_close(l, "peer removed");
    f->retired[f->n_retired++] = p;
}

int kl_fed_set_peers(kl_fed_t *f, const kl_storage_peer_t *peers, size_t n, size_t *added,
                     size_t *removed)
{
    *added = *removed = 0;
    if (f->stopping)
        return 0;
    /* Room first, so that nothing fails halfway: the new peer list holds
     * at most n, the retired list at most every current peer more. */
    fed_peer_t **next = calloc(n ? n : 1, sizeof *next);
    fed_peer_t **ret = realloc(f->retired, (f->n_retired + f->n_peers + 1) * sizeof *ret);
    if (ret)
        f->retired = ret;
    if (next == NULL || ret == NULL) {
        free(next);
        return KL_ENOMEM;
    }
    size_t k = 0;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        fed_peer_t *p = NULL;
        for (size_t j = 0; j < f->n_peers && p == NULL; j++)
            if (f->peers[j] && same_peer(&f->peers[j]->cfg, &peers[i]))
                p = f->peers[j];
        if (p == NULL && (p = calloc(1, sizeof *p)) != NULL) {
            p->cfg = peers[i];
            p->state = NULL;
            p->removed = -1; /* new: initialised below */
        }
        if (p == NULL)
            r = KL_ENOMEM;
        else
            next[k++] = p;
    }
    /* The hint keys of the new list (they also number the peers). */
    fed_peer_t **old = f->peers;
    size_t n_old = f->n_peers;
    if (r == 0) {
        f->peers = next;
        f->n_peers = k;
        r = kl_fed_hint_keys(f);
        f->peers = old;
        f->n_peers = n_old;
    }
    if (r) {
        for (size_t j = 0; j < n_old; j++)
            old[j]->index = j;
        for (size_t i = 0; i < k; i++)
            if (next[i]->removed == -1)
                free(next[i]);
        free(next);
        return r;
    }
    /* Every current peer not kept is retired. */
    for (size_t j = 0; j < f->n_peers; j++) {
        int kept = 0;
        for (size_t i = 0; i < k && !kept; i++)
            kept = next[i] == f->peers[j];
        if (!kept) {
            retire(f, f->peers[j]);
            (*removed)++;
        }
    }
    free(f->peers);
    f->peers = next;
    f->n_peers = k;
    for (size_t i = 0; i < k; i++) {
        fed_peer_t *p = next[i];
        if (p->removed != -1)
            continue;
        p->removed = 0;
        kl_fed_peer_init(f, p);
        (*added)++;
        kl_diag(KL_DIAG_INFO, "federation: peer %s added", p->cfg.name);
        if (f->started)
            kl_fed_dial(p);
    }
    return 0;
}
