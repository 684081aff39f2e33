/* Group pushes: one frame (a group message's deliver, or an applied op's
 * group_log) to every live connection of a list of users, and the
 * backpressure rule for them. A connection whose write queue is over its
 * cap does not get the push; instead the group is remembered and, once the
 * queue has drained below half the cap, the connection gets one
 * announcement per group it missed: deliver{group, more: true} for
 * messages, group_log{group, more: true, no ops} for ops. Either means
 * "fetch this group". At most KL_CONN_MISSED_MAX groups are remembered per
 * connection; beyond that the connection gets the plain deliver{more: true}
 * and the client should check every group (group_list gives each group's
 * last_seq and next_index). */
#include <stdlib.h>
#include <string.h>

#include "kollega/crypto.h"
#include "server_int.h"

#define BODY(x) KOLLEGA__RELAY__V1__FRAME__BODY_##x

struct kl_missed {
    struct kl_missed *next;
    int ops;                 /* 1: group_log missed, 0: deliver missed */
    char group[];
};

static void remember(kl_conn_t *c, const char *group, int ops)
{
    size_t n = 0;
    for (kl_missed_t *m = c->missed_groups; m; m = m->next, n++)
        if (m->ops == ops && strcmp(m->group, group) == 0)
            return;
    size_t len = strlen(group);
    kl_missed_t *m = n < KL_CONN_MISSED_MAX ? malloc(sizeof *m + len + 1) : NULL;
    if (m == NULL) {
        c->missed = 1; /* the plain announcement: fetch everything */
        return;
    }
    m->ops = ops;
    memcpy(m->group, group, len + 1);
    m->next = c->missed_groups;
    c->missed_groups = m;
}

/* f to c, or when pt is not NULL, f packed (pt[0..n)). */
static void push_one(kl_conn_t *c, const kl_frame_t *f, const uint8_t *pt, size_t n,
                     const char *group)
{
    if (c->closing || c->finishing || !c->transport_ready)
        return;
    if (c->wq_bytes > c->srv->cfg.write_queue) {
        remember(c, group,
                 f->body_case == BODY(GROUP_LOG) || f->body_case == BODY(CHANNEL_LOG));
        return;
    }
    if (pt != NULL)
        kl_conn_send_packed(c, pt, n, 1);
    else
        kl_conn_send(c, f, 1);
}

void kl_conn_announce_groups(kl_conn_t *c)
{
    kl_missed_t *m = c->missed_groups;
    c->missed_groups = NULL;
    while (m) {
        kl_missed_t *next = m->next;
        kl_reply_t r;
        /* Channels ("!name@relay", dispatch_channel.c) share this list. */
        kl_dispatch_announce(&r, m->group, m->ops);
        kl_conn_send(c, &r.frame, 0);
        free(m);
        m = next;
    }
}

void kl_conn_missed_free(kl_conn_t *c)
{
    kl_missed_t *m = c->missed_groups;
    c->missed_groups = NULL;
    while (m) {
        kl_missed_t *next = m->next;
        free(m);
        m = next;
    }
}

/* The frame is packed once, at the first live connection, and only
 * sealed for each (if that allocation fails, each packs its own). */
void kl_server_push_list(kl_server_t *s, const uint64_t *users, size_t n, const kl_frame_t *f,
                         const kl_conn_t *except, const char *group)
{
    uint8_t *pt = NULL;
    size_t len = 0;
    int packed = 0;
    for (size_t i = 0; i < n; i++) {
        kl_conn_t *c = s->map[kl_server_bucket(s, users[i])];
        while (c) {
            kl_conn_t *next = c->map_next; /* c may close (and leave the map) */
            if (c->sess.user_id == users[i] && c != except) {
                if (!packed)
                    packed = kl_wire_pack_alloc(f, &pt, &len) == 0 ? 1 : -1;
                push_one(c, f, pt, len, group);
            }
            c = next;
        }
    }
    kl_free_wipe(pt, len);
}
