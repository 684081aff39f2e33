/* ERFA groups with members on several relays, over federation links
 * (proto/federation.proto "GroupProxy", "GroupNotify").
 *
 * User's relay: a client's request for a group of a peer is a
 * KL_FED_OP_GROUP job (dispatch_group.c) that fed.c queues like a proxied
 * lookup; kl_fedgroup_send puts it on the link as a GroupProxy and
 * kl_fedgroup_answer keeps the home relay's answer (a relay Frame) for the
 * client. group_list (KL_FED_OP_GROUP_LIST) asks each peer in turn and keeps
 * the groups each lists (only groups of that peer).
 *
 * Home relay: a peer's GroupProxy becomes a KL_FED_OP_IN_GROUP job around
 * the group job a local user would get (kl_dispatch_group_remote); its
 * completion answers with group_reply, pushes to local members' live
 * connections, and sends each peer with members ONE GroupNotify. A peer's
 * GroupNotify becomes deliver{group, more} / group_log{group, more} on the
 * named local users' live connections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dispatch.h"
#include "fed_int.h"
#include "kollega/err.h"
#include "base/diag.h"

#define RBODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x
#define FBODY(x) KOLLEGA__FEDERATION__V1__FED_FRAME__BODY_##x
#define CODE(x) KOLLEGA__RELAY__V1__ERROR_CODE__##x
/* Room a GroupProxy / group_reply needs around the relay Frame it carries. */
#define WRAP_ROOM (KL_ADDR_MAX + 128)

/* ---- the user's relay ---- */

void kl_fedgroup_send(fed_peer_t *p, kl_job_t *job, uint32_t id)
{
    kl_fed_job_t *fj = job->u.fed;
    kl_frame_t list = KOLLEGA__RELAY__V1__FRAME__INIT;
    Kollega__Relay__V1__GroupList gl = KOLLEGA__RELAY__V1__GROUP_LIST__INIT;
    kl_frame_t *req = NULL;
    if (fj->op == KL_FED_OP_GROUP) {
        req = kollega__relay__v1__frame__unpack(NULL, fj->len, fj->data);
        if (req == NULL)
            return; /* cannot happen (we packed it); the request times out */
    } else {
        list.id = 1;
        list.body_case = RBODY(GROUP_LIST);
        list.group_list = &gl;
    }
    kl_fed_proxy_send(p, id, fj->user, fj->identity_key, req ? req : &list);
    if (req)
        kollega__relay__v1__frame__free_unpacked(req, NULL);
}

void kl_fed_proxy_send(fed_peer_t *p, uint32_t id, const char *user, const uint8_t *key,
                       kl_frame_t *req)
{
    kl_fedframe_t fr = KOLLEGA__FEDERATION__V1__FED_FRAME__INIT;
    Kollega__Federation__V1__GroupProxy gp = KOLLEGA__FEDERATION__V1__GROUP_PROXY__INIT;
    gp.user = (char *)user;
    if (key) {
        gp.identity_key.data = (uint8_t *)key;
        gp.identity_key.len = 32;
    }
    gp.request = req;
    fr.id = id;
    fr.body_case = FBODY(GROUP_PROXY);
    fr.group_proxy = &gp;
    kl_fedlink_send(p->out, &fr);
}

/* Keep the groups of peer p from a group_list_result. */
static int take_list(fed_peer_t *p, kl_fed_job_t *fj, const kl_frame_t *a)
{
    const Kollega__Relay__V1__GroupListResult *res = a->group_list_result;
    if (a->body_case != RBODY(GROUP_LIST_RESULT))
        return -1;
    for (size_t i = 0; i < res->n_groups && fj->n_infos < KL_STORAGE_MAX_GROUPS_LISTED; i++) {
        const Kollega__Relay__V1__GroupInfo *gi = res->groups[i];
        kl_addr_t ad;
        if (strlen(gi->group) > KL_STORAGE_GROUP_ADDR_MAX || kl_addr_parse(gi->group, &ad) != 0 ||
            !ad.is_group || strcmp(ad.relay, p->cfg.name) != 0)
            return -1; /* a peer lists only its own groups */
        if (fj->infos == NULL) {
            fj->infos = calloc(KL_STORAGE_MAX_GROUPS_LISTED, sizeof *fj->infos);
            if (fj->infos == NULL)
                return 0; /* the list goes without this peer's groups */
        }
        kl_storage_ginfo_t *g = &fj->infos[fj->n_infos++];
        snprintf(g->address, sizeof g->address, "%s", gi->group);
        g->next_index = gi->next_index;
        g->member = gi->member;
        g->last_seq = gi->last_seq;
    }
    return 0;
}

int kl_fedgroup_answer(fed_peer_t *p, kl_job_t *job, kl_fedframe_t *fr)
{
    kl_fed_job_t *fj = job->u.fed;
    kl_frame_t *a = fr->group_reply;
    if (a == NULL)
        return -1;
    if (fj->op == KL_FED_OP_GROUP_LIST)
        return take_list(p, fj, a);
    if (!kl_dispatch_group_answer_ok(fj->req_body, a->body_case))
        return -1;
    /* Keep the unpacked answer: the client's reply points into it. */
    fj->reply = (ProtobufCMessage *)a;
    fr->group_reply = NULL;
    fr->body_case = KOLLEGA__FEDERATION__V1__FED_FRAME__BODY__NOT_SET;
    return 0;
}

void kl_fed_group_notify(kl_fed_t *f, const char *group, const char *addrs, size_t n, int ops)
{
    if (f == NULL || n == 0 || f->stopping)
        return;
    const char **names = malloc(n * sizeof *names);
    if (names == NULL)
        return; /* best effort: the users find it through group_list */
    for (size_t i = 0; i < f->n_peers; i++) {
        fed_peer_t *p = f->peers[i];
        const char *a = addrs;
        size_t k = 0;
        for (size_t j = 0; j < n; j++, a += strlen(a) + 1) {
            const char *at = strrchr(a, '@');
            if (at && strcmp(at + 1, p->cfg.name) == 0)
                names[k++] = a;
        }
        if (k == 0 || p->out == NULL || !p->out->ready)
            continue;
        kl_fedframe_t fr = KOLLEGA__FEDERATION__V1__FED_FRAME__INIT;
        Kollega__Federation__V1__GroupNotify gn = KOLLEGA__FEDERATION__V1__GROUP_NOTIFY__INIT;
        gn.group = (char *)group;
        gn.users = (char **)names;
        gn.n_users = k;
        gn.ops = ops;
        fr.body_case = FBODY(GROUP_NOTIFY);
        fr.group_notify = &gn;
        kl_fedlink_send(p->out, &fr);
    }
    free(names);
}

/* ---- the home relay ---- */

static void send_reply(fed_link_t *l, uint32_t id, const kl_frame_t *a)
{
    kl_fedframe_t fr = KOLLEGA__FEDERATION__V1__FED_FRAME__INIT;
    fr.id = id;
    fr.body_case = FBODY(GROUP_REPLY);
    fr.group_reply = (kl_frame_t *)a;
    kl_fedlink_send(l, &fr);
}

void kl_fedgroup_in_proxy(fed_link_t *l, const kl_fedframe_t *fr)
{
    const Kollega__Federation__V1__GroupProxy *gp = fr->group_proxy;
    const kl_dispatch_cfg_t *cfg = l->fed->cfg.dispatch;
    kl_addr_t a;
    if (cfg == NULL) {
        kl_fedin_send_error(l, fr->id, CODE(UNAVAILABLE), "groups are not served to peers here");
        return;
    }
    /* The peer relay itself ("", broadcast channel mirrors: fed_channel.c)
     * is the shadow user "@<peer>" with the peer's static key. */
    int self = gp->user[0] == '\0';
    int chan = gp->request != NULL && (self || kl_dispatch_is_channel(gp->request));
    if (gp->request == NULL ||
        (!self && (gp->identity_key.len != 32 || strlen(gp->user) > KL_ADDR_MAX ||
                   kl_addr_parse(gp->user, &a) != 0 || a.is_group))) {
        kl_fedin_send_error(l, fr->id, CODE(BAD_REQUEST), "malformed group_proxy");
        return;
    }
    if (!self && strcmp(a.relay, l->peer->cfg.name) != 0) {
        kl_fedin_send_error(l, fr->id, CODE(FORBIDDEN), "a relay speaks only for its own users");
        return;
    }
    kl_job_t *job = kl_fedin_job(l, fr->id, KL_FED_OP_IN_GROUP);
    if (job == NULL)
        return;
    kl_fed_job_t *fj = job->u.fed;
    if (self) {
        snprintf(fj->user, sizeof fj->user, "@%s", l->peer->cfg.name);
        memcpy(fj->identity_key, l->peer->cfg.key, 32);
    } else {
        snprintf(fj->user, sizeof fj->user, "%s", gp->user);
        memcpy(fj->identity_key, gp->identity_key.data, 32);
    }
    kl_dispatch_out_t out;
    int r = chan ? kl_dispatch_channel_remote(cfg, fj->user, fj->identity_key, gp->request,
                                              kl_fed_now_ms(), &out)
                 : kl_dispatch_group_remote(cfg, fj->user, fj->identity_key, gp->request, &out);
    if (r != 0 || out.job == NULL) {
        if (r == 0 && out.has_reply)
            send_reply(l, fr->id, &out.reply.frame);
        else
            kl_fedin_send_error(l, fr->id, CODE(UNAVAILABLE), "out of memory: retry later");
        kl_dispatch_out_free(&out);
        kl_job_free(job);
        return;
    }
    /* Answers travel inside a FedFrame: leave room for the wrapping. */
    if (out.job->kind == KL_JOB_GROUP_FETCH || out.job->kind == KL_JOB_GROUP_READ)
        out.job->u.group.max_bytes = KL_DELIVER_BUDGET - WRAP_ROOM;
    if (out.job->kind == KL_JOB_CHAN_FETCH || out.job->kind == KL_JOB_CHAN_READ)
        out.job->u.chan.max_bytes = KL_DELIVER_BUDGET - WRAP_ROOM;
    out.job->req_id = fr->id;
    fj->inner = out.job;
    kl_dispatch_out_free(&out);
    kl_fedin_submit(l, job);
}

void kl_fedgroup_in_notify(fed_link_t *l, const kl_fedframe_t *fr)
{
    const Kollega__Federation__V1__GroupNotify *gn = fr->group_notify;
    kl_addr_t a;
    if (strlen(gn->group) > KL_ADDR_MAX || kl_addr_parse(gn->group, &a) != 0 || !a.is_group ||
        strcmp(a.relay, l->peer->cfg.name) != 0 || gn->n_users == 0 ||
        gn->n_users > KL_STORAGE_MAX_GROUPS_LISTED * 2)
        return; /* a peer notifies only of its own groups */
    size_t len = 0, n = 0;
    for (size_t i = 0; i < gn->n_users; i++)
        len += strlen(gn->users[i]) + 1;
    kl_job_t *job = kl_fed_job_new(KL_FED_OP_IN_NOTIFY, 0, NULL);
    char *names = malloc(len ? len : 1);
    if (job == NULL || names == NULL) {
        kl_job_free(job);
        free(names);
        return;
    }
    kl_fed_job_t *fj = job->u.fed;
    char *w = names;
    for (size_t i = 0; i < gn->n_users; i++) {
        kl_addr_t u;
        const char *h = gn->users[i];
        if (strlen(h) > KL_ADDR_MAX || kl_addr_parse(h, &u) != 0 || u.is_group ||
            strcmp(u.relay, l->fed->cfg.relay_name) != 0)
            continue;
        size_t hl = strlen(u.handle);
        memcpy(w, u.handle, hl + 1);
        w += hl + 1;
        n++;
    }
    snprintf(fj->address, sizeof fj->address, "%s", gn->group);
    fj->ops = gn->ops;
    fj->names = names;
    fj->n_names = n;
    if (n == 0) {
        kl_job_free(job);
        return;
    }
    kl_fedin_submit(l, job);
}

static void notify_done(kl_fed_t *f, kl_job_t *job)
{
    kl_fed_job_t *fj = job->u.fed;
    kl_reply_t r;
    if (job->result != 0 || f->stopping || f->cfg.push_list == NULL)
        return;
    kl_dispatch_announce(&r, fj->address, fj->ops);
    f->cfg.push_list(f->cfg.ud, fj->ids, fj->n_names, &r.frame, fj->address);
}

void kl_fedgroup_in_done(fed_link_t *l, kl_job_t *job)
{
    kl_fed_t *f = l->fed;
    kl_fed_job_t *fj = job->u.fed;
    if (fj->op == KL_FED_OP_IN_NOTIFY) {
        notify_done(f, job);
        kl_job_free(job);
        return;
    }
    kl_job_t *inner = fj->inner;
    kl_dispatch_out_t out;
    memset(&out, 0, sizeof out);
    if (KL_JOB_IS_CHAN(inner->kind))
        kl_dispatch_channel_complete(f->cfg.dispatch, NULL, inner, &out);
    else
        kl_dispatch_group_complete(f->cfg.dispatch, NULL, inner, &out);
    if (!l->closing && out.has_reply)
        send_reply(l, fj->link_req, &out.reply.frame);
    /* A committed message or op reaches the other members even if the
     * asking link is gone. */
    if (!f->stopping && out.has_push && out.push_users && f->cfg.push_list)
        f->cfg.push_list(f->cfg.ud, out.push_users, out.n_push_users, &out.push.frame,
                         out.push_group);
    if (!f->stopping && out.has_push && out.n_notify && out.notify_channel)
        kl_fed_channel_notify(f, out.push_group, out.notify, out.n_notify);
    else if (!f->stopping && out.has_push && out.n_notify)
        kl_fed_group_notify(f, out.push_group, out.notify, out.n_notify,
                            out.push.frame.body_case == RBODY(GROUP_LOG));
    kl_dispatch_out_free(&out);
    kl_job_free(job);
}
