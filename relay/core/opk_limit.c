/* One-time prekey limits (opk_limit.h): four bounded tables of token
 * buckets (buckets.h): pair, requester, target, peer. */
#include <stdlib.h>
#include <string.h>

#include "kollega/err.h"
#include "buckets.h"
#include "opk_limit.h"

enum { T_PAIR, T_REQUESTER, T_TARGET, T_PEER, T_COUNT };

struct kl_opk_limit {
    kl_opk_limit_cfg_t cfg;
    kl_buckets_t *t[T_COUNT];
};

int kl_opk_limit_cfg_check(const kl_opk_limit_cfg_t *cfg)
{
    if (cfg->window_s > KL_OPK_WINDOW_S_MAX || cfg->per_pair > KL_OPK_PER_MAX ||
        cfg->per_requester > KL_OPK_PER_MAX || cfg->per_target > KL_OPK_PER_MAX ||
        cfg->per_peer > KL_OPK_PER_MAX || cfg->max_tracked > KL_OPK_TRACKED_MAX)
        return KL_EINVAL;
    return 0;
}

int kl_opk_limit_new(kl_opk_limit_t **out, const kl_opk_limit_cfg_t *cfg)
{
    *out = NULL;
    if (kl_opk_limit_cfg_check(cfg) != 0)
        return KL_EINVAL;
    kl_opk_limit_t *l = calloc(1, sizeof *l);
    if (l == NULL)
        return KL_ENOMEM;
    kl_opk_limit_cfg_t *c = &l->cfg;
    *c = *cfg;
    c->window_s = c->window_s ? c->window_s : KL_OPK_WINDOW_S_DEFAULT;
    c->per_pair = c->per_pair ? c->per_pair : KL_OPK_PER_PAIR_DEFAULT;
    c->per_requester = c->per_requester ? c->per_requester : KL_OPK_PER_REQUESTER_DEFAULT;
    c->per_target = c->per_target ? c->per_target : KL_OPK_PER_TARGET_DEFAULT;
    c->per_peer = c->per_peer ? c->per_peer : KL_OPK_PER_PEER_DEFAULT;
    c->max_tracked = c->max_tracked ? c->max_tracked : KL_OPK_TRACKED_DEFAULT;
    const uint32_t per[T_COUNT] = {c->per_pair, c->per_requester, c->per_target, c->per_peer};
    int r = 0;
    for (int i = 0; i < T_COUNT && r == 0; i++)
        r = kl_buckets_new(&l->t[i], c->max_tracked, per[i], (uint64_t)c->window_s * 1000);
    if (r) {
        kl_opk_limit_free(l);
        return r;
    }
    *out = l;
    return 0;
}

int kl_opk_limit_set(kl_opk_limit_t *l, const kl_opk_limit_cfg_t *cfg)
{
    if (kl_opk_limit_cfg_check(cfg) != 0)
        return KL_EINVAL;
    kl_opk_limit_cfg_t c = *cfg;
    c.window_s = c.window_s ? c.window_s : KL_OPK_WINDOW_S_DEFAULT;
    c.per_pair = c.per_pair ? c.per_pair : KL_OPK_PER_PAIR_DEFAULT;
    c.per_requester = c.per_requester ? c.per_requester : KL_OPK_PER_REQUESTER_DEFAULT;
    c.per_target = c.per_target ? c.per_target : KL_OPK_PER_TARGET_DEFAULT;
    c.per_peer = c.per_peer ? c.per_peer : KL_OPK_PER_PEER_DEFAULT;
    c.max_tracked = l->cfg.max_tracked;
    const uint32_t per[T_COUNT] = {c.per_pair, c.per_requester, c.per_target, c.per_peer};
    for (int i = 0; i < T_COUNT; i++)
        (void)kl_buckets_set_rate(l->t[i], per[i], (uint64_t)c.window_s * 1000); /* >= 1 each */
    l->cfg = c;
    return 0;
}

void kl_opk_limit_free(kl_opk_limit_t *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < T_COUNT; i++)
        kl_buckets_free(l->t[i]);
    free(l);
}

const kl_opk_limit_cfg_t *kl_opk_limit_cfg(const kl_opk_limit_t *l)
{
    return &l->cfg;
}

int kl_opk_limit_take(kl_opk_limit_t *l, const char *peer, const char *requester,
                      const char *target, uint64_t now_ms)
{
    kl_bucket_t *b[T_COUNT] = {NULL};
    size_t rl = strlen(requester), tl = strlen(target);
    /* The pair's name: requester NUL target (names hold no NUL). */
    char *pair = malloc(rl + 1 + tl);
    int ok = 0;
    if (pair == NULL)
        return 0; /* out of memory: consume nothing */
    memcpy(pair, requester, rl);
    pair[rl] = '\0';
    memcpy(pair + rl + 1, target, tl);
    b[T_PAIR] = kl_buckets_get(l->t[T_PAIR], pair, rl + 1 + tl, now_ms);
    b[T_REQUESTER] = kl_buckets_get(l->t[T_REQUESTER], requester, rl, now_ms);
    b[T_TARGET] = kl_buckets_get(l->t[T_TARGET], target, tl, now_ms);
    if (peer)
        b[T_PEER] = kl_buckets_get(l->t[T_PEER], peer, strlen(peer), now_ms);
    ok = 1;
    for (int i = 0; i < T_COUNT; i++)
        ok = ok && (b[i] == NULL || kl_bucket_ready(b[i]));
    if (ok)
        for (int i = 0; i < T_COUNT; i++)
            if (b[i])
                kl_bucket_take(b[i]);
    free(pair);
    return ok;
}
